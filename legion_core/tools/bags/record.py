"""The recorder behind `legion record`: raw subscriptions, a writer thread, counts and drops
(legion_core/tools/bags/)."""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from legion_core.contracts.interface import (
    RELIABLE,
    TopicSpec,
)
from legion_core.tools.bags.store import (
    DEFAULT_METADATA_VERSION,
    RecordingError,
    bag_dir,
    legion_typestore,
    message_class,
    open_writer,
)
from legion_core.tools.bags.topics import (
    RUNTIME_TOPICS,
    qos_compatible,
    subscription_qos,
    table_qos,
    to_bag_qos,
)
from legion_core.tools.numeric_signature import METADATA_KEY, numeric_signature


# ---------------------------------------------------------------------------------------------- record
@dataclass
class TopicStats:
    msgtype: str
    received: int = 0
    written: int = 0


@dataclass
class RecordStats:
    path: str
    """The bag directory."""
    topics: dict[str, TopicStats] = field(default_factory=dict)
    duration_s: float = 0.0
    """Wall time from the start of recording (subscriptions up) to its end."""
    first_time_ns: int = 0
    last_time_ns: int = 0
    max_backlog: int = 0
    """Largest number of received-but-not-yet-written messages seen (how close the writer came to lagging)."""
    not_subscribed: list[str] = field(default_factory=list)
    """Requested topics that never had a publisher and are not in the known topic table."""

    @property
    def received(self) -> int:
        return sum(t.received for t in self.topics.values())

    @property
    def written(self) -> int:
        return sum(t.written for t in self.topics.values())

    @property
    def drops(self) -> int:
        """Received but not written: must be 0."""
        return self.received - self.written

    @property
    def messages_per_s(self) -> float:
        return self.written / self.duration_s if self.duration_s > 0 else 0.0

    def counts(self) -> dict[str, int]:
        return {k: v.written for k, v in self.topics.items()}

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(received=self.received, written=self.written, drops=self.drops,
                 messages_per_s=round(self.messages_per_s, 1))  # fmt: skip
        return d


class _RawCallback:
    """Subscription callback taking (raw bytes, message info): rclpy passes the info to callables that need
    two arguments, and its `received_timestamp` is the DDS reception time (not the executor's pick-up)."""

    __slots__ = ("index", "q", "stats", "clock")

    def __init__(self, index: int, q: queue.SimpleQueue, stats: TopicStats, clock) -> None:
        self.index, self.q, self.stats, self.clock = index, q, stats, clock

    def __call__(self, raw: bytes, info) -> None:
        self.stats.received += 1
        if self.clock is not None:  # sim time: log the graph's time, as `ros2 bag record --use-sim-time`
            t = self.clock.now().nanoseconds
        else:
            t = info.get("received_timestamp", 0) if isinstance(info, dict) else 0
            t = t or time.time_ns()
        self.q.put((self.index, t, raw))


class Recorder:
    """Subscribes (raw) to topics and writes a rosbag2/MCAP bag; `record()` is the blocking front end.

    Threads: the rclpy executor spins on a background thread and only enqueues; `run()` (the caller's
    thread) writes. Subscriptions appear on the executor thread (a graph poll adds topics whose publishers
    show up later), and their bag connections are added by the writer through the same queue, so a topic's
    connection always precedes its messages and the rosbags writer is used by one thread only.
    """

    def __init__(
        self,
        path: str | Path,
        topics: Sequence[str] | None = None,
        *,
        use_sim_time: bool = False,
        discovery_s: float = 1.0,
        require_topics: Sequence[str] = (),
        node_name: str | None = None,
        metadata_version: int = DEFAULT_METADATA_VERSION,
    ) -> None:
        self.path = bag_dir(path)
        self.metadata_version = metadata_version
        if self.path.exists():
            raise RecordingError(
                f"{self.path} exists already; choose another output (bags are never overwritten)"
            )
        self.topics = (
            [t if t.startswith("/") else f"/{t}" for t in topics] if topics else list(RUNTIME_TOPICS)
        )
        self.use_sim_time = use_sim_time
        self.discovery_s = discovery_s
        self.require_topics = list(require_topics)
        self.node_name = node_name or f"legion_recorder_{os.getpid()}"
        self.stats = RecordStats(str(self.path))
        self.q: queue.SimpleQueue = queue.SimpleQueue()
        self._subs: dict[str, tuple[Any, Any, str]] = {}  # topic -> (subscription, qos, msgtype)
        self._index: dict[tuple[str, str], int] = {}  # (topic, msgtype) -> bag connection index
        self._stop = threading.Event()
        self.ready = threading.Event()

    # -- ROS side (executor thread) ----------------------------------------------------------------------
    def _publishers(self, topic: str) -> list:
        try:
            return list(self.node.get_publishers_info_by_topic(topic))
        except Exception:  # noqa: BLE001 - graph queries can fail during shutdown
            return []

    def _subscribe(self, topic: str, msgtype: str, pubs: list) -> None:
        """(Re-)subscribe `topic` as `msgtype` with a QoS matching `pubs`. Each (topic, type) is one bag
        connection, announced to the writer through the queue before any of its messages."""
        spec = RUNTIME_TOPICS.get(topic, TopicSpec(msgtype, RELIABLE))
        qos = subscription_qos([p.qos_profile for p in pubs], spec.qos)
        old = self._subs.pop(topic, None)
        if old is not None:
            self.node.destroy_subscription(old[0])
        st = self.stats.topics.setdefault(topic, TopicStats(msgtype))
        st.msgtype = msgtype
        key = (topic, msgtype)
        if key not in self._index:
            self._index[key] = len(self._index)
            offered = [to_bag_qos(p.qos_profile) for p in pubs] or [to_bag_qos(table_qos(spec.qos))]
            self.q.put(("connection", self._index[key], topic, msgtype, offered))
        clock = self.node.get_clock() if self.use_sim_time else None
        cb = _RawCallback(self._index[key], self.q, st, clock)
        sub = self.node.create_subscription(message_class(msgtype), topic, cb, qos, raw=True)
        self._subs[topic] = (sub, qos, msgtype)

    def _poll_graph(self) -> None:
        """Subscribe to topics whose publishers appeared. Re-subscribe where the current subscription cannot
        match a publisher: another type (e.g. JointTrajectory commands instead of the table's array), or a
        QoS it is incompatible with (a volatile publisher on a topic the table says is latched)."""
        for topic in self.topics:
            pubs = self._publishers(topic)
            pub_types = sorted({p.topic_type for p in pubs})
            if topic in self._subs:
                _, qos, msgtype = self._subs[topic]
                if pub_types and msgtype not in pub_types:
                    self._subscribe(topic, pub_types[0], [p for p in pubs if p.topic_type == pub_types[0]])
                elif any(not qos_compatible(qos, p.qos_profile) for p in pubs):
                    self._subscribe(topic, msgtype, pubs)
            elif pub_types:
                self._subscribe(topic, pub_types[0], [p for p in pubs if p.topic_type == pub_types[0]])
            elif topic in RUNTIME_TOPICS:
                # Known topic without a publisher yet (status is created on its first change, estop may
                # never appear): subscribe with the table's type and QoS so its first message is not lost.
                self._subscribe(topic, RUNTIME_TOPICS[topic].msgtype, [])
        if not self.ready.is_set() and all(
            t in self._subs and self._publishers(t) for t in self.require_topics
        ):
            self.ready.set()

    def _spin(self) -> None:
        try:
            while not self._stop.is_set() and self.ctx.ok():
                self.executor.spin_once(timeout_sec=0.05)
        except Exception as e:  # noqa: BLE001 - reported by run(); the writer must still close the bag
            self._spin_error = e

    # -- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.parameter import Parameter
        from rclpy.signals import SignalHandlerOptions

        from legion_core.tools.ros_env import ensure_workspace

        ensure_workspace()
        self.ctx = rclpy.Context()
        # Our own context (the caller may run other rclpy code) and no rclpy signal handlers: SIGINT stays a
        # KeyboardInterrupt in the writer thread, which then closes the bag properly.
        rclpy.init(context=self.ctx, signal_handler_options=SignalHandlerOptions.NO)
        overrides = [Parameter("use_sim_time", value=True)] if self.use_sim_time else []
        self.node = rclpy.create_node(
            self.node_name, context=self.ctx, parameter_overrides=overrides, start_parameter_services=False
        )
        self.executor = SingleThreadedExecutor(context=self.ctx)
        self.executor.add_node(self.node)
        self._spin_error: Exception | None = None
        self.writer = open_writer(self.path, self.metadata_version)
        self.writer.open()
        self._connections: dict[int, Any] = {}
        self._typestore = legion_typestore()
        # Discovery: give publishers up to discovery_s to show up so that their QoS can be matched.
        end = time.monotonic() + self.discovery_s
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.05)
            if all(self._publishers(t) for t in self.topics):
                break
        self._poll_graph()
        self.node.create_timer(0.25, self._poll_graph)
        self.t_start = time.monotonic()
        self._thread = threading.Thread(target=self._spin, name="legion-recorder-executor", daemon=True)
        self._thread.start()

    def run(
        self,
        duration_s: float | None = None,
        stop_event: threading.Event | None = None,
        on_ready: Callable[[Recorder], None] | None = None,
        ready_timeout_s: float = 60.0,
    ) -> RecordStats:
        """Write until duration_s passed, stop_event is set, or KeyboardInterrupt; then close the bag."""
        ready_deadline = time.monotonic() + ready_timeout_s
        if not self.require_topics:
            self.ready.set()
        notified = False
        try:
            while True:
                if not notified and self.ready.is_set():
                    notified = True
                    if on_ready is not None:
                        on_ready(self)
                if not notified and time.monotonic() > ready_deadline:
                    missing = [
                        t for t in self.require_topics if t not in self._subs or not self._publishers(t)
                    ]
                    raise RecordingError(f"no publisher for {missing} within {ready_timeout_s} s")
                if duration_s is not None and time.monotonic() - self.t_start >= duration_s:
                    break
                if stop_event is not None and stop_event.is_set():
                    break
                if self._spin_error is not None:
                    raise RecordingError(f"executor failed: {self._spin_error}") from self._spin_error
                try:
                    item = self.q.get(timeout=0.05)
                except queue.Empty:
                    continue
                self._write_one(item)
                backlog = self.q.qsize()
                if backlog > self.stats.max_backlog:
                    self.stats.max_backlog = backlog
        except KeyboardInterrupt:
            pass
        finally:
            self.close()
        return self.stats

    def _write_one(self, item) -> None:
        if item[0] == "connection":
            _, index, topic, msgtype, offered = item
            self._connections[index] = (
                self.writer.add_connection(
                    topic, msgtype, typestore=self._typestore, offered_qos_profiles=offered
                ),
                self.stats.topics[topic],
            )
            return
        index, t, raw = item
        conn, st = self._connections[index]
        self.writer.write(conn, t, raw)
        st.written += 1
        s = self.stats
        if s.first_time_ns == 0 or t < s.first_time_ns:
            s.first_time_ns = t
        if t > s.last_time_ns:
            s.last_time_ns = t

    def close(self) -> None:
        """Stop receiving, write everything received, close the bag with the counts in its metadata."""
        if getattr(self, "_closed", False):
            return
        self._closed = True
        self._stop.set()
        if not hasattr(self, "ctx"):
            return  # start() never reached rclpy
        if not hasattr(self, "_connections"):
            self.ctx.try_shutdown()
            return
        if getattr(self, "_thread", None) is not None:
            self._thread.join(5.0)
        self.stats.duration_s = time.monotonic() - getattr(self, "t_start", time.monotonic())
        # The executor has stopped: whatever is queued was received and is written now (no drops at the end).
        while True:
            try:
                self._write_one(self.q.get_nowait())
            except queue.Empty:
                break
        self.stats.not_subscribed = [t for t in self.topics if t not in self._subs]
        meta = {
            "received": {k: v.received for k, v in self.stats.topics.items()},
            "written": {k: v.written for k, v in self.stats.topics.items()},
            "drops": self.stats.drops,
            "duration_s": round(self.stats.duration_s, 6),
            "bag_span_s": round(max(0, self.stats.last_time_ns - self.stats.first_time_ns) * 1e-9, 6),
            "max_backlog": self.stats.max_backlog,
            "use_sim_time": self.use_sim_time,
            "not_subscribed": self.stats.not_subscribed,
            "started_unix_s": round(time.time() - self.stats.duration_s, 3),
        }
        self.writer.set_custom_data("legion.recorder", json.dumps(meta, sort_keys=True))
        # What decides the policy's last float32 bits on this machine: the regression check compares actions
        # bit-exactly only against a bag with the same signature (docs/decisions/portable-regression-check.md).

        self.writer.set_custom_data(METADATA_KEY, json.dumps(numeric_signature(), sort_keys=True))
        self.writer.close()
        try:
            self.executor.shutdown(timeout_sec=1.0)
            self.node.destroy_node()
        finally:
            if self.ctx.ok():
                self.ctx.try_shutdown()


def record(
    path: str | Path,
    topics: Sequence[str] | None = None,
    duration_s: float | None = None,
    stop_event: threading.Event | None = None,
    *,
    use_sim_time: bool = False,
    require_topics: Sequence[str] = (),
    on_ready: Callable[[Recorder], None] | None = None,
    discovery_s: float = 1.0,
    ready_timeout_s: float = 60.0,
    metadata_version: int = DEFAULT_METADATA_VERSION,
) -> RecordStats:
    """Record `topics` (default: every runtime topic) into the rosbag2/MCAP bag `path` until `duration_s`
    passed, `stop_event` is set or Ctrl-C. `require_topics`: wait for publishers of these before calling
    `on_ready` (a regression check starts its replay only then); `metadata_version` 8 for a bag that ROS 2
    Humble reads (store.METADATA_VERSIONS). Returns counts, duration and drops."""
    rec = Recorder(
        path,
        topics,
        use_sim_time=use_sim_time,
        discovery_s=discovery_s,
        require_topics=require_topics,
        metadata_version=metadata_version,
    )
    try:
        rec.start()
    except BaseException:
        rec.close()
        raise
    return rec.run(duration_s, stop_event, on_ready, ready_timeout_s)
