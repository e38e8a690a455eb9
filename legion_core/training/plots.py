"""Figures of a lifelong run from plain data (lists and arrays): success curves, the success matrix, and the
LEGION latent space with its DPMM clusters. PNG via matplotlib's Agg canvas (no display needed, headless CI).

Figures are built as `matplotlib.figure.Figure` objects, not through pyplot: no global backend switch (an
importer's Jupyter or GUI backend stays as it was), no pyplot figure registry to leak memory in long runs, and
safe from worker threads.

Why plain data: the trainer, the metrics module and offline analysis of old logs all produce the same figures
without sharing objects. Every function validates shapes first and raises ValueError naming the mismatch,
instead of letting matplotlib fail deep inside or, worse, draw a misleading figure.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure

PathLike = str | os.PathLike[str]
DPI = 120


def _save(fig: Figure, path: PathLike) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, format="png", dpi=DPI, bbox_inches="tight")  # Figure.savefig uses the Agg canvas
    return target


def _colors(n: int) -> list:
    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


# ----------------------------------------------------------------------------------------- success curves


def plot_success_curves(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    phase_boundaries: Sequence[int],
    path: PathLike,
    phase_labels: Sequence[str] | None = None,
    title: str = "Success rate per task",
) -> Path:
    """Success rate of each task against global env steps, with a dashed line at the end of every phase.

    `curves[task] = (env_steps, success)`, equal-length 1-D. `phase_boundaries` are the env steps at which
    each phase ends (sorted); phase k spans (boundary[k-1], boundary[k]] from 0. Each phase is labelled with
    `phase_labels[k]`, by default the k-th task name of `curves` when there are as many phases as curves
    (one task per phase, the lifelong protocol), else "phase k".
    """
    if not curves:
        raise ValueError("plot_success_curves: no curves given")
    checked: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, curve in curves.items():
        if len(curve) != 2:
            raise ValueError(f"curve {name!r} must be a (steps, success) pair")
        steps = np.asarray(curve[0], dtype=np.float64)
        success = np.asarray(curve[1], dtype=np.float64)
        if steps.ndim != 1 or success.ndim != 1 or steps.shape != success.shape:
            raise ValueError(
                f"curve {name!r}: steps {steps.shape} and success {success.shape} must be 1-D of equal length"
            )
        checked[str(name)] = (steps, success)
    bounds = np.asarray(phase_boundaries, dtype=np.float64)
    if bounds.ndim != 1:
        raise ValueError(f"phase_boundaries must be 1-D, got shape {bounds.shape}")
    if np.any(np.diff(bounds) < 0):
        raise ValueError(f"phase_boundaries must be sorted ascending, got {list(phase_boundaries)}")
    if phase_labels is None:
        names = list(checked)
        labels = names if len(names) == len(bounds) else [f"phase {k}" for k in range(len(bounds))]
    else:
        labels = [str(x) for x in phase_labels]
        if len(labels) != len(bounds):
            raise ValueError(f"{len(labels)} phase labels for {len(bounds)} phase boundaries")

    fig = Figure(figsize=(11, 4.5))
    ax = fig.subplots()
    for (name, (steps, success)), color in zip(checked.items(), _colors(len(checked))):
        ax.plot(steps, success, label=name, color=color, linewidth=1.4)
    starts = np.concatenate([[0.0], bounds[:-1]]) if len(bounds) else np.zeros(0)
    for start, end, label in zip(starts, bounds, labels):
        ax.axvline(end, color="0.4", linestyle="--", linewidth=0.8)
        ax.text(
            (start + end) / 2, 1.02, label, rotation=30, ha="center", va="bottom", fontsize=7,
            transform=ax.get_xaxis_transform(),
        )  # fmt: skip
    ax.set_xlabel("env steps")
    ax.set_ylabel("success rate")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title(title, pad=40 if len(bounds) else 6)
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    return _save(fig, path)


# ----------------------------------------------------------------------------------------- success matrix


def plot_success_matrix(
    matrix: np.ndarray | Sequence[Sequence[float]],
    task_names: Sequence[str],
    phase_names: Sequence[str],
    path: PathLike,
    title: str = "Success after each training phase",
) -> Path:
    """Heat map of success (rows: tasks, columns: phase ends) with each value written in its cell.

    NaN cells (not evaluated) are grey and marked '–'. The colour scale is fixed to [0, 1] so figures of
    different runs compare by eye.
    """
    mat = np.asarray(matrix, dtype=np.float64)
    if mat.ndim != 2:
        raise ValueError(f"matrix must be 2-D [tasks, phases], got shape {mat.shape}")
    if mat.shape[0] != len(task_names):
        raise ValueError(f"matrix has {mat.shape[0]} rows but {len(task_names)} task names")
    if mat.shape[1] != len(phase_names):
        raise ValueError(f"matrix has {mat.shape[1]} columns but {len(phase_names)} phase names")
    n_tasks, n_phases = mat.shape
    fig = Figure(figsize=(1.0 + 0.75 * max(n_phases, 2), 1.0 + 0.5 * max(n_tasks, 2)))
    ax = fig.subplots()
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="0.85")
    image = ax.imshow(np.ma.masked_invalid(mat), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
    for i in range(n_tasks):
        for j in range(n_phases):
            value = mat[i, j]
            text = "–" if np.isnan(value) else f"{value:.2f}"
            color = "black" if np.isnan(value) or value > 0.6 else "white"
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color=color)
    ax.set_xticks(range(n_phases), [str(p) for p in phase_names], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n_tasks), [str(t) for t in task_names], fontsize=8)
    ax.set_xlabel("after training phase")
    ax.set_ylabel("evaluated task")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="success rate", fraction=0.04)
    return _save(fig, path)


# ------------------------------------------------------------------------------------------- latent space


def pca_2d(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project rows of z [N, D] onto their first two principal axes (numpy SVD of the centred data).

    Returns (coords [N, 2], explained variance ratio [2]). Missing axes (D < 2 or rank < 2) are zero.
    """
    data = np.asarray(z, dtype=np.float64)
    if data.ndim != 2 or data.shape[0] == 0:
        raise ValueError(f"z must be 2-D [N, D] with N > 0, got shape {data.shape}")
    centred = data - data.mean(axis=0, keepdims=True)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    k = min(2, vt.shape[0])
    coords = np.zeros((data.shape[0], 2))
    coords[:, :k] = centred @ vt[:k].T
    total = float(np.sum(singular**2))
    ratio = np.zeros(2)
    if total > 0:
        ratio[:k] = singular[:k] ** 2 / total
    return coords, ratio


def plot_latent_space(
    z: np.ndarray,
    task_ids: Sequence[int] | np.ndarray,
    cluster_ids: Sequence[int] | np.ndarray,
    task_names: Sequence[str],
    k_history: Sequence[tuple[int, int]],
    path: PathLike,
    title: str = "LEGION latent space",
) -> Path:
    """Three panels: PCA of the latents z [N, D] (D = 10 in LEGION) coloured by task (left) and by DPMM
    cluster (middle), and the number of clusters K against env steps (right).

    One cluster per seen task (docs/method.md#reference-numbers) shows as matching colourings of the left and middle
    panels and a K staircase that climbs by one per phase. `task_ids[n]` indexes `task_names`; cluster ids are
    arbitrary integers (e.g. bnpy's); `k_history` is [(env_step, K), ...].
    """
    data = np.asarray(z, dtype=np.float64)
    if data.ndim != 2 or data.shape[0] == 0:
        raise ValueError(f"z must be 2-D [N, D] with N > 0, got shape {data.shape}")
    tasks = np.asarray(task_ids)
    clusters = np.asarray(cluster_ids)
    n_points = data.shape[0]
    if tasks.shape != (n_points,):
        raise ValueError(f"task_ids has shape {tasks.shape}, expected ({n_points},) to match z {data.shape}")
    if clusters.shape != (n_points,):
        raise ValueError(
            f"cluster_ids has shape {clusters.shape}, expected ({n_points},) to match z {data.shape}"
        )
    if not np.issubdtype(tasks.dtype, np.integer) or not np.issubdtype(clusters.dtype, np.integer):
        raise ValueError("task_ids and cluster_ids must be integer arrays")
    if tasks.min() < 0 or tasks.max() >= len(task_names):
        raise ValueError(
            f"task_ids span [{tasks.min()}, {tasks.max()}] but there are {len(task_names)} task names"
        )
    pairs = list(k_history)
    for n, pair in enumerate(pairs):
        if np.ndim(pair) != 1 or len(pair) != 2:
            raise ValueError(f"k_history[{n}] = {pair!r}: expected an (env_step, K) pair")
    history = np.asarray(pairs, dtype=np.float64) if pairs else None

    coords, ratio = pca_2d(data)
    fig = Figure(figsize=(16, 4.8))
    axes = fig.subplots(1, 3)
    ax_task, ax_cluster, ax_k = axes

    task_colors = _colors(len(task_names))
    for t, name in enumerate(task_names):
        mask = tasks == t
        if mask.any():
            ax_task.scatter(
                coords[mask, 0], coords[mask, 1], s=6, color=task_colors[t], label=name, alpha=0.7
            )
    ax_task.set_title("by task")
    ax_task.legend(fontsize=7, markerscale=2, frameon=False, loc="best")

    unique_clusters = np.unique(clusters)
    cluster_colors = _colors(len(unique_clusters))
    for c, color in zip(unique_clusters, cluster_colors):
        mask = clusters == c
        ax_cluster.scatter(coords[mask, 0], coords[mask, 1], s=6, color=color, label=f"k={c}", alpha=0.7)
    ax_cluster.set_title(f"by DPMM cluster (K = {len(unique_clusters)} assigned)")
    if len(unique_clusters) <= 20:
        ax_cluster.legend(fontsize=7, markerscale=2, frameon=False, loc="best")

    for ax in (ax_task, ax_cluster):
        ax.set_xlabel(f"PC1 ({100 * ratio[0]:.0f}% var)")
        ax.set_ylabel(f"PC2 ({100 * ratio[1]:.0f}% var)")
        ax.grid(alpha=0.3)

    if history is not None:
        order = np.argsort(history[:, 0], kind="stable")
        ax_k.step(history[order, 0], history[order, 1], where="post", color="C3")
        ax_k.plot(history[order, 0], history[order, 1], "o", color="C3", markersize=3)
        ax_k.yaxis.get_major_locator().set_params(integer=True)
    else:
        ax_k.text(0.5, 0.5, "no K history", ha="center", va="center", transform=ax_k.transAxes)
    ax_k.set_xlabel("env steps")
    ax_k.set_ylabel("number of clusters K")
    ax_k.set_title("DPMM clusters over time")
    ax_k.grid(alpha=0.3)
    fig.suptitle(title)
    return _save(fig, path)


__all__ = ["pca_2d", "plot_latent_space", "plot_success_curves", "plot_success_matrix"]
