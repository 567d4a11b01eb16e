import subprocess
import tempfile
from pathlib import Path

from corpus import Case, Request
from tokens import HOUR, KEYS, NOW, bearer, token

RSA, EC = KEYS / "rsa.key", KEYS / "ec256.key"
# A key the JWKS does not hold, made for this run.
OTHER = Path(tempfile.mkdtemp()) / "other.key"
subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                "-out", str(OTHER)], capture_output=True, check=True)


def claims(**extra) -> dict:
    return {"iss": "https://issuer.example", "aud": "orders", "sub": "alice",
            "scope": ["orders:read"], "nbf": NOW - 60, "exp": NOW + HOUR, **extra}


def rs(key=RSA, kid="rsa-1", **extra) -> dict:
    header = {"alg": "RS256", "typ": "JWT", **({"kid": kid} if kid else {})}
    return bearer(token("RS256", claims(**extra), key, header))


def es(kid="ec-1", **extra) -> dict:
    header = {"alg": "ES256", **({"kid": kid} if kid else {})}
    return bearer(token("ES256", claims(**extra), EC, header))


WRITE = ["orders:read", "orders:write"]

# RS256/ES256 tokens against the JWKS in data (io.jwt.decode_verify with cert, iss, aud) and
# io.jwt.verify_rs256.
CASES = [Case("jwt-jwks", "envoy/authz/allow", [
    Request("GET", "/orders", rs()),
    Request("GET", "/orders/7", es()),
    Request("POST", "/orders", rs()),
    Request("POST", "/orders", rs(scope=WRITE)),
    Request("POST", "/orders", es(scope=WRITE)),
    Request("GET", "/orders", rs(kid=None)),
    Request("GET", "/orders", es(kid=None)),
    Request("GET", "/orders", rs(kid="ec-1")),
    Request("GET", "/orders", rs(kid="unknown")),
    Request("GET", "/orders", rs(key=OTHER)),
    Request("GET", "/orders", rs(iss="https://evil.example")),
    Request("GET", "/orders", rs(aud="billing")),
    Request("GET", "/orders", rs(aud=["billing", "orders"])),
    Request("GET", "/orders", rs(exp=NOW - 10)),
    Request("GET", "/orders", es(nbf=NOW + HOUR)),
    Request("GET", "/orders", rs(exp=NOW + HOUR + 0.5)),
    Request("GET", "/orders", bearer(token("none", claims(), None, {"alg": "none", "kid": "rsa-1"}))),
    # HS256 signed with the RSA public key's PEM: the classic key-confusion attack.
    Request("GET", "/orders", bearer(token("HS256", claims(), (KEYS / "rsa.pub").read_bytes(),
                                           {"alg": "HS256", "kid": "rsa-1"}))),
    Request("GET", "/orders", {"authorization": "Basic abc"}),
    Request("GET", "/orders"),
    Request("GET", "/legacy", rs()),
    Request("GET", "/legacy", es()),
    Request("GET", "/legacy", rs(key=OTHER)),
    # A malformed token is a builtin error in both functions: undefined, `default allow` applies.
    Request("GET", "/orders", bearer("x.y"), opa_envoy_decision=False),
    Request("GET", "/legacy", bearer("garbage"), opa_envoy_decision=False),
    Request("GET", "/orders", rs(exp="never"), opa_envoy_decision=False),
])]
