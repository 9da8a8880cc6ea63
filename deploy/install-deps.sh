#!/usr/bin/env bash
# Installs everything Rauha needs to build, run and test, from Debian 12 packages only.
# Idempotent: packages already present are left as they are.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: run as root (apt-get needs it)" >&2
  exit 1
fi

packages=(
  # build
  build-essential cmake pkg-config clang-format
  # gRPC / protobuf; containerd's shim and event protos for containerd-shim-rauha-v2
  golang-github-containerd-containerd-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  # static archives of gRPC's own dependencies: the rauha CLI links them statically
  libc-ares-dev libre2-dev
  # kernel interfaces
  libseccomp-dev libcap-dev libnl-3-dev libnl-route-3-dev libnftables-dev libbpf-dev
  # nftables drops as events: rauhad reads an NFLOG group
  libnetfilter-log-dev
  # eBPF programs: clang -target bpf, llvm-strip, bpftool (vmlinux.h, skeletons), static libs for
  # the qemu guest test binary
  clang llvm bpftool libelf-dev zlib1g-dev libzstd-dev
  # data and formats
  libssl-dev nlohmann-json3-dev libtomlplusplus-dev libsqlite3-dev libcli11-dev
  # images: the registry client (libcurl on OpenSSL) and archives (import/export, layers)
  libcurl4-openssl-dev libarchive-dev
  # tests
  libgtest-dev libgmock-dev googletest
  # tools used by tests and benchmarks (peers measured against)
  iproute2 procps util-linux runc crun bubblewrap hyperfine python3
  # tests of the TCP endpoints make their certificates with the openssl CLI
  openssl
  # ping in a zone without CAP_NET_RAW (tests/integration/policy_defaults_test.cc)
  iputils-ping
  # eval/bench/network.sh counts leftover IPAM rows in the private state database
  sqlite3
  # eval/bench: a static busybox for peer rootfs and images; containerd for the memory comparison
  busybox-static containerd
  # containerd tests (CRI pods) and eval/bench/cri.sh: CNI bridge, host-local, loopback
  containernetworking-plugins
  # eval/bench/egress.sh: a widely used forward proxy to measure the egress proxy against
  tinyproxy
  # image tests and eval/bench/pull.sh: a real registry on loopback, images pushed with skopeo,
  # htpasswd (bcrypt) for its basic auth, umoci to unpack as a peer
  docker-registry skopeo apache2-utils umoci
  # tests labelled ebpf-vm: a stock Debian kernel booted under qemu (TCG) with an initramfs
  qemu-system-x86 cpio
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps.sh: all ${#packages[@]} packages present"
else
  echo "install-deps.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The ebpf-vm tests' guest kernel (Debian's stock kernel, cached, never installed here).
"$(dirname "$0")/../tests/ebpf-vm/fetch-kernel.sh" /var/cache/rauha/ebpf-vm
