#!/usr/bin/env bash
# Start-up latency: wall-clock from "start /bin/true in an isolated environment" to "it has
# exited and we know", for rauha and the peers installed on this machine, measured
# interleaved (one sample of every contender per round, the order rotated each round) so that
# drift in the machine's load hits every contender alike.
#
#   eval/bench/startup.sh [-n N] [--build-dir DIR]      (as root)
#
# Prints one table: contender, n, median ms, p95 ms, notes. A contender whose binary is missing
# gets a "not installed" row; a contender that fails gets a FAILED row, and the script then
# exits 1. Everything it creates (a private rauhad, bundles, runc/crun state, cgroups) is
# removed at the end and checked for.
set -euo pipefail

N=41
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD="$REPO/build"
while [ $# -gt 0 ]; do
  case "$1" in
    -n) N="$2"; shift 2 ;;
    --build-dir) BUILD="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "startup.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
[[ "$N" =~ ^[1-9][0-9]*$ ]] || { echo "startup.sh: -n wants a positive integer" >&2; exit 2; }
source "$REPO/eval/bench/lib.sh"
require_root startup.sh "namespaces, cgroups, rauhad"

RAUHAD="$BUILD/rauhad/rauhad"
SHIM="$BUILD/rauha-shim/rauha-shim"
CLI="$BUILD/rauha-cli/rauha"
RPC_BENCH="$BUILD/eval/runsandbox_bench"
require_built startup.sh "$BUILD" "rauhad rauha-shim rauha runsandbox_bench" \
  "$RAUHAD" "$SHIM" "$CLI" "$RPC_BENCH"

TAG="rauha-bench-$$"
D=$(mktemp -d "/tmp/$TAG-XXXXXX")
DAEMON_PID=""
HOLDER_PID=""
RPC_CHILD=""
RPC_IN=""
RPC_OUT=""

cleanup() {
  set +e
  if [ -n "$RPC_CHILD" ]; then
    eval "exec $RPC_IN>&-" 2>/dev/null
    wait "$RPC_CHILD" 2>/dev/null
  fi
  [ -n "$HOLDER_PID" ] && { kill "$HOLDER_PID"; wait "$HOLDER_PID"; } 2>/dev/null
  [ -n "$DAEMON_PID" ] && stop_rauhad "$DAEMON_PID"
  # Containers of a failed run: runc/crun "run" deletes its container when it exits; this is
  # for a run that was interrupted.
  for id in $(runc --root "$D/runc" list -q 2>/dev/null); do runc --root "$D/runc" delete -f "$id"; done
  rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- contenders ------------------------------------------------------------------------------
# Each run_X runs one sample and returns its status; its stderr goes to $D/err.
BUNDLE="$D/bundle"
make_busybox_bundle "$BUNDLE"

run_rauha_cli() { "$CLI" --socket "$D/rauhad.sock" sandbox -- /bin/true >/dev/null; }
run_bwrap() {
  bwrap --unshare-all --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib \
    --symlink usr/lib64 /lib64 --proc /proc --dev /dev /bin/true
}
run_unshare() { unshare --mount --pid --net --ipc --uts --fork chroot "$BUNDLE/rootfs" /bin/true; }
SEQ=0
run_runc() { SEQ=$((SEQ + 1)); runc --root "$D/runc" run --bundle "$BUNDLE" "$TAG-runc-$SEQ" </dev/null; }
run_crun() {
  SEQ=$((SEQ + 1))
  nsenter -t "$HOLDER_PID" -m -C crun --root "$D/crun" run --bundle "$BUNDLE" "$TAG-crun-$SEQ" </dev/null
}

CONTENDERS=(rauha_cli rauha_rpc bwrap unshare runc crun)
declare -A LABEL=(
  [rauha_cli]="rauha sandbox -- /bin/true"
  [rauha_rpc]="RunSandbox gRPC call"
  [bwrap]="bwrap --unshare-all"
  [unshare]="unshare -mpniu --fork chroot"
  [runc]="runc run"
  [crun]="crun run"
)
declare -A NOTE=(
  [rauha_cli]="CLI process included; fresh temporary zone each run; default policy (standard)"
  [rauha_rpc]="in-process latency of one RPC on a connected channel (runsandbox_bench); fresh temporary zone"
  [bwrap]="ro-bind /usr, own /proc and /dev, all namespaces"
  [unshare]="busybox rootfs, no cgroups, no /proc mount"
  [runc]="busybox bundle from 'runc spec'; run = create+start+wait+delete; cgroups below ours"
  [crun]="same bundle; via nsenter into a mount+cgroup ns with cgroup2 unmounted and v1 remounted at our cgroup (crun refuses hybrid cgroups); nsenter exec included"
)
declare -A NEEDS=([rauha_cli]="" [rauha_rpc]="" [bwrap]=bwrap [unshare]="unshare chroot"
  [runc]=runc [crun]="crun nsenter")
declare -A STATE SAMPLES

for c in "${CONTENDERS[@]}"; do
  STATE[$c]=ok
  SAMPLES[$c]=""
  for bin in ${NEEDS[$c]}; do
    command -v "$bin" >/dev/null || STATE[$c]="not installed ($bin)"
  done
done

# --- set-up ----------------------------------------------------------------------------------
mkdir -p "$D/runc" "$D/crun"
start_rauhad "$RAUHAD" "$SHIM" "$D" "$TAG"

if [ "${STATE[crun]}" = ok ]; then
  start_cgroup_ns_holder "$D"
fi

# The RPC contender lives as a coprocess: one line in, one latency (ns) out.
coproc RPC { exec "$RPC_BENCH" --socket "$D/rauhad.sock" --serve 2>"$D/rpc.err"; }
RPC_CHILD=$RPC_PID
RPC_IN=${RPC[1]}
RPC_OUT=${RPC[0]}
run_rauha_rpc() {
  local ns
  # Checked first: writing to a dead coprocess would SIGPIPE this script.
  if ! kill -0 "$RPC_CHILD" 2>/dev/null ||
    ! { echo go >&"$RPC_IN" && read -r ns <&"$RPC_OUT"; } 2>/dev/null; then
    cat "$D/rpc.err" >&2
    return 1
  fi
  RPC_NS=$ns
}

# One sample of contender $1; appends µs to SAMPLES, or marks the contender FAILED.
sample() {
  local c=$1 t0 t1 us
  [ "${STATE[$c]}" = ok ] || return 0
  t0=${EPOCHREALTIME/./}
  if ! "run_$c" 2>"$D/err"; then
    STATE[$c]="FAILED: $(tr '\n' ' ' <"$D/err" | cut -c1-200)"
    echo "startup.sh: $c failed: $(cat "$D/err")" >&2
    return 0
  fi
  t1=${EPOCHREALTIME/./}
  us=$((t1 - t0))
  if [ "$c" = rauha_rpc ]; then us=$((RPC_NS / 1000)); fi
  SAMPLES[$c]+="$us "
}

# --- measure ---------------------------------------------------------------------------------
# One untimed warm-up of each (page cache, the coprocess's first call).
for c in "${CONTENDERS[@]}"; do
  sample "$c"
  SAMPLES[$c]=""
done
k=${#CONTENDERS[@]}
for ((i = 0; i < N; i++)); do
  for ((j = 0; j < k; j++)); do
    sample "${CONTENDERS[$(((i + j) % k))]}"
  done
done

# --- report ----------------------------------------------------------------------------------
failed=0
echo "# start-up of /bin/true, interleaved, n=$N per contender; $(date -u +%Y-%m-%dT%H:%MZ); kernel $(uname -r)"
printf '%-30s %4s %10s %10s  %s\n' contender n "median ms" "p95 ms" notes
for c in "${CONTENDERS[@]}"; do
  if [ "${STATE[$c]}" = ok ]; then
    read -r n med p95 <<<"$(summarize_us ${SAMPLES[$c]})"
    printf '%-30s %4s %10s %10s  %s\n' "${LABEL[$c]}" "$n" "$med" "$p95" "${NOTE[$c]}"
  else
    [[ "${STATE[$c]}" == FAILED* ]] && failed=1
    printf '%-30s %4s %10s %10s  %s\n' "${LABEL[$c]}" - - - "${STATE[$c]}"
  fi
done

# --- leave nothing behind --------------------------------------------------------------------
eval "exec $RPC_IN>&-"
wait "$RPC_CHILD" || { echo "startup.sh: runsandbox_bench failed: $(cat "$D/rpc.err")" >&2; failed=1; }
RPC_CHILD=""
kill "$HOLDER_PID"
wait "$HOLDER_PID" 2>/dev/null || true # killed by our SIGTERM: status 143
HOLDER_PID=""
stop_rauhad "$DAEMON_PID"
DAEMON_PID=""
left=$(runc --root "$D/runc" list -q; runc list -q 2>/dev/null | grep -F "$TAG" || true;
  ls "$D/crun" ; find /sys/fs/cgroup -name "*$TAG*")
if [ -n "$left" ]; then
  echo "startup.sh: left behind: $left" >&2
  failed=1
fi
exit "$failed"
