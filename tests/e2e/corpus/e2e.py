from corpus import OPS, SHOP, WEB, Case, Request

CASES = [
    Case("e2e", "e2e/decision", [
        Request("GET", "/"),
        Request("GET", "/p?keep=1&drop=2", {"x-mode": "allow"}),
        Request("GET", "/", {"x-mode": "deny"}),
        Request("POST", "/", {"x-mode": "bad-status"}),
        Request("GET", "/", {"x-mode": "bad-header"}),
        Request("GET", "/", {"x-mode": "bad-type"}),
        Request("GET", "/", {"x-mode": "unknown"}),
        Request("GET", "/", {"x-mode": "deny"}, identity=SHOP),
    ]),
    Case("e2e", "e2e/spiffe", variant="spiffe", requests=[
        Request("GET", "/"),
        Request("GET", "/", identity=SHOP),
        Request("GET", "/", identity=WEB),
        Request("GET", "/x", identity=OPS),
    ]),
]
