#!/usr/bin/env bash
# Runs one binary inside Debian's stock kernel booted under qemu (TCG), where LSM BPF programs
# load, and exits with that binary's exit status.
#
#   run-in-vm.sh [--icount] [--timeout S] [--env K=V]... [--kernel-cache DIR] -- BINARY [ARGS...]
#
# The guest is an initramfs: busybox-static, BINARY with every library ldd names and the ELF
# interpreter, and an /init that mounts proc, sys, devtmpfs, /tmp (tmpfs), securityfs, bpffs
# and cgroup2, brings lo up, runs BINARY (cwd /tmp, env RAUHA_TEST_REQUIRE_ALL=1 and every
# --env), prints an exit marker carrying a nonce chosen here, syncs and powers off. The serial
# log is printed; a log without the marker is an infrastructure failure.
#
# --icount: one vCPU, `-icount shift=0,sleep=off`: one guest nanosecond per instruction, so
# guest clock readings are deterministic instruction counts (benchmarks).
#
# Exit: BINARY's status; 125 infrastructure failure (no kernel, qemu missing, timeout, guest
# crashed before the marker); 77 when the kernel cache is missing and RAUHA_TEST_REQUIRE_ALL is
# not 1 in this environment (CTest counts that as skipped).
set -euo pipefail

prog=run-in-vm.sh
cache=${RAUHA_EBPF_VM_CACHE:-/var/cache/rauha/ebpf-vm}
icount=0
timeout_s=300
guest_env=()

die() {
  echo "$prog: $*" >&2
  exit 125
}
usage() {
  echo "usage: $prog [--icount] [--timeout S] [--env K=V]... [--kernel-cache DIR] -- BINARY [ARGS...]" >&2
  exit 125
}

while [ $# -gt 0 ]; do
  case "$1" in
    --icount) icount=1 ;;
    --timeout) [ $# -ge 2 ] || usage; timeout_s=$2; shift ;;
    --env) [ $# -ge 2 ] || usage; guest_env+=("$2"); shift ;;
    --kernel-cache) [ $# -ge 2 ] || usage; cache=$2; shift ;;
    --) shift; break ;;
    *) usage ;;
  esac
  shift
done
[ $# -ge 1 ] || usage
binary=$1
shift
[ -x "$binary" ] || die "$binary: not an executable file"

if [ ! -s "$cache/vmlinux" ]; then
  msg="no guest kernel in $cache (run deploy/install-deps.sh as root, or tests/ebpf-vm/fetch-kernel.sh $cache)"
  if [ "${RAUHA_TEST_REQUIRE_ALL:-}" = 1 ]; then
    die "$msg"
  fi
  echo "$prog: SKIPPED: $msg" >&2
  exit 77
fi
for tool in qemu-system-x86_64 cpio gzip ldd timeout od; do
  command -v "$tool" >/dev/null || die "$tool not found (run deploy/install-deps.sh)"
done
busybox=$(command -v busybox || true)
[ -n "$busybox" ] && ! ldd "$busybox" >/dev/null 2>&1 ||
  die "a static busybox is needed (apt-get install busybox-static)"

# Private work directory: concurrent runs (ctest -j) share nothing but the read-only kernel.
work=$(mktemp -d "${TMPDIR:-/tmp}/rauha-ebpf-vm.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,tmp,run,test,etc}
cp "$busybox" "$root/bin/busybox"

# The binary and its shared libraries, at the paths ldd names (so the interpreter path baked
# into the binary resolves); LD_LIBRARY_PATH covers there being no ld.so.cache in the guest.
name=$(basename "$binary")
cp -L "$binary" "$root/test/$name"
libdirs=()
while read -r lib; do
  [ -n "$lib" ] || continue
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
  libdirs+=("$(dirname "$lib")")
done < <(ldd "$binary" 2>/dev/null | sed -n 's/.*=> \(\/[^ ]*\) (.*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p' | sort -u)
ld_path=$(printf '%s\n' "${libdirs[@]}" | sort -u | paste -sd: -)

nonce=$(od -An -tx8 -N16 /dev/urandom | tr -d ' \n')
marker=RAUHA-EBPF-VM-EXIT
echo "$nonce" >"$root/.nonce"

quote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
cmd="/test/$(quote "$name")"
for arg in "$@"; do cmd+=" $(quote "$arg")"; done
env_cmd="RAUHA_TEST_REQUIRE_ALL=1 LD_LIBRARY_PATH=$(quote "$ld_path")"
for kv in "${guest_env[@]}"; do
  [[ "$kv" == *=* ]] || die "--env $kv: expected K=V"
  env_cmd+=" ${kv%%=*}=$(quote "${kv#*=}")"
done

cat >"$root/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin HOME=/tmp
mount -t devtmpfs dev /dev
# The kernel found no /dev/console in the initramfs: attach to the serial console now.
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs -o mode=1777 tmp /tmp
mount -t securityfs securityfs /sys/kernel/security
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup
ip link set lo up
# The nonce is read and removed before the binary runs, so its output cannot forge the marker.
nonce=\$(cat /.nonce)
rm -f /.nonce
echo "RAUHA-EBPF-VM-START \$(uname -r)"
cd /tmp
env $env_cmd $cmd
rc=\$?
echo "$marker \$nonce \$rc"
sync
poweroff -f
EOF
chmod 0755 "$root/init"

(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1 >"$work/initrd.gz")

smp=(-smp 2)
if [ "$icount" = 1 ]; then smp=(-smp 1 -icount shift=0,sleep=off); fi
log=$work/serial.log
start_ms=$(($(date +%s%N) / 1000000))
set +e
timeout --kill-after=10 "$timeout_s" qemu-system-x86_64 -nodefaults -no-user-config -M q35 \
  -accel tcg -cpu max -m 1G "${smp[@]}" -display none -no-reboot -serial "file:$log" \
  -kernel "$cache/vmlinux" -initrd "$work/initrd.gz" \
  -append 'console=ttyS0 quiet loglevel=1 panic=-1 lsm=lockdown,capability,landlock,bpf' \
  </dev/null >"$work/qemu.out" 2>&1
qemu_rc=$?
set -e
elapsed_ms=$(($(date +%s%N) / 1000000 - start_ms))
elapsed=$((elapsed_ms / 1000)).$(printf %03d $((elapsed_ms % 1000)))

tr -d '\r' <"$log" >"$work/guest.log" 2>/dev/null || : >"$work/guest.log"
rc=$(sed -n "s/^$marker $nonce \([0-9]*\)\$/\1/p" "$work/guest.log" | tail -n1)
if [ -z "$rc" ]; then
  cat "$work/guest.log" >&2
  cat "$work/qemu.out" >&2
  if [ "$qemu_rc" = 124 ] || [ "$qemu_rc" = 137 ]; then
    die "guest timed out after ${timeout_s}s without an exit marker (infrastructure failure)"
  fi
  die "guest stopped (qemu exit $qemu_rc) without an exit marker: kernel panic, crash or a broken initramfs (infrastructure failure)"
fi
# The binary's output: everything between the start line and the marker.
sed -n "/^RAUHA-EBPF-VM-START /,/^$marker $nonce /{/^$marker $nonce /d;p}" "$work/guest.log"
echo "$prog: guest exit $rc (${elapsed}s boot+run, $(stat -c %s "$work/initrd.gz") B initramfs)" >&2
exit "$rc"
