import io
import json
import tarfile

import pytest

import harness
from harness import Envoy, EchoUpstream, JwtIssuer, Listener, Pki, ROOT, build_bundle, plugin_config

POLICIES = ROOT / "testdata" / "policies"
E2E_RULES = ["e2e/decision", "e2e/allow_bool", "e2e/maybe", "e2e/expensive", "e2e/spiffe", "e2e/echo"]


def opa_style_bundle(files: dict[str, bytes]) -> bytes:
    """A bundle laid out as `opa build` writes it: `/`-prefixed entries, no program."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo("/" + name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


def with_manifest(bundle: bytes, change) -> bytes:
    """Rewrites a bundle's .manifest (e.g. to claim another regorus version)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(bundle)) as src, tarfile.open(fileobj=out, mode="w:gz") as dst:
        for member in src.getmembers():
            content = src.extractfile(member).read()
            if member.name.removeprefix("./").removeprefix("/") == ".manifest":
                manifest = json.loads(content)
                change(manifest)
                content = json.dumps(manifest).encode()
            member.size = len(content)
            dst.addfile(member, io.BytesIO(content))
    return out.getvalue()


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def e2e_bundle(workdir):
    return build_bundle(POLICIES / "e2e", workdir / "e2e.tar.gz", E2E_RULES)


@pytest.fixture(scope="session")
def pki(workdir):
    directory = workdir / "pki"
    directory.mkdir()
    return Pki(directory)


@pytest.fixture(scope="session")
def jwt_issuer():
    return JwtIssuer()


@pytest.fixture(scope="session")
def upstream():
    server = EchoUpstream().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def envoy(workdir, e2e_bundle, pki, upstream, jwt_issuer):
    rego = (POLICIES / "e2e" / "e2e.rego").read_bytes()
    plain = opa_style_bundle({".manifest": b'{"revision":"plain-1"}', "e2e/e2e.rego": rego})
    bad_rego = opa_style_bundle({"bad.rego": b"package bad\n\nallow if {\n  input.x ==\n}\n"})
    other_regorus = with_manifest(e2e_bundle, lambda m: m["metadata"]["zerohop"].update(regorus="0.13.0"))
    # A policy that reads a few request fields (the e2e rules read all of `input`, request id included).
    istio = build_bundle(POLICIES / "istio-quickstart", workdir / "istio.tar.gz", ["istio/authz/allow"])
    listeners = [
        Listener("decision", plugin_config(e2e_bundle, path="e2e/decision")),
        Listener("bool", plugin_config(e2e_bundle, path="e2e/allow_bool")),
        Listener("undefined", plugin_config(e2e_bundle, path="e2e/maybe")),
        Listener("expensive", plugin_config(e2e_bundle, path="e2e/expensive", status_on_error=500)),
        Listener("fail-open", plugin_config(e2e_bundle, path="e2e/maybe", fail_open=True)),
        Listener("dry-run", plugin_config(e2e_bundle, path="e2e/decision", dry_run=True)),
        Listener("timed", plugin_config(e2e_bundle, path="e2e/decision", timing_stats=True)),
        Listener("echo", plugin_config(e2e_bundle, path="e2e/echo")),
        Listener("plain", plugin_config(plain, path="e2e/decision")),
        Listener("not-gzip", plugin_config(b"not a bundle")),
        Listener("bad-rego", plugin_config(bad_rego, path="bad/allow")),
        Listener("other-regorus", plugin_config(other_regorus, path="e2e/decision")),
        Listener("mtls", plugin_config(e2e_bundle, path="e2e/spiffe"), tls=pki.server_tls()),
        Listener("mtls-echo", plugin_config(e2e_bundle, path="e2e/echo"), tls=pki.server_tls()),
        Listener("jwt-echo", plugin_config(e2e_bundle, path="e2e/echo"), jwt=jwt_issuer),
        Listener("cached", plugin_config(istio, path="istio/authz/allow")),
        Listener("uncached", plugin_config(istio, path="istio/authz/allow", decision_cache_bytes=0)),
    ]
    (workdir / "main").mkdir()
    proxy = Envoy(listeners, upstream.port, workdir / "main").start()
    yield proxy
    proxy.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Prints the Envoy log of a failed test: the first thing anyone debugging asks for."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        proxy = item.funcargs.get("envoy") or getattr(item, "envoy_under_test", None)
        if proxy is not None:
            report.sections.append(("Envoy log (last 200 lines)", "\n".join(proxy.log().splitlines()[-200:])))
