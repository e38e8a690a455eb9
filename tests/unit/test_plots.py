"""Plots: a valid, non-empty PNG for good input, a clear ValueError for mismatched shapes."""

from __future__ import annotations

import numpy as np
import pytest

from legion_core.training import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TASKS = ["reach", "push", "drawer-close"]


def assert_png(path) -> None:
    data = path.read_bytes()
    assert len(data) > 1000
    assert data[:8] == PNG_MAGIC


def make_curves() -> dict[str, tuple[list[int], list[float]]]:
    steps = list(range(0, 3001, 250))
    return {
        name: (steps, [min(1.0, max(0.0, (s - 1000 * k) / 800)) for s in steps])
        for k, name in enumerate(TASKS)
    }


def test_success_curves_png(tmp_path):
    out = plots.plot_success_curves(make_curves(), [1000, 2000, 3000], tmp_path / "sub" / "curves.png")
    assert out == tmp_path / "sub" / "curves.png"
    assert_png(out)
    # Explicit labels, no boundaries, and more boundaries than curves all work.
    assert_png(
        plots.plot_success_curves(make_curves(), [1000, 2000, 3000], tmp_path / "a.png", ["p0", "p1", "p2"])
    )
    assert_png(plots.plot_success_curves(make_curves(), [], tmp_path / "b.png"))
    assert_png(plots.plot_success_curves(make_curves(), [500, 1000, 1500, 2000, 3000], tmp_path / "c.png"))


def test_success_curves_rejects_bad_input(tmp_path):
    bad = make_curves()
    bad["push"] = ([0, 1, 2], [0.0, 1.0])
    with pytest.raises(ValueError, match="'push'.*equal length"):
        plots.plot_success_curves(bad, [1000], tmp_path / "x.png")
    with pytest.raises(ValueError, match="sorted"):
        plots.plot_success_curves(make_curves(), [2000, 1000, 3000], tmp_path / "x.png")
    with pytest.raises(ValueError, match="2 phase labels for 3 phase boundaries"):
        plots.plot_success_curves(make_curves(), [1000, 2000, 3000], tmp_path / "x.png", ["a", "b"])
    with pytest.raises(ValueError, match="no curves"):
        plots.plot_success_curves({}, [1000], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_success_matrix_png(tmp_path):
    matrix = np.array([[0.9, 0.7, 0.5], [0.0, 0.8, 0.6], [0.1, np.nan, 1.0]])
    out = plots.plot_success_matrix(matrix, TASKS, ["after 0", "after 1", "after 2"], tmp_path / "m.png")
    assert_png(out)


def test_success_matrix_rejects_mismatch(tmp_path):
    matrix = np.zeros((3, 2))
    with pytest.raises(ValueError, match="3 rows but 2 task names"):
        plots.plot_success_matrix(matrix, TASKS[:2], ["a", "b"], tmp_path / "m.png")
    with pytest.raises(ValueError, match="2 columns but 3 phase names"):
        plots.plot_success_matrix(matrix, TASKS, ["a", "b", "c"], tmp_path / "m.png")
    with pytest.raises(ValueError, match="2-D"):
        plots.plot_success_matrix(np.zeros(3), TASKS, ["a"], tmp_path / "m.png")


def make_latents(rng: np.random.Generator, n_per_task: int = 60) -> tuple[np.ndarray, np.ndarray]:
    centres = rng.normal(size=(len(TASKS), 10))
    task_ids = np.repeat(np.arange(len(TASKS)), n_per_task)
    z = centres[task_ids] + 0.05 * rng.normal(size=(len(task_ids), 10))
    return z, task_ids


def test_latent_space_png(tmp_path):
    z, task_ids = make_latents(np.random.default_rng(0))
    cluster_ids = task_ids * 7 + 3  # arbitrary cluster labels
    out = plots.plot_latent_space(
        z, task_ids, cluster_ids, TASKS, [(1000, 1), (2000, 2), (3000, 3)], tmp_path / "latent.png"
    )
    assert_png(out)
    assert_png(plots.plot_latent_space(z, task_ids, cluster_ids, TASKS, [], tmp_path / "latent-nok.png"))


def test_latent_space_rejects_mismatch(tmp_path):
    z, task_ids = make_latents(np.random.default_rng(1))
    with pytest.raises(ValueError, match="task_ids has shape"):
        plots.plot_latent_space(z, task_ids[:-1], task_ids, TASKS, [], tmp_path / "x.png")
    with pytest.raises(ValueError, match="cluster_ids has shape"):
        plots.plot_latent_space(z, task_ids, task_ids[:5], TASKS, [], tmp_path / "x.png")
    with pytest.raises(ValueError, match="task names"):
        plots.plot_latent_space(z, task_ids, task_ids, TASKS[:2], [], tmp_path / "x.png")
    with pytest.raises(ValueError, match="2-D"):
        plots.plot_latent_space(z[0], task_ids, task_ids, TASKS, [], tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"k_history\[1\]"):
        plots.plot_latent_space(z, task_ids, task_ids, TASKS, [(0, 1), (5,)], tmp_path / "x.png")
    with pytest.raises(ValueError, match="integer"):
        plots.plot_latent_space(z, task_ids.astype(float), task_ids, TASKS, [], tmp_path / "x.png")


def test_pca_2d_recovers_dominant_axis():
    rng = np.random.default_rng(2)
    t = rng.normal(size=200)
    z = np.zeros((200, 10))
    z[:, 3] = 10 * t
    z[:, 7] = 0.1 * rng.normal(size=200)
    coords, ratio = plots.pca_2d(z)
    assert coords.shape == (200, 2)
    assert abs(np.corrcoef(coords[:, 0], t)[0, 1]) > 0.999
    assert ratio[0] > 0.99 and ratio.sum() <= 1.0 + 1e-9
    one_d, ratio_1d = plots.pca_2d(t[:, None])
    assert np.all(one_d[:, 1] == 0) and ratio_1d[1] == 0
