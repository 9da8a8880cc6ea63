#!/usr/bin/env python3
"""A small multi-layer OCI image for eval/bench/sandbox_image.sh, written as an OCI image layout
tar (what `rauha image import` takes): layer 1 static busybox with /bin/true and /bin/sh links,
then LAYERS-1 layers of a few small files each (gzip, mtime 0, so the same bytes every run).

    busybox_image.py OUT.tar [LAYERS]"""
import gzip
import hashlib
import io
import json
import sys
import tarfile

out = sys.argv[1]
nlayers = int(sys.argv[2]) if len(sys.argv) > 2 else 5
blobs = {}


def blob(data):
    d = hashlib.sha256(data).hexdigest()
    blobs[d] = data
    return "sha256:" + d, len(data)


def add(t, name, data=None, link=None, mode=0o644):
    info = tarfile.TarInfo(name)
    info.mtime = 0
    info.mode = mode
    if link is not None:
        info.type = tarfile.SYMTYPE
        info.linkname = link
        t.addfile(info)
    elif data is None:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        t.addfile(info)
    else:
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))


def layer(fill):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w") as t:
        fill(t)
    raw = b.getvalue()
    return raw, gzip.compress(raw, compresslevel=6, mtime=0)


def base(t):
    add(t, "bin")
    with open("/bin/busybox", "rb") as f:
        add(t, "bin/busybox", f.read(), mode=0o755)
    for applet in ("true", "sh", "cat", "ls"):
        add(t, "bin/" + applet, link="busybox")
    add(t, "etc")
    add(t, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    add(t, "etc/group", b"root:x:0:\n")


def extra(i):
    def fill(t):
        add(t, f"layer{i}")
        for j in range(8):
            add(t, f"layer{i}/file{j}", (f"layer {i} file {j}\n" * 64).encode())
    return fill


layers, diffs = [], []
for fill in [base] + [extra(i) for i in range(2, nlayers + 1)]:
    raw, gz = layer(fill)
    diffs.append("sha256:" + hashlib.sha256(raw).hexdigest())
    d, s = blob(gz)
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d,
                   "size": s})
cfg = json.dumps({"architecture": "amd64", "os": "linux",
                  "config": {"Cmd": ["/bin/true"], "Env": ["PATH=/bin"]},
                  "rootfs": {"type": "layers", "diff_ids": diffs}}).encode()
cd, cs = blob(cfg)
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                             "digest": cd, "size": cs},
                  "layers": layers}).encode()
md, ms = blob(man)
index = json.dumps({"schemaVersion": 2, "manifests": [
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
     "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}).encode()
with tarfile.open(out, "w") as t:
    add(t, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    add(t, "index.json", index)
    add(t, "blobs")
    add(t, "blobs/sha256")
    for d, data in sorted(blobs.items()):
        add(t, "blobs/sha256/" + d, data)
print(md)
