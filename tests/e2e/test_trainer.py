"""The lifelong trainer end to end on the smoke preset: metrics.json + plots, and exact resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from legion_core.training import trainer as tr
from legion_core.training.report import render_report

PRESET = Path(__file__).resolve().parents[2] / "presets" / "smoke.yaml"
pytestmark = pytest.mark.e2e


def _params(run_dir: Path) -> dict[str, torch.Tensor]:
    state = torch.load(run_dir / "checkpoint" / "agent.pt", weights_only=True)
    return {f"{n}.{k}": v for n, sd in state["networks"].items() for k, v in sd.items()} | {
        "log_alpha": state["log_alpha"]
    }


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("straight")
    cfg = tr.load_config(PRESET)
    tr.save_resolved_config(cfg, run_dir, str(PRESET), [])
    report = tr.Trainer(cfg, run_dir, progress=False).run()
    return run_dir, report


def test_smoke_run_writes_metrics_and_plots(straight_run):
    run_dir, report = straight_run
    assert report["finished"] and report["env_steps"] == 600
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["task_names"] == ["reach", "drawer-close"]
    assert np.array(metrics["success_matrix"], dtype=float).shape == (2, 2)
    assert report["replay"]["policy"] == "keep_all" and report["demonstrations"]["used"]
    assert report["k_history"], "the DPMM was never fitted"
    assert set(report["replay"]["per_task"]) == {0, 1}  # keep_all keeps the first task's data
    written = {p.name for p in render_report(run_dir)}
    assert written == {"success_curves.png", "success_matrix.png", "latent_space.png"}
    assert (run_dir / "plots" / "latent_space.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_resume_continues_exactly(straight_run, tmp_path):
    """Kill (stop) mid-way in the second task, resume, and land on the very same parameters, buffer and
    success matrix as the uninterrupted run: resume continues, it does not restart."""
    straight_dir, straight_report = straight_run
    run_dir = tmp_path / "interrupted"
    cfg = tr.load_config(PRESET)
    cfg.max_env_steps = 400
    tr.save_resolved_config(cfg, run_dir, str(PRESET), [])
    first = tr.Trainer(cfg, run_dir, progress=False).run()
    assert not first["finished"]
    stopped_at = first["env_steps"]
    assert 300 < stopped_at < 600
    state = json.loads((run_dir / "checkpoint" / "trainer_state.json").read_text())
    assert state["task_index"] == 1 and state["local_step"] == stopped_at - 300

    resumed = tr.resume(run_dir, progress=False)
    assert resumed["finished"] and resumed["env_steps"] == 600
    assert resumed["gradient_updates"] == straight_report["gradient_updates"]
    a, b = _params(straight_dir), _params(run_dir)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"parameter {k} differs after resume"
    with (
        np.load(straight_dir / "checkpoint" / "buffer.npz") as x,
        np.load(run_dir / "checkpoint" / "buffer.npz") as y,
    ):
        np.testing.assert_array_equal(x["obs"], y["obs"])
        np.testing.assert_array_equal(x["action"], y["action"])
    ma = json.loads((straight_dir / "metrics.json").read_text())["success_matrix"]
    mb = json.loads((run_dir / "metrics.json").read_text())["success_matrix"]
    assert ma == mb


def test_bad_override_names_the_key():
    with pytest.raises(ValueError, match="steps_per_tsk"):
        tr.load_config(PRESET, ["steps_per_tsk=10"])
    with pytest.raises(ValueError, match="key=value"):
        tr.load_config(PRESET, ["steps_per_task"])
