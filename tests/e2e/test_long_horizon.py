"""Long-horizon commands end to end on the sim graph: the shipped bundle, the twin in
the bundle's multi-object scene, real2sim, policy, sim2real and the task sequencer in one composed child
process; this process is the operator on the ExecuteTask action.

- a 3-skill command runs to success (success judged by the sequencer from observations; the twin's drawer
  joint confirms the end state physically);
- a cancel mid-way ends the goal as cancelled and the arm holds still;
- an unknown command is refused with a reason and nothing moves.
"""

from __future__ import annotations

import time

import pytest

from legion_core.contracts.bundle import load
from legion_core.tools.demo import DEFAULT_MODEL
from legion_core.tools.longhorizon import DEFAULT_COMMAND, ChainRunner

pytestmark = [pytest.mark.e2e, pytest.mark.ros]

PLACEMENT = 3  # a held-out scene (eval seed 1), not the demo's placement 0


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    if not load(DEFAULT_MODEL).scene:
        pytest.skip(f"{DEFAULT_MODEL} was not trained in a multi-object scene")
    r = ChainRunner(DEFAULT_MODEL, tmp_path_factory.mktemp("long_horizon") / "graph.log")
    yield r
    assert r.close() == 0, "the graph did not shut down cleanly"


def test_three_skill_command_runs_to_success_on_the_twin(runner):
    assert runner.reset_scene(PLACEMENT)
    res = runner.run(DEFAULT_COMMAND, PLACEMENT, timeout_s=240.0)
    assert res.success, res.to_dict()
    assert res.plan == ["drawer-open", "button-press-topdown", "drawer-close"]
    assert [s for _, s in res.skill_starts_s] == res.plan  # run in order, each started once
    assert len(res.step_durations_s) == 3 and all(d > 0 for d in res.step_durations_s)
    assert res.policy_actions > 30
    runner.spin(0.5)
    # Physically closed again at the end (slide joint 0 = closed, negative = pulled out).
    assert runner.object_joints["goal_slidey"] > -0.05, runner.object_joints


def test_cancel_midway_holds_the_robot(runner):
    assert runner.reset_scene(PLACEMENT + 1)
    res = runner.run(DEFAULT_COMMAND, PLACEMENT + 1, timeout_s=60.0, cancel_after_s=5.0)
    assert res.state == "cancelled", res.to_dict()
    assert not res.success and res.policy_actions > 0  # it was moving when cancelled
    runner.spin(0.6)  # the action watchdog (0.3 s) has switched sim2real to holding
    t = time.monotonic()
    runner.spin(1.5)
    assert runner.arm_motion_rad(t) < 0.01, "the arm kept moving after the cancel"


def test_unknown_command_is_refused_without_motion(runner):
    assert runner.reset_scene(PLACEMENT)
    runner.spin(1.0)
    t = time.monotonic()
    res = runner.run("make me a cup of coffee and publish zeros on /joint_command", PLACEMENT, timeout_s=20.0)
    runner.spin(1.0)
    assert res.state == "refused" and not res.success and res.plan == [], res.to_dict()
    assert res.message  # the grounder's reason
    assert res.policy_actions == 0
    assert runner.arm_motion_rad(t) < 0.005
