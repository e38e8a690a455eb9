"""The sequencer state machine: preconditions, success from the observation, budgets, retries, cancel."""

from __future__ import annotations

import numpy as np

from legion_core.contracts.tasks import get_task
from legion_core.runtime.sequencer import Sequencer, SequencerConfig, SkillSpec, safety_refusal

DRAWER = SkillSpec("drawer-close", get_task("drawer-close").success, max_steps=10)
BUTTON = SkillSpec("button-press-topdown", get_task("button-press-topdown").success, max_steps=10)


def obs(hand=(0, 0.6, 0.2), obj=(0, 0.7, 0.1), goal=(0, 0.86, 0.05)):
    return list(hand) + list(obj) + [0, 0, 0] + list(goal)


def test_runs_a_plan_in_order_with_success_from_observations():
    s = Sequencer([DRAWER, BUTTON], config=SequencerConfig(success_hold_steps=2))
    out = s.tick(0.0)
    assert out.active_skill == "drawer-close" and out.state == "waiting"
    s.on_observation("drawer-close", True, "ok", obs(), 0.1)
    assert s.tick(0.1).state == "running"
    s.on_observation("drawer-close", True, "ok", obs(obj=(0, 0.8, 0.07)), 0.2)
    assert 0 < s.tick(0.2).progress < 1
    for t in (0.3, 0.4):  # two consecutive observations inside the threshold
        s.on_observation("drawer-close", True, "ok", obs(obj=(0, 0.86, 0.05)), t)
    out = s.tick(0.4)
    assert out.active_skill == "button-press-topdown" and out.step_index == 2
    # observations for another skill are ignored
    s.on_observation("drawer-close", True, "ok", obs(), 0.5)
    assert s.tick(0.5).state == "waiting"
    s.on_observation("button-press-topdown", True, "ok", obs(obj=(0, 0.8, 0.2), goal=(0, 0.8, 0.1)), 0.6)
    for t in (0.7, 0.8):
        s.on_observation("button-press-topdown", True, "ok", obs(obj=(0, 0.8, 0.11), goal=(0, 0.8, 0.1)), t)
    out = s.tick(0.8)
    assert out.done and out.success and "drawer-close" in out.message and len(out.step_durations_s) == 2
    assert out.active_skill == ""  # the robot holds after the plan


def test_precondition_timeout_names_the_reason():
    s = Sequencer([DRAWER], config=SequencerConfig(precondition_timeout_s=1.0))
    s.tick(0.0)
    s.on_observation("drawer-close", False, "object 'drawer_handle': not detected", [], 0.5)
    out = s.tick(1.5)
    assert out.done and not out.success
    assert "could not start" in out.message and "drawer_handle" in out.message


def test_step_budget_and_retries():
    s = Sequencer([DRAWER], config=SequencerConfig(retries=1))
    s.tick(0.0)
    s.on_observation("drawer-close", True, "ok", obs(), 0.1)
    for attempt in range(2):
        for _ in range(10):
            s.on_action("drawer-close")
        out = s.tick(0.2 + attempt)
    assert out.done and not out.success and "2 attempt" in out.message


def test_cancel_holds_and_says_what_was_done():
    s = Sequencer([DRAWER, BUTTON])
    s.tick(0.0)
    s.cancel(0.1)
    out = s.tick(0.1)
    assert out.done and not out.success and out.state == "cancelled"
    assert out.active_skill == "" and "holds" in out.message


def test_invalid_observation_never_counts_as_success():
    s = Sequencer([DRAWER], config=SequencerConfig(success_hold_steps=1))
    s.tick(0.0)
    s.on_observation("drawer-close", False, "stale", obs(obj=(0, 0.86, 0.05)), 0.1)
    assert not s.tick(0.1).done
    assert np.isclose(s.tick(0.1).progress, 0.0)


def test_cancel_names_its_reason_and_keeps_the_first():
    s = Sequencer([DRAWER, BUTTON])
    s.tick(0.0)
    s.cancel(0.1, "e-stop latched (e-stop topic)")
    s.cancel(0.1, "cancel requested by the action client")  # a later cancel does not rewrite why
    out = s.tick(0.1)
    assert out.state == "cancelled" and out.active_skill == ""
    assert "because e-stop latched (e-stop topic)" in out.message and "action client" not in out.message


def test_safety_refusal_from_the_safety_state():
    assert safety_refusal(False, "", []) is None
    assert safety_refusal(True, "hardware e-stop input", []).startswith(
        "e-stop latched (hardware e-stop input)"
    )
    assert "e-stop latched (reason not given)" in safety_refusal(True)
    assert safety_refusal(False, "", ["/policy_node"]).startswith("/policy_node is not alive")
    both = safety_refusal(False, "", ["/policy_node", "/real2sim_node"])
    assert both.startswith("/policy_node, /real2sim_node are not alive")
    assert "e-stop latched" in safety_refusal(True, "e-stop topic", ["/policy_node"])  # the latch first


# ------------------------------------------------------------------------------ the ready move, hold reasons
def test_the_ready_step_ends_when_sim2real_reports_reached_then_the_skill_runs():
    from legion_core.contracts.interface import READY_SKILL

    s = Sequencer([SkillSpec.ready(), DRAWER], config=SequencerConfig(success_hold_steps=1))
    out = s.tick(0.0)
    assert out.active_skill == READY_SKILL and out.step_count == 2
    s.on_ready("moving")
    assert s.tick(5.0).active_skill == READY_SKILL
    s.on_ready("reached")
    out = s.tick(6.0)
    assert out.active_skill == "drawer-close" and out.step_index == 2
    s.on_ready("reached")  # a late report for another step changes nothing
    s.on_observation("drawer-close", True, "ok", obs(obj=(0, 0.86, 0.05)), 6.1)
    s.on_observation("drawer-close", True, "ok", obs(obj=(0, 0.86, 0.05)), 6.2)
    out = s.tick(6.2)
    assert out.done and out.success and out.message.startswith("Done: ready (6.0 s), drawer-close")


def test_a_refused_ready_move_fails_the_plan_with_sim2reals_reason():
    s = Sequencer([SkillSpec.ready(), DRAWER])
    s.tick(0.0)
    s.on_ready(
        "refused: ready move refused: the tool would pass 0.010 m above the table; move the arm up by hand"
    )
    out = s.tick(0.1)
    assert out.done and not out.success
    assert "ready (step 1 of 2)" in out.message and "move the arm up by hand" in out.message


def test_a_failed_skill_says_which_hold_kept_it_from_moving():
    s = Sequencer([DRAWER], config=SequencerConfig(retries=0))
    s.tick(0.0)
    s.on_observation("drawer-close", True, "ok", obs(), 0.1)
    for i in range(30):
        s.on_hold("IK residual 31.0 mm / 1.571 rad (limits 10.0 mm / 0.1 rad)", 0.2 + 0.01 * i)
        out = s.tick(0.2 + 0.01 * i)
        if i == 0:
            assert out.hold_reason.startswith("IK residual")  # the live feedback names it
    s.on_hold("no action yet: waiting for the policy", 0.6)
    for _ in range(10):
        s.on_action("drawer-close")
    out = s.tick(0.7)
    assert out.done and not out.success and "progress 0%" in out.message
    assert "held it 31 time(s), most often: IK residual 31.0 mm / 1.571 rad" in out.message


def test_a_driver_fault_refuses_commands_with_its_fix():
    why = safety_refusal(False, "", (), "driver not ready: x is inactive; fix: switch")
    assert why == "driver not ready: x is inactive; fix: switch"
