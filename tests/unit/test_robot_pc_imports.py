"""A robot PC needs neither torch nor mujoco (docs/architecture.md, "Layers"): in a process where importing
them (or the simulation and training layers) raises, the robot, contracts and runtime layers import, the
shipped bundle loads and a control step runs: observation -> policy action -> mapper -> supervisor."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

BLOCKED = ("torch", "mujoco", "metaworld", "gymnasium", "sentence_transformers",
           "legion_core.sim", "legion_core.training")  # fmt: skip

SCRIPT = textwrap.dedent(
    """
    import importlib, importlib.abc, json, pkgutil, sys
    BLOCKED = {blocked!r}

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if any(name == b or name.startswith(b + ".") for b in BLOCKED):
                raise ImportError(f"blocked on the robot PC: {{name}}")
            return None

    sys.meta_path.insert(0, Block())

    import legion_core, sim2real
    imported = []
    for pkg in ("legion_core.base", "legion_core.robot", "legion_core.contracts", "legion_core.runtime", "sim2real"):
        mod = importlib.import_module(pkg)
        imported.append(pkg)
        for info in pkgutil.walk_packages(mod.__path__, pkg + "."):
            importlib.import_module(info.name)
            imported.append(info.name)

    import numpy as np
    from legion_core.contracts.bundle import load
    from legion_core.robot import iiwa7
    from legion_core.runtime.policy_runner import PolicyRunner
    from sim2real.calibration import sim_calibration
    from sim2real.mapper import Sim2RealMapper

    bundle = load({bundle!r})
    runner = PolicyRunner(bundle)
    skill = bundle.skill_names[0]
    assert runner.set_skill(skill) == "ok"
    decision = runner.step(np.zeros(bundle.layout.dim), True, "", skill, 0.0, 0.0)
    assert decision.reason == "ok", decision.reason
    action = decision.action
    from legion_core.robot.description import ArmSource, load_arm

    # The arm from a URDF (urdf_parser_py, the shipped descriptions as package data), as a lab's would be.
    mapper = Sim2RealMapper(sim_calibration(), arm=load_arm(ArmSource("iiwa7")))
    q_home = np.asarray(iiwa7.HOME_SEED_Q_RAD)
    mapper.reset(q_home, 0.0)
    command = mapper.map(action, q_home, 0.0)
    assert np.all(np.isfinite(command.q_target))
    leaked = sorted(m for m in sys.modules if any(m == b or m.startswith(b + ".") for b in BLOCKED))
    print(json.dumps({{"imported": imported, "action": [float(a) for a in action], "leaked": leaked}}))
    """
)


def test_runtime_layers_import_and_act_without_torch_and_mujoco():
    script = SCRIPT.format(blocked=BLOCKED, bundle=str(REPO / "models" / "legion-kuka"))
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-4000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["leaked"] == []
    for must in ("legion_core.contracts.bundle", "legion_core.runtime.policy_runner", "sim2real.mapper",
                 "sim2real.supervisor", "sim2real.real2sim", "legion_core.robot.kinematics"):  # fmt: skip
        assert must in out["imported"]
    assert len(out["action"]) == 4 and all(-1.0 <= a <= 1.0 for a in out["action"])


def test_the_block_is_real():
    """The same blocker stops a module of the simulation layer: the test above can fail."""
    script = SCRIPT.format(blocked=BLOCKED, bundle=str(REPO / "models" / "legion-kuka")).replace(
        "import numpy as np", "import legion_core.sim.twin\nimport numpy as np"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "blocked on the robot PC: legion_core.sim" in r.stderr


def _pyenv_python(version: str) -> Path | None:
    import glob
    import os

    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    found = sorted(glob.glob(str(root / "versions" / f"{version}.*" / "bin" / "python")))
    return Path(found[-1]) if found else None


@pytest.mark.slow
@pytest.mark.parametrize("version", ["3.10", "3.12"])
def test_runtime_only_install_on_the_robot_pcs_pythons(version, tmp_path):
    """`pip install <repo>` into a fresh venv of Humble's Python 3.10 and Jazzy's 3.12 (pyenv): only the
    runtime's dependencies (pyproject.toml: no torch, mujoco, training), then the robot-PC check above runs
    there: the layers import, the shipped bundle loads and a control step acts."""
    base = _pyenv_python(version)
    if base is None:
        pytest.skip(f"pyenv has no Python {version} here")
    venv = tmp_path / "venv"
    subprocess.run([str(base), "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(REPO)],
                       capture_output=True, text=True, timeout=900)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    frozen = subprocess.run([str(py), "-m", "pip", "freeze"], capture_output=True, text=True).stdout.lower()
    for heavy in ("torch", "mujoco", "metaworld", "sentence-transformers"):
        assert f"{heavy}==" not in frozen, f"{heavy} was installed with the runtime"
    script = SCRIPT.format(blocked=BLOCKED, bundle=str(REPO / "models" / "legion-kuka"))
    r = subprocess.run([str(py), "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-4000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["leaked"] == [] and len(out["action"]) == 4
    ver = subprocess.run(
        [str(py), "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True
    )
    assert ver.stdout.strip() == str(tuple(int(v) for v in version.split(".")))
