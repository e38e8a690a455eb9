"""`legion bench runtime`: end-to-end latency of the runtime graph on the digital twin (issue 6 §Performance)
in three modes: `composed` (real2sim, policy and sim2real in one process, control path handed over in
process: what `legion run` does), `composed_dds` (same process, every hop on DDS: `composed --no-handoff`)
and `cross_process` (one process per node). The twin always runs in its own process: it stands in for the
robot's driver, which is never composed into the runtime, and its 200 Hz physics on the runtime's executor
would add its step time to every control step.

Latency of a control step starts at the header stamp of the joint state that triggered the observation
the action was computed from (real2sim -> policy -> sim2real carry it through) and is measured twice:
- `stamp_to_command_sent_ms`: until sim2real has published the joint command of that new policy step
  (recorded by sim2real itself, `latency_log`): what the runtime controls; the targets are judged on it.
- `latency_ms`: until the step's CommandReport is received by a Python subscriber in this process: one
  more DDS hop plus a Python executor's wake-up (a C++ ros2_control driver receives faster): conservative.
The command stream is checked for gaps both as sent (`sent`, sim2real's publish times) and as received
here: the longest interval between two /joint_command messages and the 100 Hz cycles missed.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

MODES = ("composed", "composed_dds", "cross_process")
PERIOD_S = 0.01  # the command stream's period (100 Hz)
LOG_KEYS = ("stamp_to_command_s", "stamp_to_command_sent_at_s", "command_times_s")


def run_bench(
    bundle: str | None = None,
    seconds: float = 60.0,
    modes=MODES,
    realtime_priority: int = 0,
    subscriber: bool = True,
) -> dict:
    """Run the sim graph in each mode for `seconds` and return the latency/gap figures. `realtime_priority`
    > 0 runs the runtime processes (not the twin: it stands in for the driver) with SCHED_FIFO.
    `subscriber=False`: this process unsubscribes after the warm-up and sleeps through the measurement
    (only the runtime's own figures; the subscriber is a third busy Python process on the cores)."""

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
        "composed_dds": ["twin", "real2sim,policy,sim2real"],
        "cross_process": ["twin", "real2sim", "policy", "sim2real"],
    }
    results: dict = {"bundle": bundle, "skill": skill, "seconds_per_mode": seconds, "log_dir": str(tmp),
                     "subscriber_during_measurement": subscriber,
                     "runtime_scheduling": f"SCHED_FIFO {realtime_priority}" if realtime_priority > 0 else "normal"}  # fmt: skip
    if not rclpy.ok():
        rclpy.init()
    for mode in modes:
        procs = []
        for g in groups[mode]:
            names = g.split(",")
            mine = {k: v for k, v in params.items() if k.split(".")[0] in names}
            if "sim2real" in names:
                mine["sim2real.latency_log"] = str(tmp / f"{mode}-latency.json")
            log = tmp / f"{mode}-{g.replace(',', '_')}.log"
            rt = realtime_priority if g != "twin" else 0
            procs.append(start_composed(g, mine, log, handoff=mode != "composed_dds", realtime_priority=rt))
        node = rclpy.create_node(f"bench_runtime_{mode}")
        lat: list[float] = []
        cmd_t: list[float] = []

        def on_report(m, lat=lat, node=node):
            if not m.hold and (m.header.stamp.sec or m.header.stamp.nanosec):
                now = node.get_clock().now().nanoseconds * 1e-9
                lat.append(now - (m.header.stamp.sec + m.header.stamp.nanosec * 1e-9))

        node.create_subscription(CommandReport, "/legion/command_sent", on_report, 100)
        node.create_subscription(
            Float64MultiArray,
            "/joint_command",
            lambda _m, c=cmd_t, n=node: c.append(n.get_clock().now().nanoseconds * 1e-9),
            100,
        )
        # Warm-up: discovery + the first policy steps, not measured.
        t_end = time.monotonic() + 60.0
        while time.monotonic() < t_end and len(lat) < 5:
            rclpy.spin_once(node, timeout_sec=0.05)
        lat.clear()
        cmd_t.clear()
        t_end = time.monotonic() + seconds
        window = [node.get_clock().now().nanoseconds * 1e-9, 0.0]
        if subscriber:
            while time.monotonic() < t_end:
                rclpy.spin_once(node, timeout_sec=0.05)
        else:
            for sub in list(node.subscriptions):
                node.destroy_subscription(sub)
            time.sleep(seconds)
        window[1] = node.get_clock().now().nanoseconds * 1e-9
        node.destroy_node()

        for p in procs:
            stop_process_group(p, 10)
        log = _read_latency_log(tmp / f"{mode}-latency.json")
        # The runtime's own record covers its whole life: keep the measured window (its clock is the same
        # system clock as the probe's stamps).
        sent_t = [t for t in log["command_times_s"] if window[0] <= t <= window[1]]
        sent_lat = [x for x, t in zip(log["stamp_to_command_s"], log["stamp_to_command_sent_at_s"])
                    if window[0] <= t <= window[1]]  # fmt: skip
        results[mode] = {
            "policy_steps": len(sent_lat),
            "stamp_to_command_sent_ms": _stats_ms(sent_lat),
            "latency_ms": _stats_ms(lat),
            "command_rate_hz": float(len(sent_t) / seconds),
            "sent": _gap_stats(sent_t, PERIOD_S),
            # At this process's subscriber; empty with subscriber=False.
            "received": _gap_stats(cmd_t, PERIOD_S),
        }
    targets = {"composed_p99_ms": 2.0, "cross_process_p99_ms": 5.0, "missed_cycles": 0}
    results["targets"] = targets
    met = {}
    for mode, key in (("composed", "composed_p99_ms"), ("cross_process", "cross_process_p99_ms")):
        r = results.get(mode)
        if r and r["stamp_to_command_sent_ms"]["n"]:
            met[f"{mode}_p99"] = r["stamp_to_command_sent_ms"]["p99"] <= targets[key]
            met[f"{mode}_no_missed_cycle"] = r["sent"]["missed_cycles"] == 0 and r["received"][
                "missed_cycles"
            ] in (0, None)
    results["targets_met"] = met
    return results


def _read_latency_log(path: Path) -> dict:
    """sim2real_node's `latency_log` (written at shutdown): stamp -> command-sent latencies and the publish
    times of all commands [s]; empty lists when the file is missing."""
    import json

    try:
        d = json.loads(path.read_text())
        return {k: list(d.get(k) or []) for k in LOG_KEYS}
    except (OSError, ValueError):
        return {k: [] for k in LOG_KEYS}


def _gap_stats(times_s, period_s: float) -> dict:
    """Longest interval between consecutive commands and the 100 Hz cycles missed (a gap of k periods,
    rounded, misses k - 1 cycles)."""
    if len(times_s) < 2:
        return {"commands": len(times_s), "longest_gap_ms": None, "missed_cycles": None}
    gaps = np.diff(np.asarray(times_s, float))
    return {"commands": len(times_s), "longest_gap_ms": float(gaps.max() * 1e3),
            "missed_cycles": int(np.sum(np.maximum(0, np.round(gaps / period_s) - 1))),
            "gaps_over_1.5_periods": int(np.sum(gaps > 1.5 * period_s))}  # fmt: skip


def _stats_ms(lat_s: list[float]) -> dict:
    if not lat_s:
        return {"n": 0, "median": None, "p99": None, "max": None}
    ms = np.asarray(lat_s) * 1e3
    return {"n": int(ms.size), "median": float(np.median(ms)), "p99": float(np.percentile(ms, 99)),
            "max": float(ms.max())}  # fmt: skip
