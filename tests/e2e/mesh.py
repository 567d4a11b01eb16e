"""A service mesh in a box on loopback, shaped as Istio's east-west path, for `make demo` and
test_mesh.py: three workloads of the `shop` namespace (frontend, orders, payments), each an
app (the echo upstream) plus an Envoy sidecar, and the bundle server (nginx) behind its own
sidecar.

- A demo CA (openssl) issues each workload a SPIFFE certificate,
  `spiffe://cluster.local/ns/<namespace>/sa/<service account>`, as istiod does.
- Outbound: a sidecar's plain listener for each other service (what iptables redirects the
  app's calls to) originates mTLS with its workload's certificate and accepts only the
  callee's SPIFFE id (Istio's secure naming).
- Inbound: the sidecar requires a client certificate from the mesh CA, runs zerohop with the
  base's plugin configuration (manifests/base, enforced as overlays/enforce does; the bundle
  service polled every second), then forwards to the app. Its access log is the one
  manifests/istiod/values.yaml defines, decision id included.
- The filter fetches manifests/bundles/zero-trust from nginx through the cluster
  `outbound|80||bundles.zerohop.svc.cluster.local`, over mTLS to the bundle server's sidecar.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import yaml

from harness import ROOT, WASM, EchoUpstream, Envoy, Nginx, build_bundle, free_port, request

TRUST_DOMAIN = "cluster.local"
NAMESPACE = "shop"
SERVICES = ["frontend", "orders", "payments"]
ZERO_TRUST = ROOT / "manifests" / "bundles" / "zero-trust"
BUNDLES_HOST = "bundles.zerohop.svc.cluster.local"
BUNDLE_NAME = "bundles/zero-trust.tar.gz"  # the path in the base's bundle.service


def spiffe(service_account: str, namespace: str = NAMESPACE) -> str:
    return f"spiffe://{TRUST_DOMAIN}/ns/{namespace}/sa/{service_account}"


def base_plugin_config() -> dict:
    """The pluginConfig of manifests/base, enforced (overlays/enforce), polled every second."""
    docs = yaml.safe_load_all((ROOT / "manifests" / "base" / "zerohop.yaml").read_text())
    config = next(d for d in docs if d and d["kind"] == "TrafficExtension")["spec"]["wasm"]["pluginConfig"]
    config["dry_run"] = False
    config["bundle"]["polling"] = {"min_delay_seconds": 1, "max_delay_seconds": 1}
    return config


def access_log_format() -> dict:
    """The labels of the access-log provider in manifests/istiod/values.yaml."""
    values = yaml.safe_load((ROOT / "manifests" / "istiod" / "values.yaml").read_text())
    provider = values["meshConfig"]["extensionProviders"][0]
    return provider["envoyFileAccessLog"]["logFormat"]["labels"]


def zero_trust_bundle(workdir: Path, revision: str, allow_orders_to_get_payments: bool = False) -> bytes:
    """manifests/bundles/zero-trust built as `revision`; optionally with one more rule:
    orders may also GET payments."""
    policy = workdir / f"policy-{revision}"
    policy.mkdir()
    for source in ZERO_TRUST.rglob("*"):
        if source.is_file():
            target = policy / source.relative_to(ZERO_TRUST)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    if allow_orders_to_get_payments:
        data_file = policy / "zerohop" / "data.json"
        data = json.loads(data_file.read_text())
        (rule,) = [r for r in data["allowed"] if r["caller"] == spiffe("orders") and r["callee"] == spiffe("payments")]
        rule["methods"] = ["GET", "POST"]
        data_file.write_text(json.dumps(data))
    return build_bundle(policy, workdir / f"{revision}.tar.gz", ["zerohop/authz/allow"], revision=revision)


class Ca:
    """A certificate authority on disk (`openssl ca`, so validity dates can be set)."""

    def __init__(self, directory: Path, name: str):
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.key, self.cert = directory / "ca.key", directory / "ca.pem"
        (directory / "index.txt").write_text("")
        (directory / "serial").write_text("1000\n")
        self._openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                      "-keyout", self.key, "-out", self.cert, "-days", "2", "-subj", f"/O=zerohop demo/CN={name}")

    def _openssl(self, *args) -> None:
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)

    def issue(self, name: str, uri: str, start: str | None = None, end: str | None = None) -> tuple[Path, Path]:
        """A certificate whose only identity is the URI SAN `uri` (as Istio's workload
        certificates), valid from `start` to `end` (openssl's YYYYMMDDHHMMSSZ), default now
        for a day."""
        key, csr, cert, config = (self.dir / f"{name}.{e}" for e in ("key", "csr", "pem", "cnf"))
        config.write_text(f"""[ca]
default_ca = mesh
[mesh]
database = {self.dir}/index.txt
new_certs_dir = {self.dir}
serial = {self.dir}/serial
default_md = sha256
default_days = 1
policy = any
x509_extensions = workload
[any]
commonName = optional
[workload]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = critical, URI:{uri}
""")
        self._openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                      "-out", csr, "-subj", f"/CN={name}")
        dates = [*(["-startdate", start] if start else []), *(["-enddate", end] if end else [])]
        self._openssl("ca", "-batch", "-notext", "-config", config, "-cert", self.cert, "-keyfile", self.key,
                      "-in", csr, "-out", cert, *dates)
        return cert, key

    def client_context(self, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
        """A TLS client that trusts this CA and presents `cert` (none: no client certificate)."""
        context = ssl.create_default_context(cafile=str(self.cert))
        context.check_hostname = False
        if cert and key:
            context.load_cert_chain(str(cert), str(key))
        return context


def tls_context(cert: Path, key: Path, ca: Path) -> dict:
    return {
        "tls_certificates": [{"certificate_chain": {"filename": str(cert)}, "private_key": {"filename": str(key)}}],
        "validation_context": {"trusted_ca": {"filename": str(ca)}},
    }


def upstream_mtls(cert: Path, key: Path, ca: Path, peer: str) -> dict:
    """Client side of Istio mTLS: our workload certificate, and only `peer` is accepted."""
    context = tls_context(cert, key, ca)
    context["validation_context"]["match_typed_subject_alt_names"] = [
        {"san_type": "URI", "matcher": {"exact": peer}}]
    return {"name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        "common_tls_context": context}}


def cluster(name: str, port: int, transport_socket: dict | None = None) -> dict:
    config = {
        "name": name, "connect_timeout": "1s", "type": "STATIC",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{
            "endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]},
    }
    if transport_socket:
        config["transport_socket"] = transport_socket
    return config


def http_listener(name: str, port: int, route_cluster: str, filters: list[dict], access_log: Path | None,
                  transport_socket: dict | None = None) -> dict:
    manager = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": name,
        # The caller's x-request-id survives, so a call can be found in every log it passes.
        "preserve_external_request_id": True,
        "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"],
                                            "routes": [{"match": {"prefix": "/"}, "route": {"cluster": route_cluster}}]}]},
        "http_filters": [*filters, {"name": "envoy.filters.http.router", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
    }
    if access_log:
        manager["access_log"] = [{"name": "envoy.access_loggers.file", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": str(access_log), "log_format": {"json_format": access_log_format()}}}]
    chain = {"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": manager}]}
    if transport_socket:
        chain["transport_socket"] = transport_socket
    return {"name": name, "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
            "filter_chains": [chain]}


def zerohop_filter(plugin_config: dict) -> dict:
    return {"name": "envoy.filters.http.wasm", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
        "config": {
            "name": "zerohop",
            "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                              "value": json.dumps(plugin_config)},
            "vm_config": {"runtime": "envoy.wasm.runtime.v8", "code": {"local": {"filename": str(WASM)}}},
            "failure_policy": "FAIL_CLOSED",
        }}}


@dataclass
class Workload:
    name: str
    namespace: str
    identity: str
    cert: Path
    key: Path
    inbound_port: int
    app_port: int
    outbound_ports: dict[str, int]
    envoy: Envoy | None = None

    @property
    def host(self) -> str:
        return f"{self.name}.{self.namespace}.svc.cluster.local"


class Sidecar(Envoy):
    """An Envoy with a configuration written by the mesh instead of harness.envoy_config."""

    def __init__(self, config: dict, workdir: Path):
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__([], None, workdir, concurrency=1, access_log=False)
        config["admin"] = {"address": {"socket_address": {"address": "127.0.0.1", "port_value": self.admin_port}}}
        self.config_path.write_text(json.dumps(config, indent=1))


@dataclass
class Call:
    caller: str
    callee: str
    method: str
    path: str
    status: int
    log: dict | None  # the callee sidecar's access log entry; None if the call never got there

    @property
    def decision(self) -> str:
        return "allow" if self.status == 200 else "deny"


class Mesh:
    def __init__(self, workdir: Path, bundle: bytes):
        self.workdir = workdir
        self.ca = Ca(workdir / "ca", "zerohop demo mesh CA")
        self.nginx = Nginx(workdir / "bundles")
        (self.nginx.root / "bundles").mkdir()
        self.nginx.serve(BUNDLE_NAME, bundle)
        self.apps = {name: EchoUpstream() for name in SERVICES}
        self.workloads: dict[str, Workload] = {}
        for name in SERVICES:
            cert, key = self.ca.issue(name, spiffe(name))
            self.workloads[name] = Workload(
                name, NAMESPACE, spiffe(name), cert, key, free_port(), self.apps[name].port,
                {other: free_port() for other in SERVICES if other != name})
        bundles_cert, bundles_key = self.ca.issue("bundles", spiffe("bundles", "zerohop"))
        self.bundles = Workload("bundles", "zerohop", spiffe("bundles", "zerohop"), bundles_cert, bundles_key,
                                free_port(), self.nginx.port, {})
        self.plugin_config = base_plugin_config()

    def sidecar(self, workload: Workload) -> Sidecar:
        directory = self.workdir / workload.name
        access_log = directory / "access.log"
        inbound_tls = {"name": "envoy.transport_sockets.tls", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "require_client_certificate": True,
            "common_tls_context": tls_context(workload.cert, workload.key, self.ca.cert)}}
        filters = [zerohop_filter(self.plugin_config)] if workload.namespace == NAMESPACE else []
        listeners = [http_listener("inbound", workload.inbound_port, "inbound|app", filters, access_log, inbound_tls)]
        clusters = [cluster("inbound|app", workload.app_port)]
        for callee_name, port in workload.outbound_ports.items():
            callee = self.workloads[callee_name]
            name = f"outbound|80||{callee.host}"
            listeners.append(http_listener(f"outbound_{callee_name}", port, name, [], None))
            clusters.append(cluster(name, callee.inbound_port,
                                    upstream_mtls(workload.cert, workload.key, self.ca.cert, callee.identity)))
        if filters:
            clusters.append(cluster(f"outbound|80||{BUNDLES_HOST}", self.bundles.inbound_port,
                                    upstream_mtls(workload.cert, workload.key, self.ca.cert, self.bundles.identity)))
        sidecar = Sidecar({"static_resources": {"listeners": listeners, "clusters": clusters}}, directory)
        sidecar.access_log_path = access_log
        return sidecar

    def start(self) -> "Mesh":
        self.nginx.start()
        for app in self.apps.values():
            app.start()
        for workload in [self.bundles, *self.workloads.values()]:
            workload.envoy = self.sidecar(workload)
            workload.envoy.start(wait=False)
        for workload in [self.bundles, *self.workloads.values()]:
            workload.envoy.wait_ready()
        return self

    def stop(self) -> None:
        for workload in [*self.workloads.values(), self.bundles]:
            if workload.envoy:
                workload.envoy.stop()
        for app in self.apps.values():
            app.stop()
        self.nginx.stop()

    def activations(self, workload: str) -> list[str]:
        """The revisions the workload's sidecar activated, in order."""
        return [line.split('bundle revision "', 1)[1].split('"', 1)[0]
                for line in self.workloads[workload].envoy.log().splitlines()
                if 'bundle revision "' in line and '" active' in line]

    def wait_for_revision(self, revision: str, timeout: float = 30) -> None:
        """Until every VM of every shop sidecar runs `revision`: with one worker, a sidecar has
        two (the main thread's, and the worker's that serves requests)."""
        deadline = time.monotonic() + timeout
        while any(self.activations(name).count(revision) < 2 for name in SERVICES):
            if time.monotonic() > deadline:
                logs = {name: self.activations(name) for name in SERVICES}
                raise AssertionError(f"revision {revision!r} not active everywhere after {timeout}s: {logs}")
            time.sleep(0.1)

    def publish(self, bundle: bytes) -> None:
        self.nginx.serve(BUNDLE_NAME, bundle)

    def call(self, caller: str, callee: str, method: str, path: str) -> Call:
        """The caller's app calls the callee's service through its own sidecar."""
        request_id = str(uuid.uuid4())
        port = self.workloads[caller].outbound_ports[callee]
        response = request(port, path, method=method,
                           headers={"x-request-id": request_id, "host": self.workloads[callee].host},
                           body=b"{}" if method in ("POST", "PUT") else None)
        return Call(caller, callee, method, path, response.status, self.access_log(callee, request_id))

    def access_log(self, workload: str, request_id: str, timeout: float = 5) -> dict | None:
        path = self.workloads[workload].envoy.access_log_path
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if path.exists():
                for line in path.read_text().splitlines():
                    entry = json.loads(line)
                    if entry.get("request_id") == request_id:
                        return entry
            time.sleep(0.05)
        return None

    def decision_log_event(self, workload: str, decision_id: str, timeout: float = 5) -> str | None:
        """The decision-log event (`decision_logs.console`) of one decision, as the sidecar
        logged it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.workloads[workload].envoy.log().splitlines():
                if "zerohop-decision " in line and decision_id in line:
                    return line.split("zerohop-decision ", 1)[1]
            time.sleep(0.1)
        return None

    def direct(self, callee: str, context: ssl.SSLContext, path: str = "/") -> int:
        """A call straight to the callee's inbound sidecar with this TLS client (no sidecar of
        our own): the status, or an exception when the TLS handshake is refused."""
        return request(self.workloads[callee].inbound_port, path, tls=context).status


# East-west calls and what revision 1 of the zero-trust bundle answers (the demo prints them,
# test_mesh.py asserts them): caller, callee, method, path, expected status.
REVISION_1_CALLS = [
    ("frontend", "orders", "GET", "/orders/42", 200),
    ("frontend", "orders", "POST", "/orders", 200),
    ("frontend", "orders", "DELETE", "/orders/42", 403),
    ("orders", "payments", "POST", "/payments", 200),
    ("orders", "payments", "GET", "/payments/7", 403),
    ("frontend", "payments", "POST", "/payments", 403),
    ("payments", "orders", "GET", "/orders", 403),
]
