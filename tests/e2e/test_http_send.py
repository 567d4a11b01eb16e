"""`http.send` in real Envoy (2 workers): the policy's callout goes to the cluster configured
for the URL's origin while the request waits, and the decision follows the answer: JSON
attributes, an error status, an upstream slower than the request's `timeout`, a reset
connection, an origin without a cluster; concurrent requests each get their own answer."""

import json
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness import Envoy, Listener, ROOT, build_bundle, plugin_config, request, static_cluster, temp_dir
from opa_oracle import OpaEngine

POLICY = """package sendtest

import rego.v1

user := input.attributes.request.http.headers["x-user"]

# Short for the test of a slow upstream; the others run beside a loaded machine.
timeout := "500ms" if startswith(user, "slow") else := "10s"

attributes := http.send({
	"method": "GET",
	"url": sprintf("http://attrs.test/u/%s", [user]),
	"headers": {"x-asked-by": "zerohop"},
	"timeout": timeout,
	"raise_error": false,
	"cache": startswith(user, "cached"),
	"enable_redirect": startswith(user, "moved"),
})

default decision := {"allowed": false, "http_status": 403, "body": "no answer"}

decision := {"allowed": false, "http_status": 403, "body": concat(",", sort(object.keys(attributes.headers)))} if user == "headers"

# The response object as the policy sees it, but for the date, which changes every second.
decision := {"allowed": false, "http_status": 403, "body": json.marshal(shown)} if startswith(user, "shown-")

shown := json.remove(attributes, ["headers/date"])

decision := {"allowed": true, "headers": {"x-role": attributes.body.role}} if {
	not startswith(user, "shown-")
	attributes.status_code == 200
	attributes.body.role == "admin"
}

decision := {"allowed": false, "http_status": 403, "body": sprintf("status %d %s", [attributes.status_code, object.get(attributes, ["error", "code"], "")])} if {
	user != "headers"
	not startswith(user, "shown-")
	not attributes.body.role == "admin"
}

# Another origin, not in http_send.clusters.
elsewhere := http.send({"method": "GET", "url": "https://elsewhere.test/"}) if user == "stranger"
decision := {"allowed": true} if elsewhere
"""


class AttributeServer:
    """Answers `/u/<name>` as `<name>` says: an admin, a user, a 500, a slow answer, a reset."""

    def __init__(self):
        self.asked: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            # Keep-alive, as a real service: an HTTP/1.0 server closes each connection, and a
            # pooled one Envoy reuses as it closes is a reset.
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1].removeprefix("shown-")
                server.asked.append((self.path, self.headers.get("x-asked-by")))
                if name.startswith("reset"):
                    # Closed with a zero linger when the handler returns: a TCP reset.
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    return
                if name.startswith("slow"):
                    time.sleep(1.5)
                if name.startswith("moved-"):
                    # moved-admin-x → admin-x here; moved-away → another origin; moved-loop → itself
                    target = {"moved-away": "https://elsewhere.test/u/admin",
                              "moved-loop": "/u/moved-loop"}.get(name, "/u/" + name.removeprefix("moved-"))
                    self.send_response(302)
                    self.send_header("location", target)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                if name == "headers":
                    self._answer(200, b"{}", "application/json")
                    return
                if name.startswith("broken"):
                    self._answer(500, b"internal error", "text/plain")
                    return
                role = "admin" if name.startswith(("admin", "slowadmin", "cached-admin", "concurrent-a")) else "user"
                if name.startswith("concurrent"):
                    time.sleep(0.2)
                self._answer(200, json.dumps({"role": role}).encode(), "application/json",
                             cache=name.startswith("cached"))

            def _answer(self, status, body, content_type, cache=False):
                self.send_response(status)
                self.send_header("content-type", content_type)
                if cache:
                    self.send_header("cache-control", "max-age=60")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]

    def start(self) -> "AttributeServer":
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.httpd.shutdown()


@pytest.fixture(scope="module")
def setup():
    work = temp_dir("http-send")
    (work / "policy").mkdir()
    (work / "policy" / "send.rego").write_text(POLICY)
    bundle = build_bundle(work / "policy", work / "send.tar.gz", ["sendtest/decision"])
    attrs = AttributeServer().start()
    config = plugin_config(bundle, path="sendtest/decision", status_on_error=500,
                           http_send={"clusters": {"http://attrs.test": "attrs"}})
    from harness import EchoUpstream
    upstream = EchoUpstream().start()
    proxy = Envoy([Listener("send", config)], upstream.port, work,
                  clusters=[static_cluster("attrs", attrs.port)]).start()
    yield proxy, attrs
    proxy.stop()
    upstream.stop()
    attrs.stop()


def ask(proxy, user):
    return request(proxy.listeners["send"].port, "/resource", headers={"x-user": user})


def test_the_decision_follows_the_callout_answer(setup):
    proxy, attrs = setup
    allowed = ask(proxy, "admin-alice")
    assert allowed.status == 200, proxy.log()[-3000:]
    assert ("/u/admin-alice", "zerohop") in attrs.asked
    denied = ask(proxy, "bob")
    assert (denied.status, denied.body) == (403, b"status 200 ")
    # What the policy sees of the response: the upstream's headers, not Envoy's marker.
    headers = ask(proxy, "headers")
    assert (headers.status, headers.body) == (403, b"content-length,content-type,date,server")
    broken = ask(proxy, "broken")
    assert (broken.status, broken.body) == (403, b"status 500 ")


def test_a_slow_or_reset_upstream_is_a_network_error_not_a_stuck_request(setup):
    proxy, _ = setup
    started = time.monotonic()
    slow = ask(proxy, "slowadmin")
    took = time.monotonic() - started
    assert (slow.status, slow.body) == (403, b"status 0 eval_http_send_network_error")
    assert took < 1.4, f"the request's 500 ms timeout did not hold: {took:.2f} s"
    started = time.monotonic()
    reset = ask(proxy, "reset")
    assert (reset.status, reset.body) == (403, b"status 0 eval_http_send_network_error")
    assert time.monotonic() - started < 5, "the reset was not seen before the 10 s timeout"


def test_an_origin_without_a_cluster_fails_the_evaluation(setup):
    proxy, _ = setup
    stranger = ask(proxy, "stranger")
    assert stranger.status == 500
    assert "https://elsewhere.test is not in http_send.clusters" in proxy.log()


def test_enable_redirect_follows_3xx_answers(setup):
    proxy, attrs = setup
    moved = ask(proxy, "moved-admin-erin")
    assert moved.status == 200, moved.body
    assert ("/u/admin-erin", "zerohop") in attrs.asked
    # Go's client stops after 10 redirects: a network error of the call.
    loop = ask(proxy, "moved-loop")
    assert (loop.status, loop.body) == (403, b"status 0 eval_http_send_network_error")
    assert sum(path == "/u/moved-loop" for path, _ in attrs.asked) == 11
    # A redirect to an origin without a cluster fails the evaluation, as a first call would.
    assert ask(proxy, "moved-away").status == 500


def test_an_answer_with_cache_is_kept_by_each_worker(setup):
    """`cache: true` and `Cache-Control: max-age=60`: each worker's VM asks once."""
    proxy, attrs = setup
    for _ in range(8):
        assert ask(proxy, "cached-admin-dora").status == 200
    asked = sum(path == "/u/cached-admin-dora" for path, _ in attrs.asked)
    assert 1 <= asked <= proxy.concurrency, attrs.asked


def test_the_response_object_is_opas(setup):
    """The same upstream answers asked by OPA's own http.send (the real engine, directly) and
    by the policy through Envoy: the same object, but for a network error's message."""
    proxy, attrs = setup
    opa = OpaEngine()
    opa.add_policy("q.rego", "package q\n")
    for name in ["admin-carol", "bob", "broken", "headers", "reset"]:
        through_envoy = ask(proxy, f"shown-{name}")
        assert through_envoy.status == 403, through_envoy.body
        ours = json.loads(through_envoy.body)
        query = ('x := http.send({"method": "GET", "url": "http://127.0.0.1:%d/u/%s", '
                 '"headers": {"x-asked-by": "zerohop"}, "raise_error": false})' % (attrs.port, name))
        theirs = opa.eval_query(query, {})[0]["x"]
        theirs.get("headers", {}).pop("date", None)
        if name == "reset":
            assert (ours["status_code"], ours["error"]["code"]) == (theirs["status_code"], theirs["error"]["code"])
            continue
        assert ours == theirs, name


def test_concurrent_requests_each_get_their_own_answer(setup):
    proxy, _ = setup
    users = [f"concurrent-{'a' if i % 2 else 'u'}{i}" for i in range(40)]
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda u: ask(proxy, u), users))
    for i, (user, answer) in enumerate(zip(users, answers)):
        if i % 2:
            assert answer.status == 200, (user, answer.body)
            assert answer.json()["headers"]["x-role"] == "admin"
        else:
            assert (answer.status, answer.body) == (403, b"status 200 "), user
