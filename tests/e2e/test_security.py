"""Security review in real Envoy, where the behaviour lives in Envoy: what a decision can do
to the request the upstream gets and to the response the client gets. The policy returns the
decision the test sends (base64url JSON in `?d=`), as a policy that copies request data into
its decision would.

Each test names the review point it covers (docs/security.md)."""

import base64
import json
import socket
import threading
import time

import pytest

from harness import Envoy, Listener, build_bundle, plugin_config, raw_request, raw_status, request

POLICY = """package sec

import rego.v1

default decision := false

decision := json.unmarshal(base64url.decode(input.parsed_query.d[0])) if input.parsed_query.d

# A deny whose body is `kb` KiB, built by the policy.
decision := {"allowed": false, "http_status": 403, "body": concat("", [kib | some _ in numbers.range(1, n)])} if {
	n := to_number(input.parsed_query.kb[0])
}

kib := concat("", [s | some _ in numbers.range(1, 32); s := "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"])
"""


class RecordingUpstream:
    """An HTTP/1.1 upstream on raw sockets that answers 200 to the first request on each
    connection and records every byte it receives, so a request smuggled inside another
    one's body shows up."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        conn.settimeout(0.5)
        data, answered = b"", False
        try:
            while True:
                try:
                    chunk = conn.recv(65536)
                except socket.timeout:
                    break
                if not chunk:
                    break
                data += chunk
                if not answered and b"\r\n\r\n" in data:
                    answered = True
                    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\nconnection: close\r\n\r\nupstream ok")
        except OSError:
            pass
        finally:
            with self.lock:
                self.received.append(data)
            conn.close()

    def take(self) -> bytes:
        with self.lock:
            data, self.received = b"".join(self.received), []
        return data

    def stop(self):
        self.sock.close()


def d(decision) -> str:
    return base64.urlsafe_b64encode(json.dumps(decision).encode()).decode().rstrip("=")


@pytest.fixture(scope="module")
def recording():
    server = RecordingUpstream()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sec(tmp_path_factory, recording):
    workdir = tmp_path_factory.mktemp("security")
    (workdir / "policy").mkdir()
    (workdir / "policy" / "policy.rego").write_text(POLICY)
    bundle = build_bundle(workdir / "policy", workdir / "bundle.tar.gz", ["sec/decision"])
    listeners = [Listener("sec", plugin_config(bundle, path="sec/decision", status_on_error=500))]
    (workdir / "envoy").mkdir()
    envoy = Envoy(listeners, recording.port, workdir / "envoy", concurrency=1).start()
    yield envoy
    envoy.stop()


SMUGGLED = b"GET /smuggled HTTP/1.1\r\nhost: x\r\n\r\n"


def post(sec, decision, body: bytes = SMUGGLED) -> bytes:
    """A POST whose body is another request, raw, so nothing on the client side rewrites it."""
    head = f"POST /p?d={d(decision)} HTTP/1.1\r\nhost: sec.test\r\ncontent-length: {len(body)}\r\n\r\n"
    return raw_request(sec.port("sec"), head.encode() + body)


def test_an_allowed_body_reaches_the_upstream_once(sec, recording):
    # The baseline the next tests depend on: the upstream sees one request, its body intact.
    assert raw_status(post(sec, {"allowed": True, "headers": {"x-checked": "1"}})) == 200
    got = wait_for_upstream(recording)
    assert got.count(b"HTTP/1.1\r\n") == 2 and b"x-checked: 1" in got and got.endswith(SMUGGLED), got


def wait_for_upstream(recording, timeout=3.0) -> bytes:
    deadline = time.monotonic() + timeout
    data = b""
    while time.monotonic() < deadline:
        time.sleep(0.6)  # the upstream records a connection once it is idle for 0.5 s
        data += recording.take()
        if data:
            return data
    return data


FRAMING = [
    ("set content-length (smuggles the body as a request)", {"allowed": True, "headers": {"content-length": "0"}}),
    ("set transfer-encoding next to content-length", {"allowed": True, "headers": {"transfer-encoding": "chunked"}}),
    ("set host (reroutes the request)", {"allowed": True, "headers": {"host": "evil.test"}}),
    ("set connection (hop-by-hop)", {"allowed": True, "headers": {"connection": "close, authorization"}}),
    ("set upgrade", {"allowed": True, "headers": {"upgrade": "websocket"}}),
    ("add content-length to the response (two lengths)", {"allowed": True, "response_headers_to_add": {"content-length": "3"}}),
    ("add transfer-encoding to the response", {"allowed": True, "response_headers_to_add": {"Transfer-Encoding": "chunked"}}),
    ("remove content-length", {"allowed": True, "request_headers_to_remove": ["content-length"]}),
    ("deny with content-length", {"allowed": False, "headers": {"content-length": "1000"}, "body": "short"}),
    ("CR LF in a header value", {"allowed": True, "headers": {"x-a": "1\r\nx-injected: 1"}}),
    ("NUL in a header value", {"allowed": True, "headers": {"x-a": "1\u0000"}}),
    ("CR LF in a response header", {"allowed": True, "response_headers_to_add": {"x-a": "1\r\n\r\n<html>"}}),
    ("CR LF in a deny header", {"allowed": False, "headers": {"x-a": "1\r\nset-cookie: a=b"}}),
    ("a pseudo-header", {"allowed": True, "headers": {":path": "/admin"}}),
    ("status 600", {"allowed": False, "http_status": 600}),
    ("status 99", {"allowed": False, "http_status": 99}),
    ("status 0", {"allowed": False, "http_status": 0}),
]


@pytest.mark.parametrize("what,decision", FRAMING, ids=[f[0] for f in FRAMING])
def test_a_decision_cannot_frame_inject_or_reroute(sec, recording, what, decision):
    reply = post(sec, decision)
    # status_on_error (500): an invalid decision; nothing reaches the upstream.
    assert raw_status(reply) == 500, reply
    head = reply.split(b"\r\n\r\n")[0].lower()
    assert head.count(b"content-length") == 1 and b"x-injected" not in head and b"set-cookie" not in head, reply
    assert wait_for_upstream(recording, timeout=0.7) == b""
    assert "invalid-decision" in sec.log()


def test_removing_host_is_ignored_as_ext_authz_does(sec, recording):
    assert raw_status(post(sec, {"allowed": True, "request_headers_to_remove": ["host"]})) == 200
    assert b"host: sec.test" in wait_for_upstream(recording)


def test_a_large_policy_body_is_sent_whole_or_stopped_by_the_budget(sec, recording):
    # 8 MiB, above Envoy's default 1 MiB buffer limits: Envoy sends a local reply's body
    # whatever its size.
    response = request(sec.port("sec"), "/?kb=8192")
    assert (response.status, len(response.body)) == (403, 8192 * 1024)
    # 1 GiB: stopped by an evaluation budget (memory, 64 MiB, or on a slow machine time, 1 s),
    # status_on_error, no trap.
    assert request(sec.port("sec"), "/?kb=1048576").status == 500
    assert "budget-exceeded]: data.sec.decision" in sec.log()
    assert raw_status(post(sec, {"allowed": True})) == 200, "the worker decides as before"
    wait_for_upstream(recording)
