"""The mesh in a box (mesh.py, what `make demo` runs): east-west calls between three workloads
with real Envoy sidecars and real mTLS, decided by the zero-trust bundle served by nginx.

Identities come from the TLS handshake only: a caller without a client certificate, with one
from another CA, or with an expired one is refused by the handshake, before any filter runs;
a new bundle revision published on the server decides the next calls."""

import re
import ssl

import pytest

from mesh import REVISION_1_CALLS, Ca, Mesh, spiffe, zero_trust_bundle

DECISION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("mesh")
    box = Mesh(workdir, zero_trust_bundle(workdir, "zero-trust-1"))
    box.bundle_dir = workdir
    try:
        box.start()
        box.wait_for_revision("zero-trust-1")
        yield box
    finally:
        box.stop()


@pytest.mark.parametrize("caller,callee,method,path,status", REVISION_1_CALLS)
def test_east_west_calls_are_decided_by_mtls_identities(mesh, caller, callee, method, path, status):
    call = mesh.call(caller, callee, method, path)
    assert call.status == status
    # The callee's sidecar saw the caller's SPIFFE id in the handshake, its own as local.
    assert call.log["caller"] == spiffe(caller)
    assert call.log["callee"] == spiffe(callee)
    assert (call.log["method"], call.log["path"], call.log["status"]) == (method, path, status)
    assert DECISION_ID.fullmatch(call.log["decision_id"])


@pytest.fixture
def other_ca(tmp_path):
    return Ca(tmp_path / "other-ca", "another CA")


def refused(mesh, context):
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        mesh.direct("orders", context, "/orders/42")


def test_a_caller_without_a_client_certificate_is_refused_by_the_handshake(mesh):
    refused(mesh, mesh.ca.client_context())


def test_a_certificate_from_another_ca_is_refused_by_the_handshake(mesh, other_ca):
    cert, key = other_ca.issue("frontend", spiffe("frontend"))
    refused(mesh, mesh.ca.client_context(cert, key))


def test_an_expired_certificate_is_refused_by_the_handshake(mesh):
    cert, key = mesh.ca.issue("frontend-expired", spiffe("frontend"), start="20200101000000Z", end="20200102000000Z")
    refused(mesh, mesh.ca.client_context(cert, key))


def test_a_valid_certificate_straight_to_the_sidecar_is_decided_by_the_filter(mesh):
    """The control for the three refusals above: the same call with a good certificate."""
    cert, key = mesh.workloads["frontend"].cert, mesh.workloads["frontend"].key
    assert mesh.direct("orders", mesh.ca.client_context(cert, key), "/orders/42") == 200
    assert mesh.direct("payments", mesh.ca.client_context(cert, key), "/payments") == 403


def test_a_new_revision_decides_the_next_calls(mesh):
    assert mesh.call("orders", "payments", "GET", "/payments/7").status == 403
    mesh.publish(zero_trust_bundle(mesh.bundle_dir, "zero-trust-2", allow_orders_to_get_payments=True))
    mesh.wait_for_revision("zero-trust-2")
    assert mesh.call("orders", "payments", "GET", "/payments/7").status == 200
    assert mesh.call("frontend", "payments", "POST", "/payments").status == 403
