#!/usr/bin/env python3
"""Draw the layer picture of docs/architecture.md from the real import graph.

Reads the layers from pyproject.toml's import-linter contract and the imports with grimp (the library
import-linter itself uses), so the picture cannot drift from the code: one box per layer with its modules,
one arrow per pair of layers that import each other, labelled with the number of import statements.

examples:
  PYTHONPATH=ros2_ws/src/legion_ros .venv/bin/python scripts/layer_map.py             # docs/img/layers.png
  PYTHONPATH=ros2_ws/src/legion_ros .venv/bin/python scripts/layer_map.py -o /tmp/l.svg
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import grimp
import matplotlib
import tomllib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
#: Box colours: what a robot PC runs (no torch, no mujoco), what needs the simulator or torch, and the
#: developer's tools.
ROBOT_PC, SIM_TRAIN, TOOLS = "#e3f4e1", "#fdebd3", "#eeeeee"
KIND = {"legion_core.sim": SIM_TRAIN, "legion_core.training": SIM_TRAIN, "legion_core.tools": TOOLS,
        "legion_core.bench": TOOLS, "legion_core.cli": TOOLS}  # fmt: skip


def layers_from_config() -> tuple[list[list[str]], list[str]]:
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    contract = next(c for c in cfg["contracts"] if c["type"] == "layers")
    return [[m.strip() for m in layer.split("|")] for layer in contract["layers"]], cfg["root_packages"]


def layer_of(module: str, layers: list[list[str]]) -> int | None:
    for i, layer in enumerate(layers):
        if any(module == m or module.startswith(m + ".") for m in layer):
            return i
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output", default=str(REPO / "docs" / "img" / "layers.png"), help="png or svg")
    args = ap.parse_args(argv)
    layers, roots = layers_from_config()
    graph = grimp.build_graph(*roots, include_external_packages=False)
    members: dict[int, list[str]] = {i: [] for i in range(len(layers))}
    for m in sorted(graph.modules):
        i = layer_of(m, layers)
        if i is not None and m not in {x for layer in layers for x in layer}:
            members[i].append(m)
    edges: Counter[tuple[int, int]] = Counter()
    for m in graph.modules:
        a = layer_of(m, layers)
        for imported in graph.find_modules_directly_imported_by(m):
            b = layer_of(imported, layers)
            if a is not None and b is not None and a != b:
                edges[(a, b)] += len(graph.get_import_details(importer=m, imported=imported)) or 1
    n = len(layers)
    fig, ax = plt.subplots(figsize=(13, 0.95 * n + 1))
    box_h, gap = 0.72, 0.28
    y_of = {i: (n - 1 - i) * (box_h + gap) for i in range(n)}
    for i, layer in enumerate(layers):
        y = y_of[i]
        ax.add_patch(
            FancyBboxPatch(
                (0, y), 9.2, box_h, boxstyle="round,pad=0.02", fc=KIND.get(layer[0], ROBOT_PC), ec="#555555"
            )
        )
        ax.text(0.12, y + box_h - 0.2, " | ".join(layer), fontsize=10, weight="bold", va="center")
        names = [m.split(".")[-1] for m in members[i] if m.count(".") <= layer[0].count(".") + 1]
        text = ", ".join(sorted(set(names)))
        ax.text(0.12, y + 0.2, text if len(text) < 150 else text[:147] + "...", fontsize=7.5, va="center")
    for (a, b), count in sorted(edges.items()):
        if b < a:  # an upward import: the contract would fail; drawn red so that it shows
            color = "red"
        else:
            color = "#555555"
        x = 9.4 + 0.28 * ((a * 3 + b) % 12)
        ax.annotate(
            "",
            xy=(x, y_of[b] + box_h),
            xytext=(x, y_of[a]),
            arrowprops=dict(arrowstyle="->", color=color, lw=0.8),
        )
        ax.text(x + 0.03, (y_of[a] + y_of[b] + box_h) / 2, str(count), fontsize=6, color=color)
    from matplotlib.patches import Patch

    legend = [Patch(fc=ROBOT_PC, ec="#555555", label="robot PC (numpy, rclpy; no torch, no mujoco)"),
              Patch(fc=SIM_TRAIN, ec="#555555", label="simulation / training (mujoco, torch)"),
              Patch(fc=TOOLS, ec="#555555", label="developer tools, benchmarks, CLI")]  # fmt: skip
    ax.legend(handles=legend, loc="upper right", fontsize=8, frameon=False)
    ax.set_xlim(-0.1, 13.0)
    ax.set_ylim(-0.2, n * (box_h + gap))
    ax.axis("off")
    ax.set_title(
        "LEGION runtime layers: each imports only the layers below it (arrows: import statements)",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(args.output, dpi=130)
    print(f"wrote {args.output}: {n} layers, {sum(edges.values())} cross-layer imports")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
