"""Two arms in one graph (docs/robot-integration.md, "Several arms"): two lbr_fri_ros2_stack emulators
(robot_name lbr1 and lbr2) and two runtimes in the namespaces arm1 and arm2. A command to arm1 moves arm1
only, and one to arm2 moves arm2 only: each runtime reads its own driver, its own camera topic and operator
action, and commands only its own controller (the runtime's names are relative to its namespace,
legion_core.contracts.interface.robot_scoped; the driver's come from robot_name)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest

from legion_core.tools.demo import DEFAULT_MODEL
from legion_core.tools.ros_env import ensure_workspace, start_composed, stop_process_group
from sim2real.calibration import save_calibration, sim_calibration

pytestmark = [pytest.mark.e2e, pytest.mark.ros]
ensure_workspace()

REPO = Path(__file__).resolve().parents[2]
ARMS = {"arm1": "lbr1", "arm2": "lbr2"}


def _calibration(tmp_path: Path, robot: str) -> str:
    """The twin's cell with the driver's joint names of robot `robot` (lbr1_A1 ...)."""
    cal = sim_calibration()
    cal = dataclasses.replace(cal, joint_names={f"{robot}_A{i}": f"lbr_A{i}" for i in range(1, 8)})
    path = tmp_path / f"{robot}.yaml"
    save_calibration(cal, path, header=f"test: the simulated cell, driver {robot}")
    return str(path)


def _start(tmp_path: Path) -> list:
    bundle = str(REPO / DEFAULT_MODEL)
    procs = []
    for ns, robot in ARMS.items():
        cal = _calibration(tmp_path, robot)
        procs.append(start_composed("twin", {
            "twin.driver": "lbr", "twin.robot_name": robot, "twin.ctrl": "forward_position_controller",
            "twin.task": "drawer-close", "twin.scene": "drawer-button", "twin.seed": 1, "twin.variation": 3,
        }, tmp_path / f"emu_{ns}.log", namespace=ns))  # fmt: skip
        runtime = {f"{n}.{k}": v for n in ("real2sim", "sim2real") for k, v in
                   {"driver": "lbr", "robot_name": robot, "calibration": cal, "bundle": bundle}.items()}  # fmt: skip
        runtime.update({"policy.bundle": bundle, "sequencer.bundle": bundle})
        procs.append(start_composed("real2sim,policy,sim2real,sequencer", runtime, tmp_path / f"rt_{ns}.log",
                                    namespace=ns))  # fmt: skip
    return procs


class Watch:
    def __init__(self) -> None:
        from legion_msgs.action import ExecuteTask
        from legion_msgs.msg import SafetyState
        from rclpy.action import ActionClient
        from std_msgs.msg import Float64MultiArray

        from legion_core.ros.common import LATCHED_QOS
        from tests.integration.rosutil import Probe

        self.probe = Probe("two_arms")
        self.cmds = {ns: self.probe.record(f"/{r}/forward_position_controller/commands", Float64MultiArray)
                     for ns, r in ARMS.items()}  # fmt: skip
        self.safety = {
            ns: self.probe.record(f"/{ns}/legion/safety_state", SafetyState, LATCHED_QOS) for ns in ARMS
        }
        self.actions = {
            ns: ActionClient(self.probe.node, ExecuteTask, f"/{ns}/legion/execute_task") for ns in ARMS
        }
        self.ExecuteTask = ExecuteTask

    def command(self, ns: str, text: str, timeout: float):
        act = self.actions[ns]
        self.probe.wait_for(act.server_is_ready, 60, f"{ns}'s sequencer")
        fut = act.send_goal_async(self.ExecuteTask.Goal(command=text))
        self.probe.wait_for(fut.done, 30, "goal accepted")
        res = fut.result().get_result_async()
        self.probe.wait_for(res.done, timeout, f"{ns}: {text}")
        return res.result().result

    def motion_rad(self, ns: str, since: float) -> float:
        q = np.array([list(m.data) for t, m in self.cmds[ns] if t >= since])
        return float(np.max(np.abs(q - q[0]))) if len(q) else 0.0

    def close(self) -> None:
        for a in self.actions.values():
            a.destroy()
        self.probe.close()


def test_two_namespaced_arms_move_only_when_commanded(tmp_path):
    w = Watch()
    procs = _start(tmp_path)
    try:
        for ns in ARMS:
            w.probe.wait_for(lambda ns=ns: bool(w.safety[ns]) and w.safety[ns][-1][1].driver_fault == ""
                             and len(w.cmds[ns]) > 20, 120, f"{ns} commanding its driver")  # fmt: skip
        for ns, other in (("arm1", "arm2"), ("arm2", "arm1")):
            t0 = time.monotonic()
            result = w.command(ns, "close the drawer", 120)
            assert result.success, f"{ns}: {result.message}"
            assert w.motion_rad(ns, t0) > 0.05, f"{ns} did not move"
            assert w.motion_rad(other, t0) < 1e-6, f"{other} moved while only {ns} was commanded"
            assert len([1 for t, _ in w.cmds[other] if t >= t0]) > 100  # it kept streaming its hold
    finally:
        w.close()
        codes = [stop_process_group(p) for p in procs]
        logs = {f.name: f.read_text()[-1500:] for f in tmp_path.glob("*.log")}
        assert codes == [0] * len(procs), logs
