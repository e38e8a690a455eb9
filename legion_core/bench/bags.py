"""`legion bench record`: throughput of the bag recorder (legion_core/tools/bags/record.py) under a synthetic flood.

A child process (`python -m legion_core.cli bench flood`, `flood_publish`) publishes numbered JointState
messages at a fixed rate, reliable or best effort, while this process records them with the recorder of
`legion record`; the bag is then read back to count what was published, received, written, dropped, missing
and whether it arrived in order. The receive side is what is measured: rclpy's executor in Python handles one
callback per message.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

from legion_core.contracts.interface import TOPIC_FLOOD_BENCH
from legion_core.tools.bags.record import Recorder
from legion_core.tools.bags.store import load_messages


def flood_publish(topic: str, rate_hz: float, count: int, reliable: bool, wait_s: float = 20.0) -> int:
    """Publish `count` JointState messages at `rate_hz` (position[0] = index) once a subscriber matched.
    Used by the throughput measurement as its child process (`python -m legion_core.cli bench flood ...`)."""
    import rclpy
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import JointState

    rclpy.init()
    node = rclpy.create_node(f"legion_flood_{os.getpid()}")
    rel = ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT
    # A deep publisher history: reliable delivery of a burst must not depend on acknowledgements arriving
    # before the history slot is reused.
    pub = node.create_publisher(
        JointState,
        topic,
        QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=max(1000, count), reliability=rel),
    )
    end = time.monotonic() + wait_s
    while pub.get_subscription_count() < 1 and time.monotonic() < end:
        time.sleep(0.01)
    time.sleep(0.3)
    m = JointState()
    m.name = [f"lbr_A{i}" for i in range(1, 8)]
    t0 = time.perf_counter()
    for i in range(count):
        due = t0 + i / rate_hz
        dt = due - time.perf_counter()
        if dt > 0:
            time.sleep(dt)
        m.header.stamp = node.get_clock().now().to_msg()
        m.position = [float(i)] + [0.0] * 6
        pub.publish(m)
    took = time.perf_counter() - t0
    time.sleep(1.0)  # reliable: let the last messages be acknowledged before the writer goes away
    print(
        json.dumps({"published": count, "seconds": round(took, 4), "rate_hz": round(count / took, 1)}),
        flush=True,
    )
    node.destroy_node()
    rclpy.shutdown()
    return 0


def measure_throughput(out_dir: str | Path, rate_hz: float = 2000.0, seconds: float = 2.0,
                       reliable: bool = True, topic: str = TOPIC_FLOOD_BENCH) -> dict:  # fmt: skip
    """Record a synthetic JointState flood published by a child process; returns published / received /
    written / drops / missing indices / messages per second. The receive side is what is measured: rclpy's
    executor in Python handles one callback per message."""
    import subprocess

    from legion_core.tools.ros_env import child_env

    count = int(rate_hz * seconds)
    path = Path(out_dir) / f"flood_{int(rate_hz)}_{'rel' if reliable else 'be'}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "legion_core.cli", "bench", "flood", "--topic", topic, "--rate", str(rate_hz),
         "--count", str(count)] + ([] if reliable else ["--best-effort"]),
        env=child_env(), stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    stop = threading.Event()

    def _watch() -> None:
        proc.wait()
        time.sleep(0.5)
        stop.set()

    threading.Thread(target=_watch, daemon=True).start()
    rec = Recorder(path, [topic], discovery_s=10.0)
    rec.start()
    t_subscribed = time.monotonic()
    stats = rec.run(stop_event=stop)
    out = json.loads(proc.stdout.read().strip().splitlines()[-1])
    msgs, _ = load_messages(path, [topic])
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_KILTED)
    idx = [int(ts.deserialize_cdr(m.raw, "sensor_msgs/msg/JointState").position[0]) for m in msgs]
    missing = sorted(set(range(count)) - set(idx))
    return {
        "rate_hz_requested": rate_hz,
        "reliable": reliable,
        "published": out["published"],
        "publish_rate_hz": out["rate_hz"],
        "received": stats.received,
        "written": stats.written,
        "in_bag": len(msgs),
        "drops": stats.drops,
        "missing": len(missing),
        "in_order": idx == sorted(idx),
        "max_backlog": stats.max_backlog,
        "recorded_msgs_per_s": round(stats.written / max(1e-9, out["seconds"]), 1),
        "record_wall_s": round(time.monotonic() - t_subscribed, 2),
    }
