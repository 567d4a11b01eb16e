"""Live bundles in real Envoy (2 workers) with Debian's nginx as the bundle server on loopback:
start-up fails closed, a signed bundle activates, v1 → v2 swaps under continuous load with no
other answer than the policies' decisions, a server that is down or serves anything bad
changes nothing (and the failure is counted), and one fetch per proxy, not per worker.

The tests run in file order against one Envoy: each starts from the state the previous left.
"""

import json
import re
import threading
import time

import pytest

import harness
from harness import Envoy, Listener, Nginx, ROOT, build_bundle, static_cluster

KEYS = ROOT / "testdata" / "keys"
BUNDLE = "live.tar.gz"
MIN_DELAY, MAX_DELAY = 1, 2
SIZE_LIMIT = 1 << 20
POLICY = """package live

import rego.v1

default decision := {"allowed": false, "http_status": 403, "body": "denied by REV"}

decision := {"allowed": true, "response_headers_to_add": {"x-policy-revision": "REV"}} if {
	input.parsed_path[0] == "ok"
}
"""


def live_config(cluster: str = "bundles", **polling) -> str:
    return json.dumps({
        "path": "live/decision",
        "bundle": {
            "service": {"cluster": cluster, "authority": "bundles.test", "path": f"/{BUNDLE}", "timeout": "2s"},
            "polling": {"min_delay_seconds": MIN_DELAY, "max_delay_seconds": MAX_DELAY, **polling},
            "signing": {"keys": {"ci": {"key": (KEYS / "rsa.pub.pem").read_text(), "algorithm": "RS256"}},
                        "scope": "zerohop"},
            "size_limit_bytes": SIZE_LIMIT,
        },
    })


class Bundles:
    """Builds signed revisions of the live policy with the real policy-bundler."""

    def __init__(self, workdir):
        self.workdir = workdir

    def build(self, revision: str, key: str = "rsa.pem", scope: str = "zerohop", data: dict | None = None) -> bytes:
        source = self.workdir / f"src-{revision}"
        source.mkdir(exist_ok=True)
        (source / "live").mkdir(exist_ok=True)
        (source / "live" / "policy.rego").write_text(POLICY.replace("REV", revision))
        if data is not None:
            (source / "live" / "data.json").write_text(json.dumps(data))
        signing = ["--signing-key", str(KEYS / key), "--signing-alg", "RS256",
                   "--verification-key-id", "ci", "--scope", scope]
        return build_bundle(source, self.workdir / f"{revision}.tar.gz", ["live/decision"], revision, signing)


@pytest.fixture(scope="module")
def live_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("live")


@pytest.fixture(scope="module")
def bundles(live_dir):
    return Bundles(live_dir)


@pytest.fixture(scope="module")
def server(live_dir):
    nginx = Nginx(live_dir / "nginx").start()
    yield nginx
    nginx.stop()


@pytest.fixture(scope="module")
def proxy(live_dir, server, upstream, request):
    envoy = Envoy([Listener("live", live_config())], upstream.port, live_dir,
                  concurrency=2, clusters=[static_cluster("bundles", server.port)]).start()
    request.node.envoy_under_test = envoy
    yield envoy
    envoy.stop()


@pytest.fixture(autouse=True)
def _show_envoy_log_on_failure(request, proxy):
    request.node.envoy_under_test = proxy


def get_ok(proxy) -> harness.Response:
    return harness.request(proxy.port("live"), "/ok")


def revision_of(response: harness.Response) -> str | None:
    return response.header("x-policy-revision")


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def failures(proxy, code: str) -> int:
    return proxy.stat(f"wasmcustom.zerohop.bundle.failures.{code}")


def test_until_a_bundle_is_active_requests_fail_closed(proxy, server):
    # The server has no bundle yet: nginx answers 500.
    assert get_ok(proxy).status == 503
    wait_for(lambda: failures(proxy, "http-status") > 0, 10, "the failed fetch to be counted")
    assert get_ok(proxy).status == 503
    assert "bundle fetch failed [http-status]: the bundle server answered HTTP 500" in proxy.log()


def test_first_signed_bundle_activates_on_every_worker(proxy, server, bundles):
    server.serve(BUNDLE, bundles.build("v1"))
    wait_for(lambda: revision_of(get_ok(proxy)) == "v1", MAX_DELAY + 5, "v1 to activate")
    # Each VM (Envoy's main thread and both workers) activates on its own tick; until a worker
    # does, it answers as without a bundle (503). The main thread alone can satisfy a count of 2.
    wait_for(lambda: len(activation_threads(proxy, "v1")) >= 3, 5, "main thread and both workers to activate v1")
    assert proxy.stat("wasmcustom.zerohop.bundle.activations") >= 3
    assert proxy.stat("wasmcustom.zerohop.bundle.active_generation") == 1
    for _ in range(4):
        denied = harness.request(proxy.port("live"), "/other")
        assert (denied.status, denied.body) == (403, b"denied by v1")


def activation_threads(proxy, revision: str) -> set[str]:
    """Envoy threads (`[%t]` in its log format) that logged activating `revision`."""
    pattern = re.compile(r"\]\[(\d+)\]\[[a-z]+\]\[wasm\].*bundle revision \"" + re.escape(revision) + "\" active")
    return {m.group(1) for m in pattern.finditer(proxy.log())}


def test_swap_under_load_answers_only_decisions(proxy, server, bundles):
    v2 = bundles.build("v2")
    results: list[tuple[float, int, str | None]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def load():
        while not stop.is_set():
            started = time.monotonic()
            try:
                response = get_ok(proxy)
                results.append((started, response.status, revision_of(response)))
            except BaseException as e:  # noqa: BLE001 - a failed request is what we look for
                errors.append(e)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(1)
    swapped_at = time.monotonic()
    server.serve(BUNDLE, v2)
    time.sleep(MAX_DELAY + 1 + 1)
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    answers = {(status, revision) for _, status, revision in results}
    assert answers <= {(200, "v1"), (200, "v2")}, answers
    late = [r for started, _, r in results if started > swapped_at + MAX_DELAY + 1]
    assert late and set(late) == {"v2"}, f"{len(late)} requests after max_delay + 1 s: {set(late)}"
    # Each worker (and Envoy's main thread) activated v2 itself.
    assert len(activation_threads(proxy, "v2")) >= 3, proxy.log()
    assert proxy.stat("wasmcustom.zerohop.bundle.active_generation") == 2


def test_server_down_keeps_the_last_good_bundle(proxy, server):
    before = failures(proxy, "http-status") + failures(proxy, "fetch-failed")
    server.stop()
    wait_for(lambda: failures(proxy, "http-status") + failures(proxy, "fetch-failed") > before,
             MAX_DELAY + 5, "a failed fetch")
    for _ in range(10):
        assert revision_of(get_ok(proxy)) == "v2"


BAD_ANSWERS = [
    ("http-status", lambda b: None),
    ("not-gzip", lambda b: b"this is not a bundle"),
    ("not-gzip", lambda b: b.build("v3-truncated")[:200]),
    ("bad-signature", lambda b: b.build("v3-other-key", key="rsa-other.pem")),
    ("scope-mismatch", lambda b: b.build("v3-other-scope", scope="elsewhere")),
    ("too-large", lambda b: b.build("v3-large", data={f"k{i}": "x" * 64 for i in range(20000)})),
]


@pytest.mark.parametrize("code,content", BAD_ANSWERS, ids=[
    "status-500", "garbage", "truncated-gzip", "wrong-signature", "wrong-scope", "oversized"])
def test_bad_answers_are_rejected_and_counted(proxy, server, bundles, code, content):
    if server.process is None:
        server.start()
    body = content(bundles)
    if body is None:
        server.remove(BUNDLE)
    else:
        server.serve(BUNDLE, body)
    before = failures(proxy, code)
    wait_for(lambda: failures(proxy, code) > before, MAX_DELAY + 5, f"a {code} failure")
    for _ in range(10):
        assert revision_of(get_ok(proxy)) == "v2"
    if code != "http-status":
        assert f"bundle rejected [{code}]" in proxy.log()


def test_server_back_with_a_good_bundle_activates_it(proxy, server, bundles):
    server.serve(BUNDLE, bundles.build("v3"))
    # After failures the client backs off, at most max_delay (+20 %) between tries.
    wait_for(lambda: revision_of(get_ok(proxy)) == "v3", MAX_DELAY * 1.2 + 5, "v3 to activate")
    assert len(activation_threads(proxy, "v3")) >= 2


def test_a_bundle_signed_as_opa_build_signs_it_activates(proxy, server):
    from opa_signed import opa_signed_bundle

    policy = POLICY.replace("REV", "opa-v4").encode()
    bundle = opa_signed_bundle({"live/policy.rego": policy}, {"live": {"note": "from opa"}},
                               {"revision": "opa-v4", "roots": [""]}, KEYS / "rsa.pem", "ci", scope="zerohop")
    server.serve(BUNDLE, bundle)
    wait_for(lambda: revision_of(get_ok(proxy)) == "opa-v4", MAX_DELAY + 5, "the OPA-signed bundle to activate")
    assert 'bundle revision "opa-v4" active' in proxy.log()


def test_one_fetch_per_proxy_not_per_worker(live_dir, server, bundles, upstream):
    """With 4 workers, the bundle server sees one request per polling period, not four."""
    server.serve("one.tar.gz", bundles.build("one"))
    config = json.loads(live_config(min_delay_seconds=1, max_delay_seconds=1))
    config["bundle"]["service"]["path"] = "/one.tar.gz"
    workdir = live_dir / "four"
    workdir.mkdir()
    envoy = Envoy([Listener("live", json.dumps(config))], upstream.port, workdir,
                  concurrency=4, clusters=[static_cluster("bundles", server.port)]).start()
    try:
        wait_for(lambda: revision_of(harness.request(envoy.port("live"), "/ok")) == "one", 10, "the bundle")
        before, started = server.requests("/one.tar.gz"), time.monotonic()
        time.sleep(6)
        fetched, elapsed = server.requests("/one.tar.gz") - before, time.monotonic() - started
        assert envoy.stat("wasmcustom.zerohop.bundle.fetches") >= fetched
    finally:
        envoy.stop()
    # One request per (1 s) period plus the time each answer takes; four workers fetching on
    # their own would make about four times as many.
    assert 1 <= fetched <= elapsed + 1, f"{fetched} fetches in {elapsed:.1f}s"
    print(f"\nbundle fetches with --concurrency 4, 1 s polling: {fetched} in {elapsed:.1f}s")
