#!/usr/bin/env bash
# CPU per sandbox: the CPU time of everything rauha runs for N sandboxes, divided by N.
#
#   eval/bench/cpu_per_sandbox.sh [-c CLIENTS] [-m PER_CLIENT] [-r RUNS] [--no-pool]
#                                 [--tmpfs-run-dir] [--perf FILE] [--build-dir DIR]   (as root)
#
# A private rauhad (with its warm pool, or --warm-zones 0 with --no-pool) is started inside a
# cpuacct v1 cgroup of its own; its shims, their tasks and the zones' cgroups are below it
# (the zones' cgroup parent is relative to rauhad's own cgroup). CLIENTS runsandbox_bench
# processes (outside the cgroup) make PER_CLIENT RunSandbox calls of /bin/true each, at once.
# Per run ("rauha ms"): the cgroup's cpuacct.usage from a settled start (no zone being made or
# removed) through the calls to a settled end (the calls' zones removed, the pool refilled),
# divided by the calls plus the zones the pool holds more at the end than at the start (made in
# the window, not yet removed: "zones kept"). "machine ms": the whole machine's busy CPU time
# over the same span, divided the same way; it includes the clients, kernel work no cgroup is
# charged for (network namespace cleanup, RCU callbacks) and anything else running, so it is
# only meaningful on an idle machine. "per s": the calls' rate over the clients' wall-clock.
# rauhad is in a cgroup2 directory of its own too (its zones' v2 directories below it):
# --perf FILE records `perf record -a -G` of that cgroup with DWARF call graphs over the calls
# of the last run into FILE, which sees rauhad, its shims and the tasks and no other process.
set -euo pipefail

CLIENTS=8
PER=20
RUNS=3
POOL=pool
RUN_DIR_KIND=disk
PERF_OUT=""
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD="$REPO/build"
source "$REPO/eval/bench/lib.sh"
ARGS=()
while [ $# -gt 0 ]; do
  if [ "$1" = --perf ]; then
    [ $# -ge 2 ] || { echo "cpu_per_sandbox.sh: --perf wants a file" >&2; exit 2; }
    PERF_OUT=$2
    shift 2
  else
    ARGS+=("$1")
    shift
  fi
done
parse_bench_args "${BASH_SOURCE[0]}" -c=CLIENTS -m=PER -r=RUNS --no-pool:POOL=nopool \
  --tmpfs-run-dir:RUN_DIR_KIND=tmpfs -- "${ARGS[@]}"
require_root cpu_per_sandbox.sh "namespaces, cgroups, rauhad"

RAUHAD="$BUILD/rauhad/rauhad"
SHIM="$BUILD/rauha-shim/rauha-shim"
RPC_BENCH="$BUILD/eval/runsandbox_bench"
require_built cpu_per_sandbox.sh "$BUILD" "rauhad rauha-shim runsandbox_bench" \
  "$RAUHAD" "$SHIM" "$RPC_BENCH"
ACCT_ROOT=/sys/fs/cgroup/cpuacct
[ -f "$ACCT_ROOT/cpuacct.usage" ] ||
  { echo "cpu_per_sandbox.sh: no cpuacct v1 hierarchy at $ACCT_ROOT" >&2; exit 1; }

TAG="rauha-cpu-$$"
D=$(mktemp -d "/tmp/$TAG-XXXXXX")
ACCT="$ACCT_ROOT/$TAG"
V2_ROOT=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
V2=""
[ -n "$V2_ROOT" ] && V2="$V2_ROOT/$TAG"
DAEMON_PID=""

cleanup() {
  set +e
  [ -n "$DAEMON_PID" ] && stop_rauhad "$DAEMON_PID"
  unmount_bench_tmpfs
  for dir in "$ACCT" "$V2"; do
    [ -n "$dir" ] && [ -d "$dir" ] && find "$dir" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  rm -rf --one-file-system "$D"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "$RUN_DIR_KIND" = tmpfs ]; then mount_bench_tmpfs "$D" run; fi
mkdir "$ACCT"
[ -n "$V2" ] && mkdir "$V2"
POOL_ARGS=()
[ "$POOL" = nopool ] && POOL_ARGS=(--warm-zones 0)
mkdir -p "$D"
# The background subshell joins the cgroup, then becomes rauhad: $! is rauhad's pid.
{
  echo "$BASHPID" >"$ACCT/cgroup.procs"
  if [ -n "$V2" ]; then echo "$BASHPID" >"$V2/cgroup.procs"; fi
  exec "$RAUHAD" --socket "$D/rauhad.sock" --run-dir "$D/run" --state-dir "$D/state" \
    --cgroup-parent "$TAG" --shim-path "$SHIM" "${POOL_ARGS[@]}" >"$D/rauhad.log" 2>&1
} &
DAEMON_PID=$!
for ((i = 0; i < 200; i++)); do [ -S "$D/rauhad.sock" ] && break; sleep 0.05; done
[ -S "$D/rauhad.sock" ] || { echo "rauhad did not start; log:" >&2; cat "$D/rauhad.log" >&2; exit 1; }

# zones: how many zone dirs the run dir holds (pooled zones, and zones being made or removed).
zones() { find "$D/run/zones" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | wc -l; }
# quiesce: no zone being made or removed: the count unchanged for a second, each zone with its
# shim (the pool, grown by demand to up to --warm-zones-max, refills after the calls).
quiesce() {
  local i last=-1 n same=0
  for ((i = 0; i < 600; i++)); do
    n=$(zones)
    if [ "$n" = "$last" ]; then same=$((same + 1)); else same=0; fi
    last=$n
    if [ "$same" -ge 20 ] && { [ "$n" = 0 ] || wait_warm_pool "$D" "$n" 2>/dev/null; }; then
      return 0
    fi
    sleep 0.05
  done
  echo "the zone count did not settle within 30 s" >&2
  return 1
}
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
TICK=$(getconf CLK_TCK)

"$RPC_BENCH" --socket "$D/rauhad.sock" --count 2 >/dev/null
N=$((CLIENTS * PER))
echo "# $CLIENTS clients x $PER RunSandbox calls of /bin/true; $(date -u +%Y-%m-%dT%H:%MZ); $([ "$POOL" = pool ] && echo "warm pool" || echo "no pool"); run dir on $(fs_type "$D/run"); load average $(cut -d' ' -f1 /proc/loadavg)"
printf '%-5s %10s %11s %8s  %s\n' run "rauha ms" "machine ms" "per s" "zones kept"
for ((r = 1; r <= RUNS; r++)); do
  quiesce
  z0=$(zones)
  u0=$(cat "$ACCT/cpuacct.usage")
  b0=$(busy_ticks)
  t0=${EPOCHREALTIME/./}
  pids=()
  PERF_PID=""
  if [ -n "$PERF_OUT" ] && [ "$r" = "$RUNS" ]; then
    perf record -q -a -e cpu-clock -G "$TAG" --call-graph dwarf,16384 -F 999 -o "$PERF_OUT" 2>"$D/perf.err" &
    PERF_PID=$!
    sleep 1
  fi
  for ((i = 0; i < CLIENTS; i++)); do
    "$RPC_BENCH" --socket "$D/rauhad.sock" --count "$PER" >/dev/null 2>"$D/err.$i" &
    pids+=($!)
  done
  failed=0
  for p in "${pids[@]}"; do wait "$p" || failed=1; done
  t1=${EPOCHREALTIME/./}
  if [ -n "$PERF_PID" ]; then kill -INT "$PERF_PID"; wait "$PERF_PID" || cat "$D/perf.err" >&2; fi
  [ "$failed" = 0 ] || { cat "$D"/err.* >&2; exit 1; }
  # Pooled zones are deleted after their answers and the pool refills: count that in.
  quiesce
  z1=$(zones)
  u1=$(cat "$ACCT/cpuacct.usage")
  b1=$(busy_ticks)
  awk -v u=$((u1 - u0)) -v b=$((b1 - b0)) -v tick="$TICK" -v n=$((N + z1 - z0)) -v calls="$N" \
    -v us=$((t1 - t0)) -v r="$r" -v z="$z0 -> $z1" \
    'BEGIN { printf "%-5s %10.2f %11.2f %8.1f  %s\n", r, u / 1e6 / n, b * 1000 / tick / n, calls / (us / 1e6), z }'
done
stop_rauhad "$DAEMON_PID"
DAEMON_PID=""
left=$(find /sys/fs/cgroup -name "*$TAG*" 2>/dev/null | grep -vx -e "$ACCT" -e "$V2" || true)
if [ -n "$left" ]; then echo "cpu_per_sandbox.sh: left behind: $left" >&2; exit 1; fi
