"""Live-bundle numbers in real Envoy with nginx as the bundle server (`make bench-bundles`):

- activation time of the reference (demo) bundle and of the same bundle with a 10,000-entry
  `data.json`, both signed RS256: the `loaded in N ms` each VM logs (read, verify, load), and
  the time from the new bundle on the server to the last worker running it;
- bundle fetches per proxy per polling period with `--concurrency 4` (nginx's access log).

Writes benches/results/bundles.md.
"""

import json
import re
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "e2e"))

from harness import ROOT, Envoy, Listener, Nginx, build_bundle, request, static_cluster, temp_dir  # noqa: E402

KEYS = ROOT / "testdata" / "keys"
MIN_DELAY, MAX_DELAY = 1, 2
CONCURRENCY = 4
WINDOW = 30


def config() -> str:
    return json.dumps({
        "path": "envoy/authz/allow",
        "bundle": {
            "service": {"cluster": "bundles", "authority": "bundles.test", "path": "/b.tar.gz", "timeout": "5s"},
            "polling": {"min_delay_seconds": MIN_DELAY, "max_delay_seconds": MAX_DELAY},
            "signing": {"keys": {"ci": {"key": (KEYS / "rsa.pub.pem").read_text(), "algorithm": "RS256"}}},
        },
    })


def signed(source: Path, out: Path, revision: str) -> bytes:
    return build_bundle(source, out, ["envoy/authz/allow"], revision,
                        ["--signing-key", str(KEYS / "rsa.pem"), "--verification-key-id", "ci"])


def activation(envoy: Envoy, nginx: Nginx, bundle: bytes, revision: str) -> tuple[list[int], float]:
    served = time.time()
    nginx.serve("b.tar.gz", bundle)
    pattern = re.compile(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\]\[(\d+)\].*bundle revision \""
                         + re.escape(revision) + r"\" active .* loaded in (\d+) ms")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = pattern.findall(envoy.log())
        if len({thread for _, thread, _ in found}) >= CONCURRENCY + 1:
            break
        time.sleep(0.2)
    else:
        raise SystemExit(f"{revision} did not activate on every thread:\n{envoy.log()[-3000:]}")
    stamps = [time.mktime(time.strptime(s.split(".")[0], "%Y-%m-%d %H:%M:%S")) + float("0." + s.split(".")[1])
              for s, _, _ in found]
    return [int(ms) for _, _, ms in found], max(stamps) - served


def main() -> None:
    work = temp_dir("zerohop-bundles-bench")
    reference = work / "reference"
    shutil.copytree(ROOT / "testdata" / "policies" / "demo", reference)
    large = work / "large"
    shutil.copytree(reference, large)
    data = json.loads((reference / "data.json").read_text())
    data["entries"] = {f"key-{i:05d}": {"owner": f"team-{i % 97}", "level": i % 5} for i in range(10_000)}
    (large / "data.json").write_text(json.dumps(data))
    nginx = Nginx(work / "nginx").start()
    envoy = Envoy([Listener("live", config())], None, work, concurrency=CONCURRENCY,
                  clusters=[static_cluster("bundles", nginx.port)]).start()
    try:
        rows = []
        for name, source in [("reference (demo)", reference), ("10,000-entry data.json", large)]:
            revision = name.split()[0].strip("(,")
            bundle = signed(source, work / f"{revision}.tar.gz", revision)
            loads, spread = activation(envoy, nginx, bundle, revision)
            rows.append((name, len(bundle), sorted(loads), spread))
        assert request(envoy.port("live"), "/health").status == 200
        before, started = nginx.requests("/b.tar.gz"), time.monotonic()
        time.sleep(WINDOW)
        fetches, elapsed = nginx.requests("/b.tar.gz") - before, time.monotonic() - started
    finally:
        envoy.stop()
        nginx.stop()
    period = (MIN_DELAY + MAX_DELAY) / 2
    lines = [
        "# Live bundles (benches/e2e/bundles.py)",
        "",
        f"Envoy 1.40, `--concurrency {CONCURRENCY}`, nginx on loopback, polling {MIN_DELAY}–{MAX_DELAY} s, bundles signed RS256.",
        "",
        "| bundle | .tar.gz bytes | load per VM, ms (read + verify + load) | server → last VM active, s |",
        "|---|---|---|---|",
        *[f"| {n} | {size} | {', '.join(map(str, loads))} | {spread:.2f} |" for n, size, loads, spread in rows],
        "",
        f"Fetches: {fetches} in {elapsed:.1f} s = {fetches / elapsed * period:.2f} per proxy per "
        f"polling period (mean period {period} s), with {CONCURRENCY} workers + the main thread.",
    ]
    out = ROOT / "benches" / "results" / "bundles.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
