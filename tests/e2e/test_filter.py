"""The filter in real Envoy (2 workers): decisions, failures and identities as clients and
upstreams see them."""

import json
import re
import ssl
import time
import urllib.request
import uuid

import pytest

from harness import raw_request, raw_status, request


def upstream_saw(response):
    assert response.status == 200, (response.status, response.body)
    return response.json()


def test_allow_object_applies_every_mutation(envoy):
    r = request(envoy.port("decision"), "/p/q?zed=1&keep=1&drop=2&set=0",
                headers={"x-replaced": "old", "x-remove-me": "bye", "x-kept": "k", "x-multi": "client"})
    seen = upstream_saw(r)
    assert seen["headers"]["x-added"] == "yes"
    assert seen["headers"]["x-replaced"] == "new"
    # Each value of an array overwrites the one before, as Envoy's ext_authz applies
    # OPA-Envoy's header options: the last one stays.
    assert seen["headers"]["x-multi"] == "two"
    assert "x-remove-me" not in seen["headers"]
    assert seen["headers"]["x-kept"] == "k"
    # Envoy writes the rewritten query back sorted by name.
    assert seen["path"] == "/p/q?keep=1&set=1&zed=1"
    assert r.header("x-response") == "added"


UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


@pytest.mark.parametrize("listener,headers,status,metadata", [
    ("decision", {}, 200, {"user": "alice"}),
    ("decision", {"x-mode": "deny"}, 401, {"reason": "no credentials", "attempts": 1}),
    # Dry-run forwards the deny but keeps its metadata, as OPA-Envoy does.
    ("dry-run", {"x-mode": "deny"}, 200, {"reason": "no credentials", "attempts": 1}),
    ("bool", {"x-mode": "deny"}, 403, None),
    ("undefined", {}, 403, None),
    ("not-gzip", {}, 503, None),
])
def test_every_decision_has_an_id_in_the_access_log(envoy, listener, headers, status, metadata):
    path = f"/logged/{uuid.uuid4()}"
    assert request(envoy.port(listener), path, headers=headers).status == status
    entry = envoy.access_log(path)
    assert entry["listener"] == listener and entry["status"] == status
    assert UUID4.match(entry["decision_id"]), entry
    if metadata is None:
        assert entry["dynamic_metadata"] is None, entry
    else:
        # The policy's dynamic_metadata with the decision id in it (the policy's own
        # `decision_id` is replaced, as OPA-Envoy replaces it).
        assert json.loads(entry["dynamic_metadata"]) == {**metadata, "decision_id": entry["decision_id"]}


def test_decision_ids_are_unique(envoy):
    ids = set()
    for i in range(20):
        path = f"/unique/{i}/{uuid.uuid4()}"
        request(envoy.port("bool"), path)
        ids.add(envoy.access_log(path)["decision_id"])
    assert len(ids) == 20


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
    assert doc["attributes"]["metadataContext"] == {} and doc["attributes"]["routeMetadataContext"] == {}


def test_jwt_authn_payload_is_in_the_metadata_context(envoy, jwt_issuer):
    claims = {"sub": "alice", "groups": ["admin", "dev"], "exp": int(time.time()) + 600, "ratio": 0.5,
              "nested": {"ok": True, "none": None}}
    token = jwt_issuer.sign(claims)
    doc = request(envoy.port("jwt-echo"), "/", headers={"authorization": f"Bearer {token}"}).json()
    context = doc["attributes"]["metadataContext"]
    assert context == {"filterMetadata": {"envoy.filters.http.jwt_authn": {
        jwt_issuer.PAYLOAD_KEY: {"iss": jwt_issuer.ISSUER, **claims}}}}
    # Without a token jwt_authn writes nothing, and the context is empty as OPA-Envoy shows it.
    assert request(envoy.port("jwt-echo"), "/").json()["attributes"]["metadataContext"] == {}
    # A token that does not verify never reaches the policy: jwt_authn answers 401.
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert request(envoy.port("jwt-echo"), "/", headers={"authorization": f"Bearer {forged}"}).status == 401


def test_service_cluster_header_is_the_source_service(envoy):
    doc = request(envoy.port("echo"), "/", headers={"x-envoy-downstream-service-cluster": "frontend"}).json()
    # Envoy drops x-envoy-* headers only from external clients; loopback is internal, so the
    # header reaches the filter, which reports it where Envoy's ext_authz does.
    assert doc["attributes"]["source"].get("service") == "frontend"


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


@pytest.mark.parametrize("listener,mode,grpc_status", [
    ("bool", "deny", 7),        # 403 → PERMISSION_DENIED
    ("decision", "deny", 16),   # http_status 401 → UNAUTHENTICATED
    ("not-gzip", "allow", 14),  # no bundle, 503 → UNAVAILABLE
    ("bool", "allow", None),    # allowed: the upstream answers
])
def test_grpc_clients_get_a_grpc_status_on_deny(envoy, listener, mode, grpc_status):
    # Envoy turns a local reply to a gRPC request into a gRPC one: HTTP 200 and grpc-status
    # from the HTTP status, as it does for ext_authz denials in front of OPA-Envoy.
    reply = raw_request(envoy.port(listener),
                        b"POST /pkg.Service/Method HTTP/1.1\r\nhost: x\r\ncontent-type: application/grpc\r\n"
                        b"x-mode: " + mode.encode() + b"\r\ncontent-length: 0\r\n\r\n")
    head = reply.split(b"\r\n\r\n", 1)[0].lower()
    assert raw_status(reply) == 200, reply
    if grpc_status is None:
        assert b"grpc-status" not in head and b'"path": "/pkg.Service/Method"' in reply, reply
    else:
        assert f"grpc-status: {grpc_status}\r\n".encode() in head + b"\r\n", reply


def cache_counts(envoy) -> tuple[int, int]:
    return (envoy.stat("wasmcustom.zerohop.decision_cache.hits"),
            envoy.stat("wasmcustom.zerohop.decision_cache.misses"))


def test_repeated_inputs_are_answered_from_the_decision_cache(envoy):
    alice = {"authorization": "Basic YWxpY2U6cGFzc3dvcmQ="}  # OPA's Istio quick start: alice is a guest
    assert "cached: bundle revision" in envoy.log() and "decision cache on" in envoy.log()
    assert "uncached: bundle revision" in envoy.log() and "decision cache off\n" in envoy.log()
    before = cache_counts(envoy)
    for _ in range(3):
        for listener in ("cached", "uncached"):
            # Two inputs, each decided the same every time, from the cache or not.
            assert request(envoy.port(listener), "/productpage", headers=alice).status == 200
            assert request(envoy.port(listener), "/productpage").status == 403
            # Another request id, user agent and connection: the input (authorization, method,
            # path) is the same.
            assert request(envoy.port(listener), "/productpage", headers={**alice, "user-agent": "x"}).status == 200
    # Counted on each VM's tick (every second). The uncached listener counts nothing; each of
    # Envoy's two workers evaluates each of the two inputs once at most. Only this listener can
    # hit (the e2e rules read the request id), while other tests' misses may still be landing.
    deadline = time.monotonic() + 10
    while cache_counts(envoy)[0] - before[0] < 5:
        assert time.monotonic() < deadline, (before, cache_counts(envoy))
        time.sleep(0.2)
    time.sleep(1.5)  # every worker has ticked since
    hits, misses = (now - then for now, then in zip(cache_counts(envoy), before))
    assert 5 <= hits <= 7 and misses >= 9 - hits, (hits, misses)


def test_timing_stats_record_each_phase_of_a_decision(envoy):
    for _ in range(3):
        assert request(envoy.port("timed"), "/p/q").status == 200
    phases = ("request", "input", "evaluate", "apply")
    url = f"http://127.0.0.1:{envoy.admin_port}/stats?format=json&filter=zerohop%5C.time"
    deadline = time.monotonic() + 15  # histogram quantiles appear at a stats flush (every 5 s)
    while True:
        with urllib.request.urlopen(url, timeout=5) as r:
            stats = json.load(r)["stats"]
        histograms = next((s["histograms"] for s in stats if "histograms" in s), {})
        p50 = histograms.get("supported_quantiles", []).index(50) if histograms else 0
        seen = {h["name"]: h["values"][p50]["cumulative"] for h in histograms.get("computed_quantiles", [])}
        if all(seen.get(f"wasmcustom.zerohop.time.{p}_ns") for p in phases):
            break
        assert time.monotonic() < deadline, f"no timing histograms with samples: {histograms}"
        time.sleep(0.5)
