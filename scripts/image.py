"""make image: dist/zerohop.wasm as an OCI image layout Istio pulls (`oci://` in a
TrafficExtension or WasmPlugin), built with umoci (no Docker engine), then checked.

The shape is the Wasm image spec's "compat" variant, the one Istio's image fetcher reads from
any registry: one `application/vnd.oci.image.layer.v1.tar+gzip` layer, the last one, holding
`plugin.wasm`, and the manifest annotation `module.wasm.image/variant=compat`. What Istio
compares a `sha256:` with for an `oci://` url is the digest of the image *manifest* (not of
the module), so that is the digest printed.

    python3 scripts/image.py build WASM LAYOUT TAG IMAGE   # build, check, print url + sha256
    python3 scripts/image.py check LAYOUT TAG              # check an existing layout
"""

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
VARIANT = ("module.wasm.image/variant", "compat")
REF_NAME = "org.opencontainers.image.ref.name"


class ImageError(Exception):
    pass


def blob(layout: Path, digest: str) -> bytes:
    algorithm, _, hex_digest = digest.partition(":")
    path = layout / "blobs" / algorithm / hex_digest
    if algorithm != "sha256" or not path.is_file():
        raise ImageError(f"{layout}: blob {digest} is missing")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != hex_digest:
        raise ImageError(f"{layout}: blob {digest} does not match its digest")
    return data


def check(layout: Path, tag: str) -> tuple[str, dict]:
    """The manifest digest of `tag` in the layout, after checking the compat shape. Every
    error names what is wrong and where."""
    index = json.loads((layout / "index.json").read_text())
    found = [m for m in index.get("manifests", []) if m.get("annotations", {}).get(REF_NAME) == tag]
    if len(found) != 1:
        raise ImageError(f"{layout}: {len(found)} manifests tagged {tag!r} in index.json (expected 1)")
    descriptor = found[0]
    if descriptor.get("mediaType") != MANIFEST:
        raise ImageError(f"{layout}:{tag}: manifest media type {descriptor.get('mediaType')!r}, expected {MANIFEST}")
    manifest = json.loads(blob(layout, descriptor["digest"]))
    if manifest.get("mediaType") != MANIFEST:
        raise ImageError(f"{layout}:{tag}: the manifest declares media type {manifest.get('mediaType')!r}, "
                         f"expected {MANIFEST}")
    annotations = manifest.get("annotations") or {}
    if annotations.get(VARIANT[0]) != VARIANT[1]:
        raise ImageError(f"{layout}:{tag}: manifest annotation {VARIANT[0]} is "
                         f"{annotations.get(VARIANT[0])!r}, expected {VARIANT[1]!r}")
    layers = manifest.get("layers") or []
    if not layers:
        raise ImageError(f"{layout}:{tag}: the image has no layers")
    for position, layer in enumerate(layers):
        if layer.get("mediaType") != LAYER:
            raise ImageError(f"{layout}:{tag}: layer {position} ({layer.get('digest')}) has media type "
                             f"{layer.get('mediaType')!r}; Istio's compat variant needs {LAYER}")
    wasm_layers = []
    for position, layer in enumerate(layers):
        try:
            with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob(layout, layer["digest"])))) as tar:
                names = [m.name.removeprefix("./") for m in tar.getmembers() if m.isfile()]
        except (OSError, tarfile.TarError) as e:
            raise ImageError(f"{layout}:{tag}: layer {position} ({layer['digest']}) is not a gzip tar: {e}") from None
        if any(n.endswith(".wasm") for n in names):
            wasm_layers.append((position, names))
    if len(wasm_layers) != 1:
        raise ImageError(f"{layout}:{tag}: {len(wasm_layers)} layers hold a .wasm file "
                         f"(layers {[p for p, _ in wasm_layers]}); Istio reads exactly one, the last")
    position, names = wasm_layers[0]
    if position != len(layers) - 1:
        raise ImageError(f"{layout}:{tag}: the wasm is in layer {position}, not the last layer ({len(layers) - 1})")
    if "plugin.wasm" not in names:
        raise ImageError(f"{layout}:{tag}: the last layer holds {names}, not plugin.wasm")
    return descriptor["digest"], manifest


def build(wasm: Path, layout: Path, tag: str) -> None:
    work = layout.parent / f".{layout.name}-bundle"
    shutil.rmtree(layout, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    image = f"{layout}:{tag}"

    def umoci(*args):
        subprocess.run(["umoci", *args], check=True)

    umoci("init", "--layout", str(layout))
    umoci("new", "--image", image)
    umoci("unpack", "--rootless", "--image", image, str(work))
    shutil.copyfile(wasm, work / "rootfs" / "plugin.wasm")
    umoci("repack", "--image", image, "--history.created_by", "make image (umoci repack)", str(work))
    umoci("config", "--image", image, "--manifest.annotation", "=".join(VARIANT))
    declare_media_type(layout, tag)
    umoci("gc", "--layout", str(layout))
    shutil.rmtree(work)


def declare_media_type(layout: Path, tag: str) -> None:
    """umoci 0.4 leaves the manifest's own `mediaType` out (optional in OCI 1.0); registries
    and clients that check it against the Content-Type want it, so it is written in."""
    index = json.loads((layout / "index.json").read_text())
    (descriptor,) = [m for m in index["manifests"] if m.get("annotations", {}).get(REF_NAME) == tag]
    manifest = json.loads(blob(layout, descriptor["digest"]))
    manifest = {"schemaVersion": manifest.pop("schemaVersion"), "mediaType": MANIFEST, **manifest}
    data = json.dumps(manifest, separators=(",", ":")).encode()
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    descriptor.update(digest=f"sha256:{digest}", size=len(data))
    (layout / "index.json").write_text(json.dumps(index, separators=(",", ":")))


def main(argv) -> int:
    try:
        if argv[:1] == ["build"] and len(argv) == 5:
            wasm, layout, tag, image = Path(argv[1]), Path(argv[2]), argv[3], argv[4]
            build(wasm, layout, tag)
            digest, _ = check(layout, tag)
            print(f"{layout}:{tag}: one {LAYER} layer holding plugin.wasm ({wasm.stat().st_size} bytes), "
                  f"{VARIANT[0]}={VARIANT[1]}")
            print(f"push:    skopeo copy --preserve-digests oci:{layout}:{tag} docker://{image}")
            print("then in the TrafficExtension (spec.wasm) or WasmPlugin (spec):")
            print(f"  url: oci://{image}")
            print(f"  sha256: \"{digest.removeprefix('sha256:')}\"")
            return 0
        if argv[:1] == ["check"] and len(argv) == 3:
            digest, _ = check(Path(argv[1]), argv[2])
            print(digest)
            return 0
    except ImageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
