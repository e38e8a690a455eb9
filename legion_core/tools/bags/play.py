"""Playback behind `legion replay`: recorded CDR bytes re-published at the recorded timing, optionally with
/clock (legion_core/tools/bags/)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from legion_core.base.stats import summarize
from legion_core.tools.bags.store import load_messages, message_class
from legion_core.tools.bags.topics import CLOCK_TOPIC, CLOCK_TYPE, SENSOR_TOPICS, from_bag_qos


# ---------------------------------------------------------------------------------------------- replay
@dataclass
class ReplayStats:
    messages: dict[str, int] = field(default_factory=dict)
    clock_messages: int = 0
    bag_duration_s: float = 0.0
    wall_duration_s: float = 0.0
    rate: float | None = 1.0
    lateness_ms: dict[str, float] = field(default_factory=dict)
    """Actual minus scheduled publish time over all messages [ms]: median, p99, max (empty for --fast)."""
    start_time_ns: int = 0
    """Bag time of the first replayed message (the time base of the replay)."""
    no_subscribers: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def replay(
    path: str | Path,
    rate: float | None = 1.0,
    topics: Sequence[str] | None = SENSOR_TOPICS,
    sim_clock: bool = False,
    *,
    clock_period_s: float = 0.005,
    wait_subscribers_s: float = 10.0,
    min_subscribers: dict[str, int] | None = None,
    start_delay_s: float = 0.0,
    on_start: Callable[[int], None] | None = None,
) -> ReplayStats:
    """Publish the recorded messages of `topics` (None = all) into the live graph, open loop.

    rate: 1.0 = recorded timing, 2.0 = twice as fast, None = as fast as possible. sim_clock: also publish
    /clock with the bag time (before each message, and every clock_period_s of bag time in between) so that
    nodes with use_sim_time see the recorded time: the recorded stamps are then fresh to them and their
    timers run on bag time (whatever the rate). Waits up to wait_subscribers_s for every publisher to have
    min_subscribers (default 1) before starting (open loop: starting into an unconnected graph loses data).
    Returns per-topic counts and the publish lateness (actual - scheduled) median/p99/max in ms.
    """
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    from legion_core.tools.ros_env import ensure_workspace

    ensure_workspace()
    msgs, info = load_messages(path, topics)
    stats = ReplayStats(rate=rate)
    if not msgs:
        return stats
    ctx = rclpy.Context()
    rclpy.init(context=ctx, signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node(f"legion_replay_{os.getpid()}", context=ctx, start_parameter_services=False)
    try:
        pubs = {}
        for topic, (msgtype, qos_list) in info.items():
            pubs[topic] = node.create_publisher(message_class(msgtype), topic, from_bag_qos(qos_list, topic))
        clock_pub = clock_cls = None
        if sim_clock:
            from rclpy.qos import QoSProfile

            clock_cls = message_class(CLOCK_TYPE)
            clock_pub = node.create_publisher(clock_cls, CLOCK_TOPIC, QoSProfile(depth=10))
        need = min_subscribers or {}
        waits = dict(pubs)
        if clock_pub is not None:
            waits[CLOCK_TOPIC] = clock_pub
        end = time.monotonic() + wait_subscribers_s
        while time.monotonic() < end:
            if all(p.get_subscription_count() >= need.get(t, 1) for t, p in waits.items()):
                break
            time.sleep(0.02)
        stats.no_subscribers = [t for t, p in waits.items() if p.get_subscription_count() < need.get(t, 1)]
        if start_delay_s > 0:
            time.sleep(start_delay_s)  # let the subscribers' side of discovery finish too

        t0 = msgs[0].t_ns
        stats.start_time_ns = t0
        stats.bag_duration_s = (msgs[-1].t_ns - t0) * 1e-9
        counts = dict.fromkeys(pubs, 0)
        late: list[float] = []
        last_clock = [-1]

        def publish_clock(t_ns: int) -> None:
            if t_ns <= last_clock[0]:
                return
            m = clock_cls()
            m.clock.sec, m.clock.nanosec = divmod(t_ns, 1_000_000_000)
            clock_pub.publish(m)
            last_clock[0] = t_ns
            stats.clock_messages += 1

        period_ns = max(1, int(clock_period_s * 1e9))
        if on_start is not None:
            on_start(t0)
        wall0 = time.perf_counter() + 0.01
        sleep = time.sleep
        now = time.perf_counter

        def wait_until(t_ns: int) -> float:
            due = wall0 + (t_ns - t0) * 1e-9 / rate
            dt = due - now()
            if dt > 0:
                sleep(dt)
            return due

        for m in msgs:
            if sim_clock:
                # Clock ticks between messages so node timers run through gaps in the recording.
                nxt = (last_clock[0] // period_ns + 1) * period_ns if last_clock[0] >= 0 else m.t_ns
                while nxt < m.t_ns:
                    if rate is not None:
                        wait_until(nxt)
                    publish_clock(nxt)
                    nxt += period_ns
            due = wait_until(m.t_ns) if rate is not None else None
            t_pub = now()
            if sim_clock:
                publish_clock(m.t_ns)
            pubs[m.topic].publish(m.raw)
            counts[m.topic] += 1
            if due is not None:
                late.append((t_pub - due) * 1e3)
        stats.wall_duration_s = now() - wall0
        stats.messages = counts
        # Nearest rank: each figure is one publish that was actually that late.
        stats.lateness_ms = (
            summarize(late, ("median", "p99", "max", "n"), method="nearest_rank", digits=4) if late else {}
        )
        # Latched (transient local) publishers keep serving late joiners only while alive; a short linger
        # also lets reliable messages in flight be delivered before the participant goes away.
        time.sleep(0.2)
        return stats
    finally:
        node.destroy_node()
        ctx.try_shutdown()
