"""make image: the wasm as an OCI image in Istio's compat shape, built with umoci, pushed with
skopeo to Debian's docker-registry on loopback, read back as Istio's image fetcher reads it.
The digest `make image` prints is the manifest digest (what Istio compares `sha256` with for
an `oci://` url), not the module's hash. Broken layouts are refused with the reason."""

import gzip
import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile

import pytest

from harness import ROOT, WASM
from registry import OCI_MANIFEST, Registry, sha256

sys.path.insert(0, str(ROOT / "scripts"))
import image  # noqa: E402

TAG = "zerohop"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(layout, printed sha256) of `scripts/image.py build`, as `make image` runs it."""
    layout = tmp_path_factory.mktemp("image") / "layout"
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "image.py"), "build", str(WASM), str(layout), TAG,
                             "registry.example/zerohop:1.0"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "  url: oci://registry.example/zerohop:1.0\n" in result.stdout
    printed = re.search(r'^  sha256: "([0-9a-f]{64})"$', result.stdout, re.M).group(1)
    return layout, printed


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    server = Registry(tmp_path_factory.mktemp("registry")).start()
    yield server
    server.stop()


def test_image_round_trip_through_a_registry(built, registry):
    layout, printed = built
    subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", "--preserve-digests",
                    f"oci:{layout}:{TAG}", f"docker://{registry.host}/mesh/zerohop:1.0"], check=True)
    status, headers, body = registry.get("mesh/zerohop/manifests/1.0")
    assert status == 200
    assert headers["Content-Type"] == OCI_MANIFEST
    # The digest to pin is the manifest's, and the registry serves the same one.
    assert headers["Docker-Content-Digest"] == sha256(body) == f"sha256:{printed}"
    assert printed != hashlib.sha256(WASM.read_bytes()).hexdigest()
    assert registry.get(f"mesh/zerohop/manifests/sha256:{printed}")[2] == body

    manifest = json.loads(body)
    assert manifest["mediaType"] == OCI_MANIFEST
    assert manifest["annotations"] == {"module.wasm.image/variant": "compat"}
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    status, _, blob = registry.get(f"mesh/zerohop/blobs/{layer['digest']}", accept="*/*")
    assert status == 200 and sha256(blob) == layer["digest"]
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
        files = {m.name.removeprefix("./"): m for m in tar.getmembers() if m.isfile()}
        assert list(files) == ["plugin.wasm"]
        assert tar.extractfile(files["plugin.wasm"]).read() == WASM.read_bytes()


def rewrite_manifest(layout, change):
    """Writes a changed manifest into the layout and points the tag at it."""
    index = json.loads((layout / "index.json").read_text())
    descriptor = index["manifests"][0]
    manifest = json.loads((layout / "blobs" / "sha256" / descriptor["digest"].split(":")[1]).read_bytes())
    change(manifest)
    data = json.dumps(manifest).encode()
    (layout / "blobs" / "sha256" / hashlib.sha256(data).hexdigest()).write_bytes(data)
    descriptor.update(digest=sha256(data), size=len(data))
    (layout / "index.json").write_text(json.dumps(index))


@pytest.fixture
def copy_of(built, tmp_path):
    import shutil
    layout = tmp_path / "layout"
    shutil.copytree(built[0], layout)
    return layout


def test_a_wrong_layer_media_type_is_refused(copy_of):
    def uncompressed(manifest):
        manifest["layers"][0]["mediaType"] = "application/vnd.oci.image.layer.v1.tar"
    rewrite_manifest(copy_of, uncompressed)
    with pytest.raises(image.ImageError, match=r"layer 0 \(sha256:[0-9a-f]{64}\) has media type "
                       r"'application/vnd.oci.image.layer.v1.tar'; Istio's compat variant needs "
                       r"application/vnd.oci.image.layer.v1.tar\+gzip"):
        image.check(copy_of, TAG)


def test_two_wasm_layers_are_refused(copy_of, tmp_path):
    bundle = tmp_path / "unpacked"
    subprocess.run(["umoci", "unpack", "--rootless", "--image", f"{copy_of}:{TAG}", str(bundle)],
                   check=True, capture_output=True)
    (bundle / "rootfs" / "other.wasm").write_bytes(b"\0asm\1\0\0\0")
    subprocess.run(["umoci", "repack", "--image", f"{copy_of}:{TAG}", str(bundle)], check=True, capture_output=True)
    with pytest.raises(image.ImageError, match=r"2 layers hold a \.wasm file \(layers \[0, 1\]\); "
                       r"Istio reads exactly one, the last"):
        image.check(copy_of, TAG)


def test_an_image_without_the_compat_annotation_is_refused(copy_of):
    rewrite_manifest(copy_of, lambda manifest: manifest.pop("annotations"))
    with pytest.raises(image.ImageError, match="manifest annotation module.wasm.image/variant is None, "
                       "expected 'compat'"):
        image.check(copy_of, TAG)
