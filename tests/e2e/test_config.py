"""Bad plugin configurations: Envoy rejects them (the plugin's configure fails, which NACKs
an xDS update or stops a static config) and its log names the problem."""

import pytest

from harness import Envoy, Listener, temp_dir

BAD_CONFIGS = [
    ('{"bundle":{"inline":""},"dryrun":true}', "unknown field `dryrun`"),
    ('{"bundle":{"inline":""},"dry_run":"yes"}', "at `dry_run`: invalid type: string"),
    ('{"bundle":{"inline":""},"status_on_error":99}', "key `status_on_error`: 99 is not an HTTP status"),
    ('{"path":"envoy/authz-allow","bundle":{"inline":""}}', "key `path`"),
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
