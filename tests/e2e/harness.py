"""Real Envoy on loopback for the end-to-end tests and the demo.

One generator (`envoy_config`) writes every Envoy configuration; each config is checked with
`envoy --mode validate` before it is started. An echo upstream returns the request it saw as
JSON, so tests can assert what the filter changed on the way through.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import http.server
import json
import os
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WASM = ROOT / "dist" / "zerohop.wasm"
BUNDLER = ROOT / "dist" / "policy-bundler"


def envoy_binary() -> str:
    explicit = os.environ.get("ENVOY")
    if explicit:
        return explicit
    path = ROOT / ".tools" / "envoy" / "envoy" / "_bin" / "envoy"
    if not path.exists():
        raise SystemExit(f"no Envoy at {path}: run `make tools` (or set ENVOY=/path/to/envoy)")
    return str(path)


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port free now and not handed out before in this process: the kernel may give a port
    just released again, and an Envoy with dozens of listeners would then get one port twice."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def build_bundle(policy_dir: Path, out: Path, entrypoints: list[str], revision: str = "test",
                 signing: list[str] | None = None) -> bytes:
    """Builds a bundle with the real policy-bundler binary and returns its bytes; `signing`
    holds extra arguments such as `["--signing-key", key, "--signing-alg", "ES256"]`."""
    args = [str(BUNDLER), "build", str(policy_dir), "-o", str(out), "-r", revision, *(signing or [])]
    for e in entrypoints:
        args += ["-e", e]
    subprocess.run(args, check=True, capture_output=True)
    return out.read_bytes()


def plugin_config(bundle: bytes, **settings) -> str:
    """The JSON Istio would pass from WasmPlugin.pluginConfig."""
    return json.dumps({"bundle": {"inline": base64.b64encode(bundle).decode()}, **settings})


@dataclass
class Tls:
    """Server certificate and, for strict mTLS, the CA that client certificates must chain to."""

    cert: Path
    key: Path
    client_ca: Path | None = None
    # False: ask for a client certificate but let clients without one in (anonymous peers).
    require_client_certificate: bool = True


class JwtIssuer:
    """Signs HS256 tokens that Envoy's `jwt_authn` filter verifies against an inline JWKS (an
    `oct` key), as Istio's RequestAuthentication does with a real issuer's keys."""

    ISSUER = "https://issuer.zerohop.test"
    # The `payload_in_metadata` key: Istio uses the issuer; any name works.
    PAYLOAD_KEY = "verified_payload"

    def __init__(self, secret: bytes = b"zerohop test secret, at least 32 bytes long"):
        self.secret = secret

    @staticmethod
    def _b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    def sign(self, claims: dict) -> str:
        header = self._b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "test"}).encode())
        payload = self._b64(json.dumps({"iss": self.ISSUER, **claims}).encode())
        signature = hmac.new(self.secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{self._b64(signature)}"

    def filter(self) -> dict:
        """`jwt_authn` that checks a bearer token when there is one and lets requests without
        one through (`allow_missing`); a bad token gets Envoy's 401."""
        jwks = {"keys": [{"kty": "oct", "alg": "HS256", "kid": "test", "k": self._b64(self.secret)}]}
        return {
            "name": "envoy.filters.http.jwt_authn",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
                "providers": {"test": {
                    "issuer": self.ISSUER,
                    "local_jwks": {"inline_string": json.dumps(jwks)},
                    "payload_in_metadata": self.PAYLOAD_KEY,
                    "forward": True,
                }},
                "rules": [{"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": [
                    {"provider_name": "test"}, {"allow_missing": {}}]}}}],
            },
        }


@dataclass
class Listener:
    name: str
    # The filter's plugin configuration; None runs the listener without the filter.
    plugin_config: str | None
    port: int = field(default_factory=free_port)
    tls: Tls | None = None
    # Envoy's PluginConfig.allow_on_headers_stop_iteration: needed for request bodies (a pause
    # at the headers otherwise holds the body back from the filter).
    allow_on_headers_stop_iteration: bool = False
    # Envoy's jwt_authn in front of the filter, as Istio places RequestAuthentication.
    jwt: JwtIssuer | None = None
    # Envoy's PluginConfig.failure_policy: what a worker does after its VM traps.
    failure_policy: str = "FAIL_CLOSED"


def static_cluster(name: str, port: int) -> dict:
    """A cluster of one loopback endpoint (the upstream, a bundle server)."""
    return {
        "name": name,
        "connect_timeout": "1s",
        "type": "STATIC",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{
            "endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}},
        }]}]},
    }


# Every request's access log entry (one JSON object a line): where the decision id and the
# policy's dynamic_metadata that the filter publishes in the filter state show up.
ACCESS_LOG_FORMAT = {
    "path": "%REQ(:PATH)%",
    "status": "%RESPONSE_CODE%",
    "decision_id": "%FILTER_STATE(wasm.zerohop.decision_id:PLAIN)%",
    "dynamic_metadata": "%FILTER_STATE(wasm.zerohop.dynamic_metadata:PLAIN)%",
}


def envoy_config(listeners: list[Listener], upstream_port: int | None, admin_port: int, wasm: Path = WASM,
                 clusters: list[dict] | None = None, access_log: Path | None = None) -> dict:
    """The one Envoy configuration generator: each listener runs the filter with its own
    plugin configuration (as Istio does, one VM per worker shared by all plugins) in front of
    the upstream, or of a `direct_response` when there is no upstream (benchmarks). With
    `access_log`, every request is logged there in `ACCESS_LOG_FORMAT`."""
    action = ({"route": {"cluster": "upstream"}} if upstream_port
              else {"direct_response": {"status": 200, "body": {"inline_string": "ok\n"}}})

    def wasm_filter(listener: Listener) -> list[dict]:
        if listener.plugin_config is None:
            return []
        return [{
            "name": "envoy.filters.http.wasm",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                "config": {
                    "name": listener.name,
                    "configuration": {
                        "@type": "type.googleapis.com/google.protobuf.StringValue",
                        "value": listener.plugin_config,
                    },
                    "vm_config": {
                        "runtime": "envoy.wasm.runtime.v8",
                        "code": {"local": {"filename": str(wasm)}},
                    },
                    "failure_policy": listener.failure_policy,
                    **({"allow_on_headers_stop_iteration": True} if listener.allow_on_headers_stop_iteration else {}),
                },
            },
        }]

    def filter_chain(listener: Listener) -> dict:
        chain = {
            "filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": listener.name,
                    # Request trailers reach filters (they end a body without end_of_stream).
                    "http_protocol_options": {"enable_trailers": True},
                    "access_log": [{
                        "name": "envoy.access_loggers.file",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                            "path": str(access_log),
                            "log_format": {"json_format": {"listener": listener.name, **ACCESS_LOG_FORMAT}},
                        },
                    }] if access_log else [],
                    "route_config": {"virtual_hosts": [{
                        "name": "all", "domains": ["*"],
                        "routes": [{"match": {"prefix": "/"}, **action}],
                    }]},
                    "http_filters": [
                        *([listener.jwt.filter()] if listener.jwt else []),
                        *wasm_filter(listener),
                        {"name": "envoy.filters.http.router",
                         "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
                    ],
                },
            }],
        }
        if listener.tls:
            context = {
                "common_tls_context": {
                    "tls_certificates": [{
                        "certificate_chain": {"filename": str(listener.tls.cert)},
                        "private_key": {"filename": str(listener.tls.key)},
                    }],
                },
            }
            if listener.tls.client_ca:
                context["require_client_certificate"] = listener.tls.require_client_certificate
                context["common_tls_context"]["validation_context"] = {
                    "trusted_ca": {"filename": str(listener.tls.client_ca)},
                }
            chain["transport_socket"] = {
                "name": "envoy.transport_sockets.tls",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                    **context,
                },
            }
        return chain

    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {
            "listeners": [{
                "name": l.name,
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": l.port}},
                "filter_chains": [filter_chain(l)],
            } for l in listeners],
            "clusters": ([static_cluster("upstream", upstream_port)] if upstream_port else []) + (clusters or []),
        },
    }


class Envoy:
    """An Envoy process started from a generated configuration."""

    def __init__(self, listeners: list[Listener], upstream_port: int | None, workdir: Path, concurrency: int = 2,
                 clusters: list[dict] | None = None, access_log: bool = True, wasm: Path = WASM):
        self.listeners = {l.name: l for l in listeners}
        self.admin_port = free_port()
        self.workdir = workdir
        self.config_path = workdir / "envoy.json"
        self.log_path = workdir / "envoy.log"
        self.access_log_path = workdir / "access.log"
        config = envoy_config(listeners, upstream_port, self.admin_port, wasm=wasm, clusters=clusters,
                              access_log=self.access_log_path if access_log else None)
        self.config_path.write_text(json.dumps(config, indent=1))
        self.concurrency = concurrency
        # A command prefix such as ["taskset", "-c", "0"] (benchmarks pin Envoy to a core).
        self.prefix: list[str] = []
        self.process: subprocess.Popen | None = None

    def command(self, mode: str = "serve") -> list[str]:
        return [*self.prefix, envoy_binary(), "-c", str(self.config_path), "--mode", mode, "--concurrency", str(self.concurrency),
                "--base-id", str(free_port()), "--log-level", "info", "--component-log-level", "wasm:debug",
                # Access log lines reach the file within 0.1 s, so tests can read them.
                "--file-flush-interval-msec", "100"]

    def validation(self) -> subprocess.CompletedProcess:
        """`envoy --mode validate`: it also loads the wasm module and runs the plugin's configure."""
        return subprocess.run(self.command("validate"), capture_output=True, text=True, timeout=120)

    def validate(self) -> None:
        result = self.validation()
        if result.returncode != 0:
            raise AssertionError(f"envoy --mode validate rejected {self.config_path}:\n{result.stdout}{result.stderr}")

    def start(self, wait: bool = True) -> "Envoy":
        if wait:
            self.validate()
        log = open(self.log_path, "w")
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process and self.process.poll() is not None:
                raise AssertionError(f"Envoy exited with {self.process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"Envoy not ready after {timeout}s:\n{self.log()}")

    def wait_exit(self, timeout: float = 60) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def access_log(self, path: str, timeout: float = 10) -> dict:
        """The access log entry of the last request to `path` (whatever its query became); waits
        for Envoy to flush it."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.access_log_path.read_text().splitlines() if self.access_log_path.exists() else []
            entries = [json.loads(line) for line in lines if line.strip()]
            matching = [e for e in entries if (e.get("path") or "").split("?")[0] == path]
            if matching:
                return matching[-1]
            if time.monotonic() > deadline:
                raise AssertionError(f"no access log entry for {path} in {lines[-20:]}")
            time.sleep(0.05)

    def stats(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/stats", timeout=5) as r:
            return r.read().decode()

    def stat(self, name: str) -> int:
        """A counter or gauge from `/stats`, 0 when Envoy does not have it (yet)."""
        for line in self.stats().splitlines():
            key, _, value = line.partition(": ")
            if key == name:
                return int(value)
        return 0

    def port(self, listener: str) -> int:
        return self.listeners[listener].port


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def request(port: int, path: str = "/", method: str = "GET", headers: dict | None = None,
            tls: ssl.SSLContext | None = None, body: bytes | None = None) -> Response:
    conn = (http.client.HTTPSConnection("127.0.0.1", port, context=tls, timeout=10) if tls
            else http.client.HTTPConnection("127.0.0.1", port, timeout=10))
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        merged: dict[str, str] = {}
        for k, v in r.getheaders():
            k = k.lower()
            merged[k] = f"{merged[k]},{v}" if k in merged else v
        return Response(r.status, merged, r.read())
    finally:
        conn.close()


def raw_request(port: int, data: bytes) -> bytes:
    """Sends bytes as they are (for requests http.client refuses to build)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks):
                head = b"".join(chunks)
                if b"content-length: 0" in head.lower() or head.lower().count(b"content-length") == 0:
                    break
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                if len(head.split(b"\r\n\r\n", 1)[1]) >= length:
                    break
        return b"".join(chunks)


def raw_status(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/") else 0


class EchoUpstream:
    """An upstream that answers every request with what it received, as JSON."""

    def __init__(self):
        handler = self._handler()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @staticmethod
    def _handler():
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _echo(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                if "chunked" in self.headers.get("transfer-encoding", "").lower():
                    while size := int(self.rfile.readline().split(b";")[0], 16):
                        body += self.rfile.read(size)
                        self.rfile.readline()
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                seen = {"method": self.command, "path": self.path, "body": body.decode(errors="replace"),
                        "headers": {}}
                for k, v in self.headers.items():
                    k = k.lower()
                    seen["headers"][k] = f"{seen['headers'][k]},{v}" if k in seen["headers"] else v
                out = json.dumps(seen).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _echo

            def log_message(self, *args):
                pass

        return Handler

    def start(self) -> "EchoUpstream":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Pki:
    """A throw-away CA with a server certificate and SPIFFE client certificates (openssl CLI)."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.ca_key, self.ca_cert = self.dir / "ca.key", self.dir / "ca.pem"
        self._openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                      "-keyout", self.ca_key, "-out", self.ca_cert, "-days", "2", "-subj", "/CN=zerohop test CA")
        self.server_cert, self.server_key = self.issue("server", dns="localhost")

    def _openssl(self, *args) -> None:
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)

    def issue(self, name: str, uri: str | None = None, dns: str | None = None) -> tuple[Path, Path]:
        key, csr, cert, ext = (self.dir / f"{name}.{e}" for e in ("key", "csr", "pem", "ext"))
        san = ",".join(x for x in (f"URI:{uri}" if uri else "", f"DNS:{dns}" if dns else "") if x)
        ext.write_text(f"subjectAltName={san}\n")
        self._openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                      "-out", csr, "-subj", f"/CN={name}")
        self._openssl("x509", "-req", "-in", csr, "-CA", self.ca_cert, "-CAkey", self.ca_key, "-CAcreateserial",
                      "-out", cert, "-days", "2", "-extfile", ext)
        return cert, key

    def client_context(self, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca_cert))
        context.check_hostname = False
        if cert and key:
            context.load_cert_chain(str(cert), str(key))
        return context

    def server_tls(self, mutual: bool = True, require: bool = True) -> Tls:
        return Tls(self.server_cert, self.server_key, self.ca_cert if mutual else None, require)


class Nginx:
    """Debian's nginx serving a directory on a free loopback port, unprivileged (no master
    process, so no user switch), ETag on: the bundle server of the live-bundle tests. A path
    with no file answers 500, so tests can make the server fail by removing the bundle."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.root = workdir / "www"
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.access_log = workdir / "access.log"
        self.process: subprocess.Popen | None = None
        temp = workdir / "temp"
        temp.mkdir(exist_ok=True)
        self.config = workdir / "nginx.conf"
        self.config.write_text(f"""
daemon off;
master_process off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {self.access_log};
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    types {{ application/gzip gz; application/json json; }}
    server {{
        listen 127.0.0.1:{self.port};
        root {self.root};
        etag on;
        location / {{ try_files $uri =500; }}
    }}
}}
""")

    def start(self) -> "Nginx":
        subprocess.run(["nginx", "-t", "-c", str(self.config), "-e", str(self.workdir / "error.log")],
                       check=True, capture_output=True)
        self.process = subprocess.Popen(["nginx", "-c", str(self.config), "-e", str(self.workdir / "error.log")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("nginx did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def serve(self, name: str, content: bytes) -> None:
        """Replaces a file atomically, with a fresh mtime so its ETag changes even when the size
        does not (nginx's ETag is mtime + size)."""
        path = self.root / name
        temp = path.with_suffix(".tmp")
        temp.write_bytes(content)
        stamp = time.time() + getattr(self, "_bump", 0)
        self._bump = getattr(self, "_bump", 0) + 1
        os.utime(temp, (stamp, stamp))
        temp.rename(path)

    def remove(self, name: str) -> None:
        (self.root / name).unlink(missing_ok=True)

    def requests(self, path: str) -> int:
        """How many requests for `path` the access log shows."""
        if not self.access_log.exists():
            return 0
        return sum(f"GET {path} " in line for line in self.access_log.read_text().splitlines())


def temp_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))
