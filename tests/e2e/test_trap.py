"""What Envoy 1.40 does after the VM traps, per `failure_policy`, with a deliberately trapping
test build (dist/zerohop-trap.wasm, filter feature `test-trap`: a request with
`x-zerohop-test-trap` panics). One worker, so every request meets the trapped VM.

- FAIL_CLOSED (Envoy's default, Istio's FAIL_CLOSE): every later request on that worker gets
  503, until the configuration is reloaded. Nothing is let through, nothing is decided.
- FAIL_OPEN: every later request goes through unchecked, the denied ones included. Never use
  it for authorization.
- FAIL_RELOAD: the next request after the reload backoff (1 s by default) gets a new VM,
  which loads the inline bundle again and decides as before; meanwhile requests get 503.
  Nothing is let through that the policy denies. The recommended policy (docs/budgets.md).
"""

import time

import pytest

from harness import ROOT, Envoy, Listener, build_bundle, plugin_config, request

TRAP_WASM = ROOT / "dist" / "zerohop-trap.wasm"
POLICY = """package envoy.authz

import rego.v1

default allow := false

allow if input.attributes.request.http.path == "/ok"
"""
TRAP = {"x-zerohop-test-trap": "1"}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    if not TRAP_WASM.exists():
        pytest.fail(f"no {TRAP_WASM}: run `make {TRAP_WASM.relative_to(ROOT)}` (make test-e2e builds it)")
    workdir = tmp_path_factory.mktemp("trap")
    (workdir / "policy").mkdir()
    (workdir / "policy" / "policy.rego").write_text(POLICY)
    return build_bundle(workdir / "policy", workdir / "bundle.tar.gz", ["envoy/authz/allow"])


def start(tmp_path_factory, upstream, bundle, failure_policy) -> Envoy:
    workdir = tmp_path_factory.mktemp(failure_policy.lower())
    listener = Listener("trap", plugin_config(bundle), failure_policy=failure_policy)
    return Envoy([listener], upstream.port, workdir, concurrency=1, wasm=TRAP_WASM).start()


def statuses(envoy: Envoy, path: str, n: int = 5) -> set[int]:
    return {request(envoy.port("trap"), path).status for _ in range(n)}


def trap(envoy: Envoy) -> int:
    status = request(envoy.port("trap"), "/ok", headers=TRAP).status
    assert "deliberate trap" in envoy.log(), envoy.log()[-3000:]
    return status


@pytest.mark.parametrize("failure_policy", ["FAIL_CLOSED", "FAIL_OPEN", "FAIL_RELOAD"])
def test_before_a_trap_the_test_build_decides(tmp_path_factory, upstream, bundle, failure_policy):
    envoy = start(tmp_path_factory, upstream, bundle, failure_policy)
    try:
        assert statuses(envoy, "/ok") == {200}
        assert statuses(envoy, "/denied") == {403}
    finally:
        envoy.stop()


def test_fail_closed_answers_503_until_reconfigured(tmp_path_factory, upstream, bundle):
    envoy = start(tmp_path_factory, upstream, bundle, "FAIL_CLOSED")
    try:
        assert trap(envoy) == 503
        for _ in range(3):
            assert statuses(envoy, "/ok") == {503}
            assert statuses(envoy, "/denied") == {503}
            time.sleep(1)
    finally:
        envoy.stop()


def test_fail_open_lets_everything_through_unchecked(tmp_path_factory, upstream, bundle):
    envoy = start(tmp_path_factory, upstream, bundle, "FAIL_OPEN")
    try:
        assert trap(envoy) == 200
        # What the policy denies now reaches the upstream: why FAIL_OPEN is never recommended.
        assert statuses(envoy, "/denied") == {200}
        assert statuses(envoy, "/ok") == {200}
    finally:
        envoy.stop()


def test_fail_reload_restores_the_policy_without_opening(tmp_path_factory, upstream, bundle):
    envoy = start(tmp_path_factory, upstream, bundle, "FAIL_RELOAD")
    try:
        assert trap(envoy) == 503
        denied, allowed = [], []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and allowed[-3:] != [200, 200, 200]:
            denied.append(request(envoy.port("trap"), "/denied").status)
            allowed.append(request(envoy.port("trap"), "/ok").status)
            time.sleep(0.1)
        print(f"\nFAIL_RELOAD after the trap: /ok answered {allowed}")
        assert set(denied) <= {403, 503}, denied
        assert set(allowed) <= {200, 503}, allowed
        assert allowed[-3:] == [200, 200, 200], "no new VM within 15 s"
        assert denied[-1] == 403
        # And again: every trap gets a new VM.
        assert trap(envoy) == 503
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and request(envoy.port("trap"), "/ok").status != 200:
            assert request(envoy.port("trap"), "/denied").status in (403, 503)
            time.sleep(0.1)
        assert statuses(envoy, "/ok") == {200} and statuses(envoy, "/denied") == {403}
    finally:
        envoy.stop()
