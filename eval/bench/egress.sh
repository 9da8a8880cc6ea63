#!/usr/bin/env bash
# The egress proxy's cost: a 100 MiB download and 1000 small requests (plain HTTP), through
# rauhad's egress proxy from inside a zone, vs a direct connection, vs tinyproxy (Debian), in
# one interleaved run.
#
#   eval/bench/egress.sh [-r ROUNDS] [--build-dir DIR]      (as root)
#
# Everything stays on this machine: a network namespace this script creates runs rauhad (and
# tinyproxy), a second one is "the internet" (busybox httpd on 172.31.252.2), joined by a veth.
# The client (python3, one new TCP connection per request, the same code for every path) runs:
#   direct     in rauhad's namespace, to the server;
#   rauha      in the zone's namespace (an isolated zone, allowed_hosts = the server), to the
#              proxy's listener 127.0.0.1:3128 there;
#   tinyproxy  in rauhad's namespace, to tinyproxy on 127.0.0.1:8888 there.
# Each round: one download and 1000/ROUNDS small requests per path, paths interleaved.
# Prints a table: download MiB/s (median of ROUNDS) and as % of direct, the proxy's CPU time per
# download (user+system of rauhad / tinyproxy while it ran; 10 ms ticks), small-request latency
# p50/p99 (µs), req/s.
set -euo pipefail

ROUNDS=5
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD="$REPO/build"
source "$REPO/eval/bench/lib.sh"
parse_bench_args "${BASH_SOURCE[0]}" -r=ROUNDS -- "$@"
require_root egress.sh "namespaces, cgroups, rauhad"
RAUHAD="$BUILD/rauhad/rauhad"
SHIM="$BUILD/rauha-shim/rauha-shim"
CLI="$BUILD/rauha-cli/rauha"
require_built egress.sh "$BUILD" "rauhad rauha-shim rauha" "$RAUHAD" "$SHIM" "$CLI"
command -v tinyproxy >/dev/null || { echo "egress.sh: apt-get install tinyproxy" >&2; exit 1; }
command -v busybox >/dev/null || { echo "egress.sh: apt-get install busybox-static" >&2; exit 1; }

NS=rauha-bench-egress-$$
NET=$NS-net
SERVER=172.31.252.2
D=$(mktemp -d /tmp/rauha-bench-egress-XXXXXX)
TAG=rauha-bench-egress-$$
DAEMON_PID=""
HTTPD_PID=""
TINY_PID=""
cleanup() {
  [ -n "$TINY_PID" ] && kill "$TINY_PID" 2>/dev/null && wait "$TINY_PID" 2>/dev/null || true
  [ -n "$HTTPD_PID" ] && kill "$HTTPD_PID" 2>/dev/null && wait "$HTTPD_PID" 2>/dev/null || true
  [ -n "$DAEMON_PID" ] && stop_rauhad "$DAEMON_PID" || true
  ip netns del "$NET" 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$D"
}
trap cleanup EXIT

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
head -c $((100 << 20)) /dev/urandom >"$D/www/big"
head -c 1024 /dev/urandom >"$D/www/small"
ip netns exec "$NET" busybox httpd -f -p $SERVER:80 -h "$D/www" &
HTTPD_PID=$!

echo "$SERVER origin.bench.test" >"$D/hosts"
cat >"$D/rauhad-in-netns" <<EOS
#!/bin/sh
exec nsenter --net=/run/netns/$NS "$RAUHAD" "\$@"
EOS
chmod +x "$D/rauhad-in-netns"
start_rauhad "$D/rauhad-in-netns" "$SHIM" "$D" "$TAG" --warm-zones 0 --egress-hosts "$D/hosts"
printf '[network]\nmode = "isolated"\nallowed_hosts = ["%s:80"]\n' $SERVER >"$D/zone.toml"
"$CLI" --socket "$D/rauhad.sock" zone create bench --policy "$D/zone.toml" >/dev/null
SHIM_PID=$("$CLI" --socket "$D/rauhad.sock" zone show bench --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["shim_pid"])')

cat >"$D/tinyproxy.conf" <<EOS
Port 8888
Listen 127.0.0.1
Timeout 60
MaxClients 200
Allow 127.0.0.1
LogLevel Critical
EOS
ip netns exec "$NS" tinyproxy -d -c "$D/tinyproxy.conf" >/dev/null 2>&1 &
TINY_PID=$!

cat >"$D/client.py" <<'EOS'
import socket, sys, time
mode, proxy, path, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
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
    t = time.perf_counter_ns(); got = one(); out.append((time.perf_counter_ns() - t, got))
print(" ".join("%d:%d" % x for x in out))
EOS

# One wait until tinyproxy listens (it forks at start).
for i in $(seq 100); do
  ip netns exec "$NS" python3 -c 'import socket; socket.create_connection(("127.0.0.1", 8888)).close()' 2>/dev/null && break
  sleep 0.05
done

run() {  # PATH_NAME FILE N: prints "ns:bytes ..." samples
  case "$1" in
    direct) ip netns exec "$NS" python3 "$D/client.py" x - "$2" "$3" ;;
    tinyproxy) ip netns exec "$NS" python3 "$D/client.py" x 127.0.0.1:8888 "$2" "$3" ;;
    rauha) nsenter --net=/proc/$SHIM_PID/ns/net python3 "$D/client.py" x 127.0.0.1:3128 "$2" "$3" ;;
  esac
}
# CPU time (user+system, all threads, in clock ticks) of the proxy serving a path so far.
proxy_ticks() {
  case "$1" in
    rauha) awk '{print $14 + $15}' /proc/$DAEMON_PID/stat ;;
    tinyproxy) awk '{print $14 + $15}' /proc/$TINY_PID/stat ;;
    *) echo 0 ;;
  esac
}
SMALL=$((1000 / ROUNDS))
for r in $(seq "$ROUNDS"); do
  for p in direct rauha tinyproxy; do
    t0=$(proxy_ticks $p)
    run $p big 1 >>"$D/$p.big"
    echo $(($(proxy_ticks $p) - t0)) >>"$D/$p.cpu"
    run $p small "$SMALL" >>"$D/$p.small"
  done
done

python3 - "$D" <<'EOS'
import os, sys, statistics
d = sys.argv[1]
tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
print("| path | 100 MiB download, MiB/s (median) | % of direct | proxy CPU ms per download (median) "
      "| small requests | p50 µs | p99 µs | req/s (1 conn) |")
print("|---|---|---|---|---|---|---|---|")
direct = None
for p in ["direct", "rauha", "tinyproxy"]:
    big = [tuple(map(int, x.split(":"))) for line in open(f"{d}/{p}.big") for x in line.split()]
    small = [tuple(map(int, x.split(":"))) for line in open(f"{d}/{p}.small") for x in line.split()]
    bad = [b for _, b in big if b < 100 << 20] + [b for _, b in small if b < 1024]
    if bad:
        print(f"{p}: short responses {bad[:3]}", file=sys.stderr); sys.exit(1)
    mibs = statistics.median((b / (1 << 20)) / (ns / 1e9) for ns, b in big)
    direct = direct or mibs
    cpu = "-" if p == "direct" else "%.0f" % (
        statistics.median(int(x) for x in open(f"{d}/{p}.cpu")) * tick_ms)
    lat = sorted(ns / 1000 for ns, _ in small)
    p50 = lat[len(lat) // 2]; p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    rps = len(lat) / (sum(lat) / 1e6)
    print(f"| {p} | {mibs:.0f} | {100 * mibs / direct:.0f} | {cpu} | {len(lat)} | {p50:.0f} | "
          f"{p99:.0f} | {rps:.0f} |")
EOS
