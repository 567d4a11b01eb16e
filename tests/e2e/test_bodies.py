"""Request bodies in real Envoy (`with_request_body`, `skip_request_body_parse`): what the policy
sees (the `echo` rule answers with the input it got), what the upstream receives after the
filter buffered the body, and what Envoy answers for bodies over the limit or malformed."""

import base64
import json
import re
import socket
import time

import pytest

from harness import Envoy, Listener, plugin_config, raw_request, raw_status, request

LIMIT = 64


@pytest.fixture(scope="module")
def bodies(workdir, e2e_bundle, upstream):
    def listener(name, rule="e2e/echo", stop_iteration=True, **settings):
        return Listener(name, plugin_config(e2e_bundle, path=rule, **settings),
                        allow_on_headers_stop_iteration=stop_iteration)

    limited = {"max_request_bytes": LIMIT}
    listeners = [
        listener("echo", with_request_body=limited),
        listener("partial", with_request_body={**limited, "allow_partial_message": True}),
        listener("bytes", with_request_body={**limited, "pack_as_bytes": True}),
        listener("skip", with_request_body=limited, skip_request_body_parse=True),
        listener("allow", rule="e2e/allow_bool", with_request_body=limited),
        listener("off"),
        listener("fail-open", with_request_body=limited, fail_open=True),
        listener("roomy", with_request_body={"max_request_bytes": 4096}),
        listener("mutate", rule="e2e/decision", with_request_body=limited),
        listener("no-stop-iteration", stop_iteration=False, with_request_body=limited),
        listener("no-stop-iteration-open", rule="e2e/allow_bool", stop_iteration=False, with_request_body=limited, fail_open=True),
    ]
    (workdir / "bodies").mkdir()
    proxy = Envoy(listeners, upstream.port, workdir / "bodies").start()
    yield proxy
    proxy.stop()


@pytest.fixture(autouse=True)
def _attach_log(request, bodies):
    request.node.envoy_under_test = bodies


def echoed(proxy, listener, body, content_type, method="POST", headers=None):
    r = request(proxy.port(listener), "/orders?x=1", method=method, body=body,
                headers={"content-type": content_type, **(headers or {})})
    assert r.status == 200, (r.status, r.body)
    return r.json()


def http_of(seen):
    return seen["attributes"]["request"]["http"]


def test_json_body_is_in_the_input_as_opa_envoy_builds_it(bodies):
    body = b'{"item":"book","quantity":2,"tags":["a"],"price":9.5}'
    seen = echoed(bodies, "echo", body, "application/json")
    http = http_of(seen)
    assert http["body"] == body.decode()
    assert http["size"] == len(body)
    assert "rawBody" not in http
    assert http["headers"]["x-envoy-auth-partial-body"] == "false"
    assert http["headers"]["content-length"] == str(len(body))
    assert seen["parsed_body"] == {"item": "book", "quantity": 2, "tags": ["a"], "price": 9.5}
    assert seen["truncated_body"] is False


def test_form_body_follows_go_parse_query(bodies):
    seen = echoed(bodies, "echo", b"user=alice&role=admin&role=dev&note=a+b%21&flag", "application/x-www-form-urlencoded")
    assert seen["parsed_body"] == {"user": ["alice"], "role": ["admin", "dev"], "note": ["a b!"], "flag": [""]}


def test_incomplete_multipart_gets_400(bodies):
    body = b"--B\r\nContent-Disposition: form-data; name=t\r\n\r\nunclosed"
    r = request(bodies.port("echo"), "/", method="POST", body=body, headers={"content-type": "multipart/form-data; boundary=B"})
    assert r.status == 400 and r.body.startswith(b"request_parse_error: multipart"), r.body


def test_multipart_body_within_the_limit(bodies):
    body = (b"--B\r\nContent-Disposition: form-data; name=t\r\n\r\nhi\r\n"
            b"--B\r\nContent-Disposition: form-data; name=m\r\nContent-Type: application/json\r\n\r\n[1]\r\n--B--")
    seen = echoed(bodies, "roomy", body, "multipart/form-data; boundary=B")
    assert seen["parsed_body"] == {"t": ["hi"], "m": [[1]]}


def test_malformed_json_gets_400_as_opa_envoy(bodies):
    r = request(bodies.port("echo"), "/", method="POST", body=b'{"item":', headers={"content-type": "application/json"})
    assert r.status == 400
    assert r.body.startswith(b"request_parse_error: invalid JSON body"), r.body
    # 400 is OPA-Envoy's answer to a request it cannot parse, not an authorizer failure: fail_open does not apply.
    r = request(bodies.port("fail-open"), "/", method="POST", body=b"{", headers={"content-type": "application/json"})
    assert r.status == 400


def test_binary_body_as_a_string_fails_closed_and_as_bytes_reaches_the_policy(bodies):
    png = b"\x89PNG\r\n\x1a\n\x00\xff"
    r = request(bodies.port("echo"), "/", method="POST", body=png, headers={"content-type": "image/png"})
    assert r.status == 403
    assert re.search(r"evaluation-error \(decision_id [0-9a-f-]{36}\): request body is not UTF-8", bodies.log())
    seen = echoed(bodies, "bytes", png, "image/png")
    assert base64.b64decode(http_of(seen)["rawBody"]) == png
    assert "body" not in http_of(seen)
    assert seen["parsed_body"] is None
    # fail_open lets it through, as Envoy's failure_mode_allow does when the check fails.
    r = request(bodies.port("fail-open"), "/", method="POST", body=png, headers={"content-type": "image/png"})
    assert r.status == 200 and r.json()["method"] == "POST"


def test_json_packed_as_bytes_is_still_parsed(bodies):
    seen = echoed(bodies, "bytes", b'{"a":[1,2]}', "application/json")
    assert base64.b64decode(http_of(seen)["rawBody"]) == b'{"a":[1,2]}'
    assert seen["parsed_body"] == {"a": [1, 2]}


def test_request_without_body_is_decided_at_the_headers(bodies):
    seen = request(bodies.port("echo"), "/x").json()
    http = http_of(seen)
    assert "body" not in http and "size" not in http
    assert "x-envoy-auth-partial-body" not in http["headers"]
    assert (seen["parsed_body"], seen["truncated_body"]) == (None, False)


def test_empty_chunked_body(bodies):
    reply = raw_request(bodies.port("echo"), b"POST /e HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                                              b"transfer-encoding: chunked\r\n\r\n0\r\n\r\n")
    assert raw_status(reply) == 200, reply
    seen = json.loads(reply.split(b"\r\n\r\n", 1)[1])
    http = http_of(seen)
    assert "body" not in http
    assert seen["parsed_body"] is None


def send_chunked(port, head: bytes, chunks: list[bytes]) -> bytes:
    """A chunked upload written piece by piece, so Envoy sees several body callbacks."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head + b"transfer-encoding: chunked\r\n\r\n")
        for chunk in chunks:
            time.sleep(0.05)  # pacing only: lets each chunk arrive on its own
            s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        s.sendall(b"0\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < int(
                data.lower().split(b"content-length:")[1].split(b"\r\n")[0]):
            part = s.recv(65536)
            if not part:
                break
            data += part
        return data


def test_body_in_many_chunks_is_decided_whole_and_forwarded_whole(bodies):
    chunks = [b'{"item":', b'"book",', b'"quantity":', b"3}"]
    reply = send_chunked(bodies.port("echo"), b"POST /c HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n", chunks)
    assert raw_status(reply) == 200, reply
    seen = json.loads(reply.split(b"\r\n\r\n", 1)[1])
    assert seen["parsed_body"] == {"item": "book", "quantity": 3}
    assert http_of(seen)["size"] == sum(map(len, chunks))
    reply = send_chunked(bodies.port("allow"), b"POST /c HTTP/1.1\r\nhost: x\r\ncontent-type: text/plain\r\n", [b"one ", b"two ", b"three"])
    assert raw_status(reply) == 200, reply
    assert json.loads(reply.split(b"\r\n\r\n", 1)[1])["body"] == "one two three"


def test_allowed_body_reaches_the_upstream_intact(bodies):
    body = b"x" * LIMIT
    r = request(bodies.port("allow"), "/u", method="PUT", body=body, headers={"content-type": "text/plain"})
    assert r.status == 200 and r.json()["body"] == body.decode()
    r = request(bodies.port("allow"), "/u", method="PUT", body=b"{}", headers={"x-mode": "deny", "content-type": "application/json"})
    assert r.status == 403


def test_body_over_the_limit_gets_413(bodies):
    r = request(bodies.port("echo"), "/", method="POST", body=b"y" * (LIMIT + 1), headers={"content-type": "text/plain"})
    assert (r.status, r.body) == (413, b"Payload Too Large")
    # Without a declared length the limit is found while buffering.
    reply = send_chunked(bodies.port("echo"), b"POST /big HTTP/1.1\r\nhost: x\r\ncontent-type: text/plain\r\n",
                         [b"z" * 40, b"z" * 40])
    assert raw_status(reply) == 413, reply
    # Exactly the limit first, then one byte more: still over.
    reply = send_chunked(bodies.port("allow"), b"POST /big HTTP/1.1\r\nhost: x\r\ncontent-type: text/plain\r\n",
                         [b"z" * LIMIT, b"z"])
    assert raw_status(reply) == 413, reply


def test_body_over_the_limit_with_allow_partial_message_is_truncated(bodies):
    body = json.dumps({"item": "book", "note": "n" * 80}).encode()
    seen = echoed(bodies, "partial", body, "application/json")
    http = http_of(seen)
    assert http["body"] == body[:LIMIT].decode()
    assert http["size"] == len(body)
    assert http["headers"]["x-envoy-auth-partial-body"] == "true"
    assert (seen["parsed_body"], seen["truncated_body"]) == (None, True)


def test_skip_request_body_parse_leaves_parsing_to_the_policy(bodies):
    seen = echoed(bodies, "skip", b"{not json", "application/json")
    assert http_of(seen)["body"] == "{not json"
    assert "parsed_body" not in seen and "truncated_body" not in seen


def test_bodies_off_keep_the_body_out_of_the_input(bodies):
    seen = echoed(bodies, "off", b'{"a":1}', "application/json")
    http = http_of(seen)
    assert "body" not in http and "size" not in http
    assert "x-envoy-auth-partial-body" not in http["headers"]
    assert (seen["parsed_body"], seen["truncated_body"]) == (None, False)


def test_client_cannot_claim_a_partial_body(bodies):
    seen = echoed(bodies, "echo", b'{"a":1}', "application/json", headers={"x-envoy-auth-partial-body": "true"})
    assert http_of(seen)["headers"]["x-envoy-auth-partial-body"] == "false"
    assert seen["parsed_body"] == {"a": 1}


def test_decision_changes_apply_after_the_body(bodies):
    """Headers and the query are changed once the body is in, before anything went upstream."""
    r = request(bodies.port("mutate"), "/p?keep=1&drop=2", method="POST", body=b'{"a":1}',
                headers={"content-type": "application/json", "x-remove-me": "bye"})
    assert r.status == 200, (r.status, r.body)
    seen = r.json()
    assert seen["headers"]["x-added"] == "yes" and "x-remove-me" not in seen["headers"]
    assert seen["path"] == "/p?keep=1&set=1"
    assert seen["body"] == '{"a":1}'
    assert r.header("x-response") == "added"
    r = request(bodies.port("mutate"), "/", method="POST", body=b"{}", headers={"x-mode": "deny"})
    assert (r.status, r.body) == (401, b"who are you?")


def test_body_ended_by_trailers_is_decided_at_the_trailers(bodies):
    reply = raw_request(bodies.port("echo"), b"POST /t HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                                              b"transfer-encoding: chunked\r\n\r\n7\r\n{\"a\":1}\r\n0\r\nx-trailer: t\r\n\r\n")
    assert raw_status(reply) == 200, reply
    seen = json.loads(reply.split(b"\r\n\r\n", 1)[1])
    assert seen["parsed_body"] == {"a": 1}
    assert http_of(seen)["size"] == 7


def test_without_allow_on_headers_stop_iteration_bodies_fail_closed_not_stall(bodies):
    """Envoy holds the body back from a filter that holds the headers unless the PluginConfig
    sets allow_on_headers_stop_iteration: the filter notices no body arrives and answers 503
    (or lets the request through with fail_open) instead of leaving it hanging."""
    r = request(bodies.port("no-stop-iteration"), "/", method="POST", body=b'{"a":1}',
                headers={"content-type": "application/json"})
    assert (r.status, r.body) == (503, b"request body not delivered to the filter")
    assert "no-stop-iteration: no request body reached the filter in 5s: the Wasm PluginConfig needs " \
           "allow_on_headers_stop_iteration: true" in bodies.log()
    r = request(bodies.port("no-stop-iteration-open"), "/", method="POST", body=b"hello", headers={"content-type": "text/plain"})
    assert r.status == 200 and r.json()["body"] == "hello"
    # Requests without a body never wait.
    assert request(bodies.port("no-stop-iteration"), "/").status == 200
