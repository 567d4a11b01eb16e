from corpus import Case, Request

UA = {"user-agent": "shop-client/2.1"}
JSON = {**UA, "content-type": "application/json"}

CASES = [Case("request-hygiene", "hygiene/authz/decision", [
    Request("GET", "/", UA),
    Request("GET", "/", {}),
    Request("GET", "/", {"user-agent": ""}),
    Request("GET", "/", {"user-agent": "sqlmap/1.7"}),
    Request("GET", "/", {"user-agent": "Mozilla/5.0 SQLMap"}),
    Request("GET", "/", {"user-agent": "Nikto/2.5"}),
    Request("GET", "/", {"user-agent": "curl/8 nikto"}),
    Request("POST", "/orders", JSON, body=b"{}"),
    Request("POST", "/orders", {**UA, "content-type": "Application/JSON; charset=utf-8"}, body=b"{}"),
    Request("POST", "/orders", {**UA, "content-type": "text/plain"}, body=b"x"),
    Request("POST", "/orders", UA, body=b"x"),
    Request("PUT", "/orders/1", {**UA, "content-type": "multipart/form-data; boundary=x"}, body=b"--x--"),
    Request("PATCH", "/orders/1", {**UA, "content-type": "application/x-www-form-urlencoded"}, body=b"a=1"),
    Request("DELETE", "/orders/1", UA),
    Request("POST", "/upload", {**JSON, "content-length": "2000000"}, body=b"0" * 2000000),
    Request("POST", "/upload", JSON, body=b"0" * 1048576),
    Request("GET", "/", {**UA, "x-original-url": "/admin"}),
    Request("GET", "/", {"x-rewrite-url": "/admin", "user-agent": "sqlmap"}),
    Request("POST", "/orders", {"user-agent": "sqlmap", "content-type": "text/xml"}, body=b"<a/>"),
    Request("GET", "/?user-agent=sqlmap", UA),
])]
