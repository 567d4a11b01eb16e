"""Fault injection in real Envoy (2 workers): a bundle server that is slower than the
timeout, resets connections, cuts a body, lies about its length, answers 304 to a request
that named no ETag, or flaps between a good and a bad bundle on every poll. Under each fault,
with requests running all along: every answer is the last good policy's decision, the last
good bundle stays active, and the failure is counted under its code. The fault matrix
(docs/bundles.md) is printed at the end: `pytest -s test_faults.py`.

The tests run in file order against one Envoy, each from the state the previous left.
"""

import json
import threading
import time

import pytest

import harness
from faults import FaultyBundleServer
from harness import Envoy, Listener, ROOT, static_cluster
from test_bundles import Bundles

KEYS = ROOT / "testdata" / "keys"
MIN_DELAY, MAX_DELAY = 1, 2
TIMEOUT_SECONDS = 1
GOOD = {(200, "v1"), (403, "denied by v1")}
MATRIX: list[tuple[str, str, str]] = []


def config() -> str:
    return json.dumps({
        "path": "live/decision",
        "bundle": {
            "service": {"cluster": "bundles", "authority": "bundles.test", "path": "/live.tar.gz",
                        "timeout": f"{TIMEOUT_SECONDS}s"},
            "polling": {"min_delay_seconds": MIN_DELAY, "max_delay_seconds": MAX_DELAY},
            "signing": {"keys": {"ci": {"key": (KEYS / "rsa.pub.pem").read_text(), "algorithm": "RS256"}},
                        "scope": "zerohop"},
        },
    })


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def server(workdir):
    bundles = Bundles(workdir)
    good = bundles.build("v1")
    # Signed with a key the filter does not trust: a bundle that must never activate.
    bad = bundles.build("v1-bad", key="rsa-other.pem")
    s = FaultyBundleServer(good, bad, slow_seconds=TIMEOUT_SECONDS + 2).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def proxy(workdir, server, upstream):
    envoy = Envoy([Listener("live", config())], upstream.port, workdir,
                  concurrency=2, clusters=[static_cluster("bundles", server.port)]).start()
    yield envoy
    envoy.stop()
    print("\n\nfault matrix (fault -> outcome -> counter):")
    for fault, outcome, counter in MATRIX:
        print(f"  {fault:<34} {outcome:<58} {counter}")


@pytest.fixture(autouse=True)
def _show_envoy_log_on_failure(request, proxy):
    request.node.envoy_under_test = proxy


def answer(proxy, path: str) -> tuple[int, str | None]:
    r = harness.request(proxy.port("live"), path)
    if r.status == 200:
        return 200, r.header("x-policy-revision")
    return r.status, r.body.decode(errors="replace")


def failures(proxy, code: str) -> int:
    return proxy.stat(f"wasmcustom.zerohop.bundle.failures.{code}")


def all_failures(proxy) -> dict[str, int]:
    stats = proxy.stats()
    out = {}
    for line in stats.splitlines():
        key, _, value = line.partition(": ")
        if key.startswith("wasmcustom.zerohop.bundle.failures."):
            out[key.rsplit(".", 1)[1]] = int(value)
    return out


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Load:
    """Requests on both paths from two threads until stopped; every answer is recorded."""

    def __init__(self, proxy):
        self.proxy, self.answers, self.errors = proxy, [], []
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(p,)) for p in ("/ok", "/other")]

    def _run(self, path: str) -> None:
        while not self.stop_event.is_set():
            try:
                self.answers.append(answer(self.proxy, path))
            except Exception as e:  # noqa: BLE001 - a failed request is a finding
                self.errors.append(e)
            time.sleep(0.01)

    def __enter__(self) -> "Load":
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join()


def test_the_good_bundle_activates(proxy, server):
    wait_for(lambda: answer(proxy, "/ok") == (200, "v1"), MAX_DELAY + 10, "v1 to activate")
    wait_for(lambda: proxy.stat("wasmcustom.zerohop.bundle.activations") >= 3, 10, "every VM to activate v1")
    assert answer(proxy, "/other") == (403, "denied by v1")


FAULTS = [
    # (mode, code counted, what the fault is, polls to see, least count over those polls)
    # Envoy answers a callout it timed out with its own 504, and one whose connection was
    # reset before any headers with its own 503: both count as `http-status`.
    ("slow", "http-status", f"server answers after {TIMEOUT_SECONDS + 2}s (timeout {TIMEOUT_SECONDS}s): Envoy's 504", 2, 1),
    ("reset", "http-status", "connection reset (RST) before any answer: Envoy's 503", 3, 2),
    ("cut", "fetch-failed", "200, body cut in the middle, connection closed", 3, 2),
    ("long-length", "fetch-failed", "200, content-length 4096 bytes over the body", 3, 2),
    ("not-modified", "unexpected-not-modified", "304 to a request without if-none-match", 3, 2),
    ("flap", "bad-signature", "good and bad (untrusted key) bundle on alternate polls", 4, 2),
]


@pytest.mark.parametrize("mode,code,fault,polls,least", FAULTS, ids=[f[0] for f in FAULTS])
def test_fault_keeps_the_last_good_bundle_and_is_counted(proxy, server, mode, code, fault, polls, least):
    if mode == "not-modified":
        # The 200 the filter has now carries no ETag, so its next request names none.
        server.mode = "good-no-etag"
        before = server.requests("good-no-etag")
        wait_for(lambda: server.requests("good-no-etag") > before, MAX_DELAY * 2 + 5, "a 200 without an ETag")
    before_all = all_failures(proxy)
    before_count, before_requests = failures(proxy, code), server.requests(mode)
    activations = proxy.stat("wasmcustom.zerohop.bundle.activations")
    with Load(proxy) as load:
        server.mode = mode
        # Backoff after failures grows towards max_delay (+20 %), plus the timeout per try.
        wait_for(lambda: server.requests(mode) >= before_requests + polls,
                 polls * (MAX_DELAY * 1.2 + TIMEOUT_SECONDS + 2) + 10, f"{polls} polls counted as {code}")
        server.mode = "good"
    assert not load.errors, load.errors[:3]
    answers = set(load.answers)
    assert answers <= GOOD, answers - GOOD
    assert len(load.answers) > 20
    counted = failures(proxy, code) - before_count
    after_all = all_failures(proxy)
    grew = {k: v - before_all.get(k, 0) for k, v in after_all.items() if v != before_all.get(k, 0)}
    assert counted >= least and set(grew) == {code}, grew
    reactivated = proxy.stat("wasmcustom.zerohop.bundle.activations") - activations
    if mode == "flap":
        # Each good answer after a bad one is fetched and activated again; the bad never is.
        assert reactivated >= 1
    assert 'bundle revision "v1-bad" active' not in proxy.log()
    outcome = f"{len(load.answers)} answers, all v1's; {reactivated} re-activations of v1"
    MATRIX.append((f"{mode}: {fault}", outcome, f"bundle.failures.{code} +{counted}"))
    for _ in range(4):
        assert answer(proxy, "/ok") == (200, "v1")
        assert answer(proxy, "/other") == (403, "denied by v1")


def test_the_bad_bundle_never_activated(proxy):
    assert 'bundle revision "v1-bad" active' not in proxy.log()
    assert "panicked" not in proxy.log()
