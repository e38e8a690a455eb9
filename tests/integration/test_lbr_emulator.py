"""sim2real_node against the lbr_fri_ros2_stack emulator (twin_node driver:=lbr, docs/robot-integration.md):
it refuses to command while the wrong controller is active or the rates disagree, says the fix where the
operator looks (status, safety state, skill refusals), publishes nothing on either controller's topic while
refusing, and commands through the stack's forward position controller once a lab's switch makes it
active. The switch is done as a lab does it: load, configure, switch through the controller manager's
services."""

from __future__ import annotations

import time

import pytest

from tests.integration.rosutil import Probe, start_nodes, stop

pytestmark = pytest.mark.ros

FPC_TOPIC = "/lbr/forward_position_controller/commands"
JTC_TOPIC = "/lbr/joint_trajectory_controller/joint_trajectory"


@pytest.fixture
def probe():
    p = Probe("lbr_probe")
    yield p
    p.close()


def _graph(tmp_path, **sim2real):
    params = {"twin.driver": "lbr", "twin.task": "drawer-close", "sim2real.driver": "lbr",
              **{f"sim2real.{k}": v for k, v in sim2real.items()}}  # fmt: skip
    return start_nodes("twin,sim2real", params, tmp_path / "graph.log")


def _watch(probe: Probe):
    from legion_msgs.msg import RuntimeStatus, SafetyState
    from std_msgs.msg import Float64MultiArray
    from trajectory_msgs.msg import JointTrajectory

    from legion_core.ros.common import LATCHED_QOS

    return (
        probe.record(FPC_TOPIC, Float64MultiArray),
        probe.record(JTC_TOPIC, JointTrajectory),
        probe.record("/legion/safety_state", SafetyState, LATCHED_QOS),
        probe.record("/legion/status", RuntimeStatus),
    )


def _call(probe: Probe, srv_type, name: str, req, timeout: float = 20.0):
    cli = probe.node.create_client(srv_type, name)
    probe.wait_for(cli.service_is_ready, timeout, f"{name} offered")
    fut = cli.call_async(req)
    probe.wait_for(fut.done, timeout, f"{name} answered")
    return fut.result()


def test_wrong_controller_refuses_with_the_fix_then_the_switch_makes_it_command(probe, tmp_path):
    from controller_manager_msgs.srv import (
        ConfigureController,
        ListControllers,
        LoadController,
        SwitchController,
    )
    from std_msgs.msg import String

    from legion_core.ros.common import LATCHED_QOS

    fpc, jtc, safety, status = _watch(probe)
    proc = _graph(tmp_path)
    try:
        # The emulator presents the stack's default: joint_trajectory_controller active, nothing else loaded.
        listed = _call(
            probe, ListControllers, "/lbr/controller_manager/list_controllers", ListControllers.Request()
        )
        states = {c.name: c.state for c in listed.controller}
        assert (
            states["joint_trajectory_controller"] == "active" and "forward_position_controller" not in states
        )
        # sim2real refuses with the fix, in its safety state (the sequencer refuses commands from it) ...
        probe.wait_for(lambda: any("forward_position_controller" in m.driver_fault for _, m in safety), 60,
                       "the driver fault in the safety state")  # fmt: skip
        fault = next(m.driver_fault for _, m in safety if m.driver_fault)
        assert "joint_trajectory_controller is active" in fault
        assert "ctrl:=forward_position_controller" in fault and "switch_controllers" in fault
        # ... and a skill is refused with it, the operator seeing why.
        skill_pub = probe.node.create_publisher(String, "/legion/active_skill", LATCHED_QOS)
        skill_pub.publish(String(data="drawer-close"))
        probe.wait_for(lambda: any("refused" in m.message and "driver not ready" in m.message
                                   for _, m in status if m.node == "sim2real_node"), 20, "the skill refusal")  # fmt: skip
        # Two more safety states (1 Hz) later still nothing was commanded on either controller's topic.
        n = len(safety)
        probe.wait_for(lambda: len(safety) >= n + 2, 20, "two more safety states")
        assert fpc == [] and jtc == [], "sim2real commanded while the driver was not ready"
        # The lab's switch: load + configure (ros2 control load_controller --set-state inactive), then switch.
        assert _call(probe, LoadController, "/lbr/controller_manager/load_controller",
                     LoadController.Request(name="forward_position_controller")).ok  # fmt: skip
        assert _call(probe, ConfigureController, "/lbr/controller_manager/configure_controller",
                     ConfigureController.Request(name="forward_position_controller")).ok  # fmt: skip
        sw = SwitchController.Request(activate_controllers=["forward_position_controller"],
                                      deactivate_controllers=["joint_trajectory_controller"],
                                      strictness=SwitchController.Request.STRICT)  # fmt: skip
        assert _call(probe, SwitchController, "/lbr/controller_manager/switch_controller", sw).ok
        t_switch = time.monotonic()
        probe.wait_for(lambda: len(fpc) >= 20, 30, "commands on the forward position controller")
        assert jtc == []
        assert len(fpc[0][1].data) == 7
        last = [m for _, m in safety][-1]
        assert last.driver_fault == ""
        assert fpc[0][0] >= t_switch
    finally:
        assert stop(proc) == 0, (tmp_path / "graph.log").read_text()[-3000:]


def test_command_rate_must_equal_the_controller_managers_update_rate(probe, tmp_path):
    fpc, jtc, safety, _ = _watch(probe)
    proc = _graph(tmp_path, controller="joint_trajectory_controller", command_rate_hz=500.0)
    try:
        probe.wait_for(lambda: any("update_rate 100" in m.driver_fault for _, m in safety), 60,
                       "the update-rate fault")  # fmt: skip
        fault = next(m.driver_fault for _, m in safety if m.driver_fault)
        assert "command_rate_hz:=100.0" in fault
        assert fpc == [] and jtc == []
    finally:
        assert stop(proc) == 0, (tmp_path / "graph.log").read_text()[-3000:]


def test_the_trajectory_controller_profile_commands_the_stacks_default(probe, tmp_path):
    fpc, jtc, safety, _ = _watch(probe)
    proc = _graph(tmp_path, controller="joint_trajectory_controller")
    try:
        probe.wait_for(lambda: len(jtc) >= 20, 60, "JointTrajectory commands")
        m = jtc[-1][1]
        assert list(m.joint_names) == [f"lbr_A{i}" for i in range(1, 8)] and len(m.points) == 1
        assert fpc == []
        assert all(s.driver_fault == "" for _, s in safety[-1:])
    finally:
        assert stop(proc) == 0, (tmp_path / "graph.log").read_text()[-3000:]


@pytest.mark.parametrize(
    "check", ["controller", "robot_state", "clock_offset", "robot_description", "(none)"]
)
def test_doctor_names_the_injected_fault_and_its_fix(check):
    """`legion doctor` against the emulator with one injected fault (legion_core.tools.doctor_drill): it
    fails exactly that check, prints its fix and exits 1; a ready driver passes with exit 0."""
    from legion_core.tools.doctor_drill import DRILLS, run_drill

    drill = next(d for d in DRILLS if d.check == check)
    out = run_drill(drill, seconds=2.5)
    failed = [
        ln.split("]", 1)[1].split(":", 1)[0].strip()
        for ln in out.output.splitlines()
        if ln.startswith("[FAIL]")
    ]
    if check == "(none)":
        assert out.code == 0 and failed == [], out.output
    else:
        assert out.code == 1 and failed == [check], out.output
        assert "fix:" in out.output.split(f"[FAIL] {check}", 1)[1].splitlines()[1]


def test_the_calibrated_frames_are_published_as_static_transforms(probe, tmp_path):
    """real2sim_node latches base -> sim_world and base -> camera on /tf_static (a late subscriber gets
    them), with the calibration's frame ids and numbers."""
    from std_msgs.msg import String
    from tf2_msgs.msg import TFMessage

    from legion_core.robot.description import shipped_urdf
    from legion_core.ros.common import LATCHED_QOS
    from sim2real.calibration import EXAMPLE_REAL_CALIBRATION_PATH, load_calibration

    cal = load_calibration(EXAMPLE_REAL_CALIBRATION_PATH)
    # The example calibration takes the arm from the driver's robot_description: published here as the
    # stack's robot_state_publisher does (transient local, before the node starts).
    desc = probe.node.create_publisher(String, "/lbr/robot_description", LATCHED_QOS)
    desc.publish(String(data=shipped_urdf("iiwa7")))
    params = {"real2sim.calibration": str(EXAMPLE_REAL_CALIBRATION_PATH), "real2sim.driver": "lbr"}
    proc = start_nodes("real2sim", params, tmp_path / "r2s.log")
    try:
        probe.wait_for(lambda: probe.node.count_publishers("/tf_static") > 0, 30, "the /tf_static publisher")
        tfs = probe.record("/tf_static", TFMessage, LATCHED_QOS)  # subscribed after it was published
        probe.wait_for(lambda: bool(tfs), 20, "the latched static transforms")
        got = {t.child_frame_id: t for t in tfs[0][1].transforms}
        assert set(got) == {"sim_world", "camera_color_optical_frame"}
        cam = got["camera_color_optical_frame"]
        assert cam.header.frame_id == "lbr_link_0"
        p = cam.transform.translation
        assert [p.x, p.y, p.z] == pytest.approx(list(cal.T_base_camera.p), abs=1e-9)
    finally:
        assert stop(proc) == 0, (tmp_path / "r2s.log").read_text()[-3000:]


def test_without_the_drivers_robot_description_the_nodes_refuse_to_start(tmp_path):
    """`arm: description: topic` and no robot_state_publisher: sim2real_node does not guess a model, it
    refuses to start and says which topic it waited on and what to do."""
    from sim2real.calibration import EXAMPLE_REAL_CALIBRATION_PATH

    params = {
        "sim2real.calibration": str(EXAMPLE_REAL_CALIBRATION_PATH),
        "sim2real.driver": "lbr",
        "sim2real.robot_name": "cell_without_driver",
        "sim2real.robot_description_timeout_s": 1.0,
    }
    log = tmp_path / "s2r.log"
    proc = start_nodes("sim2real", params, log)
    try:
        proc.wait(timeout=60)
    finally:
        code = stop(proc)
    text = log.read_text()
    assert code != 0, text[-2000:]
    assert (
        "refusing to start: no robot description on /cell_without_driver/robot_description within 1 s" in text
    )
    assert "set arm.description in the calibration" in text


def test_contact_guard_holds_an_arm_pushed_into_the_drawer_front(probe, tmp_path):
    """The twin publishes MuJoCo's contact wrench as a driver's estimate (/twin/wrench); the test plays a
    policy that drives the hand down and forward into the drawer cabinet: sim2real holds with the contact
    guard's reason, clears the skill, and its commands stop advancing (they step to the measured posture)."""
    import numpy as np
    from legion_msgs.msg import PolicyAction, RuntimeStatus
    from std_msgs.msg import Float64MultiArray, String

    from legion_core.ros.common import LATCHED_QOS

    params = {
        "twin.task": "drawer-button",
        "twin.seed": 1,
        "twin.variation": 3,
        "sim2real.action_timeout_s": 0.5,
    }
    proc = start_nodes("twin,sim2real", params, tmp_path / "graph.log")
    try:
        cmds = probe.record("/joint_command", Float64MultiArray)
        status = probe.record("/legion/status", RuntimeStatus)
        n = probe.node
        skill = n.create_publisher(String, "/legion/active_skill", LATCHED_QOS)
        act = n.create_publisher(PolicyAction, "/legion/action", 10)
        probe.wait_for(lambda: len(cmds) > 10, 60, "sim2real commanding")
        skill.publish(String(data="drawer-close"))
        seq = [0]

        def push() -> bool:
            seq[0] += 1
            a = PolicyAction()
            a.header.stamp = n.get_clock().now().to_msg()
            a.action, a.sequence, a.skill = [0.0, 0.4, -1.0, -1.0], seq[0], "drawer-close"
            act.publish(a)
            probe.spin_for(0.05)
            return any("contact guard" in m.message for _, m in status if m.node == "sim2real_node")

        probe.wait_for(push, 60, "the contact guard's hold")
        held = next(m.message for _, m in status if "contact guard" in m.message)
        assert (
            "contact force" in held
            and "during drawer-close" in held
            and "holding at the measured posture" in held
        )
        t = time.monotonic()
        for _ in range(20):  # the policy keeps pushing: nothing moves the arm further
            push()
        after = np.array([m.data for tt, m in cmds if tt >= t + 0.3])
        assert len(after) > 20 and float(np.ptp(after, axis=0).max()) < 0.01, (
            "commands kept advancing after the hold"
        )
    finally:
        assert stop(proc) == 0, (tmp_path / "graph.log").read_text()[-3000:]
