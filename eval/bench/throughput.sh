#!/usr/bin/env bash
# Throughput: N clients in parallel, each starting /bin/true M times one after another, for
# rauha and the peers run the same way. Per contender: sandboxes per second (N*M over the
# wall-clock of the whole run) and the latency of single starts (p50, p99 by nearest rank).
#
#   eval/bench/throughput.sh [-c CLIENTS] [-m PER_CLIENT] [--tmpfs-run-dir] [--build-dir DIR]
#                                                                                   (as root)
#
# Contenders run one after another (not interleaved: each saturates the machine), after one
# untimed warm-up start each. rauha runs against two private rauhads, one with its warm pool
# (the default, --warm-zones 2) and one without (--warm-zones 0), both as the CLI
# (`rauha sandbox -- /bin/true`, a process per start) and as RunSandbox calls (N
# runsandbox_bench processes, each one connected channel, M calls). A contender that fails
# gets a FAILED row and the script exits 1; so does anything left behind.
#
# --tmpfs-run-dir: the rauhads' run dirs (zone dirs, shim sockets, task files) and runc's state
# dir go on a private tmpfs the script mounts in its temp dir (as /run is on a stock host)
# instead of /tmp; the state dirs (database, audit log) stay on disk. The header line says
# which file system the run dirs were on.
set -euo pipefail

CLIENTS=8
PER=25
RUN_DIR_KIND=disk
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD="$REPO/build"
source "$REPO/eval/bench/lib.sh"
parse_bench_args "${BASH_SOURCE[0]}" -c=CLIENTS -m=PER --tmpfs-run-dir:RUN_DIR_KIND=tmpfs -- "$@"
require_root throughput.sh "namespaces, cgroups, rauhad"

RAUHAD="$BUILD/rauhad/rauhad"
SHIM="$BUILD/rauha-shim/rauha-shim"
CLI="$BUILD/rauha-cli/rauha"
RPC_BENCH="$BUILD/eval/runsandbox_bench"
require_built throughput.sh "$BUILD" "rauhad rauha-shim rauha runsandbox_bench" \
  "$RAUHAD" "$SHIM" "$CLI" "$RPC_BENCH"

TAG="rauha-bench-$$"
D=$(mktemp -d "/tmp/$TAG-XXXXXX")
DP="$D/pooled"
DAEMON_PID=""
POOLED_PID=""

cleanup() {
  set +e
  [ -n "$DAEMON_PID" ] && stop_rauhad "$DAEMON_PID"
  [ -n "$POOLED_PID" ] && stop_rauhad "$POOLED_PID"
  for id in $(runc --root "$D/runc" list -q 2>/dev/null); do runc --root "$D/runc" delete -f "$id"; done
  unmount_bench_tmpfs
  rm -rf --one-file-system "$D"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "$RUN_DIR_KIND" = tmpfs ]; then
  mount_bench_tmpfs "$D" run pooled/run runc
fi
BUNDLE="$D/bundle"
make_busybox_bundle "$BUNDLE"
mkdir -p "$D/runc"
start_rauhad "$RAUHAD" "$SHIM" "$DP" "$TAG-pool"
POOLED_PID=$DAEMON_PID
start_rauhad "$RAUHAD" "$SHIM" "$D" "$TAG" --warm-zones 0
wait_warm_pool "$DP" 2

# one_X CLIENT SEQ: one start; its status is the contender's.
one_rauha_cli_pool() { "$CLI" --socket "$DP/rauhad.sock" sandbox -- /bin/true >/dev/null; }
one_rauha_cli() { "$CLI" --socket "$D/rauhad.sock" sandbox -- /bin/true >/dev/null; }
one_bwrap() {
  bwrap --unshare-all --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib \
    --symlink usr/lib64 /lib64 --proc /proc --dev /dev /bin/true
}
one_runc() { runc --root "$D/runc" run --bundle "$BUNDLE" "$TAG-runc-$1-$2" </dev/null; }

# shell_client NAME CLIENT: M starts of one_NAME, one latency (µs) per line.
shell_client() {
  local name=$1 client=$2 j t0 t1
  for ((j = 0; j < PER; j++)); do
    t0=${EPOCHREALTIME/./}
    "one_$name" "$client" "$j" || return 1
    t1=${EPOCHREALTIME/./}
    echo $((t1 - t0))
  done
}

# rpc_client SOCKET: M RunSandbox calls on one channel, one latency (µs) per line.
rpc_client() {
  "$RPC_BENCH" --socket "$1" --count "$PER" | awk '{ printf "%d\n", $1 / 1000 }'
  return "${PIPESTATUS[0]}"
}

# run_contender NAME: N clients at once; prints "n per_s p50_ms p99_ms" or fails.
run_contender() {
  local name=$1 i pids=() t0 t1 failed=0
  rm -f "$D"/lat.*
  t0=${EPOCHREALTIME/./}
  for ((i = 0; i < CLIENTS; i++)); do
    case "$name" in
      rauha_rpc_pool) rpc_client "$DP/rauhad.sock" >"$D/lat.$i" 2>"$D/err.$i" & ;;
      rauha_rpc) rpc_client "$D/rauhad.sock" >"$D/lat.$i" 2>"$D/err.$i" & ;;
      *) shell_client "$name" "$i" >"$D/lat.$i" 2>"$D/err.$i" & ;;
    esac
    pids+=($!)
  done
  for i in "${!pids[@]}"; do wait "${pids[$i]}" || failed=1; done
  t1=${EPOCHREALTIME/./}
  if [ "$failed" = 1 ]; then
    cat "$D"/err.* >&2
    return 1
  fi
  cat "$D"/lat.* | sort -n | awk -v us=$((t1 - t0)) '
    { v[NR] = $1 }
    END {
      n = NR
      r50 = int(0.50 * n); if (r50 < 0.50 * n) r50++
      r99 = int(0.99 * n); if (r99 < 0.99 * n) r99++
      printf "%d %.1f %.1f %.1f\n", n, n / (us / 1e6), v[r50] / 1000, v[r99] / 1000
    }'
}

CONTENDERS=(rauha_rpc_pool rauha_rpc rauha_cli_pool rauha_cli bwrap runc)
declare -A LABEL=(
  [rauha_rpc_pool]="RunSandbox calls, warm pool"
  [rauha_rpc]="RunSandbox calls, no pool"
  [rauha_cli_pool]="rauha sandbox, warm pool"
  [rauha_cli]="rauha sandbox, no pool"
  [bwrap]="bwrap --unshare-all"
  [runc]="runc run"
)
declare -A NEEDS=([bwrap]=bwrap [runc]=runc)

failed=0
echo "# $CLIENTS clients x $PER starts of /bin/true each; $(date -u +%Y-%m-%dT%H:%MZ); kernel $(uname -r); $(nproc) CPUs; load average $(cut -d' ' -f1 /proc/loadavg) at the start; run dirs on $(fs_type "$D/run")$([ "$RUN_DIR_KIND" = tmpfs ] && echo " (--tmpfs-run-dir; runc state too)"), state dirs on $(fs_type "$D/state")"
printf '%-30s %6s %8s %9s %9s\n' contender n "per s" "p50 ms" "p99 ms"
for c in "${CONTENDERS[@]}"; do
  if [ -n "${NEEDS[$c]:-}" ] && ! command -v "${NEEDS[$c]}" >/dev/null; then
    printf '%-30s %6s %8s %9s %9s  not installed\n' "${LABEL[$c]}" - - - -
    continue
  fi
  # Warm-up: one untimed start (page cache; the pool refills before the run).
  case "$c" in
    rauha_rpc_pool) "$RPC_BENCH" --socket "$DP/rauhad.sock" --count 1 >/dev/null 2>"$D/err" ;;
    rauha_rpc) "$RPC_BENCH" --socket "$D/rauhad.sock" --count 1 >/dev/null 2>"$D/err" ;;
    *) "one_$c" w 0 2>"$D/err" ;;
  esac || { printf '%-30s FAILED: %s\n' "${LABEL[$c]}" "$(tr '\n' ' ' <"$D/err" | cut -c1-200)"; failed=1; continue; }
  if [ "$c" = rauha_rpc_pool ] || [ "$c" = rauha_cli_pool ]; then wait_warm_pool "$DP" 2; fi
  if out=$(run_contender "$c" 2>"$D/err"); then
    read -r n per p50 p99 <<<"$out"
    printf '%-30s %6s %8s %9s %9s\n' "${LABEL[$c]}" "$n" "$per" "$p50" "$p99"
  else
    printf '%-30s FAILED: %s\n' "${LABEL[$c]}" "$(tr '\n' ' ' <"$D/err" | cut -c1-200)"
    failed=1
  fi
done

stop_rauhad "$DAEMON_PID"
DAEMON_PID=""
stop_rauhad "$POOLED_PID"
POOLED_PID=""
# How many of the pooled contenders' calls (warm-ups included) the pool served.
grep -h "warm pool stopped" "$DP/rauhad.log" | sed 's/^rauhad: /# pooled rauhad: /'
left=$(runc --root "$D/runc" list -q; find /sys/fs/cgroup -name "*$TAG*")
unmount_bench_tmpfs || failed=1
mounts=$(grep -F "$D" /proc/self/mountinfo || true)
if [ -n "$mounts" ]; then left+=" mounts: $mounts"; fi
if [ -n "$left" ]; then
  echo "throughput.sh: left behind: $left" >&2
  failed=1
fi
exit "$failed"
