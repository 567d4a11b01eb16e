"""Bad plugin configurations: Envoy rejects them (the plugin's configure fails, which NACKs
an xDS update or stops a static config) and its log names the problem."""

import pytest

from harness import Envoy, Listener, build_bundle, plugin_config, request, temp_dir

BAD_CONFIGS = [
    ('{"bundle":{"inline":""},"dryrun":true}', "unknown field `dryrun`"),
    ('{"bundle":{"inline":""},"dry_run":"yes"}', "at `dry_run`: invalid type: string"),
    ('{"bundle":{"inline":""},"status_on_error":99}', "key `status_on_error`: 99 is not an HTTP status"),
    ('{"path":"data.envoy[authz].allow","bundle":{"inline":""}}',
     "column 11: a bracketed segment must be a double-quoted string"),
    ('{"bundle":{}}', "key `bundle`: needs `inline`"),
    ('{"bundle":{"inline":"not base64!"}}', "key `bundle.inline`: not base64"),
    ("not json", "plugin configuration is not valid JSON"),
]


@pytest.mark.parametrize("config,message", BAD_CONFIGS, ids=[m for _, m in BAD_CONFIGS])
def test_validate_rejects_invalid_configuration(upstream, config, message):
    proxy = Envoy([Listener("bad", config)], upstream.port, temp_dir("zerohop-badconfig-"))
    result = proxy.validation()
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert "Unable to create Wasm plugin bad" in result.stdout + result.stderr


def test_envoy_does_not_start_with_invalid_configuration(upstream):
    proxy = Envoy([Listener("bad", BAD_CONFIGS[0][0])], upstream.port, temp_dir("zerohop-badconfig-"))
    proxy.start(wait=False)
    try:
        assert proxy.wait_exit(timeout=60) != 0
        assert BAD_CONFIGS[0][1] in proxy.log()
    finally:
        proxy.stop()


STYRA_POLICY = b"""package policy["com.styra.envoy.ingress"].rules

rules := {"allowed": input.attributes.request.http.method == "GET"}
"""


def test_a_styra_das_path_with_a_quoted_segment_names_the_decision(upstream, tmp_path):
    """Styra DAS writes the decision path as a reference with a quoted segment; OPA-Envoy's
    slash form with a dotted segment names the same rule."""
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "rules.rego").write_bytes(STYRA_POLICY)
    reference = 'data.policy["com.styra.envoy.ingress"].rules.rules'
    bundle = build_bundle(tmp_path / "p", tmp_path / "b.tar.gz", [reference])
    listeners = [
        Listener("reference", plugin_config(bundle, path=reference)),
        Listener("slashes", plugin_config(bundle, path="policy/com.styra.envoy.ingress/rules/rules")),
    ]
    proxy = Envoy(listeners, upstream.port, temp_dir("zerohop-quoted-path-")).start()
    try:
        for listener in listeners:
            assert request(listener.port, "/").status == 200
            assert request(listener.port, "/", method="DELETE").status == 403
        assert "(precompiled)" in proxy.log()
    finally:
        proxy.stop()
