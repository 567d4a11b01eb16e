from corpus import OPS, SHOP, WEB, Case, Request

CASES = [Case("spiffe-allowlist", "mesh/authz/allow", [
    Request(method, path, identity=identity)
    for identity in (SHOP, OPS, WEB, None)
    for method, path in (("GET", "/orders"), ("POST", "/orders"), ("DELETE", "/orders/1"),
                         ("GET", "/healthz"), ("PUT", "/healthz"))
] + [Request("GET", "/orders", {"x-forwarded-client-cert": f"URI={SHOP}"})])]
