#!/usr/bin/env bash
# Cost of enforcement on open+close, and event throughput, on both enforcement paths:
#   host:  the fallback layers (cgroup-bpf + the shim's Landlock and seccomp), wall-clock;
#   guest: the LSM programs in Debian's stock kernel under qemu (tests/ebpf-vm/run-in-vm.sh
#          --icount): guest nanoseconds are instructions, deterministic where TCG wall-clock
#          is noise.
#
#   sudo eval/bench/openclose.sh [--build-dir build] [--pairs 1000000] [--guest-pairs 20000]
#                                [--runs 5] [--seconds 3] [--no-guest] [--no-events]
# Prints the tables of openclose_bench (eval/bench/openclose_bench.cc). Exit 1 if any part
# fails (an events row with loss or missing events fails it too).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
BUILD=$src/build
pairs=1000000
guest_pairs=20000
runs=5
seconds=3
guest=1
events=1
source "$here/lib.sh"
parse_bench_args "${BASH_SOURCE[0]}" --pairs=pairs --guest-pairs=guest_pairs --runs=runs \
  --seconds=seconds --no-guest:guest=0 --no-events:events=0 -- "$@"
bench=$BUILD/eval/openclose_bench
require_built openclose.sh "$BUILD" openclose_bench "$bench"
require_root openclose.sh "cgroups, BPF"
run_in_vm=$src/tests/ebpf-vm/run-in-vm.sh
failed=0

echo "== host $(uname -r): fallback layers, wall-clock =="
"$bench" --layers fallback --pairs "$pairs" --runs "$runs" || failed=1
if [ "$events" = 1 ]; then
  "$bench" --events --layers fallback --seconds "$seconds" || failed=1
fi

if [ "$guest" = 1 ]; then
  echo
  echo "== qemu guest (tests/ebpf-vm, -icount shift=0): LSM programs, 1 ns = 1 instruction =="
  # One VM per measurement: a failed or hung one costs only its own row.
  "$run_in_vm" --icount --timeout 1800 -- "$bench" --layers lsm --pairs "$guest_pairs" \
    --runs "$runs" --dir /tmp || failed=1
  if [ "$events" = 1 ]; then
    # Two vCPUs, no icount: with one vCPU the busy producer starves the consumer thread and
    # the ring buffer overflows. The rate is TCG's, not the kernel's: only "lost" is the result.
    echo "(events: 2 vCPUs under TCG; the rate is emulation speed, the result is 0 lost)"
    "$run_in_vm" --timeout 1800 -- "$bench" --events --layers lsm --seconds "$seconds" || failed=1
  fi
fi
exit "$failed"
