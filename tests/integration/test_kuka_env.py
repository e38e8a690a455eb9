"""The KUKA iiwa 7 embodiment of Meta-World v3: same task world as the Sawyer (docs/kuka-embodiment.md)."""

from __future__ import annotations

import numpy as np
import pytest

from legion_core.contracts.tasks import TASK_SETS
from legion_core.robot import iiwa7
from legion_core.sim.factory import TaskEnv
from legion_core.training.evaluation import evaluate, parity_ok

FAST_EPISODES = 10


def test_kuka_model_structure():
    env = TaskEnv("reach", "kuka")
    m = env.env.model
    # The robot contributes exactly 9 DoFs first in qpos (7 arm + 2 fingers): tasks index qpos[9:].
    names = [m.joint(i).name for i in range(9)]
    assert names == list(iiwa7.JOINT_NAMES) + ["r_close", "l_close"]
    assert m.nu == 9  # 7 arm position servos, then Meta-World's 2 gripper actuators
    np.testing.assert_allclose(m.jnt_range[:7], iiwa7.JOINT_LIMITS_RAD)
    for name in ("hand", "mocap", "rightclaw", "leftclaw", "rightpad", "leftpad"):
        assert m.body(name) is not None
    env.close()


def test_hand_starts_at_meta_world_pose_with_down_orientation():
    env = TaskEnv("reach", "kuka")
    obs = env.reset(0)
    np.testing.assert_allclose(obs[:3], [0.0, 0.6, 0.2], atol=0.01)
    np.testing.assert_allclose(np.abs(env.env.data.body("hand").xquat), [0.7071, 0, 0.7071, 0], atol=0.02)
    env.close()


def test_parity_scripted_experts_all_legion_mt10_tasks():
    """Meta-World's experts succeed on the KUKA on >= 90% as many of the same seeded episodes as on the
    Sawyer (>= 9/10 where the Sawyer gets 10/10). The full 50-episode version is `legion bench envs`."""
    tasks = list(TASK_SETS["legion-mt10"])
    sawyer = evaluate(tasks, "sawyer", episodes=FAST_EPISODES, progress=False)
    kuka = evaluate(tasks, "kuka", episodes=FAST_EPISODES, progress=False)
    report = {s.task: (s.successes, k.successes, k.max_limit_violation_rad) for s, k in zip(sawyer, kuka)}
    failing = {t: r for t, r in report.items() if not parity_ok(r[0], r[1], FAST_EPISODES)}
    assert not failing, f"parity failed (sawyer, kuka, overshoot): {failing}"
    # The weld must not drag joints far past their limits (stiff limit constraints in the MJCF).
    assert max(r[2] for r in report.values()) < 0.05, report


def test_joint_position_mode_tracks_targets_without_mocap():
    env = TaskEnv("reach", "kuka", control_mode="joint_position")
    env.reset(0)
    q0 = env.env.arm_qpos
    hand0 = env.observe("legion12")[:3].copy()
    target = q0 + np.array([0.15, 0.0, 0.0, 0.1, 0.0, -0.1, 0.0])
    env.env.set_joint_targets(target)
    for _ in range(60):  # 0.75 s
        env.step(np.array([1.0, 1.0, 1.0, 0.0]))  # the Δxyz part must do nothing in this mode
    np.testing.assert_allclose(env.env.arm_qpos, target, atol=0.01)
    assert np.linalg.norm(env.observe("legion12")[:3] - hand0) > 0.03
    with pytest.raises(ValueError, match="finite"):
        env.env.set_joint_targets(np.full(7, np.nan))
    env.close()


def test_sawyer_has_no_joint_position_mode():
    with pytest.raises(ValueError, match="mocap"):
        TaskEnv("reach", "sawyer", control_mode="joint_position")
