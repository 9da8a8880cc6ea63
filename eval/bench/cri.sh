#!/usr/bin/env bash
# Kubernetes' path through containerd 1.6's CRI: handler rauha (containerd-shim-rauha-v2, a
# private rauhad) against handler runc, one interleaved run under one private containerd
# started inside a network namespace of its own (CNI bridge + host-local there; nothing
# touches the host's network). Per handler, median and p90 of:
#   RunPodSandbox | CreateContainer + StartContainer (busybox sleep) | StopPodSandbox + Remove
# and the PSS of each pod's shim with H pods held (one container each).
#   eval/bench/cri.sh [-n RUNS] [-H HELD_PODS] [--build-dir DIR]   (as root)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
source "$HERE/lib.sh"
RUNS=20
HOLD=3
BUILD="$REPO/build"
parse_bench_args "${BASH_SOURCE[0]}" -n=RUNS -H=HOLD -- "$@"
require_root cri.sh "containerd, rauhad and the shims run as root"
CSHIM="$BUILD/containerd-shim-rauha-v2/containerd-shim-rauha-v2"
BENCH="$BUILD/eval/cri_bench"
require_built cri.sh "$BUILD" "rauhad rauha-shim containerd-shim-rauha-v2 cri_bench" \
  "$BUILD/rauhad/rauhad" "$BUILD/rauha-shim/rauha-shim" "$CSHIM" "$BENCH"
for tool in containerd ctr containerd-shim-runc-v2 runc busybox unshare; do
  command -v "$tool" >/dev/null || { echo "cri.sh: $tool missing (deploy/install-deps.sh)" >&2; exit 1; }
done
[ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/loopback ] ||
  { echo "cri.sh: CNI plugins missing: apt-get install containernetworking-plugins" >&2; exit 1; }

TAG="rauha-cribench-$$"
D=$(mktemp -d "/tmp/$TAG-XXXXXX")
DAEMON_PID=""
CTRD_PID=""
# What containerd 1.6 and CNI leave outside the private dirs: removed only if we made them.
MADE=()
for d in /run/containerd /run/containerd/s /run/containerd/runc /var/lib/cni; do
  [ -e "$d" ] || MADE+=("$d")
done
CGROUPS_MADE=()
for h in /sys/fs/cgroup/*/; do
  for ns in k8s.io default; do [ -e "$h$ns" ] || CGROUPS_MADE+=("$h$ns"); done
done
ctr_() { ctr --address "$D/ctrd/c.sock" "$@"; }
pss_kib() { awk '/^Pss:/ { print $2 }' "/proc/$1/smaps_rollup"; }

cleanup() {
  if [ -n "$CTRD_PID" ]; then
    kill -TERM "$CTRD_PID" 2>/dev/null || true
    wait "$CTRD_PID" 2>/dev/null || true
  fi
  [ -n "$DAEMON_PID" ] && stop_rauhad "$DAEMON_PID"
  local d
  for d in "${CGROUPS_MADE[@]}"; do rmdir "$d" 2>/dev/null || true; done
  for ((i = ${#MADE[@]} - 1; i >= 0; i--)); do
    d=${MADE[$i]}
    [ -d "$d" ] && find "$d" -mindepth 1 -depth -type d -empty -delete 2>/dev/null || true
    rmdir "$d" 2>/dev/null || true
  done
  rm -rf "$D"
}
trap cleanup EXIT

start_rauhad "$BUILD/rauhad/rauhad" "$BUILD/rauha-shim/rauha-shim" "$D" "$TAG"
mkdir -p "$D/ctrd" "$D/cni" "$D/logs" "$D/image/layer/bin" "$D/image/oci" "$D/bin"
ln -s "$CSHIM" "$D/bin/containerd-shim-rauha-v2"
cat >"$D/cni/10-bench.conflist" <<CONF
{"cniVersion": "0.4.0", "name": "rauha-cri-bench", "plugins": [{
  "type": "bridge", "bridge": "rauhabench0", "isGateway": true, "ipMasq": false,
  "ipam": {"type": "host-local", "dataDir": "$D/ipam",
           "ranges": [[{"subnet": "10.90.0.0/16", "gateway": "10.90.0.1"}]]}}]}
CONF
cat >"$D/ctrd/config.toml" <<CONF
version = 2
root = "$D/ctrd/root"
state = "$D/ctrd/state"
[grpc]
  address = "$D/ctrd/c.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/busybox:pause"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "$D/cni"
  max_conf_num = 1
[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.rauha]
  runtime_type = "io.containerd.rauha.v2"
CONF
# containerd in a network namespace of its own (unshare --net, lo up): the CNI bridge and the
# pods' addresses live there. Only the network namespace changes (not /sys, unlike `ip netns
# exec`), so cgroups stay visible.
# Its working directory is $D: containerd looks for a shim there first, and a source tree holds
# a directory named containerd-shim-rauha-v2.
(cd "$D" && PATH="$D/bin:$PATH" RAUHA_SOCKET="$D/rauhad.sock" exec unshare --net -- sh -c \
  'busybox ip link set lo up && exec containerd --config "$1"' sh "$D/ctrd/config.toml" \
  >"$D/ctrd/log" 2>&1) &
CTRD_PID=$!
for ((t = 0; t < 200; t++)); do ctr_ version >/dev/null 2>&1 && break; sleep 0.05; done

# Two images from one busybox layer (OCI layouts, imported offline into CRI's namespace): the
# pause image sleeps, the app image runs what CRI asks.
w="$D/image"
cp "$(command -v busybox)" "$w/layer/bin/busybox"
tar -C "$w/layer" --numeric-owner --owner=0 --group=0 -cf "$w/layer.tar" bin
mkdir -p "$w/oci/blobs/sha256"
blob() { local s; s=$(sha256sum "$1" | cut -d' ' -f1); mv "$1" "$w/oci/blobs/sha256/$s"; echo "$s"; }
size() { stat -c %s "$w/oci/blobs/sha256/$1"; }
layer=$(blob "$w/layer.tar")
manifests=""
for tag in pause v1; do
  if [ "$tag" = pause ]; then entry='"Entrypoint":["/bin/busybox","sleep","2147483647"]'; else entry='"Cmd":["/bin/busybox","sh"]'; fi
  printf '{"architecture":"amd64","os":"linux","config":{%s,"Env":["PATH=/bin"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$entry" "$layer" >"$w/config-$tag.json"
  cfg=$(blob "$w/config-$tag.json")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%d}]}' \
    "$cfg" "$(size "$cfg")" "$layer" "$(size "$layer")" >"$w/manifest-$tag.json"
  man=$(blob "$w/manifest-$tag.json")
  manifests+="${manifests:+,}$(printf '{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"%s"}}' "$man" "$(size "$man")" "$tag")"
done
printf '{"schemaVersion":2,"manifests":[%s]}' "$manifests" >"$w/oci/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$w/oci/oci-layout"
tar -C "$w/oci" -cf "$D/image.tar" oci-layout index.json blobs
ctr_ -n k8s.io images import --base-name localhost/busybox "$D/image.tar" >/dev/null

echo "containerd $(containerd --version | awk '{ print $3 }'), CRI runtime.v1, CNI bridge + host-local"
coproc BENCH_PROC { "$BENCH" --address "unix://$D/ctrd/c.sock" --log-dir "$D/logs" --runs "$RUNS" \
  --image localhost/busybox:v1 --handlers rauha,runc --hold "$HOLD"; }
BENCH_PID=$BENCH_PROC_PID
while IFS= read -r line <&"${BENCH_PROC[0]}"; do
  if [ "$line" = holding ]; then
    declare -A PSS=([rauha]="" [runc]="")
    for pid in $(pgrep -f "containerd-shim-rauha-v2 .*-address $D/ctrd/c.sock" || true); do PSS[rauha]+="$(pss_kib "$pid") "; done
    for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $D/ctrd/c.sock" || true); do PSS[runc]+="$(pss_kib "$pid") "; done
    for rt in rauha runc; do
      echo "$rt shim PSS with $HOLD pods: $(echo "${PSS[$rt]}" | tr ' ' '\n' | grep -v '^$' |
        awk '{ s += $1; n++ } END { if (n) printf "%.0f KiB mean over %d shims", s / n, n; else print "no shim found" }')"
    done
    echo done >&"${BENCH_PROC[1]}"
  else
    echo "$line"
  fi
done
wait "$BENCH_PID"
