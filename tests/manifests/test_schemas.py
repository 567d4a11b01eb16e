"""Every manifest under manifests/ validates against the Kubernetes/Istio JSON Schemas kept in
testdata/schemas (Istio 1.30's CRD schemas; strict: unknown fields rejected, as `kubectl
apply` does), and every
zerohop pluginConfig parses with the filter's own configuration rules."""

import base64
import json
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "testdata" / "schemas"
DOCUMENTS = [
    (path, index, doc)
    for path in sorted((ROOT / "manifests").rglob("*.yaml"))
    for index, doc in enumerate(yaml.safe_load_all(path.read_text()))
    if doc
]


def test_there_are_manifests():
    assert DOCUMENTS


@pytest.mark.parametrize("path,index,doc", DOCUMENTS, ids=[f"{p.name}#{i}" for p, i, _ in DOCUMENTS])
def test_manifest_matches_schema(path, index, doc):
    schema_file = SCHEMAS / f"{doc['apiVersion'].replace('/', '_')}_{doc['kind']}.json"
    assert schema_file.exists(), f"{path}#{index}: no schema for {doc['apiVersion']} {doc['kind']}"
    validator = jsonschema.Draft7Validator(json.loads(schema_file.read_text()))
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]
    assert not errors, f"{path}#{index}: " + "; ".join(errors)


@pytest.mark.parametrize("path,index,doc", [d for d in DOCUMENTS if d[2]["kind"] == "WasmPlugin"],
                         ids=lambda v: str(v) if isinstance(v, int) else getattr(v, "name", ""))
def test_plugin_config_bundle_is_a_real_bundle(tmp_path, path, index, doc):
    bundle = tmp_path / "bundle.tar.gz"
    bundle.write_bytes(base64.b64decode(doc["spec"]["pluginConfig"]["bundle"]["inline"]))
    result = subprocess.run([str(ROOT / "dist" / "policy-bundler"), "inspect", str(bundle), "--format", "json"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["runs_on_this_filter"]


def zerohop_envoy_filters():
    """(path, index, Wasm PluginConfig) for each zerohop Wasm filter defined by an EnvoyFilter."""
    for path, index, doc in DOCUMENTS:
        if doc["kind"] != "EnvoyFilter":
            continue
        for patch in doc["spec"]["configPatches"]:
            typed = patch["patch"].get("value", {}).get("typed_config", {})
            if typed.get("@type", "").endswith("envoy.extensions.filters.http.wasm.v3.Wasm"):
                yield path, index, typed["config"]


@pytest.mark.parametrize("path,index,config", list(zerohop_envoy_filters()),
                         ids=lambda v: str(v) if isinstance(v, int) else getattr(v, "name", ""))
def test_envoy_filter_config_is_a_zerohop_config(tmp_path, path, index, config):
    plugin_config = json.loads(config["configuration"]["value"])
    bundle = tmp_path / "bundle.tar.gz"
    bundle.write_bytes(base64.b64decode(plugin_config["bundle"]["inline"]))
    result = subprocess.run([str(ROOT / "dist" / "policy-bundler"), "inspect", str(bundle), "--format", "json"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert plugin_config["path"].replace("/", ".") in " ".join(json.loads(result.stdout)["program"]["entrypoints"])
    # Bodies need the host to deliver them to a filter that holds the headers.
    if "with_request_body" in plugin_config:
        assert config.get("allow_on_headers_stop_iteration") is True
