"""Debian's docker-registry (CNCF distribution 2.8) on a free loopback port, with its own
configuration: a temporary storage root, no auth (the packaged configuration listens on all
interfaces with htpasswd auth, which tests must not touch), and plain HTTP."""

import hashlib
import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from harness import free_port

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


class Registry:
    def __init__(self, workdir: Path, auth: dict | None = None):
        """`auth`: the registry's `auth.token` settings (realm, service, issuer,
        rootcertbundle) to require bearer tokens; none for anonymous access."""
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.config = workdir / "config.yml"
        config = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(workdir / "storage")}, "delete": {"enabled": True}},
            "http": {"addr": self.host, "secret": "zerohop-tests"},
        }
        if auth:
            config["auth"] = {"token": auth}
        # JSON is YAML: no PyYAML needed where this runs.
        self.config.write_text(json.dumps(config))
        self.log = workdir / "registry.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> "Registry":
        self.process = subprocess.Popen(["docker-registry", "serve", str(self.config)],
                                        stdout=self.log.open("wb"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"docker-registry exited: {self.log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("docker-registry did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def get(self, path: str, accept: str = OCI_MANIFEST, token: str | None = None):
        """(status, headers, body) of GET /v2/<path>."""
        headers = {"Accept": accept}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(f"http://{self.host}/v2/{path}", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
