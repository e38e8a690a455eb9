"""Record and replay LEGION sessions as ROS 2 bags: `legion record` / `legion replay`.

Format: the standard rosbag2 layout that `ros2 bag record -s mcap` writes (a directory with
`metadata.yaml` and `<name>_0.mcap`, metadata version 9), written with the pure-Python `rosbags` library, so
that `ros2 bag info/play` on a ROS machine, Foxglove and `mcap` readers open it without this package. The bag
is self-describing: every channel carries its full message definition (legion_msgs too, registered from the
workspace's .msg files) and its RIHS01 type hash, and the topic's offered QoS profiles, so that `ros2 bag
play` re-publishes latched topics (the active skill) as latched.

Recording never re-serialises: subscriptions are `raw=True` (the CDR bytes as they arrived). The rclpy
executor runs on its own thread and only appends `(topic, time, bytes)` to a queue; the calling thread
writes. Counts of received and written messages per topic, the recording duration and the largest queue
backlog go into `metadata.yaml` (`custom_data: legion.recorder`) and into the returned `RecordStats`; a
message that was received but not written is a drop, and there must be none. The recording machine's numeric
signature goes beside them (`custom_data: legion.numeric_signature`, legion_core/tools/numeric_signature.py): the
regression check compares actions bit-exactly only on a machine with the same one.

Replay publishes the recorded CDR bytes at the recorded timing (or a rate factor, or as fast as possible)
into the live graph, open loop, optionally with /clock (rosgraph_msgs/Clock) so that nodes running with
`use_sim_time:=true` see the recorded time and the recorded stamps are fresh to them. It measures how late
each publish was against its schedule (median / p99 / max). Replay does not re-stamp: a runtime on wall time
sees the recorded header stamps as old and (rightly) refuses them as stale, so replaying into the runtime
needs its nodes on `use_sim_time:=true` and `--sim-clock` (what `legion_core.tools.regression` does).

API: `record(path, topics=None, duration_s=None, stop_event=None) -> RecordStats`,
`replay(path, rate=1.0 | None, topics=SENSOR_TOPICS, sim_clock=False) -> ReplayStats`, `load_messages()`,
`read_recorder_metadata()`. The command lines `legion record` and `legion replay` live in
legion_core/cli/bags.py; the recorder's throughput under a synthetic flood is measured by
legion_core/bench/bags.py (`legion bench record`).

Measured on the 2-core development VM: 2000 and 5000 JointState msg/s recorded without a drop or a gap,
reliable and best effort; 10000 msg/s best effort too (the writer never lags: the largest backlog was ~950
messages); reliable at 10000 msg/s the rclpy executor takes ~7500 msg/s and DDS holds the rest.

rclpy is imported inside functions only: `legion_core` keeps importing on machines without ROS (reading and
checking bags works there; `legion_core.tools.regression` uses only the reader side for its offline checks).
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from legion_core.base.stats import summarize
from legion_core.contracts.interface import (
    LATCHED,
    QOS,
    RELIABLE,
    TOPIC_ACTION,
    TOPIC_ACTIVE_SKILL,
    TOPIC_CLOCK,
    TOPIC_COMMAND_REPORT,
    TOPIC_DETECTIONS,
    TOPIC_DIAGNOSTICS,
    TOPIC_ESTOP,
    TOPIC_GRIPPER_COMMAND,
    TOPIC_GRIPPER_STATE,
    TOPIC_JOINT_COMMAND,
    TOPIC_JOINT_STATES,
    TOPIC_OBSERVATION,
    TOPIC_STATUS,
    TOPIC_TWIN_SUCCESS,
    TOPICS,
    Durability,
    Reliability,
    TopicSpec,
)
from legion_core.tools.numeric_signature import METADATA_KEY, numeric_signature

# NETWORK RULE: any rclpy this module starts stays on loopback DDS.
if os.environ.get("LEGION_ALLOW_NETWORK") != "1":
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"

# ------------------------------------------------------------------------------------------- topic table
# Names, message types and QoS kinds come from the interface contract (legion_core.contracts.interface);
# this table only chooses which of its topics `legion record` / `legion replay` take by default.

#: Every runtime topic (docs/architecture.md), the default set of `legion record`.
RUNTIME_TOPICS: dict[str, TopicSpec] = {
    name: TOPICS[name]
    for name in (
        TOPIC_JOINT_STATES,
        TOPIC_DETECTIONS,
        TOPIC_GRIPPER_STATE,
        TOPIC_OBSERVATION,
        TOPIC_ACTIVE_SKILL,
        TOPIC_ACTION,
        TOPIC_JOINT_COMMAND,
        TOPIC_GRIPPER_COMMAND,
        TOPIC_COMMAND_REPORT,
        TOPIC_STATUS,
        TOPIC_ESTOP,
        TOPIC_TWIN_SUCCESS,
        TOPIC_DIAGNOSTICS,
    )
}
#: What a robot/twin feeds the runtime: the default of `legion replay` (the runtime's own outputs are what a
#: replay re-computes, so they are not re-published).
SENSOR_TOPICS = (TOPIC_JOINT_STATES, TOPIC_DETECTIONS, TOPIC_GRIPPER_STATE, TOPIC_ACTIVE_SKILL)
#: What the runtime (real2sim + policy + sim2real) produces: what a regression check records.
OUTPUT_TOPICS = (
    TOPIC_OBSERVATION,
    TOPIC_ACTION,
    TOPIC_JOINT_COMMAND,
    TOPIC_GRIPPER_COMMAND,
    TOPIC_COMMAND_REPORT,
    TOPIC_STATUS,
)
CLOCK_TOPIC = TOPIC_CLOCK
CLOCK_TYPE = TOPICS[TOPIC_CLOCK].msgtype
SUBSCRIPTION_DEPTH = 1000  # receive-side buffer: a burst while the executor is busy must not overwrite


class RecordingError(RuntimeError):
    """A bag cannot be written or read (path exists, not a rosbag2 directory, unknown type)."""


# -------------------------------------------------------------------------------------------- bag paths
def bag_dir(path: str | Path) -> Path:
    """The rosbag2 directory for a user path: `session.mcap` -> `session/` (holding `session_0.mcap`, as
    `ros2 bag record -o session -s mcap` names it); a directory stays itself."""
    p = Path(path)
    return p.with_suffix("") if p.suffix == ".mcap" else p


def resolve_bag(path: str | Path) -> Path:
    """An existing bag directory from what a user typed: the directory, its metadata.yaml, its .mcap file,
    or `session.mcap` for the directory `session/` that `legion record -o session.mcap` made."""
    p = Path(path)
    if p.is_file() and (p.name == "metadata.yaml" or p.suffix == ".mcap"):
        p = p.parent
    elif not p.exists() and p.suffix == ".mcap" and (p.with_suffix("") / "metadata.yaml").exists():
        p = p.with_suffix("")
    if not (p / "metadata.yaml").exists():
        raise RecordingError(
            f"{path} is not a rosbag2 directory (no metadata.yaml); record one with `legion record`"
        )
    return p


# ------------------------------------------------------------------------------------------- type store
def read_bag_signature(path: str | Path) -> dict | None:
    """The signature stored in a bag's metadata.yaml (custom_data), or None (a bag recorded before
    signatures were stored, or by another tool)."""
    meta = yaml.safe_load((resolve_bag(path) / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    raw = (meta.get("custom_data") or {}).get(METADATA_KEY)
    return json.loads(raw) if raw else None


def _msg_search_dirs(package: str) -> list[Path]:
    from legion_core.tools.ros_env import INSTALL, REPO

    dirs = [
        Path(p) / "share" / package / "msg"
        for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)
        if p
    ]
    dirs += [INSTALL / "share" / package / "msg", REPO / "ros2_ws" / "src" / package / "msg"]
    return dirs


def legion_typestore():
    """rosbags type store: ROS 2 Kilted's standard types + legion_msgs from the workspace's .msg files (the
    definitions the bag embeds; their RIHS01 hashes equal the ones rosidl generates for the nodes)."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    ts = get_typestore(Stores.ROS2_KILTED)
    for d in _msg_search_dirs("legion_msgs"):
        files = sorted(d.glob("*.msg"))
        if files:
            types: dict = {}
            for f in files:
                types.update(get_types_from_msg(f.read_text(), f"legion_msgs/msg/{f.stem}"))
            ts.register(types)
            break
    else:
        raise RecordingError(
            "legion_msgs .msg files not found (ros2_ws/src/legion_msgs/msg or an AMENT prefix)"
        )
    return ts


def message_class(msgtype: str):
    """The rclpy message class of 'pkg/msg/Name'."""
    import importlib

    pkg, kind, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{pkg}.{kind}"), name)


# ------------------------------------------------------------------------------------------------- QoS
def table_qos(kind: str, depth: int | None = None):
    """rclpy QoS of a QoS kind of the interface contract (what the runtime publishes with); `depth` overrides
    the kind's history depth."""
    from legion_core.ros.common import qos_profile

    return qos_profile(kind, depth)


def subscription_qos(pub_profiles: Sequence[Any], kind: str):
    """A subscription QoS that matches every current publisher (what rosbag2 does): best effort if any
    publisher is best effort, transient local only if all publishers are (then late joiners still get the
    latched value), and a deep receive buffer. Without publishers, the table's kind decides."""
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    if pub_profiles:
        best_effort = any(p.reliability == ReliabilityPolicy.BEST_EFFORT for p in pub_profiles)
        latched = all(p.durability == DurabilityPolicy.TRANSIENT_LOCAL for p in pub_profiles)
    else:
        spec = QOS[kind]
        best_effort = spec.reliability == Reliability.BEST_EFFORT
        latched = spec.durability == Durability.TRANSIENT_LOCAL
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=SUBSCRIPTION_DEPTH,
        reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )


def _compatible(sub, pub) -> bool:
    from rclpy.qos import DurabilityPolicy, ReliabilityPolicy

    if sub.reliability == ReliabilityPolicy.RELIABLE and pub.reliability == ReliabilityPolicy.BEST_EFFORT:
        return False
    return not (
        sub.durability == DurabilityPolicy.TRANSIENT_LOCAL and pub.durability == DurabilityPolicy.VOLATILE
    )


def to_bag_qos(profile):
    """rclpy QoSProfile -> rosbags Qos (for the offered_qos_profiles of metadata.yaml and the mcap channel)."""
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

    def dur(d) -> QosTime:
        ns = int(getattr(d, "nanoseconds", 0) or 0)
        return QosTime(ns // 1_000_000_000, ns % 1_000_000_000)

    def enum(cls, value, default):
        name = getattr(value, "name", str(value)).upper()
        return cls[name] if name in cls.__members__ else default

    return Qos(
        history=enum(QosHistory, profile.history, QosHistory.KEEP_LAST),
        depth=int(profile.depth),
        reliability=enum(QosReliability, profile.reliability, QosReliability.RELIABLE),
        durability=enum(QosDurability, profile.durability, QosDurability.VOLATILE),
        deadline=dur(profile.deadline),
        lifespan=dur(profile.lifespan),
        liveliness=enum(QosLiveliness, profile.liveliness, QosLiveliness.AUTOMATIC),
        liveliness_lease_duration=dur(profile.liveliness_lease_duration),
        avoid_ros_namespace_conventions=bool(profile.avoid_ros_namespace_conventions),
    )


def from_bag_qos(qos_list: Sequence[Any], topic: str):
    """Publisher QoS for replaying a topic: the recorded offered profile (latched stays latched), else the
    table's, else reliable depth 10."""
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    if qos_list:
        q = qos_list[0]
        latched = any(x.durability.name == "TRANSIENT_LOCAL" for x in qos_list)
        best_effort = all(x.reliability.name == "BEST_EFFORT" for x in qos_list)
        return QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=max(int(q.depth), 10 if not latched else 1),
            reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
        )
    spec = RUNTIME_TOPICS.get(topic)
    return table_qos(spec.qos, depth=None if spec.qos == LATCHED else 10) if spec else table_qos(RELIABLE)


# ------------------------------------------------------------------------------------------- the writer
def _open_writer(path: Path):
    """A rosbags Writer whose mcap file is `<name>_0.mcap`, as rosbag2 names the first split."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.rosbag2.storage_mcap import McapWriter

    class _Mcap0(McapWriter):
        def __init__(self, dirpath: Path, compression) -> None:
            # McapWriter opens `<dir>/<dir>.mcap`; hand it a stand-in whose `/` gives rosbag2's split name.
            # Writer takes the file name for metadata.yaml from `self.path`, so the two always agree.
            super().__init__(_RenamedDir(dirpath, dirpath / f"{dirpath.name}_0.mcap"), compression)

    class _Writer(Writer):
        STORAGE_PLUGINS = {**Writer.STORAGE_PLUGINS, StoragePlugin.MCAP: _Mcap0}

    return _Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)


def copy_topics(src: str | Path, dst: str | Path, topics: Sequence[str]) -> dict[str, int]:
    """Copy the messages of `topics` from bag `src` into a new bag `dst` (same definitions, QoS and stamps,
    and the source's numeric signature; not its recorder counts, which the copy does not match): e.g. a
    regression fixture with only the runtime's decisions. Returns the message count per topic."""
    from rosbags.rosbag2 import Reader

    keep, counts = set(topics), {}
    src = resolve_bag(src)
    signature = read_bag_signature(src)
    with Reader(src) as r:
        w = _open_writer(Path(dst))
        w.open()
        try:
            if signature is not None:
                w.set_custom_data(METADATA_KEY, json.dumps(signature, sort_keys=True))
            conns = {}
            for c in r.connections:
                if c.topic in keep:
                    conns[c.id] = w.add_connection(c.topic, c.msgtype, msgdef=c.msgdef.data, rihs01=c.digest,
                                                   serialization_format=c.ext.serialization_format,
                                                   offered_qos_profiles=c.ext.offered_qos_profiles)  # fmt: skip
            for c, t, raw in r.messages([c for c in r.connections if c.id in conns]):
                w.write(conns[c.id], t, raw)
                counts[c.topic] = counts.get(c.topic, 0) + 1
        finally:
            w.close()
    return counts


class _RenamedDir:
    """Stands in for the bag directory in McapWriter.__init__, which only does `path / f'{path.name}.mcap'`:
    returns the rosbag2 split file name instead."""

    def __init__(self, dirpath: Path, target: Path) -> None:
        self.name = dirpath.name
        self._target = target

    def __truediv__(self, _other: str) -> Path:
        return self._target


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
    ) -> None:
        self.path = bag_dir(path)
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
                elif any(not _compatible(qos, p.qos_profile) for p in pubs):
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
        self.writer = _open_writer(self.path)
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
) -> RecordStats:
    """Record `topics` (default: every runtime topic) into the rosbag2/MCAP bag `path` until `duration_s`
    passed, `stop_event` is set or Ctrl-C. `require_topics`: wait for publishers of these before calling
    `on_ready` (a regression check starts its replay only then). Returns counts, duration and drops."""
    rec = Recorder(
        path, topics, use_sim_time=use_sim_time, discovery_s=discovery_s, require_topics=require_topics
    )
    try:
        rec.start()
    except BaseException:
        rec.close()
        raise
    return rec.run(duration_s, stop_event, on_ready, ready_timeout_s)


def read_recorder_metadata(path: str | Path) -> dict:
    """The `legion.recorder` custom data of a bag's metadata.yaml (counts, durations, drops)."""
    import yaml

    meta = yaml.safe_load((resolve_bag(path) / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    custom = meta.get("custom_data") or {}
    return json.loads(custom["legion.recorder"]) if "legion.recorder" in custom else {}


# ---------------------------------------------------------------------------------------------- replay
@dataclass
class BagMessage:
    t_ns: int
    topic: str
    raw: bytes


def load_messages(path: str | Path, topics: Iterable[str] | None = None) -> tuple[list[BagMessage], dict]:
    """All messages of `topics` (None = all) in log-time order, raw, plus {topic: (msgtype, [Qos])}."""
    from rosbags.rosbag2 import Reader

    wanted = set(topics) if topics is not None else None
    out: list[BagMessage] = []
    info: dict[str, tuple[str, list]] = {}
    with Reader(resolve_bag(path)) as reader:
        conns = [c for c in reader.connections if wanted is None or c.topic in wanted]
        for c in conns:
            info[c.topic] = (c.msgtype, list(getattr(c.ext, "offered_qos_profiles", []) or []))
        for conn, t, raw in reader.messages(connections=conns):
            out.append(BagMessage(int(t), conn.topic, bytes(raw)))
    out.sort(key=lambda m: m.t_ns)  # stable: equal times keep the file's order
    return out, info


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
