#!/usr/bin/env bash
# `run --rm IMAGE /bin/true` with the image cached, wall clock from the command to its exit:
#   - rauha run --rm IMG /bin/busybox true (a zone of its own each run: from the warm pool,
#     retired off the request path; one RunContainer call);
#   - rauha sandbox -- /bin/busybox true (the no-image sandbox, the issue's yardstick: a
#     cached image's run --rm should cost at most it + 2 ms);
#   - ctr run --rm under a private containerd (CRI disabled) with runc (io.containerd.runc.v2);
#   - runc run and crun run on a bundle of the same busybox (no image store, no daemon: the
#     floor of an OCI runtime; crun through the cgroup-namespace holder of lib.sh).
# One image (one layer, static busybox) is imported into rauhad and containerd alike.
# Interleaved: one sample of each contender per round, the order rotated each round.
#
#   - rauha run --rm with RAUHA_NO_FAST_PATH=1 ("gRPC"): the same over gRPC (the CLI's transport
#     before `run` took rauhad's ttrpc endpoint).
#
#   eval/bench/run_rm.sh [-n N] [--build-dir DIR] [--compare DIR] [--no-peers]     (as root)
#
#   --compare DIR  a second rauhad from the build in DIR (e.g. main's binaries copied aside),
#                  its run --rm and sandbox interleaved with the others: an A/B in one window.
#   --no-peers     rauha only (no containerd, runc, crun): more rounds in the same time.
#
# Prints one table (n, median and p95 per contender; "not installed" for a missing peer) and
# the difference of the medians of rauha run --rm and the no-image sandbox. Everything it
# creates (rauhad, containerd, their state, runc/crun state, cgroups) is removed and checked.
set -euo pipefail

N=21
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD="$REPO/build"
source "$REPO/eval/bench/lib.sh"
COMPARE=""
PEERS=1
# --compare takes a word, which parse_bench_args does not: taken out first.
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --compare)
      [ $# -ge 2 ] || { echo "run_rm.sh: --compare wants a build directory" >&2; exit 2; }
      COMPARE=$2
      shift 2
      ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
parse_bench_args "${BASH_SOURCE[0]}" -n=N --no-peers:PEERS=0 -- ${ARGS[@]+"${ARGS[@]}"}
require_root run_rm.sh "rauhad, containerd, runc and crun run as root"
RAUHAD="$BUILD/rauhad/rauhad"
SHIM="$BUILD/rauha-shim/rauha-shim"
CLI="$BUILD/rauha-cli/rauha"
require_built run_rm.sh "$BUILD" "rauhad rauha-shim rauha" "$RAUHAD" "$SHIM" "$CLI"
command -v busybox >/dev/null || { echo "run_rm.sh: busybox missing (busybox-static)" >&2; exit 1; }
if [ -n "$COMPARE" ]; then
  COMPARE=$(cd "$COMPARE" && pwd)
  require_built run_rm.sh "$COMPARE" "rauhad rauha-shim rauha" "$COMPARE/rauhad/rauhad" \
    "$COMPARE/rauha-shim/rauha-shim" "$COMPARE/rauha-cli/rauha"
fi

TAG="rauha-bench-runrm-$$"
D=$(mktemp -d "/tmp/$TAG-XXXXXX")
[ -n "$D" ] && [ -d "$D" ] || { echo "run_rm.sh: mktemp failed" >&2; exit 1; }
DAEMON_PID=""
COMPARE_PID=""
CTRD_PID=""
HOLDER_PID=""
RUN_CONTAINERD_EXISTED=0
[ -e /run/containerd ] && RUN_CONTAINERD_EXISTED=1
rauha() { "$CLI" --socket "$D/rauhad.sock" "$@"; }
rauha_cmp() { "$COMPARE/rauha-cli/rauha" --socket "$D/cmp/rauhad.sock" "$@"; }
ctr_() { ctr --address "$D/ctrd/c.sock" "$@"; }
cleanup() {
  set +e
  local id
  if [ -n "$CTRD_PID" ]; then
    for id in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks delete -f "$id" >/dev/null 2>&1; done
    for id in $(ctr_ containers ls -q 2>/dev/null); do ctr_ containers delete "$id" >/dev/null 2>&1; done
    kill -TERM "$CTRD_PID" 2>/dev/null
    wait "$CTRD_PID" 2>/dev/null
    rm -rf /run/containerd/runc/default
    if [ "$RUN_CONTAINERD_EXISTED" = 0 ]; then
      rmdir /run/containerd/runc /run/containerd/s /run/containerd 2>/dev/null
    fi
  fi
  for id in $(runc --root "$D/runc" list -q 2>/dev/null); do runc --root "$D/runc" delete -f "$id"; done
  if [ -n "$HOLDER_PID" ]; then kill -TERM "$HOLDER_PID" 2>/dev/null; wait "$HOLDER_PID" 2>/dev/null; fi
  [ -n "$DAEMON_PID" ] && stop_rauhad "$DAEMON_PID"
  [ -n "$COMPARE_PID" ] && stop_rauhad "$COMPARE_PID"
  # ctr's --cgroup and runc's default cgroups, named after this run.
  find /sys/fs/cgroup -depth -type d -name "*$TAG*" -exec rmdir {} \; 2>/dev/null
  rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

CONTENDERS=(rauha_run rauha_sandbox rauha_run_grpc rauha_run_cmp rauha_sandbox_cmp ctr_runc runc crun)
declare -A LABEL=(
  [rauha_run]="rauha run --rm IMG true"
  [rauha_sandbox]="rauha sandbox -- true (no image)"
  [rauha_run_grpc]="rauha run --rm IMG true, gRPC"
  [rauha_run_cmp]="--compare: rauha run --rm"
  [rauha_sandbox_cmp]="--compare: rauha sandbox"
  [ctr_runc]="ctr run --rm IMG true (runc)"
  [runc]="runc run (bundle)"
  [crun]="crun run (bundle)"
)
declare -A NEEDS=([rauha_run]="" [rauha_sandbox]="" [rauha_run_grpc]="" [rauha_run_cmp]="" [rauha_sandbox_cmp]="" [ctr_runc]="containerd ctr containerd-shim-runc-v2 runc"
  [runc]="runc" [crun]="crun nsenter unshare")
declare -A STATE SAMPLES
for c in "${CONTENDERS[@]}"; do
  STATE[$c]=ok
  SAMPLES[$c]=""
  for bin in ${NEEDS[$c]}; do command -v "$bin" >/dev/null || STATE[$c]="not installed ($bin)"; done
done
if [ -z "$COMPARE" ]; then STATE[rauha_run_cmp]="no --compare"; STATE[rauha_sandbox_cmp]="no --compare"; fi
if [ "$PEERS" = 0 ]; then for c in ctr_runc runc crun; do STATE[$c]="--no-peers"; done; fi

# --- the image: one uncompressed layer of static busybox, as an OCI layout archive -----------
w="$D/image"
mkdir -p "$w/layer/bin" "$w/oci/blobs/sha256"
cp "$(command -v busybox)" "$w/layer/bin/busybox"
for app in true sleep sh; do ln -s busybox "$w/layer/bin/$app"; done
tar -C "$w/layer" --numeric-owner --owner=0 --group=0 -cf "$w/layer.tar" bin
blob() { local s; s=$(sha256sum "$1" | cut -d' ' -f1); mv "$1" "$w/oci/blobs/sha256/$s"; echo "$s"; }
size() { stat -c %s "$w/oci/blobs/sha256/$1"; }
layer=$(blob "$w/layer.tar")
printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$layer" >"$w/config.json"
cfg=$(blob "$w/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%d}]}' \
  "$cfg" "$(size "$cfg")" "$layer" "$(size "$layer")" >"$w/manifest.json"
man=$(blob "$w/manifest.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' \
  "$man" "$(size "$man")" >"$w/oci/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$w/oci/oci-layout"
tar -C "$w/oci" -cf "$D/image.tar" oci-layout index.json blobs

# --- rauhad --------------------------------------------------------------------------------
start_rauhad "$RAUHAD" "$SHIM" "$D" "$TAG"
MAIN_PID=$DAEMON_PID
rauha image import "$D/image.tar" --tag localhost/busybox:latest >/dev/null
if [ -n "$COMPARE" ]; then
  start_rauhad "$COMPARE/rauhad/rauhad" "$COMPARE/rauha-shim/rauha-shim" "$D/cmp" "$TAG-cmp" ||
    { DAEMON_PID=$MAIN_PID; exit 1; }
  COMPARE_PID=$DAEMON_PID
  DAEMON_PID=$MAIN_PID
  rauha_cmp image import "$D/image.tar" --tag localhost/busybox:latest >/dev/null
fi

# --- containerd (private: its own root, state and socket; CRI disabled) --------------------
if [ "${STATE[ctr_runc]}" = ok ]; then
  mkdir -p "$D/ctrd"
  cat >"$D/ctrd/config.toml" <<CONF
version = 2
root = "$D/ctrd/root"
state = "$D/ctrd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$D/ctrd/c.sock"
CONF
  containerd --config "$D/ctrd/config.toml" >"$D/ctrd/log" 2>&1 &
  CTRD_PID=$!
  for ((t = 0; t < 200; t++)); do ctr_ version >/dev/null 2>&1 && break; sleep 0.05; done
  ctr_ version >/dev/null 2>&1 || { echo "run_rm.sh: containerd did not start:" >&2; cat "$D/ctrd/log" >&2; exit 1; }
  ctr_ images import --base-name localhost/busybox "$D/image.tar" >/dev/null
fi

# --- bundles for runc and crun --------------------------------------------------------------
BUNDLE="$D/bundle"
if [ "${STATE[runc]}" = ok ] || [ "${STATE[crun]}" = ok ]; then
  make_busybox_bundle "$BUNDLE"
  mkdir -p "$D/runc" "$D/crun"
fi
[ "${STATE[crun]}" = ok ] && start_cgroup_ns_holder "$D"

SEQ=0
run_rauha_run() { rauha run --rm localhost/busybox:latest /bin/busybox true; }
run_rauha_sandbox() { rauha sandbox -- /bin/busybox true >/dev/null; }
run_rauha_run_grpc() { RAUHA_NO_FAST_PATH=1 rauha run --rm localhost/busybox:latest /bin/busybox true; }
run_rauha_run_cmp() { rauha_cmp run --rm localhost/busybox:latest /bin/busybox true; }
run_rauha_sandbox_cmp() { rauha_cmp sandbox -- /bin/busybox true >/dev/null; }
run_ctr_runc() {
  SEQ=$((SEQ + 1))
  ctr_ run --rm --null-io --runtime io.containerd.runc.v2 --cgroup "$TAG-ctr-$SEQ" \
    localhost/busybox:latest "$TAG-ctr-$SEQ" /bin/true
}
run_runc() {
  SEQ=$((SEQ + 1))
  runc --root "$D/runc" run --bundle "$BUNDLE" "$TAG-runc-$SEQ" </dev/null
}
run_crun() {
  SEQ=$((SEQ + 1))
  nsenter -t "$HOLDER_PID" -m -C crun --root "$D/crun" run --bundle "$BUNDLE" "$TAG-crun-$SEQ" </dev/null
}
sample() {
  local c=$1 t0 t1
  t0=${EPOCHREALTIME/./}
  "run_$c" >/dev/null 2>"$D/err" || { echo "run_rm.sh: $c failed: $(cat "$D/err")" >&2; exit 1; }
  t1=${EPOCHREALTIME/./}
  SAMPLES[$c]+="$((t1 - t0)) "
}
ACTIVE=()
for c in "${CONTENDERS[@]}"; do [ "${STATE[$c]}" = ok ] && ACTIVE+=("$c"); done
# Untimed warm-up: page cache, the image's unpacked layer, containerd's snapshot.
for c in "${ACTIVE[@]}"; do sample "$c"; SAMPLES[$c]=""; done
k=${#ACTIVE[@]}
for ((i = 0; i < N; i++)); do
  for ((j = 0; j < k; j++)); do sample "${ACTIVE[$(((i + j) % k))]}"; done
done

echo "# run --rm IMAGE /bin/true, cached image, interleaved, n=$N; $(date -u +%Y-%m-%dT%H:%MZ); kernel $(uname -r); load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-34s %4s %10s %10s\n' contender n "median ms" "p95 ms"
declare -A MED
for c in "${CONTENDERS[@]}"; do
  if [ "${STATE[$c]}" != ok ]; then
    printf '%-34s %s\n' "${LABEL[$c]}" "${STATE[$c]}"
    continue
  fi
  read -r n med p95 <<<"$(summarize_us ${SAMPLES[$c]})"
  MED[$c]=$med
  printf '%-34s %4s %10s %10s\n' "${LABEL[$c]}" "$n" "$med" "$p95"
done
awk -v a="${MED[rauha_run]}" -v b="${MED[rauha_sandbox]}" \
  'BEGIN { printf "rauha run --rm - no-image sandbox, medians: %+.1f ms\n", a - b }'
if [ -n "$COMPARE" ]; then
  awk -v a="${MED[rauha_run_cmp]}" -v b="${MED[rauha_sandbox_cmp]}" \
    'BEGIN { printf "--compare: rauha run --rm - no-image sandbox, medians: %+.1f ms\n", a - b }'
fi

# Every --rm container is gone, with its zone.
left=$(rauha ps -a --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$left" -eq 0 ] || { echo "run_rm.sh: $left containers left in rauhad" >&2; exit 1; }
if [ -n "$COMPARE" ]; then
  left=$(rauha_cmp ps -a --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
  [ "$left" -eq 0 ] || { echo "run_rm.sh: $left containers left in the --compare rauhad" >&2; exit 1; }
fi
