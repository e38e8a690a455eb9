"""Summary statistics of measurements (latencies, rates, success counts): one definition of each figure for
every benchmark, the bag replay and the runtime's diagnostics, so that numbers from different places compare.

- `summarize(values, keys)`: the figures named in `keys`, in that order (the order the JSON reports show):
  `n` (values summarised), `missing` (values left out), `median`, `mean`, `min`, `max` and percentiles
  `pNN` (`p50`, `p95`, `p99`, `p99.9`...).
- A value that is None or not finite is a measurement that never came (a hold never seen, a message never
  received): it is left out of every figure and counted by `missing`.
- Percentiles by `method`: "linear" (default) is numpy's interpolation between the two closest ranks, and
  `median` is numpy's (the mean of the two middle values for an even count); "nearest_rank" is the smallest
  value with at least NN % of the values at or below it, always a value that was actually measured, and
  `median` is then its p50.
- No values (after leaving out the missing ones): `n` is 0 and every other figure is `empty` (None, which
  JSON writes as null).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

LINEAR, NEAREST_RANK = "linear", "nearest_rank"
METHODS = (LINEAR, NEAREST_RANK)
#: The figures of a latency summary when the caller names none.
DEFAULT_KEYS = ("n", "median", "p99", "max")


def finite(values: Iterable[float | int | None]) -> list[float]:
    """The values that are neither None nor NaN/inf, as floats, in their order."""
    out = []
    for v in values:
        if v is None:
            continue
        f = float(v)
        if math.isfinite(f):
            out.append(f)
    return out


def _nearest_rank(sorted_vals: Sequence[float], p: float) -> float:
    k = min(len(sorted_vals) - 1, max(0, math.ceil(p / 100.0 * len(sorted_vals)) - 1))
    return float(sorted_vals[k])


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown percentile method {method!r}: one of {', '.join(METHODS)}")


def _percent(key: str) -> float:
    """The NN of a `pNN` key, checked to be within [0, 100]."""
    try:
        p = float(key[1:])
    except ValueError:
        raise ValueError(f"unknown statistic {key!r}: n, missing, median, mean, min, max or pNN") from None
    if not 0.0 <= p <= 100.0:
        raise ValueError(f"percentile {key!r} outside p0..p100")
    return p


def percentile(values: Iterable[float | int | None], p: float, method: str = LINEAR) -> float | None:
    """The `p`-th percentile (0..100) of the finite values, by `method` (see the module docstring); None
    when there are none."""
    _check_method(method)
    if not 0.0 <= p <= 100.0:
        raise ValueError(f"percentile {p} outside 0..100")
    v = finite(values)
    if not v:
        return None
    if method == NEAREST_RANK:
        return _nearest_rank(sorted(v), p)
    return float(np.percentile(v, p))


def median(values: Iterable[float | int | None]) -> float | None:
    """numpy's median of the finite values (the mean of the two middle ones for an even count); None when
    there are none."""
    v = finite(values)
    return float(np.median(v)) if v else None


def mean(values: Iterable[float | int | None]) -> float | None:
    """The mean of the finite values; None when there are none."""
    v = finite(values)
    return float(np.mean(v)) if v else None


def summarize(
    values: Iterable[float | int | None],
    keys: Sequence[str] = DEFAULT_KEYS,
    *,
    scale: float | None = None,
    method: str = LINEAR,
    digits: int | None = None,
    suffix: str = "",
    empty: float | None = None,
) -> dict[str, float | int | None]:
    """The figures `keys` of the finite `values` (see the module docstring), in the order of `keys`.

    scale: multiplies every value before the figures are taken (1e3 for seconds -> milliseconds).
    method: "linear" or "nearest_rank", for `median` and every `pNN`.
    digits: rounds every figure but the counts (round(x, digits)).
    suffix: appended to every key but the counts (`median_us`).
    empty: the figures other than the counts when no value is finite (None; NaN where a report had NaN).
    """
    _check_method(method)
    raw = list(values)
    v = finite(raw)
    arr = np.asarray(v, dtype=float)
    if scale is not None:
        arr = arr * scale
    srt: np.ndarray | None = None
    out: dict[str, float | int | None] = {}
    for key in keys:
        if key == "n":
            out[key] = len(v)
            continue
        if key == "missing":
            out[key] = len(raw) - len(v)
            continue
        if key not in ("median", "mean", "min", "max") and not key.startswith("p"):
            raise ValueError(f"unknown statistic {key!r}: n, missing, median, mean, min, max or pNN")
        p = 50.0 if key == "median" else _percent(key) if key.startswith("p") else None
        x: float | None
        if not arr.size:
            x = empty
        elif key == "mean":
            x = float(np.mean(arr))
        elif key == "min":
            x = float(np.min(arr))
        elif key == "max":
            x = float(np.max(arr))
        elif method == NEAREST_RANK:
            if srt is None:
                srt = np.sort(arr)
            x = _nearest_rank(srt, p)
        elif key == "median":
            x = float(np.median(arr))
        else:
            x = float(np.percentile(arr, p))
        if digits is not None and x is not None:
            x = round(x, digits)
        out[key + suffix] = x
    return out


def ratio(numerator: float | None, denominator: float | None, digits: int | None = None) -> float | None:
    """numerator / denominator (a rate, or a figure against its baseline), rounded to `digits` if given;
    None when either is missing or the denominator is 0 (nothing to compare with)."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    r = numerator / denominator
    return round(r, digits) if digits is not None else r
