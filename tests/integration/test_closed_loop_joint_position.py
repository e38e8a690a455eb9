"""The simulated KUKA in joint_position mode, driven ONLY through the real-robot path:

sim joint angles (by name) + simulated camera detections (object/goal from the simulator, expressed in the
camera frame through the calibration) -> Real2Sim -> Meta-World's scripted expert -> Sim2RealMapper ->
`set_joint_targets(q)` + `step([0, 0, 0, grip])`; no mocap. Success is compared per task with the same
expert on a mocap TaskEnv over the same seeded variations (`legion_core.bench.sim2real.closed_loop_report`).

Bar: joint_position success >= 90 % of the mocap rate per task. Two legion-mt10 tasks miss it on the
current twin (see KNOWN_GAPS and the issue-5 report); they are xfail with the reason, so a fix shows up
as XPASS.
"""

from __future__ import annotations

import pytest

from legion_core.bench.sim2real import closed_loop_report
from legion_core.contracts.tasks import TASK_SETS

FAST_TASKS = ("reach", "pick-place", "drawer-close")  # marker goal, grasp, object_offset goal

KNOWN_GAPS = {
    "door-open": (
        "two causes (issue-5 report): (1) the final hand positions (y 0.41-0.51, z 0.14-0.18) need A4 past "
        "its -120 deg limit with the flange down (353 of 1382 mocap hand positions; the weld tilts the hand "
        "up to 0.40 rad); MapperConfig.ik_max_tilt_rad reaches all of them with <= 0.44 rad; (2) the expert "
        "only clears the door's top edge because the weld lets the hand lag ~2.5 cm behind the mocap and "
        "moves joints up to 8x the datasheet speeds: at datasheet speeds the twin's fingers land on the "
        "door edge (best twin setting found: 0.70 vs 0.90, target_from=last_goal, 0.1 m leash, tilt 0.6)"
    ),
    "peg-unplug-side": (
        "the expert stops descending within 2 cm of z 0.15; under the weld the hand lags ~2.6 cm behind the "
        "mocap target and so grasps at z ~0.145, while the twin's hand follows its target and grasps ~2.5 "
        "cm higher (z ~0.17): a weaker grasp, a slower pull, successes at steps 180-199 vs 104-176 with the "
        "weld (200-step episodes); velocity feed-forward reaches 0.85-0.90 here but breaks push and "
        "pick-place, which rely on the servo lag (issue-5 report)"
    ),
}


def _check(task: str, episodes: int) -> None:
    report = closed_loop_report([task], episodes)
    r = report["tasks"][task]
    print(
        task, {k: r[k] for k in ("mocap_rate", "joint_position_rate", "limits_hit", "max_tracking_error_m")}
    )
    # The observation really came from real2sim and matched the simulator (exact twin, zero noise).
    assert r["invalid_observations"] == 0
    assert r["max_obs_error_m"]["hand_pos"] < 1e-9 and r["max_obs_error_m"]["obj_pos"] < 1e-9
    assert r["max_obs_error_m"]["goal_pos"] < 1e-3
    # The mapper kept the arm inside its limits (the servo never had to be stopped by a limit).
    assert r["max_limit_violation_rad"] < 0.01
    assert r["joint_position_rate"] >= 0.9 * r["mocap_rate"], r


@pytest.mark.parametrize("task", FAST_TASKS)
def test_closed_loop_fast_subset(task):
    _check(task, episodes=5)


@pytest.mark.slow
@pytest.mark.parametrize(
    "task",
    [
        pytest.param(t, marks=pytest.mark.xfail(reason=KNOWN_GAPS[t], strict=False)) if t in KNOWN_GAPS else t
        for t in TASK_SETS["legion-mt10"]
    ],
)
def test_closed_loop_legion_mt10(task):
    _check(task, episodes=20)
