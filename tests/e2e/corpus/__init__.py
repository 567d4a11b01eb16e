"""The differential corpus: realistic OPA-Envoy policies (`testdata/policies/<policy>`) and the
requests each one is tried with. One module per policy; each defines `CASES`, a list of `Case`.
`test_differential.py` sends every request through the filter in real Envoy and compares the
input and the decision with the real OPA engine.
"""

from __future__ import annotations

import base64
import importlib
import pkgutil
from dataclasses import dataclass, field

# Client identities: the SPIFFE id in the client certificate (None: no client certificate).
SHOP = "spiffe://cluster.local/ns/shop/sa/frontend"
OPS = "spiffe://cluster.local/ns/ops/sa/admin"
WEB = "spiffe://cluster.local/ns/web/sa/crawler"
IDENTITIES = (SHOP, OPS, WEB)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    identity: str | None = None
    body: bytes | None = None
    # The real OPA engine here evaluates with strict builtin errors; OPA-Envoy does not (a failing
    # builtin is undefined there, and `default` rules apply). For a request whose evaluation hits
    # a failing builtin, this is the decision OPA-Envoy gives, worked out by hand.
    opa_envoy_decision: object = None
    # A request OPA-Envoy refuses before any policy runs (400: a path or query it cannot parse).
    opa_envoy_status: int = 200


@dataclass(frozen=True)
class Case:
    # Directory under testdata/policies.
    policy: str
    # Decision path, as OPA-Envoy's `path` option.
    rule: str
    requests: list[Request]
    # Distinguishes several cases of one policy (`e2e#spiffe`).
    variant: str = ""
    # Extra plugin configuration for this case's listener (e.g. request bodies).
    settings: dict = field(default_factory=dict)
    # Envoy's jwt_authn in front of the filter (`harness.JwtIssuer` signs the tokens).
    jwt_authn: bool = False

    @property
    def name(self) -> str:
        return f"{self.policy}#{self.variant}" if self.variant else self.policy


def basic_auth(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


def all_cases() -> list[Case]:
    cases = []
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        cases += importlib.import_module(f"{__name__}.{module.name}").CASES
    return cases
