"""A bundle exactly as `opa build --signing-key K --signing-alg RS256` writes it, with the JWS
made by the real OPA engine (`io.jwt.encode_sign`, OPA's own JWS library) — there is no `opa`
binary here, so the rest follows OPA's source, step by step:

- `v1/bundle/bundle.go` `Writer.Write`: `/data.json` (all data, merged), each module at its
  `/path`, `/.signatures.json` (`json.MarshalIndent(..., "", " ")`), `/.manifest`;
- `GenerateSignature` + `hashBundleFiles`: modules hashed over their bytes, `data.json` and
  `.manifest` over their canonical JSON (`hash.go`: keys sorted, no whitespace), SHA-256, names
  without the leading `/`;
- `sign.go` `generatePayload`: `{"files": [...], "keyid": <key id>}`, header `kid` = key id.
"""

import base64
import hashlib
import io
import json
import re
import subprocess
import tarfile
from pathlib import Path

from opa_oracle import OpaEngine


def canonical(value) -> bytes:
    # Equal to Go's encoding for the plain ASCII data used here.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def rsa_jwk(private_pem: Path) -> dict:
    """The JWK of an RSA private key, read with openssl."""
    text = subprocess.run(["openssl", "rsa", "-in", str(private_pem), "-noout", "-text"],
                          check=True, capture_output=True, text=True).stdout
    fields = {}
    for name, body in re.findall(r"^(\w+):\s*\n((?:\s+[0-9a-f:]+\n)+)", text, re.M):
        fields[name] = bytes.fromhex(re.sub(r"[\s:]", "", body)).lstrip(b"\0")
    exponent = int(re.search(r"publicExponent: (\d+)", text).group(1))
    number = lambda name: b64url(fields[name])  # noqa: E731
    return {"kty": "RSA", "n": number("modulus"), "e": b64url(exponent.to_bytes(3, "big")),
            "d": number("privateExponent"), "p": number("prime1"), "q": number("prime2"),
            "dp": number("exponent1"), "dq": number("exponent2"), "qi": number("coefficient")}


def opa_signed_bundle(modules: dict[str, bytes], data: dict, manifest: dict, private_pem: Path, key_id: str,
                      scope: str | None = None) -> bytes:
    files = [{"name": path, "hash": hashlib.sha256(source).hexdigest(), "algorithm": "SHA-256"}
             for path, source in modules.items()]
    files.append({"name": "data.json", "hash": hashlib.sha256(canonical(data)).hexdigest(), "algorithm": "SHA-256"})
    files.append({"name": ".manifest", "hash": hashlib.sha256(canonical(manifest)).hexdigest(),
                  "algorithm": "SHA-256"})
    # `opa build` puts `scope` there only from a claims file; the filter's configured scope needs it.
    payload = {"files": files, "keyid": key_id, **({"scope": scope} if scope else {})}
    engine = OpaEngine()
    engine.add_policy("sign.rego", "package sign\ntoken := io.jwt.encode_sign(input.header, input.payload, input.key)\n")
    token = engine.eval_document("sign.token", {"header": {"alg": "RS256", "kid": key_id}, "payload": payload,
                                                "key": rsa_jwk(private_pem)})
    entries = {"/data.json": json.dumps(data).encode() + b"\n"}
    entries.update({"/" + path: source for path, source in modules.items()})
    entries["/.signatures.json"] = json.dumps({"signatures": [token]}, indent=" ").encode()
    entries["/.manifest"] = json.dumps(manifest).encode() + b"\n"
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, content in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return out.getvalue()
