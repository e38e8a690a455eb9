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


def test_missed_cycles_are_split_by_the_machines_stalls():
    """A lost slot counts against the runtime only where the wake-up probe saw no stall of the whole machine
    within 50 ms of the cycle's due time."""
    from legion_core.bench.runtime import _missed_outside_stalls

    wake = [(5.000, 0.004), (8.0, 0.0001)]  # one stall of the machine at t = 5 s
    ticks = [(5.010, 0.006, 2), (7.003, 0.003, 1), (9.0, 0.0001, 0)]
    assert _missed_outside_stalls(ticks, wake) == 1  # the 2 slots at 5 s were the machine's
    assert _missed_outside_stalls(ticks, []) == 3


def test_targets_are_judged_on_the_modes_measured():
    from legion_core.bench.runtime import TARGETS, _targets_met

    def mode(median, p99, missed):
        return {"stamp_to_command_sent_ms": {"n": 100, "median": median, "p99": p99, "max": p99},
                "sent": {"timer_ticks": 1000, "missed_cycles_outside_machine_stalls": missed}}  # fmt: skip

    ok = {"composed": {**mode(1.0, 1.9, 0), "vs_floor": {"median": 1.5}}, "cross_process": mode(2.0, 3.9, 0),
          "composed_500hz": mode(1.0, 1.9, 0)}  # fmt: skip
    met = _targets_met(ok)
    assert met and all(met.values())
    assert set(met) == {"composed_p99", "composed_median_vs_floor", "cross_process_p99",
                        "composed_no_missed_cycle", "cross_process_no_missed_cycle",
                        "composed_500hz_no_missed_cycle"}  # fmt: skip
    bad = {"composed": {**mode(1.0, 2.1, 2), "vs_floor": {"median": 2.5}}, "cross_process": mode(2.0, 4.1, 1)}
    met = _targets_met(bad)
    assert not any(met.values())
    assert TARGETS["composed_p99_ms"] == 2.0 and TARGETS["cross_process_p99_ms"] == 4.0


def test_profile_summary_shares_of_wall_time(tmp_path):
    from legion_core.bench.runtime import PROFILE_RATE_HZ, profile_summary

    raw = tmp_path / "p.txt"
    raw.write_text(
        "thread (0x7f00): MainThread;spin (rclpy/executors.py:10);rebuild (rclpy/executors.py:20) 300\n"
        "thread (0x7f00): MainThread;spin (rclpy/executors.py:10);cb (legion_ros/x.py:5) 100\n"
        "thread (0x7f01): legion-control;_loop (legion_core/ros/control.py:9);cb (legion_ros/x.py:5) 50\n"
    )
    s = profile_summary(raw, seconds=1.0)
    assert list(s) == ["MainThread", "legion-control"]
    assert s["MainThread"]["busy_percent"] == 100.0 * 400 / PROFILE_RATE_HZ
    assert s["MainThread"]["top_percent"]["spin (rclpy/executors.py)"] == 100.0 * 400 / PROFILE_RATE_HZ
    assert s["legion-control"]["top_percent"]["cb (legion_ros/x.py)"] == 100.0 * 50 / PROFILE_RATE_HZ
