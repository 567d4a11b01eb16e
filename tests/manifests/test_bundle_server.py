"""The base's bundle server configuration (the `bundles-nginx` ConfigMap) in Debian's nginx on
loopback, with the bundles laid out as a ConfigMap volume lays them out (symlinks into
`..data/`): the bundle is served with an ETag, a poll with that ETag gets 304, a published
revision gets a new ETag."""

import http.client
import os
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

from kustomize import render

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def publish(directory: Path, revision: int, content: bytes) -> None:
    """What the kubelet does when the ConfigMap changes: a new `..data` directory, swapped."""
    data = directory / f"..{revision}"
    data.mkdir()
    (data / "zero-trust.tar.gz").write_bytes(content)
    stamp = time.time() + revision
    os.utime(data / "zero-trust.tar.gz", (stamp, stamp))
    link = directory / "..data_tmp"
    link.symlink_to(data.name)
    link.rename(directory / "..data")
    if not (directory / "zero-trust.tar.gz").is_symlink():
        (directory / "zero-trust.tar.gz").symlink_to("..data/zero-trust.tar.gz")


@pytest.fixture
def server(tmp_path):
    base = render(ROOT / "manifests" / "base")
    server_block = next(d for d in base if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "bundles-nginx")
    server_block = server_block["data"]["default.conf"]
    deployment = next(d for d in base if d["kind"] == "Deployment" and d["metadata"]["name"] == "bundles")
    mounts = {m["name"]: m["mountPath"] for m in deployment["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
    bundles = tmp_path / "bundles"
    bundles.mkdir()
    port = free_port()
    assert "listen 8080;" in server_block and f"alias {mounts['bundles']}/;" in server_block
    server_block = server_block.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    server_block = server_block.replace(f"alias {mounts['bundles']}/;", f"alias {bundles}/;")
    temp = tmp_path / "temp"
    temp.mkdir()
    config = tmp_path / "nginx.conf"
    config.write_text(f"""
daemon off;
master_process off;
worker_processes 1;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log warn;
events {{ worker_connections 16; }}
http {{
    access_log off;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
{server_block}
}}
""")
    process = subprocess.Popen(["nginx", "-c", str(config), "-e", str(tmp_path / "error.log")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    yield port, bundles
    process.terminate()
    process.wait(timeout=10)


def get(port, path, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    return response.status, dict(response.getheaders()), response.read()


def test_bundles_are_served_with_etags(server):
    port, bundles = server
    status, _, _ = get(port, "/bundles/zero-trust.tar.gz")
    assert status == 404  # nothing published yet
    assert get(port, "/healthz")[0] == 200

    publish(bundles, 1, b"revision one")
    status, headers, body = get(port, "/bundles/zero-trust.tar.gz")
    assert (status, body) == (200, b"revision one")
    assert headers["Content-Type"] == "application/gzip"
    etag = headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]+-[0-9a-f]+"', etag)
    assert get(port, "/bundles/zero-trust.tar.gz", {"If-None-Match": etag})[0] == 304

    publish(bundles, 2, b"revision two")
    status, headers, body = get(port, "/bundles/zero-trust.tar.gz", {"If-None-Match": etag})
    assert (status, body) == (200, b"revision two")
    assert headers["ETag"] != etag
