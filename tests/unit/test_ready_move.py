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
