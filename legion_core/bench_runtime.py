"""`legion bench runtime`: end-to-end latency of the runtime graph, composed (real2sim, policy and sim2real
in one process on one executor) vs cross-process (one process per node), on the digital twin (issue 6
§Performance). The twin always runs in its own process: it stands in for the robot's driver, which is never
composed into the runtime, and its 200 Hz physics on the runtime's executor thread would add its step time
to every control step (measured: composed p99 3.5 ms with the twin inside vs cross-process 3.4 ms).

Latency of a control step = (time the CommandReport of a new policy step is received by the probe) -
(its header stamp, which is the stamp of the joint state that triggered the observation the action was
computed from). It therefore includes real2sim, the policy, sim2real (IK + limits) and one extra DDS hop
to the probe process (~0.3-0.5 ms on loopback: the figure is conservative). The command stream is
measured for gaps: the longest interval between two /joint_command messages and the number of 100 Hz
cycles missed (gap > 1.5 periods).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np


def run_bench(bundle: str | None = None, seconds: float = 60.0, modes=("composed", "cross_process")) -> dict:
    """Run the sim graph in each mode for `seconds` and return the latency/gap figures."""

    from legion_core.ros_env import ensure_workspace, start_composed, stop_process_group

    ensure_workspace()
    import rclpy
    from legion_msgs.msg import CommandReport
    from std_msgs.msg import Float64MultiArray

    tmp = Path(tempfile.mkdtemp(prefix="legion_bench_runtime_"))
    if bundle is None:
        import sys as _sys

        from legion_core.ros_env import REPO

        _sys.path.insert(0, str(REPO))  # the untrained bundle factory lives with the tests
        from tests.bundle_factory import make_tiny_bundle

        bundle = str(make_tiny_bundle(tmp / "run", tmp / "tiny-bundle", tasks=("drawer-close",))[2])
    from legion_core.bundle import load

    b = load(bundle)
    skill = b.skill_names[0]
    params = {
        "policy.bundle": bundle,
        "sim2real.bundle": bundle,
        "policy.skill": skill,
        "real2sim.skill": skill,
        "twin.task": skill,
        "twin.scene": b.scene or "",  # placed as in the bundle's training scene
    }
    groups = {
        "composed": ["twin", "real2sim,policy,sim2real"],
        "cross_process": ["twin", "real2sim", "policy", "sim2real"],
    }
    results: dict = {"bundle": bundle, "skill": skill, "seconds_per_mode": seconds}
    if not rclpy.ok():
        rclpy.init()
    for mode in modes:
        procs = []
        for g in groups[mode]:
            names = g.split(",")
            mine = {k: v for k, v in params.items() if k.split(".")[0] in names}
            procs.append(start_composed(g, mine, tmp / f"{mode}-{g.replace(',', '_')}.log"))
        node = rclpy.create_node(f"bench_runtime_{mode}")
        lat: list[float] = []
        cmd_t: list[float] = []

        def on_report(m, lat=lat, node=node):
            if not m.hold and (m.header.stamp.sec or m.header.stamp.nanosec):
                now = node.get_clock().now().nanoseconds * 1e-9
                lat.append(now - (m.header.stamp.sec + m.header.stamp.nanosec * 1e-9))

        node.create_subscription(CommandReport, "/legion/command_sent", on_report, 100)
        node.create_subscription(
            Float64MultiArray, "/joint_command", lambda _m, c=cmd_t: c.append(time.monotonic()), 100
        )
        # Warm-up: discovery + the first policy steps, not measured.
        t_end = time.monotonic() + 60.0
        while time.monotonic() < t_end and len(lat) < 5:
            rclpy.spin_once(node, timeout_sec=0.05)
        lat.clear()
        cmd_t.clear()
        t_end = time.monotonic() + seconds
        while time.monotonic() < t_end:
            rclpy.spin_once(node, timeout_sec=0.05)
        node.destroy_node()

        for p in procs:
            stop_process_group(p, 10)
        gaps = np.diff(np.array(cmd_t)) if len(cmd_t) > 1 else np.array([np.nan])
        l_ms = np.array(lat) * 1e3 if lat else np.array([np.nan])
        period = 0.01
        results[mode] = {
            "policy_steps": len(lat),
            "latency_ms": {
                "median": float(np.median(l_ms)),
                "p99": float(np.percentile(l_ms, 99)),
                "max": float(np.max(l_ms)),
            },
            "commands": len(cmd_t),
            "command_rate_hz": float(len(cmd_t) / seconds),
            "longest_command_gap_ms": float(np.nanmax(gaps) * 1e3),
            "missed_cycles": int(np.sum(np.maximum(0, np.round(gaps / period) - 1)))
            if len(cmd_t) > 1
            else None,
            "gaps_over_1.5_periods": int(np.sum(gaps > 1.5 * period)) if len(cmd_t) > 1 else None,
        }
    results["targets"] = {"composed_p99_ms": 2.0, "cross_process_p99_ms": 5.0, "missed_cycles": 0}
    return results
