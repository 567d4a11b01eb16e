from corpus import Case, Request
from tokens import HOUR, NOW, bearer, token

# The tokens printed in OPA's tutorial (HS256, secret "secret", valid 2018-2041).
ALICE = "eyJhbGciOiAiSFMyNTYiLCAidHlwIjogIkpXVCJ9.eyJleHAiOiAyMjQxMDgxNTM5LCAibmJmIjogMTUxNDg1MTEzOSwgInJvbGUiOiAiZ3Vlc3QiLCAic3ViIjogIllXeHBZMlU9In0.Uk5hgUqMuUfDLvBLnlXMD0-X53aM_Hlziqg3vhOsCc8"
BOB = "eyJhbGciOiAiSFMyNTYiLCAidHlwIjogIkpXVCJ9.eyJleHAiOiAyMjQxMDgxNTM5LCAibmJmIjogMTUxNDg1MTEzOSwgInJvbGUiOiAiYWRtaW4iLCAic3ViIjogIlltOWkifQ.5qsm7rRTvqFHAgiB6evX0a_hWnGbWquZC0HImVQPQo8"


def hs(claims: dict, secret: str = "secret", header: dict | None = None) -> dict:
    return bearer(token("HS256", claims, secret, header))


def admin(**claims) -> dict:
    return {"role": "admin", "sub": "Ym9i", "nbf": NOW - 60, "exp": NOW + HOUR, **claims}


# A malformed token makes io.jwt.decode_verify fail: `token` is undefined, `default allow` applies.
MALFORMED = False

# OPA's Envoy tutorial policy, unchanged (io.jwt.decode_verify with an HMAC secret).
CASES = [Case("envoy-tutorial", "envoy/authz/allow", [
    Request("GET", "/people", bearer(ALICE)),
    Request("GET", "/people", bearer(BOB)),
    Request("POST", "/people", bearer(ALICE)),
    Request("POST", "/people", bearer(BOB)),
    Request("GET", "/people/1", bearer(BOB)),
    Request("GET", "/people"),
    Request("GET", "/people", {"authorization": ALICE}),
    Request("GET", "/people", {"authorization": f"Bearer {ALICE} extra"}),
    Request("GET", "/people", hs(admin())),
    Request("GET", "/people", hs(admin(role="guest"))),
    Request("GET", "/people", hs(admin(role="root"))),
    Request("GET", "/people", hs(admin(exp=NOW - HOUR))),
    Request("GET", "/people", hs(admin(nbf=NOW + HOUR))),
    Request("GET", "/people", hs({"role": "admin", "exp": NOW + HOUR})),
    Request("GET", "/people", hs(admin(), secret="not-the-secret")),
    Request("GET", "/people", bearer(token("none", admin(), None, {"alg": "none"}))),
    Request("GET", "/people", hs(admin(), header={"typ": "JWT"})),
    Request("GET", "/people", hs(admin(), header={"alg": "HS256", "crit": ["x"], "x": 1})),
    Request("GET", "/people", hs(admin(aud="someone"))),
    Request("GET", "/people", hs(admin(pad="x" * 4000))),
    Request("GET", "/people", bearer(ALICE.rsplit(".", 1)[0] + ".AAAA")),
    Request("GET", "/people", bearer("not-a-jwt"), opa_envoy_decision=MALFORMED),
    Request("GET", "/people", bearer("a.b.c"), opa_envoy_decision=MALFORMED),
    Request("GET", "/people", bearer(ALICE + ".extra"), opa_envoy_decision=MALFORMED),
    Request("GET", "/people", hs(admin(exp="tomorrow")), opa_envoy_decision=MALFORMED),
])]
