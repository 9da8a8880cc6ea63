#!/usr/bin/env bash
# The egress proxy's cost: a 100 MiB download and 1000 small requests (plain HTTP), through
# rauhad's egress proxy from inside a zone, vs a direct connection, vs tinyproxy (Debian), in
# one interleaved run, and what each party (server, proxy, client) spends in CPU per download.
#
#   eval/bench/egress.sh [-r ROUNDS] [-s MIB] [--link SPEC]... [--compare BUILD_DIR]
#                        [--build-dir DIR]      (as root)
#
#   -r ROUNDS     rounds (default 5): each one download and 1000/ROUNDS small requests per path
#   -s MIB        the download's size (default 100)
#   --link SPEC   the bench's veth between rauhad's namespace and "the internet": "veth"
#                 (default: unshaped) or RATE[/RTT], e.g. 1gbit, 100mbit/10ms: tc shapes both
#                 directions to RATE (tbf) and adds RTT/2 each way (netem; the kernel needs
#                 sch_netem). Repeatable: one table per link, all in the same namespaces.
#   --compare DIR a second rauhad, from the build in DIR (e.g. a build of main), as one more
#                 path "rauha-compare" interleaved with the others: an A/B in one window.
#
# Everything stays on this machine: a network namespace this script creates runs rauhad (and
# tinyproxy), a second one is "the internet" (busybox httpd on 172.31.252.2), joined by a veth.
# The client (python3, one new TCP connection per request, the same code for every path) runs:
#   direct     in rauhad's namespace, to the server;
#   rauha      in the zone's namespace (an isolated zone, allowed_hosts = the server), to the
#              proxy's listener 127.0.0.1:3128 there;
#   tinyproxy  in rauhad's namespace, to tinyproxy on 127.0.0.1:8888 there.
# Prints per link a table: download MiB/s (median of ROUNDS) and as % of direct; CPU ms per
# download (median) of the server (busybox httpd, its cgroup's usage), the proxy (rauhad's
# threads' run time, or tinyproxy's cgroup's), the client (its own process time around the
# download) and all three; small-request latency p50/p99 (µs) and req/s. The load average is
# printed before and after. CPU time includes the kernel's TCP work done in each process's
# context (softirqs run where packets are sent): a relay on the path does part of the
# server's and the client's TCP work, so compare the "all" column across paths.
set -euo pipefail

ROUNDS=5
SIZE_MIB=100
LINKS=()
COMPARE=""
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD="$REPO/build"
source "$REPO/eval/bench/lib.sh"
# --link and --compare take words, which parse_bench_args does not: taken out first.
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --link | --compare)
      [ $# -ge 2 ] || { echo "egress.sh: $1 wants a value" >&2; exit 2; }
      if [ "$1" = --link ]; then LINKS+=("$2"); else COMPARE=$2; fi
      shift 2
      ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
parse_bench_args "${BASH_SOURCE[0]}" -r=ROUNDS -s=SIZE_MIB -- ${ARGS[@]+"${ARGS[@]}"}
[ ${#LINKS[@]} -gt 0 ] || LINKS=(veth)
for l in "${LINKS[@]}"; do
  [[ "$l" == veth || "$l" =~ ^[0-9]+[kmg]bit(/[0-9]+(\.[0-9]+)?(us|ms))?$ ]] ||
    { echo "egress.sh: --link $l: want veth, RATE or RATE/RTT (e.g. 1gbit, 100mbit/10ms)" >&2; exit 2; }
done
require_root egress.sh "namespaces, cgroups, tc, rauhad"
RAUHAD="$BUILD/rauhad/rauhad"
SHIM="$BUILD/rauha-shim/rauha-shim"
CLI="$BUILD/rauha-cli/rauha"
require_built egress.sh "$BUILD" "rauhad rauha-shim rauha" "$RAUHAD" "$SHIM" "$CLI"
if [ -n "$COMPARE" ]; then
  COMPARE=$(cd "$COMPARE" && pwd)
  require_built egress.sh "$COMPARE" "rauhad rauha-shim rauha" "$COMPARE/rauhad/rauhad" \
    "$COMPARE/rauha-shim/rauha-shim" "$COMPARE/rauha-cli/rauha"
fi
command -v tinyproxy >/dev/null || { echo "egress.sh: apt-get install tinyproxy" >&2; exit 1; }
command -v busybox >/dev/null || { echo "egress.sh: apt-get install busybox-static" >&2; exit 1; }

NS=rauha-bench-egress-$$
NET=$NS-net
SERVER=172.31.252.2
D=$(mktemp -d /tmp/rauha-bench-egress-XXXXXX)
TAG=rauha-bench-egress-$$
DAEMON_PID=""
COMPARE_PID=""
HTTPD_PID=""
TINY_PID=""
CG=""
cleanup() {
  [ -n "$TINY_PID" ] && kill "$TINY_PID" 2>/dev/null && wait "$TINY_PID" 2>/dev/null || true
  [ -n "$HTTPD_PID" ] && kill "$HTTPD_PID" 2>/dev/null && wait "$HTTPD_PID" 2>/dev/null || true
  [ -n "$DAEMON_PID" ] && stop_rauhad "$DAEMON_PID" || true
  [ -n "$COMPARE_PID" ] && stop_rauhad "$COMPARE_PID" || true
  ip netns del "$NET" 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  # The cgroups are empty once their processes are gone (busybox httpd's children may take a
  # moment after their connections closed).
  local g i
  for g in server tinyproxy; do
    for i in $(seq 50); do
      [ -n "$CG" ] && [ -d "$CG/$g" ] || break
      rmdir "$CG/$g" 2>/dev/null && break
      sleep 0.1
    done
  done
  [ -n "$CG" ] && rmdir "$CG" 2>/dev/null || true
  rm -rf "$D"
}
trap cleanup EXIT

# CPU accounting for the server and tinyproxy (they fork or start threads per connection, whose
# time /proc/PID misses once they exit): a cgroup each below this script's own, cpuacct (v1)
# or cpu.stat (v2), which counts every process in it in ns.
if [ -d /sys/fs/cgroup/cpuacct ]; then
  CG=/sys/fs/cgroup/cpuacct$(awk -F: '$2 ~ /(^|,)cpuacct(,|$)/ { print $3 }' /proc/self/cgroup)
  CG=${CG%/}/$TAG
  cg_usage_ns() { cat "$CG/$1/cpuacct.usage"; }
else
  CG=/sys/fs/cgroup$(awk -F: '$1 == 0 { print $3 }' /proc/self/cgroup)
  CG=${CG%/}/$TAG
  cg_usage_ns() { awk '$1 == "usage_usec" { print $2 * 1000 }' "$CG/$1/cpu.stat"; }
fi
mkdir -p "$CG/server" "$CG/tinyproxy"
# sh -c "$IN_CGROUP" DIR CMD...: CMD runs in the cgroup DIR (its children with it), under the
# pid the shell had (so $! of "sh -c ... &" is CMD's, for kill).
IN_CGROUP='echo $$ >"$0/cgroup.procs" && exec "$@"'
# The run time of all of a process's threads, in ns (rauhad's proxy thread lives as long as it).
threads_ns() {
  cat /proc/"$1"/task/*/schedstat | awk '{ s += $1 } END { printf "%.0f\n", s }'
}

ip netns add "$NS"
ip netns add "$NET"
ip -n "$NS" link set lo up
ip -n "$NS" link add beg0 type veth peer name eth0 netns "$NET"
ip -n "$NS" addr add 172.31.252.1/30 dev beg0
ip -n "$NS" link set beg0 up
ip -n "$NET" addr add $SERVER/30 dev eth0
ip -n "$NET" link set eth0 up
ip -n "$NET" link set lo up

mkdir -p "$D/www"
head -c $((SIZE_MIB << 20)) /dev/urandom >"$D/www/big"
head -c 1024 /dev/urandom >"$D/www/small"
sh -c "$IN_CGROUP" "$CG/server" ip netns exec "$NET" busybox httpd -f -p $SERVER:80 -h "$D/www" &
HTTPD_PID=$!

echo "$SERVER origin.bench.test" >"$D/hosts"
printf '[network]\nmode = "isolated"\nallowed_hosts = ["%s:80"]\n' $SERVER >"$D/zone.toml"
# start_zone_proxy NAME RAUHAD SHIM CLI: a rauhad in $NS with one zone NAME; sets DAEMON_PID and
# the zone's shim pid in ${NAME}_SHIM_PID.
start_zone_proxy() {
  local name=$1 rauhad=$2 shim=$3 cli=$4 dir=$D/$1
  mkdir -p "$dir"
  cat >"$dir/rauhad-in-netns" <<EOS
#!/bin/sh
exec nsenter --net=/run/netns/$NS "$rauhad" "\$@"
EOS
  chmod +x "$dir/rauhad-in-netns"
  start_rauhad "$dir/rauhad-in-netns" "$shim" "$dir" "$TAG-$name" --warm-zones 0 --egress-hosts "$D/hosts"
  "$cli" --socket "$dir/rauhad.sock" zone create "$name" --policy "$D/zone.toml" >/dev/null
  printf -v "${name}_SHIM_PID" '%s' "$("$cli" --socket "$dir/rauhad.sock" zone show "$name" --json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["shim_pid"])')"
}
PATHS=(direct rauha)
if [ -n "$COMPARE" ]; then
  start_zone_proxy compare "$COMPARE/rauhad/rauhad" "$COMPARE/rauha-shim/rauha-shim" \
    "$COMPARE/rauha-cli/rauha"
  COMPARE_PID=$DAEMON_PID
  PATHS+=(rauha-compare)
fi
start_zone_proxy bench "$RAUHAD" "$SHIM" "$CLI"
PATHS+=(tinyproxy)

cat >"$D/tinyproxy.conf" <<EOS
Port 8888
Listen 127.0.0.1
Timeout 60
MaxClients 200
Allow 127.0.0.1
LogLevel Critical
EOS
sh -c "$IN_CGROUP" "$CG/tinyproxy" ip netns exec "$NS" tinyproxy -d -c "$D/tinyproxy.conf" >/dev/null 2>&1 &
TINY_PID=$!

# Prints "wall_ns:bytes:cpu_ns" per request; cpu_ns is the client's own process time.
cat >"$D/client.py" <<'EOS'
import socket, sys, time
proxy, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
server = "172.31.252.2"
def one():
    if proxy == "-":
        s = socket.create_connection((server, 80))
        req = "GET /%s HTTP/1.0\r\nHost: %s\r\n\r\n" % (path, server)
    else:
        host, port = proxy.split(":")
        s = socket.create_connection((host, int(port)))
        req = "GET http://%s/%s HTTP/1.0\r\nHost: %s\r\n\r\n" % (server, path, server)
    s.sendall(req.encode())
    total = 0
    buf = bytearray(1 << 20)
    while True:
        k = s.recv_into(buf)
        if k == 0: break
        total += k
    s.close()
    return total
out = []
for _ in range(n):
    c = time.process_time_ns(); t = time.perf_counter_ns(); got = one()
    out.append((time.perf_counter_ns() - t, got, time.process_time_ns() - c))
print(" ".join("%d:%d:%d" % x for x in out))
EOS

# One wait until tinyproxy listens (it forks at start).
for i in $(seq 100); do
  ip netns exec "$NS" python3 -c 'import socket; socket.create_connection(("127.0.0.1", 8888)).close()' 2>/dev/null && break
  sleep 0.05
done

run() {  # PATH_NAME FILE N: prints "ns:bytes:cpu_ns ..." samples
  case "$1" in
    direct) ip netns exec "$NS" python3 "$D/client.py" - "$2" "$3" ;;
    tinyproxy) ip netns exec "$NS" python3 "$D/client.py" 127.0.0.1:8888 "$2" "$3" ;;
    rauha) nsenter --net=/proc/$bench_SHIM_PID/ns/net python3 "$D/client.py" 127.0.0.1:3128 "$2" "$3" ;;
    rauha-compare) nsenter --net=/proc/$compare_SHIM_PID/ns/net python3 "$D/client.py" 127.0.0.1:3128 "$2" "$3" ;;
  esac
}
proxy_ns() {  # CPU ns of the proxy serving a path so far
  case "$1" in
    rauha) threads_ns "$DAEMON_PID" ;;
    rauha-compare) threads_ns "$COMPARE_PID" ;;
    tinyproxy) cg_usage_ns tinyproxy ;;
    *) echo 0 ;;
  esac
}
# shape LINK: tc on both ends of the veth (both directions: the server's answers leave by
# $NET's eth0, the requests and ACKs by $NS's beg0).
netem_missing_said=""
shape() {
  local dev ns rate rtt
  for ns in "$NS" "$NET"; do
    dev=beg0
    [ "$ns" = "$NET" ] && dev=eth0
    tc -n "$ns" qdisc del dev $dev root 2>/dev/null || true
    [ "$1" = veth ] && continue
    rate=${1%%/*}
    rtt=""
    [[ "$1" == */* ]] && rtt=${1#*/}
    # tbf: burst a few 64 KiB GSO segments; a queue of 20 ms at RATE before it drops.
    if [ -n "$rtt" ]; then
      local half
      half=$(python3 -c "import re,sys; v,u=re.match(r'([0-9.]+)(us|ms)','$rtt').groups(); print('%gus' % (float(v)*(1000 if u=='ms' else 1)/2))")
      if ! tc -n "$ns" qdisc add dev $dev root handle 1: netem delay "$half" limit 100000 2>"$D/tc.err"; then
        echo "egress.sh: --link $1: netem refused ($(cat "$D/tc.err")); this kernel may lack sch_netem (CONFIG_NET_SCH_NETEM): use --link $rate" >&2
        exit 1
      fi
      tc -n "$ns" qdisc add dev $dev parent 1:1 handle 10: tbf rate "$rate" burst 256kb latency 20ms
    else
      tc -n "$ns" qdisc add dev $dev root tbf rate "$rate" burst 256kb latency 20ms
    fi
  done
}

SMALL=$((1000 / ROUNDS))
for link in "${LINKS[@]}"; do
  shape "$link"
  L=$D/link-${link//\//_}
  mkdir -p "$L"
  load_before=$(cut -d' ' -f1-3 /proc/loadavg)
  # A download per path first, not counted: TCP's metrics and the page cache warm alike.
  for p in "${PATHS[@]}"; do run $p big 1 >/dev/null; done
  for r in $(seq "$ROUNDS"); do
    for p in "${PATHS[@]}"; do
      s0=$(cg_usage_ns server)
      x0=$(proxy_ns $p)
      run $p big 1 >>"$L/$p.big"
      echo $(($(cg_usage_ns server) - s0)) $(($(proxy_ns $p) - x0)) >>"$L/$p.cpu"
      run $p small "$SMALL" >>"$L/$p.small"
    done
  done
  echo
  echo "link: $link; load average before $load_before, after $(cut -d' ' -f1-3 /proc/loadavg)"
  python3 - "$L" "$SIZE_MIB" "${PATHS[@]}" <<'EOS'
import sys, statistics
d, size_mib, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
print(f"| path | {size_mib} MiB download, MiB/s (median) | % of direct | CPU ms per download: "
      "server | proxy | client | all | small requests | p50 µs | p99 µs | req/s (1 conn) |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
direct = None
for p in paths:
    samples = lambda kind: [tuple(map(int, x.split(":"))) for line in open(f"{d}/{p}.{kind}")
                            for x in line.split()]
    big, small = samples("big"), samples("small")
    bad = [b for _, b, _ in big if b < size_mib << 20] + [b for _, b, _ in small if b < 1024]
    if bad:
        print(f"{p}: short responses {bad[:3]}", file=sys.stderr); sys.exit(1)
    mibs = statistics.median((b / (1 << 20)) / (ns / 1e9) for ns, b, _ in big)
    direct = direct or mibs
    cpu = [tuple(map(int, line.split())) for line in open(f"{d}/{p}.cpu")]
    server = statistics.median(s for s, _ in cpu) / 1e6
    proxy = statistics.median(x for _, x in cpu) / 1e6
    client = statistics.median(c for _, _, c in big) / 1e6
    total = statistics.median(s / 1e6 + x / 1e6 + c / 1e6 for (s, x), (_, _, c) in zip(cpu, big))
    lat = sorted(ns / 1000 for ns, _, _ in small)
    p50 = lat[len(lat) // 2]; p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    rps = len(lat) / (sum(lat) / 1e6)
    print(f"| {p} | {mibs:.{0 if mibs >= 100 else 1}f} | {100 * mibs / direct:.0f} | {server:.0f} | "
          f"{'-' if p == 'direct' else '%.0f' % proxy} | {client:.0f} | {total:.0f} | {len(lat)} | "
          f"{p50:.0f} | {p99:.0f} | {rps:.0f} |")
EOS
done
