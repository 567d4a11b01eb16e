import base64

from corpus import SHOP, Case, Request, basic_auth

ALICE = {"authorization": basic_auth("alice:password")}
BOB = {"authorization": basic_auth("bob:password")}

# OPA's Istio quick start, unchanged: the RVM cannot compile it, so the filter interprets it.
CASES = [Case("istio-quickstart", "istio/authz/allow", [
    Request("GET", "/health"),
    Request("GET", "/health/"),
    Request("POST", "/health"),
    Request("GET", "/productpage"),
    Request("GET", "/productpage", ALICE),
    Request("GET", "/api/v1/products", ALICE),
    Request("GET", "/api/v1/products", BOB),
    Request("GET", "/productpage", {"authorization": basic_auth("bob:secret")}),
    Request("POST", "/productpage", BOB),
    Request("GET", "/productpage?x=1", ALICE),
    Request("GET", "/productpage", {"authorization": basic_auth("charlie:password")}),
    Request("GET", "/productpage", {"authorization": basic_auth("alice")}),
    Request("GET", "/api/v1/products", {"authorization": basic_auth("bob:x")}, identity=SHOP),
    Request("GET", "/productpage", {"authorization": "Basic " + base64.urlsafe_b64encode(b"alice:??>").decode()}),
    Request("GET", "/api/v1/products/1", ALICE),
    # base64url.decode fails: `user_name` is undefined, `default allow := false` applies.
    Request("GET", "/api/v1/products", {"authorization": "Bearer alice:password"}, opa_envoy_decision=False),
    Request("DELETE", "/productpage", ALICE),
    Request("GET", "/static/style.css", BOB),
    Request("GET", "/productpage", {"authorization": basic_auth("bob:password:extra")}),
    Request("GET", "/productpage", {"authorization": basic_auth(":password")}),
])]
