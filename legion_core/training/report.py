"""`legion report RUN_DIR`: the PNG plots of a run, from what the trainer wrote (metrics.json,
eval.jsonl, latents/*.npz, report.json) — success curves per task with phase boundaries, the success
matrix heat map, and the latent space coloured by task and by DPMM cluster with K over time."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from legion_core.training import plots
from legion_core.training.metrics import load_metrics_json


def render_report(run_dir: str | Path) -> list[Path]:
    run_dir = Path(run_dir)
    if not (run_dir / "metrics.json").exists():
        raise FileNotFoundError(f"{run_dir}/metrics.json not found: is this a `legion train` run directory?")
    metrics, matrix = load_metrics_json(run_dir / "metrics.json")
    out_dir = run_dir / "plots"
    written = []
    curves = {name: matrix.curve(name) for name in matrix.task_names}
    curves = {k: v for k, v in curves.items() if len(v[0])}
    history = [json.loads(x) for x in (run_dir / "eval.jsonl").read_text().splitlines() if x.strip()]
    boundaries = []
    for phase in sorted({h["phase"] for h in history}):
        boundaries.append(max(h["global_step"] for h in history if h["phase"] == phase))
    if curves:
        written.append(plots.plot_success_curves(curves, boundaries, out_dir / "success_curves.png"))
    written.append(
        plots.plot_success_matrix(
            matrix.matrix(), matrix.task_names, matrix.phase_names, out_dir / "success_matrix.png"
        )
    )
    snaps = sorted((run_dir / "latents").glob("latents_step*.npz"))
    if snaps:
        with np.load(snaps[-1]) as z:
            report = (
                json.loads((run_dir / "report.json").read_text())
                if (run_dir / "report.json").exists()
                else {}
            )
            k_hist = [tuple(x) for x in report.get("k_history", [])]
            written.append(
                plots.plot_latent_space(
                    z["z"],
                    z["task_id"],
                    z["cluster"],
                    list(z["task_names"]),
                    k_hist,
                    out_dir / "latent_space.png",
                )
            )
    return written
