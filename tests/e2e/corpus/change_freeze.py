from corpus import Case, Request

CASES = [Case("change-freeze", "freeze/authz/allow", [
    Request(method, path, headers)
    for method in ("GET", "POST", "PUT", "DELETE")
    for path, headers in (
        ("/deployments", {}),
        ("/deployments/42", {"x-emergency-ticket": "INC-1234"}),
        ("/deployments/42", {"x-emergency-ticket": "INC-12"}),
        ("/config", {"x-emergency-ticket": "INC-98765"}),
        ("/config", {"x-emergency-ticket": "inc-1234"}),
    )
] + [Request("PATCH", "/config", {"x-emergency-ticket": "INC-5555"})])]
