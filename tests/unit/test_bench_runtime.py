"""The arithmetic of `legion bench runtime` (the runs themselves are integration work: see the bench)."""

from __future__ import annotations

import json

from legion_core.bench.runtime import (
    LOG_KEYS,
    PERIOD_S,
    _cycle_stats,
    _gap_stats,
    _near_stalls,
    _read_latency_log,
    _stall_matches,
    _stats_ms,
)


def test_gap_stats_longest_gap_and_late_commands():
    t = [i * PERIOD_S for i in range(100)]
    r = _gap_stats(t, PERIOD_S)
    assert r["gaps_over_1.5_periods"] == 0 and abs(r["longest_gap_ms"] - 10.0) < 1e-6
    late = t[:50] + [x + 0.012 for x in t[50:]]  # one gap of 22 ms
    r = _gap_stats(late, PERIOD_S)
    assert r["gaps_over_1.5_periods"] == 1 and abs(r["longest_gap_ms"] - 22.0) < 1e-6
    assert _gap_stats([0.0], PERIOD_S)["longest_gap_ms"] is None


def test_cycle_stats_counts_the_timer_periods_skipped():
    """Missed cycles come from sim2real's timer record: periods rcl skipped, not gaps between messages (a
    command 6 ms late leaves a 16 ms gap but misses no cycle)."""
    ticks = [(i * PERIOD_S, 0.0002, 0) for i in range(98)] + [(0.98, 0.006, 0), (1.01, 0.0003, 2)]
    r = _cycle_stats(ticks)
    assert r["timer_ticks"] == 100 and r["missed_cycles"] == 2
    assert abs(r["tick_late_ms"]["max"] - 6.0) < 1e-9 and abs(r["tick_late_ms"]["median"] - 0.2) < 1e-9
    assert _cycle_stats([])["missed_cycles"] is None


def test_latency_log_and_stats(tmp_path):
    p = tmp_path / "lat.json"
    p.write_text(json.dumps({"stamp_to_command_s": [0.001, 0.002, 0.003], "command_times_s": [1.0, 1.01]}))
    log = _read_latency_log(p)
    s = _stats_ms(log["stamp_to_command_s"])
    assert s["n"] == 3 and abs(s["median"] - 2.0) < 1e-9 and abs(s["max"] - 3.0) < 1e-9
    missing = _read_latency_log(tmp_path / "none.json")
    assert missing == {k: [] for k in LOG_KEYS}
    assert _stats_ms([])["n"] == 0


def test_events_are_matched_to_machine_stalls():
    """An event (slow step, late tick) counts as near a machine stall when the wake-up probe woke > 1 ms
    late within 50 ms of it; the chance level is the share of the window near a stall."""
    wake = [(0.0, 0.0001), (0.01, 0.003), (0.02, 0.0001), (1.0, 0.002)]
    c = _near_stalls([0.04, 0.5, 1.02], wake, window_s=2.0)
    assert (c["events"], c["near_stall"], c["machine_stalls"]) == (3, 2, 2)
    assert abs(c["near_stall_by_chance"] - 3 * 0.2 / 2.0) < 1e-9  # two stalls, 0.1 s around each
    assert _near_stalls([0.04], [], window_s=2.0)["near_stall"] == 0


def test_late_ticks_and_slow_steps_are_placed_where_they_should_have_started():
    """A tick that ran 59 ms late belongs to the stall that began when it was due (the probe records its
    scheduled time too); a slow step starts at its sensor stamp."""
    wake = [(10.000, 0.053)]
    ticks = [(10.059, 0.059, 5), (11.0, 0.0002, 0)]
    m = _stall_matches([0.0025, 0.001], [10.0125, 12.0], ticks, wake, window_s=120.0)
    assert m["late_ticks_near_machine_stall"]["near_stall"] == 1
    assert m["slow_steps_near_machine_stall"]["events"] == 1
    assert m["slow_steps_near_machine_stall"]["near_stall"] == 1
