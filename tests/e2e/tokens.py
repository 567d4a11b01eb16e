"""JWTs for the differential corpus, signed here with the test keys in testdata/jwt (HS256 with
hmac, RS256 and ES256 with the openssl CLI), so `exp`/`nbf` can be relative to now."""

import base64
import hashlib
import hmac
import json
import subprocess
import time

from harness import ROOT

KEYS = ROOT / "testdata" / "jwt"
NOW = int(time.time())
HOUR = 3600


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _der_to_raw(der: bytes, size: int) -> bytes:
    """An ECDSA DER signature (SEQUENCE of two INTEGERs) as JWS `R || S`."""
    assert der[0] == 0x30 and der[1] < 0x80
    out, at = b"", 2
    for _ in range(2):
        assert der[at] == 0x02
        length = der[at + 1]
        value = der[at + 2:at + 2 + length].lstrip(b"\0")
        out += value.rjust(size, b"\0")
        at += 2 + length
    return out


def sign(alg: str, data: bytes, key) -> bytes:
    if alg == "none":
        return b""
    if alg == "HS256":
        return hmac.new(key.encode() if isinstance(key, str) else key, data, hashlib.sha256).digest()
    signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(key)], input=data,
                               capture_output=True, check=True).stdout
    return _der_to_raw(signature, 32) if alg == "ES256" else signature


def token(alg: str, claims: dict, key, header: dict | None = None) -> str:
    header = header if header is not None else {"alg": alg, "typ": "JWT"}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(sign(alg, signing_input.encode(), key))}"


def bearer(encoded: str) -> dict:
    return {"authorization": f"Bearer {encoded}"}
