"""Differential tests: for each request, the input zerohop built inside real Envoy and the
decision it evaluated there, against the real OPA engine evaluating the same policy on the
same input. Any difference fails.

Each policy is bundled with a wrapper rule that answers with `{"input": input, "result":
[decision]}` (`[]` when undefined), so one request yields both sides from the proxy. (The
wrapper avoids `[r | r := data.rule]`: see the known RVM difference in the README.)
"""

import base64
import json
import shutil

import pytest

from harness import ROOT, Envoy, Listener, build_bundle, plugin_config, request
from opa_oracle import UNDEFINED, engine_for, evaluate

POLICIES = ROOT / "testdata" / "policies"
SHOP = "spiffe://cluster.local/ns/shop/sa/frontend"
OPS = "spiffe://cluster.local/ns/ops/sa/admin"
WEB = "spiffe://cluster.local/ns/web/sa/crawler"

def basic_auth(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


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

# policy directory, decision path, requests: (identity or None, method, path, headers)
CASES = {
    "demo": ("envoy/authz/allow", [
        (None, "GET", "/health", {}),
        (None, "GET", "/health/", {}),
        (None, "GET", "/products", {}),
        (SHOP, "GET", "/products", {}),
        (SHOP, "GET", "/products/42?fields=name&fields=price", {}),
        (SHOP, "POST", "/products", {}),
        (SHOP, "DELETE", "/products/42", {}),
        (SHOP, "GET", "/orders", {}),
        (SHOP, "GET", "//products", {}),
        (SHOP, "GET", "/%70roducts", {}),
        (WEB, "GET", "/products", {}),
        (WEB, "GET", "/health", {}),
        (OPS, "DELETE", "/products/42", {}),
        (OPS, "PUT", "/anything?x=1", {}),
        (None, "GET", "/products", {"x-forwarded-client-cert": f"URI={SHOP}"}),
    ]),
    "e2e": ("e2e/decision", [
        (None, "GET", "/", {}),
        (None, "GET", "/p?keep=1&drop=2", {"x-mode": "allow"}),
        (None, "GET", "/", {"x-mode": "deny"}),
        (None, "POST", "/", {"x-mode": "bad-status"}),
        (None, "GET", "/", {"x-mode": "bad-header"}),
        (None, "GET", "/", {"x-mode": "bad-type"}),
        (None, "GET", "/", {"x-mode": "unknown"}),
        (SHOP, "GET", "/", {"x-mode": "deny"}),
    ]),
    # OPA's Istio quick start, unchanged: the RVM cannot compile it, so the filter interprets it.
    "istio-quickstart": ("istio/authz/allow", [
        (None, "GET", "/health", {}),
        (None, "GET", "/health/", {}),
        (None, "POST", "/health", {}),
        (None, "GET", "/productpage", {}),
        (None, "GET", "/productpage", {"authorization": basic_auth("alice:password")}),
        (None, "GET", "/api/v1/products", {"authorization": basic_auth("alice:password")}),
        (None, "GET", "/api/v1/products", {"authorization": basic_auth("bob:password")}),
        (None, "GET", "/productpage", {"authorization": basic_auth("bob:secret")}),
        (None, "POST", "/productpage", {"authorization": basic_auth("bob:password")}),
        (None, "GET", "/productpage?x=1", {"authorization": basic_auth("alice:password")}),
        (None, "GET", "/productpage", {"authorization": basic_auth("charlie:password")}),
        (None, "GET", "/productpage", {"authorization": basic_auth("alice")}),
        (SHOP, "GET", "/api/v1/products", {"authorization": basic_auth("bob:x")}),
        (None, "GET", "/productpage", {"authorization": "Basic " + base64.urlsafe_b64encode(b"alice:??>").decode()}),
    ]),
    "e2e#spiffe": ("e2e/spiffe", [
        (None, "GET", "/", {}),
        (SHOP, "GET", "/", {}),
        (WEB, "GET", "/", {}),
        (OPS, "GET", "/x", {}),
    ]),
}


@pytest.fixture(scope="module")
def differential(workdir, pki, upstream):
    listeners, oracles = [], {}
    for case, (rule, _) in CASES.items():
        policy = case.split("#")[0]
        source = workdir / f"diff-{case}"
        shutil.copytree(POLICIES / policy, source)
        (source / "zz_differential.rego").write_text(WRAPPER.format(rule=rule.replace("/", ".")))
        bundle = build_bundle(source, workdir / f"diff-{case}.tar.gz", ["zerohop/differential/response"])
        listeners.append(Listener(case, plugin_config(bundle, path="zerohop/differential/response"),
                                  tls=pki.server_tls(require=False)))
        oracles[case] = engine_for(POLICIES / policy)
    (workdir / "diff").mkdir()
    proxy = Envoy(listeners, upstream.port, workdir / "diff").start()
    clients = {uri: pki.client_context(*pki.issue(f"diff-{uri.rsplit('/', 1)[1]}", uri=uri)) for uri in (SHOP, OPS, WEB)}
    clients[None] = pki.client_context()
    yield proxy, oracles, clients
    proxy.stop()


def case_ids():
    return [f"{case}:{i}:{method} {path}" for case, (_, reqs) in CASES.items()
            for i, (_, method, path, _) in enumerate(reqs)]


@pytest.mark.parametrize("case,index", [(c, i) for c, (_, reqs) in CASES.items() for i in range(len(reqs))],
                         ids=case_ids())
def test_zerohop_decides_like_opa(differential, case, index):
    proxy, oracles, clients = differential
    rule, requests = CASES[case]
    identity, method, path, headers = requests[index]
    r = request(proxy.port(case), path, method=method, headers=headers, tls=clients[identity])
    assert r.status == 200, (r.status, r.body, proxy.log()[-2000:])
    seen = json.loads(r.body)
    expected = evaluate(oracles[case], rule, seen["input"])
    assert seen["result"] == ([] if expected is UNDEFINED else [expected]), seen["input"]


def test_each_policy_runs_on_the_expected_engine_path(differential):
    proxy, _, _ = differential
    log = proxy.log()
    assert "demo: bundle revision \"test\" active, decision data.zerohop.differential.response (precompiled)" in log
    # `some perm in role_perms[r]` is valid Rego the RVM compiler refuses: the interpreter runs it.
    assert "istio-quickstart: bundle revision \"test\" active, decision data.zerohop.differential.response (interpreted)" in log
