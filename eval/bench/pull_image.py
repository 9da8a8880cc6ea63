#!/usr/bin/env python3
"""The image eval/bench/pull.sh pulls, as an OCI layout in DIR: busybox-static, then four
layers of about 24 MiB each of this host's shared libraries (gzip level 6), reproducible for a
given host (mtime 0, sorted names)."""
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

out = sys.argv[1]
os.makedirs(out + "/blobs/sha256")


def blob(data):
    d = hashlib.sha256(data).hexdigest()
    with open(f"{out}/blobs/sha256/{d}", "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)


def layer(paths):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w") as t:
        for p in paths:
            info = t.gettarinfo(p, arcname=p.lstrip("/"))
            info.mtime = 0
            with open(p, "rb") as f:
                t.addfile(info, f)
    raw = b.getvalue()
    return raw, gzip.compress(raw, compresslevel=6, mtime=0)


libdir = "/usr/lib/x86_64-linux-gnu"
files = sorted(os.path.join(libdir, f) for f in os.listdir(libdir))
files = [f for f in files if os.path.isfile(f) and not os.path.islink(f)]
groups, cur, size = [], [], 0
for f in files:
    cur.append(f)
    size += os.path.getsize(f)
    if size > 24 << 20:
        groups.append(cur)
        cur, size = [], 0
        if len(groups) == 4:
            break
layers, diffs = [], []
for g in [["/bin/busybox"]] + groups:
    raw, gz = layer(g)
    diffs.append("sha256:" + hashlib.sha256(raw).hexdigest())
    d, s = blob(gz)
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d,
                   "size": s})
cfg = json.dumps({"architecture": "amd64", "os": "linux",
                  "config": {"Cmd": ["/bin/busybox", "true"]},
                  "rootfs": {"type": "layers", "diff_ids": diffs}}).encode()
cd, cs = blob(cfg)
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                             "digest": cd, "size": cs},
                  "layers": layers}).encode()
md, ms = blob(man)
with open(out + "/index.json", "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
         "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}, f)
with open(out + "/oci-layout", "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')
print("image: %d layers, %.1f MiB compressed, %.1f MiB uncompressed" %
      (len(layers), sum(l["size"] for l in layers) / 2**20,
       sum(os.path.getsize(p) for g in groups for p in g) / 2**20), file=sys.stderr)
