"""`legion bench faults` and `legion bench soak`: how fast and how far the runtime graph stops under each
fault it is built to catch, and whether it stays healthy for minutes at the driver's full joint-state rate.

The graph is the robot graph without a twin: real2sim_node, policy_node and sim2real_node, each in its own
process (so that the policy or real2sim can be killed on their own and restarted), on the shipped bundle.
This process plays the arm's driver and the camera: it publishes joint states at `js_rate_hz` that follow
the last /joint_command exactly (a perfect position controller), and a detection of the skill's object at
30 Hz at a plausible, static place. One rclpy node; joint states and detections are published on schedule
from a thread of their own (`publisher="thread"`), or from the spin loop itself (`"loop"`: `spin_once`
with a timeout up to the next publication). A timer per message cannot hold 1 kHz in Python, and neither
can the loop on the 2-core dev VM: rclpy's spin_once costs ~0.35 ms per call there. The rate actually
achieved is measured and reported.

Per drill (docs/architecture.md, "Safety layers"; sim2real/supervisor.py): the fault time t_f is taken just
before the fault is published (or the node killed), at a moment the arm is moving; the commands received
after it are judged:
- `time_to_hold_ms`: receive time of the first command from which every later command is identical (to
  1e-12), minus t_f. Holding = repeating the last command sent, so this is when the commanded posture
  stopped changing. Measured at this process, so it includes one DDS hop and this process's wake-up.
- `cause_status_ms` / `cause_decided_ms`: the first /legion/status of sim2real_node naming the cause (and
  its text), as received here and as stamped by sim2real (when it decided, without the delivery). The
  decision is judged against the same target: the commands can stop before the runtime decides anything
  (a segment that ends while a dead policy sends no new action).
- `max_displacement_rad`: max over post-fault commands of max|q - q_before| (q_before: the last command
  received before t_f).
- `beyond_in_flight_rad`: max over post-fault commands of max|q - q_first| (q_first: the first command
  received after t_f, the one that may have been in flight at the fault). For dead nodes, which the runtime
  can only notice after two of their periods, the segment being executed continues until then:
  `beyond_in_flight_segments_rad` measures motion outside the segments the runtime had planned from data
  before the fault (no new motion after the fault), and is the one judged for them (see `targets`).
- tracking_error steps the command to the measured posture instead of keeping it (a blocked arm must not
  be pushed): its largest per-period step is reported and judged against the per-period joint step limit.

Machine baseline: a wake-up probe (a plain process sleeping to a 100 Hz grid, `bench_runtime`) runs beside
the whole bench; each drill lists the probe's stalls (> 1 ms late) around it, sim2real's timer lateness in
its window, and how long each process's executor thread waited for a CPU in the first 60 ms after the
fault (/proc/PID/schedstat): on a busy machine the busy runtime processes queue for a CPU long before a
sleeping probe notices anything. So a late hold can be told apart: the machine was busy or stalled, or the
runtime itself took the time.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from array import array
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from legion_core.base.stats import percentile, summarize
from legion_core.bench.runtime import (
    STALL_S,
    _read_latency_log,
    _read_wakeup_probe,
    _start_wakeup_probe,
    _stats_ms,
    _steal_s,
)
from legion_core.contracts.interface import NODE_POLICY, NODE_REAL2SIM, StatusLevel, node_fqn

COMMAND_PERIOD_S = 0.01  # sim2real's command stream at the shipped 100 Hz
HEARTBEAT_PERIOD_S = 0.02  # policy_node and real2sim_node heartbeats (their shipped default)
LIVENESS_PERIODS = 2.0  # sim2real: a node silent for this many of its periods holds the arm
POLICY_FQN, REAL2SIM_FQN = node_fqn(NODE_POLICY), node_fqn(NODE_REAL2SIM)  # as heartbeats name them
JOINT_VEL_SCALE = 0.5  # sim2real's shipped joint_vel_scale (fraction of the datasheet joint speeds)
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
PUBLISHERS = ("thread", "loop")  # how this process publishes joint states (see _Rig.start_publisher)
TRACKING_OFFSET_RAD = 0.5  # A2 reported this far from the command (a blocked or pushed arm)


@dataclass(frozen=True)
class Drill:
    name: str
    causes: tuple[str, ...]  # words of sim2real's status naming the cause (any of them)
    target_ms: float | None  # time_to_hold target [ms]; None: judged on its steps (tracking error)
    displacement: str  # which displacement figure is judged == 0: first | segments | steps
    observe_s: float  # how long the commands are recorded after the fault [s]
    what: str


ONE_PERIOD_MS = COMMAND_PERIOD_S * 1e3
DEAD_MS = (LIVENESS_PERIODS * HEARTBEAT_PERIOD_S + COMMAND_PERIOD_S) * 1e3
DRILLS: dict[str, Drill] = {
    d.name: d
    for d in (
        Drill("estop_topic", ("e-stop topic",), ONE_PERIOD_MS, "first", 0.5, "std_msgs/Bool True on /legion/estop"),
        Drill("estop_service", ("e-stop service",), ONE_PERIOD_MS, "first", 0.5, "/sim2real_node/estop (Trigger)"),
        Drill("hw_estop", ("hardware e-stop input",), ONE_PERIOD_MS, "first", 0.5,
              "True on /legion/estop_hw (released before re-arm)"),
        Drill("dead_policy", (POLICY_FQN,), DEAD_MS, "segments", 0.7, "SIGKILL to policy_node's process"),
        Drill("dead_real2sim", (REAL2SIM_FQN,), DEAD_MS, "segments", 0.7, "SIGKILL to real2sim_node's process"),
        # sim2real's own stamp check, or real2sim's (an invalid observation), whichever reaches it first
        Drill("stale_stamps", ("stamped", "joints: stale"), ONE_PERIOD_MS, "first", 0.5,
              f"the driver stamps joint states {STALE_STAMP_S} s in the past"),
        Drill("implausible_detection", ("outside the skill's workspace",), ONE_PERIOD_MS, "first", 0.5,
              f"the object detected at {list(IMPLAUSIBLE_SIM_M)} m (sim_world)"),
        Drill("nan_detection", ("non-finite position",), ONE_PERIOD_MS, "first", 0.5, "the object detected at NaN"),
        Drill("tracking_error", ("tracking error",), None, "steps", 1.2,
              f"the driver reports A2 {TRACKING_OFFSET_RAD} rad from the command (a blocked arm)"),
    )
}  # fmt: skip


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


def judge_drill(drill: Drill, runs: list[dict], dq_tol: float = 1e-9) -> dict:
    """Targets of one drill over its repeats: every repeat held within the target time (or, for the
    tracking error, no step above the per-period limit) and moved nothing beyond the command in flight."""
    ok: dict[str, bool] = {}
    if drill.target_ms is not None:
        hold = [r["time_to_hold_ms"] for r in runs]
        ok["time_to_hold"] = bool(runs) and all(h is not None and h <= drill.target_ms for h in hold)
        # The commands can stop before the runtime decides (a segment that ends while a dead policy sends
        # nothing): sim2real must also have decided the hold, naming its cause, within the target (its
        # status's own stamp: the delivery to the driver is in time_to_hold).
        decided = [r.get("cause_decided_ms") for r in runs]
        ok["cause_decided_within_target"] = bool(runs) and all(
            x is not None and x <= drill.target_ms for x in decided
        )
    if drill.displacement == "first":
        ok["nothing_beyond_in_flight"] = bool(runs) and all(
            r["beyond_in_flight_rad"] is not None and r["beyond_in_flight_rad"] <= TOL for r in runs
        )
    elif drill.displacement == "segments":
        ok["nothing_beyond_in_flight_segments"] = bool(runs) and all(
            r["beyond_in_flight_segments_rad"] is not None and r["beyond_in_flight_segments_rad"] <= TOL
            for r in runs
        )
    else:
        ok["no_step_over_limit"] = bool(runs) and all(
            r["step_over_limit_rad"] is not None and r["step_over_limit_rad"] <= dq_tol for r in runs
        )
        ok["reached_measured_posture"] = bool(runs) and all(r.get("reached_measured") for r in runs)
    ok["cause_named"] = bool(runs) and all(
        r.get("cause_status_ms") is not None or r.get("cause_report_ms") is not None for r in runs
    )
    return ok


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
def _switch_interval(seconds: float = 5e-4):
    """The publisher thread waits for the GIL at most this long while the spin loop runs Python code
    (default 5 ms: five joint-state periods at 1 kHz)."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def _machine() -> dict:
    return {"cpu_model": cpu_model(), "cpus": os.cpu_count(), "load_average_1_5_15": list(os.getloadavg())}


# ------------------------------------------------------------------------------------------ the rig
class _Rig:
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
                d["_runq_s"] = _runq_wait_s(p.pid) if p is not None else None
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


# -------------------------------------------------------------------------------------------- faults
def _runq_wait_s(pid: int) -> float | None:
    """Time the main thread of `pid` has waited on a run queue so far [s] (/proc/PID/schedstat, field 2);
    None where the kernel does not report it or the process is gone."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[1]) * 1e-9
    except (OSError, IndexError, ValueError):
        return None


def _inject(rig: _Rig, drill: str) -> None:
    with rig.lock:  # the publisher thread sends nothing between the change and the first faulty message
        _inject_locked(rig, drill, time.time())


def _inject_locked(rig: _Rig, drill: str, now: float) -> None:
    if drill == "estop_topic":
        rig.estop_pub.publish(rig._Bool(data=True))
    elif drill == "estop_service":
        rig._estop_future = rig.estop_cli.call_async(rig._Trigger.Request())
    elif drill == "hw_estop":
        rig.hw_pub.publish(rig._Bool(data=True))
    elif drill == "dead_policy":
        rig.kill("policy")
    elif drill == "dead_real2sim":
        rig.kill("real2sim")
    elif drill == "stale_stamps":
        rig.stamp_age = STALE_STAMP_S
        rig.publish_js(now)  # the first stale message goes out at the fault, not at the next slot
    elif drill in ("implausible_detection", "nan_detection"):
        rig.obj = np.array(IMPLAUSIBLE_SIM_M if drill == "implausible_detection" else (math.nan,) * 3)
        rig.publish_det(now)
    elif drill == "tracking_error":
        q = rig.cmds[-1][1].copy()
        q[1] += TRACKING_OFFSET_RAD
        rig.fixed_q = q
        rig.publish_js(now)
    else:
        raise ValueError(f"unknown drill {drill!r}; drills: {list(DRILLS)}")


def _recover(rig: _Rig, drill: str) -> None:
    """Clear the fault and bring the graph back to motion (re-arm, restart a killed node, the skill again)."""
    rig.stamp_age = 0.0
    rig.obj = np.array(OBJECT_SIM_M, float)
    del rig.reports[:-200]  # a drill looks 2 s back at most
    if drill in ("dead_policy", "dead_real2sim"):
        name = drill.split("_", 1)[1]
        rig.procs[name].wait(10)
        rig.start(name)
        rig.wait_alive()
    if drill == "hw_estop":
        rig.hw_pub.publish(rig._Bool(data=False))
        rig.spin(0.05)
    rig.call_until_ok(rig.rearm_cli, 10, 0.2, f"the re-arm after {drill}")
    rig.rehome()


def _run_drill(rig: _Rig, drill: Drill, dq_max, rng) -> dict:
    # Fault at a random moment of the motion (not always at the same phase of a segment), right after a
    # command that moved: the arm is moving at t_f.
    rig.spin(float(rng.uniform(0.15, 0.6)))

    # Within 50 ms of the start of a policy step (segments last ~100 ms here): the arm would go on moving
    # for several periods if nothing stopped it, so a late hold shows in the commands.
    def moving_now():
        now = time.time()
        step = next((t for t, m in reversed(rig.reports) if not m.hold), -math.inf)
        return rig.moving(2) and now - rig.cmds[-1][0] < 0.005 and now - step < 0.05

    rig.spin(until=moving_now, timeout=10, what="a moving command early in a policy step")
    from legion_core.ros.common import stamp_to_s

    hb_node = {"dead_policy": POLICY_FQN, "dead_real2sim": REAL2SIM_FQN}.get(drill.name)
    hb_name = {"dead_policy": "policy", "dead_real2sim": "real2sim"}.get(drill.name)  # killed at t_f
    n_before = len(rig.cmds)
    q_before = rig.cmds[-1][1].copy()
    t_f = time.time()
    _inject(rig, drill.name)
    # Run-queue wait of each runtime process's main thread (its executor) over the first 60 ms: time it
    # was ready to run but had no CPU, what a busy 2-core machine costs a hold (the sleeping wake-up probe
    # rarely waits: the scheduler favours a task that slept).
    pids = {n: p.pid for n, p in rig.procs.items() if p.poll() is None and n != hb_name}
    pids["bench"] = os.getpid()
    w0 = {n: _runq_wait_s(pid) for n, pid in pids.items()}
    rig.spin(0.06)
    w1 = {n: _runq_wait_s(pid) for n, pid in pids.items()}
    rig.spin(max(0.0, drill.observe_s - 0.06))
    cmds = rig.cmds[n_before:]
    times = [t for t, _ in cmds]
    qs = [q for _, q in cmds]
    # Segments planned from data before the fault: the one executing at t_f and any started after it from
    # pre-fault sensor data (CommandReport stamps carry the joint-state stamp behind the step).
    steps = [(t, m) for t, m in rig.reports if not m.hold and t >= t_f - 2.0]
    before = [m for t, m in steps if t < t_f]
    after_pre = [m for t, m in steps if t >= t_f and stamp_to_s(m.header.stamp) < t_f]
    after_post = [m for t, m in steps if t >= t_f and stamp_to_s(m.header.stamp) >= t_f]
    targets = [np.array(m.q_requested) for m in ([before[-1]] if before else []) + after_pre]
    res = analyse_commands(times, qs, t_f, q_before, dq_max, targets)

    def names(text: str) -> bool:
        return any(c in text for c in drill.causes)

    named = [(t, m) for t, m in rig.s2r_status_since(t_f) if names(m.message)]
    res["cause_status_ms"] = (named[0][0] - t_f) * 1e3 if named else None
    # When sim2real decided: the header stamp of that status (its clock, the same system clock as t_f), i.e.
    # without the delivery to this process.
    res["cause_decided_ms"] = (stamp_to_s(named[0][1].header.stamp) - t_f) * 1e3 if named else None
    res["cause_status"] = named[0][1].message if named else None
    res["statuses_after"] = [m.message for _, m in rig.s2r_status_since(t_f)][:4]
    held = [(t, m.reason) for t, m in rig.reports if t >= t_f and m.hold]
    seen: list = []
    for t, why in held:
        if reason_key(why) not in [reason_key(w) for _, w in seen]:
            seen.append(((t - t_f) * 1e3, why))
    res["hold_reasons_after"] = seen[:5]  # each distinct hold reason of sim2real's reports, first time [ms]
    rep = [t for t, why in held if names(why)]
    res["cause_report_ms"] = (rep[0] - t_f) * 1e3 if rep else None
    sf = [t for t, m in rig.safety if t >= t_f and names(" ".join([m.reason, m.estop_reason, *m.silent_nodes,
                                                                   *m.dead_nodes]))]  # fmt: skip
    res["cause_safety_state_ms"] = (sf[0] - t_f) * 1e3 if sf else None
    firsts = [
        x
        for x in (res["cause_status_ms"], res["cause_safety_state_ms"], res["cause_report_ms"])
        if x is not None
    ]
    res["cause_named_ms"] = min(firsts) if firsts else None  # the first of the three to name the cause
    res["runqueue_wait_first_60ms_ms"] = {
        n: round((w1[n] - w0[n]) * 1e3, 2) for n in w0 if w0[n] is not None and w1.get(n) is not None
    }
    res["new_policy_steps_from_post_fault_data"] = len(after_post)
    res["t_fault"] = t_f
    res["q_before"] = q_before.tolist()
    if hb_node:
        # sim2real's bound: two heartbeat periods after the last one, then its next tick.
        res["last_heartbeat_sent_before_fault_ms"] = (rig.last_hb_sent_before(hb_node, t_f) - t_f) * 1e3
    if drill.name == "tracking_error":
        target = q_before.copy()
        target[1] += TRACKING_OFFSET_RAD
        res["reached_measured"] = bool(qs) and float(np.max(np.abs(qs[-1] - target))) < 1e-9
        res["max_step_over_dq_max_ratio"] = (
            float(np.max(np.abs(np.diff(np.vstack([q_before, *qs]), axis=0)) / dq_max)) if qs else None
        )
    if drill.name == "estop_service":
        fut = getattr(rig, "_estop_future", None)
        res["service_reply"] = fut.result().message if fut is not None and fut.done() else None
    return res


def run_bench(
    bundle: str = "models/legion-kuka",
    js_rate_hz: float = 200.0,
    repeats: int = 3,
    drills=tuple(DRILLS),
    skill: str = SKILL,
    seed: int = 0,
    progress: bool = True,
    publisher: str = "thread",
) -> dict:
    """Run every drill `repeats` times on the graph (three processes) and judge them (module docstring).
    `publisher`: how joint states are published, from a thread of their own or from the spin loop."""
    with _switch_interval():
        return _run_bench(bundle, js_rate_hz, repeats, drills, skill, seed, progress, publisher)


def _run_bench(bundle, js_rate_hz, repeats, drills, skill, seed, progress, publisher) -> dict:
    from tqdm import tqdm

    unknown = [d for d in drills if d not in DRILLS]
    if unknown:
        raise ValueError(f"unknown drill(s) {unknown}; drills: {list(DRILLS)}")
    tmp = Path(tempfile.mkdtemp(prefix="legion_bench_faults_"))
    rng = np.random.default_rng(seed)
    dq_max = dq_max_per_period()
    probe = _start_wakeup_probe(tmp / "wakeup.json")
    rig = _Rig(bundle, skill, js_rate_hz, tmp, latency_log=True, publisher=publisher)
    t_start = time.time()
    steal0 = _steal_s()
    machine0 = _machine()
    per: dict[str, list[dict]] = {d: [] for d in drills}
    errors: list[str] = []
    try:
        for name in ("sim2real", "real2sim", "policy"):
            rig.start(name)
        rig.spin(until=lambda: rig.js_pub.get_subscription_count() >= 2 and rig.estop_pub.get_subscription_count() >= 1
                 and rig.hw_pub.get_subscription_count() >= 1, timeout=60, what="the graph's subscriptions")  # fmt: skip
        rig.wait_alive(timeout=90)
        rig.rehome(timeout=60)
        order = [d for _ in range(repeats) for d in drills]
        bar = tqdm(order, desc="fault drills", unit="drill", disable=not progress)
        for name in bar:
            bar.set_postfix_str(name)
            try:
                per[name].append(_run_drill(rig, DRILLS[name], dq_max, rng))
            except (TimeoutError, RuntimeError) as e:
                errors.append(f"{name}: {e}")
                per[name].append({"error": str(e)})
            try:
                _recover(rig, name)
            except (TimeoutError, RuntimeError, subprocess.TimeoutExpired) as e:
                errors.append(f"{name}: recovery failed ({e}); the graph was restarted")
                rig.restart_graph()
    finally:
        t_end = time.time()
        steal1 = _steal_s()
        rig.stop_all()
        rig.stop_publisher()
        from legion_core.tools.ros_env import stop_process_group

        stop_process_group(probe, 10)
        rig.node.destroy_node()
    wake = _read_wakeup_probe(tmp / "wakeup.json", (t_start, t_end))
    ticks = []
    for k in range(rig.starts.get("sim2real", 0)):
        log = _read_latency_log(tmp / f"sim2real-latency-{k}.json")
        ticks += list(zip(log["tick_time_s"], log["tick_late_s"], log["tick_skipped"]))
    drills_out: dict = {}
    met_all = True
    for name in drills:
        d = DRILLS[name]
        runs = [r for r in per[name] if "error" not in r]
        for r in runs:
            t_f = r["t_fault"]
            # The window a late hold would show in: until the hold and the cause were both seen (for the
            # tracking error, whose commands move on purpose, until the cause was named).
            ends = [r["cause_named_ms"]] + ([r["time_to_hold_ms"]] if d.target_ms is not None else [])
            t_end_w = t_f + max([x for x in ends if x is not None] or [0.0]) * 1e-3
            r["probe_stalls_near"] = stalls_near(wake, t_f, t_end_w)
            # sim2real's timer ticks from the fault to one period after the hold: (when [ms after t_f], how
            # late [ms], periods skipped).
            r["sim2real_ticks_in_window"] = [
                (round((t - t_f) * 1e3, 2), round(late * 1e3, 2), k) for t, late, k in ticks if t_f <= t <= t_end_w + 0.011
            ][:12]  # fmt: skip
            late_hold = d.target_ms is not None and not (
                r["time_to_hold_ms"] is not None and r["time_to_hold_ms"] <= d.target_ms
                and r["cause_decided_ms"] is not None and r["cause_decided_ms"] <= d.target_ms
            )  # fmt: skip
            # A late hold beside machine contention: the probe woke > 1 ms late near it, or a process of the
            # path (the graph's, or this one: the driver) waited a whole command period for a CPU in the
            # first 60 ms. Where neither holds, the time went to the runtime itself.
            waits = r.get("runqueue_wait_first_60ms_ms") or {}
            r["late_hold_with_machine_contention"] = (
                {"probe_stall": any(late > 1.0 for _, late in r["probe_stalls_near"]),
                 "cpu_wait": any(w >= ONE_PERIOD_MS for w in waits.values())}
                if late_hold else None
            )  # fmt: skip
        ok = judge_drill(d, runs) if len(runs) == len(per[name]) else {"all_repeats_ran": False}
        met = bool(ok) and all(ok.values())
        met_all &= met
        drills_out[name] = {
            "fault": d.what,
            "target_time_to_hold_ms": d.target_ms,
            "judged_displacement": {"first": "beyond_in_flight_rad == 0", "segments":
                                    "beyond_in_flight_segments_rad == 0 (the segment executing at the fault "
                                    "may finish until the node is noticed silent)",
                                    "steps": "every per-period step <= the joint step limit"}[d.displacement],
            "time_to_hold_ms": summarise([r.get("time_to_hold_ms") for r in per[name]]),
            "cause_decided_ms": summarise([r.get("cause_decided_ms") for r in per[name]]),
            "cause_named_ms": summarise([r.get("cause_named_ms") for r in per[name]]),
            "cause_status_ms": summarise([r.get("cause_status_ms") for r in per[name]]),
            "max_displacement_rad": summarise([r.get("max_displacement_rad") for r in per[name]]),
            "beyond_in_flight_rad": summarise([r.get("beyond_in_flight_rad") for r in per[name]]),
            "beyond_in_flight_segments_rad": summarise([r.get("beyond_in_flight_segments_rad") for r in per[name]]),
            "max_step_rad": summarise([r.get("max_step_rad") for r in per[name]]),
            "checks": ok,
            "meets_targets": met,
            "repeats": per[name],
        }  # fmt: skip
    js_rate = len([t for t in rig.js_sent if t_start <= t <= t_end]) / max(1e-9, t_end - t_start)
    gaps = np.diff(np.asarray(rig.js_sent, float)) if len(rig.js_sent) > 1 else np.zeros(0)
    return {
        "bench": "faults",
        "bundle": bundle,
        "skill": skill,
        "graph": "real2sim_node, policy_node, sim2real_node: one process each, DDS between them (loopback)",
        "repeats": repeats,
        "log_dir": str(tmp),
        "window_s": [t_start, t_end],
        "machine": {**machine0, "load_average_1_5_15_end": list(os.getloadavg())},
        "joint_states": {
            "publisher": publisher,
            "rate_hz_asked": js_rate_hz,
            "rate_hz_achieved": js_rate,
            "longest_gap_ms": float(gaps.max() * 1e3) if gaps.size else None,
            "gap_p99_ms": percentile(gaps, 99) * 1e3 if gaps.size else None,
            "slots_skipped": rig.js_late_skipped,
        },  # fmt: skip
        "detections_hz": DETECTION_RATE_HZ,
        "object_sim_m": list(OBJECT_SIM_M),
        "command_period_ms": ONE_PERIOD_MS,
        "heartbeat_period_ms": HEARTBEAT_PERIOD_S * 1e3,
        "joint_step_limit_rad": dq_max.tolist(),
        "sim2real_missed_cycles": int(sum(k for _, _, k in ticks)) if ticks else None,
        "sim2real_tick_late_ms": _stats_ms([late for _, late, _ in ticks]),
        "machine_wakeup_late_ms": _stats_ms([late for _, late in wake]),
        "machine_stalls_over_1ms": int(sum(1 for _, late in wake if late > STALL_S)),
        "machine_steal_ms": (steal1 - steal0) * 1e3 if steal0 is not None and steal1 is not None else None,
        "targets": {
            "estop_ms": ONE_PERIOD_MS,
            "dead_node_ms": DEAD_MS,
            "first_bad_message_ms": ONE_PERIOD_MS,
            "displacement": "0 beyond the command in flight (tracking error: no step above the per-period limit)",
        },
        "drills": drills_out,
        "errors": errors,
        "meets_targets": bool(met_all and not errors),
        # A condition of the run, not a target of the runtime: did the driver publish at the asked rate?
        "ran_at_asked_rate": js_rate >= 0.95 * js_rate_hz,
    }


# ---------------------------------------------------------------------------------------------- soak
def run_soak(
    bundle: str = "models/legion-kuka",
    minutes: float = 10.0,
    js_rate_hz: float = 1000.0,
    skill: str = SKILL,
    sample_s: float = 10.0,
    progress: bool = True,
    publisher: str = "thread",
    cycle_s: float = 30.0,
) -> dict:
    """The graph with a skill active for `minutes` at `js_rate_hz` joint states: RSS of each runtime process
    every `sample_s`, sim2real's missed command cycles (its /diagnostics), holds and their reasons, the
    joint-state rate achieved, and the wake-up probe's stalls over the same window.

    `cycle_s` > 0: every `cycle_s` the arm is sent home and the skill started again (`_Rig.rehome`, as an
    operator's next command would), so that the soak keeps moving the arm (the policy reaches the button
    within ~7 s and then presses on the spot) and switches skills; the holds of those re-homings are
    counted apart, as planned. 0: the skill stays active throughout."""
    with _switch_interval():
        return _run_soak(bundle, minutes, js_rate_hz, skill, sample_s, progress, publisher, cycle_s)


def _run_soak(bundle, minutes, js_rate_hz, skill, sample_s, progress, publisher, cycle_s) -> dict:
    import psutil
    from tqdm import tqdm

    tmp = Path(tempfile.mkdtemp(prefix="legion_bench_soak_"))
    probe = _start_wakeup_probe(tmp / "wakeup.json")
    # No latency log: it keeps every tick in memory, which would be the growth this soak looks for.
    rig = _Rig(bundle, skill, js_rate_hz, tmp, latency_log=False, publisher=publisher)
    rig.keep_reports = False  # counted, not kept (60k messages over 10 min)
    rss: dict[str, list[tuple[float, float]]] = {}
    try:
        for name in ("sim2real", "real2sim", "policy"):
            rig.start(name)
        rig.spin(until=lambda: rig.js_pub.get_subscription_count() >= 2, timeout=60, what="subscriptions")
        rig.wait_alive(timeout=90)
        rig.rehome(timeout=60)
        rig.report_counts.update(steps=0, holds=0)
        t_start = time.time()
        steal0 = _steal_s()
        n_status0, n_cmd0, js0 = len(rig.status), rig.cmd_count, rig.js_count
        skipped0, moved0 = rig.js_late_skipped, rig.cmd_moved
        del rig.js_sent[:]
        diag0 = len(rig.diag)
        procs = {n: psutil.Process(p.pid) for n, p in rig.procs.items()}
        procs_all = {**procs, "bench": psutil.Process()}
        cpu0 = {n: sum(p.cpu_times()[:2]) for n, p in procs_all.items()}
        runq0 = {n: _runq_wait_s(p.pid) for n, p in procs_all.items()}
        sys0 = psutil.cpu_times()
        load0 = list(os.getloadavg())
        end = t_start + minutes * 60.0
        bar = tqdm(total=int(minutes * 60), desc="soak", unit="s", disable=not progress)
        next_sample = t_start
        next_cycle = t_start + cycle_s if cycle_s > 0 else math.inf
        planned: list[tuple[float, float]] = []  # re-homing windows [s]
        while time.time() < end:
            now = time.time()
            if now >= next_cycle and end - now > 2.0:
                rig.rehome()
                planned.append((now, time.time()))
                next_cycle += cycle_s
            if now >= next_sample:
                for n, p in procs.items():
                    with contextlib.suppress(psutil.Error):  # a dead process: its samples stop
                        rss.setdefault(n, []).append((now - t_start, p.memory_info().rss / 2**20))
                next_sample += sample_s
            rig.spin(min(1.0, max(0.0, end - time.time())))
            bar.update(int(time.time() - t_start) - bar.n)
            # The command list is only needed for the driver's "follow": keep it short.
            if len(rig.cmds) > 2000:
                del rig.cmds[:1000]
        bar.close()
        t_end = time.time()
        steal1 = _steal_s()
        for n, p in procs.items():
            with contextlib.suppress(psutil.Error):
                rss[n].append((t_end - t_start, p.memory_info().rss / 2**20))
        alive = {n: p.poll() is None for n, p in rig.procs.items()}
        # CPU used by each process and the time its main thread (the executor) waited for a CPU: on a
        # shared 2-core machine the contention, not the runtime's code, can take the command period.
        cpu = {}
        for n, p in procs_all.items():
            with contextlib.suppress(psutil.Error):
                rq1 = _runq_wait_s(p.pid)
                cpu[n] = {"cpu_percent_of_one_core": round((sum(p.cpu_times()[:2]) - cpu0[n]) / (t_end - t_start) * 100, 1),
                          "main_thread_runqueue_wait_s": None if rq1 is None or runq0[n] is None else round(rq1 - runq0[n], 2)}  # fmt: skip
        sys1 = psutil.cpu_times()
        busy = (sum(sys1) - sys1.idle - sys1.iowait) - (sum(sys0) - sys0.idle - sys0.iowait)
        machine_busy = busy / max(1e-9, sum(sys1) - sum(sys0)) * 100
    finally:
        rig.stop_all()
        rig.stop_publisher()
        from legion_core.tools.ros_env import stop_process_group

        stop_process_group(probe, 10)
        rig.node.destroy_node()
    wake = _read_wakeup_probe(tmp / "wakeup.json", (t_start, t_end))
    s2r = [(t, m) for t, m in rig.status[n_status0:] if m.node == "sim2real_node"]
    episodes = hold_episodes([(t, m.level, m.message) for t, m in s2r], t_end, planned)
    holds = [e for e in episodes if not e["planned"]]
    by_reason: dict[str, int] = {}
    examples: dict[str, str] = {}
    for e in holds:
        for why in e["reasons"]:
            k = reason_key(why)
            by_reason[k] = by_reason.get(k, 0) + 1
            examples.setdefault(k, why)
    diag = [(t, d) for t, d in rig.diag[diag0:] if t_start - 1.0 <= t <= t_end + 1.0]
    missed = _missed_cycles(diag, wake)
    mem = {}
    for n, samples in rss.items():
        t = [s for s, _ in samples]
        y = [v for _, v in samples]
        slope = linear_slope(t, y)
        half = [(s, v) for s, v in samples if s >= t[-1] / 2]
        slope2 = linear_slope([s for s, _ in half], [v for _, v in half])
        mem[n] = {"rss_start_mb": y[0], "rss_end_mb": y[-1], "growth_mb": y[-1] - y[0],
                  "growth_mb_per_min": (y[-1] - y[0]) / max(1e-9, (t[-1] - t[0]) / 60.0),
                  "slope_mb_per_min": None if slope is None else slope * 60.0,
                  "slope_second_half_mb_per_min": None if slope2 is None else slope2 * 60.0,
                  "samples_s_mb": [(round(s, 1), round(v, 2)) for s, v in samples]}  # fmt: skip
    js = np.asarray(rig.js_sent, float)
    gaps = np.diff(js) if js.size > 1 else np.zeros(0)
    dur = t_end - t_start
    targets = {"rss_slope_mb_per_min_below": 1.0, "missed_cycles_outside_machine_stalls": 0}
    # The match of missed cycles to machine contention only clears the runtime where contention was the
    # exception: when (nearly) every interval was contended, it cannot tell, and the check is not met.
    share = missed.get("machine_share_of_intervals")
    conclusive = share is not None and share <= 0.5
    met = {
        "rss_slope": all(m["slope_mb_per_min"] is not None and m["slope_mb_per_min"] < 1.0 for m in mem.values()),
        "no_missed_cycle_outside_machine_stalls": (missed["outside_machine_stalls"] == 0 and conclusive)
        if missed["total"] else missed["total"] == 0,
        "processes_alive": all(alive.values()),
    }  # fmt: skip
    missed["attribution_conclusive"] = conclusive
    return {
        "bench": "soak",
        "bundle": bundle,
        "skill": skill,
        "minutes": minutes,
        "window_s": [t_start, t_end],
        "log_dir": str(tmp),
        "machine": _machine(),
        "graph": "real2sim_node, policy_node, sim2real_node: one process each; this process plays driver and camera",
        "cycle_s": cycle_s,
        "joint_states": {
            "publisher": publisher,
            "rate_hz_asked": js_rate_hz,
            "rate_hz_achieved": float((rig.js_count - js0) / dur),
            "longest_gap_ms": float(gaps.max() * 1e3) if gaps.size else None,
            "gap_p99_ms": percentile(gaps, 99) * 1e3 if gaps.size else None,
            "gaps_over_2_periods": int(np.sum(gaps > 2.0 / js_rate_hz)),
            "slots_skipped": rig.js_late_skipped - skipped0,
        },  # fmt: skip
        "commands_received_per_s": float((rig.cmd_count - n_cmd0) / dur),
        # The policy reaches the button within ~7 s and then presses on the spot: the control path keeps
        # running (policy steps below), the commanded posture changes only while it moves.
        "commands_that_moved": rig.cmd_moved - moved0,
        "policy_steps_commanded": rig.report_counts["steps"],
        "hold_reports": rig.report_counts["holds"],
        "rss": mem,
        "cpu": cpu,
        "machine_cpu_busy_percent": round(machine_busy, 1),
        "load_average_1_5_15": {"start": load0, "end": list(os.getloadavg())},
        "processes_alive_at_end": alive,
        "sim2real_missed_cycles": missed,
        "sim2real_last_diagnostics": diag[-1][1] if diag else None,
        # Hold episodes outside the planned re-homings (from a hold status to the next OK/WARN one), each
        # cause (numbers blanked) counted once per episode.
        "holds": {
            "count": len(holds),
            "held_s": round(sum(e["duration_s"] for e in holds), 3),
            "longest_s": round(max([e["duration_s"] for e in holds], default=0.0), 3),
            "by_reason": by_reason,
            "examples": examples,
            "longest": [
                {
                    "at_s": round(e["start"] - t_start, 2),
                    "duration_s": round(e["duration_s"], 3),
                    "reasons": e["reasons"][:4],
                }
                for e in sorted(holds, key=lambda e: -e["duration_s"])[:10]
            ],
            "planned_rehomings": len(planned),
            "planned_held_s": round(sum(e["duration_s"] for e in episodes if e["planned"]), 3),
        },  # fmt: skip
        "machine_wakeup_late_ms": _stats_ms([late for _, late in wake]),
        "machine_stalls_over_1ms": int(sum(1 for _, late in wake if late > STALL_S)),
        "machine_stalls_over_10ms": int(sum(1 for _, late in wake if late > 0.01)),
        "machine_steal_ms": (steal1 - steal0) * 1e3 if steal0 is not None and steal1 is not None else None,
        "targets": targets,
        "checks": met,
        "meets_targets": all(met.values()),
        # A condition of the run, not a target of the runtime: did the driver publish at the asked rate?
        "ran_at_asked_rate": float((rig.js_count - js0) / dur) >= 0.95 * js_rate_hz,
    }


def _missed_cycles(diag: list[tuple[float, dict]], wake, period_s: float = COMMAND_PERIOD_S) -> dict:
    """sim2real's `command_cycles_missed` (cumulative, 1 Hz /diagnostics) over the window, each increment
    placed in the interval between two reports. An interval counts as machine contention when the wake-up
    probe woke half a command period late or more in it, or sim2real's executor thread waited a whole
    period or more for a CPU in it (`_runq_s`, read from /proc when each report arrived): either can push
    a timer tick past its period. `machine_share_of_intervals` is how often that held in any interval
    (the chance level of the match)."""
    vals = []
    for t, d in diag:
        try:
            vals.append((t, int(d["command_cycles_missed"]), d.get("_runq_s")))
        except (KeyError, ValueError):
            continue
    if len(vals) < 2:
        return {"total": None, "outside_machine_stalls": None, "intervals": []}
    out, outside, machine_n = [], 0, 0
    for (t0, a, r0), (t1, b, r1) in zip(vals, vals[1:]):
        st = stalls_near(wake, t0, t1, near_s=0.0)
        big = [late for _, late in st if late >= period_s / 2 * 1e3]
        rq = r1 - r0 if r0 is not None and r1 is not None else None
        machine = bool(big) or (rq is not None and rq >= period_s)
        machine_n += machine
        if b > a:
            out.append({"at_s": round(t1 - vals[0][0], 1), "missed": b - a, "probe_stalls_ms": [x[1] for x in st],
                        "sim2real_runqueue_wait_ms": None if rq is None else round(rq * 1e3, 2),
                        "machine_contention": machine})  # fmt: skip
            if not machine:
                outside += b - a
    return {"total": vals[-1][1] - vals[0][1], "outside_machine_stalls": outside, "intervals": out,
            "since_sim2real_start": vals[-1][1], "machine_share_of_intervals": machine_n / (len(vals) - 1)}  # fmt: skip
