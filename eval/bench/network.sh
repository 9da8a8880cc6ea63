#!/usr/bin/env bash
# Zone networking: what a bridged zone costs compared with an isolated one.
#
#   eval/bench/network.sh [-n N] [-z ZONES] [--build-dir DIR]      (as root)
#
# A private rauhad runs inside a network namespace this script creates (rauha-bench-net-PID),
# so its bridge, veths and nftables table never touch the host's namespace; no traffic is sent
# at all. Then:
#  1. CreateZone and DeleteZone latency (gRPC round trips timed inside zone_bench, one connected
#     channel), n=N (default 30) each, interleaved: an isolated zone; a bridged zone when it is
#     the only one (it brings up the bridge and table, and its delete removes them); a bridged
#     zone while another bridged zone is kept alive (bridge and table persist: steady state).
#  2. ZONES (default 200) bridged zones created one after another, then deleted: time per zone,
#     memory per zone ((rauhad PSS + shims' PSS) / ZONES while all exist), and leftovers after
#     the deletes (rz* links, chains of the table, ipam rows, zone cgroup dirs): must all be 0.
# Prints a table. Exits 1 if a call fails or anything is left behind.
set -euo pipefail

N=30
ZONES=200
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD="$REPO/build"
source "$REPO/eval/bench/lib.sh"
parse_bench_args "${BASH_SOURCE[0]}" -n=N -z=ZONES -- "$@"
[ "$ZONES" -le 1000 ] || { echo "network.sh: -z wants an integer 1..1000 (the subnet is a /22)" >&2; exit 2; }
require_root network.sh "namespaces, cgroups, rauhad"

RAUHAD="$BUILD/rauhad/rauhad"
SHIM="$BUILD/rauha-shim/rauha-shim"
ZONE_BENCH="$BUILD/eval/zone_bench"
require_built network.sh "$BUILD" "rauhad rauha-shim zone_bench" "$RAUHAD" "$SHIM" "$ZONE_BENCH"
for bin in ip nsenter; do
  command -v "$bin" >/dev/null || { echo "network.sh: $bin not found (apt-get install iproute2 util-linux)" >&2; exit 1; }
done

TAG="rauha-bench-$$"
NS="rauha-bench-net-$$"
BRIDGE=rbench0
TABLE=rauha_bench
D=$(mktemp -d "/tmp/$TAG-XXXXXX")
DAEMON_PID=""
NS_MADE=0
ZB_CHILD=""
ZB_IN=""
ZB_OUT=""

cleanup() {
  set +e
  if [ -n "$ZB_CHILD" ]; then
    eval "exec $ZB_IN>&-" 2>/dev/null
    wait "$ZB_CHILD" 2>/dev/null
  fi
  # SIGTERM: rauhad deletes its zones' shims, cgroups, veths, bridge and table itself.
  [ -n "$DAEMON_PID" ] && stop_rauhad "$DAEMON_PID"
  [ "$NS_MADE" = 1 ] && ip netns del "$NS"
  rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- set-up ----------------------------------------------------------------------------------
ip netns add "$NS"
NS_MADE=1
ip -n "$NS" link set lo up

# rauhad enters the namespace with nsenter --net, which changes nothing else. `ip netns exec`
# would also unshare the mount namespace and remount /sys, hiding every cgroup hierarchy from
# rauhad. nsenter execs rauhad in place, so start_rauhad's PID is rauhad's.
cat >"$D/rauhad-in-netns" <<EOF
#!/bin/sh
exec nsenter --net=/run/netns/$NS "$RAUHAD" --bridge $BRIDGE --nft-table $TABLE --subnet 10.89.0.0/22 "\$@"
EOF
chmod 700 "$D/rauhad-in-netns"
# No warm pool: its zones would count among the leftovers checked below.
start_rauhad "$D/rauhad-in-netns" "$SHIM" "$D" "$TAG" --warm-zones 0

# zone_bench as a coprocess in the same namespace (its "chains" command reads the table there).
coproc ZB { exec nsenter --net="/run/netns/$NS" "$ZONE_BENCH" --socket "$D/rauhad.sock" 2>"$D/zb.err"; }
ZB_CHILD=$ZB_PID
ZB_IN=${ZB[1]}
ZB_OUT=${ZB[0]}

# zb COMMAND...: one command to zone_bench; its answer in REPLY. Exits the script on failure.
zb() {
  # Checked first: writing to a dead coprocess would SIGPIPE this script.
  if ! kill -0 "$ZB_CHILD" 2>/dev/null ||
    ! { echo "$*" >&"$ZB_IN" && read -r REPLY <&"$ZB_OUT"; } 2>/dev/null; then
    echo "network.sh: zone_bench failed on \"$*\": $(cat "$D/zb.err")" >&2
    exit 1
  fi
}

# Identical policies but for the network mode, so the difference is the networking.
policy() {
  cat <<EOF
[zone]
type = "non-global"

[capabilities]
allowed = []

[resources]
pids_max = 256

[network]
mode = "$1"

[filesystem]
writable_paths = ["/tmp"]

[devices]
allowed = ["/dev/null", "/dev/zero", "/dev/urandom"]
EOF
}
policy isolated >"$D/isolated.toml"
policy bridged >"$D/bridged.toml"

zone_links() { ip -n "$NS" -o link show | awk -F': ' '$2 ~ /^rz/' | wc -l; }
bridge_exists() { ip -n "$NS" link show "$BRIDGE" >/dev/null 2>&1; }

# stats_ns NS...: "n mean median p95" in ms (p95 by nearest rank).
stats_ns() {
  printf '%s\n' "$@" | sort -n | awk '
    { v[NR] = $1; s += $1 }
    END {
      n = NR
      med = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
      r = int(0.95 * n); if (r < 0.95 * n) r++
      printf "%d %.2f %.2f %.2f\n", n, s / n / 1e6, med / 1e6, v[r] / 1e6
    }'
}

# --- 1. latency, interleaved -----------------------------------------------------------------
CONTENDERS=(isolated cold warm)
declare -A LABEL=(
  [isolated]="isolated zone"
  [cold]="bridged zone, alone"
  [warm]="bridged zone, another kept"
)
declare -A NOTE=(
  [isolated]="network.mode = isolated: loopback only"
  [cold]="the only bridged zone: create brings up bridge + table, delete removes them (default)"
  [warm]="another bridged zone alive during the sample: bridge + table persist (steady state)"
)
declare -A CREATE DELETE BOTH
SEQ=0
# sample CONTENDER: one create + delete of a fresh zone; appends ns to CREATE/DELETE/BOTH.
sample() {
  local c=$1 name file=bridged c_ns
  SEQ=$((SEQ + 1))
  name="l$SEQ"
  [ "$c" = isolated ] && file=isolated
  if [ "$c" = cold ] && bridge_exists; then
    echo "network.sh: bridge $BRIDGE still exists before a cold sample" >&2
    exit 1
  fi
  [ "$c" = warm ] && zb create keeper "$D/bridged.toml"
  zb create "$name" "$D/$file.toml"
  c_ns=$REPLY
  zb delete "$name"
  CREATE[$c]+="$c_ns "
  DELETE[$c]+="$REPLY "
  BOTH[$c]+="$((c_ns + REPLY)) "
  [ "$c" = warm ] && zb delete keeper
  return 0
}
for c in "${CONTENDERS[@]}"; do  # untimed warm-up of each
  sample "$c"
  CREATE[$c]="" DELETE[$c]="" BOTH[$c]=""
done
k=${#CONTENDERS[@]}
for ((i = 0; i < N; i++)); do
  for ((j = 0; j < k; j++)); do sample "${CONTENDERS[$(((i + j) % k))]}"; done
done

# --- 2. ZONES bridged zones ------------------------------------------------------------------
MANY_C=() MANY_D=()
for ((i = 1; i <= ZONES; i++)); do
  zb create "b$i" "$D/bridged.toml"
  MANY_C+=("$REPLY")
done
links_up=$(zone_links)
zb chains "$TABLE"
chains_up=$REPLY
shims_kib=0
for ((i = 1; i <= ZONES; i++)); do
  zb shim "b$i"
  if [ "$(cat "/proc/$REPLY/comm" 2>/dev/null)" != rauha-shim ]; then
    echo "network.sh: zone b$i reports shim pid $REPLY, which is not a rauha-shim" >&2
    exit 1
  fi
  shims_kib=$((shims_kib + $(awk '/^Pss:/ { print $2 }' "/proc/$REPLY/smaps_rollup")))
done
rauhad_kib=$(awk '/^Pss:/ { print $2 }' "/proc/$DAEMON_PID/smaps_rollup")
for ((i = 1; i <= ZONES; i++)); do
  zb delete "b$i"
  MANY_D+=("$REPLY")
done

# Leftovers while rauhad still runs: the deletes alone must have removed everything.
left_links=$(zone_links)
zb chains "$TABLE"
left_chains=$REPLY
left_bridge=0
bridge_exists && left_bridge=1
if command -v sqlite3 >/dev/null; then
  left_ipam=$(sqlite3 -readonly "$D/state/rauha.db" 'SELECT count(*) FROM ipam;')
else
  left_ipam="n/a"
fi
left_cgroups=$(find /sys/fs/cgroup -path "*/$TAG/*" -type d 2>/dev/null | wc -l)

# --- report ----------------------------------------------------------------------------------
failed=0
echo "# CreateZone / DeleteZone latency in ms (gRPC round trip inside zone_bench), interleaved, n=$N each; $(date -u +%Y-%m-%dT%H:%MZ); kernel $(uname -r)"
printf '%-28s %3s %9s %9s %9s %9s %9s %9s  %s\n' row n "create" "p95" "delete" "p95" \
  "c+d" "p95" "notes (create/delete/c+d: median)"
for c in "${CONTENDERS[@]}"; do
  read -r n _ cm cp <<<"$(stats_ns ${CREATE[$c]})"
  read -r _ _ dm dp <<<"$(stats_ns ${DELETE[$c]})"
  read -r _ _ bm bp <<<"$(stats_ns ${BOTH[$c]})"
  printf '%-28s %3s %9s %9s %9s %9s %9s %9s  %s\n' "${LABEL[$c]}" "$n" "$cm" "$cp" "$dm" "$dp" \
    "$bm" "$bp" "${NOTE[$c]}"
done
echo "# $ZONES bridged zones created one after another, then deleted one after another"
printf '%-28s %3s %9s %9s %9s\n' "" n "mean ms" "median" "p95"
read -r n mean med p95 <<<"$(stats_ns "${MANY_C[@]}")"
printf '%-28s %3s %9s %9s %9s\n' "create (zones 1..$ZONES)" "$n" "$mean" "$med" "$p95"
read -r n mean med p95 <<<"$(stats_ns "${MANY_D[@]}")"
printf '%-28s %3s %9s %9s %9s\n' "delete (zones 1..$ZONES)" "$n" "$mean" "$med" "$p95"
echo "# with all $ZONES zones up: $links_up rz* links, $chains_up chains in table inet $TABLE"
printf 'memory: rauhad PSS %d KiB + %d shims %d KiB = %d KiB, %d KiB per zone\n' "$rauhad_kib" \
  "$ZONES" "$shims_kib" "$((rauhad_kib + shims_kib))" "$(((rauhad_kib + shims_kib) / ZONES))"
printf 'leftovers after the deletes: rz* links %s, chains %s, bridge %s, ipam rows %s, zone cgroup dirs %s\n' \
  "$left_links" "$left_chains" "$left_bridge" "$left_ipam" "$left_cgroups"
if [ "$links_up" -ne "$ZONES" ]; then
  echo "network.sh: expected $ZONES rz* links while all zones existed, saw $links_up" >&2
  failed=1
fi
for v in "$left_links" "$left_chains" "$left_bridge" "$left_cgroups"; do
  [ "$v" = 0 ] || failed=1
done
[ "$left_ipam" = 0 ] || [ "$left_ipam" = n/a ] || failed=1
[ "$failed" = 0 ] || echo "network.sh: something was left behind after the deletes" >&2

# --- leave nothing behind --------------------------------------------------------------------
eval "exec $ZB_IN>&-"
wait "$ZB_CHILD" || { echo "network.sh: zone_bench failed: $(cat "$D/zb.err")" >&2; failed=1; }
ZB_CHILD=""
stop_rauhad "$DAEMON_PID"
DAEMON_PID=""
ip netns del "$NS"
NS_MADE=0
left=$(find /sys/fs/cgroup -name "*$TAG*"; ls "/run/netns/$NS" 2>/dev/null; pgrep -f "$D" || true)
if [ -n "$left" ]; then
  echo "network.sh: left behind: $left" >&2
  failed=1
fi
exit "$failed"
