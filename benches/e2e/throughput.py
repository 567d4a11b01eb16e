"""End-to-end throughput: Envoy (1 worker) with no authorization vs with the zerohop filter
running the demo policy, in one run, driven by wrk from another core.

    python benches/e2e/throughput.py [--seconds 10] [--connections 32] [--smoke]

`--smoke` runs a second per case and only checks the harness works (CI). Results go to
benches/results/throughput.{json,md}.
"""

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "e2e"))

from harness import ROOT, Envoy, Listener, build_bundle, plugin_config, request, temp_dir  # noqa: E402

RESULTS = ROOT / "benches" / "results"


def pinned(core: int) -> list[str]:
    return ["taskset", "-c", str(core)] if shutil.which("taskset") else []


def wrk(port: int, seconds: int, connections: int) -> dict:
    out = subprocess.run([*pinned(1), "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
                          f"http://127.0.0.1:{port}/health"], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    latency = {p: re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)", out, re.M) for p in ("50", "99")}
    scale = {"us": 1, "ms": 1000, "s": 1_000_000}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        **{f"p{p}_us": float(m.group(1)) * scale[m.group(2)] for p, m in latency.items() if m},
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    seconds = 1 if args.smoke else args.seconds
    if not shutil.which("wrk"):
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    work = temp_dir("zerohop-bench-")
    bundle = build_bundle(ROOT / "testdata" / "policies" / "demo", work / "demo.tar.gz", ["envoy/authz/allow"])
    listeners = [Listener("no-filter", None), Listener("zerohop", plugin_config(bundle))]
    envoy = Envoy(listeners, None, work, concurrency=1, access_log=False)
    envoy.prefix = pinned(0)
    results = {}
    try:
        envoy.start()
        for name in ("no-filter", "zerohop"):
            assert request(envoy.port(name), "/health").status == 200
            wrk(envoy.port(name), 1, args.connections)  # warm up
        for name in ("no-filter", "zerohop", "no-filter", "zerohop"):
            run = wrk(envoy.port(name), seconds, args.connections)
            if run["non_2xx"]:
                print(f"{name}: {run['non_2xx']} non-2xx responses", file=sys.stderr)
                return 1
            best = results.get(name)
            results[name] = run if best is None or run["rps"] > best["rps"] else best
            time.sleep(0.5)
    finally:
        envoy.stop()
    ratio = results["zerohop"]["rps"] / results["no-filter"]["rps"]
    lines = [
        f"wrk -t1 -c{args.connections} -d{seconds}s, Envoy --concurrency 1 pinned to core 0, wrk on core 1, "
        "GET /health (demo policy: object decision, header added), best of 2 runs each",
        "",
        "| configuration | req/s | p50 µs | p99 µs | ratio to no filter |",
        "|---|---|---|---|---|",
    ]
    for name, run in results.items():
        lines.append(f"| {name} | {run['rps']:.0f} | {run.get('p50_us', 0):.0f} | {run.get('p99_us', 0):.0f} | "
                     f"{run['rps'] / results['no-filter']['rps']:.2f} |")
    print("\n".join(lines))
    if not args.smoke:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "throughput.json").write_text(json.dumps({"results": results, "ratio": ratio}, indent=2) + "\n")
        (RESULTS / "throughput.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
