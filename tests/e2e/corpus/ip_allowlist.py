from corpus import Case, Request


def via(xff, path="/internal/metrics", **kwargs):
    return Request("GET", path, {"x-forwarded-for": xff} if xff is not None else {}, **kwargs)


CASES = [Case("ip-allowlist", "network/authz/allow", [
    via(None),
    via("10.1.2.3"),
    via("10.1.2.3, 192.0.2.1"),
    via("192.0.2.1, 10.1.2.3"),
    via(" 10.255.255.255 "),
    via("11.0.0.1"),
    via("127.0.0.1"),
    via("fd12:3456::1"),
    via("fe80::1"),
    via("203.0.113.9", "/partners/acme/orders"),
    via("203.0.113.9", "/partners/globex/orders"),
    via("198.51.100.20", "/partners/globex/orders"),
    via("198.51.100.40", "/partners/globex/orders"),
    via("2001:db8::42", "/partners/globex/feed"),
    via("2001:db9::42", "/partners/globex/feed"),
    via("203.0.113.9", "/partners/acme"),
    # Not an address: net.cidr_contains fails, so no rule matches and `default allow := false` applies.
    via("unknown", opa_envoy_decision=False),
    via("", opa_envoy_decision=False),
    via("10.0.0.1/8"),
    via("203.0.113.9,10.0.0.1", "/partners/acme/x"),
])]
