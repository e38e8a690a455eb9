"""Helpers for tests that run real rclpy nodes over loopback DDS (conftest sets the discovery range and a
per-run ROS_DOMAIN_ID). Nodes run in child processes (`python -m legion_ros.composed`); the test talks to
them through a probe node in the test process, waiting on conditions, never on fixed sleeps."""

from __future__ import annotations

import time
from collections.abc import Callable

from legion_core.ros_env import ensure_workspace, start_composed, stop_process_group

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
