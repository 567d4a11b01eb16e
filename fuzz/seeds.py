#!/usr/bin/env python3
"""Writes the seed corpora under testdata/fuzz/<target>/ (run again after changing a target's
input format): real bundles and hostile ones, signatures over the `signatures` target's FILES,
tokens with their keys, configurations, requests as text, decisions. Needs dist/policy-bundler
and the openssl CLI."""

import base64
import hashlib
import hmac
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "testdata" / "fuzz"
KEYS = ROOT / "testdata" / "keys"
BUNDLER = ROOT / "dist" / "policy-bundler"
# The `signatures` target's files and HMAC secret (fuzz_targets/signatures.rs).
FILES = {
    ".manifest": b'{"revision":"fuzz","roots":[""]}',
    "fuzz/policy.rego": b"package fuzz\n\nallow := true\n",
    "fuzz/data.json": b'{"users":["alice"]}',
}
HMAC_SECRET = b"zerohop fuzz secret"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def write(target: str, name: str, content: bytes) -> None:
    directory = OUT / target
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(content)


def targz(entries: list[tuple[str, bytes, bytes]]) -> bytes:
    """(name, content, tar type) entries; for links the content is the link target."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, content, kind in entries:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = content.decode()
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


def sign(alg: str, signing_input: bytes, secret: bytes = HMAC_SECRET) -> bytes:
    if alg == "HS256":
        return hmac.new(secret, signing_input, hashlib.sha256).digest()
    key = {"RS256": "rsa.pem", "ES256": "ec256.pem"}[alg]
    der = subprocess.run(["openssl", "dgst", "-sha256", "-sign", KEYS / key], input=signing_input,
                         check=True, capture_output=True).stdout
    if alg == "RS256":
        return der
    # ECDSA: DER SEQUENCE { r, s } to the JWS form, r || s, 32 bytes each.
    def integer(data: bytes) -> tuple[int, bytes]:
        assert data[0] == 2
        length = data[1]
        return int.from_bytes(data[2:2 + length], "big"), data[2 + length:]
    r, rest = integer(der[2:])
    s, _ = integer(rest)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def token(alg: str, claims: dict, header: dict | None = None, secret: bytes = HMAC_SECRET) -> str:
    head = b64(json.dumps({"alg": alg, "typ": "JWT", **(header or {})}).encode())
    body = b64(json.dumps(claims).encode())
    signing_input = f"{head}.{body}".encode()
    signature = b"" if alg == "none" else sign(alg, signing_input, secret)
    return f"{head}.{body}.{b64(signature)}"


def bundles(work: Path) -> None:
    for policy, entrypoint in [("demo", "envoy/authz/allow"), ("jwt", "envoy/authz/allow"),
                               ("path-rules", "envoy/authz/allow"), ("body-json", "envoy/authz/allow")]:
        out = work / f"{policy}.tar.gz"
        result = subprocess.run([BUNDLER, "build", ROOT / "testdata" / "policies" / policy, "-o", out,
                                 "-e", entrypoint], capture_output=True)
        if result.returncode == 0 and out.stat().st_size < 64 * 1024:
            write("bundle_targz", f"{policy}.tar.gz", out.read_bytes())
    files = [(f"/{name}", content, tarfile.REGTYPE) for name, content in FILES.items()]
    write("bundle_targz", "opa-style.tar.gz", targz(files))
    write("bundle_targz", "traversal.tar.gz", targz([("../../etc/x.rego", b"package x\n", tarfile.REGTYPE)]))
    write("bundle_targz", "symlink.tar.gz", targz([("fuzz/link.rego", b"/etc/passwd", tarfile.SYMTYPE)]))
    write("bundle_targz", "hardlink.tar.gz", targz([*files, ("fuzz/hard.rego", b"/fuzz/policy.rego", tarfile.LNKTYPE)]))
    write("bundle_targz", "duplicate-keys.tar.gz",
          targz([("/.manifest", b'{"revision":"a","revision":"b","roots":["x"]}', tarfile.REGTYPE),
                 ("/x/data.json", b'{"a":1,"a":2}', tarfile.REGTYPE)]))
    write("bundle_targz", "deep.tar.gz", targz([("/data.json", b"[" * 5000 + b"]" * 5000, tarfile.REGTYPE)]))
    write("bundle_targz", "empty-name.tar.gz", targz([("./", b"", tarfile.DIRTYPE), ("/", b"{}", tarfile.REGTYPE)]))


def signatures() -> None:
    digests = [{"name": name, "hash": hashlib.sha256(content).hexdigest(), "algorithm": "SHA-256"}
               for name, content in FILES.items()]
    for alg, kid in [("RS256", "rs"), ("ES256", "es"), ("HS256", "hs")]:
        claims = {"files": digests, "keyid": kid, "scope": "fuzz"}
        signed = token(alg, claims, {"kid": kid})
        write("signatures", f"{alg}.json", json.dumps({"signatures": [signed]}, indent=1).encode())
    write("signatures", "none.json", json.dumps({"signatures": [token("none", {"files": digests})]}).encode())
    write("signatures", "crit.json", json.dumps({"signatures": [
        token("HS256", {"files": digests, "scope": "fuzz"}, {"kid": "hs", "crit": ["exp"], "exp": 1})]}).encode())
    write("signatures", "duplicate.json",
          b'{"signatures":["a.b.c"],"signatures":[' + json.dumps(token("HS256", {"files": digests}, {"kid": "hs"})).encode() + b"]}")


def jwts() -> None:
    claims = {"sub": "alice", "iss": "https://issuer.test", "exp": 1893456000, "nbf": 1700000000}
    rsa_pub = (KEYS / "rsa.pub.pem").read_bytes()
    ec_pub = (KEYS / "ec256.pub.pem").read_bytes()
    write("jwt", "rs256", token("RS256", claims, {"kid": "rs"}).encode() + b"\n" + rsa_pub)
    write("jwt", "es256", token("ES256", claims).encode() + b"\n" + ec_pub)
    write("jwt", "hs256", token("HS256", claims).encode() + b"\n" + HMAC_SECRET)
    write("jwt", "none", token("none", claims).encode() + b"\n" + rsa_pub)
    # HS256 signed with the RSA public key's PEM text as the secret (key confusion).
    write("jwt", "hs256-with-rsa-pem", token("HS256", claims, secret=rsa_pub).encode() + b"\n" + rsa_pub)
    jwks = {"keys": [{"kty": "oct", "kid": "hs", "k": b64(HMAC_SECRET)},
                     {"kty": "EC", "crv": "P-256", "kid": "es", "x": b64(b"\x01" * 32), "y": b64(b"\x02" * 32)}]}
    write("jwt", "jwks", token("HS256", claims, {"kid": "es"}).encode() + b"\n" + json.dumps(jwks).encode())
    write("jwt", "crit", token("HS256", claims, {"crit": ["b64"], "b64": False}).encode() + b"\n" + HMAC_SECRET)
    fixtures = json.loads((KEYS / "jws-fixtures.json").read_text())
    for alg, signed in fixtures.items():
        if alg.startswith(("PS", "ES3", "ES5")):
            key = {"PS": "rsa.pub.pem", "ES3": "ec384.pub.pem", "ES5": "ec521.pub.pem"}[alg[:2] if alg[0] == "P" else alg[:3]]
            write("jwt", f"fixture-{alg}", signed.encode() + b"\n" + (KEYS / key).read_bytes())


def configs() -> None:
    bundle = base64.b64encode(targz([(f"/{n}", c, tarfile.REGTYPE) for n, c in FILES.items()])).decode()
    for name, config in {
        "inline": {"path": "fuzz/allow", "bundle": {"inline": bundle}},
        "bodies": {"path": "fuzz/allow", "bundle": {"inline": bundle}, "status_on_error": 500,
                   "with_request_body": {"max_request_bytes": 8192, "allow_partial_message": True},
                   "max_eval_memory_bytes": 1048576, "max_eval_instructions": 100000, "max_eval_time_ms": 50},
        "service": {"path": "fuzz/allow", "bundle": {
            "service": {"cluster": "bundles", "authority": "b.test", "path": "/b.tar.gz", "timeout": "2s"},
            "polling": {"min_delay_seconds": 1, "max_delay_seconds": 2},
            "signing": {"keys": {"ci": {"key": (KEYS / "rsa.pub.pem").read_text(), "algorithm": "RS256"}},
                        "scope": "zerohop", "exclude_files": ["*.json"]},
            "size_limit_bytes": 1048576}},
        "flags": {"dry_run": True, "fail_open": True, "timing_stats": True, "decision_cache_bytes": 0,
                  "skip_request_body_parse": True, "bundle": {"inline": bundle}},
    }.items():
        write("config", f"{name}.json", json.dumps(config).encode())
    write("config", "duplicate-keys.json", b'{"path":"a/b","path":"c/d","bundle":{"inline":""}}')


def requests() -> None:
    for name, text in {
        "get": b"GET /api/v1/users?id=1&id=2&x=%20\nx-request-id: abc\ncookie: a=b\n",
        "json": b'POST /p\ncontent-type: application/json\ncontent-length: 25\n\n{"a":[1,2.5e3,{"b":null}]}',
        "form": b"POST /p\ncontent-type: application/x-www-form-urlencoded\n\na=1&b=%zz&c=&&d=\xff",
        "multipart": (b"POST /upload\ncontent-type: multipart/form-data; boundary=XyZ\n\n"
                      b"--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n"
                      b"Content-Type: text/plain\r\n\r\nhello\r\n--XyZ\r\nContent-Disposition: form-data; name=\"g\"\r\n\r\n"
                      b"2\r\n--XyZ--\r\n"),
        "partial": b"POST /p\ncontent-type: application/json\nx-envoy-auth-partial-body: true\n\n{\"a\":",
        "odd-path": b"GET //a/../b/./%2e%2e/%00?;=&==#frag\n",
        "absolute": b"OPTIONS *\n",
        "deep-json": b"POST /\ncontent-type: application/json\n\n" + b"[" * 3000 + b"]" * 3000,
    }.items():
        write("input", name, text)


def decisions() -> None:
    for name, decision in {
        "true": True,
        "false": False,
        "allow": {"allowed": True, "headers": {"x-a": "1", "x-b": ["2", "3"]}, "request_headers_to_remove": ["x-c"],
                  "response_headers_to_add": [{"x-r": "1"}, {"x-r": "2"}], "query_parameters_to_set": {"q": ["1", "2"]},
                  "query_parameters_to_remove": ["z"], "dynamic_metadata": {"k": {"v": 1}}},
        "deny": {"allowed": False, "http_status": 401, "body": "no", "headers": {"www-authenticate": "Bearer"}},
        "injection": {"allowed": True, "headers": {"x-a": "1\r\nx-evil: 1"}},
        "pseudo": {"allowed": True, "headers": {":path": "/admin", "host": "evil"}},
        "hop-by-hop": {"allowed": True, "headers": {"content-length": "0", "transfer-encoding": "chunked", "connection": "close"}},
        "status": {"allowed": False, "http_status": 600},
        "status-float": {"allowed": False, "http_status": 401.5},
        "allowed-string": {"allowed": "true"},
    }.items():
        write("decision", f"{name}.json", json.dumps(decision).encode())


def main() -> None:
    if not BUNDLER.exists():
        sys.exit(f"no {BUNDLER}: run `make build` first")
    for target in ["bundle_targz", "signatures", "jwt", "config", "input", "decision"]:
        shutil.rmtree(OUT / target, ignore_errors=True)
    with tempfile.TemporaryDirectory() as work:
        bundles(Path(work))
    signatures()
    jwts()
    configs()
    requests()
    decisions()


if __name__ == "__main__":
    main()
