"""Continual-learning metrics (success matrix, average performance, forgetting, forward transfer).

Why: LEGION's original logs (docs/method.md#evaluation) only keep `eval/success` averaged over all tasks plus a
transposed CSV, so forgetting and transfer had to be reconstructed in notebooks. Here they are computed from
the evaluation records themselves, in the library, with the definitions of Continual World:

    Wołczyk, Zając, Pascanu, Kuciński, Miłoś. "Continual World: A Robotic Benchmark for Continual
    Reinforcement Learning." NeurIPS 2021, section 3.2 (arXiv:2105.10919); summarised in
    docs/method.md#continual-learning-metrics.

Notation (Continual World): N tasks trained one after another, each for Δ env steps, T = N·Δ; p_i(t) ∈ [0, 1]
is the success rate of task i evaluated at step t.

- Average performance: P(T) = 1/N Σ_i p_i(T).
- Forgetting: F_i = p_i(i·Δ) − p_i(T) (performance right after task i's own phase minus the final one).
  F_i < 0 means backward transfer. The average runs over the tasks trained before the last phase (the last
  task has F = 0 by construction, so including it only dilutes the mean). A second mode, `"max"`, is the
  Chaudhry et al. (2018, RWalk) variant: max over the phase ends from the task's own phase to the second-last
  phase, minus the final value.
- Forward transfer: FT_i = (AUC_i − AUC_i^b) / (1 − AUC_i^b), with AUC_i = 1/Δ ∫_{(i−1)Δ}^{iΔ} p_i(t) dt the
  normalised area under task i's success curve during its own phase and AUC_i^b the same for a reference
  single-task run of task i from scratch. FT = mean_i FT_i. Without a reference FT is undefined: we return
  None and a reason.

A matrix cell [i, j] is p_i at the end of phase j: the record with the largest step of task i in phase j (the
"end of task" evaluation of docs/method.md#evaluation). Missing cells are NaN in arrays and null in JSON.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

CITATION = (
    "Wołczyk et al., Continual World: A Robotic Benchmark for Continual Reinforcement Learning, "
    "NeurIPS 2021, §3.2 (arXiv:2105.10919)"
)
METRICS_SCHEMA_VERSION = 1
ForgettingMode = Literal["continual_world", "max"]
Curve = tuple[Sequence[float], Sequence[float]]  # (env steps, success rate in [0, 1])


@dataclass(frozen=True)
class EvalRecord:
    """One evaluation: success rate of `task_index` at global env `step`, during training phase `phase`."""

    phase: int
    task_index: int
    success: float
    step: int


@dataclass(frozen=True)
class MetricResult:
    """A metric's mean, its per-task values (None where undefined) and why it is None when it is."""

    value: float | None
    per_task: dict[str, float | None] = field(default_factory=dict)
    reason: str | None = None
    definition: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "per_task": dict(self.per_task),
            "reason": self.reason,
            "definition": self.definition,
        }


# ------------------------------------------------------------------------------------------ success matrix


class SuccessMatrix:
    """Success of every task (rows) at the end of every training phase (columns), built from eval records.

    `phase_tasks[j]` names the task trained in phase j (None for a phase that trains several tasks, e.g.
    multitask). The default is one phase per task in `task_names` order, as in Continual World and LEGION's
    lifelong runs. Every record is kept, so per-phase learning curves (for forward transfer) come from the
    same object.
    """

    def __init__(self, task_names: Sequence[str], phase_tasks: Sequence[str | None] | None = None) -> None:
        self.task_names: list[str] = [str(t) for t in task_names]
        if not self.task_names:
            raise ValueError("SuccessMatrix needs at least one task name")
        if len(set(self.task_names)) != len(self.task_names):
            raise ValueError(f"task names must be unique, got {self.task_names}")
        self._task_index = {name: i for i, name in enumerate(self.task_names)}
        phases = list(self.task_names) if phase_tasks is None else list(phase_tasks)
        for j, name in enumerate(phases):
            if name is not None and name not in self._task_index:
                raise ValueError(
                    f"phase_tasks[{j}] = {name!r} is not one of the task names {self.task_names}"
                )
        self.phase_tasks: list[str | None] = phases
        self.records: list[EvalRecord] = []

    # ------------------------------------------------------------------------------------------ building

    def task_index(self, task: str | int) -> int:
        if isinstance(task, (int, np.integer)) and not isinstance(task, bool):
            if not 0 <= int(task) < len(self.task_names):
                raise ValueError(f"task index {task} out of range for {len(self.task_names)} tasks")
            return int(task)
        if task not in self._task_index:
            raise ValueError(f"unknown task {task!r}; known: {self.task_names}")
        return self._task_index[task]

    def add(self, phase: int, task: str | int, success: float, step: int) -> None:
        """Record one evaluation (success rate in [0, 1]) of `task` at global env `step` during `phase`."""
        if int(phase) < 0:
            raise ValueError(f"phase must be >= 0, got {phase}")
        success_rate = float(success)
        if not (0.0 <= success_rate <= 1.0):
            raise ValueError(f"success must be a rate in [0, 1], got {success}")
        self.records.append(EvalRecord(int(phase), self.task_index(task), success_rate, int(step)))

    @property
    def n_tasks(self) -> int:
        return len(self.task_names)

    @property
    def n_phases(self) -> int:
        """Declared phases, or more if records name later phases."""
        seen = max((r.phase for r in self.records), default=-1) + 1
        return max(len(self.phase_tasks), seen)

    @property
    def phase_names(self) -> list[str]:
        names = []
        for j in range(self.n_phases):
            trained = self.phase_tasks[j] if j < len(self.phase_tasks) else None
            names.append(f"{j}:{trained}" if trained is not None else f"{j}")
        return names

    def last_trained_phase(self) -> list[int | None]:
        """Per task, the last phase that trains it (None if none does): 'i·Δ' in the forgetting formula."""
        last: list[int | None] = [None] * self.n_tasks
        for j, name in enumerate(self.phase_tasks):
            if name is not None:
                last[self._task_index[name]] = j
        return last

    # ------------------------------------------------------------------------------------------- views

    def matrix(self) -> np.ndarray:
        """float64 [n_tasks, n_phases]: success at each phase end (last record by step), NaN if none."""
        out = np.full((self.n_tasks, self.n_phases), np.nan)
        last_step = np.full((self.n_tasks, self.n_phases), -np.inf)
        for r in self.records:
            if r.step >= last_step[r.task_index, r.phase]:
                last_step[r.task_index, r.phase] = r.step
                out[r.task_index, r.phase] = r.success
        return out

    def phase_averages(self, seen_only: bool = False) -> list[float | None]:
        """Mean success over tasks at each phase end: all tasks (LEGION's `eval/success`, unseen included,
        docs/method.md#evaluation) or, with `seen_only`, the tasks trained in this or an earlier phase. None if
        cells are missing."""
        mat = self.matrix()
        trained = self.first_trained_phase()
        out: list[float | None] = []
        for j in range(self.n_phases):
            rows = [
                i
                for i in range(self.n_tasks)
                if not seen_only or (trained[i] is not None and trained[i] <= j)
            ]
            column = mat[rows, j]
            out.append(None if len(rows) == 0 or np.isnan(column).any() else float(column.mean()))
        return out

    def first_trained_phase(self) -> list[int | None]:
        """Per task, the first phase that trains it (None if none): when a task counts as 'seen'."""
        first: list[int | None] = [None] * self.n_tasks
        for j, name in enumerate(self.phase_tasks):
            if name is not None and first[self._task_index[name]] is None:
                first[self._task_index[name]] = j
        return first

    def curve(self, task: str | int, phase: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(steps int64, success float64) of one task, sorted by step, optionally only within one phase."""
        index = self.task_index(task)
        rows = sorted(
            (r.step, r.success)
            for r in self.records
            if r.task_index == index and (phase is None or r.phase == phase)
        )
        steps = np.array([s for s, _ in rows], dtype=np.int64)
        success = np.array([v for _, v in rows], dtype=np.float64)
        return steps, success

    def own_phase_curves(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Each single-phase task's learning curve during the phase that trains it (the AUC_i of FT)."""
        curves = {}
        for j, name in enumerate(self.phase_tasks):
            if name is not None and self.phase_tasks.count(name) == 1:
                curves[name] = self.curve(name, phase=j)
        return curves

    # ----------------------------------------------------------------------------------------- metrics

    def average_performance(self) -> float:
        return average_performance(self.matrix())

    def forgetting(self, mode: ForgettingMode = "continual_world") -> MetricResult:
        return forgetting(self.matrix(), self.task_names, trained_phase=self.last_trained_phase(), mode=mode)

    def forward_transfer(self, reference_curves: Mapping[str, Curve] | None) -> MetricResult:
        return forward_transfer(self.own_phase_curves(), reference_curves)

    # ---------------------------------------------------------------------------------------- JSON I/O

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_names": list(self.task_names),
            "phase_tasks": list(self.phase_tasks),
            "phase_names": self.phase_names,
            "matrix": _nan_to_none(self.matrix()),
            "records": [[r.phase, self.task_names[r.task_index], r.success, r.step] for r in self.records],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SuccessMatrix:
        """Rebuild from `to_dict` output (the records are the source of truth; `matrix` is derived)."""
        sm = cls(data["task_names"], data.get("phase_tasks"))
        for phase, task, success, step in data.get("records", []):
            sm.add(phase, task, success, step)
        return sm

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> SuccessMatrix:
        return cls.from_dict(json.loads(text))


# ------------------------------------------------------------------------------------------ free functions


def _check_matrix(matrix: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    mat = np.asarray(matrix, dtype=np.float64)
    if mat.ndim != 2 or mat.shape[0] == 0 or mat.shape[1] == 0:
        raise ValueError(f"a success matrix is [tasks, phases] with both > 0, got shape {mat.shape}")
    return mat


def average_performance(matrix: np.ndarray | Sequence[Sequence[float]]) -> float:
    """P(T) = 1/N Σ_i p_i(T): mean success over all tasks after the last phase
    (docs/method.md#continual-learning-metrics).

    Raises ValueError if a task has no final evaluation, so an incomplete run is never reported as complete.
    """
    final = _check_matrix(matrix)[:, -1]
    if np.isnan(final).any():
        missing = np.flatnonzero(np.isnan(final)).tolist()
        raise ValueError(f"no final-phase evaluation for task rows {missing}")
    return float(final.mean())


def forgetting(
    matrix: np.ndarray | Sequence[Sequence[float]],
    task_names: Sequence[str] | None = None,
    trained_phase: Sequence[int | None] | None = None,
    mode: ForgettingMode = "continual_world",
) -> MetricResult:
    """Per-task forgetting and its mean (docs/method.md#continual-learning-metrics).

    `continual_world` (default): F_i = p_i(i·Δ) − p_i(T), i.e. matrix[i, trained_phase[i]] − matrix[i, -1].
    `max` (Chaudhry et al. 2018): F_i = max_{trained_phase[i] <= l < P-1} matrix[i, l] − matrix[i, -1].
    `trained_phase[i]` defaults to i (task i trained in phase i). Tasks trained in the last phase, never
    trained, or with a missing cell get None and are left out of the mean.
    """
    mat = _check_matrix(matrix)
    n_tasks, n_phases = mat.shape
    names = [str(i) for i in range(n_tasks)] if task_names is None else list(task_names)
    if len(names) != n_tasks:
        raise ValueError(f"{len(names)} task names for {n_tasks} matrix rows")
    phases = list(range(n_tasks)) if trained_phase is None else list(trained_phase)
    if len(phases) != n_tasks:
        raise ValueError(f"{len(phases)} trained phases for {n_tasks} matrix rows")
    if mode not in ("continual_world", "max"):
        raise ValueError(f"unknown forgetting mode {mode!r}")

    per_task: dict[str, float | None] = {}
    for i, name in enumerate(names):
        own = phases[i]
        if own is None or own >= n_phases - 1 or own < 0:
            per_task[name] = None
            continue
        window = mat[i, own : n_phases - 1] if mode == "max" else mat[i, own : own + 1]
        final = mat[i, -1]
        if np.isnan(final) or np.isnan(window).any():
            per_task[name] = None
            continue
        per_task[name] = float(window.max() - final)
    defined = [v for v in per_task.values() if v is not None]
    formula = (
        "F_i = p_i(i*Delta) - p_i(T)" if mode == "continual_world" else "F_i = max_{i<=l<T} p_i(l) - p_i(T)"
    )
    return MetricResult(
        value=float(np.mean(defined)) if defined else None,
        per_task=per_task,
        reason=None if defined else "no task was trained before the last phase with complete evaluations",
        definition=f"{formula}; mean over tasks trained before the last phase ({CITATION})",
    )


def _check_curve(name: str, curve: Curve) -> tuple[np.ndarray, np.ndarray]:
    steps = np.asarray(curve[0], dtype=np.float64)
    success = np.asarray(curve[1], dtype=np.float64)
    if steps.ndim != 1 or success.shape != steps.shape or steps.size == 0:
        raise ValueError(f"curve {name!r}: steps and success must be 1-D of equal non-zero length")
    if np.any(np.diff(steps) < 0):
        order = np.argsort(steps, kind="stable")
        steps, success = steps[order], success[order]
    return steps, success


def normalized_auc(steps: Sequence[float], success: Sequence[float]) -> float:
    """1/Δ ∫ p(t) dt by the trapezoid rule over the evaluated span Δ = steps[-1] − steps[0].

    A single evaluation gives its value. Give the continual-learning curve and the reference curve on
    comparable grids: both with or both without an evaluation at the start of training.
    """
    s, p = _check_curve("auc", (steps, success))
    span = s[-1] - s[0]
    if span <= 0:
        return float(p.mean())
    return float(np.sum((p[1:] + p[:-1]) * np.diff(s)) / 2.0 / span)


def forward_transfer(
    curves: Mapping[str, Curve], reference_curves: Mapping[str, Curve] | None
) -> MetricResult:
    """FT_i = (AUC_i − AUC_i^b) / (1 − AUC_i^b), FT = mean_i FT_i (docs/method.md#continual-learning-metrics).

    `curves[task]`: success of the task during its own training phase (steps may be global; only differences
    matter). `reference_curves[task]`: a single-task run of that task from scratch. Without references the
    metric is undefined and the result is value=None with a reason. Tasks without a reference, or whose
    reference AUC is 1 (nothing left to transfer), get None.
    """
    definition = f"FT_i = (AUC_i - AUC_i^b) / (1 - AUC_i^b), AUC over the task's own phase ({CITATION})"
    if reference_curves is None or len(reference_curves) == 0:
        return MetricResult(
            value=None,
            per_task={name: None for name in curves},
            reason="no reference single-task learning curves given; Continual World forward transfer is "
            "defined relative to training each task alone from scratch (AUC_i^b)",
            definition=definition,
        )
    per_task: dict[str, float | None] = {}
    for name, curve in curves.items():
        if name not in reference_curves:
            per_task[name] = None
            continue
        auc = normalized_auc(*_check_curve(name, curve))
        auc_ref = normalized_auc(*_check_curve(f"{name} (reference)", reference_curves[name]))
        per_task[name] = None if 1.0 - auc_ref < 1e-12 else float((auc - auc_ref) / (1.0 - auc_ref))
    defined = [v for v in per_task.values() if v is not None]
    if not defined:
        return MetricResult(
            None, per_task, "no task has both a curve and a reference with AUC^b < 1", definition
        )
    return MetricResult(float(np.mean(defined)), per_task, None, definition)


# -------------------------------------------------------------------------------------------------- output


def _nan_to_none(value: Any) -> Any:
    """Strict JSON: NaN/inf → null, numpy → Python."""
    if isinstance(value, np.ndarray):
        return _nan_to_none(value.tolist())
    if isinstance(value, Mapping):
        return {str(k): _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_none(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def compute_metrics(
    success_matrix: SuccessMatrix,
    config: Mapping[str, Any] | None = None,
    reference_curves: Mapping[str, Curve] | None = None,
) -> dict[str, Any]:
    """Everything `metrics.json` holds, as a JSON-ready dict (NaN → None)."""
    try:
        avg_perf: float | None = success_matrix.average_performance()
        avg_perf_reason = None
    except ValueError as err:
        avg_perf, avg_perf_reason = None, str(err)
    result = {
        "schema_version": METRICS_SCHEMA_VERSION,
        "citation": CITATION,
        "task_names": list(success_matrix.task_names),
        "phase_names": success_matrix.phase_names,
        "phase_tasks": list(success_matrix.phase_tasks),
        "success_matrix": success_matrix.matrix(),
        "per_phase_average": success_matrix.phase_averages(seen_only=False),
        "per_phase_average_seen": success_matrix.phase_averages(seen_only=True),
        "average_performance": avg_perf,
        "average_performance_reason": avg_perf_reason,
        "forgetting": success_matrix.forgetting("continual_world").to_dict(),
        "forgetting_max": success_matrix.forgetting("max").to_dict(),
        "forward_transfer": success_matrix.forward_transfer(reference_curves).to_dict(),
        "records": success_matrix.to_dict()["records"],
        "config": dict(config or {}),
    }
    return _nan_to_none(result)


def write_metrics_json(
    path: str | os.PathLike[str],
    success_matrix: SuccessMatrix,
    config: Mapping[str, Any] | None = None,
    reference_curves: Mapping[str, Curve] | None = None,
) -> dict[str, Any]:
    """Write `metrics.json` atomically (temp file + rename; a reader never sees half a file) and return it.

    `path` may be a directory (then `<path>/metrics.json`). `config` is a JSON-serialisable run summary (task
    order, steps per task, seed, ...) stored verbatim under "config".
    """
    target = Path(path)
    if target.is_dir():
        target = target / "metrics.json"
    metrics = compute_metrics(success_matrix, config, reference_curves)
    text = json.dumps(metrics, indent=2, allow_nan=False, default=str)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return metrics


def load_metrics_json(path: str | os.PathLike[str]) -> tuple[dict[str, Any], SuccessMatrix]:
    """Read a `metrics.json` and rebuild its SuccessMatrix from the stored records."""
    target = Path(path)
    if target.is_dir():
        target = target / "metrics.json"
    data = json.loads(target.read_text(encoding="utf-8"))
    sm = SuccessMatrix.from_dict(
        {"task_names": data["task_names"], "phase_tasks": data["phase_tasks"], "records": data["records"]}
    )
    return data, sm


# -------------------------------------------------------------------------------------------- TensorBoard


def tensorboard_available() -> bool:
    """torch.utils.tensorboard needs the separate `tensorboard` package; True if it is importable."""
    import importlib.util

    return importlib.util.find_spec("tensorboard") is not None


class NullSummaryWriter:
    """Stands in for torch's SummaryWriter when tensorboard is missing: every call is a no-op."""

    def __init__(self, log_dir: str | os.PathLike[str] | None = None) -> None:
        self.log_dir = None if log_dir is None else str(log_dir)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("add_") or name in ("flush", "close"):
            return lambda *args, **kwargs: None
        raise AttributeError(name)

    def __enter__(self) -> NullSummaryWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def tensorboard_writer(log_dir: str | os.PathLike[str]) -> Any:
    """A `torch.utils.tensorboard.SummaryWriter`, or a `NullSummaryWriter` (with a warning) when the
    `tensorboard` package is not installed, so training never fails over optional logging."""
    if not tensorboard_available():
        warnings.warn(
            "tensorboard is not installed; TensorBoard logging is disabled (metrics.json is still written). "
            "Fix: `pip install tensorboard`.",
            RuntimeWarning,
            stacklevel=2,
        )
        return NullSummaryWriter(log_dir)
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(log_dir))


def log_success_matrix_tensorboard(writer: Any, success_matrix: SuccessMatrix, global_step_env: int) -> None:
    """Log the latest phase-end successes (`eval/success_<task>`), their all-task mean (`eval/success`, as in
    docs/method.md#evaluation, unseen tasks included) and, once defined, the mean Continual World forgetting
    (`cl/forgetting`)."""
    mat = success_matrix.matrix()
    last = mat[:, -1]
    for name, value in zip(success_matrix.task_names, last):
        if not np.isnan(value):
            writer.add_scalar(f"eval/success_{name}", float(value), global_step_env)
    if not np.isnan(last).any():
        writer.add_scalar("eval/success", float(last.mean()), global_step_env)
    forget = success_matrix.forgetting()
    if forget.value is not None:
        writer.add_scalar("cl/forgetting", forget.value, global_step_env)


__all__ = [
    "CITATION",
    "EvalRecord",
    "MetricResult",
    "NullSummaryWriter",
    "SuccessMatrix",
    "average_performance",
    "compute_metrics",
    "forgetting",
    "forward_transfer",
    "load_metrics_json",
    "log_success_matrix_tensorboard",
    "normalized_auc",
    "tensorboard_available",
    "tensorboard_writer",
    "write_metrics_json",
]
