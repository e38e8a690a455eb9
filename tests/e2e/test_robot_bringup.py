"""A lab's first day, end to end, without writing code (docs/robot-integration.md): the lbr_fri_ros2_stack
emulator started as the stack's bringup leaves a real cell (joint_trajectory_controller active, the arm at
the stack's HOME posture, which the policy never saw), and the runtime started with the very launch file a
robot PC runs (`legion launch launch/robot.launch.yaml`, = `ros2 launch legion_bringup robot.launch.yaml`)
and the example calibration as shipped:

1. with the forward position controller the runtime refuses to move while the trajectory controller is
   active: a command is refused with the fix, and nothing is published on either controller's topic;
2. after the lab's switch (load, configure, switch through the controller manager) the same command runs:
   the plan starts with the ready move (from HOME to the policy's tool orientation), then the shipped
   model's three skills run to success;
3. the same with the trajectory controller profile (no switch needed: it is the stack's default).

This process is the operator (the ExecuteTask action) and the lab (the controller manager's services)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from legion_core.tools.demo import DEFAULT_MODEL
from legion_core.tools.longhorizon import DEFAULT_COMMAND
from legion_core.tools.ros_env import child_env, ensure_workspace
from sim2real.calibration import EXAMPLE_REAL_CALIBRATION_PATH

pytestmark = [pytest.mark.e2e, pytest.mark.ros]
ensure_workspace()  # the workspace's interfaces (legion_msgs, controller_manager_msgs) for this process

REPO = Path(__file__).resolve().parents[2]
LAUNCH = REPO / "launch"
LBR_HOME = "0,0.486,0,-1.756,0,0.9,-1.571"
FPC_TOPIC = "/lbr/forward_position_controller/commands"
JTC_TOPIC = "/lbr/joint_trajectory_controller/joint_trajectory"
PLACEMENT = 3  # a held-out scene (eval seed 1)


def _launch(tmp_path: Path, name: str, file: str, *args: str) -> subprocess.Popen:
    out = open(tmp_path / f"{name}.out", "w")  # noqa: SIM115 - lives as long as the process
    return subprocess.Popen(
        [sys.executable, "-m", "legion_core.cli", "launch", str(LAUNCH / file), *args,
         "--log-dir", str(tmp_path / f"{name}_logs")],
        env=child_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def _stop(proc: subprocess.Popen, tmp_path: Path, name: str) -> None:
    os.killpg(proc.pid, signal.SIGINT)
    code = proc.wait(60)
    assert code == 0, (tmp_path / f"{name}.out").read_text()[-3000:]


class Operator:
    """The probe: records what the driver receives and what the runtime says; sends commands and switches."""

    def __init__(self) -> None:
        from legion_msgs.action import ExecuteTask
        from legion_msgs.msg import SafetyState
        from rclpy.action import ActionClient
        from std_msgs.msg import Float64MultiArray
        from trajectory_msgs.msg import JointTrajectory

        from legion_core.ros.common import LATCHED_QOS
        from tests.integration.rosutil import Probe

        self.probe = Probe("bringup_operator")
        self.fpc = self.probe.record(FPC_TOPIC, Float64MultiArray)
        self.jtc = self.probe.record(JTC_TOPIC, JointTrajectory)
        self.safety = self.probe.record("/legion/safety_state", SafetyState, LATCHED_QOS)
        self.action = ActionClient(self.probe.node, ExecuteTask, "/legion/execute_task")
        self.ExecuteTask = ExecuteTask

    def wait(self, cond, timeout: float, what: str) -> None:
        self.probe.wait_for(cond, timeout, what)

    def command(self, text: str, timeout: float):
        """Send `text` on the ExecuteTask action; returns (result, feedback list)."""
        self.wait(lambda: self.action.server_is_ready(), 60, "the sequencer's action")
        feedback: list = []
        fut = self.action.send_goal_async(
            self.ExecuteTask.Goal(command=text), feedback_callback=feedback.append
        )
        self.wait(fut.done, 30, "the goal accepted")
        res_fut = fut.result().get_result_async()
        self.wait(res_fut.done, timeout, f"the result of {text!r}")
        return res_fut.result().result, feedback

    def call(self, srv_type, name: str, request):
        cli = self.probe.node.create_client(srv_type, name)
        self.wait(cli.service_is_ready, 30, f"{name} offered")
        fut = cli.call_async(request)
        self.wait(fut.done, 30, f"{name} answered")
        return fut.result()

    def switch_to_forward_position_controller(self) -> None:
        """What the fix says: load + configure (ros2 control load_controller --set-state inactive), switch."""
        from controller_manager_msgs.srv import ConfigureController, LoadController, SwitchController

        cm = "/lbr/controller_manager"
        assert self.call(
            LoadController,
            f"{cm}/load_controller",
            LoadController.Request(name="forward_position_controller"),
        ).ok
        assert self.call(ConfigureController, f"{cm}/configure_controller",
                         ConfigureController.Request(name="forward_position_controller")).ok  # fmt: skip
        req = SwitchController.Request(activate_controllers=["forward_position_controller"],
                                       deactivate_controllers=["joint_trajectory_controller"],
                                       strictness=SwitchController.Request.STRICT)  # fmt: skip
        assert self.call(SwitchController, f"{cm}/switch_controller", req).ok

    def close(self) -> None:
        self.action.destroy()
        self.probe.close()


def _bringup(tmp_path: Path, controller: str):
    cal = str(EXAMPLE_REAL_CALIBRATION_PATH)
    emu = _launch(tmp_path, "emulator", "lbr_emulator.launch.yaml", f"calibration:={cal}", "task:=drawer-button",
                  f"variation:={PLACEMENT}", f"start_q_rad:={LBR_HOME}")  # fmt: skip
    try:
        runtime = _launch(tmp_path, "runtime", "robot.launch.yaml", f"bundle:={REPO / DEFAULT_MODEL}",
                          f"calibration:={cal}", f"controller:={controller}")  # fmt: skip
    except BaseException:
        _stop(emu, tmp_path, "emulator")
        raise
    return emu, runtime


def _check_chain(op: Operator, result, feedback) -> None:
    assert result.success, result.message
    assert list(result.plan) == ["ready", "drawer-open", "button-press-topdown", "drawer-close"], list(
        result.plan
    )
    assert len(result.step_durations_s) == 4
    assert any(f.feedback.active_skill == "ready" for f in feedback)
    last = op.safety[-1][1]
    assert last.driver_fault == "" and not last.ready_needed


def test_forward_position_controller_refuses_until_switched_then_ready_move_and_chain(tmp_path):
    op = Operator()
    emu, runtime = _bringup(tmp_path, "forward_position_controller")
    try:
        op.wait(lambda: any("forward_position_controller" in m.driver_fault for _, m in op.safety), 120,
                "the runtime's refusal")  # fmt: skip
        result, _ = op.command(DEFAULT_COMMAND, 30)
        assert not result.success
        assert "driver not ready" in result.message and "ctrl:=forward_position_controller" in result.message
        assert op.fpc == [] and op.jtc == [], "commands went out while the driver was not ready"
        op.switch_to_forward_position_controller()
        op.wait(lambda: op.safety[-1][1].driver_fault == "" and op.safety[-1][1].ready_needed, 30,
                "the driver ready, the ready move needed")  # fmt: skip
        t_cmd = time.monotonic()
        result, feedback = op.command(DEFAULT_COMMAND, 300)
        _check_chain(op, result, feedback)
        assert op.jtc == [] and op.fpc and op.fpc[0][0] > t_cmd - 30
    finally:
        op.close()
        _stop(runtime, tmp_path, "runtime")
        _stop(emu, tmp_path, "emulator")


def test_trajectory_controller_profile_runs_the_chain_from_home(tmp_path):
    op = Operator()
    emu, runtime = _bringup(tmp_path, "joint_trajectory_controller")
    try:
        op.wait(lambda: bool(op.safety) and op.safety[-1][1].driver_fault == "" and op.safety[-1][1].ready_needed,
                120, "the driver ready")  # fmt: skip
        result, feedback = op.command(DEFAULT_COMMAND, 300)
        _check_chain(op, result, feedback)
        assert op.fpc == [] and len(op.jtc) > 100
    finally:
        op.close()
        _stop(runtime, tmp_path, "runtime")
        _stop(emu, tmp_path, "emulator")
