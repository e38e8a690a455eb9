"""Shared plumbing of the LEGION nodes: QoS profiles, declared-and-logged parameters, diagnostics and
status publishing, stamps, and a `main()` with clean shutdown on SIGINT/SIGTERM.

Only rclpy APIs that Humble (Python 3.10), Jazzy (3.12) and Kilted share are used.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from legion_core.ros import network  # noqa: E402 - stdlib only; must run before rclpy starts

# NETWORK RULE: every process that starts rclpy stays on loopback DDS unless the operator says otherwise on
# purpose (robot.launch.yaml network:=robot sets LEGION_NETWORK=robot for a driver on another host).
NETWORK = network.apply(os.environ)
# Batch-1 numpy inference and IK are fastest single-threaded (no BLAS fork/join per small mat-vec).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue  # noqa: E402
from rcl_interfaces.msg import ParameterDescriptor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import (  # noqa: E402
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
)

from legion_core.base.params import Parameter  # noqa: E402
from legion_core.contracts.interface import (  # noqa: E402
    COMMAND,
    HEARTBEAT,
    LATCHED,
    OPERATOR,
    QOS,
    RELIABLE,
    SENSOR,
    STATUS,
    TOPIC_DIAGNOSTICS,
    TOPIC_HEARTBEAT,
    TOPIC_STATUS,
    DiagnosticLevel,
    Durability,
    History,
    QosSpec,
    Reliability,
    robot_scoped,
)
from legion_core.ros.control import (  # noqa: E402
    CONTROL_LOOP,
    SWITCH_INTERVAL_S,
    THREAD_ERRORS,
    locked,
)

_RELIABILITY = {
    Reliability.RELIABLE: ReliabilityPolicy.RELIABLE,
    Reliability.BEST_EFFORT: ReliabilityPolicy.BEST_EFFORT,
}
_DURABILITY = {
    Durability.VOLATILE: DurabilityPolicy.VOLATILE,
    Durability.TRANSIENT_LOCAL: DurabilityPolicy.TRANSIENT_LOCAL,
}
_HISTORY = {History.KEEP_LAST: HistoryPolicy.KEEP_LAST}


def qos_profile(spec: QosSpec | str, depth: int | None = None) -> QoSProfile:
    """The rclpy profile of a QoS spec of legion_core.contracts.interface (or of its kind name, a key of
    `QOS`); `depth` overrides the spec's history depth (a recorder's deeper receive buffer)."""
    if isinstance(spec, str):
        spec = QOS[spec]
    return QoSProfile(
        history=_HISTORY[spec.history],
        depth=spec.depth if depth is None else depth,
        reliability=_RELIABILITY[spec.reliability],
        durability=_DURABILITY[spec.durability],
    )


# The profiles every node and tool uses (what each kind is for: legion_core.contracts.interface, `QOS`).
SENSOR_QOS = qos_profile(SENSOR)
RELIABLE_QOS = qos_profile(RELIABLE)
COMMAND_QOS = qos_profile(COMMAND)
LATCHED_QOS = qos_profile(LATCHED)
OPERATOR_QOS = qos_profile(OPERATOR)
HEARTBEAT_QOS = qos_profile(HEARTBEAT)
STATUS_QOS = qos_profile(STATUS)


def stamp_to_s(stamp) -> float:
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def s_to_stamp(t: float, msg_cls=None):
    from builtin_interfaces.msg import Time

    sec = int(t // 1)
    return Time(sec=sec, nanosec=int(round((t - sec) * 1e9)) % 1_000_000_000)


#: Fully qualified names of the LegionNodes created in this process. Nodes composed into one process share
#: its fate (a crash or a stuck executor stops them all, sim2real included), so sim2real does not watch the
#: heartbeats of its co-hosted nodes: their late timers are this process's stall, which it sees itself.
IN_PROCESS_NODES: set[str] = set()


class LegionNode(Node):
    """A Node with declared+described parameters logged at start, a status topic and diagnostics."""

    def __init__(self, name: str, **kwargs: Any) -> None:
        #: Held by every callback of this node, on whichever thread it runs (legion_core.ros.control).
        self.callback_lock = threading.RLock()
        super().__init__(name, **kwargs)
        IN_PROCESS_NODES.add(self.get_fully_qualified_name())
        self._param_names: list[str] = []
        self._status_pub = None
        self._diag_pub = self.create_publisher(DiagnosticArray, TOPIC_DIAGNOSTICS, RELIABLE_QOS)
        # In-process hand-off (composed mode, `connect_in_process`): resolved topic -> the local callbacks
        # that get a message before it is published, and resolved topic -> (subscription, callback) of the
        # inputs that a node in the same process may feed directly.
        self._handoff_sinks: dict[str, list[Callable[[Any], None]]] = {}
        self._handoff_inputs: dict[str, tuple[Any, Callable[[Any], None]]] = {}
        self._handoff_outputs: set[str] = set()

    # Every callback of a LegionNode runs under its `callback_lock` (legion_core.ros.control): the control
    # loop and the stream thread may then call into a node without racing its other callbacks.
    # The runtime's own topics are used relative to the node's namespace (interface.robot_scoped): one arm's
    # graph in /arm1, another in /arm2, without crosstalk; in the root namespace nothing changes.
    def create_publisher(self, msg_type, topic, qos_profile, **kwargs):
        return super().create_publisher(msg_type, robot_scoped(topic), qos_profile, **kwargs)

    def create_subscription(self, msg_type, topic, callback, qos_profile, **kwargs):
        return super().create_subscription(
            msg_type, robot_scoped(topic), locked(callback, self.callback_lock), qos_profile, **kwargs
        )

    def create_timer(self, timer_period_sec, callback, *args, **kwargs):
        return super().create_timer(timer_period_sec, locked(callback, self.callback_lock), *args, **kwargs)

    def create_service(self, srv_type, srv_name, callback, **kwargs):
        return super().create_service(srv_type, srv_name, locked(callback, self.callback_lock), **kwargs)

    def control_subscription(self, msg_type, topic: str, callback, qos, **kwargs):
        """A subscription that starts a control step (joint states, detections, hand-off topics, e-stop):
        served by the process's control loop instead of this node's executor, so that its latency does not
        depend on the node's other entities (legion_core.ros.control). Use absolute topic names (a
        node-specific remap of this node does not reach it); the runtime's own names are resolved in this
        node's namespace first (interface.robot_scoped), since the control loop's helper node has none."""
        resolved = self.resolve_topic_name(robot_scoped(topic))
        return CONTROL_LOOP.subscription(msg_type, resolved, callback, qos, self.callback_lock, **kwargs)

    def command_stream(self, period_s: float, cycle, takes_lock: bool = False) -> None:
        """Run `cycle(slot_ns, now_ns, skipped)` every `period_s` on a deadline grid of the process's stream
        thread (legion_core.ros.control), under this node's lock; `spin_nodes` starts it. `takes_lock`: the
        cycle takes `callback_lock` itself (and may do something else when a control step holds it)."""
        CONTROL_LOOP.stream(period_s, cycle, contextlib.nullcontext() if takes_lock else self.callback_lock)

    def handoff_publisher(self, msg_type, topic: str, qos):
        """A publisher whose messages `publish_handoff` may also hand to consumers in this process."""
        pub = self.create_publisher(msg_type, topic, qos)
        self._handoff_outputs.add(pub.topic_name)
        return pub

    def handoff_subscription(self, msg_type, topic: str, callback, qos):
        """A subscription that `connect_in_process` may replace by a direct call from a publisher of the
        same resolved topic in this process (the control path real2sim -> policy -> sim2real)."""
        sub = self.control_subscription(msg_type, topic, callback, qos)
        self._handoff_inputs[sub.topic_name] = (sub, callback)
        return sub

    def publish_handoff(self, publisher, msg) -> None:
        """Hand `msg` to the in-process consumers of its topic first (the control step continues at once,
        without a DDS round trip), then publish it for every other subscriber (recorders, observers)."""
        for sink in self._handoff_sinks.get(publisher.topic_name, ()):
            sink(msg)
        publisher.publish(msg)

    def param(self, name: str, default: Any, description: str) -> Any:
        """Declare a parameter with its description (shown by `ros2 param describe`) and return its value."""
        # A float parameter also takes an integer (`command_rate_hz:=500` from a launch argument or YAML is
        # an int; rclpy would refuse it as the wrong type): declared with dynamic typing, read as float.
        is_float = isinstance(default, float)
        self.declare_parameter(
            name, default, ParameterDescriptor(description=description, dynamic_typing=is_float)
        )
        self._param_names.append(name)
        value = self.get_parameter(name).value
        if is_float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if is_float and not isinstance(value, float):
            raise NodeStartupError(f"parameter {name!r} must be a number [float], got {value!r}")
        return value

    def declare_parameters_from(self, params: Sequence[Parameter]) -> dict[str, Any]:
        """Declare `params` (legion_core.base.params: the default and the description of each come from its
        dataclass field, the one home of the default) and return name -> value. They are read once, at start:
        a later `ros2 param set` is refused with the reason (it would otherwise succeed and change nothing)."""
        values = {p.name: self.param(p.name, p.default, p.description) for p in params}
        self.add_on_set_parameters_callback(self._refuse_parameter_change)
        return values

    def _refuse_parameter_change(self, changes):
        from rcl_interfaces.msg import SetParametersResult

        ours = [p.name for p in changes if p.name in self._param_names]
        if not ours:
            return SetParametersResult(successful=True)
        return SetParametersResult(
            successful=False,
            reason=f"{', '.join(ours)} is read at start only: restart {self.get_name()} with the new value "
            "(e.g. in your copy of the params file, docs/parameters.md)",
        )

    def log_parameters(self) -> None:
        lines = [f"  {n} = {self.get_parameter(n).value!r}" for n in self._param_names]
        self.get_logger().info("parameters:\n" + "\n".join(lines))

    def now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def publish_status(self, level: int, message: str, active_skill: str = "") -> None:
        from legion_msgs.msg import RuntimeStatus

        if self._status_pub is None:
            self._status_pub = self.create_publisher(RuntimeStatus, TOPIC_STATUS, STATUS_QOS)
        m = RuntimeStatus()
        m.header.stamp = self.get_clock().now().to_msg()
        m.node = self.get_name()
        m.level = int(level)
        m.active_skill = active_skill
        m.message = message
        self._status_pub.publish(m)

    def start_heartbeat(self, period_s: float) -> None:
        """Publish a legion_msgs/Heartbeat every `period_s` from the process's stream thread, under this node's
        lock (legion_core.ros.control): it proves that the process runs and that no callback of this node
        hangs, which is what sim2real_node's liveness watchdog needs to know (a crashed or deadlocked node
        stops it). docs/architecture.md, "Liveness".
        Not a timer on the node's executor: three nodes at 50 Hz cost that executor 150 wake-ups/s of wait-set
        rebuild (docs/profiling.md)."""
        from legion_msgs.msg import Heartbeat

        if not (period_s > 0):
            raise NodeStartupError(f"heartbeat_period_s must be > 0 s, got {period_s}")
        pub = self.create_publisher(Heartbeat, TOPIC_HEARTBEAT, HEARTBEAT_QOS)
        msg = Heartbeat(node=self.get_fully_qualified_name(), period_s=float(period_s))

        def beat(*_slot) -> None:
            msg.sequence += 1
            msg.header.stamp = self.get_clock().now().to_msg()
            pub.publish(msg)

        beat()
        CONTROL_LOOP.stream(period_s, beat, self.callback_lock)

    def publish_diagnostics(self, level: int, message: str, values: dict[str, Any]) -> None:
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        st = DiagnosticStatus()
        st.level = bytes([min(int(level), DiagnosticLevel.ERROR)])
        st.name = f"legion/{self.get_name()}"
        st.hardware_id = "legion_runtime"
        st.message = message
        st.values = [KeyValue(key=str(k), value=str(v)) for k, v in values.items()]
        arr.status = [st]
        self._diag_pub.publish(arr)


class SampledSubscriptions:
    """Topics read at the reader's pace instead of with a callback per message: their subscriptions live on a
    helper node that no executor spins, so a 500 Hz joint state costs the process nothing until it is taken
    (an executor wake-up per message was most of an observer's CPU time: docs/console.md, "Cost on the
    control path"). DDS keeps the newest message (KEEP_LAST 1); `newest()` takes it. The rclcpp equivalent is
    Subscription::take(); rclpy has no public take, so this is what rclpy's own wait_for_message does
    (`handle.take_message(msg_type, raw)`, the same call in Humble's and later executors)."""

    def __init__(self, node: Node, name_suffix: str = "sampler") -> None:
        self._node = rclpy.create_node(f"{node.get_name()}_{name_suffix}", namespace=node.get_namespace(),
                                       context=node.context, start_parameter_services=False)  # fmt: skip
        self._lock = threading.Lock()

    def subscribe(self, msg_type, topic: str, qos: QoSProfile):
        """A sampled subscription (depth forced to 1: only the newest message is ever wanted)."""
        q = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=qos.reliability,
                       durability=qos.durability)  # fmt: skip
        return self._node.create_subscription(msg_type, robot_scoped(topic), lambda _m: None, q)

    def newest(self, sub):
        """The newest message received since the last call, or None."""
        out = None
        with self._lock, sub.handle:
            while True:
                taken = sub.handle.take_message(sub.msg_type, sub.raw)
                if taken is None:
                    return out
                out = taken[0]

    def destroy(self) -> None:
        self._node.destroy_node()


class NodeStartupError(RuntimeError):
    """A node refuses to start (invalid bundle, calibration, parameters); the message says why and how to fix."""


def connect_in_process(nodes: Sequence[Node]) -> list[str]:
    """Composed mode: wherever one node publishes a topic (through `publish_handoff`) that another node in
    this process takes through `handoff_subscription`, call the consumer directly and drop its DDS
    subscription. rclpy has no intra-process transport, so every hop between composed nodes would
    otherwise cost a serialise + loopback + executor wake-up (~0.3-0.5 ms each;
    docs/decisions/runtime-latency.md).
    The topics are still published for everything outside the process. Returns one line per hand-off."""
    out = []
    for consumer in nodes:
        inputs = getattr(consumer, "_handoff_inputs", {})
        for topic, (sub, callback) in list(inputs.items()):
            producers = [
                n for n in nodes if n is not consumer and topic in getattr(n, "_handoff_outputs", ())
            ]
            if not producers:
                continue
            for prod in producers:
                # Under the consumer's own lock: a control step takes real2sim's, the policy's, then
                # sim2real's lock, always in that order (legion_core.ros.control).
                prod._handoff_sinks.setdefault(topic, []).append(locked(callback, consumer.callback_lock))
            CONTROL_LOOP.destroy_subscription(sub)
            del inputs[topic]
            names = ", ".join(p.get_name() for p in producers)
            out.append(f"{topic}: {names} -> {consumer.get_name()} in process")
    return out


def set_realtime_priority(priority: int) -> str:
    """SCHED_FIFO at `priority` (1-99) for this thread and every thread started after it (call it before
    rclpy.init so that the DDS receive threads inherit it): the control path then preempts ordinary
    processes on wake-up instead of waiting for a time slice (without it, 100 Hz cycles were missed on a loaded
    machine: docs/decisions/runtime-latency.md). Returns what happened, for the log; never raises (no
    permission = normal scheduling)."""
    if priority <= 0:
        return "normal scheduling"
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(int(priority)))
    except (AttributeError, OSError, ValueError) as e:
        return (
            f"could not set SCHED_FIFO priority {priority} ({e}); running with normal scheduling. Fix: allow "
            "real-time priorities for this user (e.g. '@realtime - rtprio 99' in /etc/security/limits.conf "
            "and add the user to group realtime, as for the lbr_fri_ros2_stack driver)"
        )
    return f"SCHED_FIFO priority {priority}"


def parse_cpu_list(text: str) -> set[int] | None:
    """'1', '0-1', '0,2-3' -> the CPU numbers; '' or 'all' -> None (no pinning). ValueError names the format."""
    text = text.strip()
    if text in ("", "all"):
        return None
    cpus: set[int] = set()
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            first, last = int(lo), int(hi or lo)
            if first < 0 or last < first:
                raise ValueError
            cpus.update(range(first, last + 1))
    except ValueError:
        raise ValueError(
            f"cpu_affinity {text!r} is not a CPU list: use e.g. '1', '2-3' or '0,2' (or 'all' for no pinning)"
        ) from None
    return cpus


def set_cpu_affinity(cpus: str) -> str:
    """Pin this process (and the threads it starts later: call before rclpy.init) to `cpus` ('2-3'), so that
    the control path keeps its cores instead of sharing them with the driver, a simulator or the desktop
    (composed p99 1.89-1.93 ms pinned vs 2.16-2.37 ms unpinned in most runs on the 2-core dev VM;
    docs/decisions/runtime-latency.md).
    Returns what happened, for the log; never raises for a CPU set the machine cannot give (no pinning
    then)."""
    wanted = parse_cpu_list(cpus)
    if wanted is None:
        return "all CPUs"
    try:
        os.sched_setaffinity(0, wanted)
    except (AttributeError, OSError) as e:
        return f"could not pin to CPUs {sorted(wanted)} ({e}); running on all CPUs"
    return f"pinned to CPUs {sorted(os.sched_getaffinity(0))}"


def spin_nodes(
    factories: Sequence[Callable[[], Node]],
    args: list[str] | None = None,
    handoff: bool = False,
    realtime_priority: int = 0,
    cpu_affinity: str = "",
) -> int:
    """Create the nodes (a factory may return None: nothing to add), spin them on one SingleThreadedExecutor (the safe executor here: the
    multi-threaded one misses timer deadlines, docs/environment.md#ros-2-from-pypi), and shut down cleanly
    on SIGINT/SIGTERM.
    `handoff`: connect the composed nodes' control path in process (`connect_in_process`).
    `realtime_priority` > 0: run the process with SCHED_FIFO at that priority (`set_realtime_priority`).
    `cpu_affinity`: pin the process to these CPUs ('1', '2-3'; '' or 'all' = no pinning).
    Returns the process exit code (1 when a node refused to start)."""
    pinning = set_cpu_affinity(cpu_affinity)
    scheduling = set_realtime_priority(realtime_priority)
    sys.setswitchinterval(SWITCH_INTERVAL_S)  # legion_core.ros.control: a woken control thread gets the GIL
    rclpy.init(args=args if args is not None else sys.argv)
    nodes: list[Node] = []
    code = 0
    if os.environ.get("LEGION_EXECUTOR") == "events":
        from rclpy.experimental import EventsExecutor

        executor = EventsExecutor()
    else:
        executor = rclpy.executors.SingleThreadedExecutor()

    stop_requested = [False]

    def _stop(signum, _frame):
        stop_requested[0] = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    try:
        for make in factories:
            node = make()
            if node is None:  # a factory that has nothing to add in this configuration
                continue
            nodes.append(node)
            executor.add_node(node)
        if nodes:
            log = nodes[0].get_logger()
            (log.info if realtime_priority <= 0 or scheduling.startswith("SCHED") else log.warn)(
                f"scheduling: {scheduling}"
            )
            (log.warn if pinning.startswith("could not") else log.info)(f"CPU affinity: {pinning}")
        if handoff:
            for line in connect_in_process(nodes):
                nodes[0].get_logger().info(f"hand-off {line}")
        # Everything built so far (modules, bundle weights, nodes) lives for the whole run: move it out of
        # the collector's generations so that a full collection during control scans only what was made
        # after start-up (the start-up collection itself took 11-15 ms here, longer than a 100 Hz cycle).
        gc.collect()
        gc.freeze()
        CONTROL_LOOP.start()
        executor.spin()
    except NodeStartupError as e:
        print(f"[legion] refusing to start: {e}", file=sys.stderr, flush=True)
        code = 1
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    except RuntimeError as e:
        # A SIGINT/SIGTERM that lands while rclpy's C++ is converting a message surfaces as pybind11's
        # "Unable to convert call argument ..." instead of KeyboardInterrupt (seen once in CI at shutdown;
        # ros/joint_state_publisher#117 reports the same). After a shutdown request that is a clean stop;
        # at any other time it is a real fault and the process must fail.
        if rclpy.ok() and not stop_requested[0]:
            raise
        print(f"[legion] stopped while rclpy was busy ({e}); shutting down cleanly", file=sys.stderr)
    finally:
        CONTROL_LOOP.stop()
        if THREAD_ERRORS:
            code = 1
        for node in nodes:
            on_shutdown = getattr(node, "on_shutdown", None)
            if on_shutdown is not None:
                try:
                    on_shutdown()
                except Exception as e:  # noqa: BLE001 - shutdown must reach every node
                    print(f"[legion] {node.get_name()} shutdown: {e}", file=sys.stderr)
            executor.remove_node(node)
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return code
