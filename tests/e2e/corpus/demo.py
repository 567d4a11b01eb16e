from corpus import OPS, SHOP, WEB, Case, Request

CASES = [Case("demo", "envoy/authz/allow", [
    Request("GET", "/health"),
    Request("GET", "/health/"),
    Request("GET", "/products"),
    Request("GET", "/products", identity=SHOP),
    Request("GET", "/products/42?fields=name&fields=price", identity=SHOP),
    Request("POST", "/products", identity=SHOP),
    Request("DELETE", "/products/42", identity=SHOP),
    Request("GET", "/orders", identity=SHOP),
    Request("GET", "//products", identity=SHOP),
    Request("GET", "/%70roducts", identity=SHOP),
    Request("GET", "/products", identity=WEB),
    Request("GET", "/health", identity=WEB),
    Request("DELETE", "/products/42", identity=OPS),
    Request("PUT", "/anything?x=1", identity=OPS),
    Request("GET", "/products", {"x-forwarded-client-cert": f"URI={SHOP}"}),
    Request("PATCH", "/health"),
    Request("OPTIONS", "/products", identity=SHOP),
    Request("GET", "/products/", identity=SHOP),
    Request("GET", "/PRODUCTS", identity=SHOP),
    # A query pair that does not decode: OPA-Envoy answers 400 (`url.ParseQuery` fails).
    Request("GET", "/products?%zz=1&a=2", identity=SHOP, opa_envoy_status=400),
])]
