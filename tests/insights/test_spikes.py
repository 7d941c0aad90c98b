"""Spike detection with a robust z-score (median + MAD)."""
import random

from helpdesk.insights import spikes


def test_constructed_spike_is_flagged_with_its_numbers():
    result = spikes.evaluate("delivery", [10, 12, 9, 11, 10, 13, 9, 11, 30])
    assert result.flagged
    assert result.median == 10.5
    assert result.z >= spikes.Z_THRESHOLD
    assert result.baseline == [10, 12, 9, 11, 10, 13, 9, 11]


def test_flat_noisy_series_is_not_flagged():
    rng = random.Random(3)
    for _ in range(50):
        series = [max(0, int(rng.gauss(20, 3))) for _ in range(9)]
        assert not spikes.evaluate("login", series).flagged, series


def test_earlier_spike_in_baseline_does_not_hide_the_next():
    # A mean/stddev rule would be inflated by the 60; the median/MAD rule is not.
    assert spikes.evaluate("x", [10, 11, 60, 9, 10, 12, 10, 11, 35]).flagged


def test_small_counts_are_never_spikes():
    result = spikes.evaluate("rare", [0, 0, 0, 0, 0, 0, 0, 0, 4])
    assert not result.flagged
    assert "4 < 5" in result.reason


def test_short_baseline_is_not_judged():
    assert not spikes.evaluate("new", [1, 50]).flagged


def test_detect_spikes_orders_flagged_first_and_explains():
    out = spikes.detect_spikes({"a": [5] * 8 + [6], "b": [5, 6, 5, 4, 6, 5, 5, 6, 25]})
    assert [s.key for s in out] == ["b", "a"]
    assert out[0].flagged and not out[1].flagged
    assert "中央値" in spikes.explanation("ja") and "median" in spikes.explanation("en")
