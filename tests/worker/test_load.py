"""Load patterns: when each command of a burst, a steady stream or a wave is due."""

from __future__ import annotations

import pytest

from taskiq_fleet_worker.load import send_offsets_s


def test_a_burst_sends_everything_at_once() -> None:
    assert list(send_offsets_s(count=4, pattern="burst", rate=0)) == [0.0] * 4


def test_a_steady_load_is_evenly_spaced() -> None:
    assert list(send_offsets_s(count=4, pattern="steady", rate=2)) == [0.0, 0.5, 1.0, 1.5]


def test_a_wave_starts_slow_peaks_in_the_middle_and_averages_the_rate() -> None:
    offsets = list(send_offsets_s(count=200, pattern="wave", rate=20, period_s=10))

    assert len(offsets) == 200
    assert offsets == sorted(offsets)
    assert offsets[-1] == pytest.approx(10, abs=0.5)
    first_quarter = sum(1 for t in offsets if t < 2.5)
    middle_half = sum(1 for t in offsets if 2.5 <= t < 7.5)
    assert middle_half > 3 * first_quarter


def test_a_paced_pattern_needs_a_rate() -> None:
    with pytest.raises(ValueError, match="--rate must be above 0 for the steady pattern"):
        list(send_offsets_s(count=1, pattern="steady", rate=0))
