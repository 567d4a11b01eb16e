"""Bundles from an OCI registry (`bundle.service.oci`, OPA's `type: oci`) in real Envoy, from
Debian's docker-registry on loopback: anonymous, and with the registry bearer-token flow
against a small token service in these tests. Bundles are published with `policy-bundler
push` (OPA's layout: the bundle is the image's one tar+gzip layer). A new push to the tag is
activated (the manifest digest changed); a layer that does not match its digest and a 401
without a usable challenge are refused with their code, and nothing is activated."""

import base64
import hashlib
import http.server
import json
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from harness import BUNDLER, Envoy, Listener, build_bundle, request, static_cluster
from registry import Registry

REPOSITORY = "mesh/authz"
SERVICE = "zerohop-test-registry"
ISSUER = "zerohop-test-token-service"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenService:
    """The registry's token service (distribution's `auth.token`): grants every scope it is
    asked for, in a JWT (RS256) whose `x5c` header carries its certificate, which the
    registry trusts (`rootcertbundle`)."""

    def __init__(self, workdir: Path):
        self.key, self.cert = workdir / "token.key", workdir / "token.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(self.key),
                        "-out", str(self.cert), "-days", "2", "-subj", "/CN=zerohop test token service"],
                       check=True, capture_output=True)
        der = subprocess.run(["openssl", "x509", "-in", str(self.cert), "-outform", "DER"],
                             check=True, capture_output=True).stdout
        self.x5c = base64.b64encode(der).decode()
        self.requests: list[dict] = []
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
                service.requests.append(query)
                access = []
                for scope in query.get("scope", []):
                    kind, name, actions = scope.split(":")
                    access.append({"type": kind, "name": name, "actions": actions.split(",")})
                body = json.dumps({"token": service.token(query.get("service", [""])[0], access)}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, audience: str, access: list) -> str:
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        claims = {"iss": ISSUER, "sub": "", "aud": audience, "exp": now + 300, "nbf": now - 10, "iat": now,
                  "jti": str(time.monotonic_ns()), "access": access}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.key)], input=signing_input.encode(),
                                   check=True, capture_output=True).stdout
        return f"{signing_input}.{b64url(signature)}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Challenger:
    """Not a registry: every request gets 401 with a challenge zerohop cannot answer."""

    def __init__(self):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(401)
                self.send_header("www-authenticate", 'Basic realm="registry"')
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def bundle(workdir: Path, revision: str, allowed_path: str) -> Path:
    policy = workdir / f"policy-{revision}"
    (policy / "oci").mkdir(parents=True)
    (policy / "oci" / "authz.rego").write_text(
        f'package oci.authz\n\nimport rego.v1\n\nallow if input.attributes.request.http.path == "{allowed_path}"\n')
    out = workdir / f"{revision}.tar.gz"
    build_bundle(policy, out, ["oci/authz/allow"], revision=revision)
    return out


def push(path: Path, host: str, tag: str = "v1"):
    result = subprocess.run([str(BUNDLER), "push", str(path), f"oci://{host}/{REPOSITORY}:{tag}", "--plain-http"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.split("digest: ")[1].strip()


def plugin_config(registry_port: int, token_cluster: bool = False) -> str:
    oci = {"repository": REPOSITORY, "tag": "v1"}
    if token_cluster:
        oci["token_cluster"] = "tokens"
    return json.dumps({
        "path": "oci/authz/allow",
        "bundle": {"service": {"cluster": "registry", "authority": f"127.0.0.1:{registry_port}", "oci": oci},
                   "polling": {"min_delay_seconds": 1, "max_delay_seconds": 1}},
    })


def wait_for_log(envoy: Envoy, text: str, timeout: float = 30, times: int = 1) -> None:
    deadline = time.monotonic() + timeout
    while envoy.log().count(text) < times:
        if time.monotonic() > deadline:
            raise AssertionError(f"no {text!r} in the Envoy log:\n{envoy.log()[-3000:]}")
        time.sleep(0.1)


def wait_active(envoy: Envoy, revision: str) -> None:
    """Until every VM runs `revision`: two workers' and the main thread's."""
    wait_for_log(envoy, f'bundle revision "{revision}" active', times=3)


@pytest.fixture
def workdir(tmp_path):
    return tmp_path


def start_envoy(workdir: Path, upstream, registry_port: int, token_port: int | None = None) -> Envoy:
    clusters = [static_cluster("registry", registry_port)]
    if token_port:
        clusters.append(static_cluster("tokens", token_port))
    envoy = Envoy([Listener("oci", plugin_config(registry_port, token_cluster=bool(token_port)))], upstream.port,
                  workdir, clusters=clusters)
    return envoy.start()


def test_anonymous_registry(workdir, upstream):
    registry = Registry(workdir / "registry").start()
    envoy = None
    try:
        push(bundle(workdir, "oci-1", "/one"), registry.host)
        envoy = start_envoy(workdir, upstream, registry.port)
        wait_active(envoy, "oci-1")
        assert request(envoy.port("oci"), "/one").status == 200
        assert request(envoy.port("oci"), "/two").status == 403
    finally:
        if envoy:
            envoy.stop()
        registry.stop()


def test_token_flow_new_digests_and_a_layer_that_does_not_match(workdir, upstream):
    tokens = TokenService(workdir)
    registry = Registry(workdir / "registry", auth={
        "realm": f"http://127.0.0.1:{tokens.port}/token", "service": SERVICE, "issuer": ISSUER,
        "rootcertbundle": str(tokens.cert)}).start()
    envoy = None
    try:
        push(bundle(workdir, "oci-1", "/one"), registry.host)
        pushes = len(tokens.requests)
        envoy = start_envoy(workdir, upstream, registry.port, tokens.port)
        wait_active(envoy, "oci-1")
        assert request(envoy.port("oci"), "/one").status == 200
        # The proxy asked the token service for a pull token of the repository.
        asked = tokens.requests[pushes:]
        assert asked and asked[0] == {"service": [SERVICE], "scope": [f"repository:{REPOSITORY}:pull"]}

        # A new push to the tag: a new manifest digest, activated.
        push(bundle(workdir, "oci-2", "/two"), registry.host)
        wait_active(envoy, "oci-2")
        assert request(envoy.port("oci"), "/two").status == 200
        assert request(envoy.port("oci"), "/one").status == 403

        # An image whose layer the registry serves altered (pushed to another tag, its stored
        # layer replaced, then tagged v1): refused, oci-2 stays.
        three = bundle(workdir, "oci-3", "/three")
        push(three, registry.host, tag="staging")
        layer = hashlib.sha256(three.read_bytes()).hexdigest()
        stored = workdir / "registry" / "storage" / "docker" / "registry" / "v2" / "blobs" / "sha256" / layer[:2] / layer / "data"
        stored.write_bytes(bundle(workdir, "oci-evil", "/evil").read_bytes())
        push(three, registry.host)
        wait_for_log(envoy, "bundle fetch failed [layer-digest-mismatch]: the bundle layer hashes to sha256:")
        assert f"not to the manifest's sha256:{layer}" in envoy.log()
        assert 'bundle revision "oci-3"' not in envoy.log() and 'bundle revision "oci-evil"' not in envoy.log()
        assert request(envoy.port("oci"), "/two").status == 200
        assert request(envoy.port("oci"), "/evil").status == 403
    finally:
        if envoy:
            envoy.stop()
        registry.stop()
        tokens.stop()


def test_a_401_without_a_usable_challenge_activates_nothing(workdir, upstream):
    challenger = Challenger()
    envoy = None
    try:
        envoy = start_envoy(workdir, upstream, challenger.port)
        wait_for_log(envoy, "bundle fetch failed [registry-auth]: the registry answered 401 without a usable "
                            'bearer challenge (WWW-Authenticate: Basic realm="registry")')
        assert "bundle revision" not in envoy.log()
        assert request(envoy.port("oci"), "/one").status == 503  # no bundle is active
    finally:
        if envoy:
            envoy.stop()
        challenger.stop()
