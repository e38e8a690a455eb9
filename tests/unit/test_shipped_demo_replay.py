"""Regression fixture from the shipped demo: a session recorded by `make demo` (models/legion-kuka
running the long-horizon chain drawer-open -> button-press-topdown -> drawer-close on the twin through the
ROS graph) is replayed offline through the shipped bundle; the policy must reproduce every recorded action,
bit-exactly where this machine's numeric signature equals the recording's, within the float32 tolerance
otherwise (docs/decisions/portable-regression-check.md). This bag was recorded before bags carried their
signature, on a machine nobody wrote down (tests/data/replay/shipped_demo/manifest.yaml): it is judged in
tolerance mode everywhere.
Regenerate after a model change with `make demo`, then keep the runtime's decision topics only (copy_topics
keeps the bag's numeric signature):
    .venv/bin/python -c "from legion_core.tools.bags.store import copy_topics; copy_topics('out/demo/demo_session',
        'tests/data/replay/shipped_demo/demo_session', ['/legion/observation', '/legion/action',
        '/legion/active_skill', '/legion/command_sent', '/legion/status', '/twin/success'])"
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

from legion_core.tools.regression.judge import float32_action_atol, judge_policy_offline
from legion_core.tools.regression.live import check
from legion_core.tools.regression.session import read_session
from legion_core.tools.ros_env import REPO

DATA = Path(__file__).resolve().parents[1] / "data" / "replay" / "shipped_demo"
BAG = DATA / "demo_session"
MANIFEST = yaml.safe_load((DATA / "manifest.yaml").read_text())
BUNDLE = REPO / "models" / "legion-kuka"


@pytest.fixture(scope="module")
def rec():
    return read_session(BAG, max_joint_states=0)


@pytest.fixture(scope="module")
def bundle():
    from legion_core.contracts.bundle import load

    return load(BUNDLE)


def test_shipped_demo_session_passes_the_offline_check_in_the_mode_its_signature_allows(tmp_path, bundle):
    """The issue's failure: on an AVX-512 Xeon (OpenBLAS SkylakeX kernels) the recomputed actions differ
    from the recorded ones by up to a few float32 ulps; a bag of unknown signature is judged within the
    float32 tolerance, and the judgement says so."""
    res = check(BAG, REPO / "scenarios" / "offline.yaml", BUNDLE, out_dir=tmp_path, emit=lambda _line: None)
    j = res.judgements[0]
    assert res.passed, j
    assert MANIFEST["numeric_signature"] is None and j.metrics["signature_recorded"] is None
    assert j.metrics["mode"] == "float32_tolerance" and "no numeric signature" in j.metrics["mode_reason"]
    assert j.metrics["actions"] > 100 and j.metrics["matched"] == j.metrics["actions"]
    assert j.metrics["max_abs_diff"] <= j.metrics["atol"] == float32_action_atol(bundle.weights)[0]
    assert j.metrics["signature_here"]["blas.architecture"]  # the report names the kernel it ran
    assert "float32_tolerance" in (tmp_path / "judgements.jsonl").read_text()


@pytest.mark.parametrize(
    ("delta", "passes"),
    [(2.98e-7, True), (2.1e-6, True), (1e-3, False), (1e-4, False)],
)
def test_tolerance_mode_passes_rounding_and_fails_a_regression(rec, bundle, delta, passes):
    """One recorded action moved by `delta`: the issue's 2.98e-07 and the largest difference any OpenBLAS
    kernel gives on this bag on the Xeon (2.08e-06 SkylakeX, 3.9e-06 Sandybridge, 4.3e-06 Prescott, all
    measured against the recording) pass; 1e-4 and 1e-3, far below anything the live judgements would
    notice (action_atol 0.05) but a changed computation, fail at that step."""
    k = len(rec.actions) // 3
    bad = copy.deepcopy(rec)
    a = bad.actions[k].action.copy()
    a[0] += delta if a[0] < 0 else -delta  # towards 0: stays inside [-1, 1]
    bad.actions[k].action = a
    j = judge_policy_offline(bad, bundle)
    assert j.metrics["mode"] == "float32_tolerance"
    assert j.metrics["atol"] < 1e-4  # a 1e-4 change must not hide in the tolerance
    assert j.passed is passes, j.to_dict()
    if not passes:
        assert (
            j.failed == 1 and j.first_divergence.step == k and f"policy step {k}" in j.first_divergence.detail
        )


def test_the_float32_tolerance_follows_from_the_network(bundle):
    """atol = 2 * D * sqrt(W) * eps_float32 * scale: D weight matrices of up to W inputs (the formula's
    derivation is in legion_core/tools/regression/judge.py and docs/decisions/portable-regression-check.md)."""
    atol, how = float32_action_atol(bundle.weights)
    eps = float(np.finfo(np.float32).eps)
    assert how["matrices"] == 10 and how["max_fan_in"] == 400  # encoder l0-l2, mu, logvar; actor l0-l3, out
    assert how["k"] == pytest.approx(2 * 10 * 20) and atol == pytest.approx(400 * eps)
    assert 2.08e-6 * 10 < atol < 1e-4  # 10x the largest measured kernel difference, 20x below 1e-3
    assert float32_action_atol(bundle.weights, scale=3.0)[0] == pytest.approx(3 * atol)


def test_a_different_model_fails_the_shipped_demo_check(tmp_path):
    from tests.bundle_factory import make_tiny_bundle

    other = make_tiny_bundle(tmp_path / "run", tmp_path / "other", tasks=("drawer-close",))[2]
    res = check(
        BAG, REPO / "scenarios" / "offline.yaml", other, out_dir=tmp_path / "out", emit=lambda _line: None
    )
    assert not res.passed
    assert res.judgements[0].first_divergence is not None
