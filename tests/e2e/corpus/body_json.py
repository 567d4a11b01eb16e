import json

from corpus import SHOP, Case, Request

JSON = {"content-type": "application/json"}
FORM = {"content-type": "application/x-www-form-urlencoded"}
TEXT = {"content-type": "text/plain"}


def order(body, **headers):
    return Request("POST", "/api/orders", {**JSON, **headers}, body=json.dumps(body).encode())


def upload(*parts):
    body = b"".join(b"--zh\r\nContent-Disposition: form-data; name=\"%s\"\r\n%s\r\n%s\r\n" % part for part in parts)
    return Request("POST", "/upload", {"content-type": "multipart/form-data; boundary=zh"}, body=body + b"--zh--\r\n")


# An order API deciding on JSON, form, multipart and text bodies (`with_request_body`).
CASES = [
    Case("body-json", "bodyapi/authz/allow", settings={"with_request_body": {"max_request_bytes": 512}}, requests=[
        Request("GET", "/api/orders"),
        order({"item": "book", "quantity": 2}),
        order({"item": "book", "quantity": 11}),
        order({"item": "book", "quantity": 50}, **{"x-role": "admin"}),
        order({"item": "gun", "quantity": 1}),
        order({"item": "book", "quantity": "2"}),
        order({"item": "pen", "quantity": 1, "options": {"gift_wrap": True}}, **{"x-role": "guest"}),
        order({"item": "pen", "quantity": 1, "options": {"gift_wrap": True}}, identity=SHOP),
        order([1, 2]),
        Request("POST", "/api/orders", TEXT, body=b'{"item": "book", "quantity": 1}'),
        Request("POST", "/api/orders", {"content-type": "application/json; charset=utf-8"},
                body='{"item":"lamp","quantity":2.0,"note":"caf\u00e9"}'.encode()),
        Request("POST", "/api/orders", JSON, body=b'{"item":"book","quantity":1e1}'),
        Request("PATCH", "/api/orders/42", JSON, body=b'{"status": "cancelled"}'),
        Request("PATCH", "/api/orders/42", JSON, body=b'{"status": "cancelled", "price": 0}'),
        Request("POST", "/login", FORM, body=b"username=alice&password=correct+horse"),
        Request("POST", "/login", FORM, body=b"username=alice&password=short"),
        Request("POST", "/login", FORM, body=b"username=&password=12345678"),
        Request("POST", "/login", FORM, body=b"username=a&username=b&password=12345678"),
        Request("POST", "/login", FORM, body=b"username=%C3%A9mile&password=%2512345678"),
        upload((b"title", b"", b"holiday"), (b"meta", b"Content-Type: application/json\r\n", b'{"visibility": "team"}')),
        upload((b"title", b"", b"holiday"), (b"meta", b"Content-Type: application/json\r\n", b'{"visibility": "public"}')),
        upload((b"title", b"", b"holiday")),
        Request("PUT", "/api/notes", TEXT, body=b"remember the milk"),
        Request("PUT", "/api/notes", TEXT, body=b"x'; DROP TABLE orders; --"),
        Request("PUT", "/api/notes", JSON, body=b'{"note": "json is text too"}'),
        Request("PUT", "/api/notes", TEXT, body=b"n" * 201),
    ]),
    # Bodies over 32 bytes are cut: the policy sees `truncated_body` and no `parsed_body`.
    Case("body-json", "bodyapi/authz/allow", variant="partial",
         settings={"with_request_body": {"max_request_bytes": 32, "allow_partial_message": True}}, requests=[
             order({"item": "pen", "quantity": 1}),
             order({"item": "pen", "quantity": 1, "comment": "over thirty-two bytes"}),
             Request("PUT", "/api/notes", TEXT, body=b"a note longer than thirty-two bytes"),
         ]),
    # Bodies packed as bytes (`rawBody`): still parsed; the text rule finds no `body`.
    Case("body-json", "bodyapi/authz/allow", variant="bytes",
         settings={"with_request_body": {"max_request_bytes": 512, "pack_as_bytes": True}}, requests=[
             order({"item": "lamp", "quantity": 1}),
             Request("PUT", "/api/notes", TEXT, body=b"remember the milk"),
         ]),
]
