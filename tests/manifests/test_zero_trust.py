"""The zero-trust example bundle (manifests/bundles/zero-trust): default deny; frontend may
GET and POST orders; orders may only POST payments. Each call goes through the filter's own
request path (`policy-bundler eval --request`) under the base's plugin configuration, with
the caller's and the callee's SPIFFE ids as mTLS gives them."""

import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUNDLER = ROOT / "dist" / "policy-bundler"
POLICY = ROOT / "manifests" / "bundles" / "zero-trust"


def spiffe(sa, ns="shop"):
    return f"spiffe://cluster.local/ns/{ns}/sa/{sa}"


FRONTEND, ORDERS, PAYMENTS = spiffe("frontend"), spiffe("orders"), spiffe("payments")

CALLS = [
    # caller, callee, method, path, allowed
    (FRONTEND, ORDERS, "GET", "/orders/7", True),
    (FRONTEND, ORDERS, "POST", "/orders", True),
    (FRONTEND, ORDERS, "DELETE", "/orders/7", False),
    (ORDERS, PAYMENTS, "POST", "/payments", True),
    (ORDERS, PAYMENTS, "GET", "/payments/1", False),
    (FRONTEND, PAYMENTS, "POST", "/payments", False),
    (PAYMENTS, ORDERS, "GET", "/orders", False),
    (spiffe("frontend", ns="web"), ORDERS, "GET", "/orders", False),
    (None, ORDERS, "GET", "/orders", False),
]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("zero-trust") / "bundle.tar.gz"
    subprocess.run([str(BUNDLER), "build", str(POLICY), "-o", str(out), "-r", "zt-1", "-e", "zerohop/authz/allow"],
                   check=True, capture_output=True)
    return out


@pytest.mark.parametrize("caller,callee,method,path,allowed", CALLS)
def test_decision(tmp_path, bundle, caller, callee, method, path, allowed):
    request = {"method": method, "path": path, "authority": "orders.shop.svc.cluster.local",
               "destination": {"address": "10.0.0.9:8080", "principal": callee}}
    if caller:
        request["source"] = {"address": "10.0.0.7:51000", "principal": caller}
    (tmp_path / "request.json").write_text(json.dumps(request))
    (tmp_path / "config.json").write_text(json.dumps({"path": "zerohop/authz/allow"}))
    result = subprocess.run([str(BUNDLER), "eval", "-b", str(bundle), "--request", str(tmp_path / "request.json"),
                             "--config", str(tmp_path / "config.json")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    if allowed:
        assert outcome["action"] == "forward", outcome
        assert ["x-zerohop-caller", caller] in outcome["request_headers"], outcome
    else:
        assert outcome == {"action": "reply", "status": 403,
                           "headers": [["x-zerohop-denied-by", "zerohop.authz"]],
                           "body": "zerohop: denied by the zero-trust policy\n"}, outcome
