#!/usr/bin/env python3
"""An independent verifier of Rauha's audit log, written from the README's format text alone:
Python's json for parsing, its own RFC 8785 canonical form, `openssl pkeyutl -verify -rawin`
for Ed25519. Used by the integration tests to check the format, not only our C++ verifier.

usage: audit_verify.py KEY.pub SEGMENT...          (exit 0 intact, 1 not, with the spot)
       audit_verify.py --receipt KEY.pub RESULT.json
       audit_verify.py --resign OTHER.key SEGMENT LINE   (a forgery for the tests: re-sign one
                                                           record with another key)
"""
import base64
import hashlib
import json
import os
import subprocess
import sys
import tempfile


def jcs(value):
    """RFC 8785 for strings, integers, booleans, null, arrays and objects."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        raise ValueError("float in a record")
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(jcs(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value.keys(), key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + jcs(value[k])
                              for k in keys) + "}"
    raise ValueError("unsupported type")


def key_id(pem_path):
    der = subprocess.run(["openssl", "pkey", "-pubin", "-in", pem_path, "-outform", "DER"],
                         check=True, capture_output=True).stdout
    return hashlib.sha256(der[-32:]).hexdigest()


def ed25519_ok(pem_path, message, signature):
    with tempfile.TemporaryDirectory() as d:
        msg, sig = os.path.join(d, "msg"), os.path.join(d, "sig")
        open(msg, "wb").write(message)
        open(sig, "wb").write(signature)
        r = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pem_path,
                            "-rawin", "-in", msg, "-sigfile", sig], capture_output=True)
        return r.returncode == 0


def check_signature(record, pem_path):
    unsigned = dict(record)
    sig = base64.b64decode(unsigned.pop("sig"), validate=True)
    return ed25519_ok(pem_path, jcs(unsigned).encode("utf-8"), sig)


def verify_chain(pem_path, segments):
    key = pem_path
    kid = key_id(key)
    prev = "0" * 64
    seq = 0
    keydir = tempfile.mkdtemp()
    for seg in segments:
        data = open(seg, "rb").read()
        lines = data.split(b"\n")
        if lines[-1] != b"":
            print(f"{seg}:{len(lines)}: torn last line")
            return 1
        for n, raw in enumerate(lines[:-1], 1):
            where = f"{os.path.basename(seg)}:{n}"
            record = json.loads(raw.decode("utf-8"))
            if record.get("v") != 1 or record.get("seq") != seq:
                print(f"{where}: seq {record.get('seq')} where {seq} was expected")
                return 1
            if record.get("prev") != prev:
                print(f"{where}: prev does not link")
                return 1
            if record.get("key_id") != kid or not check_signature(record, key):
                print(f"{where}: bad signature or key")
                return 1
            if record.get("kind") == "key.rotate":
                key = os.path.join(keydir, f"{seq}.pub")
                open(key, "w").write(record["body"]["public_key"])
                kid = key_id(key)
            prev = hashlib.sha256(jcs(record).encode("utf-8")).hexdigest()
            if prev != hashlib.sha256(raw).hexdigest():
                print(f"{where}: the line is not its canonical form")
                return 1
            seq += 1
    print(f"intact: {seq} records")
    return 0


def verify_receipt(pem_path, result_path):
    result = json.load(open(result_path))
    record = json.loads(result["receipt"])
    if record.get("key_id") != key_id(pem_path) or not check_signature(record, pem_path):
        print("receipt: bad signature")
        return 1
    body = record["body"]
    def digest(b):
        return hashlib.sha256(b).hexdigest()
    out = (base64.b64decode(result["stdout_base64"]) if "stdout_base64" in result
           else result["stdout"].encode("utf-8"))
    err = (base64.b64decode(result["stderr_base64"]) if "stderr_base64" in result
           else result["stderr"].encode("utf-8"))
    checks = {
        "task_id": result["task_id"],
        "zone_id": result["zone_id"],
        "status": result["status"],
        "command_sha256": digest(jcs(result["command"]).encode("utf-8")),
        "stdout_sha256": digest(out),
        "stderr_sha256": digest(err),
    }
    if result.get("exit_code") is not None:
        checks["exit_code"] = result["exit_code"]
    for name, want in checks.items():
        if body.get(name) != want:
            print(f"receipt: {name} differs")
            return 1
    print("receipt: valid")
    return 0


def resign(private_pem, segment, line_no):
    lines = open(segment, encoding="utf-8").read().splitlines()
    record = json.loads(lines[line_no - 1])
    record.pop("sig")
    der = subprocess.run(["openssl", "pkey", "-in", private_pem, "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    record["key_id"] = hashlib.sha256(der[-32:]).hexdigest()
    with tempfile.TemporaryDirectory() as d:
        msg = os.path.join(d, "msg")
        open(msg, "wb").write(jcs(record).encode("utf-8"))
        sig = subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", private_pem, "-rawin",
                              "-in", msg], check=True, capture_output=True).stdout
    record["sig"] = base64.b64encode(sig).decode()
    lines[line_no - 1] = jcs(record)
    open(segment, "w", encoding="utf-8").write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--resign":
        sys.exit(resign(sys.argv[2], sys.argv[3], int(sys.argv[4])))
    if len(sys.argv) >= 4 and sys.argv[1] == "--receipt":
        sys.exit(verify_receipt(sys.argv[2], sys.argv[3]))
    if len(sys.argv) < 3:
        print(__doc__)
        sys.exit(2)
    sys.exit(verify_chain(sys.argv[1], sys.argv[2:]))
