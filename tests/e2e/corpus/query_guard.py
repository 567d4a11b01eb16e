from corpus import Case, Request

CASES = [Case("query-guard", "search/authz/allow", [
    Request("GET", "/search?q=shoes"),
    Request("GET", "/search?q=shoes&limit=50"),
    Request("GET", "/search?q=shoes&limit=100"),
    Request("GET", "/search?q=shoes&limit=101"),
    Request("GET", "/search?q=shoes&limit=1000"),
    # The regex guard keeps to_number from failing on a non-number.
    Request("GET", "/search?q=shoes&limit=ten"),
    Request("GET", "/search?q=shoes&limit=-1"),
    Request("GET", "/search?q=*"),
    Request("GET", "/search?q=%2A%20%3F"),
    Request("GET", "/search"),
    Request("GET", "/search?q=a&q=b"),
    Request("GET", "/search?q=shoes&sort=date&sort=-price"),
    Request("GET", "/search?q=shoes&sort=popularity"),
    Request("POST", "/search?q=shoes"),
    Request("GET", "/search/?q=shoes"),
    Request("GET", "/export?format=csv"),
    Request("GET", "/export?format=xml"),
    Request("GET", "/export?format=json&from=2024&to=2025"),
    Request("GET", "/export?format=json&from=2024&to=2025&all=1"),
    Request("GET", "/search?q=caf%C3%A9&limit=5"),
    # `url.ParseQuery` fails on a bad escape and on `;`: OPA-Envoy answers 400.
    Request("GET", "/search?q=shoes&limit=%zz", opa_envoy_status=400),
    Request("GET", "/search?q=shoes;limit=5", opa_envoy_status=400),
])]
