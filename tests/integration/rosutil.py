"""Helpers for tests that run real rclpy nodes over loopback DDS (conftest sets the discovery range and a
per-run ROS_DOMAIN_ID). Nodes run in child processes (`python -m legion_ros.composed`); the test talks to
them through a probe node in the test process, waiting on conditions, never on fixed sleeps."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from legion_core.robot import iiwa7
from legion_core.tools.ros_env import ensure_workspace, start_composed, stop_process_group

ensure_workspace()

import rclpy  # noqa: E402
from rclpy.node import Node  # noqa: E402


def start_nodes(nodes: str, params: dict[str, object], log_path=None):
    return start_composed(nodes, params, log_path)


def stop(proc, timeout: float = 8.0) -> int:
    return stop_process_group(proc, timeout)


class Probe:
    """A node in the test process that records messages and spins until a condition holds."""

    def __init__(self, name: str = "probe") -> None:
        if not rclpy.ok():
            rclpy.init()
        self.node: Node = rclpy.create_node(name)
        self.msgs: dict[str, list] = {}

    def record(self, topic: str, msg_type, qos=10, key: str | None = None) -> list:
        buf = self.msgs.setdefault(key or topic, [])
        self.node.create_subscription(msg_type, topic, lambda m: buf.append((time.monotonic(), m)), qos)
        return buf

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            rclpy.spin_once(self.node, timeout_sec=0.01)

    def wait_for(self, cond: Callable[[], bool], timeout: float, what: str = "condition") -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if cond():
                return
            rclpy.spin_once(self.node, timeout_sec=0.01)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")

    def close(self) -> None:
        self.node.destroy_node()


# ----------------------------------------------------------------------- sim2real_node played by a test
from legion_msgs.msg import PolicyAction, RuntimeStatus  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Bool, Float64MultiArray  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

HOME_Q = list(iiwa7.HOME_SEED_Q_RAD)
NAMES = list(iiwa7.JOINT_NAMES)
PERIOD = 0.01  # sim2real command period at 100 Hz


def _status(probe: Probe, node: str) -> list:
    return [m for _, m in probe.msgs.get("/legion/status", []) if m.node == node]


def _joint_state(names=NAMES, q=HOME_Q, stamp=None, node=None) -> JointState:
    m = JointState()
    m.name = list(names)
    m.position = [float(v) for v in q]
    if node is not None:
        m.header.stamp = node.get_clock().now().to_msg()
    return m


class SentCommand:
    """A JointTrajectory command seen as a Float64MultiArray (`data`), with the time it was sent [s]."""

    __slots__ = ("data", "sent")

    def __init__(self, m) -> None:
        self.data = list(m.points[0].positions)
        self.sent = m.header.stamp.sec + m.header.stamp.nanosec * 1e-9


class Sim2RealHarness:
    """sim2real_node in a child process; the test plays the robot (joint states) and the policy (actions)."""

    def __init__(self, probe: Probe, log, params: dict | None = None) -> None:
        from legion_msgs.msg import SafetyState
        from std_msgs.msg import String

        from legion_core.ros.common import LATCHED_QOS

        self.probe = probe
        self.proc = start_nodes("sim2real", {"sim2real.action_timeout_s": 0.3, **(params or {})}, log)
        n = probe.node
        if (params or {}).get("sim2real.command_interface") == "trajectory":
            # Stamped commands (joint_trajectory_controller's interface): `sent` tells when sim2real sent
            # each one, so a judgement can tell commands in flight from commands sent after a fault.
            from trajectory_msgs.msg import JointTrajectory

            self.cmds = []
            n.create_subscription(
                JointTrajectory,
                "/joint_command",
                lambda m: self.cmds.append((time.monotonic(), SentCommand(m))),
                100,
            )
        else:
            self.cmds = probe.record("/joint_command", Float64MultiArray)
        probe.record("/legion/status", RuntimeStatus)
        self.safety = probe.record("/legion/safety_state", SafetyState, LATCHED_QOS)
        self.js_pub = n.create_publisher(JointState, "/joint_states", qos_profile_sensor_data)
        self.act_pub = n.create_publisher(PolicyAction, "/legion/action", 10)
        self.estop_pub = n.create_publisher(Bool, "/legion/estop", 10)
        self.skill_pub = n.create_publisher(String, "/legion/active_skill", LATCHED_QOS)
        self.rearm = n.create_client(Trigger, "/sim2real_node/rearm")
        self.reset = n.create_client(Trigger, "/sim2real_node/reset")
        self.estop_srv = n.create_client(Trigger, "/sim2real_node/estop")
        probe.wait_for(lambda: self.js_pub.get_subscription_count() > 0 and self.act_pub.get_subscription_count() > 0,
                       20, "sim2real subscriptions")  # fmt: skip
        self.q = np.array(HOME_Q)
        self.seq = 0

    def step(self, names=NAMES, q=None, action=(1.0, 0.0, 0.0, -1.0), send_js=True, send_action=True,
             stamp_age=0.0) -> None:  # fmt: skip
        """One 10 ms cycle of robot + policy: the robot follows the last command exactly. `stamp_age` [s]:
        the joint state is stamped that long before now (a late driver or a clock behind)."""
        if self.cmds:
            self.q = np.array(self.cmds[-1][1].data)
        if send_js:
            m = _joint_state(names, self.q if q is None else q, node=self.probe.node)
            if stamp_age:
                t = self.probe.node.get_clock().now().nanoseconds * 1e-9 - stamp_age
                m.header.stamp.sec, m.header.stamp.nanosec = int(t), int((t % 1) * 1e9)
            self.js_pub.publish(m)
        if send_action:
            self.seq += 1
            a = PolicyAction()
            a.header.stamp = self.probe.node.get_clock().now().to_msg()
            a.action, a.sequence, a.skill = list(action), self.seq, "drawer-close"
            self.act_pub.publish(a)
        self.probe.spin_for(PERIOD)

    def run(self, seconds: float, **kw) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.step(**kw)

    def moving(self) -> bool:
        if len(self.cmds) < 10:
            return False
        a, b = np.array(self.cmds[-10][1].data), np.array(self.cmds[-1][1].data)
        return float(np.abs(a - b).max()) > 1e-6

    def commands_since(self, t0: float) -> list[np.ndarray]:
        return [np.array(m.data) for t, m in self.cmds if t >= t0]

    def call(self, client, timeout: float = 10.0, **step_kw):
        """Call a Trigger service while the robot and policy keep running; returns the response."""
        self.probe.wait_for(lambda: (self.step(**step_kw), client.service_is_ready())[1], timeout, "service")
        fut = client.call_async(Trigger.Request())
        self.probe.wait_for(lambda: (self.step(**step_kw), fut.done())[1], timeout, "service response")
        return fut.result()

    def now_ros(self) -> float:
        """The node clock [s] (system time: the same clock sim2real stamps its commands and statuses with)."""
        return self.probe.node.get_clock().now().nanoseconds * 1e-9

    def last_status(self) -> RuntimeStatus:
        st = _status(self.probe, "sim2real_node")
        return st[-1] if st else None
