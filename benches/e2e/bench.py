"""End to end: the same request through Envoy (one worker, pinned to core 0) in every
configuration, one run, one table. See benches/README.md for what each configuration measures.

    python benches/e2e/bench.py [--seconds 5] [--smoke]
    python benches/e2e/bench.py --against OLD.wasm [--rounds 3] [--only NAME]

Per configuration: cold start (Envoy started → first expected answer), resident memory, maximum
throughput (wrk, closed loop), and latency percentiles at fixed rates of 25% and 50% of the
no-filter maximum (zerohop-loadgen, open loop, latency from each request's due time).
`--smoke` runs every configuration for about a second and checks only that each answers with
its expected status (CI). Results: benches/results/bench.{json,md} and benches/README.md's Results.
`--against OLD.wasm` compares two builds of the filter instead: the maximum throughput of each
zerohop configuration that OLD.wasm also understands, old and new alternating for `--rounds`
rounds in the same run (so drift in the machine's load hits both), medians printed.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "e2e"))

from harness import (ROOT, WASM, Envoy, Listener, Nginx, build_bundle, envoy_binary, free_port,  # noqa: E402
                     plugin_config, request, static_cluster, temp_dir)
from log_receiver import LogReceiver  # noqa: E402
from tokens import KEYS, NOW, b64, bearer, token  # noqa: E402

RESULTS = ROOT / "benches" / "results"
NOOP_WASM = ROOT / "dist" / "noop.wasm"
LOADGEN = ROOT / "target" / "release" / "zerohop-loadgen"
EXTAUTHZ = ROOT / "target" / "release" / "zerohop-extauthz"
POLICIES = ROOT / "testdata" / "policies"
ENVOY_CORE, LOAD_CORE = 0, 1
CONNECTIONS = 32
LOW_RATE = 1000  # req/s


def pinned(core: int) -> list[str]:
    return ["taskset", "-c", str(core)] if shutil.which("taskset") else []


@dataclass
class Config:
    name: str
    what: str
    path: str = "/api/v2/products/42"
    headers: dict[str, str] = field(default_factory=dict)
    expect: int = 200
    # Other requests and the status each must get, checked once after the start: a filter
    # that answered every request alike would otherwise pass.
    probes: list[tuple[str, dict, int]] = field(default_factory=list)
    # A policy directory and decision path: run by zerohop or by the ext_authz authorizer.
    policy: str | None = None
    decision: str | None = None
    extauthz: bool = False
    # HTTP filters put in front of the router (no-op wasm, native RBAC, ext_authz).
    filters: list[dict] = field(default_factory=list)
    # zerohop's pluginConfig keys besides the bundle and path.
    settings: dict = field(default_factory=dict)
    # A decision-log receiver on loopback, reached through the cluster `logs`.
    log_receiver: bool = False
    # nginx serving the http-send policy's user profiles, reached through the cluster
    # `attributes` (`http_send.clusters`).
    attribute_service: bool = False


# Every request of a run is the same, so zerohop answers all but the first from its decision
# cache (policies that read the clock excepted). The same policy with the cache off shows what
# an input never seen before costs.
UNCACHED = {"decision_cache_bytes": 0}


def uncached(config: Config) -> Config:
    return replace(config, name=config.name + "/uncached", settings=UNCACHED,
                   what=config.what + "; decision cache off: every request evaluated")


def wasm_filter(name: str, wasm: Path, configuration: str = "") -> dict:
    return {
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": name,
                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": configuration},
                "vm_config": {"runtime": "envoy.wasm.runtime.v8", "code": {"local": {"filename": str(wasm)}}},
                "failure_policy": "FAIL_CLOSED",
            },
        },
    }


def regex(pattern: str) -> dict:
    return {"safe_regex": {"regex": pattern}}


def path_header(pattern: str) -> dict:
    return {"header": {"name": ":path", "string_match": regex(pattern)}}


def methods(*names: str) -> dict:
    return {"or_rules": {"rules": [{"header": {"name": ":method", "string_match": {"exact": m}}} for m in names]}}


def rbac_path_rules() -> dict:
    """testdata/policies/path-rules in Envoy's RBAC filter. RE2 matches whole values, so the
    policy's unanchored regexes get `.*` around them; globs become prefixes and regexes."""
    not_forbidden = {"not_rule": {"or_rules": {"rules": [
        path_header(r".*/\.[^/]+.*"),
        path_header(r"(?i).*\.(bak|old|swp)(\?.*)?"),
    ]}}}
    static = {"or_rules": {"rules": [
        {"url_path": {"path": {"prefix": "/static/"}}},
        {"url_path": {"path": regex(r"/assets/[^/]*\.(css|js|png|svg)")}},
        {"url_path": {"path": {"exact": "/favicon.ico"}}},
    ]}}
    anyone = [{"any": True}]
    policies = {
        "static": {"permissions": [{"and_rules": {"rules": [not_forbidden, methods("GET", "HEAD"), static]}}],
                   "principals": anyone},
        "api": {"permissions": [{"and_rules": {"rules": [
            not_forbidden, methods("GET"), path_header(r"/api/v[1-3]/(products|categories)(/[0-9]+)?(\?.*)?")]}}],
            "principals": anyone},
        "admin": {"permissions": [{"and_rules": {"rules": [not_forbidden, {"url_path": {"path": {"prefix": "/admin/"}}}]}}],
                  "principals": [{"authenticated": {"principal_name": regex(r"spiffe://cluster\.local/ns/ops/sa/[a-z-]+")}}]},
    }
    return {"name": "envoy.filters.http.rbac", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
        "rules": {"action": "ALLOW", "policies": policies}}}


EXTAUTHZ_FILTER = {"name": "envoy.filters.http.ext_authz", "typed_config": {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
    "transport_api_version": "V3",
    "grpc_service": {"envoy_grpc": {"cluster_name": "extauthz"}, "timeout": "1s"},
    "failure_mode_allow": False,
}}


def extauthz_cluster(port: int) -> dict:
    return {
        "name": "extauthz", "connect_timeout": "1s", "type": "STATIC",
        "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": {"http2_protocol_options": {}}}},
        "load_assignment": {"cluster_name": "extauthz", "endpoints": [{"lb_endpoints": [{"endpoint": {
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]},
    }


ALICE = {"authorization": "Basic YWxpY2U6cGFzc3dvcmQ="}  # alice:password, OPA's tutorial
DAY = 86400
# (c) Tokens valid for a day from the start of the run: HS256 as in OPA's Envoy tutorial,
# RS256 with a kid from the JWKS in the jwt-jwks policy's data.
HS256_GUEST = bearer(token("HS256", {"role": "guest", "sub": b64(b"alice"), "nbf": NOW - 60, "exp": NOW + DAY},
                           "secret"))
RS256_READER = bearer(token("RS256", {"iss": "https://issuer.example", "aud": "orders", "sub": "alice",
                                      "scope": ["orders:read"], "nbf": NOW - 60, "exp": NOW + DAY},
                            KEYS / "rsa.key", {"alg": "RS256", "typ": "JWT", "kid": "rsa-1"}))
_CONFIGS = [
    Config("no-filter", "Envoy alone: direct_response, no HTTP filter but the router"),
    Config("noop-wasm", "a proxy-wasm filter that reads all request headers and continues: the ceiling for any wasm filter",
           filters=[wasm_filter("noop", NOOP_WASM)]),
    Config("rbac", "Envoy's native RBAC filter with the path-rules policy (d) as RBAC rules",
           filters=[rbac_path_rules()], probes=[("/.env", {}, 403), ("/static/app.js", {}, 200)]),
    Config("zerohop/istio-quickstart", "(a) OPA's Istio quick-start RBAC, basic auth user alice",
           path="/productpage", headers=ALICE, policy="istio-quickstart", decision="istio/authz/allow",
           probes=[("/productpage", {}, 403), ("/api/v1/products", ALICE, 403), ("/health", {}, 200)]),
    Config("zerohop/spiffe-allowlist", "(b) 200 SPIFFE ids in data; plaintext loopback has no peer "
           "certificate, so every entry is tried and the request denied (403)",
           path="/ledger/7", expect=403, policy="spiffe-allowlist", decision="mesh/authz/allow",
           probes=[("/healthz", {}, 200)]),
    Config("zerohop/jwt-hs256", "(c) OPA's Envoy tutorial: role from an HS256 token (io.jwt.decode_verify)",
           path="/people", headers=HS256_GUEST, policy="envoy-tutorial", decision="envoy/authz/allow",
           probes=[("/people", {}, 403), ("/people", {"authorization": HS256_GUEST["authorization"] + "x"}, 403)]),
    Config("zerohop/jwt-rs256", "(c) scopes from an RS256 token verified against a JWKS in data",
           path="/orders/7", headers=RS256_READER, policy="jwt-jwks", decision="envoy/authz/allow",
           probes=[("/orders/7", {}, 403), ("/orders/7", {"authorization": RS256_READER["authorization"] + "x"}, 403)]),
    Config("zerohop/path-rules", "(d) glob and regex path rules", policy="path-rules", decision="web/authz/allow",
           probes=[("/.env", {}, 403), ("/static/app.js", {}, 200)]),
    Config("zerohop/path-rules/logs-console", "(d) with decision logs written to Envoy's log (`console`)",
           policy="path-rules", decision="web/authz/allow", settings={"decision_logs": {"console": True}},
           probes=[("/.env", {}, 403), ("/static/app.js", {}, 200)]),
    Config("zerohop/path-rules/logs-service", "(d) with decision logs uploaded to a receiver on loopback "
           "(`service`, OPA's protocol, every 1-2 s)",
           policy="path-rules", decision="web/authz/allow", log_receiver=True,
           settings={"decision_logs": {"service": {"cluster": "logs", "authority": "logs.test"},
                                       "reporting": {"min_delay_seconds": 1, "max_delay_seconds": 2}}},
           probes=[("/.env", {}, 403), ("/static/app.js", {}, 200)]),
    Config("zerohop/http-send", "roles from an attribute service by `http.send` (nginx on loopback, one "
           "callout per request; decisions never cached)",
           path="/catalog", headers={"x-user": "alice"}, policy="http-send", decision="attrs/authz/allow",
           attribute_service=True,
           settings={"http_send": {"clusters": {"http://attributes.test": "attributes"}}},
           probes=[("/catalog", {"x-user": "mallory"}, 403), ("/catalog", {}, 403)]),
    Config("zerohop/api-key-lookup", "(e) a key looked up in a 10,000-entry data document, tenant header added",
           path="/v1/search?q=shoes", headers={"x-api-key": "key-04242"},
           policy="api-key-lookup", decision="apikeys/authz/decision",
           probes=[("/v1/search", {}, 401), ("/v1/reports", {"x-api-key": "key-04242"}, 403)]),
    Config("ext_authz/path-rules", "the path-rules policy with zerohop's engine in a gRPC authorizer "
           "(envoy_grpc, loopback, authorizer on Envoy's core): the lower bound for a remote authorizer",
           policy="path-rules", decision="web/authz/allow", extauthz=True, filters=[EXTAUTHZ_FILTER],
           probes=[("/.env", {}, 403), ("/static/app.js", {}, 200)]),
]
# (a), (b) and (d), the throughput targets, also with the decision cache off.
CONFIGS = [variant for config in _CONFIGS
           for variant in ([config, uncached(config)] if config.name in (
               "zerohop/istio-quickstart", "zerohop/spiffe-allowlist", "zerohop/path-rules") else [config])]


class Setup:
    """One configuration's Envoy (and authorizer) on a fresh port."""

    def __init__(self, config: Config, work: Path, bundles: dict[str, Path], concurrency: int = 1,
                 timing: bool = False, wasm: Path = WASM):
        self.config = config
        self.receiver = LogReceiver() if config.log_receiver else None
        self.attributes = attribute_service(work) if config.attribute_service else None
        self.authorizer: subprocess.Popen | None = None
        self.authorizer_port = free_port()
        directory = work / f"{config.name.replace('/', '-')}-c{concurrency}{'-timing' if timing else ''}"
        directory.mkdir(exist_ok=True)
        plugin = None
        if config.policy and not config.extauthz:
            settings = {**config.settings, **({"timing_stats": True} if timing else {})}
            plugin = plugin_config(bundles[config.policy].read_bytes(), path=config.decision, **settings)
        self.listener = Listener(config.name, plugin)
        self.envoy = Envoy([self.listener], None, directory, concurrency=concurrency, access_log=False,
                           wasm=wasm)
        self.envoy.prefix = pinned(ENVOY_CORE)
        generated = json.loads(self.envoy.config_path.read_text())
        chain = generated["static_resources"]["listeners"][0]["filter_chains"][0]
        chain["filters"][0]["typed_config"]["http_filters"][0:0] = copy.deepcopy(config.filters)
        if config.extauthz:
            generated["static_resources"]["clusters"].append(extauthz_cluster(self.authorizer_port))
        if self.receiver:
            generated["static_resources"]["clusters"].append(static_cluster("logs", self.receiver.port))
        if self.attributes:
            generated["static_resources"]["clusters"].append(static_cluster("attributes", self.attributes.port))
        if timing:
            # Histogram quantiles are computed at each stats flush (default every 5 s).
            generated["stats_flush_interval"] = "1s"
        self.envoy.config_path.write_text(json.dumps(generated, indent=1))
        self.bundle = bundles.get(config.policy or "")

    def start(self) -> float:
        """Starts everything; returns the seconds from starting Envoy to the first answer with
        the expected status (the authorizer is up before Envoy starts)."""
        if self.config.extauthz:
            self.authorizer = subprocess.Popen(
                [*pinned(ENVOY_CORE), str(EXTAUTHZ), "--listen", f"127.0.0.1:{self.authorizer_port}",
                 "--bundle", str(self.bundle), "--decision", self.config.decision],
                stderr=subprocess.DEVNULL)
            wait_for_port(self.authorizer_port, self.authorizer)
        if self.receiver:
            self.receiver.start()
        if self.attributes:
            self.attributes.start()
        started = time.monotonic()
        self.envoy.start(wait=False)
        deadline = started + 30
        last = None
        while time.monotonic() < deadline:
            if self.envoy.process.poll() is not None:
                raise SystemExit(f"{self.config.name}: Envoy exited:\n{self.envoy.log()[-3000:]}")
            try:
                last = request(self.listener.port, self.config.path, headers=self.config.headers).status
                if last == self.config.expect:
                    cold = time.monotonic() - started
                    for path, headers, status in self.config.probes:
                        got = request(self.listener.port, path, headers=headers).status
                        if got != status:
                            raise SystemExit(f"{self.config.name}: {path} {headers} answered {got}, not {status}")
                    return cold
            except OSError:
                pass
            time.sleep(0.005)
        raise SystemExit(f"{self.config.name}: no {self.config.expect} within 30 s (last status {last}):\n"
                         f"{self.envoy.log()[-3000:]}")

    def cpu_seconds(self) -> float:
        """Envoy's user + system CPU time so far."""
        fields = Path(f"/proc/{self.envoy.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def throughput(self, seconds: float) -> dict:
        """The maximum throughput (wrk), and Envoy's CPU time per request meanwhile: the cost
        of a request that a busy machine or a core stolen by the hypervisor does not inflate."""
        before = self.cpu_seconds()
        result = wrk(self.config, self.listener.port, seconds)
        result["cpu_us_per_request"] = (self.cpu_seconds() - before) * 1e6 / max(result["requests"], 1)
        return result

    def rss_mib(self) -> float:
        status = Path(f"/proc/{self.envoy.process.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024

    def stop(self) -> None:
        self.envoy.stop()
        if self.receiver:
            self.receiver.stop()
        if self.attributes:
            self.attributes.stop()
        if self.authorizer:
            self.authorizer.terminate()
            self.authorizer.wait(timeout=10)


def attribute_service(work: Path) -> Nginx:
    """nginx answering the http-send policy's profile lookups: alice reads, mallory does not."""
    server = Nginx(temp_dir("attributes"))
    (server.root / "users").mkdir()
    server.serve("users/alice.json", json.dumps({"roles": ["reader"]}).encode())
    server.serve("users/mallory.json", json.dumps({"roles": []}).encode())
    return server


def wait_for_port(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the authorizer exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise SystemExit("the authorizer did not listen within 30 s")


def wrk(config: Config, port: int, seconds: float) -> dict:
    headers = [a for k, v in config.headers.items() for a in ("-H", f"{k}: {v}")]
    out = subprocess.run([*pinned(LOAD_CORE), "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s",
                          *headers, f"http://127.0.0.1:{port}{config.path}"],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    # wrk counts non-2xx only: a configuration that must deny must deny every request.
    wrong = (int(non_2xx.group(1)) if non_2xx else 0) if config.expect < 300 else \
        total - (int(non_2xx.group(1)) if non_2xx else 0)
    if wrong or (errors and any(int(x) for x in errors.groups())):
        raise SystemExit(f"{config.name}: wrk saw {wrong} answers other than {config.expect}, errors {errors and errors.groups()}:\n{out}")
    return {"rps": rps, "requests": total}


def loadgen(config: Config, port: int, rate: float, seconds: float) -> dict:
    headers = [a for k, v in config.headers.items() for a in ("--header", f"{k}: {v}")]
    out = subprocess.run([*pinned(LOAD_CORE), str(LOADGEN), "--url", f"http://127.0.0.1:{port}{config.path}",
                          "--rate", str(rate), "--seconds", str(seconds), "--connections", str(CONNECTIONS), *headers],
                         capture_output=True, text=True, check=True).stdout
    run = json.loads(out)
    run["overloaded"] = run["unsent"] > 0.01 * rate * seconds
    if run["errors"] or set(run["statuses"]) != {str(config.expect)}:
        raise SystemExit(f"{config.name}: at {rate:.0f} req/s expected only {config.expect}, got {run}")
    return run


PHASES = ("request", "input", "evaluate", "apply")


def phase_times(setup: Setup, seconds: float) -> dict:
    """Under wrk load with `timing_stats` on: the p50 and p99 of each phase of a decision, in
    ns, from the filter's `wasmcustom.zerohop.time.*_ns` histograms."""
    wrk(setup.config, setup.listener.port, seconds)
    time.sleep(2.5)  # two stats flushes
    url = f"http://127.0.0.1:{setup.envoy.admin_port}/stats?format=json&filter=zerohop%5C.time"
    with urllib.request.urlopen(url, timeout=5) as r:
        stats = json.load(r)["stats"]
    histograms = next(s["histograms"] for s in stats if "histograms" in s)
    quantiles = histograms["supported_quantiles"]
    times = {}
    for h in histograms["computed_quantiles"]:
        phase = h["name"].removeprefix("wasmcustom.zerohop.time.").removesuffix("_ns")
        values = [v["cumulative"] for v in h["values"]]
        times[phase] = {"p50": values[quantiles.index(50)], "p99": values[quantiles.index(99)]}
    missing = [p for p in PHASES if p not in times]
    if missing:
        raise SystemExit(f"{setup.config.name}: no timing_stats histogram for {missing}: {histograms}")
    return times


def machine() -> dict:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = re.search(r"Model name:\s+(.+)", lscpu)
    envoy = subprocess.run([envoy_binary(), "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "cpu": model.group(1).strip() if model else platform.processor(),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "envoy": re.search(r"version: \S+?/([\d.]+)", envoy).group(1) if "version" in envoy else envoy,
        "load_average_at_start": os.getloadavg()[0],
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5, help="per throughput or fixed-rate run")
    parser.add_argument("--smoke", action="store_true", help="about a second per configuration, no results written")
    parser.add_argument("--only", help="run only configurations whose name contains this (plus no-filter)")
    parser.add_argument("--against", type=Path, help="compare dist/zerohop.wasm with this older build")
    parser.add_argument("--rounds", type=int, default=3, help="with --against: alternations per configuration")
    args = parser.parse_args()
    # This script (and the decision-log receiver it runs) stays off Envoy's core, beside the
    # load generator, as a log collector on another machine would.
    if LOAD_CORE in os.sched_getaffinity(0):
        os.sched_setaffinity(0, {LOAD_CORE})
    seconds = 1 if args.smoke else args.seconds
    for tool, hint in ((shutil.which("wrk"), "apt-get install wrk"), (LOADGEN.exists(), "make bench builds it"),
                       (EXTAUTHZ.exists(), "make bench builds it"), (NOOP_WASM.exists(), "make bench builds it"),
                       (WASM.exists(), "make build")):
        if not tool:
            print(f"missing a tool: {hint}", file=sys.stderr)
            return 2
    configs = [c for c in CONFIGS if not args.only or c.name == "no-filter" or args.only in c.name]
    work = temp_dir("zerohop-bench-")
    bundles = {}
    for c in configs:
        if c.policy and c.policy not in bundles:
            bundles[c.policy] = work / f"{c.policy}.tar.gz"
            build_bundle(POLICIES / c.policy, bundles[c.policy], [c.decision], revision="bench")
    if args.against:
        return compare(configs, work, bundles, args.against, args.rounds, seconds)
    host = machine()
    results: dict[str, dict] = {}
    rates: list[float] = []
    for config in configs:
        result = results[config.name] = {"what": config.what, "expect": config.expect}
        # Memory: RSS with two workers minus RSS with one is what one more worker (one more VM
        # and its plugin state) costs; both read right after the first decision.
        rss = {}
        # The smoke run skips the two-worker start (a cold start costs seconds on a busy VM).
        for concurrency in (1,) if args.smoke else (2, 1):
            setup = Setup(config, work, bundles, concurrency)
            try:
                cold = setup.start()
                rss[concurrency] = setup.rss_mib()
                if concurrency == 2:
                    continue
                result["cold_start_ms"] = cold * 1000
                result["rss_mib"] = rss[1]
                wrk(config, setup.listener.port, 1)  # warm up
                result.update(setup.throughput(seconds))
                if config.name == "no-filter":
                    # 25% and 50% of the no-filter maximum, and a low rate every configuration
                    # sustains, so each one's added latency is measured at least once.
                    rates = [LOW_RATE, 0.25 * result["rps"], 0.5 * result["rps"]]
                result["fixed_rate"] = [loadgen(config, setup.listener.port, rate, seconds) for rate in rates]
                result["rss_after_load_mib"] = setup.rss_mib()
            finally:
                setup.stop()
        result["worker_mib"] = rss[2] - rss[1] if 2 in rss else 0.0
        print(f"{config.name}: {result['rps']:.0f} req/s, cold start {result['cold_start_ms']:.0f} ms, "
              f"p99 at {LOW_RATE} req/s {result['fixed_rate'][0]['p99_us']:.0f} µs", flush=True)
    # Where a zerohop request's time goes: the same load again with the filter's phase histograms.
    for config in configs:
        if config.policy and not config.extauthz:
            setup = Setup(config, work, bundles, timing=True)
            try:
                setup.start()
                results[config.name]["phases_ns"] = phase_times(setup, seconds)
            finally:
                setup.stop()
    base = results["no-filter"]
    for name, r in results.items():
        r["ratio"] = r["rps"] / base["rps"]
        r["rss_over_no_filter_mib"] = r["rss_mib"] - base["rss_mib"]
        r["worker_over_no_filter_mib"] = r["worker_mib"] - base["worker_mib"]
        for run, base_run in zip(r["fixed_rate"], base["fixed_rate"]):
            run["added_p50_us"] = run["p50_us"] - base_run["p50_us"]
            run["added_p99_us"] = run["p99_us"] - base_run["p99_us"]
    wasm_sizes = {"zerohop.wasm": WASM.stat().st_size, "noop.wasm": NOOP_WASM.stat().st_size}
    markdown = render(results, host, seconds, wasm_sizes)
    print(markdown)
    if not args.smoke and not args.only:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "bench.json").write_text(json.dumps(
            {"machine": host, "seconds": seconds, "connections": CONNECTIONS, "wasm_bytes": wasm_sizes,
             "results": results}, indent=2) + "\n")
        (RESULTS / "bench.md").write_text(markdown)
        readme = ROOT / "benches" / "README.md"
        text = readme.read_text()
        start, end = "<!-- bench:start -->\n", "<!-- bench:end -->"
        if start in text and end in text:
            head, rest = text.split(start, 1)
            readme.write_text(head + start + markdown + rest[rest.index(end):])
    return 0


def compare(configs: list[Config], work: Path, bundles: dict[str, Path], old: Path, rounds: int,
            seconds: float) -> int:
    """The old and the new build, alternating, per configuration the old build understands
    (decision logs are newer than some builds: those rows are skipped): maximum throughput, and
    Envoy's CPU time per request under that load, which a busy or stolen core does not inflate."""
    rows = []
    for config in configs:
        if not config.policy or config.extauthz or "decision_logs" in config.settings:
            continue
        runs: dict[str, list[tuple[float, float]]] = {"old": [], "new": []}
        for _ in range(rounds):
            for label, wasm in (("old", old), ("new", WASM)):
                setup = Setup(config, work, bundles, wasm=wasm)
                try:
                    setup.start()
                    wrk(config, setup.listener.port, 1)  # warm up
                    result = setup.throughput(seconds)
                    runs[label].append((result["rps"], result["cpu_us_per_request"]))
                finally:
                    setup.stop()
        median = {label: [sorted(column)[len(column) // 2] for column in zip(*r)] for label, r in runs.items()}
        (old_rps, old_cpu), (new_rps, new_cpu) = median["old"], median["new"]
        rows.append(f"| {config.name} | {old_rps:.0f} | {new_rps:.0f} | {100 * (new_rps / old_rps - 1):+.1f}% | "
                    f"{old_cpu:.1f} | {new_cpu:.1f} | {100 * (new_cpu / old_cpu - 1):+.1f}% |")
        print(rows[-1], flush=True)
    print(f"\n{old} against {WASM}: {rounds} alternating rounds of {seconds:g} s each, medians; CPU is "
          "Envoy's user + system time per request during the run:\n")
    print("| configuration | old req/s | new req/s | change | old CPU µs/req | new CPU µs/req | change |\n"
          "|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


def render(results: dict, host: dict, seconds: float, wasm_sizes: dict) -> str:
    lines = [
        f"{host['date']}, {host['cpu']}, {host['cores']} cores, Linux {host['kernel']}, Envoy {host['envoy']} "
        f"(load average {host['load_average_at_start']:.1f} at start). Envoy `--concurrency 1` pinned to core "
        f"{ENVOY_CORE}; load from core {LOAD_CORE}: wrk `-t1 -c{CONNECTIONS} -d{seconds:g}s` for the maximum, "
        f"zerohop-loadgen ({CONNECTIONS} connections, open loop) for {seconds:g} s at each fixed rate. "
        f"`.wasm`: zerohop {wasm_sizes['zerohop.wasm']:,} bytes, noop {wasm_sizes['noop.wasm']:,} bytes.",
        "",
        "Envoy CPU: Envoy's user + system time per request during the maximum-throughput run (an "
        "ext_authz authorizer's own time not included); added = minus no-filter's.",
        "",
        "| configuration | max req/s | ratio to no filter | Envoy CPU µs/req | added CPU µs/req | cold start ms | "
        "RSS over no filter MiB | one more worker MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    base_cpu = results["no-filter"]["cpu_us_per_request"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['rps']:.0f} | {r['ratio']:.2f} | {r['cpu_us_per_request']:.1f} | "
                     f"{r['cpu_us_per_request'] - base_cpu:+.1f} | {r['cold_start_ms']:.0f} | "
                     f"{r['rss_over_no_filter_mib']:+.1f} | {r['worker_mib']:.1f} ({r['worker_over_no_filter_mib']:+.1f}) |")
    lines += [
        "",
        "Latency at fixed rates (µs, from each request's due time; added = minus no-filter at the same rate). "
        "Overloaded: more than 1% of the requests due in the window were still unsent at its end, so the "
        "configuration cannot sustain that rate and its percentiles would only be lower bounds:",
        "",
        "| configuration | offered req/s | achieved | p50 | p90 | p99 | p99.9 | added p50 | added p99 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        for run in r["fixed_rate"]:
            if run["overloaded"]:
                lines.append(f"| {name} | {run['offered_rps']:.0f} | {run['achieved_rps']:.0f} | overloaded: "
                             f"{run['unsent']} requests unsent | | | | | |")
                continue
            lines.append(f"| {name} | {run['offered_rps']:.0f} | {run['achieved_rps']:.0f} | {run['p50_us']:.0f} | "
                         f"{run['p90_us']:.0f} | {run['p99_us']:.0f} | {run['p99.9_us']:.0f} | "
                         f"{run['added_p50_us']:+.0f} | {run['added_p99_us']:+.0f} |")
    phased = [(name, r["phases_ns"]) for name, r in results.items() if "phases_ns" in r]
    if phased:
        lines += [
            "",
            "Where a zerohop decision's time goes: the same wrk load with `timing_stats` on, p50 (p99) per phase "
            "in µs from the filter's `wasmcustom.zerohop.time.*_ns` histograms: request = reading headers, "
            "properties and metadata from Envoy (hostcalls); input = building `input`; evaluate = the policy; "
            "apply = publishing the decision id, setting headers or sending the reply. The clock reads add a "
            "little to each:",
            "",
            "| configuration | request | input | evaluate | apply | sum of p50 |",
            "|---|---|---|---|---|---|",
        ]
        for name, phases in phased:
            cells = " | ".join(f"{phases[p]['p50'] / 1000:.1f} ({phases[p]['p99'] / 1000:.1f})" for p in PHASES)
            total = sum(phases[p]["p50"] for p in PHASES) / 1000
            lines.append(f"| {name} | {cells} | {total:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
