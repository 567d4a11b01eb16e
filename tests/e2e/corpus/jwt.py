from corpus import Case, Request
from harness import JwtIssuer

ISSUER = JwtIssuer()
# Tokens valid for long enough that the suite never sees them expire.
EXP = 4_000_000_000


def bearer(**claims) -> dict[str, str]:
    return {"authorization": "Bearer " + ISSUER.sign({"exp": EXP, **claims})}


READER = bearer(sub="ann", roles=["reader"])
ADMIN = bearer(sub="root", roles=["admin", "reader"], mfa=True, score=0.75)
CLIENT = bearer(sub="svc", roles=[], tenant="shop")

CASES = [Case("jwt", "envoy/authz/allow", jwt_authn=True, requests=[
    Request("GET", "/products"),
    Request("GET", "/products", READER),
    Request("DELETE", "/products/1", READER),
    Request("DELETE", "/products/1", ADMIN),
    Request("POST", "/shop.Catalog/GetProduct", {**CLIENT, "content-type": "application/json"}),
    Request("POST", "/shop.Catalog/DeleteProduct", CLIENT),
    Request("POST", "/other.Catalog/GetProduct", CLIENT),
])]
