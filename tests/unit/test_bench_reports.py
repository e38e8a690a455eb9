"""The benchmarks' JSON keeps the keys of the published results (docs/results/benchmarks/*.json, which the
docs and the re-measurements compare against) now that their figures come from legion_core/base/stats.py;
short runs only, the full measurements are `legion bench ...`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results" / "benchmarks"


def _published(name: str) -> dict:
    return json.loads((RESULTS / f"bench_{name}.json").read_text())


def test_sim2real_bench_keys_and_order_of_figures():
    from legion_core.bench.sim2real import run_bench

    rep = run_bench(n_calls=60, warmup=5)
    pub = _published("sim2real")
    assert list(rep) == list(pub)
    for part in ("real2sim", "sim2real", "total"):
        s = rep[part]
        assert list(s) == list(pub[part]) == ["median_us", "p99_us", "max_us"]
        assert 0 < s["median_us"] <= s["p99_us"] <= s["max_us"]
    assert rep["meets_target"] == (rep["total"]["median_us"] < 500.0)


def test_sim2real_bench_p99_is_a_measured_call(monkeypatch):
    """p99 by nearest rank (one call that was measured), the median the middle of an even count: with
    real2sim calls of 1..10 ns, p99 is the 10 ns call (linear interpolation would give 9.91) and the median
    5.5 ns."""
    from legion_core.bench import sim2real as S

    warmup, n = 2, 10

    def readings():  # per control step: t0, t1 = t0 + real2sim, t2 = t1 + 1 ns (sim2real)
        t = 0
        for i in range(warmup + n):
            r2s = max(1, i - warmup + 1)
            yield from (t, t + r2s, t + r2s + 1)
            t += 1000

    it = readings()
    monkeypatch.setattr(S.time, "perf_counter_ns", lambda: next(it))
    rep = S.run_bench(n_calls=n, warmup=warmup)
    assert rep["real2sim"] == {"median_us": 5.5e-3, "p99_us": 10e-3, "max_us": 10e-3}
    assert rep["sim2real"] == {"median_us": 1e-3, "p99_us": 1e-3, "max_us": 1e-3}
    assert rep["total"] == {"median_us": 6.5e-3, "p99_us": 11e-3, "max_us": 11e-3}


def test_inference_figures_keys():
    from legion_core.bench.inference import _stats_us

    s = _stats_us(np.array([1000, 2000, 3000, 4000], np.int64))
    pub = _published("inference")["ours_numpy_z_mean"]
    assert list(s) == list(pub)
    assert s["median_us"] == 2.5 and s["max_us"] == 4.0 and s["mean_us"] == 2.5 and s["calls"] == 4
    assert s["p99_us"] == pytest.approx(3.97)


def test_longhorizon_chain_report():
    from legion_core.bench.longhorizon import chain_report
    from legion_core.tools.longhorizon import ChainResult

    cmd = "open the drawer, then press the button"
    ok1 = ChainResult(0, cmd, success=True, state="succeeded", plan=["a", "b"], step_durations_s=[10.0, 20.0])
    ok2 = ChainResult(1, cmd, success=True, state="succeeded", plan=["a", "b"], step_durations_s=[12.0, 30.0])
    bad = ChainResult(2, cmd, state="failed", message="timed out", plan=["a", "b"], failed_skill="b")
    none = ChainResult(3, cmd, state="no_result", message="twin reset failed")
    rep = chain_report([ok1, ok2, bad, none], "models/x", "drawer-button", cmd, 1, 0)
    assert list(rep) == list(_published("longhorizon"))
    assert rep["successes"] == 2 and rep["success_rate"] == 0.5 and rep["plan"] == ["a", "b"]
    assert rep["chain_time_s"] == {"median": 36.0, "max": 42.0}
    assert rep["failures_by_skill"] == {
        "b": ["scene 2: timed out"],
        "no_result": ["scene 3: twin reset failed"],
    }
    empty = chain_report([bad], "models/x", "drawer-button", cmd, 1, 0)
    assert math.isnan(empty["chain_time_s"]["median"]) and math.isnan(empty["chain_time_s"]["max"])
    assert empty["success_rate"] == 0.0
    assert chain_report([], "models/x", "s", cmd, 1, 0)["success_rate"] == 0.0


def test_runtime_and_faults_summaries_keep_their_keys():
    from legion_core.bench.fault_rig import summarise
    from legion_core.bench.runtime import _stats_ms

    pub = _published("runtime")
    assert list(_stats_ms([0.001, 0.003])) == ["n", "median", "p99", "max"]
    assert _stats_ms([0.001, 0.003])["median"] == pytest.approx(2.0)
    assert list(pub["composed"]["machine_wakeup_late_ms"]) == ["n", "median", "p99", "max"]
    assert list(summarise([1.0])) == ["median", "max", "n", "missing"]


def test_perception_latency_report_counts_only_the_measured_frames():
    """Frames of the warm-up (stamps not sent in the measured run) do not count; a sent frame the node never
    used is dropped; latencies in ms."""
    from legion_core.bench.perception import latency_report

    sent = [10.0, 10.1, 10.2, 10.3]
    log = [(9.9, 0.5), (10.0, 0.004), (10.1, 0.006), (10.3, 0.010)]  # 9.9: warm-up; 10.2 never used
    rep = latency_report(sent, log, 30.0, 640, 480, "1", 0)
    assert rep["frames_sent"] == 4 and rep["frames_used"] == 3
    assert rep["dropped_share"] == pytest.approx(0.25)
    assert rep["latency_ms"]["median"] == pytest.approx(6.0) and rep["latency_ms"]["max"] == pytest.approx(
        10.0
    )
