"""The layer contracts (pyproject.toml `[tool.importlinter]`, docs/architecture.md "Layers") hold on this
tree, and they are not a formality: an upward import, an import cycle, rclpy below the ROS layers or torch
on the robot PC's path each breaks them. `make lint` runs the same contracts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")
PACKAGES = {"legion_core": REPO / "legion_core", "sim2real": REPO / "sim2real",
            "legion_ros": REPO / "ros2_ws" / "src" / "legion_ros" / "legion_ros"}  # fmt: skip


def lint(root: Path, src_root: Path) -> subprocess.CompletedProcess:
    """Run import-linter with the repository's contracts on the packages under `src_root`."""
    env = dict(os.environ, PYTHONPATH=str(src_root), NO_COLOR="1", COLUMNS="200")
    return subprocess.run(
        [str(LINT), str(root / "pyproject.toml"), "--no-cache"],
        cwd=src_root, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory) -> Path:
    """The three packages copied next to the contracts, so that a test can break one file of the copy.
    PYTHONPATH puts the copy before the editable install (its finder is appended to sys.meta_path)."""
    root = tmp_path_factory.mktemp("layers")
    for name, src in PACKAGES.items():
        shutil.copytree(src, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def break_with(tree: Path, module: str, line: str):
    """Append `line` to `module`'s file in the copy; returns a function that restores it."""
    path = tree / (module.replace(".", "/") + ".py")
    if not path.exists():
        path = tree / module.replace(".", "/") / "__init__.py"
    original = path.read_text()
    path.write_text(original + "\n" + line + "\n")
    return lambda: path.write_text(original)


def test_contracts_hold_on_the_tree():
    r = lint(REPO, REPO / "ros2_ws" / "src" / "legion_ros")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "BROKEN" not in r.stdout


def test_the_copy_is_what_the_linter_reads(tree_copy):
    r = lint(tree_copy, tree_copy)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        # robot description importing the trainer: an upward import across four layers
        ("legion_core.robot.kinematics", "import legion_core.training.trainer", "Each layer imports only"),
        # the runtime layer reaching the simulation (and so mujoco) from a robot-PC module
        ("sim2real.mapper", "import legion_core.sim.twin", "Each layer imports only"),
        # rclpy in a pure module
        ("legion_core.runtime.sequencer", "import rclpy", "rclpy and ROS messages only"),
        # torch on the robot PC's path
        ("legion_core.contracts.bundle", "import torch", "neither torch nor mujoco"),
        # a cycle between two siblings of one layer
        ("legion_core.contracts.layouts", "import legion_core.contracts.bundle", "No import cycles"),
    ],
)
def test_a_violation_breaks_its_contract(tree_copy, module, line, contract):
    restore = break_with(tree_copy, module, line)
    try:
        r = lint(tree_copy, tree_copy)
    finally:
        restore()
    assert r.returncode != 0, f"{line!r} in {module} passed the contracts:\n{r.stdout[-3000:]}"
    broken = [ln for ln in r.stdout.splitlines() if "BROKEN" in ln]
    assert any(contract in ln for ln in broken) or contract in r.stdout.split("Broken contracts")[-1], (
        r.stdout
    )


def test_every_module_has_its_line_in_the_architecture_doc():
    """docs/architecture.md's module map names every module of the tree (one line each), so a new module
    has to say which layer it is in and what it is for."""
    doc = (REPO / "docs" / "architecture.md").read_text()
    missing = []
    for root in PACKAGES.values():
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(root.parent).as_posix()
            if path.name == "__init__.py" and rel != "legion_core/cli/__init__.py":
                continue  # a package is described by its modules (the CLI's __init__ is its dispatcher)
            if f"`{rel}`" not in doc:
                missing.append(rel)
    assert not missing, f"modules without a line in docs/architecture.md (Layers): {missing}"
