#!/usr/bin/env bash
# Start-up latency: wall-clock from "start /bin/true in an isolated environment" to "it has
# exited and we know", for rauha and the peers installed on this machine, measured
# interleaved (one sample of every contender per round, the order rotated each round) so that
# drift in the machine's load hits every contender alike.
#
#   eval/bench/startup.sh [-n N] [--tmpfs-run-dir] [--build-dir DIR]      (as root)
#
# rauha is measured twice, from the command line and as the bare RunSandbox call: against a
# rauhad with its warm zone pool (the default, --warm-zones 2) and against one without
# (--warm-zones 0). The pooled CLI row is taken once more with RAUHA_NO_FAST_PATH=1 (the call
# over gRPC instead of rauhad's ttrpc endpoint). The CLI's floor (`rauha --help`, `rauha
# version` without a daemon) has rows of its own, and so has the fast path's transport: an
# empty ttrpc call on a fresh connection to the pooled rauhad's endpoint (ttrpc_bench).
#
# --tmpfs-run-dir: the rauhads' run dirs (zone dirs, shim sockets, task files) and runc's and
# crun's state dirs go on a private tmpfs the script mounts in its temp dir (as /run is on a
# stock host) instead of /tmp; the state dirs (database, audit log) stay on disk. The header
# line says which file system the run dirs were on.
#
# Prints one table: contender, n, median ms, p95 ms, notes. A contender whose binary is missing
# gets a "not installed" row; a contender that fails gets a FAILED row, and the script then
# exits 1. Everything it creates (a private rauhad, bundles, runc/crun state, cgroups) is
# removed at the end and checked for.
set -euo pipefail

N=41
RUN_DIR_KIND=disk
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD="$REPO/build"
source "$REPO/eval/bench/lib.sh"
parse_bench_args "${BASH_SOURCE[0]}" -n=N --tmpfs-run-dir:RUN_DIR_KIND=tmpfs -- "$@"
require_root startup.sh "namespaces, cgroups, rauhad"

RAUHAD="$BUILD/rauhad/rauhad"
SHIM="$BUILD/rauha-shim/rauha-shim"
CLI="$BUILD/rauha-cli/rauha"
RPC_BENCH="$BUILD/eval/runsandbox_bench"
TTRPC_BENCH="$BUILD/eval/ttrpc_bench"
require_built startup.sh "$BUILD" "rauhad rauha-shim rauha runsandbox_bench ttrpc_bench" \
  "$RAUHAD" "$SHIM" "$CLI" "$RPC_BENCH" "$TTRPC_BENCH"

TAG="rauha-bench-$$"
D=$(mktemp -d "/tmp/$TAG-XXXXXX")
DP="$D/pooled" # the rauhad with its warm pool; $D itself holds the one without
DAEMON_PID=""
POOLED_PID=""
HOLDER_PID=""
declare -A RPC_CHILD RPC_IN RPC_OUT

cleanup() {
  set +e
  local r
  for r in "${!RPC_CHILD[@]}"; do
    eval "exec ${RPC_IN[$r]}>&-" 2>/dev/null
    wait "${RPC_CHILD[$r]}" 2>/dev/null
  done
  [ -n "$HOLDER_PID" ] && { kill "$HOLDER_PID"; wait "$HOLDER_PID"; } 2>/dev/null
  [ -n "$DAEMON_PID" ] && stop_rauhad "$DAEMON_PID"
  [ -n "$POOLED_PID" ] && stop_rauhad "$POOLED_PID"
  # Containers of a failed run: runc/crun "run" deletes its container when it exits; this is
  # for a run that was interrupted.
  for id in $(runc --root "$D/runc" list -q 2>/dev/null); do runc --root "$D/runc" delete -f "$id"; done
  unmount_bench_tmpfs
  rm -rf --one-file-system "$D"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- contenders ------------------------------------------------------------------------------
# Each run_X runs one sample and returns its status; its stderr goes to $D/err.
if [ "$RUN_DIR_KIND" = tmpfs ]; then
  mount_bench_tmpfs "$D" run pooled/run runc crun
fi
BUNDLE="$D/bundle"
make_busybox_bundle "$BUNDLE"

run_rauha_cli() { "$CLI" --socket "$D/rauhad.sock" sandbox -- /bin/true >/dev/null; }
run_rauha_cli_pool() { "$CLI" --socket "$DP/rauhad.sock" sandbox -- /bin/true >/dev/null; }
run_rauha_cli_pool_grpc() {
  RAUHA_NO_FAST_PATH=1 "$CLI" --socket "$DP/rauhad.sock" sandbox -- /bin/true >/dev/null
}
run_rauha_help() { "$CLI" --help >/dev/null; }
run_rauha_version() { "$CLI" --socket "$D/no-such.sock" version >/dev/null; }
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

CONTENDERS=(rauha_cli_pool rauha_cli_pool_grpc rauha_rpc_pool rauha_ttrpc_pool rauha_cli rauha_rpc rauha_help
  rauha_version bwrap unshare runc crun)
declare -A LABEL=(
  [rauha_cli_pool]="rauha sandbox, warm pool"
  [rauha_cli_pool_grpc]="rauha sandbox (gRPC), pool"
  [rauha_rpc_pool]="RunSandbox call, warm pool"
  [rauha_ttrpc_pool]="empty ttrpc call"
  [rauha_cli]="rauha sandbox, no pool"
  [rauha_rpc]="RunSandbox call, no pool"
  [rauha_help]="rauha --help"
  [rauha_version]="rauha version (no rauhad)"
  [bwrap]="bwrap --unshare-all"
  [unshare]="unshare -mpniu --fork chroot"
  [runc]="runc run"
  [crun]="crun run"
)
declare -A NOTE=(
  [rauha_cli_pool]="CLI process included; rauhad --warm-zones 2 (the default): a zone made ahead, deleted after the call"
  [rauha_cli_pool_grpc]="the same with RAUHA_NO_FAST_PATH=1: the CLI calls over gRPC instead of rauhad's ttrpc endpoint"
  [rauha_rpc_pool]="in-process latency of one RPC on a connected channel (runsandbox_bench); warm pool"
  [rauha_ttrpc_pool]="connect, one call rauhad refuses at once, close (ttrpc_bench): the fast path's transport"
  [rauha_cli]="CLI process included; rauhad --warm-zones 0: the call makes and removes its temporary zone"
  [rauha_rpc]="in-process latency of one RPC on a connected channel (runsandbox_bench); no pool"
  [rauha_help]="the CLI's floor: process start, static initialisers, argument parsing"
  [rauha_version]="the CLI's floor with a command: finds no socket, prints its own version"
  [bwrap]="ro-bind /usr, own /proc and /dev, all namespaces"
  [unshare]="busybox rootfs, no cgroups, no /proc mount"
  [runc]="busybox bundle from 'runc spec'; run = create+start+wait+delete; cgroups below ours"
  [crun]="same bundle; via nsenter into a mount+cgroup ns with cgroup2 unmounted and v1 remounted at our cgroup (crun refuses hybrid cgroups); nsenter exec included"
)
declare -A NEEDS=([rauha_cli]="" [rauha_rpc]="" [rauha_cli_pool]="" [rauha_cli_pool_grpc]=""
  [rauha_rpc_pool]="" [rauha_ttrpc_pool]="" [rauha_help]="" [rauha_version]="" [bwrap]=bwrap [unshare]="unshare chroot"
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
start_rauhad "$RAUHAD" "$SHIM" "$DP" "$TAG-pool"
POOLED_PID=$DAEMON_PID
start_rauhad "$RAUHAD" "$SHIM" "$D" "$TAG" --warm-zones 0
wait_warm_pool "$DP" 2

if [ "${STATE[crun]}" = ok ]; then
  start_cgroup_ns_holder "$D"
fi

# Each RPC contender is a runsandbox_bench --serve behind two FIFOs: one line in, one latency
# (ns) out.
start_rpc() {
  local name=$1 sock=$2 bench=${3:-$RPC_BENCH} fd_in fd_out
  mkfifo "$D/$name.in" "$D/$name.out"
  # Without the script's ends of the earlier coprocesses' FIFOs: a child holding another's
  # input open would keep it from seeing EOF at the end, and the wait for it would hang.
  (
    for fd in "${RPC_IN[@]}" "${RPC_OUT[@]}"; do eval "exec $fd>&-"; done
    exec "$bench" --socket "$sock" --serve <"$D/$name.in" >"$D/$name.out" 2>"$D/$name.err"
  ) &
  RPC_CHILD[$name]=$!
  exec {fd_in}>"$D/$name.in" {fd_out}<"$D/$name.out"
  RPC_IN[$name]=$fd_in
  RPC_OUT[$name]=$fd_out
}
rpc_call() {
  local name=$1 ns
  # Checked first: writing to a dead server would SIGPIPE this script.
  if ! kill -0 "${RPC_CHILD[$name]}" 2>/dev/null ||
    ! { echo go >&"${RPC_IN[$name]}" && read -r ns <&"${RPC_OUT[$name]}"; } 2>/dev/null; then
    cat "$D/$name.err" >&2
    return 1
  fi
  RPC_NS=$ns
}
start_rpc rpc "$D/rauhad.sock"
start_rpc rpc_pool "$DP/rauhad.sock"
start_rpc ttrpc_pool "$DP/rauhad.sock.ttrpc" "$TTRPC_BENCH"
run_rauha_rpc() { rpc_call rpc; }
run_rauha_rpc_pool() { rpc_call rpc_pool; }
run_rauha_ttrpc_pool() { rpc_call ttrpc_pool; }

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
  case $c in rauha_rpc | rauha_rpc_pool | rauha_ttrpc_pool) us=$((RPC_NS / 1000)) ;; esac
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
echo "# start-up of /bin/true, interleaved, n=$N per contender; $(date -u +%Y-%m-%dT%H:%MZ); kernel $(uname -r); run dirs on $(fs_type "$D/run")$([ "$RUN_DIR_KIND" = tmpfs ] && echo " (--tmpfs-run-dir; runc/crun state too)"), state dirs on $(fs_type "$D/state")"
printf '%-30s %4s %10s %10s  %s\n' contender n "median ms" "p95 ms" notes
for c in "${CONTENDERS[@]}"; do
  if [ "${STATE[$c]}" = ok ]; then
    decimals=1
    [ "$c" = rauha_ttrpc_pool ] && decimals=3 # a tenth of a millisecond or less
    read -r n med p95 <<<"$(summarize_us -d "$decimals" ${SAMPLES[$c]})"
    printf '%-30s %4s %10s %10s  %s\n' "${LABEL[$c]}" "$n" "$med" "$p95" "${NOTE[$c]}"
  else
    [[ "${STATE[$c]}" == FAILED* ]] && failed=1
    printf '%-30s %4s %10s %10s  %s\n' "${LABEL[$c]}" - - - "${STATE[$c]}"
  fi
done

# --- leave nothing behind --------------------------------------------------------------------
for r in "${!RPC_CHILD[@]}"; do
  eval "exec ${RPC_IN[$r]}>&-"
  wait "${RPC_CHILD[$r]}" || { echo "startup.sh: the $r coprocess failed: $(cat "$D/$r.err")" >&2; failed=1; }
  unset "RPC_CHILD[$r]"
done
if [ -n "$HOLDER_PID" ]; then
  kill "$HOLDER_PID"
  wait "$HOLDER_PID" 2>/dev/null || true # killed by our SIGTERM: status 143
  HOLDER_PID=""
fi
stop_rauhad "$DAEMON_PID"
DAEMON_PID=""
stop_rauhad "$POOLED_PID"
POOLED_PID=""
# How many of the pooled contenders' calls (warm-ups included) the pool served: a call that
# found it empty took the no-pool path, which shows in the pooled rows' medians.
grep -h "warm pool stopped" "$DP/rauhad.log" | sed 's/^rauhad: /# pooled rauhad: /'
left=$(runc --root "$D/runc" list -q; runc list -q 2>/dev/null | grep -F "$TAG" || true;
  ls "$D/crun" ; find /sys/fs/cgroup -name "*$TAG*")
unmount_bench_tmpfs || failed=1
mounts=$(grep -F "$D" /proc/self/mountinfo || true)
if [ -n "$mounts" ]; then left+=" mounts: $mounts"; fi
if [ -n "$left" ]; then
  echo "startup.sh: left behind: $left" >&2
  failed=1
fi
exit "$failed"
