from corpus import Case, Request


def key(value, path):
    return Request("GET", path, {"x-api-key": value} if value is not None else {})


# key-<i>: plan free/pro/enterprise by i mod 3, revoked when i mod 50 == 7 (see the policy's README).
CASES = [Case("api-key-lookup", "apikeys/authz/decision", [
    key("key-00000", "/v1/search?q=x"),
    key("key-00000", "/v1/reports"),
    key("key-00001", "/v1/reports/7"),
    key("key-00001", "/v1/exports"),
    key("key-00002", "/v1/exports/daily"),
    key("key-00007", "/v1/search"),
    key("key-00057", "/v1/search"),
    key("key-09999", "/v1/search"),
    key("key-09998", "/v1/exports"),
    key("key-10000", "/v1/search"),
    key("key-5000", "/v1/search"),
    key(None, "/v1/search"),
    key("", "/v1/search"),
    key("key-04242", "/v2/search"),
    key("key-04243", "/v1/searching"),
    key("key-04244", "/"),
    key("KEY-00000", "/v1/search"),
    key("key-00107", "/v1/reports"),
    key("key-03333", "/v1/exports?format=csv"),
    key("key-06667", "/v1/reports"),
])]
