"""The arithmetic of `legion bench runtime` (the runs themselves are integration work: see the bench)."""

from __future__ import annotations

import json

from legion_core.bench_runtime import PERIOD_S, _gap_stats, _read_latency_log, _stats_ms


def test_gap_stats_counts_missed_100hz_cycles():
    t = [i * PERIOD_S for i in range(100)]
    assert _gap_stats(t, PERIOD_S)["missed_cycles"] == 0
    late = t[:50] + [x + 0.012 for x in t[50:]]  # one gap of 22 ms: 2 periods rounded -> 1 cycle missed
    r = _gap_stats(late, PERIOD_S)
    assert r["missed_cycles"] == 1 and abs(r["longest_gap_ms"] - 22.0) < 1e-6
    assert r["gaps_over_1.5_periods"] == 1
    assert _gap_stats([0.0], PERIOD_S)["missed_cycles"] is None


def test_latency_log_and_stats(tmp_path):
    p = tmp_path / "lat.json"
    p.write_text(json.dumps({"stamp_to_command_s": [0.001, 0.002, 0.003], "command_times_s": [1.0, 1.01]}))
    log = _read_latency_log(p)
    s = _stats_ms(log["stamp_to_command_s"])
    assert s["n"] == 3 and abs(s["median"] - 2.0) < 1e-9 and abs(s["max"] - 3.0) < 1e-9
    missing = _read_latency_log(tmp_path / "none.json")
    assert missing == {"stamp_to_command_s": [], "stamp_to_command_sent_at_s": [], "command_times_s": []}
    assert _stats_ms([])["n"] == 0
