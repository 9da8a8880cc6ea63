#!/usr/bin/env bash
# What running on a cached image costs over the host view: `rauha sandbox --image IMG -- CMD`
# vs `rauha sandbox -- CMD`, both through the CLI and as in-process RunSandbox calls
# (runsandbox_bench), interleaved (one sample of each per round, order rotated). IMG is a
# 5-layer busybox image (busybox_image.py) imported once and unpacked by one untimed warm-up
# call, so every timed call finds its layers unpacked: what is timed on top of the host view is
# resolving the image, the overlay mount of its layers with the task's upper directory, and its
# config. CMD is /bin/busybox true (on the host view the host's busybox-static).
#
#   eval/bench/sandbox_image.sh [-n N] [--build-dir DIR]      (as root)
#
# Prints one table (median and p95 per contender) and the medians' differences. rauhad is
# stopped by PID and its directory removed.
set -euo pipefail

N=41
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD="$REPO/build"
source "$REPO/eval/bench/lib.sh"
parse_bench_args "${BASH_SOURCE[0]}" -n=N -- "$@"
require_root sandbox_image.sh "rauhad"
RAUHAD="$BUILD/rauhad/rauhad"
SHIM="$BUILD/rauha-shim/rauha-shim"
CLI="$BUILD/rauha-cli/rauha"
RPC_BENCH="$BUILD/eval/runsandbox_bench"
require_built sandbox_image.sh "$BUILD" "rauhad rauha-shim rauha runsandbox_bench" \
  "$RAUHAD" "$SHIM" "$CLI" "$RPC_BENCH"
[ -x /bin/busybox ] || { echo "sandbox_image.sh: /bin/busybox missing (busybox-static)" >&2; exit 1; }

TAG="rauha-bench-img-$$"
D=$(mktemp -d "/tmp/$TAG-XXXXXX")
[ -n "$D" ] && [ -d "$D" ] || { echo "sandbox_image.sh: mktemp failed" >&2; exit 1; }
DAEMON_PID=""
RPC_CHILDREN=()
cleanup() {
  set +e
  for pid in "${RPC_CHILDREN[@]}"; do kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  [ -n "$DAEMON_PID" ] && stop_rauhad "$DAEMON_PID"
  rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

rauha() { "$CLI" --socket "$D/rauhad.sock" "$@"; }
start_rauhad "$RAUHAD" "$SHIM" "$D" "$TAG"
IMG=bench/busybox:v1
python3 "$REPO/eval/bench/busybox_image.py" "$D/image.tar" 5 >/dev/null
rauha image import "$D/image.tar" --tag "$IMG" >/dev/null
CMD=(/bin/busybox true)

# The RPC contenders live as coprocesses: one line in, one latency (ns) out.
coproc RPC_HOST { exec "$RPC_BENCH" --socket "$D/rauhad.sock" --serve -- "${CMD[@]}" 2>"$D/rpc_host.err"; }
RPC_CHILDREN+=("$RPC_HOST_PID")
# (bash warns that a second coprocess exists; both work.)
{ coproc RPC_IMG { exec "$RPC_BENCH" --socket "$D/rauhad.sock" --serve --image "$IMG" -- "${CMD[@]}" 2>"$D/rpc_img.err"; }; } 2>/dev/null
RPC_CHILDREN+=("$RPC_IMG_PID")
rpc_call() { # rpc_call PID IN OUT ERRFILE: one call; sets RPC_NS
  local ns
  if ! kill -0 "$1" 2>/dev/null || ! { echo go >&"$2" && read -r ns <&"$3"; } 2>/dev/null; then
    cat "$4" >&2
    return 1
  fi
  RPC_NS=$ns
}
run_cli_host() { rauha sandbox -- "${CMD[@]}" >/dev/null; }
run_cli_image() { rauha sandbox --image "$IMG" -- "${CMD[@]}" >/dev/null; }
run_rpc_host() { rpc_call "$RPC_HOST_PID" "${RPC_HOST[1]}" "${RPC_HOST[0]}" "$D/rpc_host.err"; }
run_rpc_image() { rpc_call "$RPC_IMG_PID" "${RPC_IMG[1]}" "${RPC_IMG[0]}" "$D/rpc_img.err"; }

CONTENDERS=(cli_host cli_image rpc_host rpc_image)
declare -A LABEL=(
  [cli_host]="rauha sandbox -- CMD"
  [cli_image]="rauha sandbox --image IMG -- CMD"
  [rpc_host]="RunSandbox (host view)"
  [rpc_image]="RunSandbox (image)"
)
declare -A SAMPLES
sample() {
  local c=$1 t0 t1 us
  t0=${EPOCHREALTIME/./}
  "run_$c" 2>"$D/err" || { echo "sandbox_image.sh: $c failed: $(cat "$D/err")" >&2; exit 1; }
  t1=${EPOCHREALTIME/./}
  us=$((t1 - t0))
  case "$c" in rpc_*) us=$((RPC_NS / 1000)) ;; esac
  SAMPLES[$c]+="$us "
}
# Untimed warm-up: unpacks the image's layers, warms the page cache and the coprocesses.
for c in "${CONTENDERS[@]}"; do sample "$c"; SAMPLES[$c]=""; done
k=${#CONTENDERS[@]}
for ((i = 0; i < N; i++)); do
  for ((j = 0; j < k; j++)); do sample "${CONTENDERS[$(((i + j) % k))]}"; done
done

echo "# sandbox on a cached 5-layer image vs the host view, CMD=${CMD[*]}, interleaved, n=$N; $(date -u +%Y-%m-%dT%H:%MZ); kernel $(uname -r); load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-34s %4s %10s %10s\n' contender n "median ms" "p95 ms"
declare -A MED
for c in "${CONTENDERS[@]}"; do
  read -r n med p95 <<<"$(summarize_us ${SAMPLES[$c]})"
  MED[$c]=$med
  printf '%-34s %4s %10s %10s\n' "${LABEL[$c]}" "$n" "$med" "$p95"
done
awk -v a="${MED[cli_image]}" -v b="${MED[cli_host]}" -v c="${MED[rpc_image]}" -v d="${MED[rpc_host]}" \
  'BEGIN { printf "image - host view, medians: CLI %+.1f ms, RunSandbox %+.1f ms\n", a - b, c - d }'

# Nothing of the tasks' roots is left in rauhad's run directory.
left=$(find "$D/run" -name 'rootfs-*' | wc -l)
[ "$left" -eq 0 ] || { echo "sandbox_image.sh: $left task roots left in $D/run" >&2; exit 1; }
