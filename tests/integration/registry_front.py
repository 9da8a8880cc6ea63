#!/usr/bin/env python3
"""A test's own front for a loopback docker-registry: a Bearer token server (the flow a
registry with token auth uses) and a proxy that can cut a blob download half-way (to test
resume). Logs every request as a JSON line. Loopback only; stopped by the test by PID."""
import argparse
import base64
import http.client
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse, parse_qs

args = None
log_lock = threading.Lock()
cut_done = set()


def log(entry):
    with log_lock:
        with open(args.log, "a") as f:
            f.write(json.dumps(entry) + "\n")


class Front(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def auth_kind(self):
        h = self.headers.get("Authorization", "")
        return h.split(" ", 1)[0].lower() if h else ""

    def send_plain(self, code, body, headers=()):
        data = body.encode()
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.handle_any("GET")

    def do_HEAD(self):
        self.handle_any("HEAD")

    def handle_any(self, method):
        url = urlparse(self.path)
        log({"method": method, "path": url.path, "range": self.headers.get("Range", ""),
             "auth": self.auth_kind()})
        if url.path == "/token":
            want = "Basic " + base64.b64encode(args.token.encode()).decode()
            if self.headers.get("Authorization", "") != want:
                return self.send_plain(401, '{"details": "bad credentials"}')
            scope = parse_qs(url.query).get("scope", [""])[0]
            return self.send_plain(200, json.dumps({"token": "tok:" + scope}))
        if args.token:
            parts = url.path.split("/")
            repo = "/".join(parts[2:-2]) if len(parts) > 4 else ""
            scope = "repository:%s:pull" % repo
            if self.headers.get("Authorization", "") != "Bearer tok:" + scope:
                challenge = ('Bearer realm="http://127.0.0.1:%d/token",service="rauha-test",'
                             'scope="%s"' % (args.port, scope))
                return self.send_plain(401, '{"errors":[{"code":"UNAUTHORIZED"}]}',
                                       [("WWW-Authenticate", challenge)])
        up = urlparse(args.upstream)
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=30)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() in ("accept", "range")}
        conn.request(method, self.path, headers=headers)
        resp = conn.getresponse()
        self.send_response(resp.status)
        length = None
        for k, v in resp.getheaders():
            if k.lower() in ("content-type", "content-length", "docker-content-digest",
                             "content-range", "accept-ranges", "location", "etag"):
                self.send_header(k, v)
            if k.lower() == "content-length":
                length = int(v)
        self.end_headers()
        cut = (args.cut_after and "/blobs/" in url.path and method == "GET"
               and not self.headers.get("Range") and url.path not in cut_done
               and length is not None and length > args.cut_after)
        sent = 0
        while method == "GET":
            chunk = resp.read(65536)
            if not chunk:
                break
            if cut and sent + len(chunk) >= args.cut_after:
                self.wfile.write(chunk[: args.cut_after - sent])
                self.wfile.flush()
                cut_done.add(url.path)
                log({"cut": url.path, "after": args.cut_after})
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            self.wfile.write(chunk)
            sent += len(chunk)
        conn.close()


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--upstream", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--token", default="", help="USER:PASSWORD: require Bearer tokens")
    p.add_argument("--cut-after", type=int, default=0)
    args = p.parse_args()
    ThreadingHTTPServer(("127.0.0.1", args.port), Front).serve_forever()


if __name__ == "__main__":
    main()
