"""sim2real.mapper: each safety layer acts, reports itself, and the timing modes behave."""

from __future__ import annotations

import numpy as np
import pytest

from legion_core.robot import iiwa7
from legion_core.robot import kinematics as kin
from legion_core.robot.description import shipped_urdf
from sim2real.calibration import EXAMPLE_REAL_CALIBRATION_PATH, load_calibration, sim_calibration
from sim2real.mapper import Command, MapperConfig, Sim2RealMapper, WorkspaceError

CAL = sim_calibration()
V_MAX = iiwa7.JOINT_VEL_LIMITS_RAD_S


@pytest.fixture(scope="module")
def home():
    from legion_core.sim.kuka import home_posture

    return home_posture((0.0, 0.6, 0.2))[0]


def mapper(home, t=0.0, **kw) -> Sim2RealMapper:
    m = Sim2RealMapper(CAL, MapperConfig(**kw))
    m.reset(home, t)
    return m


def step_ok(cmd: Command, cfg: MapperConfig) -> None:
    """The invariants, for one command."""
    assert np.all(np.isfinite(cmd.q_target))
    assert np.all(cmd.q_target >= kin.Q_LOW) and np.all(cmd.q_target <= kin.Q_HIGH)
    v = kin.IIWA7.velocity_limits_rad_s * cfg.joint_vel_scale
    assert np.all(np.abs(cmd.q_target - cmd.q_start) <= v * cmd.duration_s * (1 + 1e-9) + 1e-12)


def test_unit_action_moves_the_tool_one_centimetre_in_sim_world(home):
    for timing in ("settle", "stream"):
        m = mapper(home, timing=timing)
        p0 = m.tool_pos_sim(home)
        for axis in range(3):
            a = np.zeros(4)
            a[axis] = 1.0
            a[3] = -1.0
            cmd = m.map(a, m.interpolate(np.inf) if axis else home, 0.1 * axis)
            expected = np.zeros(3)
            expected[axis] = 0.01
            np.testing.assert_allclose(cmd.tool_pos_sim_m - p0, expected, atol=3e-4)
            assert cmd.limits_hit == [] and not cmd.hold and cmd.reason == "ok"
            assert cmd.ik_residual_m < 1e-3
            assert cmd.gripper == pytest.approx(CAL.gripper_open_m) and cmd.gripper_action == -1.0
            p0 = cmd.tool_pos_sim_m
            step_ok(cmd, m.config)


def test_map_before_reset_raises():
    with pytest.raises(RuntimeError, match="reset"):
        Sim2RealMapper(CAL).map([0, 0, 0, 0], np.zeros(7), 0.0)


def test_reset_refuses_unsafe_start_postures(home):
    m = Sim2RealMapper(CAL)
    with pytest.raises(WorkspaceError, match="outside the workspace box"):
        m.reset(np.zeros(7), 0.0)  # straight up: tool 1.3 m high
    with pytest.raises(WorkspaceError, match="not finite"):
        m.reset(np.full(7, np.nan), 0.0)
    q = home.copy()
    q[1] = kin.Q_HIGH[1] + 0.05
    with pytest.raises(WorkspaceError, match="joint limits"):
        m.reset(q, 0.0)
    with pytest.raises(WorkspaceError, match="t=nan"):
        m.reset(home, float("nan"))


def test_action_clamp_and_non_finite_actions(home):
    m = mapper(home)
    cmd = m.map([5.0, 0.0, 0.0, 3.0], home, 0.0)
    assert "action_clamp" in cmd.limits_hit and "gripper_clamp" in cmd.limits_hit
    assert cmd.gripper_action == 1.0 and cmd.gripper == pytest.approx(CAL.gripper_closed_m)
    ref = mapper(home).map([1.0, 0.0, 0.0, 1.0], home, 0.0)
    np.testing.assert_allclose(cmd.q_target, ref.q_target, atol=1e-12)

    q_prev = cmd.q_target
    for bad in ([np.nan, 0, 0, -1], [np.inf, 0, 0, -1], [0, -np.inf, 0, -1]):
        c = m.map(bad, q_prev, 1.0)
        assert c.hold and "action_nonfinite" in c.limits_hit
        np.testing.assert_array_equal(c.q_target, q_prev)
        assert c.gripper_action == -1.0  # the finite gripper part still applies
    c = m.map([0.0, 1.0, 0.0, np.nan], q_prev, 2.0)
    assert "gripper_nonfinite" in c.limits_hit and not c.hold
    assert c.gripper_action == -1.0  # kept from the previous command
    for malformed in ([1.0, 2.0], "abc", None, [[1, 2], [3, 4]]):
        c = m.map(malformed, c.q_target, 3.0)
        assert c.hold and "action_malformed" in c.limits_hit


def test_invalid_measured_q_holds_the_last_safe_target(home):
    m = mapper(home)
    first = m.map([1, 0, 0, 0], home, 0.0)
    for bad in (np.full(7, np.nan), np.r_[home[:6], np.inf], home[:6], home + 3.0, "q"):
        c = m.map([1, 0, 0, 0], bad, 1.0)
        assert c.hold and "invalid_measured_q" in c.limits_hit, c
        np.testing.assert_array_equal(c.q_target, first.q_target)


def test_tracking_error_holds(home):
    m = mapper(home, max_tracking_error_rad=0.2)
    q = home.copy()
    q[0] += 0.5  # the arm is not where we commanded it (collision, wrong joint order)
    c = m.map([1, 0, 0, 0], q, 0.0)
    assert c.hold and "tracking_error" in c.limits_hit and "0.500 rad" in c.reason


def test_invalid_or_backwards_time_holds(home):
    m = mapper(home, t=1.0)
    c = m.map([1, 0, 0, 0], home, float("nan"))
    assert c.hold and "invalid_time" in c.limits_hit
    c = m.map([1, 0, 0, 0], home, 0.5)
    assert c.hold and "invalid_time" in c.limits_hit


def test_workspace_box_clamps_in_sim_world(home):
    m = mapper(home, timing="stream", max_tool_speed_m_s=1.0)
    hit = False
    q = home
    for k in range(80):
        c = m.map([0.0, 0.0, 1.0, 0.0], q, 0.1 * k)
        q = c.q_target
        assert c.tool_pos_sim_m[2] <= 0.5 + m.config.box_tolerance_m
        hit |= "workspace_box" in c.limits_hit
        step_ok(c, m.config)
    assert hit
    assert c.tool_pos_sim_m[2] == pytest.approx(0.5, abs=1e-3)


def test_box_is_mapped_through_the_calibration(home):
    """The box is given in sim_world; the robot moves in its base frame (rotated 90 deg here)."""
    m = mapper(home, timing="stream", max_tool_speed_m_s=1.0, workspace_high_m=(0.02, 1.0, 0.5))
    q = home
    for k in range(10):
        q = m.map([1.0, 0.0, 0.0, 0.0], q, 0.1 * k).q_target  # +x in sim_world = -y in the base frame
    assert m.tool_pos_sim(q)[0] == pytest.approx(0.02, abs=1e-3)


def test_cartesian_speed_bound(home):
    m = mapper(home, timing="stream", policy_period_s=0.1, max_tool_speed_m_s=0.1)
    c = m.map([1.0, 1.0, 1.0, 0.0], home, 0.0)  # 1.73 cm asked, 1 cm allowed in 0.1 s
    assert "cartesian_speed" in c.limits_hit
    assert np.linalg.norm(c.tool_pos_sim_m - m.tool_pos_sim(home)) <= 0.01 + m.config.cartesian_tolerance_m
    d = (c.tool_pos_sim_m - m.tool_pos_sim(home)) / 0.01
    np.testing.assert_allclose(d, np.ones(3) / np.sqrt(3), atol=0.05)  # direction kept


def test_joint_velocity_limit_scales_the_whole_step(home):
    m = mapper(home, timing="stream", policy_period_s=0.1, joint_vel_scale=0.02, max_tool_speed_m_s=1.0)
    c = m.map([1.0, 0.0, 0.0, 0.0], home, 0.0)
    assert "joint_velocity" in c.limits_hit
    step_ok(c, m.config)
    assert np.max(np.abs(c.q_target - home) / (V_MAX * 0.02 * 0.1)) == pytest.approx(1.0, abs=1e-6)


def test_joint_limit_margin(home):
    # Drive towards the shoulder's limit with a box that allows it: the margin holds.
    m = mapper(
        home,
        timing="stream",
        max_tool_speed_m_s=1.0,
        workspace_low_m=(-2, -2, -2),
        workspace_high_m=(2, 2, 2),
    )
    q = home
    seen = set()
    for k in range(150):
        c = m.map([0.0, -1.0, -1.0, 0.0], q, 0.1 * k)
        q = c.q_target
        seen.update(c.limits_hit)
        assert np.all(q >= kin.Q_LOW + m.config.joint_limit_margin_rad - 1e-9)
        assert np.all(q <= kin.Q_HIGH - m.config.joint_limit_margin_rad + 1e-9)
    assert "ik_residual" in seen or "joint_limit" in seen


def test_unreachable_targets_report_the_ik_residual(home):
    box = dict(workspace_low_m=(-2, -2, -2), workspace_high_m=(2, 2, 2))
    for mode, expect_motion in (("best_effort", True), ("hold", False)):
        m = mapper(
            home, timing="stream", max_tool_speed_m_s=1.0, ik_unreachable=mode, ik_max_residual_m=0.005, **box
        )
        q = home
        residual_seen = False
        for k in range(120):
            c = m.map([0.0, 1.0, 0.0, 0.0], q, 0.1 * k)  # away from the robot, past its reach
            q = c.q_target
            residual_seen |= "ik_residual" in c.limits_hit
            if "ik_residual" in c.limits_hit:
                assert c.ik_residual_m > m.config.ik_max_residual_m or c.ik_orientation_err_rad > 0.1
                assert c.hold != expect_motion or c.hold
        assert residual_seen
        reach = np.linalg.norm(kin.fk_point(q, "hand")[:2])
        assert reach > 0.6  # it went as far as it could first


def test_target_lead_leash(home):
    m = mapper(home, timing="stream", max_tool_speed_m_s=1.0, max_target_lead_m=0.03)
    q_meas = home  # the arm does not move at all (blocked)
    seen = False
    for k in range(10):
        c = m.map([1.0, 0.0, 0.0, 0.0], q_meas, 0.1 * k)
        seen |= "target_lead" in c.limits_hit
        lead = np.linalg.norm(c.tool_pos_sim_m - m.tool_pos_sim(q_meas))
        assert lead <= 0.03 + 1e-3
    assert seen


def test_target_from_measured_adds_to_the_measured_tool(home):
    m = mapper(home, timing="stream", target_from="measured")
    c = m.map([1.0, 0.0, 0.0, 0.0], home, 0.0)
    c = m.map([1.0, 0.0, 0.0, 0.0], home, 0.1)  # the arm did not move: target = measured + 1 cm
    np.testing.assert_allclose(c.tool_pos_sim_m - m.tool_pos_sim(home), [0.01, 0, 0], atol=3e-4)


def test_stream_interpolation_respects_the_command_period_limit(home):
    cfg = dict(timing="stream", policy_period_s=0.1, command_period_s=0.01, max_tool_speed_m_s=1.0)
    m = mapper(home, **cfg)
    c = m.map([1.0, -1.0, 1.0, 0.0], home, 0.0)
    prev = home
    for k in range(1, 11):
        q = m.interpolate(0.01 * k)
        assert np.all(np.abs(q - prev) <= m.joint_vel_limits_rad_s * 0.01 + 1e-12)
        prev = q
    np.testing.assert_array_equal(prev, c.q_target)
    np.testing.assert_array_equal(m.interpolate(0.05), c.q_target)  # never backwards
    np.testing.assert_array_equal(m.interpolate(float("nan")), c.q_target)
    assert m.ready_for_next_action(prev, 0.1) and m.last_settle_reason == "period"
    assert not m.ready_for_next_action(prev, 0.05)


def test_settle_mode_waits_for_the_arm(home):
    m = mapper(home, timing="settle", settle_tolerance_m=0.002, settle_timeout_s=0.5)
    c = m.map([1.0, 0.0, 0.0, 0.0], home, 0.0)
    # 1 cm at 0.1 m/s: a 0.1 s segment in whole command periods.
    assert c.duration_s == pytest.approx(0.1)
    assert not m.ready_for_next_action(c.q_target, 0.05)  # segment still running
    assert not m.ready_for_next_action(home, 0.15)  # arm has not moved
    assert m.last_settle_reason == "waiting"
    assert m.ready_for_next_action(c.q_target, 0.12) and m.last_settle_reason == "settled"
    assert m.ready_for_next_action(home, 0.5) and m.last_settle_reason == "timeout"
    assert not m.ready_for_next_action(np.full(7, np.nan), 0.2)
    # Settle segments are as short as the limits allow, never shorter than a command period.
    c2 = m.map([0.0, 0.0, 0.05, 0.0], c.q_target, 0.5)
    assert c2.duration_s == pytest.approx(0.01)


def test_robot_joint_names_follow_the_calibration(home):
    import dataclasses

    cal = load_calibration(EXAMPLE_REAL_CALIBRATION_PATH)
    cal = dataclasses.replace(
        cal,
        joint_names={f"iiwa7_A{i}": f"lbr_A{i}" for i in range(1, 8)},
        frame_ids=dict(cal.frame_ids, base="iiwa7_link_0"),
        arm=dataclasses.replace(cal.arm, flange_link="iiwa7_link_ee"),
    )
    # The example calibration takes the arm from the driver's robot_description: an lbr stack with
    # robot_name iiwa7 publishes lbr_description's iiwa 7 with joints iiwa7_A1..A7.
    m = Sim2RealMapper(cal, arm=cal.arm_model(shipped_urdf("iiwa7", "iiwa7")))
    assert m.robot_joint_names[0] == "iiwa7_A1"
    m.reset(home, 0.0)
    c = m.map([0, 0, 0, 1.0], home, 0.0)
    assert c.gripper == pytest.approx(cal.gripper_closed_m)


def test_config_validation():
    with pytest.raises(ValueError, match="timing"):
        MapperConfig(timing="fast")
    with pytest.raises(ValueError, match="target_from"):
        MapperConfig(target_from="goal")
    with pytest.raises(ValueError, match="low < high"):
        MapperConfig(workspace_low_m=(0, 0, 0), workspace_high_m=(1, 1, 0))
    with pytest.raises(ValueError, match="max_tool_speed_m_s"):
        MapperConfig(max_tool_speed_m_s=0.0)
    with pytest.raises(ValueError, match="command_period_s"):
        MapperConfig(policy_period_s=0.001)


def test_fk_check_shortens_steps_whose_joint_path_leaves_the_box(home):
    """The box clamp acts on the Cartesian target; the joint-space step towards it can still bulge out of
    the box. With a zero box tolerance along the floor, the FK check must catch and shorten such steps."""
    cfg = dict(timing="stream", box_tolerance_m=1e-7, action_scale_m=0.1, max_tool_speed_m_s=1.0)
    m = mapper(home, joint_vel_scale=0.3, workspace_low_m=(-0.5, 0.4, 0.2), **cfg)
    q = home
    seen = set()
    for k in range(60):
        c = m.map([np.sin(k * 0.3), np.cos(k * 0.2), -1.0, 0.0], q, 0.1 * k)
        q = c.q_target
        seen.update(c.limits_hit)
        step_ok(c, m.config)
        assert m.box_excess_m(m.tool_pos_sim(q)) <= 1e-7
    assert "fk_check" in seen and "workspace_box" in seen


def test_tilt_allowance_is_off_by_default_bounded_and_reported(home):
    """Issue 5: near the base the flange-down IK runs into A4's limit; with ik_max_tilt_rad the hand tilts
    (at most that far, reported as ik_tilt) and gets closer to the target."""
    assert MapperConfig().ik_max_tilt_rad == 0.0
    with pytest.raises(ValueError):
        MapperConfig(ik_max_tilt_rad=1.0)
    with pytest.raises(ValueError):
        MapperConfig(ik_max_tilt_rad=float("nan"))
    ends = {}
    for tilt in (0.0, 0.6):
        m = mapper(home, timing="stream", max_tool_speed_m_s=1.0, ik_max_tilt_rad=tilt)
        q, seen = home, set()
        for k in range(40):
            c = m.map([0.0, -1.0, -0.3, 0.0], q, 0.1 * k)  # towards the robot base, down to y 0.40 z ~0.1
            step_ok(c, m.config)
            seen.update(c.limits_hit)
            assert c.ik_orientation_err_rad <= max(tilt, m.config.ik_max_orientation_err_rad) + 1e-9 or c.hold
            q = c.q_target
        ends[tilt] = (m.tool_pos_sim(q), seen)
    assert "ik_tilt" not in ends[0.0][1] and "ik_tilt" in ends[0.6][1]
    assert ends[0.6][0][1] < ends[0.0][0][1] - 0.01  # closer to the base than with the flange down


def test_last_goal_integrates_actions_like_the_mocap(home):
    """target_from='last_goal': actions add to the previous goal, not to the (speed-limited) last target,
    so the arm keeps moving to where the actions put the goal, as Meta-World's mocap body does."""
    ends = {}
    for mode in ("last_target", "last_goal"):
        m = mapper(home, timing="stream", max_tool_speed_m_s=0.05, max_target_lead_m=0.1, target_from=mode)
        q, p0 = home, m.tool_pos_sim(home)
        for k in range(12):
            c = m.map([1.0 if k < 4 else 0.0, 0.0, 0.0, 0.0], q, 0.1 * k)  # 4 cm asked, 0.5 cm per step
            step_ok(c, m.config)
            q = c.q_target
        ends[mode] = m.tool_pos_sim(q)[0] - p0[0]
    assert ends["last_target"] == pytest.approx(0.02, abs=2e-3)
    assert ends["last_goal"] == pytest.approx(0.04, abs=2e-3)
