"""Differential tests: for each request of the corpus (`corpus/`), the input zerohop built
inside real Envoy and the decision it evaluated there, against the real OPA engine evaluating
the same policy on the same input. Any difference fails.

Each policy is bundled with a wrapper rule that answers with `{"input": input, "result":
[decision]}` (`[]` when undefined), so one request yields both sides from the proxy. (The
wrapper avoids `[r | r := data.rule]`, which the RVM answered differently before regorus patch 11.)

That wrapper reads all of `input`, so the filter builds all of it. Each request also goes to a
second listener whose wrapper answers with the result alone: there the filter builds only the
parts of `input` the policy reads (`request::shape`), and the decision must be the same.
"""

import json
import re
import shutil

import pytest

from corpus import IDENTITIES, all_cases
from harness import ROOT, Envoy, JwtIssuer, Listener, build_bundle, plugin_config, request
from opa_envoy_body import opa_envoy_body
from opa_oracle import UNDEFINED, OpaError, engine_for, evaluate

POLICIES = ROOT / "testdata" / "policies"
CASES = {case.name: case for case in all_cases()}

WRAPPER = """package zerohop.differential

import rego.v1

default result := []

result := [data.{rule}]

response := {{
	"allowed": false,
	"http_status": 200,
	"body": json.marshal({{"input": input, "result": result}}),
}}
"""

# The same without reading `input`: the bundle's reads are the policy's own.
PRUNED_WRAPPER = WRAPPER.replace('"input": input, ', "")
assert PRUNED_WRAPPER != WRAPPER


def pruned(name: str) -> str:
    return f"{name}-pruned"


@pytest.fixture(scope="module")
def differential(workdir, pki, upstream):
    listeners, oracles = [], {}
    for name, case in CASES.items():
        for listener, wrapper in ((name, WRAPPER), (pruned(name), PRUNED_WRAPPER)):
            source = workdir / f"diff-{listener}"
            shutil.copytree(POLICIES / case.policy, source, ignore=shutil.ignore_patterns("*.md"))
            (source / "zz_differential.rego").write_text(wrapper.format(rule=case.rule.replace("/", ".")))
            bundle = build_bundle(source, workdir / f"diff-{listener}.tar.gz", ["zerohop/differential/response"])
            listeners.append(Listener(listener, plugin_config(bundle, path="zerohop/differential/response", **case.settings),
                                      tls=pki.server_tls(require=False), jwt=JwtIssuer() if case.jwt_authn else None,
                                      allow_on_headers_stop_iteration="with_request_body" in case.settings))
        oracles[name] = engine_for(POLICIES / case.policy)
    (workdir / "diff").mkdir()
    proxy = Envoy(listeners, upstream.port, workdir / "diff").start()
    clients = {uri: pki.client_context(*pki.issue(f"diff-{uri.rsplit('/', 1)[1]}", uri=uri)) for uri in IDENTITIES}
    clients[None] = pki.client_context()
    yield proxy, oracles, clients
    proxy.stop()


PARAMS = [pytest.param(name, i, id=f"{name}:{i}:{r.method} {r.path}")
          for name, case in CASES.items() for i, r in enumerate(case.requests)]


@pytest.mark.parametrize("name,index", PARAMS)
def test_zerohop_decides_like_opa(differential, name, index):
    proxy, oracles, clients = differential
    case = CASES[name]
    req = case.requests[index]
    r = request(proxy.port(name), req.path, method=req.method, headers=req.headers,
                tls=clients[req.identity], body=req.body)
    p = request(proxy.port(pruned(name)), req.path, method=req.method, headers=req.headers,
                tls=clients[req.identity], body=req.body)
    assert p.status == r.status, (p.status, p.body)
    if req.opa_envoy_status != 200:
        assert r.status == req.opa_envoy_status, (r.status, r.body)
        return
    assert r.status == 200, (r.status, r.body, proxy.log()[-2000:])
    seen = json.loads(r.body)
    body = opa_envoy_body(req.body, req.headers, case.settings)
    if body is not None:
        http = seen["input"]["attributes"]["request"]["http"]
        assert {k: http.get(k) for k in ("body", "rawBody", "size") if k in http} == body["http"]
        assert http["headers"]["x-envoy-auth-partial-body"] == body["partial"]
        assert (seen["input"]["parsed_body"], seen["input"]["truncated_body"]) == (body["parsed_body"], body["truncated_body"])
    try:
        expected = evaluate(oracles[name], case.rule, seen["input"])
    except OpaError as error:
        assert error.code == "eval_error" and "eval_builtin_error" in error.message, error
        assert req.opa_envoy_decision is not None, f"OPA failed in a builtin ({error}): declare opa_envoy_decision"
        expected = req.opa_envoy_decision
    else:
        assert req.opa_envoy_decision is None, f"OPA decided {expected!r}: drop opa_envoy_decision"
    assert seen["result"] == ([] if expected is UNDEFINED else [expected]), seen["input"]
    assert json.loads(p.body) == {"result": seen["result"]}, "the pruned input decided otherwise"


def test_the_corpus_has_15_policies_with_20_requests_each():
    per_policy: dict[str, int] = {}
    for case in CASES.values():
        per_policy[case.policy] = per_policy.get(case.policy, 0) + len(case.requests)
    assert len([p for p, n in per_policy.items() if n >= 20]) >= 15, per_policy


def test_each_policy_runs_on_the_expected_engine_path(differential):
    proxy, _, _ = differential
    log = proxy.log()
    assert "demo: bundle revision \"test\" active, decision data.zerohop.differential.response (precompiled)" in log
    # `some perm in role_perms[r]`, which regorus 0.14.1's RVM compiler refused (patched).
    assert "istio-quickstart: bundle revision \"test\" active, decision data.zerohop.differential.response (precompiled)" in log


def test_the_pruned_listeners_build_only_what_each_policy_reads(differential):
    proxy, _, _ = differential
    log = proxy.log()
    assert ('istio-quickstart-pruned: bundle revision "test" active, decision data.zerohop.differential.response '
            "(precompiled); reads input.attributes.request.http.headers.authorization, "
            "input.attributes.request.http.method, input.attributes.request.http.path, input.parsed_path; "
            "decision cache on\n") in log
    reads = dict(re.findall(r"wasm log: (\S+): bundle revision .*; reads (.*); decision cache", log))
    assert reads["jwt-pruned"] == ('input.attributes.metadataContext.filterMetadata["envoy.filters.http.jwt_authn"]'
                                   ".verified_payload, input.attributes.request.http.method, input.parsed_path")
    # The full listeners read all of `input` (the wrapper marshals it), and so do the pruned
    # ones of the e2e policy (its `echo` rule marshals it); none of the others does.
    assert {name: reads[name] for name in CASES} == {name: "input" for name in CASES}
    whole = [name for name in CASES if reads[pruned(name)] == "input"]
    assert whole == [name for name in CASES if CASES[name].policy == "e2e"]


def test_decisions_are_cached_unless_the_policy_reads_the_clock(differential):
    proxy, _, _ = differential
    caches = dict(re.findall(r"wasm log: (\S+): bundle revision .*; decision cache (.*)", proxy.log()))
    clock = {"change-freeze": "time.now_ns", "envoy-tutorial": "time.now_ns", "jwt-jwks": "io.jwt.decode_verify"}
    expected = {name: f"off (nondeterministic: {clock[case.policy]})" if case.policy in clock else "on"
                for name, case in CASES.items()}
    assert {name: caches[name] for name in CASES} == expected
