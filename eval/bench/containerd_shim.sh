#!/usr/bin/env bash
# containerd-shim-rauha-v2 against containerd-shim-runc-v2 under one private containerd 1.6
# (CRI plugin disabled), one interleaved run:
#   - `ctr run --rm busybox true` wall time, median and p90 over N runs of each runtime;
#   - PSS of each shim process with C containers running (`ctr run -d ... sleep`).
# A private rauhad serves the rauha runtime (RAUHA_SOCKET in containerd's environment).
#   eval/bench/containerd_shim.sh [-n RUNS] [-c CONTAINERS] [--build-dir DIR]   (as root)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
source "$HERE/lib.sh"
RUNS=20
CONTAINERS=3
BUILD="$REPO/build"
parse_bench_args "${BASH_SOURCE[0]}" -n=RUNS -c=CONTAINERS -- "$@"
require_root containerd_shim.sh "containerd, rauhad and the shims run as root"
CSHIM="$BUILD/containerd-shim-rauha-v2/containerd-shim-rauha-v2"
require_built containerd_shim.sh "$BUILD" "rauhad rauha-shim containerd-shim-rauha-v2" \
  "$BUILD/rauhad/rauhad" "$BUILD/rauha-shim/rauha-shim" "$CSHIM"
for tool in containerd ctr containerd-shim-runc-v2 runc busybox; do
  command -v "$tool" >/dev/null || { echo "containerd_shim.sh: $tool missing (deploy/install-deps.sh)" >&2; exit 1; }
done

TAG="rauha-bench-$$"
D=$(mktemp -d "/tmp/$TAG-XXXXXX")
DAEMON_PID=""
CTRD_PID=""
RUN_CONTAINERD_EXISTED=0
[ -e /run/containerd ] && RUN_CONTAINERD_EXISTED=1
ctr_() { ctr --address "$D/ctrd/c.sock" "$@"; }
pss_kib() { awk '/^Pss:/ { print $2 }' "/proc/$1/smaps_rollup"; }

cleanup() {
  local id t
  if [ -n "$CTRD_PID" ]; then
    for id in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s KILL "$id" >/dev/null 2>&1 || true; done
    for id in $(ctr_ containers ls -q 2>/dev/null); do
      for ((t = 0; t < 50; t++)); do
        ctr_ tasks delete "$id" >/dev/null 2>&1 && break
        ctr_ tasks ls -q 2>/dev/null | grep -qx "$id" || break
        sleep 0.1
      done
      ctr_ containers delete "$id" >/dev/null 2>&1 || true
    done
    kill -TERM "$CTRD_PID" 2>/dev/null || true
    wait "$CTRD_PID" 2>/dev/null || true
  fi
  [ -n "$DAEMON_PID" ] && stop_rauhad "$DAEMON_PID"
  rm -rf /run/containerd/runc/default
  if [ "$RUN_CONTAINERD_EXISTED" = 0 ]; then
    rmdir /run/containerd/runc /run/containerd/s /run/containerd 2>/dev/null || true
  fi
  rm -rf "$D"
}
trap cleanup EXIT

start_rauhad "$BUILD/rauhad/rauhad" "$BUILD/rauha-shim/rauha-shim" "$D" "$TAG"
mkdir -p "$D/ctrd" "$D/image/layer/bin" "$D/image/oci"
cat >"$D/ctrd/config.toml" <<CONF
version = 2
root = "$D/ctrd/root"
state = "$D/ctrd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$D/ctrd/c.sock"
CONF
RAUHA_SOCKET="$D/rauhad.sock" containerd --config "$D/ctrd/config.toml" >"$D/ctrd/log" 2>&1 &
CTRD_PID=$!
for ((t = 0; t < 200; t++)); do ctr_ version >/dev/null 2>&1 && break; sleep 0.05; done

# The image: one uncompressed layer holding static busybox (an OCI layout, imported offline).
w="$D/image"
cp "$(command -v busybox)" "$w/layer/bin/busybox"
for app in true sleep sh; do ln -s busybox "$w/layer/bin/$app"; done
tar -C "$w/layer" --numeric-owner --owner=0 --group=0 -cf "$w/layer.tar" bin
mkdir -p "$w/oci/blobs/sha256"
blob() { local s; s=$(sha256sum "$1" | cut -d' ' -f1); mv "$1" "$w/oci/blobs/sha256/$s"; echo "$s"; }
size() { stat -c %s "$w/oci/blobs/sha256/$1"; }
layer=$(blob "$w/layer.tar")
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$layer" >"$w/config.json"
cfg=$(blob "$w/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%d}]}' \
  "$cfg" "$(size "$cfg")" "$layer" "$(size "$layer")" >"$w/manifest.json"
man=$(blob "$w/manifest.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' \
  "$man" "$(size "$man")" >"$w/oci/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$w/oci/oci-layout"
tar -C "$w/oci" -cf "$D/image.tar" oci-layout index.json blobs
ctr_ images import --base-name localhost/busybox "$D/image.tar" >/dev/null

declare -A RUNTIME=([rauha]="$CSHIM" [runc]="io.containerd.runc.v2")
declare -A MS=([rauha]="" [runc]="")
now_ms() { echo $(($(date +%s%N) / 1000000)); }
for ((i = 1; i <= RUNS; i++)); do
  for rt in rauha runc; do
    t0=$(now_ms)
    ctr_ run --rm --null-io --fifo-dir "$D/ctrd/fifo" --runtime "${RUNTIME[$rt]}" \
      --cgroup "$TAG-$rt$i" localhost/busybox:latest "$rt-r$i" /bin/true
    MS[$rt]+="$(($(now_ms) - t0)) "
  done
done
stats() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ a[NR] = $1 } END { printf "%d ms median, %d ms p90", a[int((NR + 1) / 2)], a[int(NR * 0.9 + 0.5)] }'; }

declare -A PSS=([rauha]="" [runc]="")
for rt in rauha runc; do
  for ((i = 1; i <= CONTAINERS; i++)); do
    ctr_ run -d --null-io --fifo-dir "$D/ctrd/fifo" --runtime "${RUNTIME[$rt]}" \
      --cgroup "$TAG-$rt-d$i" localhost/busybox:latest "$rt-d$i" /bin/sleep 600
  done
done
for pid in $(pgrep -f "containerd-shim-rauha-v2 .*-address $D/ctrd/c.sock" || true); do PSS[rauha]+="$(pss_kib "$pid") "; done
for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $D/ctrd/c.sock" || true); do PSS[runc]+="$(pss_kib "$pid") "; done
mean() { tr ' ' '\n' | grep -v '^$' | awk '{ s += $1; n++ } END { if (n) printf "%.0f KiB mean over %d shims", s / n, n; else print "none found" }'; }

echo "containerd $(containerd --version | awk '{ print $3 }'), $RUNS interleaved runs, $CONTAINERS containers each"
printf '%-26s %-34s %s\n' "runtime" "ctr run --rm true" "shim PSS (ctr run -d)"
for rt in rauha runc; do
  name=$([ "$rt" = rauha ] && echo containerd-shim-rauha-v2 || echo containerd-shim-runc-v2)
  printf '%-26s %-34s %s\n' "$name" "$(echo "${MS[$rt]}" | stats)" "$(echo "${PSS[$rt]}" | mean)"
done
