from corpus import Case, Request


def key(value, path="/v1/orders", method="GET"):
    return Request(method, path, {"x-api-key": value} if value is not None else {})


CASES = [Case("response-controls", "partner/authz/result", [
    key("k-gold-1"),
    key("k-silver-1"),
    key("k-bronze-1"),
    key("k-disabled"),
    key("nope"),
    key(None),
    key(""),
    key("k-gold-1", "/v1/orders?debug=1&token=x&plan=free"),
    key("k-silver-1", "/v1/orders/7?fields=all"),
    key("k-gold-1", "/", "POST"),
    key("k-gold-1", "/v1/orders/", "DELETE"),
    key("K-GOLD-1"),
    key("k-gold-1 "),
    key(None, "/v1/orders?x-api-key=k-gold-1"),
    key("k-silver-1", "/v1/a/b/c/d"),
    key("k-bronze-1", "/v1/orders?plan=gold"),
    Request("GET", "/v1/orders", {"x-api-key": "k-gold-1", "cookie": "session=1"}),
    Request("GET", "/v1/orders", {"x-api-key": "k-disabled", "authorization": "Bearer x"}),
    key("k-gold-1", "/%2e%2e/admin"),
    key("k-silver-1", "/v1/orders", "OPTIONS"),
])]
