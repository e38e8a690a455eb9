"""sim2real.decimation.StampGrid: which joint-state stamps real2sim_node turns into observations. The grid is
fixed in stamp time, so the same stamps give the same picks whatever the delivery timing (replay
determinism)."""

from __future__ import annotations

import numpy as np
import pytest

from sim2real.decimation import StampGrid

NOW = 5000.0  # receiver clock [s]; ignored for stamped messages
# Stamps are kept 1 ms clear of the slot boundaries: floor(t / period) at an exact multiple is up to
# floating-point rounding (1000.0 // 0.1 == 9999.0), which the grid does not promise anything about.
T = 1000.001


def picks(grid: StampGrid, stamps, now=NOW) -> list[float]:
    return [t for t in stamps if grid.accept(t, now)]


def test_one_stamp_per_slot_passes_the_first_in_each():
    g = StampGrid(50.0)  # 20 ms slots
    stamps = [T + d for d in (0.000, 0.005, 0.010, 0.015, 0.020, 0.025, 0.035, 0.040)]
    assert picks(g, stamps) == [T, T + 0.020, T + 0.040]


def test_a_200_hz_stream_gives_exactly_50_hz():
    g = StampGrid(50.0)
    stamps = 1000.0 + 0.0025 + np.arange(800) * 0.005  # 4 s at 200 Hz, off the slot boundaries
    kept = picks(g, stamps)
    assert len(kept) == 200
    assert np.allclose(np.diff(kept), 0.02)


def test_jitter_within_a_slot_neither_adds_nor_drops_an_observation():
    g, ref = StampGrid(50.0), StampGrid(50.0)
    rng = np.random.default_rng(0)
    clean = 1000.0 + 0.0025 + np.arange(400) * 0.005
    jittered = clean + rng.uniform(-0.002, 0.002, clean.size)  # never crosses a slot boundary
    assert len(picks(g, jittered)) == len(picks(ref, clean)) == 100


def test_the_same_stamps_give_the_same_picks_whatever_the_receive_time():
    stamps = 1000.0 + np.cumsum(np.random.default_rng(1).uniform(0.001, 0.009, 500))
    a = picks(StampGrid(50.0), stamps, now=NOW)
    late = StampGrid(50.0)  # the same bag delivered slowly and unevenly
    b = [t for i, t in enumerate(stamps) if late.accept(t, NOW + 3.7 * i)]
    assert a == b and len(a) > 50


def test_a_gap_passes_the_first_stamp_after_it_once():
    g = StampGrid(50.0)
    assert picks(g, [T, T + 0.005]) == [T]
    # 0.5 s without joint states (driver hiccup): the first one after it passes, the next in its slot not.
    assert picks(g, [T + 0.502, T + 0.507, T + 0.520]) == [T + 0.502, T + 0.520]


def test_a_stamp_before_the_previous_one_passes_only_in_another_slot():
    g = StampGrid(50.0)
    assert g.accept(T + 0.030, NOW)
    assert not g.accept(T + 0.025, NOW), "earlier stamp in the same slot"
    assert g.accept(T - 1.0, NOW), "a stamp from another slot (driver restarted, bag looped) is used"
    assert not g.accept(T - 0.995, NOW)
    assert g.accept(T + 0.030, NOW), "back in a slot other than the last accepted one"


def test_unstamped_messages_fall_back_to_the_receive_clock():
    g = StampGrid(50.0)
    assert g.accept(0.0, 2000.001)
    assert not g.accept(0.0, 2000.015)
    assert g.accept(-1.0, 2000.021)
    assert g.slot(0.0, 2000.021) == g.slot(2000.021, 0.0)


def test_slot_boundaries_and_rate_changes():
    g = StampGrid(10.0)  # 100 ms slots
    assert g.period_s == pytest.approx(0.1)
    assert picks(g, [T, T + 0.05, T + 0.098, T + 0.1, T + 0.15]) == [T, T + 0.1]
    # A new rate is a new grid (real2sim_node reads rate_hz at start): 20 ms slots pass 5x as many.
    fast = StampGrid(50.0)
    stamps = 1000.0 + 0.001 + np.arange(100) * 0.005
    assert len(picks(StampGrid(10.0), stamps)) == 5
    assert len(picks(fast, stamps)) == 25
    # A rate above the stream's passes every message.
    assert len(picks(StampGrid(1000.0), stamps)) == 100


@pytest.mark.parametrize("rate", [0.0, -50.0, float("nan"), float("inf")])
def test_a_nonsense_rate_is_refused(rate):
    with pytest.raises(ValueError, match="rate_hz"):
        StampGrid(rate)
