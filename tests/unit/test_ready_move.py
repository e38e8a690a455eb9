"""The ready move (sim2real.mapper.plan_ready, Supervisor READY_SKILL): from a posture the policy never saw
(lbr_fri_ros2_stack's HOME, the tool turned 180 degrees about the vertical), a slow joint-space move to the
policy's tool orientation, that the operator starts as a skill; slow, smooth, above the table, and refused
with a reason where it cannot be done safely."""

from __future__ import annotations

import numpy as np
import pytest

from legion_core.contracts.interface import READY_SKILL, StatusLevel
from legion_core.robot import iiwa7
from sim2real.calibration import sim_calibration
from sim2real.mapper import MapperConfig, Sim2RealMapper, WorkspaceError
from sim2real.supervisor import Supervisor

LBR_HOME = np.array([0.0, 0.486, 0.0, -1.756, 0.0, 0.9, -1.571])
NAMES = list(iiwa7.JOINT_NAMES)


def _run(sup: Supervisor, q0: np.ndarray, seconds: float, dt: float = 0.01):
    """Ticks at the command period, the arm following each command exactly; returns the commands."""
    q, t, out = q0.copy(), 1.0, []
    for _ in range(int(seconds / dt)):
        sup.on_joint_state(NAMES, q, t, t)
        tk = sup.tick(t)
        if tk.q_cmd is not None:
            q = np.array(tk.q_cmd)
            out.append((t, q.copy(), tk))
        t += dt
    return out


def test_from_the_lbr_home_the_ready_move_reaches_the_policys_orientation_slowly():
    mapper = Sim2RealMapper(sim_calibration(), MapperConfig())
    assert mapper.tool_orientation_error_rad(LBR_HOME) > 1.0  # what made every action fail the IK check
    sup = Supervisor(mapper)
    sup.on_joint_state(NAMES, LBR_HOME, 1.0, 1.0)
    assert sup.ready_needed()
    assert sup.set_active_skill(READY_SKILL)[0]
    cmds = _run(sup, LBR_HOME, 40.0)
    assert sup.ready_state == "reached", cmds[-1][2].reason
    q_end = cmds[-1][1]
    assert mapper.tool_orientation_error_rad(q_end) < 0.5 * MapperConfig().ik_max_orientation_err_rad
    # Where the simulated embodiment starts a skill aimed at the same point (kinematics.start_posture).
    np.testing.assert_allclose(mapper.tool_pos_sim(q_end), MapperConfig().ready_hand_pos_sim_m, atol=0.03)
    assert not sup.ready_needed()
    # Slow: never faster than the ready scale of the datasheet speeds (+1 % for the discrete profile).
    qs = np.array([c[1] for c in cmds])
    speed = np.abs(np.diff(qs, axis=0)) / 0.01
    assert np.all(speed <= iiwa7.JOINT_VEL_LIMITS_RAD_S * MapperConfig().ready_joint_vel_scale * 1.01)
    # Above the table all the way.
    assert min(mapper.tool_pos_sim(q)[2] for q in qs) >= MapperConfig().ready_min_height_m - 1e-3
    assert all(c[2].level == StatusLevel.OK for c in cmds)
    # After it, the mapper starts from the ready posture: a policy step is no longer refused.
    ok, _ = sup.set_active_skill("drawer-close")
    assert ok


def test_an_interrupted_ready_move_resumes_from_where_it_stopped_without_a_jump():
    sup = Supervisor(Sim2RealMapper(sim_calibration(), MapperConfig()))
    sup.on_joint_state(NAMES, LBR_HOME, 1.0, 1.0)
    sup.set_active_skill(READY_SKILL)
    cmds = _run(sup, LBR_HOME, 2.0)
    q_mid = cmds[-1][1]
    # The joint states stop for 0.5 s: hold; then the move is planned anew from the held command.
    t = cmds[-1][0] + 0.5
    tk = sup.tick(t)
    assert tk.level == StatusLevel.HOLD
    np.testing.assert_allclose(tk.q_cmd, q_mid)
    sup.on_joint_state(NAMES, q_mid, t + 0.01, t + 0.01)
    tk = sup.tick(t + 0.01)
    assert np.max(np.abs(tk.q_cmd - q_mid)) < 1e-3 and sup.ready_state == "moving"


def test_a_ready_move_that_would_pass_through_the_table_is_refused_with_the_reason():
    cfg = MapperConfig(ready_min_height_m=0.45)  # a cell whose ready path would dip below 0.45 m
    sup = Supervisor(Sim2RealMapper(sim_calibration(), cfg))
    sup.on_joint_state(NAMES, LBR_HOME, 1.0, 1.0)
    sup.set_active_skill(READY_SKILL)
    cmds = _run(sup, LBR_HOME, 0.05)
    assert sup.ready_state.startswith("refused: ready move refused: the tool would pass")
    assert "move the arm up by hand" in sup.ready_state
    assert sup.active_skill == "" and sup.skill_cleared_by == "ready move refused"
    assert np.max(np.abs(cmds[-1][1] - LBR_HOME)) < 1e-9  # nothing moved


def test_ready_posture_out_of_reach_names_the_parameter():
    m = Sim2RealMapper(sim_calibration(), MapperConfig(ready_hand_pos_sim_m=(0.0, 2.5, 0.2)))
    with pytest.raises(ValueError, match="ready_hand_pos_sim_m"):
        m.ready_posture()
    with pytest.raises(WorkspaceError, match="outside the joint limits"):
        Sim2RealMapper(sim_calibration(), MapperConfig()).plan_ready(np.full(7, 3.0), 0.0)


# ---------------------------------------------------------------- the ready move to a given target posture
def _at_ready(mapper=None):
    """A supervisor whose ready move (no target) has reached the ready posture; the commands' last posture."""
    sup = Supervisor(mapper or Sim2RealMapper(sim_calibration(), MapperConfig()))
    sup.on_joint_state(NAMES, LBR_HOME, 1.0, 1.0)
    assert sup.set_active_skill(READY_SKILL)[0]
    cmds = _run(sup, LBR_HOME, 40.0)
    assert sup.ready_state == "reached"
    return sup, cmds[-1][0], cmds[-1][1]


def _calibration_pose():
    from sim2real.handeye_plan import SamplePlanConfig, plan_samples

    return plan_samples(sim_calibration(), SamplePlanConfig(n_poses=3)).poses[0].q


def _run_from(sup, q0, t0, seconds, dt=0.01):
    q, t, out = q0.copy(), t0 + dt, []
    for _ in range(int(seconds / dt)):
        sup.on_joint_state(NAMES, q, t, t)
        tk = sup.tick(t)
        q = np.array(tk.q_cmd)
        out.append((t, q.copy(), tk))
        t += dt
    return out


def test_a_target_posture_is_reached_by_the_ready_moves_slow_profile_inside_the_box():
    sup, t, q = _at_ready()
    target = _calibration_pose()
    names = list(sup.mapper.robot_joint_names)
    order = [6, 0, 3, 1, 5, 2, 4]  # by name, in any order
    ok, msg = sup.set_ready_target([names[i] for i in order], [target[i] for i in order], t + 0.01)
    assert ok, msg
    assert sup.ready_state == "moving" and "accepted" in msg
    cmds = _run_from(sup, q, t, sup.ready.duration_s + 1.0)
    assert sup.ready_state == "reached", cmds[-1][2].reason
    np.testing.assert_allclose(cmds[-1][1], target, atol=1e-9)
    assert cmds[-1][2].reason == "ready: at the target posture, waiting for a skill"
    qs = np.array([q] + [c[1] for c in cmds])
    speed = np.abs(np.diff(qs, axis=0)) / 0.01
    assert np.all(speed <= iiwa7.JOINT_VEL_LIMITS_RAD_S * MapperConfig().ready_joint_vel_scale * 1.01)
    m = sup.mapper
    assert all(m.box_excess_m(m.tool_pos_sim(q)) <= MapperConfig().box_tolerance_m for q in qs)
    assert all(c[2].level == StatusLevel.OK for c in cmds)
    # The next target is taken from there; the driver's order when no names are given.
    ok, msg = sup.set_ready_target([], list(q), cmds[-1][0] + 0.01)
    assert ok, msg


@pytest.mark.parametrize(
    "change, words",
    [
        ((3, -0.1), "joint lbr_A4 target"),  # A4 (at -118 deg) beyond its -120 deg limit
        ((0, -3.2), "joint lbr_A1 target"),
        ((1, +0.9), "workspace box"),  # leaning far forward: the tool leaves the box (or the table floor)
    ],
)
def test_a_target_that_fails_a_check_is_refused_with_the_reason_and_nothing_moves(change, words):
    sup, t, q = _at_ready()
    target = q.copy()
    target[change[0]] += change[1]
    ok, msg = sup.set_ready_target([], list(target), t + 0.01)
    assert not ok
    if "lbr" in words:
        assert words in msg and "limit" in msg and "deg" in msg, msg
    else:
        assert ("workspace box" in msg) or ("above the table" in msg), msg
    assert sup.ready_state == "reached" and sup.ready_target is None
    cmds = _run_from(sup, q, t, 0.5)
    assert np.max(np.abs(np.array([c[1] for c in cmds]) - q)) < 1e-12  # nothing moved


def test_a_target_is_refused_while_another_skill_runs_or_the_move_is_under_way():
    sup, t, q = _at_ready()
    target = _calibration_pose()
    sup.set_active_skill("drawer-close")
    ok, msg = sup.set_ready_target([], list(target), t)
    assert not ok and "not 'ready'" in msg and "drawer-close" in msg
    sup.set_active_skill("")
    assert not sup.set_ready_target([], list(target), t)[0]
    # Back to `ready`: a new activation has no target (the ready posture, as without one).
    sup.set_active_skill(READY_SKILL)
    assert sup.ready_target is None
    _run_from(sup, q, t, 0.2)
    ok, msg = sup.set_ready_target([], list(target), t + 0.3)
    assert ok, msg
    ok, msg = sup.set_ready_target([], list(q), t + 0.4)
    assert not ok and "under way" in msg
    # An arm that does not arrive (blocked: the measured joints stay behind): once the profile has ended the
    # move may be replaced by the next target, planned from the command sent.
    tt, q_cmd = t + 0.3, q.copy()
    while tt < t + 0.3 + sup.ready.duration_s + 0.5:
        tt += 0.01
        q_meas = q_cmd + np.array([0.05, 0, 0, 0, 0, 0, 0])  # 0.05 rad short on A1, under the tracking bound
        sup.on_joint_state(NAMES, q_meas, tt, tt)
        q_cmd = np.array(sup.tick(tt).q_cmd)
    assert sup.ready_state == "moving" and sup.ready.fraction(tt) == 1.0
    ok, msg = sup.set_ready_target([], list(q), tt + 0.01)
    assert ok, msg
    # Bad names: named, with the fix.
    sup2, t2, q2 = _at_ready()
    ok, msg = sup2.set_ready_target(["A1", "A2"], [0.0, 0.0], t2)
    assert not ok and "joint_names" in msg
    ok, msg = sup2.set_ready_target([], [0.0] * 6, t2)
    assert not ok and "7 joint angles" in msg
    ok, msg = sup2.set_ready_target([], [float("nan")] * 7, t2)
    assert not ok and "not finite" in msg
    sup2.estop("test")
    ok, msg = sup2.set_ready_target([], list(q2), t2)
    assert not ok and msg.startswith("e-stop latched")


def test_an_interrupted_target_move_resumes_towards_the_target():
    sup, t, q = _at_ready()
    target = _calibration_pose()
    assert sup.set_ready_target([], list(target), t + 0.01)[0]
    cmds = _run_from(sup, q, t, 1.0)
    q_mid, t_mid = cmds[-1][1], cmds[-1][0]
    assert sup.tick(t_mid + 0.5).level == StatusLevel.HOLD  # joint states stop
    cmds = _run_from(sup, q_mid, t_mid + 0.5, 30.0)
    assert sup.ready_state == "reached"
    np.testing.assert_allclose(cmds[-1][1], target, atol=1e-9)


def test_plan_target_checks_the_path_not_only_the_end():
    m = Sim2RealMapper(sim_calibration(), MapperConfig())
    q_ready = m.ready_posture()
    move = m.plan_target(q_ready, _calibration_pose(), 2.0)
    assert move.t0_s == 2.0 and move.duration_s > 0.5
    with pytest.raises(WorkspaceError, match="ready target refused: measured q is outside the joint limits"):
        m.plan_target(np.full(7, 3.0), q_ready, 0.0)
    # A box that holds both ends' tools but not the path between them: A1 swings the tool on an arc about the
    # base's axis, which bulges beyond the straight line (and the box) between its ends.
    q_a, q_b = q_ready.copy(), q_ready.copy()
    q_a[0] -= 0.3
    q_b[0] += 0.3
    ends = np.array([m.tool_pos_sim(q_a), m.tool_pos_sim(q_b)])
    box = dict(workspace_low_m=tuple(ends.min(0) - 0.001), workspace_high_m=tuple(ends.max(0) + 0.001))
    swing = Sim2RealMapper(sim_calibration(), MapperConfig(**box))
    with pytest.raises(
        WorkspaceError,
        match=r"workspace box \[-0.119, 0.481, 0.249\]..\[0.119, 0.483, 0.251\] m by 0.0\d\d m at .* of the move",
    ):
        swing.plan_target(q_a, q_b, 0.0)
