"""The filter in real Envoy (2 workers): decisions, failures and identities as clients and
upstreams see them."""

import json
import ssl
import time

import pytest

from harness import raw_request, raw_status, request


def upstream_saw(response):
    assert response.status == 200, (response.status, response.body)
    return response.json()


def test_allow_object_applies_every_mutation(envoy):
    r = request(envoy.port("decision"), "/p/q?keep=1&drop=2",
                headers={"x-replaced": "old", "x-remove-me": "bye", "x-kept": "k"})
    seen = upstream_saw(r)
    assert seen["headers"]["x-added"] == "yes"
    assert seen["headers"]["x-replaced"] == "new"
    assert seen["headers"]["x-multi"] == "one,two"
    assert "x-remove-me" not in seen["headers"]
    assert seen["headers"]["x-kept"] == "k"
    assert seen["path"] == "/p/q?keep=1&set=1"
    assert r.header("x-response") == "added"


def test_deny_object_sends_status_body_and_headers(envoy):
    r = request(envoy.port("decision"), "/", headers={"x-mode": "deny"})
    assert (r.status, r.body) == (401, b"who are you?")
    assert r.header("www-authenticate") == 'Bearer realm="e2e"'


def test_boolean_decisions(envoy):
    assert upstream_saw(request(envoy.port("bool"), "/"))["path"] == "/"
    r = request(envoy.port("bool"), "/", headers={"x-mode": "deny"})
    assert (r.status, r.body) == (403, b"")


@pytest.mark.parametrize("mode", ["bad-status", "bad-header", "bad-type"])
def test_malformed_decisions_get_status_on_error(envoy, mode):
    r = request(envoy.port("decision"), "/", headers={"x-mode": mode})
    assert r.status == 403
    assert "x-injected" not in r.headers
    assert "invalid-decision" in envoy.log()


def test_undefined_decision_gets_status_on_error(envoy):
    assert request(envoy.port("undefined"), "/").status == 403
    assert upstream_saw(request(envoy.port("undefined"), "/", headers={"x-mode": "defined"}))


def test_evaluation_error_gets_configured_status(envoy):
    assert request(envoy.port("expensive"), "/", headers={"x-mode": "expensive"}).status == 500
    assert "instruction limit" in envoy.log()
    assert upstream_saw(request(envoy.port("expensive"), "/"))


def test_fail_open_forwards_undecidable_requests(envoy):
    assert upstream_saw(request(envoy.port("fail-open"), "/x"))["path"] == "/x"


def test_dry_run_never_blocks(envoy):
    seen = upstream_saw(request(envoy.port("dry-run"), "/d", headers={"x-mode": "deny"}))
    assert seen["path"] == "/d"


def test_plain_opa_bundle_is_compiled_in_the_proxy(envoy):
    assert upstream_saw(request(envoy.port("plain"), "/"))
    assert request(envoy.port("plain"), "/", headers={"x-mode": "deny"}).status == 401
    assert 'bundle revision "plain-1" active, decision data.e2e.decision (compiled-at-load)' in envoy.log()


@pytest.mark.parametrize("listener,reason", [
    ("not-gzip", "bundle rejected [not-gzip]: bundle is not a gzip stream"),
    ("bad-rego", "bundle rejected [rego-error]: bad.rego:5:1: expecting expression"),
    ("other-regorus", "bundle rejected [program-version]: precompiled program was built with regorus 0.13.0"),
])
def test_rejected_bundle_fails_closed_with_503(envoy, listener, reason):
    for path in ["/", "/health", "/anything?x=1"]:
        assert request(envoy.port(listener), path).status == 503
    assert reason in envoy.log()


def test_parse_error_is_400(envoy):
    reply = raw_request(envoy.port("bool"), b"GET /a%zz HTTP/1.1\r\nhost: x\r\n\r\n")
    assert raw_status(reply) == 400, reply
    assert b"request_parse_error" in reply


def test_input_document_matches_opa_envoy(envoy):
    r = request(envoy.port("echo"), "/people/a%20b?lang=en&id=1&id=2",
                headers={"x-repeated": "a", "x-request-id": "rid-1", "Authorization": "Bearer t"})
    assert r.status == 200 and r.header("content-type") == "application/json"
    doc = r.json()
    http = doc["attributes"]["request"]["http"]
    assert http["method"] == "GET"
    assert http["path"] == "/people/a%20b?lang=en&id=1&id=2"
    assert http["host"] == f"127.0.0.1:{envoy.port('echo')}"
    assert http["scheme"] == "http"
    assert http["protocol"] == "HTTP/1.1"
    assert http["id"] == "rid-1"
    assert http["headers"]["authorization"] == "Bearer t"
    assert http["headers"][":method"] == "GET"
    assert doc["parsed_path"] == ["people", "a b"]
    assert doc["parsed_query"] == {"lang": ["en"], "id": ["1", "2"]}
    assert doc["version"] == {"ext_authz": "v3", "encoding": "protojson"}
    assert doc["parsed_body"] is None and doc["truncated_body"] is False
    started = doc["attributes"]["request"]["time"]
    assert abs(started["seconds"] + started.get("nanos", 0) / 1e9 - time.time()) < 60, started
    assert doc["attributes"]["destination"]["address"]["socketAddress"] == {
        "address": "127.0.0.1", "portValue": envoy.port("echo")}
    assert doc["attributes"]["source"]["address"]["socketAddress"]["address"] == "127.0.0.1"
    assert "source_principal" not in doc and "principal" not in doc["attributes"]["source"]


def test_repeated_headers_are_joined(envoy):
    reply = raw_request(envoy.port("echo"), b"GET / HTTP/1.1\r\nhost: x\r\nx-r: a\r\nx-r: b\r\nX-R: c\r\n\r\n")
    doc = json.loads(reply.split(b"\r\n\r\n", 1)[1])
    assert doc["attributes"]["request"]["http"]["headers"]["x-r"] == "a,b,c"


def test_mtls_decides_on_spiffe_identity(envoy, pki):
    frontend = pki.client_context(*pki.issue("frontend", uri="spiffe://cluster.local/ns/shop/sa/frontend"))
    intruder = pki.client_context(*pki.issue("intruder", uri="spiffe://cluster.local/ns/shop/sa/intruder"))
    assert upstream_saw(request(envoy.port("mtls"), "/", tls=frontend))
    assert request(envoy.port("mtls"), "/", tls=intruder).status == 403
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        request(envoy.port("mtls"), "/", tls=pki.client_context())


def test_mtls_input_carries_both_principals(envoy, pki):
    frontend = pki.client_context(*pki.issue("frontend2", uri="spiffe://cluster.local/ns/shop/sa/frontend"))
    doc = request(envoy.port("mtls-echo"), "/", tls=frontend).json()
    assert doc["source_principal"] == "spiffe://cluster.local/ns/shop/sa/frontend"
    assert doc["attributes"]["source"]["principal"] == "spiffe://cluster.local/ns/shop/sa/frontend"
    # The server certificate has only a DNS SAN: Envoy's ext_authz falls back to it.
    assert doc["attributes"]["destination"]["principal"] == "localhost"
    assert doc["attributes"]["request"]["http"]["scheme"] == "https"


ODD_REQUESTS = [
    b"GET /caf\xc3\xa9/\xff HTTP/1.1\r\nhost: x\r\n\r\n",
    b"GET /%ff%fe?%zz=1&a=%ff HTTP/1.1\r\nhost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nhost: x\r\nx-odd: \x80\xff\xfe value\r\n\r\n",
    b"GET / HTTP/1.1\r\nhost: x\r\nx-weird!#$%&'*+-.^_`|~: v\r\n\r\n",
    b"GET / HTTP/1.1\r\nhost: x\r\nx-big: " + b"v" * 50_000 + b"\r\n\r\n",
    b"GET / HTTP/1.1\r\nhost: x\r\nx-huge: " + b"v" * 200_000 + b"\r\n\r\n",
    b"GET / HTTP/1.1\r\nhost: x\r\n" + b"".join(b"x-h%d: %d\r\n" % (i, i) for i in range(95)) + b"\r\n",
    b"GET //double//slash HTTP/1.1\r\nhost: x\r\n\r\n",
    b"GET * HTTP/1.1\r\nhost: x\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nhost: x\r\n\r\n",
    b"GET /" + b"a/" * 3000 + b" HTTP/1.1\r\nhost: x\r\n\r\n",
]


@pytest.mark.parametrize("raw", ODD_REQUESTS, ids=range(len(ODD_REQUESTS)))
def test_odd_requests_never_break_the_filter(envoy, raw):
    # Envoy rejects some of these itself (400/431); whatever reaches the filter is decided.
    status = raw_status(raw_request(envoy.port("bool"), raw))
    assert status in (200, 400, 404, 413, 431), status
    # The worker VMs survived: a normal request on every worker still goes through.
    for _ in range(4):
        assert request(envoy.port("bool"), "/after").status == 200
    assert "panicked" not in envoy.log()


def test_grpc_clients_get_a_grpc_status_on_deny(envoy):
    # Envoy turns a local reply to a gRPC request into a gRPC one: HTTP 200, grpc-status
    # from the HTTP status (403 → 7 PERMISSION_DENIED, 401 → 16 UNAUTHENTICATED).
    reply = raw_request(envoy.port("decision"),
                        b"POST /pkg.Service/Method HTTP/1.1\r\nhost: x\r\ncontent-type: application/grpc\r\n"
                        b"x-mode: deny\r\ncontent-length: 0\r\n\r\n")
    head = reply.split(b"\r\n\r\n", 1)[0].lower()
    assert raw_status(reply) == 200, reply
    assert b"grpc-status: 16" in head, reply
