#!/usr/bin/env bash
# What ending TLS for a secret's host costs (eval/bench/egress.sh's HTTPS companion): HTTPS
# requests through rauhad's egress proxy to a host no secret names (CONNECT tunnelled
# untouched) vs to a host a secret names (TLS ended by the proxy with the zone's CA, the
# request head read and rewritten, a second TLS session to the server), vs direct.
#
#   eval/bench/egress_tls.sh [-n REQUESTS] [-r ROUNDS] [--build-dir DIR]      (as root)
#
# Everything stays on this machine: a network namespace this script creates runs rauhad, a
# second one is "the internet" (a Python HTTPS server on 172.31.251.2 with a certificate from a
# CA made here, trusted by the proxy through --egress-extra-ca), joined by a veth. The client
# (python3, the same code for every path) runs in the zone's namespace for the proxy paths and
# in rauhad's for direct, and measures:
#   new    one new TCP + TLS connection per small request (the proxy makes a leaf-signed
#          handshake towards the zone and a verified one upstream each time);
#   kept   small requests on one kept-alive connection (only the per-request head rewrite);
#   MiB/s  a 32 MiB download (the relay through two TLS sessions).
# Paths interleaved per round. Prints a table with p50/p99 latency (µs) and MiB/s (median).
set -euo pipefail

N=300
ROUNDS=3
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD="$REPO/build"
source "$REPO/eval/bench/lib.sh"
parse_bench_args "${BASH_SOURCE[0]}" -n=N -r=ROUNDS -- "$@"
require_root egress_tls.sh "namespaces, cgroups, rauhad"
RAUHAD="$BUILD/rauhad/rauhad"
SHIM="$BUILD/rauha-shim/rauha-shim"
CLI="$BUILD/rauha-cli/rauha"
require_built egress_tls.sh "$BUILD" "rauhad rauha-shim rauha" "$RAUHAD" "$SHIM" "$CLI"

NS=rauha-bench-etls-$$
NET=$NS-net
SERVER=172.31.251.2
D=$(mktemp -d /tmp/rauha-bench-etls-XXXXXX)
TAG=rauha-bench-etls-$$
DAEMON_PID=""
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  [ -n "$DAEMON_PID" ] && stop_rauhad "$DAEMON_PID" || true
  ip netns del "$NET" 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$D"
}
trap cleanup EXIT

ip netns add "$NS"
ip netns add "$NET"
ip -n "$NS" link set lo up
ip -n "$NS" link add bet0 type veth peer name eth0 netns "$NET"
ip -n "$NS" addr add 172.31.251.1/30 dev bet0
ip -n "$NS" link set bet0 up
ip -n "$NET" addr add $SERVER/30 dev eth0
ip -n "$NET" link set eth0 up
ip -n "$NET" link set lo up

# The test CA and a server certificate for both names.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$D/ca.key" \
  -out "$D/ca.pem" -days 2 -subj /CN=rauha-bench-ca 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$D/server.key" \
  -out "$D/server.csr" -subj /CN=pass.bench.test 2>/dev/null
echo "subjectAltName=DNS:pass.bench.test,DNS:secret.bench.test,IP:$SERVER" >"$D/san.ext"
openssl x509 -req -in "$D/server.csr" -CA "$D/ca.pem" -CAkey "$D/ca.key" -CAcreateserial \
  -out "$D/server.pem" -days 2 -extfile "$D/san.ext" 2>/dev/null

cat >"$D/server.py" <<'EOS'
import http.server, socketserver, ssl, sys
big = b"x" * (32 << 20)
small = b"y" * 1024
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # its head and body are two writes
    def do_GET(self):
        body = big if self.path == "/big" else small
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
s = S((sys.argv[1], 443), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
s.socket = ctx.wrap_socket(s.socket, server_side=True)
print("ready", flush=True)
s.serve_forever()
EOS
ip netns exec "$NET" python3 "$D/server.py" $SERVER "$D/server.pem" "$D/server.key" >"$D/server.out" &
SERVER_PID=$!
for i in $(seq 200); do grep -q ready "$D/server.out" 2>/dev/null && break; sleep 0.05; done

printf '%s pass.bench.test secret.bench.test\n' $SERVER >"$D/hosts"
cat >"$D/rauhad-in-netns" <<EOS
#!/bin/sh
exec nsenter --net=/run/netns/$NS "$RAUHAD" "\$@"
EOS
chmod +x "$D/rauhad-in-netns"
start_rauhad "$D/rauhad-in-netns" "$SHIM" "$D" "$TAG" --warm-zones 0 --egress-hosts "$D/hosts" \
  --egress-extra-ca "$D/ca.pem"
printf 'bench-value-0123456789' | "$CLI" --socket "$D/rauhad.sock" secret set BENCH_TOKEN >/dev/null
cat >"$D/zone.toml" <<EOS
[network]
mode = "isolated"
allowed_hosts = ["pass.bench.test:443", "secret.bench.test:443"]

[secrets.BENCH_TOKEN]
hosts = ["secret.bench.test:443"]
EOS
"$CLI" --socket "$D/rauhad.sock" zone create bench --policy "$D/zone.toml" >/dev/null
read -r SHIM_PID ZONE_ID < <("$CLI" --socket "$D/rauhad.sock" zone show bench --json |
  python3 -c 'import json,sys; z=json.load(sys.stdin); print(z["shim_pid"], z["id"])')
# The client trusts the test CA (direct, tunnelled) and the zone's bundle (ended by the proxy).
cat "$D/ca.pem" "$D/run/egress-trust/$ZONE_ID.pem" >"$D/trust.pem"

cat >"$D/client.py" <<'EOS'
import http.client, socket, ssl, sys, time
mode, host, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context(cafile=sys.argv[4])
def conn():
    if mode == "direct":
        return http.client.HTTPSConnection("172.31.251.2", 443, context=ctx, timeout=60)
    c = http.client.HTTPSConnection("127.0.0.1", 3128, context=ctx, timeout=60)
    c.set_tunnel(host, 443)
    return c
hdr = {"Host": host, "Authorization": "Bearer not-a-placeholder"}
out = []
what = sys.argv[5]
if what == "new":
    for _ in range(n):
        t = time.perf_counter_ns()
        c = conn(); c.request("GET", "/small", headers=hdr); b = c.getresponse().read(); c.close()
        out.append((time.perf_counter_ns() - t, len(b)))
elif what == "kept":
    c = conn()
    for _ in range(n):
        t = time.perf_counter_ns()
        c.request("GET", "/small", headers=hdr); b = c.getresponse().read()
        out.append((time.perf_counter_ns() - t, len(b)))
else:
    c = conn()
    t = time.perf_counter_ns()
    c.request("GET", "/big", headers=hdr); b = c.getresponse().read()
    out.append((time.perf_counter_ns() - t, len(b)))
print(" ".join("%d:%d" % x for x in out))
EOS

run() {  # PATH WHAT N
  case "$1" in
    direct) ip netns exec "$NS" python3 "$D/client.py" direct 172.31.251.2 "$3" "$D/trust.pem" "$2" ;;
    tunnel) nsenter --net=/proc/$SHIM_PID/ns/net python3 "$D/client.py" proxy pass.bench.test "$3" "$D/trust.pem" "$2" ;;
    ended) nsenter --net=/proc/$SHIM_PID/ns/net python3 "$D/client.py" proxy secret.bench.test "$3" "$D/trust.pem" "$2" ;;
  esac
}
PER=$((N / ROUNDS))
for r in $(seq "$ROUNDS"); do
  for p in direct tunnel ended; do
    run $p new "$PER" >>"$D/$p.new"
    run $p kept "$PER" >>"$D/$p.kept"
    run $p big 1 >>"$D/$p.big"
  done
done

python3 - "$D" <<'EOS'
import sys, statistics
d = sys.argv[1]
def load(p, w):
    return [tuple(map(int, x.split(":"))) for line in open(f"{d}/{p}.{w}") for x in line.split()]
def pct(v, q):
    v = sorted(v); return v[min(len(v) - 1, int(len(v) * q))]
print("| path | new conn p50 µs | new conn p99 µs | kept-alive p50 µs | kept-alive p99 µs | 32 MiB download MiB/s |")
print("|---|---|---|---|---|---|")
names = {"direct": "direct (no proxy)", "tunnel": "proxy, CONNECT tunnelled", "ended": "proxy, TLS ended (secret's host)"}
for p in ["direct", "tunnel", "ended"]:
    new, kept, big = load(p, "new"), load(p, "kept"), load(p, "big")
    bad = [b for _, b in new + kept if b != 1024] + [b for _, b in big if b != 32 << 20]
    if bad:
        print(f"{p}: short responses {bad[:3]}", file=sys.stderr); sys.exit(1)
    n = [ns / 1000 for ns, _ in new]; k = [ns / 1000 for ns, _ in kept]
    mibs = statistics.median(32 / (ns / 1e9) for ns, _ in big)
    print(f"| {names[p]} | {pct(n, .5):.0f} | {pct(n, .99):.0f} | {pct(k, .5):.0f} | {pct(k, .99):.0f} | {mibs:.0f} |")
EOS
