"""The CI-sized soak: a minute at 50 requests per second through 2 workers, a bundle swap
every 15 s (soak.py; `make soak` runs it for 30 minutes). Zero answers other than the policy's,
zero errors, panics or traps; every swapped revision reached requests."""

from soak import Soak, summary


def test_a_minute_of_load_with_bundle_swaps_answers_only_decisions():
    result = Soak(seconds=60, rate=50, swap_seconds=15, sample_seconds=5, out=None).run()
    print("\n" + summary(result))
    assert result["wrong"] == 0, result["wrong_examples"]
    assert result["errors"] == 0, result["error_examples"]
    assert result["panics"] == 0 and result["traps"] == 0 and result["vm_reloads"] == 0
    assert set(result["by_kind"]) == {"allowed", "denied", "body-allowed", "body-denied", "jwt-allowed",
                                      "jwt-other-subject", "jwt-forged"}
    assert result["revisions_seen"] >= result["revisions_served"] - 1 >= 3
