"""Continual-learning metrics on hand-made matrices with hand-computed values
(docs/method.md#continual-learning-metrics)."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from legion_core.training import metrics as m

TASKS = ["reach", "push", "drawer-close", "window-open"]
# Rows: tasks; columns: end of phase 0..3 (phase j trains task j).
MATRIX = [
    [0.5, 0.9, 0.7, 0.3],  # F_cw = 0.5 - 0.3 = 0.2; F_max = max(0.5, 0.9, 0.7) - 0.3 = 0.6
    [0.0, 0.8, 0.6, 0.9],  # F_cw = F_max = 0.8 - 0.9 = -0.1 (backward transfer)
    [0.1, 0.2, 0.6, 0.4],  # F_cw = F_max = 0.6 - 0.4 = 0.2
    [0.0, 0.0, 0.1, 1.0],  # trained last: undefined
]


def build_success_matrix() -> m.SuccessMatrix:
    """MATRIX from raw records: two evals per (phase, task), added out of step order, the later one wins."""
    sm = m.SuccessMatrix(TASKS)
    delta_steps = 1000
    for phase in range(4):
        for task_index, task in enumerate(TASKS):
            end_step = (phase + 1) * delta_steps
            sm.add(phase, task, MATRIX[task_index][phase], end_step)  # end-of-phase eval first ...
            sm.add(phase, task_index, 0.05, end_step - 500)  # ... then an earlier mid-phase eval
    return sm


def test_matrix_from_records_takes_the_last_eval_of_each_phase():
    sm = build_success_matrix()
    np.testing.assert_array_equal(sm.matrix(), np.array(MATRIX))
    assert sm.n_tasks == 4 and sm.n_phases == 4
    assert sm.phase_names == ["0:reach", "1:push", "2:drawer-close", "3:window-open"]


def test_missing_cells_are_nan_and_phases_grow():
    sm = m.SuccessMatrix(["a", "b"])
    sm.add(0, "a", 1.0, 10)
    sm.add(2, "b", 0.5, 30)  # a phase beyond the declared ones
    mat = sm.matrix()
    assert mat.shape == (2, 3)
    assert mat[0, 0] == 1.0 and mat[1, 2] == 0.5
    assert np.isnan(mat[1, 0]) and np.isnan(mat[0, 2])
    assert sm.phase_names == ["0:a", "1:b", "2"]


def test_average_performance():
    assert m.average_performance(MATRIX) == pytest.approx((0.3 + 0.9 + 0.4 + 1.0) / 4)  # 0.65
    assert build_success_matrix().average_performance() == pytest.approx(0.65)
    with pytest.raises(ValueError, match="no final-phase evaluation"):
        m.average_performance([[1.0, np.nan], [0.5, 0.5]])
    with pytest.raises(ValueError, match=r"\[tasks, phases\]"):
        m.average_performance([1.0, 0.5])


def test_forgetting_continual_world():
    result = m.forgetting(MATRIX, TASKS)
    assert result.per_task["reach"] == pytest.approx(0.2)
    assert result.per_task["push"] == pytest.approx(-0.1)
    assert result.per_task["drawer-close"] == pytest.approx(0.2)
    assert result.per_task["window-open"] is None  # the last task is not averaged
    assert result.value == pytest.approx((0.2 - 0.1 + 0.2) / 3)  # 0.1
    assert "Continual World" in result.definition
    assert build_success_matrix().forgetting().value == pytest.approx(0.1)


def test_forgetting_max_variant():
    result = m.forgetting(MATRIX, TASKS, mode="max")
    assert result.per_task["reach"] == pytest.approx(0.6)
    assert result.per_task["push"] == pytest.approx(-0.1)
    assert result.per_task["drawer-close"] == pytest.approx(0.2)
    assert result.value == pytest.approx((0.6 - 0.1 + 0.2) / 3)
    with pytest.raises(ValueError, match="unknown forgetting mode"):
        m.forgetting(MATRIX, TASKS, mode="min")  # type: ignore[arg-type]


def test_forgetting_with_custom_training_order_and_missing_cells():
    # Reverse order: task 3 trained in phase 0, ..., task 0 in phase 3.
    result = m.forgetting(MATRIX, TASKS, trained_phase=[3, 2, 1, 0])
    assert result.per_task["reach"] is None
    assert result.per_task["push"] == pytest.approx(0.6 - 0.9)
    assert result.per_task["drawer-close"] == pytest.approx(0.2 - 0.4)
    assert result.per_task["window-open"] == pytest.approx(0.0 - 1.0)
    holes = np.array(MATRIX)
    holes[0, 0] = np.nan
    assert m.forgetting(holes, TASKS).per_task["reach"] is None
    single = m.forgetting([[1.0]], ["only"])
    assert single.value is None and single.reason


def test_phase_averages_all_and_seen_only():
    sm = build_success_matrix()
    assert sm.phase_averages() == pytest.approx([0.6 / 4, 1.9 / 4, 2.0 / 4, 2.6 / 4])
    assert sm.phase_averages(seen_only=True) == pytest.approx([0.5, 0.85, 1.9 / 3, 0.65])


def test_normalized_auc_trapezoid():
    assert m.normalized_auc([0, 10, 20], [0.0, 0.5, 1.0]) == pytest.approx(0.5)
    assert m.normalized_auc([0, 10, 20], [0.0, 0.0, 0.5]) == pytest.approx(0.125)
    assert m.normalized_auc([1000, 1010, 1020], [0.0, 0.5, 1.0]) == pytest.approx(0.5)  # global steps
    assert m.normalized_auc([20, 0, 10], [1.0, 0.0, 0.5]) == pytest.approx(0.5)  # unsorted input
    assert m.normalized_auc([5], [0.7]) == pytest.approx(0.7)
    with pytest.raises(ValueError, match="equal non-zero length"):
        m.normalized_auc([0, 1], [0.5])


def test_forward_transfer_hand_computed():
    curves = {
        "reach": ([1000, 1010, 1020], [0.0, 0.5, 1.0]),  # AUC 0.5
        "push": ([0, 10, 20], [0.0, 0.0, 0.0]),  # AUC 0
        "drawer-close": ([0, 10], [1.0, 1.0]),
        "window-open": ([0, 10], [0.5, 0.5]),
    }
    reference = {
        "reach": ([0, 10, 20], [0.0, 0.0, 0.5]),  # AUC_b 0.125 -> FT = 0.375 / 0.875 = 3/7
        "push": ([0, 10, 20], [0.0, 1.0, 1.0]),  # AUC_b 0.75 -> FT = -0.75 / 0.25 = -3
        "drawer-close": ([0, 10], [1.0, 1.0]),  # AUC_b 1: undefined
        # window-open: no reference
    }
    result = m.forward_transfer(curves, reference)
    assert result.per_task["reach"] == pytest.approx(3 / 7)
    assert result.per_task["push"] == pytest.approx(-3.0)
    assert result.per_task["drawer-close"] is None
    assert result.per_task["window-open"] is None
    assert result.value == pytest.approx((3 / 7 - 3.0) / 2)
    assert result.reason is None


def test_forward_transfer_without_reference_is_none_with_reason():
    for reference in (None, {}):
        result = m.forward_transfer({"reach": ([0, 1], [0.0, 1.0])}, reference)
        assert result.value is None
        assert "reference" in result.reason
        assert result.per_task == {"reach": None}


def test_success_matrix_forward_transfer_uses_own_phase_curves():
    sm = m.SuccessMatrix(["a", "b"])
    for step, value in [(0, 0.0), (10, 0.5), (20, 1.0)]:
        sm.add(0, "a", value, step)  # a's own phase: AUC 0.5
        sm.add(0, "b", 0.9, step)  # b evaluated in a's phase: must not enter b's curve
    for step, value in [(20, 0.0), (30, 0.0), (40, 0.5)]:
        sm.add(1, "b", value, step)  # AUC 0.125
    reference = {"a": ([0, 10, 20], [0.0, 0.0, 0.5]), "b": ([0, 10, 20], [0.0, 0.0, 0.5])}
    result = sm.forward_transfer(reference)
    assert result.per_task == pytest.approx({"a": 3 / 7, "b": 0.0})
    steps, success = sm.curve("b", phase=1)
    assert steps.tolist() == [20, 30, 40] and success.tolist() == [0.0, 0.0, 0.5]


def test_add_validates_inputs():
    sm = m.SuccessMatrix(["a"])
    with pytest.raises(ValueError, match="unknown task"):
        sm.add(0, "b", 0.5, 1)
    with pytest.raises(ValueError, match="out of range"):
        sm.add(0, 3, 0.5, 1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        sm.add(0, "a", 1.5, 1)
    with pytest.raises(ValueError, match="phase"):
        sm.add(-1, "a", 0.5, 1)
    with pytest.raises(ValueError, match="unique"):
        m.SuccessMatrix(["a", "a"])
    with pytest.raises(ValueError, match="phase_tasks"):
        m.SuccessMatrix(["a"], phase_tasks=["z"])


def test_json_round_trip():
    sm = build_success_matrix()
    sm.add(3, "reach", 0.3, 4000)  # a duplicate is kept as a record
    text = sm.to_json()
    data = json.loads(text)
    assert data["matrix"][0] == MATRIX[0]
    back = m.SuccessMatrix.from_json(text)
    np.testing.assert_array_equal(back.matrix(), sm.matrix())
    assert back.records == sm.records and back.phase_tasks == sm.phase_tasks
    # NaN cells serialise as null (strict JSON).
    partial = m.SuccessMatrix(["a", "b"])
    partial.add(0, "a", 1.0, 1)
    assert json.loads(partial.to_json())["matrix"] == [[1.0, None], [None, None]]


def test_write_metrics_json(tmp_path):
    sm = build_success_matrix()
    config = {"task_order": TASKS, "steps_per_task": 1000, "seed": 3}
    out_path = tmp_path / "run" / "metrics.json"
    written = m.write_metrics_json(out_path, sm, config=config)
    data = json.loads(out_path.read_text())
    assert data == written
    assert data["task_names"] == TASKS
    assert data["success_matrix"] == MATRIX
    assert data["per_phase_average"] == pytest.approx([0.15, 0.475, 0.5, 0.65])
    assert data["average_performance"] == pytest.approx(0.65)
    assert data["forgetting"]["value"] == pytest.approx(0.1)
    assert data["forgetting_max"]["value"] == pytest.approx(0.7 / 3)
    assert data["forward_transfer"]["value"] is None and data["forward_transfer"]["reason"]
    assert data["config"] == config
    assert "Continual World" in data["citation"]

    # Directory path -> <dir>/metrics.json; reload gives the same matrix.
    m.write_metrics_json(tmp_path, sm, config=config)
    loaded, back = m.load_metrics_json(tmp_path)
    np.testing.assert_array_equal(back.matrix(), np.array(MATRIX))
    assert loaded["forgetting"]["per_task"]["window-open"] is None


def test_write_metrics_json_incomplete_run_is_strict_json(tmp_path):
    sm = m.SuccessMatrix(["a", "b"])
    sm.add(0, "a", 1.0, 10)
    data = m.write_metrics_json(tmp_path / "metrics.json", sm, config={"note": math.nan})
    text = (tmp_path / "metrics.json").read_text()
    assert "NaN" not in text
    assert (
        data["average_performance"] is None
        and "no final-phase evaluation" in data["average_performance_reason"]
    )
    assert data["config"] == {"note": None}


def test_tensorboard_writer_noop_or_real(tmp_path, monkeypatch):
    monkeypatch.setattr(m, "tensorboard_available", lambda: False)
    with pytest.warns(RuntimeWarning, match="pip install tensorboard"):
        writer = m.tensorboard_writer(tmp_path / "tb")
    assert isinstance(writer, m.NullSummaryWriter)
    m.log_success_matrix_tensorboard(writer, build_success_matrix(), 4000)  # no-op, no error
    writer.flush()
    writer.close()
    with pytest.raises(AttributeError):
        writer.not_a_writer_method  # noqa: B018
    monkeypatch.undo()

    if m.tensorboard_available():
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            real = m.tensorboard_writer(tmp_path / "tb-real")
        m.log_success_matrix_tensorboard(real, build_success_matrix(), 4000)
        real.close()
        assert any((tmp_path / "tb-real").iterdir())
