"""The one statistics helper of the benchmarks, the bag replay and the runtime's diagnostics
(legion_core/base/stats.py): known figures, empty input, missing (None/NaN) values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from legion_core.base.stats import finite, median, percentile, ratio, summarize


def test_known_figures_linear():
    v = list(range(1, 101))  # 1..100
    s = summarize(v, ("n", "median", "p90", "p99", "max", "mean", "min"))
    assert list(s) == ["n", "median", "p90", "p99", "max", "mean", "min"]  # the order asked for
    assert s["n"] == 100 and s["median"] == 50.5 and s["max"] == 100.0 and s["min"] == 1.0
    assert s["mean"] == 50.5
    # numpy's linear interpolation: rank 0.9 * 99 = 89.1 -> 90 + 0.1 * (91 - 90)
    assert s["p90"] == pytest.approx(90.1) and s["p99"] == pytest.approx(99.01)
    assert all(type(x) is float for k, x in s.items() if k != "n") and type(s["n"]) is int


def test_nearest_rank_is_a_measured_value():
    v = [5.0, 1.0, 4.0, 2.0, 3.0, 6.0]
    s = summarize(v, ("median", "p99", "max", "n"), method="nearest_rank")
    # smallest value with at least p % at or below it: p50 of 6 values is the 3rd, p99 the 6th
    assert s == {"median": 3.0, "p99": 6.0, "max": 6.0, "n": 6}
    assert percentile(v, 50, method="nearest_rank") == 3.0
    assert percentile(v, 0, method="nearest_rank") == 1.0
    assert percentile(list(range(1, 101)), 99, method="nearest_rank") == 99.0
    # the linear median of an even count is the mean of the two middle values
    assert summarize(v, ("median",))["median"] == 3.5 == median(v)


def test_scale_suffix_digits():
    s = summarize([0.001, 0.002, 0.004], ("median", "max", "n"), scale=1e3, suffix="_ms", digits=1)
    assert s == {"median_ms": 2.0, "max_ms": 4.0, "n": 3}
    r = summarize([1 / 3, 2 / 3], ("mean", "p99"), digits=4)
    assert r["mean"] == 0.5 and r["p99"] == round(float(np.percentile([1 / 3, 2 / 3], 99)), 4)


def test_empty_input():
    assert summarize([]) == {"n": 0, "median": None, "p99": None, "max": None}
    assert summarize([], ("median", "max", "n", "missing"), empty=math.nan)["n"] == 0
    assert math.isnan(summarize([], ("median",), empty=math.nan)["median"])
    assert percentile([], 50) is None and median([]) is None
    assert summarize(np.zeros(0), ("n", "mean"), suffix="_us") == {"n": 0, "mean_us": None}
    json.dumps(summarize([]))  # None -> null: a report with no samples still writes


def test_missing_values_are_left_out_and_counted():
    v = [3.0, None, 1.0, 2.0, math.nan, math.inf]
    s = summarize(v, ("median", "max", "n", "missing"))
    assert s == {"median": 2.0, "max": 3.0, "n": 3, "missing": 3}
    assert finite(v) == [3.0, 1.0, 2.0]
    assert percentile([math.nan, 1.0, 3.0], 50) == 2.0
    assert summarize([None, math.nan], ("median", "n", "missing")) == {"median": None, "n": 0, "missing": 2}


def test_agrees_with_numpy_on_random_samples():
    rng = np.random.default_rng(0)
    x = rng.lognormal(size=999)
    s = summarize(x, ("median", "p95", "p99.9", "mean"))
    assert s["median"] == float(np.median(x)) and s["mean"] == float(np.mean(x))
    assert s["p95"] == float(np.percentile(x, 95)) and s["p99.9"] == float(np.percentile(x, 99.9))


def test_bad_arguments_fail_loudly():
    with pytest.raises(ValueError, match="unknown statistic"):
        summarize([1.0], ("average",))
    with pytest.raises(ValueError, match="unknown statistic"):
        summarize([1.0], ("pmax",))
    with pytest.raises(ValueError, match="outside"):
        summarize([1.0], ("p101",))
    with pytest.raises(ValueError, match="method"):
        summarize([1.0], method="nearest")
    with pytest.raises(ValueError, match="outside"):
        percentile([1.0], -1)


def test_ratio():
    assert ratio(3, 4) == 0.75
    assert ratio(2.0, 3.0, digits=3) == 0.667
    assert ratio(1, 0) is None and ratio(None, 2) is None and ratio(1, None) is None
    assert ratio(0, 5) == 0.0
