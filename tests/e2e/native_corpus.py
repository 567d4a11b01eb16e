"""Writes testdata/corpus/native.json, the differential corpus for the native test
`filter/tests/corpus.rs` (the core request path on the in-memory host, no Envoy):

    python3 tests/e2e/native_corpus.py requests   # the corpus's requests, from corpus/
    ZEROHOP_CORPUS_RECORD=1 cargo test -p zerohop-filter --test corpus   # the inputs the core builds
    python3 tests/e2e/native_corpus.py expect     # the real OPA engine's decision on each input

(`make corpus-native` runs the three.) Left out: the `jwt` cases, whose input comes from Envoy's
`jwt_authn` filter, and requests that differ each time the corpus is made (tokens valid for an
hour from now, ECDSA signatures): a recorded answer about them would not stay true. The
real-Envoy suite runs both.
"""

import base64
import json
import sys

import tokens
from corpus import all_cases
from harness import ROOT
from opa_oracle import UNDEFINED, OpaError, engine_for, evaluate

NATIVE = ROOT / "testdata" / "corpus" / "native.json"
POLICIES = ROOT / "testdata" / "policies"


def body(data: bytes | None) -> dict:
    """The body as base64, or a large one of one repeated byte as that byte and its length."""
    if data is None:
        return {}
    if len(data) > 4096 and data == data[:1] * len(data):
        return {"body_fill": {"byte": data[0], "length": len(data)}}
    return {"body_base64": base64.b64encode(data).decode()}


def write(entries: list) -> None:
    # One request per line: diffs show which requests changed.
    lines = ",\n".join(json.dumps(entry, sort_keys=True) for entry in entries)
    NATIVE.write_text(f"[\n{lines}\n]\n")


def cases_made_at(now: int) -> list:
    """The corpus made again as if it were `now` (its tokens are valid from `tokens.NOW`)."""
    tokens.NOW = now
    for name in [m for m in sys.modules if m.startswith("corpus.")]:
        del sys.modules[name]
    return all_cases()


def request_entries() -> list:
    """The corpus's requests that are the same whenever it is made, without inputs and answers."""
    now = tokens.NOW
    later = cases_made_at(now + 3600)
    entries = [entry for entry, again in zip(entries_of(cases_made_at(now)), entries_of(later)) if entry == again]
    return entries


def entries_of(cases: list) -> list:
    entries = []
    for case in cases:
        if case.jwt_authn:
            continue
        for index, r in enumerate(case.requests):
            entries.append({
                "case": case.name, "policy": case.policy, "rule": case.rule, "settings": case.settings,
                "index": index,
                "request": {
                    "method": r.method, "path": r.path,
                    "headers": [[name.lower(), value] for name, value in r.headers.items()],
                    "identity": r.identity,
                    **body(r.body),
                },
                "opa_envoy_status": r.opa_envoy_status,
                "opa_envoy_decision": r.opa_envoy_decision,
                "input": None,
                "expected": None,
            })
    return entries


def requests() -> None:
    NATIVE.parent.mkdir(exist_ok=True)
    write(request_entries())


def expect() -> None:
    entries = json.loads(NATIVE.read_text())
    engines = {}
    for entry in entries:
        if entry["input"] is None:
            continue
        engine = engines.setdefault(entry["policy"], engine_for(POLICIES / entry["policy"]))
        try:
            decision = evaluate(engine, entry["rule"], entry["input"])
        except OpaError as error:
            # Strict builtin errors here, not in OPA-Envoy: the corpus declares its answer.
            assert error.code == "eval_error" and "eval_builtin_error" in error.message, error
            assert entry["opa_envoy_decision"] is not None, (entry["case"], entry["index"], error)
            decision = entry["opa_envoy_decision"]
        entry["expected"] = [] if decision is UNDEFINED else [decision]
    write(entries)


if __name__ == "__main__":
    {"requests": requests, "expect": expect}[sys.argv[1]]()
