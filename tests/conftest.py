"""Test-wide environment. NETWORK RULE: rclpy stays on loopback DDS, and every test run gets its own
ROS_DOMAIN_ID so that parallel runs (or a developer's running graph) never cross-talk."""

from __future__ import annotations

import os

# Set before anything can import rclpy. Kilted ignores ROS_LOCALHOST_ONLY; this is the variable it reads.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.pop("ROS_STATIC_PEERS", None)
if "LEGION_TEST_DOMAIN_ID" in os.environ:
    os.environ["ROS_DOMAIN_ID"] = os.environ["LEGION_TEST_DOMAIN_ID"]
else:
    # 1..100 from the pid: distinct for concurrent runs on one machine, stable within this run.
    os.environ["ROS_DOMAIN_ID"] = str(1 + os.getpid() % 100)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MUJOCO_GL", "egl")
