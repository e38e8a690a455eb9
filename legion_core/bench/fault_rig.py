"""The rig of `legion bench faults` and `legion bench soak` (legion_core/bench/faults.py, soak.py):
the runtime graph in child processes, this process as the arm's driver and camera, and the analysis both
benches share.

The graph is the robot graph without a twin: real2sim_node, policy_node and sim2real_node, each in its own
process (so that the policy or real2sim can be killed on their own and restarted), on the shipped bundle.
This process plays the arm's driver and the camera: it publishes joint states at `js_rate_hz` that follow
the last /joint_command exactly (a perfect position controller), and a detection of the skill's object at
30 Hz at a plausible, static place. One rclpy node; joint states and detections are published on schedule
from a thread of their own (`publisher="thread"`), or from the spin loop itself (`"loop"`: `spin_once`
with a timeout up to the next publication). A timer per message cannot hold 1 kHz in Python, and neither
can the loop on the 2-core dev VM: rclpy's spin_once costs ~0.35 ms per call there. The rate actually
achieved is measured and reported.

Machine baseline: a wake-up probe (a plain process sleeping to a 100 Hz grid, `bench_runtime`) runs beside
the whole bench; each drill lists the probe's stalls (> 1 ms late) around it, sim2real's timer lateness in
its window, and how long each process's executor thread waited for a CPU in the first 60 ms after the
fault (/proc/PID/schedstat): on a busy machine the busy runtime processes queue for a CPU long before a
sleeping probe notices anything. So a late hold can be told apart: the machine was busy or stalled, or the
runtime itself took the time.

"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import time
from array import array
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from legion_core.base.stats import summarize
from legion_core.bench.runtime import (
    STALL_S,
)
from legion_core.contracts.interface import (
    CONTROL_PATH_HEARTBEAT_PERIOD_S,
    NODE_POLICY,
    NODE_REAL2SIM,
    StatusLevel,
    node_fqn,
)
from sim2real.mapper import MapperConfig
from sim2real.supervisor import SupervisorConfig

COMMAND_PERIOD_S = MapperConfig().command_period_s  # sim2real's command stream at the shipped rate [s]
HEARTBEAT_PERIOD_S = CONTROL_PATH_HEARTBEAT_PERIOD_S  # policy and real2sim heartbeats (shipped default) [s]
LIVENESS_PERIODS = SupervisorConfig().liveness_periods  # a node silent this many of its periods holds the arm
POLICY_FQN, REAL2SIM_FQN = node_fqn(NODE_POLICY), node_fqn(NODE_REAL2SIM)  # as heartbeats name them
JOINT_VEL_SCALE = MapperConfig().joint_vel_scale  # fraction of the datasheet joint speeds (shipped default)
# The rate of the camera this bench plays [Hz] (a typical RGB-D camera). Not the twin's parameter: there is
# no twin in this graph, and importing it would load MuJoCo for one number.
DETECTION_RATE_HZ = 30.0
TOL = 1e-12  # "identical" commands
NEAR_S = 0.05  # probe stalls this close to a drill's window are listed with it [s]
SKILL = "button-press-topdown"
# A plausible place for the button on the table (sim_world, m), inside the bundle's workspace box, so
# real2sim accepts it (checked against the bundle at start).
OBJECT_SIM_M = (0.0, 0.8, 0.1)
# 0.45 m beyond the box's y edge (1.0 m), 0.35 m beyond its 0.10 m margin, inside real2sim's sane detection
# box (y <= 1.5 m): a plausible detection that only the bundle's workspace check refuses.
IMPLAUSIBLE_SIM_M = (0.0, 1.45, 0.1)
STALE_STAMP_S = 1.0
PUBLISHERS = ("thread", "loop")  # how this process publishes joint states (see Rig.start_publisher)
TRACKING_OFFSET_RAD = 0.5  # A2 reported this far from the command (a blocked or pushed arm)


# ------------------------------------------------------------------------------------- pure analysis
def held_from(qs, tol: float = TOL) -> int:
    """Index of the first command from which every later command is identical (to `tol`) to the last one;
    0 for an empty sequence."""
    Q = np.asarray(qs, float)
    i = len(Q) - 1
    if i < 0:
        return 0
    while i > 0 and float(np.max(np.abs(Q[i - 1] - Q[-1]))) <= tol:
        i -= 1
    return i


def dq_max_per_period(joint_vel_scale: float = JOINT_VEL_SCALE, period_s: float = COMMAND_PERIOD_S):
    """sim2real's per-period joint step limit [rad, per joint] (supervisor.dq_max_per_period)."""
    from legion_core.robot import iiwa7

    return np.asarray(iiwa7.JOINT_VEL_LIMITS_RAD_S, float) * joint_vel_scale * period_s


def analyse_commands(times, qs, t_fault: float, q_before, dq_max, in_flight_targets=(), min_held_s: float = 0.2,
                     tol: float = TOL) -> dict:  # fmt: skip
    """Judge the joint commands received at `times` [s] after a fault at `t_fault` [s].

    `q_before`: the last command received before the fault. `dq_max`: the per-period joint step limit
    [rad, scalar or per joint]. `in_flight_targets`: targets of the segments planned from data before the
    fault (the one executing at the fault and any started later from pre-fault data); motion outside the
    per-joint hull of q_before and these targets is motion the fault did not stop. The hold counts only if
    the final run of identical commands lasts `min_held_s` [s] (else `time_to_hold_ms` is None)."""
    t = np.asarray(times, float)
    Q = np.asarray(qs, float).reshape(len(t), -1) if len(t) else np.zeros((0, len(q_before)))
    sel = t >= t_fault
    t, Q = t[sel], Q[sel]
    qb = np.asarray(q_before, float)
    out: dict = {"commands_after": int(len(t))}
    if not len(t):
        return {**out, "time_to_hold_ms": None, "held_for_s": 0.0, "max_displacement_rad": None,
                "beyond_in_flight_rad": None, "beyond_in_flight_segments_rad": None, "max_step_rad": None,
                "step_over_limit_rad": None}  # fmt: skip
    i = held_from(Q, tol)
    held_for = float(t[-1] - t[i])
    steps = np.abs(np.diff(np.vstack([qb, Q]), axis=0))
    over = steps - np.broadcast_to(np.asarray(dq_max, float), steps.shape)
    hull = np.vstack([qb, *[np.asarray(x, float) for x in in_flight_targets]])
    lo, hi = hull.min(axis=0), hull.max(axis=0)
    outside = np.maximum(np.maximum(lo - Q, Q - hi), 0.0)
    return {
        **out,
        "time_to_hold_ms": float((t[i] - t_fault) * 1e3) if held_for >= min_held_s else None,
        "held_for_s": held_for,
        "first_command_after_ms": float((t[0] - t_fault) * 1e3),
        "max_displacement_rad": float(np.max(np.abs(Q - qb))),
        "beyond_in_flight_rad": float(np.max(np.abs(Q - Q[0]))),
        "beyond_in_flight_segments_rad": float(outside.max()),
        "max_step_rad": float(steps.max()),
        "step_over_limit_rad": float(max(0.0, over.max())),
    }


def stalls_near(wake, t0: float, t1: float, near_s: float = NEAR_S, stall_s: float = STALL_S) -> list:
    """The probe's wake-ups later than `stall_s` within [t0 - near_s, t1 + near_s]: [(when, relative to t0
    [ms], how late [ms])]."""
    return [(round((t - t0) * 1e3, 2), round(late * 1e3, 2)) for t, late in wake
            if late > stall_s and t0 - near_s <= t <= t1 + near_s]  # fmt: skip


def summarise(values) -> dict:
    """Median and max of the finite values; `missing` counts the None/NaN ones (a hold never seen)."""
    return summarize(values, ("median", "max", "n", "missing"))


def hold_episodes(statuses, t_end: float, planned=(), slack_s: float = 0.2) -> list[dict]:
    """sim2real's statuses [(time [s], level, message)] -> hold episodes: from a status at level >= HOLD (HOLD,
    ESTOP, ERROR) to the next one below it (or `t_end`), with every hold reason seen in it. An episode that
    starts inside a planned window [(t0, t1)] (+ `slack_s`) is `planned`."""
    out: list[dict] = []
    cur = None
    for t, level, msg in statuses:
        if level >= StatusLevel.HOLD:
            if cur is None:
                cur = {"start": t, "reasons": []}
            if msg not in cur["reasons"]:
                cur["reasons"].append(msg)
        elif cur is not None:
            out.append({**cur, "duration_s": t - cur["start"]})
            cur = None
    if cur is not None:
        out.append({**cur, "duration_s": t_end - cur["start"]})
    for e in out:
        e["planned"] = any(t0 <= e["start"] <= t1 + slack_s for t0, t1 in planned)
    return out


def linear_slope(t_s, y) -> float | None:
    """Least-squares slope of y over t [y per second]; None with fewer than 2 distinct times."""
    t = np.asarray(t_s, float)
    if len(t) < 2 or np.ptp(t) <= 0:
        return None
    return float(np.polyfit(t, np.asarray(y, float), 1)[0])


def reason_key(text: str) -> str:
    """A status message with its numbers blanked, to count holds by cause."""
    return re.sub(r"-?\d+(\.\d+)?", "#", text)


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    for line in out.splitlines():
        if line.strip().startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


@contextmanager
def switch_interval(seconds: float = 5e-4):
    """The publisher thread waits for the GIL at most this long while the spin loop runs Python code
    (default 5 ms: five joint-state periods at 1 kHz)."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def machine_info() -> dict:
    return {"cpu_model": cpu_model(), "cpus": os.cpu_count(), "load_average_1_5_15": list(os.getloadavg())}


# ------------------------------------------------------------------------------------------ the rig
class Rig:
    """The graph (three processes), the driver/camera loop and the records of what came back."""

    def __init__(self, bundle: str, skill: str, js_rate_hz: float, log_dir: Path, latency_log: bool,
                 publisher: str = "thread") -> None:  # fmt: skip
        from legion_core.tools.ros_env import ensure_workspace

        ensure_workspace()
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from legion_msgs.msg import (
            CommandReport,
            Heartbeat,
            ObjectDetection,
            ObjectDetectionArray,
            RuntimeStatus,
            SafetyState,
        )
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Bool, Float64MultiArray, String
        from std_srvs.srv import Trigger

        from legion_core.contracts.interface import (
            SIM2REAL_ESTOP_SERVICE,
            SIM2REAL_REARM_SERVICE,
            SIM2REAL_RESET_SERVICE,
            TOPIC_ACTIVE_SKILL,
            TOPIC_COMMAND_REPORT,
            TOPIC_DETECTIONS,
            TOPIC_DIAGNOSTICS,
            TOPIC_ESTOP,
            TOPIC_ESTOP_HW,
            TOPIC_HEARTBEAT,
            TOPIC_JOINT_COMMAND,
            TOPIC_JOINT_STATES,
            TOPIC_SAFETY_STATE,
            TOPIC_STATUS,
        )
        from legion_core.contracts.tasks import get_task
        from legion_core.robot import iiwa7
        from legion_core.ros.common import HEARTBEAT_QOS, LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS
        from sim2real.calibration import sim_calibration

        self.rclpy = rclpy
        self.bundle, self.skill, self.log_dir = bundle, skill, log_dir
        self.label = get_task(skill).object_label
        self.home = np.array(iiwa7.HOME_SEED_Q_RAD, float)
        self.js_period = 1.0 / js_rate_hz
        self.det_period = 1.0 / DETECTION_RATE_HZ
        self._check_object_inside_box(bundle)
        T = sim_calibration().T_sim_camera
        self._R_cam_sim, self._p_sim_cam = T.R.T, T.p
        self.params = {
            "real2sim": {"real2sim.bundle": bundle, "real2sim.skill": skill},
            "policy": {"policy.bundle": bundle, "policy.skill": skill},
            "sim2real": {"sim2real.bundle": bundle},
        }
        self.latency_log = latency_log
        self.procs: dict[str, subprocess.Popen] = {}
        self.starts: dict[str, int] = {}
        if not rclpy.ok():
            rclpy.init()
        self.node = rclpy.create_node(f"bench_faults_{os.getpid()}")
        self.executor = rclpy.executors.SingleThreadedExecutor()
        self.executor.add_node(self.node)
        n = self.node
        # Records: (receive time [s, system clock], payload).
        self.cmds: list[tuple[float, np.ndarray]] = []
        self.status: list[tuple[float, object]] = []
        self.safety: list[tuple[float, object]] = []
        self.reports: list[tuple[float, object]] = []
        self.heartbeats: dict[str, list[tuple[float, float]]] = {}  # node: [(received, stamped)] [s]
        self.diag: list[tuple[float, dict]] = []
        self.keep_reports = True
        self.cmd_count = self.cmd_moved = 0
        self.report_counts = {"steps": 0, "holds": 0}
        n.create_subscription(Float64MultiArray, TOPIC_JOINT_COMMAND, self._on_cmd, RELIABLE_QOS)
        n.create_subscription(RuntimeStatus, TOPIC_STATUS, self._on_status, 100)
        n.create_subscription(SafetyState, TOPIC_SAFETY_STATE, self._on_safety, LATCHED_QOS)
        n.create_subscription(CommandReport, TOPIC_COMMAND_REPORT, self._on_report, 100)
        n.create_subscription(Heartbeat, TOPIC_HEARTBEAT, self._on_heartbeat, HEARTBEAT_QOS)
        n.create_subscription(DiagnosticArray, TOPIC_DIAGNOSTICS, self._on_diag, 100)
        self.js_pub = n.create_publisher(JointState, TOPIC_JOINT_STATES, SENSOR_QOS)
        self.det_pub = n.create_publisher(ObjectDetectionArray, TOPIC_DETECTIONS, SENSOR_QOS)
        self.skill_pub = n.create_publisher(String, TOPIC_ACTIVE_SKILL, LATCHED_QOS)
        # Volatile, so that a later subscriber never gets an old e-stop (sim2real's transient-local
        # subscription does not match a volatile publisher; its volatile one does). That mismatch is by
        # design (sim2real_node.py): do not log it as a warning here.
        try:
            from rclpy.event_handler import PublisherEventCallbacks
        except ImportError:  # Humble
            from rclpy.qos_event import PublisherEventCallbacks
        quiet = PublisherEventCallbacks(incompatible_qos=lambda _e: None)
        self.estop_pub = n.create_publisher(Bool, TOPIC_ESTOP, RELIABLE_QOS, event_callbacks=quiet)
        self.hw_pub = n.create_publisher(Bool, TOPIC_ESTOP_HW, RELIABLE_QOS)
        self.rearm_cli = n.create_client(Trigger, SIM2REAL_REARM_SERVICE)
        self.reset_cli = n.create_client(Trigger, SIM2REAL_RESET_SERVICE)
        self.estop_cli = n.create_client(Trigger, SIM2REAL_ESTOP_SERVICE)
        self._Bool, self._String, self._Trigger = Bool, String, Trigger
        self._js = JointState(name=list(iiwa7.JOINT_NAMES))
        d = ObjectDetection()
        d.label, d.confidence = self.label, 1.0
        d.pose.orientation.w = 1.0
        self._det = ObjectDetectionArray(detections=[d])
        # Driver state: `follow` (q = the last command), or a fixed posture; the stamp's age [s].
        self.q = self.home.copy()
        self.fixed_q: np.ndarray | None = None
        self.stamp_age = 0.0
        self.obj = np.array(OBJECT_SIM_M, float)
        self.js_sent = array("d")  # publish times [s] (compact: 600k of them in a 10-minute soak)
        self.js_count = 0
        self.js_late_skipped = 0
        self._next_js = self._next_det = time.time()
        if publisher not in PUBLISHERS:
            raise ValueError(f"publisher must be one of {PUBLISHERS}, got {publisher!r}")
        import threading

        self.publisher = publisher
        self.lock = threading.RLock()
        self._stop = threading.Event()
        self._thread = None
        self.start_publisher()

    def _check_object_inside_box(self, bundle: str) -> None:
        from legion_core.contracts.bundle import load

        ws = load(bundle).action.workspace_box_sim_m
        lo, hi = np.asarray(ws.low) - 0.10, np.asarray(ws.high) + 0.10
        p = np.asarray(OBJECT_SIM_M)
        if np.any(p < lo) or np.any(p > hi):
            raise ValueError(
                f"the bench's object {p.tolist()} lies outside the bundle's workspace box + 0.10 m"
            )
        bad = np.asarray(IMPLAUSIBLE_SIM_M)
        if not (np.any(bad < lo) or np.any(bad > hi)):
            raise ValueError(
                f"the implausible detection {bad.tolist()} lies inside the workspace box + 0.10 m"
            )

    # -- callbacks -------------------------------------------------------------------------------------
    def _on_cmd(self, m) -> None:
        q = np.array(m.data, float)
        self.cmd_count += 1
        if self.cmds and float(np.max(np.abs(q - self.cmds[-1][1]))) > TOL:
            self.cmd_moved += 1
        self.cmds.append((time.time(), q))
        self.q = q

    def _on_status(self, m) -> None:
        self.status.append((time.time(), m))

    def _on_safety(self, m) -> None:
        self.safety.append((time.time(), m))

    def _on_report(self, m) -> None:
        self.report_counts["holds" if m.hold else "steps"] += 1
        if self.keep_reports:
            self.reports.append((time.time(), m))

    def _on_heartbeat(self, m) -> None:
        st = m.header.stamp
        self.heartbeats.setdefault(m.node, []).append((time.time(), st.sec + st.nanosec * 1e-9))

    def _on_diag(self, m) -> None:
        for st in m.status:
            if st.name == "legion/sim2real_node":
                d = {kv.key: kv.value for kv in st.values}
                p = self.procs.get("sim2real")
                d["_runq_s"] = runq_wait_s(p.pid) if p is not None else None
                self.diag.append((time.time(), d))

    # -- publishing ------------------------------------------------------------------------------------
    def publish_js(self, now: float) -> None:
        with self.lock:  # the message object is shared by the publisher thread and fault injection
            m = self._js
            t = now - self.stamp_age
            sec = int(t)
            m.header.stamp.sec, m.header.stamp.nanosec = sec, int((t - sec) * 1e9)
            q = self.q if self.fixed_q is None else self.fixed_q
            m.position = [float(v) for v in q]
            self.js_pub.publish(m)
            self.js_count += 1
            self.js_sent.append(now)

    def publish_det(self, now: float) -> None:
        with self.lock:
            d = self._det.detections[0]
            sec = int(now)
            d.header.stamp.sec, d.header.stamp.nanosec = sec, int((now - sec) * 1e9)
            p = self._R_cam_sim @ (self.obj - self._p_sim_cam)  # sim_world -> camera frame
            d.pose.position.x, d.pose.position.y, d.pose.position.z = (float(v) for v in p)
            self.det_pub.publish(self._det)

    def _publish_due(self) -> float:
        """Publish the joint state and detection that are due; returns when the next one is [s]."""
        now = time.time()
        if now >= self._next_js:
            self.publish_js(now)
            self._next_js += self.js_period
            if self._next_js < now:  # fell behind by more than a period: skip, do not burst
                behind = int((now - self._next_js) / self.js_period) + 1
                self.js_late_skipped += behind
                self._next_js += behind * self.js_period
        if now >= self._next_det:
            self.publish_det(now)
            self._next_det = max(self._next_det + self.det_period, now)
        return min(self._next_js, self._next_det)

    def _publisher_thread(self) -> None:
        while not self._stop.is_set():
            delay = self._publish_due() - time.time()
            if delay > 0:
                time.sleep(delay)

    def start_publisher(self) -> None:
        """`publisher='thread'`: joint states and detections from a thread of their own, so that their
        schedule does not wait for rclpy's spin_once (~0.35 ms per call here, measured), which the
        one-loop design pays once per joint state."""
        if self.publisher == "thread" and self._thread is None:
            import threading

            self._thread = threading.Thread(target=self._publisher_thread, name="driver", daemon=True)
            self._thread.start()

    def stop_publisher(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(5)
            self._thread = None

    def spin(self, seconds: float = 0.0, until=None, timeout: float | None = None, what: str = "") -> bool:
        """Run the driver and camera for `seconds`, or until `until()` is true (False after `timeout`)."""
        end = time.time() + (seconds if until is None else (timeout if timeout is not None else 30.0))
        while True:
            if self.publisher == "loop":
                nxt = self._publish_due()
            else:
                nxt = time.time() + 0.005  # the thread publishes; wake up now and then to check `until`
            if until is not None and until():
                return True
            now = time.time()
            if now >= end:
                if until is not None and what:
                    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
                return until is None
            self.executor.spin_once(timeout_sec=max(0.0, min(nxt, end) - now))

    # -- the graph -------------------------------------------------------------------------------------
    def start(self, name: str) -> None:
        from legion_core.tools.ros_env import start_composed

        k = self.starts.get(name, 0)
        self.starts[name] = k + 1
        params = dict(self.params[name])
        if name == "sim2real" and self.latency_log:  # one log per start: each is written at its shutdown
            params["sim2real.latency_log"] = str(self.log_dir / f"sim2real-latency-{k}.json")
        self.procs[name] = start_composed(name, params, self.log_dir / f"{name}-{k}.log")

    def restart_graph(self) -> None:
        """All three nodes anew (after a drill left the graph in a state the recovery could not clear)."""
        self.stop_all()
        for name in ("sim2real", "real2sim", "policy"):
            self.start(name)
        self.wait_alive(timeout=90)
        self.rehome(timeout=60)

    def stop_all(self) -> None:
        from legion_core.tools.ros_env import stop_process_group

        for p in self.procs.values():
            stop_process_group(p, 15)

    def kill(self, name: str) -> None:
        os.killpg(self.procs[name].pid, signal.SIGKILL)

    def last_hb(self, node: str) -> float:
        hb = self.heartbeats.get(node)
        return hb[-1][0] if hb else -math.inf

    def last_hb_sent_before(self, node: str, t: float) -> float:
        """Stamp of the node's last heartbeat sent before t [s] (one sent just before a kill may reach this
        process after t)."""
        hb = [st for _, st in self.heartbeats.get(node, []) if st < t]
        return max(hb) if hb else math.nan

    def call(self, client, timeout: float = 10.0):
        self.spin(until=client.service_is_ready, timeout=timeout, what=f"service {client.srv_name}")
        fut = client.call_async(self._Trigger.Request())
        self.spin(until=fut.done, timeout=timeout, what=f"reply of {client.srv_name}")
        return fut.result()

    def call_until_ok(self, client, tries: int, pause_s: float, what: str):
        """Call a Trigger service until it answers success (sim2real refuses a reset or re-arm until it has
        a fresh joint state); RuntimeError naming `what` and sim2real's last answer otherwise."""
        r = None
        for _ in range(tries):
            r = self.call(client)
            if r is not None and r.success:
                return r
            self.spin(pause_s)
        raise RuntimeError(f"sim2real refused {what}: {None if r is None else r.message}")

    def moving(self, n: int = 2) -> bool:
        """The last command differs from the one n-1 commands before it."""
        if len(self.cmds) < n:
            return False
        return float(np.max(np.abs(self.cmds[-1][1] - self.cmds[-n][1]))) > 1e-9

    def s2r_status_since(self, t0: float) -> list:
        return [(t, m) for t, m in self.status if t >= t0 and m.node == "sim2real_node"]

    def wait_alive(self, nodes=(POLICY_FQN, REAL2SIM_FQN), timeout: float = 60.0) -> None:
        """Every node heard from within 0.1 s, and sim2real reporting none silent or dead."""
        t0 = time.time()

        def ok():
            now = time.time()
            if any(now - self.last_hb(n) > 0.1 for n in nodes):
                return False
            st = [m for t, m in self.safety if t >= t0]
            fresh = st[-1] if st else (self.safety[-1][1] if self.safety else None)
            return fresh is not None and not fresh.dead_nodes and not fresh.silent_nodes

        self.spin(until=ok, timeout=timeout, what=f"{', '.join(nodes)} alive and none dead at sim2real")

    def set_skill(self, name: str) -> None:
        self.skill_pub.publish(self._String(data=name))

    def rehome(self, timeout: float = 30.0) -> None:
        """Back to motion from the home posture: hold (no skill), the driver at home, sim2real restarted
        from it (reset), the skill again; returns once the arm moves."""
        self.set_skill("")
        self.spin(0.05)
        self.fixed_q = self.home.copy()
        self.stamp_age = 0.0
        self.spin(max(0.03, 3 * self.js_period))
        self.call_until_ok(self.reset_cli, 5, 0.1, "the reset")
        # Follow again only once sim2real commands the home posture (no stale command followed).
        self.spin(until=lambda: bool(self.cmds) and float(np.max(np.abs(self.cmds[-1][1] - self.home))) < 1e-9,
                  timeout=5, what="the home command")  # fmt: skip
        self.q = self.home.copy()
        self.fixed_q = None
        self.set_skill(self.skill)
        t0 = time.time()
        self.spin(until=lambda: self.moving(3) and self.cmds[-1][0] > t0, timeout=timeout, what="motion")


def runq_wait_s(pid: int) -> float | None:
    """Time the main thread of `pid` has waited on a run queue so far [s] (/proc/PID/schedstat, field 2);
    None where the kernel does not report it or the process is gone."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[1]) * 1e-9
    except (OSError, IndexError, ValueError):
        return None
