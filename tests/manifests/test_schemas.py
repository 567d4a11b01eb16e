"""The kustomize base and overlays under manifests/: each kustomization is rendered (with the
resolver in kustomize.py: `resources` and `patches`, strict), every rendered document
validates against the Kubernetes/Istio JSON Schemas in testdata/schemas (Istio 1.30.3's CRDs,
Kubernetes 1.36; strict: unknown fields rejected, as `kubectl apply` does), the CEL rules the
schemas cannot enforce are checked here, and every zerohop pluginConfig is parsed by the
filter's own configuration code (`policy-bundler config`)."""

import json
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from kustomize import KustomizeError, render

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
SCHEMAS = ROOT / "testdata" / "schemas"
BUNDLER = ROOT / "dist" / "policy-bundler"
KUSTOMIZATIONS = sorted(p.parent for p in MANIFESTS.rglob("kustomization.yaml"))
# Files that are not Kubernetes objects: istiod's Helm values (the access-log provider).
NOT_OBJECTS = {MANIFESTS / "istiod" / "values.yaml"}
# Files outside kustomizations: the policy bundle's sources.
BUNDLE_SOURCES = MANIFESTS / "bundles"


def name(directory: Path) -> str:
    return str(directory.relative_to(MANIFESTS))


RENDERED = {name(d): render(d) for d in KUSTOMIZATIONS}


def validator(file_name: str):
    schema_file = SCHEMAS / file_name
    assert schema_file.exists(), f"no schema {schema_file.name} in testdata/schemas"
    return jsonschema.Draft7Validator(json.loads(schema_file.read_text()))


def schema_errors(doc) -> list:
    """Each error as `path/of/the/field: message`."""
    file_name = f"{doc['apiVersion'].replace('/', '_')}_{doc['kind']}.json"
    return [f"{'/'.join(map(str, e.absolute_path)) or '(document)'}: {e.message}"
            for e in validator(file_name).iter_errors(doc)]


def label(doc) -> str:
    meta = doc.get("metadata") or {}
    return f"{doc['kind']} {meta.get('namespace', '')}/{meta.get('name')}"


def test_the_base_and_overlays_are_there():
    assert {"base", "overlays/enforce", "overlays/wasmplugin", "overlays/ambient-waypoint",
            "overlays/request-bodies", "overlays/oci-registry", "kube-bench"} <= set(RENDERED)


def test_every_manifest_file_is_rendered_by_a_kustomization():
    """No YAML under manifests/ escapes validation by not being part of a kustomization."""
    used = set()
    for directory in KUSTOMIZATIONS:
        render(directory, used)
    files = {p.resolve() for p in MANIFESTS.rglob("*.yaml")
             if p not in NOT_OBJECTS and BUNDLE_SOURCES not in p.parents}
    assert files - used == set()


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=name)
def test_kustomization_file_matches_schema(directory):
    doc = yaml.safe_load((directory / "kustomization.yaml").read_text())
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in validator("kustomize.config.k8s.io_v1beta1_Kustomization.json").iter_errors(doc)]
    assert not errors, f"{directory}/kustomization.yaml: " + "; ".join(errors)


@pytest.mark.parametrize("overlay", sorted(RENDERED))
def test_rendered_documents_match_schemas(overlay):
    problems = [f"{label(doc)}: {error}" for doc in RENDERED[overlay] for error in schema_errors(doc)]
    assert not problems, f"{overlay}:\n" + "\n".join(problems)


def test_a_bad_field_is_named_by_its_path():
    """The failure message of the test above names the field at fault."""
    doc = json.loads(json.dumps(next(d for d in RENDERED["base"] if d["kind"] == "TrafficExtension")))
    doc["spec"]["phase"] = "BOGUS"
    doc["spec"]["wasm"]["failStratgy"] = "FAIL_CLOSE"
    errors = schema_errors(doc)
    assert any(e.startswith("spec/phase: 'BOGUS' is not one of") for e in errors), errors
    assert any(e.startswith("spec/wasm: Additional properties are not allowed ('failStratgy'") for e in errors), errors


def test_the_resolver_refuses_what_kustomize_refuses(tmp_path):
    (tmp_path / "a.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n")
    (tmp_path / "kustomization.yaml").write_text("resources: [a.yaml, a.yaml]\n")
    with pytest.raises(KustomizeError, match="added twice"):
        render(tmp_path)
    (tmp_path / "kustomization.yaml").write_text(
        "resources: [a.yaml]\npatches:\n- target: {kind: Namespace, name: b}\n"
        "  patch: '[{op: add, path: /metadata/labels, value: {}}]'\n")
    with pytest.raises(KustomizeError, match="matches no resource"):
        render(tmp_path)
    (tmp_path / "kustomization.yaml").write_text("resources: [a.yaml]\nnamespace: x\n")
    with pytest.raises(KustomizeError, match="does not implement"):
        render(tmp_path)


def filters(documents):
    """(label, kind, spec of the wasm module, pluginConfig) of each zerohop filter."""
    for doc in documents:
        if doc["kind"] == "TrafficExtension":
            yield label(doc), doc["spec"]["wasm"], doc["spec"]["wasm"]["pluginConfig"]
        elif doc["kind"] == "WasmPlugin":
            yield label(doc), doc["spec"], doc["spec"]["pluginConfig"]
        elif doc["kind"] == "EnvoyFilter":
            for patch in doc["spec"]["configPatches"]:
                typed = patch["patch"].get("value", {}).get("typed_config", {})
                if typed.get("@type", "").endswith("envoy.extensions.filters.http.wasm.v3.Wasm"):
                    yield label(doc), typed["config"], json.loads(typed["config"]["configuration"]["value"])


ALL_FILTERS = [(overlay, *f) for overlay in sorted(RENDERED) for f in filters(RENDERED[overlay])]


@pytest.mark.parametrize("overlay,where,module,plugin_config", ALL_FILTERS,
                         ids=[f"{o}:{w}" for o, w, _, _ in ALL_FILTERS])
def test_plugin_config_is_a_zerohop_config(tmp_path, overlay, where, module, plugin_config):
    config = tmp_path / "plugin.json"
    config.write_text(json.dumps(plugin_config))
    result = subprocess.run([str(BUNDLER), "config", str(config)], capture_output=True, text=True)
    assert result.returncode == 0, f"{overlay}: {where}: {result.stderr}"
    if "allow_on_headers_stop_iteration" in module or "with_request_body" in plugin_config:
        # Bodies need the host to deliver them to a filter that holds the headers.
        assert module.get("allow_on_headers_stop_iteration") is True


@pytest.mark.parametrize("overlay", sorted(o for o in RENDERED if o != "kube-bench"))
def test_each_overlay_runs_one_filter_never_open_on_failure_pinned_by_digest(overlay):
    """What the CRD's CEL rules and istiod would check, and what the kit promises."""
    found = list(filters(RENDERED[overlay]))
    assert len(found) == 1, f"{overlay}: {len(found)} zerohop filters"
    where, module, _ = found[0]
    doc = next(d for d in RENDERED[overlay] if label(d) == where)
    spec = doc["spec"]
    if doc["kind"] == "EnvoyFilter":
        assert module["failure_policy"] == "FAIL_RELOAD"
        assert re.fullmatch(r"oci://[^@]+@sha256:[0-9a-f]{64}", module["vm_config"]["code"]["remote"]["http_uri"]["uri"])
        return
    assert spec["phase"] == "AUTHZ"
    # Never FAIL_OPEN; FAIL_RELOAD rather than FAIL_CLOSE (docs/budgets.md: a trap).
    assert module["failStrategy"] == "FAIL_RELOAD"
    assert module["url"].startswith("oci://")
    assert re.fullmatch(r"[0-9a-f]{64}", module["sha256"])
    # CEL: only one of selector and targetRefs.
    assert not ("selector" in spec and "targetRefs" in spec)
    if "targetRefs" in spec:
        assert spec["targetRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "waypoint"}]
        assert "match" not in spec
    else:
        assert spec["match"] == [{"mode": "SERVER"}]


def plugin_config_of(overlay):
    return next(iter(filters(RENDERED[overlay])))[2]


def test_the_base_starts_in_dry_run_and_enforce_turns_it_off():
    assert plugin_config_of("base")["dry_run"] is True
    enforced = plugin_config_of("overlays/enforce")
    assert enforced["dry_run"] is False
    assert {k: v for k, v in enforced.items() if k != "dry_run"} == \
        {k: v for k, v in plugin_config_of("base").items() if k != "dry_run"}


def test_the_filter_reaches_the_bundle_server_over_mtls():
    base = RENDERED["base"]
    service = plugin_config_of("base")["bundle"]["service"]
    direction, port, _, host = service["cluster"].split("|")
    assert direction == "outbound"
    name_, namespace = host.split(".")[:2]
    svc = next(d for d in base if d["kind"] == "Service" and d["metadata"] == {"name": name_, "namespace": namespace})
    assert int(port) in [p["port"] for p in svc["spec"]["ports"]]
    deployment = next(d for d in base if d["kind"] == "Deployment" and d["metadata"]["name"] == name_)
    assert svc["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    rule = next(d for d in base if d["kind"] == "DestinationRule" and d["spec"]["host"] == host)
    assert rule["spec"]["trafficPolicy"]["tls"]["mode"] == "ISTIO_MUTUAL"
    peer = next(d for d in base if d["kind"] == "PeerAuthentication")
    assert peer["metadata"]["namespace"] == "istio-system" and "selector" not in peer["spec"]
    assert peer["spec"]["mtls"]["mode"] == "STRICT"
    # The filter does not run where the bundles come from (it would wait for itself).
    filter_namespaces = {d["metadata"]["namespace"] for d in base if d["kind"] == "TrafficExtension"}
    assert namespace not in filter_namespaces


def test_the_oci_registry_is_reached_with_tls_originated_by_the_sidecar():
    rendered = RENDERED["overlays/oci-registry"]
    service = plugin_config_of("overlays/oci-registry")["bundle"]["service"]
    assert "path" not in service and service["oci"]["repository"]
    _, port, _, host = service["cluster"].split("|")
    entry = next(d for d in rendered if d["kind"] == "ServiceEntry")
    assert host in entry["spec"]["hosts"] and entry["spec"]["location"] == "MESH_EXTERNAL"
    (entry_port,) = [p for p in entry["spec"]["ports"] if p["number"] == int(port)]
    assert (entry_port["protocol"], entry_port["targetPort"]) == ("HTTP", 443)
    rule = next(d for d in rendered if d["kind"] == "DestinationRule" and d["spec"]["host"] == host)
    (setting,) = [s for s in rule["spec"]["trafficPolicy"]["portLevelSettings"] if s["port"]["number"] == int(port)]
    assert setting["tls"] == {"mode": "SIMPLE", "sni": host}


def test_the_access_log_carries_the_decision_id():
    telemetry = next(d for d in RENDERED["base"] if d["kind"] == "Telemetry")
    providers = [p["name"] for entry in telemetry["spec"]["accessLogging"] for p in entry["providers"]]
    values = yaml.safe_load((MANIFESTS / "istiod" / "values.yaml").read_text())
    defined = {p["name"]: p for p in values["meshConfig"]["extensionProviders"]}
    for provider in providers:
        labels = defined[provider]["envoyFileAccessLog"]["logFormat"]["labels"]
        assert labels["decision_id"] == "%FILTER_STATE(wasm.zerohop.decision_id:PLAIN)%"


def test_kube_bench_scans_the_host_read_only_with_json_output():
    cronjob = next(d for d in RENDERED["kube-bench"] if d["kind"] == "CronJob")
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]
    assert pod["spec"]["hostPID"] is True
    assert pod["metadata"]["labels"]["sidecar.istio.io/inject"] == "false"
    (container,) = pod["spec"]["containers"]
    assert "--json" in container["command"]
    host_volumes = {v["name"] for v in pod["spec"]["volumes"] if "hostPath" in v}
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert host_volumes and all(mounts[v].get("readOnly") is True for v in host_volumes)
    namespace = next(d for d in RENDERED["kube-bench"] if d["kind"] == "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
