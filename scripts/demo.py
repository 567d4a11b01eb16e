"""make demo: the demo bundle in real Envoy on loopback, a few requests, and what happened.

Builds testdata/policies/demo into a bundle, starts Envoy (2 workers) with the zerohop filter
on a strict-mTLS listener and a plaintext one, sends a short script of requests as different
workload identities, prints each decision, and shuts Envoy down. Exits non-zero if any
request did not get the status the policy promises.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))

from harness import (ROOT, EchoUpstream, Envoy, Listener, Pki, build_bundle,  # noqa: E402
                     plugin_config, request, temp_dir)

SHOP = "spiffe://cluster.local/ns/shop/sa/frontend"
OPS = "spiffe://cluster.local/ns/ops/sa/admin"
WEB = "spiffe://cluster.local/ns/web/sa/crawler"

SCRIPT = [
    # (listener, identity, method, path, expected status)
    ("plain", None, "GET", "/health", 200),
    ("plain", None, "GET", "/products", 403),
    ("mtls", SHOP, "GET", "/products", 200),
    ("mtls", SHOP, "GET", "/products/42?fields=name", 200),
    ("mtls", SHOP, "DELETE", "/products/42", 403),
    ("mtls", WEB, "GET", "/products", 403),
    ("mtls", OPS, "DELETE", "/products/42", 200),
]


def main() -> int:
    work = temp_dir("zerohop-demo-")
    bundle = build_bundle(ROOT / "testdata" / "policies" / "demo", work / "demo.tar.gz", ["envoy/authz/allow"],
                          revision="demo-1")
    pki = Pki(work)
    clients = {uri: pki.client_context(*pki.issue(uri.rsplit("/", 1)[1], uri=uri)) for uri in (SHOP, OPS, WEB)}
    upstream = EchoUpstream().start()
    config = plugin_config(bundle)  # default path: envoy/authz/allow
    # The mTLS listener also writes OPA decision-log events to Envoy's log.
    logged = plugin_config(bundle, decision_logs={"console": True})
    envoy = Envoy([Listener("plain", config), Listener("mtls", logged, tls=pki.server_tls())],
                  upstream.port, work)
    print(f"bundle {work / 'demo.tar.gz'} ({len(bundle)} bytes), Envoy config {envoy.config_path}")
    failures = 0
    try:
        envoy.start()
        for line in envoy.log().splitlines():
            if "bundle revision" in line:
                print("envoy:", line.split("wasm log: ", 1)[-1])
                break
        print()
        print(f"{'METHOD':<7} {'PATH':<26} {'IDENTITY':<44} {'DECISION':<9} STATUS")
        for listener, identity, method, path, expected in SCRIPT:
            r = request(envoy.port(listener), path, method=method, tls=clients.get(identity))
            decision = "allow" if r.status == 200 else "deny"
            mark = "" if r.status == expected else f"   <-- expected {expected}"
            failures += r.status != expected
            who = identity or "anonymous (no client certificate)"
            print(f"{method:<7} {path:<26} {who:<44} {decision:<9} {r.status}{mark}")
            if decision == "allow":
                print(f"{'':<7} upstream saw x-zerohop-identity: {r.json()['headers'].get('x-zerohop-identity')}")
            else:
                print(f"{'':<7} client got: {r.body.decode().strip()!r}")
        # One decision-log event (the last mTLS request's), as Envoy logged it.
        deadline = time.monotonic() + 5
        while True:
            events = [line.split("zerohop-decision ", 1)[1] for line in envoy.log().splitlines()
                      if "zerohop-decision " in line]
            if events or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if events:
            print()
            print("decision log (last event, from Envoy's log):")
            print("zerohop-decision", events[-1])
        else:
            print("no decision-log line in Envoy's log", file=sys.stderr)
            failures += 1
    finally:
        envoy.stop()
        upstream.stop()
    print()
    print(f"Envoy stopped cleanly; its log is at {envoy.log_path}")
    if failures:
        print(f"{failures} request(s) did not get the expected status", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
