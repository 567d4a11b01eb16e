"""The native corpus test (`filter/tests/corpus.rs`) runs what `testdata/corpus/native.json`
records: it must hold every request of the corpus, so a request added here reaches it too."""

import json

from native_corpus import NATIVE, request_entries

REQUEST_KEYS = ("case", "policy", "rule", "settings", "index", "request", "opa_envoy_status", "opa_envoy_decision")


def test_the_native_corpus_holds_every_request_of_the_corpus():
    recorded = [{k: e[k] for k in REQUEST_KEYS} for e in json.loads(NATIVE.read_text())]
    current = [{k: e[k] for k in REQUEST_KEYS} for e in request_entries()]
    assert recorded == current, "run `make corpus-native`"
    assert all(e["expected"] is not None or e["opa_envoy_status"] != 200 for e in json.loads(NATIVE.read_text()))
