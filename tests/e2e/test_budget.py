"""Evaluation budgets in real Envoy: a request that makes the policy build a value from its
data (here a range as long as a query parameter says) gets `status_on_error`, quickly, and
the same worker keeps answering the next requests with the policy. Without the budgets the
VM ran out of memory, trapped, and every later request on that worker got 503."""

import time

import pytest

from harness import Envoy, Listener, build_bundle, plugin_config, request

RANGE_FROM_QUERY = """package envoy.authz

import rego.v1

default allow := false

allow if {
\tinput.attributes.request.http.method == "GET"
\tnot big
}

big if count(numbers.range(1, to_number(input.parsed_query.n[0]))) > 100
"""

# Nine million loop steps and little memory: only the clock stops it early.
PAIRS = """package envoy.authz

import rego.v1

default allow := false

allow if {
\tinput.parsed_query.slow[0] == "1"
\tcount([1 | some i in numbers.range(1, 3000); some j in numbers.range(1, 3000)]) > 0
}

allow if not input.parsed_query.slow
"""


@pytest.fixture(scope="module")
def budget_envoy(tmp_path_factory, upstream):
    workdir = tmp_path_factory.mktemp("budget")
    bundles = {}
    for name, rego in [("range", RANGE_FROM_QUERY), ("pairs", PAIRS)]:
        (workdir / name).mkdir()
        (workdir / name / "policy.rego").write_text(rego)
        bundles[name] = build_bundle(workdir / name, workdir / f"{name}.tar.gz", ["envoy/authz/allow"])
    listeners = [
        Listener("range", plugin_config(bundles["range"])),
        Listener("pairs", plugin_config(bundles["pairs"], max_eval_instructions=1_000_000_000, max_eval_time_ms=20)),
    ]
    (workdir / "envoy").mkdir()
    # One worker: every request below goes to the same VM.
    proxy = Envoy(listeners, upstream.port, workdir / "envoy", concurrency=1).start()
    yield proxy
    proxy.stop()


def timed(port, path):
    started = time.monotonic()
    response = request(port, path)
    return response.status, time.monotonic() - started


def test_request_driven_growth_gets_status_on_error_and_the_worker_keeps_deciding(budget_envoy):
    port = budget_envoy.port("range")
    assert request(port, "/?n=5").status == 200
    assert request(port, "/?n=500").status == 403
    status, elapsed = timed(port, "/?n=200000000")
    print(f"crafted request: {status} in {elapsed * 1000:.1f} ms")
    assert status == 403
    # The same worker, answered by the policy: not 503 from a trapped VM.
    for _ in range(5):
        assert request(port, "/?n=5").status == 200
        assert request(port, "/?n=500").status == 403
    assert budget_envoy.stat("wasmcustom.zerohop.budget_exceeded.memory") == 1
    log = budget_envoy.log()
    assert "evaluation stopped [memory-budget-exceeded]: data.envoy.authz.allow" in log
    assert "panicked" not in log and "Function: proxy_on_request_headers failed" not in log


def test_the_clock_stops_evaluation_inside_envoy(budget_envoy):
    port = budget_envoy.port("pairs")
    assert request(port, "/").status == 200
    status, elapsed = timed(port, "/?slow=1")
    print(f"slow request: {status} in {elapsed * 1000:.1f} ms")
    assert status == 403
    assert elapsed < 2
    assert budget_envoy.stat("wasmcustom.zerohop.budget_exceeded.time") == 1
    assert "evaluation stopped [time-budget-exceeded]" in budget_envoy.log()
    assert request(port, "/").status == 200
