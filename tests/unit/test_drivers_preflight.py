"""Driver profiles (legion_core.contracts.drivers) resolve to the names lbr_fri_ros2_stack and ros2_control
use, refuse settings that cannot work with the parameter and the fix named; the pre-flight checks
(sim2real.preflight) refuse a driver that would not move the arm, each with a one-sentence fix; the
supervisor's driver interlock sends nothing before the first command and holds after it."""

from __future__ import annotations

import numpy as np
import pytest

from legion_core.contracts.drivers import DriverParams, DriverProfileError, resolve_driver
from legion_core.contracts.interface import TOPIC_JOINT_COMMAND, TOPIC_JOINT_STATES, StatusLevel
from sim2real.preflight import PASS, SKIP, DriverFacts, evaluate

LBR_JOINTS = tuple(f"lbr_A{i}" for i in range(1, 8))


# ------------------------------------------------------------------------------------------- profiles
def test_lbr_profile_names_follow_the_stack():
    p = resolve_driver("lbr")
    assert p.joint_states_topic == "/lbr/joint_states"
    assert p.command_topic == "/lbr/forward_position_controller/commands"
    assert p.command_type == "std_msgs/msg/Float64MultiArray"
    assert p.controller_manager == "/lbr/controller_manager"
    assert p.list_controllers_service == "/lbr/controller_manager/list_controllers"
    assert p.robot_state_topic == "/lbr/state"
    assert p.joint_names == LBR_JOINTS


def test_lbr_trajectory_controller_gets_its_own_topic_and_type():
    p = resolve_driver("lbr", controller="joint_trajectory_controller")
    assert p.command_topic == "/lbr/joint_trajectory_controller/joint_trajectory"
    assert p.command_type == "trajectory_msgs/msg/JointTrajectory"


def test_robot_name_sets_namespace_and_joint_prefix():
    p = resolve_driver("lbr", robot_name="/cell2/arm_b")
    assert p.joint_states_topic == "/cell2/arm_b/joint_states"
    assert p.joint_names[0] == "arm_b_A1"


def test_twin_keeps_the_runtime_names_and_overrides_apply():
    p = resolve_driver("twin")
    assert (p.joint_states_topic, p.command_topic, p.controller) == (
        TOPIC_JOINT_STATES,
        TOPIC_JOINT_COMMAND,
        "",
    )
    q = resolve_driver(
        "ros2_control", robot_name="", command_interface="trajectory", joint_states_topic="/js"
    )
    assert q.joint_states_topic == "/js"
    assert q.command_topic == "/joint_trajectory_controller/joint_trajectory"


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(driver="kuka"), "driver must be one of"),
        (
            dict(driver="lbr", command_interface="trajectory"),
            "does not fit controller forward_position_controller",
        ),
        (dict(driver="lbr", controller="admittance_controller"), "controller must be one of"),
        (dict(driver="lbr", command_rate_hz=300.0), "use 100.0 (10 ms) or 500.0 (2 ms)"),
        (dict(driver="lbr", robot_name="9lbr"), "robot_name '9lbr' is not a valid ROS namespace"),
        (dict(driver="twin", controller="forward_position_controller"), "the twin has no controllers"),
        (dict(driver="twin", command_rate_hz=0.0), "command_rate_hz must be within"),
    ],
)
def test_bad_settings_name_the_field_and_the_fix(kwargs, words):
    with pytest.raises(DriverProfileError) as e:
        resolve_driver(**kwargs)
    assert words in str(e.value)


def test_lbr_accepts_whole_millisecond_send_periods():
    assert resolve_driver("lbr", command_rate_hz=500).command_rate_hz == 500.0
    assert resolve_driver("lbr", command_rate_hz=200.0).command_rate_hz == 200.0


def test_driver_params_default_is_the_twin():
    assert DriverParams().profile().driver == "twin"


# ------------------------------------------------------------------------------------------- pre-flight
def _facts(**kw) -> DriverFacts:
    base = dict(now_s=10.0, joint_state_names=LBR_JOINTS, joint_state_age_s=0.005, joint_state_rate_hz=200.0,
                command_subscribers=1, controllers={"forward_position_controller": "active",
                                                    "joint_trajectory_controller": "inactive",
                                                    "joint_state_broadcaster": "active"},
                update_rate_hz=100.0, session_state=4, safety_state=0)  # fmt: skip
    base.update(kw)
    return DriverFacts(**base)


def _status(res) -> dict[str, str]:
    return {c.name: c.status for c in res.checks}


def test_a_ready_lbr_driver_passes_every_check():
    res = evaluate(resolve_driver("lbr"), LBR_JOINTS, _facts())
    assert res.ok and res.reason() == ""
    assert set(_status(res).values()) == {PASS}


def test_trajectory_controller_active_refuses_and_says_how_to_switch():
    facts = _facts(
        controllers={"forward_position_controller": "inactive", "joint_trajectory_controller": "active"}
    )
    res = evaluate(resolve_driver("lbr"), LBR_JOINTS, facts)
    (fail,) = res.failures
    assert fail.name == "controller"
    assert "joint_trajectory_controller is active" in fail.detail
    assert "ctrl:=forward_position_controller" in fail.fix
    assert "--deactivate joint_trajectory_controller --activate forward_position_controller" in fail.fix
    assert res.reason().startswith("driver not ready: forward_position_controller is inactive")


@pytest.mark.parametrize(
    "kw, check, words",
    [
        (
            dict(joint_state_age_s=None, joint_state_names=None, joint_state_rate_hz=None),
            "joint_states",
            "start the driver",
        ),
        (dict(joint_state_age_s=2.0), "joint_states", "stopped publishing"),
        (dict(joint_state_rate_hz=5.0), "joint_states", "joint_state_broadcaster"),
        (
            dict(joint_state_names=tuple(f"iiwa7_A{i}" for i in range(1, 8))),
            "joint_names",
            "calibration's joint_names",
        ),
        (dict(command_subscribers=0), "command_subscriber", "switch_controllers"),
        (dict(update_rate_hz=500.0), "update_rate", "command_rate_hz:=500.0"),
        (dict(session_state=2), "robot_state", "COMMANDING_ACTIVE"),
        (dict(safety_state=1), "robot_state", "safety stop"),
    ],
)
def test_each_failing_check_names_its_fix(kw, check, words):
    res = evaluate(resolve_driver("lbr"), LBR_JOINTS, _facts(**kw))
    fails = {c.name: c for c in res.failures}
    assert check in fails, res.checks
    assert words in fails[check].fix
    assert not res.ok


def test_absent_interfaces_are_skipped_not_failed():
    facts = _facts(controllers=None, controllers_note="controller_manager_msgs is not installed on this PC",
                   update_rate_hz=None, session_state=None, safety_state=None)  # fmt: skip
    res = evaluate(resolve_driver("lbr"), LBR_JOINTS, facts)
    st = _status(res)
    assert st["controller"] == st["update_rate"] == st["robot_state"] == SKIP
    assert res.ok
    twin = evaluate(resolve_driver("twin"), LBR_JOINTS, _facts(controllers=None))
    assert _status(twin)["controller"] == SKIP and twin.ok


# -------------------------------------------------------------------------------------- supervisor interlock
def _supervisor():
    from sim2real.calibration import sim_calibration
    from sim2real.mapper import MapperConfig, Sim2RealMapper
    from sim2real.supervisor import Supervisor

    return Supervisor(Sim2RealMapper(sim_calibration(), MapperConfig()))


Q_HOME = np.array([0.0, 0.4, 0.0, -1.4, 0.0, 1.3, 0.0])


def test_driver_fault_sends_nothing_before_the_first_command():
    sup = _supervisor()
    sup.set_driver_fault("driver not ready: x; fix: y")
    sup.on_joint_state([f"lbr_A{i}" for i in range(1, 8)], Q_HOME, 1.0, 1.0)
    tk = sup.tick(1.0)
    assert tk.q_cmd is None and tk.level == StatusLevel.HOLD and "driver not ready" in tk.reason
    ok, msg = sup.set_active_skill("drawer-close")
    assert not ok and "driver not ready" in msg
    sup.set_driver_fault("")
    assert sup.tick(1.01).q_cmd is not None
    assert sup.set_active_skill("drawer-close")[0]


def test_severe_driver_fault_after_motion_holds_and_clears_the_skill():
    sup = _supervisor()
    sup.on_joint_state([f"lbr_A{i}" for i in range(1, 8)], Q_HOME, 1.0, 1.0)
    sup.set_active_skill("drawer-close")
    first = sup.tick(1.0).q_cmd
    assert first is not None
    sup.set_driver_fault("driver not ready: controller switched")
    tk = sup.tick(1.01)
    np.testing.assert_allclose(tk.q_cmd, first)  # holds the last command
    assert (
        tk.level == StatusLevel.HOLD and sup.active_skill == "" and sup.skill_cleared_by == "driver not ready"
    )


def test_mild_driver_fault_keeps_the_skill():
    sup = _supervisor()
    sup.on_joint_state([f"lbr_A{i}" for i in range(1, 8)], Q_HOME, 1.0, 1.0)
    sup.set_active_skill("drawer-close")
    sup.tick(1.0)
    sup.set_driver_fault("driver not ready: no joint state", severe=False)
    assert sup.tick(1.01).level == StatusLevel.HOLD and sup.active_skill == "drawer-close"


# -- the driver's robot description against the calibration (legion doctor) -----------------------------


def test_the_drivers_robot_description_is_checked_against_the_calibrations_arm():
    import dataclasses

    from legion_core.robot.description import ArmSource, shipped_urdf
    from sim2real.calibration import EXAMPLE_REAL_CALIBRATION_PATH, load_calibration
    from sim2real.preflight import FAIL, robot_description_check

    topic = "/lbr/robot_description"
    example = load_calibration(EXAMPLE_REAL_CALIBRATION_PATH)  # arm: description: topic
    assert robot_description_check(example, shipped_urdf("iiwa7"), topic).status == PASS
    missing = robot_description_check(example, None, topic)
    assert missing.status == FAIL and "no robot description on /lbr/robot_description" in missing.detail
    assert "robot_state_publisher" in missing.fix
    # A calibration for an iiwa 7 (the datasheet) on a driver that describes an iiwa 14: refused.
    datasheet = dataclasses.replace(example, arm=ArmSource())
    assert robot_description_check(datasheet, shipped_urdf("iiwa7"), topic).status == PASS
    wrong = robot_description_check(datasheet, shipped_urdf("iiwa14"), topic)
    assert (
        wrong.status == FAIL
        and "other joint limits" in wrong.detail
        and "arm.description: topic" in wrong.fix
    )
    assert robot_description_check(datasheet, None, topic).status == SKIP
    # Same limits, other link lengths (a description edited by hand): the flange lands elsewhere.
    longer = shipped_urdf("iiwa7").replace('xyz="0 0 0.035"', 'xyz="0 0 0.085"')
    far = robot_description_check(datasheet, longer, topic)
    assert far.status == FAIL and "mm apart" in far.detail
    # A driver that names its joints otherwise than joint_names maps them.
    other = robot_description_check(example, shipped_urdf("iiwa7", "iiwa7"), topic)
    assert other.status == FAIL and "no link 'lbr_link_0'" in other.detail
