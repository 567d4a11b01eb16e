"""make demo: a zero-trust mesh in a box on loopback (tests/e2e/mesh.py).

Three workloads of the `shop` namespace (frontend, orders, payments), each an app plus an Envoy
sidecar, with SPIFFE certificates from a demo CA: outbound sidecars originate mTLS, inbound
sidecars require client certificates and run zerohop with manifests/bundles/zero-trust, which
they fetch from a bundle server (nginx behind its own sidecar). The demo sends east-west calls
and prints each decision as the callee's sidecar logged it, publishes a new bundle revision
and shows the next calls decided by it, shows three callers the TLS handshake refuses, then
shuts everything down. Exits non-zero if any call did not get the status the policy promises.
"""

import json
import ssl
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))

from harness import temp_dir  # noqa: E402
from mesh import REVISION_1_CALLS, Ca, Mesh, spiffe, zero_trust_bundle  # noqa: E402

# Revision 2 lets orders also GET payments.
REVISION_2 = [
    ("orders", "payments", "GET", "/payments/7", 200),
    ("frontend", "payments", "POST", "/payments", 403),
]

HEADER = f"{'CALLER (mTLS identity)':<44} {'CALLEE':<9} {'METHOD':<7} {'PATH':<12} {'DECISION':<9} {'STATUS':<7} DECISION ID"


def run_calls(mesh: Mesh, calls) -> int:
    failures = 0
    print(HEADER)
    for caller, callee, method, path, expected in calls:
        call = mesh.call(caller, callee, method, path)
        log = call.log or {}
        mark = "" if call.status == expected else f"   <-- expected {expected}"
        failures += call.status != expected
        print(f"{log.get('caller', '?'):<44} {callee:<9} {method:<7} {path:<12} {call.decision:<9} "
              f"{call.status:<7} {log.get('decision_id', '-')}{mark}")
    return failures


def refusal(mesh: Mesh, context: ssl.SSLContext) -> str:
    try:
        return f"answered HTTP {mesh.direct('orders', context, '/orders/42')}   <-- expected a refused handshake"
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as e:
        return f"refused by the TLS handshake ({getattr(e, 'reason', None) or type(e).__name__})"


def main() -> int:
    started = time.monotonic()
    work = temp_dir("zerohop-mesh-")
    mesh = Mesh(work, zero_trust_bundle(work, "zero-trust-1"))
    failures = 0
    try:
        mesh.start()
        mesh.wait_for_revision("zero-trust-1")
        print(f"mesh up in {time.monotonic() - started:.0f} s: frontend, orders, payments (namespace shop) and the "
              f"bundle server, each behind an Envoy sidecar; certificates from {mesh.ca.cert}")
        print('every sidecar runs bundle revision "zero-trust-1": default deny; frontend -> orders GET/POST; '
              "orders -> payments POST")
        print()
        failures += run_calls(mesh, REVISION_1_CALLS)

        print()
        print('publishing revision "zero-trust-2" on the bundle server (orders may also GET payments) ...')
        published = time.monotonic()
        mesh.publish(zero_trust_bundle(work, "zero-trust-2", allow_orders_to_get_payments=True))
        mesh.wait_for_revision("zero-trust-2")
        print(f"active in every sidecar after {time.monotonic() - published:.1f} s (each polls every second)")
        print()
        failures += run_calls(mesh, REVISION_2)

        print()
        print("callers without a mesh identity, straight to the orders sidecar:")
        other_ca = Ca(work / "other-ca", "another CA")
        expired = mesh.ca.issue("frontend-expired", spiffe("frontend"), start="20200101000000Z", end="20200102000000Z")
        for who, context in [
            ("no client certificate", mesh.ca.client_context()),
            ("frontend's SPIFFE id from another CA", mesh.ca.client_context(*other_ca.issue("frontend", spiffe("frontend")))),
            ("frontend's SPIFFE id, expired in 2020", mesh.ca.client_context(*expired)),
        ]:
            outcome = refusal(mesh, context)
            failures += not outcome.startswith("refused")
            print(f"  {who:<40} {outcome}")
        print()
        entry = mesh.call("frontend", "orders", "GET", "/orders/42").log
        print("one line of the orders sidecar's access log (the format of manifests/istiod/values.yaml):")
        print(f"  {json.dumps(entry)}")
        event = mesh.decision_log_event("orders", entry["decision_id"]) if entry else None
        print()
        print("its decision-log event (decision_logs.console: OPA's EventV1 in the sidecar's log):")
        print(f"  zerohop-decision {event}" if event else "  (none found)")
        failures += event is None
    finally:
        mesh.stop()
    print()
    print(f"everything stopped ({time.monotonic() - started:.0f} s in all); logs and certificates are in {work}")
    if failures:
        print(f"{failures} call(s) did not get the expected outcome", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
