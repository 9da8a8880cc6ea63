#!/usr/bin/env bash
# Fetches Debian's stock kernel for the ebpf-vm tests into a cache, without installing it.
#
#   fetch-kernel.sh [cache-dir]        (default /var/cache/rauha/ebpf-vm)
#
# Leaves in the cache: vmlinuz (the bzImage as shipped), vmlinux (the uncompressed ELF kernel,
# carved out of the bzImage: qemu boots it through its PVH entry note, which skips ~3 s of xz
# decompression under TCG), and a stamp naming the package. Idempotent: when the stamp names
# the package linux-image-amd64 depends on and both files exist, nothing is downloaded.
set -euo pipefail

cache=${1:-/var/cache/rauha/ebpf-vm}
log() { echo "fetch-kernel.sh: $*" >&2; }
die() {
  log "$*"
  exit 1
}

for tool in apt-cache apt-get dpkg-deb tar xz od grep; do
  command -v "$tool" >/dev/null || die "$tool not found (Debian host expected)"
done

# The metapackage names the current ABI (e.g. linux-image-6.1.0-56-amd64).
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
  sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n1)
if [ -z "$pkg" ]; then
  # No package lists (offline, or apt-get update never ran): keep a kernel already cached.
  if [ -s "$cache/vmlinux" ] && [ -s "$cache/stamp" ]; then
    log "apt-cache cannot name the kernel package; keeping $(cat "$cache/stamp")"
    exit 0
  fi
  die "apt-cache depends linux-image-amd64 names no kernel package (run apt-get update)"
fi

if [ -s "$cache/vmlinux" ] && [ -s "$cache/vmlinuz" ] && [ "$(cat "$cache/stamp" 2>/dev/null)" = "$pkg" ]; then
  log "$pkg already in $cache"
  exit 0
fi

mkdir -p "$cache"
work=$(mktemp -d "$cache/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT

log "downloading $pkg"
# apt-get download writes to the current directory; as root it drops privileges to _apt,
# which must be able to write there.
chmod 0777 "$work"
(cd "$work" && apt-get download -q "$pkg" >&2) || die "apt-get download $pkg failed"
deb=$(ls "$work"/*.deb 2>/dev/null | head -n1)
[ -n "$deb" ] || die "apt-get download $pkg produced no .deb"

mkdir "$work/x"
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work/x" --wildcards './boot/vmlinuz-*' ||
  die "no ./boot/vmlinuz-* in $deb"
vmlinuz=$(ls "$work"/x/boot/vmlinuz-* | head -n1)

# The bzImage's payload is an xz stream (Debian: CONFIG_KERNEL_XZ); decompress from its magic
# (FD 37 7A 58 5A 00). Trailing data after the stream is expected, hence the tolerated error.
offset=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$vmlinuz" | head -n1 | cut -d: -f1)
[ -n "$offset" ] || die "no xz stream in $vmlinuz (kernel not xz-compressed?)"
tail -c +"$((offset + 1))" "$vmlinuz" | xz -dc >"$work/vmlinux" 2>/dev/null || true
magic=$(od -An -tx1 -N4 "$work/vmlinux" | tr -d ' ')
[ "$magic" = "7f454c46" ] || die "decompressed payload of $vmlinuz is not an ELF file"

install -m 0644 "$vmlinuz" "$cache/vmlinuz.new"
install -m 0644 "$work/vmlinux" "$cache/vmlinux.new"
mv -f "$cache/vmlinuz.new" "$cache/vmlinuz"
mv -f "$cache/vmlinux.new" "$cache/vmlinux"
echo "$pkg" >"$cache/stamp.new"
mv -f "$cache/stamp.new" "$cache/stamp"
log "$pkg: $(du -h "$cache/vmlinux" | cut -f1) vmlinux in $cache"
