"""The compute floor of one control step, measured on this machine in the same invocation as the runtime
latencies it is compared with (`legion bench runtime`; docs/decisions/control-path.md):

- the three stages timed in this process: real2sim (joint state + detections -> observation), the policy
  (bundle `Policy.act`, numpy), sim2real (action -> joint command, IK included); twice: back to back in a
  hot loop (`hot`), and paced, one call per policy period after sleeping (`paced`), which is how the runtime
  calls them. On the 2-core dev VM the paced calls took 3-6x the hot ones (the policy 0.66 vs 0.11 ms):
  a thread that wakes from idle on a virtual CPU finds its caches cold;
- one cross-process DDS hop of a sensor_msgs/JointState, the message a driver always sends: a child process
  stamps and publishes at the driver's rate, this process takes it with the runtime's own control loop
  (legion_core.ros.control.ControlLoop) and records arrival - stamp.

`floor_ms` = the sum of the four medians with the paced stages: what a stamp -> command latency cannot go
below with this code on this machine. `floor_hot_ms` = the same with the hot-loop stages (a machine whose
cores never idle, or a busy-polling loop, could approach it). Ratios of the runtime's latencies to the floor
say how much the plumbing adds.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np

from legion_core.base.stats import summarize
from legion_core.contracts.interface import TOPIC_BENCH_HOP_JOINT_STATES

#: The child process of the DDS hop: publishes stamped JointStates like a driver (stamp, fill, publish).
HOP_PUBLISHER = """
import signal, sys, time
import rclpy
from sensor_msgs.msg import JointState
from legion_core.contracts.interface import TOPIC_JOINT_STATES
from legion_core.ros.common import SENSOR_QOS
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
topic, period, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
rclpy.init()
node = rclpy.create_node("legion_bench_hop_publisher")
pub = node.create_publisher(JointState, topic, SENSOR_QOS)
names = [f"A{i + 1}" for i in range(7)]
end = time.monotonic() + seconds
t_next = time.monotonic()
while time.monotonic() < end:
    m = JointState()
    m.header.stamp = node.get_clock().now().to_msg()
    m.name = names
    m.position = [0.1 * i for i in range(7)]
    m.velocity = [0.0] * 7
    pub.publish(m)
    t_next += period
    time.sleep(max(0.0, t_next - time.monotonic()))
"""


def _ms(samples_s) -> dict:
    return summarize(samples_s, ("n", "median", "p99", "max"), scale=1e3)


#: The pace of the paced stage timing [s]: the policy period of real2sim's default rate (50 Hz).
PACE_S = 0.02


def stage_times(bundle_path: str, skill: str, calls: int = 3000, pace_s: float = 0.0) -> dict:
    """Median/p99/max [ms] of real2sim, the policy and sim2real (with IK), each timed in this process;
    `pace_s` > 0: one call per `pace_s` after sleeping (as the runtime calls them)."""
    from legion_core.bench import sim2real as s2r_bench
    from legion_core.contracts.bundle import load

    s2r = s2r_bench.run_bench(n_calls=calls, warmup=200 if not pace_s else 10, pace_s=pace_s)
    b = load(bundle_path)
    act = b.policy(skill).act
    rng = np.random.default_rng(0)
    inputs = rng.uniform(-0.5, 0.9, size=(calls, b.layout.dim)).astype(np.float32)
    for x in inputs[:200]:
        act(x)
    policy_ns = np.empty(calls, np.int64)
    for i, x in enumerate(inputs):
        if pace_s > 0:
            time.sleep(pace_s)
        t0 = time.perf_counter_ns()
        act(x)
        policy_ns[i] = time.perf_counter_ns() - t0

    def us_to_ms(d: dict) -> dict:
        return {"median": d["median_us"] / 1e3, "p99": d["p99_us"] / 1e3, "max": d["max_us"] / 1e3}

    return {
        "real2sim_ms": us_to_ms(s2r["real2sim"]),
        "policy_ms": _ms(policy_ns * 1e-9),
        "sim2real_ms": us_to_ms(s2r["sim2real"]),
    }


def dds_hop(seconds: float = 10.0, rate_hz: float = 200.0) -> dict:
    """One-way JointState latency [ms] from a publisher in another process to this process's control loop."""
    import rclpy
    from sensor_msgs.msg import JointState

    from legion_core.ros.common import SENSOR_QOS
    from legion_core.ros.control import ControlLoop

    if not rclpy.ok():
        rclpy.init()
    lat: list[float] = []
    loop = ControlLoop()

    def on_js(m) -> None:
        lat.append(time.time() - (m.header.stamp.sec + m.header.stamp.nanosec * 1e-9))

    loop.subscription(JointState, TOPIC_BENCH_HOP_JOINT_STATES, on_js, SENSOR_QOS, threading.Lock())
    loop.start()
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            HOP_PUBLISHER,
            TOPIC_BENCH_HOP_JOINT_STATES,
            str(1.0 / rate_hz),
            str(seconds + 2.0),
        ],
        start_new_session=True,
    )
    try:
        # Discovery first: the samples of the first second are not the steady state.
        deadline = time.monotonic() + 30.0
        while not lat and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.05)
        time.sleep(1.0)
        n0 = len(lat)
        time.sleep(seconds)
        samples = lat[n0:]
    finally:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
        loop.stop()
    return {"rate_hz": rate_hz, **_ms(samples)}


def measure_floor(bundle_path: str, skill: str, hop_seconds: float = 10.0, paced_calls: int = 250) -> dict:
    """The stages (hot and paced) and the hop; `floor_ms` (paced stages + hop, the sum of their medians)
    and `floor_hot_ms` (hot stages + hop) [ms]."""
    hot = stage_times(bundle_path, skill)
    paced = stage_times(bundle_path, skill, calls=paced_calls, pace_s=PACE_S)
    hop = dds_hop(hop_seconds)

    def total(stages: dict) -> float:
        return sum(stages[k]["median"] for k in ("real2sim_ms", "policy_ms", "sim2real_ms")) + hop["median"]

    return {"hot": hot, "paced": {**paced, "pace_s": PACE_S}, "joint_state_dds_hop_ms": hop,
            "floor_ms": total(paced), "floor_hot_ms": total(hot)}  # fmt: skip
