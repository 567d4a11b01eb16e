"""The real OPA engine (Go, `opa-golib-python-bindings`) as the reference for differential
tests. `make tools` unpacks the wheel into .tools/opa.

Its bridge evaluates with strict builtin errors where OPA-Envoy does not; the policies under
test must not depend on a failing builtin.
"""

import json
import sys
from pathlib import Path

from harness import ROOT

sys.path.insert(0, str(ROOT / ".tools" / "opa"))

from opa_bindings.engine import OpaEngine, OpaError, OpaUndefinedError  # noqa: E402

UNDEFINED = object()


def engine_for(policy_dir: Path) -> OpaEngine:
    """Loads a policy directory as `opa build` would: modules, and data at directory paths."""
    engine = OpaEngine()
    for path in sorted(policy_dir.rglob("*")):
        relative = path.relative_to(policy_dir)
        if path.suffix == ".rego" and not path.name.endswith("_test.rego"):
            engine.add_policy(str(relative), path.read_text())
        elif path.name == "data.json":
            engine.add_data(json.loads(path.read_text()), ".".join(relative.parent.parts))
    return engine


def evaluate(engine: OpaEngine, decision_path: str, input_doc):
    """The decision at `decision_path` (`envoy/authz/allow`), or UNDEFINED."""
    try:
        return engine.eval_document(decision_path.strip("/").replace("/", "."), input_doc)
    except OpaUndefinedError:
        return UNDEFINED
