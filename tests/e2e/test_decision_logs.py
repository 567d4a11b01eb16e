"""Decision logs in real Envoy: one OPA event per decision in Envoy's log and at a receiver
speaking OPA's decision-log API (`log_receiver.py`), ids matching the access log, masked
values in no log line, and a receiver that is down, failing or hanging costs requests
nothing."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import POLICIES
from harness import Envoy, Listener, build_bundle, plugin_config, request, static_cluster, temp_dir
from log_receiver import LogReceiver

RULE = "audit/authz/allow"
SECRETS = ["s3cret-bearer", "k3y-secret", "c00kie-secret", "t0ken-secret"]
# `make test` sends this many; `make test-decision-logs-load` sends 100,000.
LOAD_REQUESTS = int(os.environ.get("ZEROHOP_LOG_LOAD_REQUESTS", "2000"))


def logs_config(bundle: bytes, console: bool = True, timeout: str = "10s", **reporting) -> str:
    # An upload the receiver took but answered after the timeout is sent again (at least once,
    # as OPA): the tests that count events keep OPA's default timeout.
    return plugin_config(bundle, path=RULE, decision_logs={
        "console": console,
        "service": {"cluster": "logs", "authority": "logs.test", "timeout": timeout},
        "reporting": {"min_delay_seconds": 1, "max_delay_seconds": 1, **reporting},
        "labels": {"app": "e2e"},
    })


@pytest.fixture(scope="module")
def audit_bundle(workdir):
    return build_bundle(POLICIES / "audit", workdir / "audit.tar.gz", [RULE], revision="audit-1")


def start(name: str, config: str, receiver: LogReceiver) -> Envoy:
    """Envoy answering allowed requests itself (no upstream to overload under load)."""
    return Envoy([Listener(name, config)], None, temp_dir(f"logs-{name}-"),
                 clusters=[static_cluster("logs", receiver.port)]).start()


@pytest.fixture(scope="module")
def logged(audit_bundle):
    receiver = LogReceiver().start()
    envoy = start("logged", logs_config(audit_bundle), receiver)
    yield envoy, receiver
    envoy.stop()
    receiver.stop()


def access_ids(envoy: Envoy, count: int, timeout: float = 20) -> dict[str, str]:
    """decision id → path, from the access log once it holds `count` entries."""
    deadline = time.monotonic() + timeout
    while True:
        lines = envoy.access_log_path.read_text().splitlines() if envoy.access_log_path.exists() else []
        if len(lines) >= count or time.monotonic() > deadline:
            entries = [json.loads(line) for line in lines]
            return {e["decision_id"]: e["path"] for e in entries if e["decision_id"] not in (None, "-")}
        time.sleep(0.1)


def console_events(envoy: Envoy) -> list[dict]:
    return [json.loads(line.split("zerohop-decision ", 1)[1])
            for line in envoy.log().splitlines() if "zerohop-decision " in line]


def test_each_decision_is_one_event_in_the_log_and_at_the_receiver(logged):
    envoy, receiver = logged
    port = envoy.port("logged")
    secret_headers = {"authorization": "Bearer s3cret-bearer", "x-api-key": "k3y-secret",
                      "cookie": "session=c00kie-secret"}
    assert request(port, "/a?token=t0ken-secret&x=1", headers=secret_headers).status == 200
    assert request(port, "/b", method="DELETE").status == 401
    assert request(port, "/c", method="POST", body=b"password=p").status == 403
    assert request(port, "/health").status == 200
    events = receiver.wait_for(3)
    time.sleep(1.5)  # a fourth event (dropped by the bundle's drop rule) would have arrived
    events = receiver.received()
    assert len(events) == 3, events
    by_path = {"/" + "/".join(e["input"]["parsed_path"]): e for e in events}
    ids = access_ids(envoy, 4)
    for path, event in by_path.items():
        assert ids[event["decision_id"]].split("?")[0] == path
        assert event["bundles"] == {"logged": {"revision": "audit-1"}}
        assert event["path"] == RULE
        assert event["labels"]["app"] == "e2e" and len(event["labels"]["id"]) == 36
        assert event["timestamp"].endswith("Z")
    allowed = by_path["/a"]
    assert allowed["result"] is True
    assert allowed["input"]["parsed_query"] == {"token": ["**REDACTED**"], "x": ["1"]}
    headers = allowed["input"]["attributes"]["request"]["http"]["headers"]
    assert not {"authorization", "x-api-key", "cookie"} & set(headers), headers
    assert allowed["masked"] == ["/input/parsed_query/token"]
    assert "path" not in allowed["input"]["attributes"]["request"]["http"]
    assert by_path["/b"]["zerohop"] == {"outcome": "denied", "action": "reply", "status": 401, "dry_run": False}
    assert by_path["/c"]["error"]["code"] == "undefined-decision"
    assert by_path["/c"]["zerohop"]["outcome"] == "undefined"
    assert sorted(e["decision_id"] for e in console_events(envoy)) == sorted(e["decision_id"] for e in events)
    # No line the filter wrote holds a masked value (Envoy's access log is Envoy's: it has the path).
    for text in (envoy.log(), json.dumps(receiver.received())):
        for secret in SECRETS:
            assert secret not in text
    assert envoy.stat("wasmcustom.zerohop.decisions.allowed") == 2
    assert envoy.stat("wasmcustom.zerohop.decisions.denied") == 1
    assert envoy.stat("wasmcustom.zerohop.decisions.undefined") == 1
    assert envoy.stat("wasmcustom.zerohop.decision_logs.written") == 3
    assert envoy.stat("wasmcustom.zerohop.decision_logs.dropped.drop_rule") == 1
    assert envoy.stat("wasmcustom.zerohop.decision_logs.uploaded") == 3


def test_dry_run_events_say_what_enforcement_would_have_done(audit_bundle):
    receiver = LogReceiver().start()
    config = json.loads(logs_config(audit_bundle))
    config["dry_run"] = True
    envoy = start("dry", json.dumps(config), receiver)
    try:
        assert request(envoy.port("dry"), "/b", method="DELETE").status == 200
        (event,) = receiver.wait_for(1)
        assert event["zerohop"] == {"outcome": "dry_run_denied", "action": "forward",
                                    "would_be_status": 401, "dry_run": True}
        assert envoy.stat("wasmcustom.zerohop.decisions.dry_run_denied") == 1
    finally:
        envoy.stop()
        receiver.stop()


def test_every_request_gives_exactly_one_event_with_the_access_logs_id(audit_bundle):
    receiver = LogReceiver().start()
    envoy = start("load", logs_config(audit_bundle, console=False), receiver)
    try:
        port = envoy.port("load")
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda i: request(port, f"/load/{i}").status, range(LOAD_REQUESTS)))
        assert statuses == [200] * LOAD_REQUESTS
        events = receiver.wait_for(LOAD_REQUESTS, timeout=60 + LOAD_REQUESTS / 500)
        time.sleep(1.5)
        events = receiver.received()
        ids = [e["decision_id"] for e in events]
        assert len(ids) == LOAD_REQUESTS and len(set(ids)) == LOAD_REQUESTS
        logged = access_ids(envoy, LOAD_REQUESTS)
        assert set(ids) == set(logged)
        assert all(logged[e["decision_id"]] == e["input"]["attributes"]["request"]["http"]["path"] for e in events)
        assert envoy.stat("wasmcustom.zerohop.decision_logs.dropped.buffer_full") == 0
        assert envoy.stat("wasmcustom.zerohop.decision_logs.upload_failures") == 0
        assert envoy.stat("wasmcustom.zerohop.decision_logs.uploaded") == LOAD_REQUESTS
    finally:
        envoy.stop()
        receiver.stop()


@pytest.mark.parametrize("failure", ["fail", "hang", "down"])
def test_a_failing_receiver_costs_requests_nothing_and_drops_are_counted(audit_bundle, failure):
    receiver = LogReceiver().start()
    receiver.mode = failure
    receiver.hang_seconds = 3
    if failure == "down":
        receiver.stop()
    # A buffer of a few events, so that drops happen.
    envoy = start(f"r{failure}", logs_config(audit_bundle, console=False, timeout="1s",
                                           buffer_size_limit_bytes=4000),
                  receiver)
    try:
        port = envoy.port(f"r{failure}")
        for i in range(40):
            assert request(port, f"/f/{i}").status == 200
        # Generous: a loaded machine delays Envoy's ticks (no timing is asserted).
        deadline = time.monotonic() + 60
        while envoy.stat("wasmcustom.zerohop.decision_logs.upload_failures") < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert envoy.stat("wasmcustom.zerohop.decision_logs.upload_failures") >= 2
        assert envoy.stat("wasmcustom.zerohop.decision_logs.dropped.buffer_full") > 0
        assert envoy.stat("wasmcustom.zerohop.decision_logs.uploaded") == 0
        assert envoy.stat("wasmcustom.zerohop.decisions.allowed") == 40
        assert receiver.events == []
    finally:
        envoy.stop()
        if failure != "down":
            receiver.stop()
