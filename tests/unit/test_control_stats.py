"""sim2real.control_stats.ControlStats: sim2real_node's missed/late command cycles, stamp -> command latency,
its /diagnostics values and the latency log (the JSON `legion bench runtime` and the fault drills read)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sim2real.control_stats import ControlStats, latency_summary

PERIOD_NS = 10_000_000  # 100 Hz
T0_NS = 1_000_000_000_000


def run_ticks(st: ControlStats, schedule):
    """Command cycles: (late [ns] after its slot, slots skipped before it)."""
    slot = T0_NS
    for late_ns, skipped in schedule:
        slot += skipped * PERIOD_NS  # the stream runs the newest due slot
        st.on_cycle((slot + late_ns) * 1e-9, late_ns * 1e-9, skipped)
        slot += PERIOD_NS


def test_no_cycle_is_counted_before_the_first():
    st = ControlStats()
    assert st.cycles_missed == 0 and len(st.tick_late_recent) == 0
    assert st.diagnostics()["command_tick_late_ms"] == "no ticks yet"


def test_skipped_slots_and_lateness_are_counted_on_the_streams_grid():
    st = ControlStats(keep_log=True)
    run_ticks(
        st, [(0, 0), (200_000, 0), (3_000_000, 0), (1_000_000, 2), (25_000_000, 0), (0, 1), (100_000, 0)]
    )
    assert st.cycles_missed == 3
    assert np.allclose(list(st.tick_late_recent), [0.0, 0.2e-3, 3e-3, 1e-3, 25e-3, 0.0, 0.1e-3])
    log = st.latency_log()
    assert log["tick_skipped"] == [0, 0, 0, 2, 0, 1, 0] and log["command_cycles_missed"] == 3
    assert np.allclose(log["tick_late_s"], list(st.tick_late_recent))
    assert log["tick_time_s"][1] == pytest.approx((T0_NS + PERIOD_NS + 200_000) * 1e-9)


def test_a_late_tick_is_jitter_not_a_missed_cycle():
    st = ControlStats()
    run_ticks(st, [(8_000_000, 0)] * 20)  # every cycle 8 ms late (within its period), none skipped
    assert st.cycles_missed == 0
    assert st.diagnostics()["command_tick_late_ms"].startswith(
        "p50 8.00 p99 8.00 max 8.00 over the last 20 ticks"
    )


def test_latency_and_commands():
    st = ControlStats(keep_log=True)
    for i in range(5):
        st.on_command_sent(100.0 + 0.01 * i)
    st.on_new_step(100.0015, 100.0)
    st.on_new_step(100.0130, 100.0100)
    assert st.commands_sent == 5
    assert np.allclose(list(st.latency_recent), [1.5e-3, 3.0e-3])
    log = st.latency_log()
    assert np.allclose(log["stamp_to_command_s"], [1.5e-3, 3.0e-3])
    assert np.allclose(log["stamp_to_command_sent_at_s"], [100.0015, 100.0130])
    assert log["command_times_s"] == [100.0 + 0.01 * i for i in range(5)]


def test_diagnostics_keys_and_format():
    st = ControlStats()
    d = st.diagnostics()
    assert list(d) == ["stamp_to_command_ms", "command_cycles_missed", "command_tick_late_ms",
                       "command_cycles_on_segment"]  # fmt: skip
    assert d == {"stamp_to_command_ms": "no steps yet", "command_cycles_missed": 0,
                 "command_tick_late_ms": "no ticks yet", "command_cycles_on_segment": 0}  # fmt: skip
    for lat_ms in range(1, 101):  # 1..100 ms
        st.on_new_step(10.0 + lat_ms * 1e-3, 10.0)
    # numpy's linear percentiles: p50 of 1..100 is 50.5, p99 is 99.01.
    assert st.diagnostics()["stamp_to_command_ms"] == "p50 50.50 p99 99.01 max 100.00 over the last 100 steps"


def test_diagnostics_summarise_only_the_most_recent_samples():
    st = ControlStats(keep_log=True, recent=10)
    for i in range(25):
        st.on_new_step(1.0 + (i + 1) * 1e-3, 1.0)
    assert "over the last 10 steps" in st.diagnostics()["stamp_to_command_ms"]
    assert "max 25.00" in st.diagnostics()["stamp_to_command_ms"]
    assert len(st.latency_log()["stamp_to_command_s"]) == 25, "the log keeps every sample"


def test_without_a_log_nothing_grows_and_no_log_is_written():
    st = ControlStats(keep_log=False, recent=10)
    run_ticks(st, [(0, 0)] * 50)
    for i in range(50):
        st.on_new_step(1.0 + 1e-3, 1.0)
        st.on_command_sent(1.0 + i)
    assert len(st.latency_recent) == 10 and len(st.tick_late_recent) == 10 and st.commands_sent == 50
    with pytest.raises(ValueError, match="keep_log"):
        st.latency_log()


def test_the_latency_log_is_json_with_the_keys_the_benchmarks_read():
    st = ControlStats(keep_log=True)
    run_ticks(st, [(0, 0), (1000, 1)])
    st.on_cycle(5.001, 0.0, 0, on_segment=True)
    st.on_command_sent(5.0)
    st.on_new_step(5.002, 5.0)
    rec = json.loads(json.dumps(st.latency_log()))
    assert list(rec) == [
        "stamp_to_command_s", "stamp_to_command_sent_at_s", "command_times_s", "command_cycles_missed",
        "command_cycles_on_segment", "tick_time_s", "tick_late_s", "tick_skipped",
    ]  # fmt: skip
    assert (
        rec["command_cycles_missed"] == sum(rec["tick_skipped"]) == 1
        and rec["command_cycles_on_segment"] == 1
    )


def test_latency_summary_line():
    assert latency_summary([], "ticks") == "no ticks yet"
    assert latency_summary([0.001, 0.002, 0.003]) == "p50 2.00 p99 2.98 max 3.00 over the last 3 steps"
