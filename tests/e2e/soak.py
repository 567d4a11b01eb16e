"""Soak (`make soak`, SOAK_SECONDS; a 60-second run is in `make test-e2e`, test_soak.py): real
Envoy with 2 workers at a fixed request rate for a long time, a new signed bundle revision on
the bundle server (nginx) every `--swap-seconds`, and a mix of allowed, denied, body (JSON)
and JWT (`io.jwt.decode_verify`, HS256) requests. Every answer is checked against the policy
of a revision that was active at some point around that request (the previous or the
current one); anything else is counted as wrong. Memory is sampled every `--sample-seconds`:
Envoy 1.40's admin stats have no per-VM memory figure (`wasm.*` counts VMs and reloads), so
the curve is Envoy's resident set size (`/proc/<pid>/status` VmRSS, which holds every VM's
linear memory) next to `server.memory_allocated` (Envoy's own heap), written as CSV.

    python soak.py --seconds 1800 --rate 100 --out ../../target/soak-memory.csv
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import ROOT, EchoUpstream, Envoy, Listener, Nginx, build_bundle, static_cluster, temp_dir

KEYS = ROOT / "testdata" / "keys"
JWT_SECRET = "zerohop soak secret, at least 32 bytes"
POLICY = """package soak

import rego.v1

default decision := {"allowed": false, "http_status": 403, "body": "denied by REV"}

allowed := {"allowed": true, "response_headers_to_add": {"x-policy-revision": "REV"}}

decision := allowed if input.parsed_path == ["ok"]

decision := allowed if {
	input.parsed_path == ["body"]
	input.parsed_body.amount < 100
}

decision := allowed if {
	input.parsed_path == ["jwt"]
	[valid, _, payload] := io.jwt.decode_verify(bearer, {"secret": "SECRET"})
	valid
	payload.sub == "alice"
}

bearer := t if {
	v := input.attributes.request.http.headers.authorization
	startswith(v, "Bearer ")
	t := substring(v, count("Bearer "), -1)
}
"""


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256(claims: dict, secret: str) -> str:
    signing_input = f"{b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


GOOD_TOKEN = hs256({"sub": "alice", "exp": int(time.time()) + 7 * 86400}, JWT_SECRET)
OTHER_SUB = hs256({"sub": "mallory", "exp": int(time.time()) + 7 * 86400}, JWT_SECRET)
FORGED = hs256({"sub": "alice", "exp": int(time.time()) + 7 * 86400}, "not the secret, but as long as it")

# (name, method, path, headers, body, allowed by every revision)
MIX = [
    ("allowed", "GET", "/ok", {}, None, True),
    ("denied", "GET", "/admin", {}, None, False),
    ("body-allowed", "POST", "/body", {"content-type": "application/json"}, b'{"amount": 5}', True),
    ("body-denied", "POST", "/body", {"content-type": "application/json"}, b'{"amount": 500}', False),
    ("jwt-allowed", "GET", "/jwt", {"authorization": f"Bearer {GOOD_TOKEN}"}, None, True),
    ("jwt-other-subject", "GET", "/jwt", {"authorization": f"Bearer {OTHER_SUB}"}, None, False),
    ("jwt-forged", "GET", "/jwt", {"authorization": f"Bearer {FORGED}"}, None, False),
]


def live_config() -> str:
    return json.dumps({
        "path": "soak/decision",
        "with_request_body": {"max_request_bytes": 8192},
        "bundle": {
            "service": {"cluster": "bundles", "authority": "bundles.test", "path": "/soak.tar.gz", "timeout": "2s"},
            "polling": {"min_delay_seconds": 1, "max_delay_seconds": 3},
            "signing": {"keys": {"ci": {"key": (KEYS / "rsa.pub.pem").read_text(), "algorithm": "RS256"}},
                        "scope": "zerohop"},
        },
    })


@dataclass
class Tally:
    answers: int = 0
    by_kind: dict = field(default_factory=dict)
    wrong: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    revisions: set = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Soak:
    def __init__(self, seconds: float, rate: float, swap_seconds: float, sample_seconds: float, out: Path | None,
                 workers: int = 2, threads: int = 4):
        self.seconds, self.rate, self.swap_seconds = seconds, rate, swap_seconds
        self.sample_seconds, self.out, self.workers, self.threads = sample_seconds, out, workers, threads
        self.workdir = temp_dir("zerohop-soak-")
        self.tally = Tally()
        self.served: list[str] = []  # revisions in the order they were served
        self.samples: list[tuple[float, int, int, int]] = []

    def build(self, revision: str) -> bytes:
        source = self.workdir / f"src-{revision}"
        (source / "soak").mkdir(parents=True)
        rego = POLICY.replace("REV", revision).replace("SECRET", JWT_SECRET)
        (source / "soak" / "policy.rego").write_text(rego)
        signing = ["--signing-key", str(KEYS / "rsa.pem"), "--signing-alg", "RS256",
                   "--verification-key-id", "ci", "--scope", "zerohop"]
        return build_bundle(source, self.workdir / f"{revision}.tar.gz", ["soak/decision"], revision, signing)

    def acceptable(self, name: str, allowed: bool, status: int, revision: str | None, body: bytes) -> bool:
        """The answer of the revision served last or the one before (a swap may be under way):
        allowed ones carry its revision in a header, denied ones in the body."""
        known = set(self.served[-2:])
        if allowed:
            return status == 200 and revision in known
        return status == 403 and body.decode(errors="replace").removeprefix("denied by ") in known

    def client(self, index: int, stop: threading.Event, started: float) -> None:
        per_thread = self.rate / self.threads
        conn = None
        n = 0
        while not stop.is_set():
            due = started + n / per_thread
            n += 1
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            name, method, path, headers, body, allowed = MIX[(index + n) % len(MIX)]
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.envoy.port("soak"), timeout=10)
                conn.request(method, path, body=body, headers=headers)
                r = conn.getresponse()
                payload = r.read()
                revision = r.getheader("x-policy-revision")
                if r.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                with self.tally.lock:
                    self.tally.errors.append(f"{name}: {e!r}")
                conn = None
                continue
            ok = self.acceptable(name, allowed, r.status, revision, payload)
            with self.tally.lock:
                self.tally.answers += 1
                self.tally.by_kind[name] = self.tally.by_kind.get(name, 0) + 1
                if revision:
                    self.tally.revisions.add(revision)
                if not ok and len(self.tally.wrong) < 50:
                    self.tally.wrong.append((time.monotonic() - started, name, r.status, revision, payload[:80]))
                elif not ok:
                    self.tally.wrong.append(None)

    def rss_kb(self) -> int:
        assert self.envoy.process is not None
        for line in Path(f"/proc/{self.envoy.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def sample(self, started: float) -> None:
        self.samples.append((time.monotonic() - started, self.rss_kb(), self.envoy.stat("server.memory_allocated"),
                             self.envoy.stat("wasm.envoy.wasm.runtime.v8.active")))

    def run(self) -> dict:
        self.upstream = EchoUpstream().start()
        self.nginx = Nginx(self.workdir / "nginx").start()
        revision = 0

        def swap() -> None:
            nonlocal revision
            revision += 1
            name = f"r{revision}"
            bundle = self.build(name)
            self.served.append(name)
            self.nginx.serve("soak.tar.gz", bundle)

        swap()
        (self.workdir / "envoy").mkdir()
        self.envoy = Envoy([Listener("soak", live_config(), allow_on_headers_stop_iteration=True)], self.upstream.port,
                           self.workdir / "envoy", concurrency=self.workers,
                           clusters=[static_cluster("bundles", self.nginx.port)], access_log=False).start()
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                conn = http.client.HTTPConnection("127.0.0.1", self.envoy.port("soak"), timeout=5)
                conn.request("GET", "/ok")
                if conn.getresponse().getheader("x-policy-revision") == "r1":
                    break
                time.sleep(0.2)
            else:
                raise AssertionError("the first bundle did not activate")
            stop = threading.Event()
            started = time.monotonic()
            threads = [threading.Thread(target=self.client, args=(i, stop, started)) for i in range(self.threads)]
            for t in threads:
                t.start()
            next_swap, next_sample = started + self.swap_seconds, started
            try:
                while time.monotonic() < started + self.seconds:
                    now = time.monotonic()
                    if now >= next_sample:
                        self.sample(started)
                        next_sample += self.sample_seconds
                    if now >= next_swap:
                        swap()
                        next_swap += self.swap_seconds
                    time.sleep(0.2)
            finally:
                stop.set()
                for t in threads:
                    t.join()
            self.sample(started)
            elapsed = time.monotonic() - started
            log = self.envoy.log()
            result = {
                "seconds": round(elapsed, 1),
                "answers": self.tally.answers,
                "rate": round(self.tally.answers / elapsed, 1),
                "by_kind": self.tally.by_kind,
                "wrong": len(self.tally.wrong),
                "wrong_examples": [w for w in self.tally.wrong if w][:10],
                "errors": len(self.tally.errors),
                "error_examples": self.tally.errors[:5],
                "revisions_served": len(self.served),
                "revisions_seen": len(self.tally.revisions),
                "activations": self.envoy.stat("wasmcustom.zerohop.bundle.activations"),
                "panics": log.count("panicked"),
                "traps": log.count("Function: proxy_on_") + log.count("wasm trap"),
                "vm_reloads": self.envoy.stat("wasm.soak.vm_reload"),
                "vms_active": self.envoy.stat("wasm.envoy.wasm.runtime.v8.active"),
                "vms_created": self.envoy.stat("wasm.envoy.wasm.runtime.v8.created"),
                "memory": self.samples,
            }
        finally:
            self.envoy.stop()
            self.nginx.stop()
            self.upstream.stop()
        if self.out:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            with open(self.out, "w") as f:
                f.write("seconds,envoy_rss_kb,server_memory_allocated_bytes,wasm_vms_active\n")
                for t, rss, allocated, vms in self.samples:
                    f.write(f"{t:.0f},{rss},{allocated},{vms}\n")
        return result


def summary(result: dict) -> str:
    samples = result["memory"]
    lines = [f"soak: {result['answers']} answers in {result['seconds']} s ({result['rate']}/s), "
             f"{result['wrong']} wrong, {result['errors']} errors, {result['panics']} panics, {result['traps']} traps; "
             f"{result['revisions_served']} revisions served, {result['revisions_seen']} seen, "
             f"{result['activations']} activations; VMs created {result['vms_created']}, active {result['vms_active']}",
             f"  by kind: {result['by_kind']}"]
    if samples:
        first, last = samples[0], samples[-1]
        peak = max(s[1] for s in samples)
        lines.append(f"  Envoy RSS: {first[1]} kB at start, {last[1]} kB at the end, peak {peak} kB; "
                     f"server.memory_allocated {first[2]} -> {last[2]} bytes")
    for example in result["wrong_examples"] + result["error_examples"]:
        lines.append(f"  {example}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=1800)
    parser.add_argument("--rate", type=float, default=100, help="requests per second, all threads together")
    parser.add_argument("--swap-seconds", type=float, default=60)
    parser.add_argument("--sample-seconds", type=float, default=10)
    parser.add_argument("--out", type=Path, default=ROOT / "target" / "soak-memory.csv")
    args = parser.parse_args()
    result = Soak(args.seconds, args.rate, args.swap_seconds, args.sample_seconds, args.out).run()
    print(summary(result))
    print(f"memory curve: {args.out}")
    bad = result["wrong"] or result["errors"] or result["panics"] or result["traps"] or result["vm_reloads"]
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
