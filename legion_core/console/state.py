"""The operator console's picture of the runtime (docs/console.md, "The wire format"): what the console node
hears on the graph, folded into the one state message the page draws. Pure: plain Python values in, a
JSON-ready dict out; console_node (ros2_ws) converts messages and calls these methods from its executor.

Thread safety: the node's executor writes, the web server's event loop reads `snapshot()`; one lock guards
both, and `snapshot()` copies, so the page never sees a half-updated state."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from legion_core.contracts.interface import CommandOutcome, StatusLevel
from legion_core.robot.kinematics import IIWA7, ArmModel, forward

HISTORY = 20
"""How many holds and status messages the page lists (newest first)."""
DIAGNOSTIC_KEYS = (
    "stamp_to_command_ms",
    "command_cycles_missed",
    "command_tick_late_ms",
    "commands_sent",
    "runtime_stalls",
    "tracking_error_max_rad",
    "contact_force_max_N",
    "driver",
    "estop",
)
"""sim2real_node's /diagnostics values the page shows (latency and missed cycles first)."""


def level_name(level: int) -> str:
    try:
        return StatusLevel(int(level)).name
    except ValueError:
        return str(level)


def arm_points_base_m(q_rad, arm: ArmModel = IIWA7) -> list[list[float]]:
    """The arm as a polyline for the page: base origin, the 7 joint origins, the flange, the hand point
    [m, base frame]."""
    st = forward(np.asarray(q_rad, float), arm)
    pts = [np.zeros(3), *st.joint_origins, st.p_flange, st.point("hand")]
    return [[round(float(v), 4) for v in p] for p in pts]


@dataclass
class RunRecord:
    """One command the console saw end (or found in a recording)."""

    command: str
    plan: list[str]
    outcome: str
    message: str
    step_durations_s: list[float] = field(default_factory=list)
    t: float | None = None
    source: str = "this console"

    def to_dict(self) -> dict:
        return {
            "t": self.t,
            "command": self.command,
            "plan": list(self.plan),
            "outcome": self.outcome,
            "message": self.message,
            "step_durations_s": [round(float(d), 2) for d in self.step_durations_s],
            "source": self.source,
        }


_OUTCOMES = {CommandOutcome.SUCCEEDED: "succeeded", CommandOutcome.FAILED: "failed",
             CommandOutcome.CANCELLED: "cancelled"}  # fmt: skip


def runs_from_replies(replies, source: str) -> list[RunRecord]:
    """Past runs from the sequencer's replies (/legion/command_status, as `legion record` keeps them):
    `replies` are (t [s], command_id, command, outcome, message) in time order; a command accepted with "plan:
    a -> b" and its final outcome make one run, newest first. Refused commands never ran and are left out."""
    started: dict[int, tuple[str, list[str]]] = {}
    runs = []
    for t, cid, command, outcome, message in replies:
        if int(outcome) == CommandOutcome.ACCEPTED:
            plan = message.split("plan:", 1)[1] if "plan:" in message else ""
            started[int(cid)] = (command, [s.strip() for s in plan.split("->") if s.strip()])
        elif int(outcome) in _OUTCOMES and int(cid) in started:
            command, plan = started.pop(int(cid))
            runs.append(
                RunRecord(command, plan, _OUTCOMES[CommandOutcome(int(outcome))], message, [], t, source)
            )
    return runs[::-1]


class ConsoleState:
    """What the page shows; every `on_*` method takes one message's content and the wall time `now` [s]."""

    def __init__(self, robot_joint_names: tuple[str, ...], arm: ArmModel = IIWA7,
                 runtime_timeout_s: float = 3.0, read_only: bool = False) -> None:  # fmt: skip
        self._lock = threading.Lock()
        self.robot_joint_names = tuple(robot_joint_names)
        self.arm = arm
        self.runtime_timeout_s = runtime_timeout_s
        self.read_only = read_only
        self._index = {n: i for i, n in enumerate(self.robot_joint_names)}
        self._q: list[float] | None = None
        self._points: list | None = None
        self._points_q: list | None = None  # the posture `_points` was computed for
        self._t_joints: float | None = None
        self._gripper_m: float | None = None
        self._objects: dict[str, tuple[list[float], float]] = {}
        self._skill = {"active": "", "step_index": 0, "step_count": 0, "progress": 0.0, "state": "",
                       "hold_reason": ""}  # fmt: skip
        self._command = {"id": 0, "text": "", "phase": "idle", "message": "", "plan": [], "steps": []}
        self._safety: dict | None = None
        self._t_safety: float | None = None
        self._holds: deque = deque(maxlen=HISTORY)
        self._status: deque = deque(maxlen=HISTORY)
        self._diagnostics: dict[str, str] = {}
        self._t_camera: float | None = None
        self.runs: deque[RunRecord] = deque(maxlen=50)

    # -- inputs ----------------------------------------------------------------------------------------
    def on_joint_state(self, names, positions, now: float) -> None:
        """The driver's joint states: kept in LEGION's joint order (lbr_A1..A7) when all 7 are present."""
        q = [0.0] * len(self.robot_joint_names)
        seen = 0
        for n, p in zip(names, positions):
            i = self._index.get(n)
            if i is not None:
                q[i], seen = float(p), seen + 1
        if seen < len(q):
            return  # a partial message (e.g. a gripper's own joint state): not the arm
        # No FK here: joint states come at the driver's rate (200-500 Hz), the page takes 10 states a second;
        # the polyline is computed when a state is taken (snapshot), once per new posture.
        with self._lock:
            self._q, self._t_joints = q, now

    def on_gripper(self, opening_m: float) -> None:
        with self._lock:
            self._gripper_m = float(opening_m)

    def on_detections(self, objects: dict[str, list[float]], now: float) -> None:
        """label -> position in the robot base frame [m]."""
        with self._lock:
            for label, p in objects.items():
                self._objects[label] = ([round(float(v), 4) for v in p], now)

    def on_feedback(self, active_skill: str, step_index: int, step_count: int, progress: float, state: str,
                    hold_reason: str) -> None:  # fmt: skip
        """The ExecuteTask feedback of the goal this console started."""
        with self._lock:
            self._skill = {"active": active_skill, "step_index": int(step_index), "step_count": int(step_count),
                           "progress": float(progress), "state": state, "hold_reason": hold_reason}  # fmt: skip
            steps = self._command["steps"]
            for i, s in enumerate(steps):
                if i < step_index - 1 and s["state"] in ("pending", "active"):
                    s["state"] = "done"
                elif i == step_index - 1 and s["state"] == "pending":
                    s["state"] = "active"

    def on_active_skill(self, name: str) -> None:
        """/legion/active_skill: what runs whoever started it (another operator's command included)."""
        with self._lock:
            self._skill["active"] = name

    def on_command_started(self, text: str, plan: list[str]) -> None:
        with self._lock:
            self._command = {
                "id": self._command["id"] + 1,
                "text": text,
                "phase": "running",
                "message": f"plan: {' -> '.join(plan)}",
                "plan": list(plan),
                "steps": [{"skill": s, "state": "pending", "duration_s": None} for s in plan],
            }
            if self._command["steps"]:
                self._command["steps"][0]["state"] = "active"

    def on_command_result(self, text: str, success: bool, cancelled: bool, message: str, plan: list[str],
                          step_durations_s: list[float], now: float) -> None:  # fmt: skip
        """The ExecuteTask result of the goal this console started (or the refusal of one it sent)."""
        phase = "succeeded" if success else "cancelled" if cancelled else "failed"
        with self._lock:
            c = self._command
            if plan and not c["steps"]:
                c["steps"] = [{"skill": s, "state": "pending", "duration_s": None} for s in plan]
            for i, s in enumerate(c["steps"]):
                if i < len(step_durations_s):
                    s["state"], s["duration_s"] = "done", round(float(step_durations_s[i]), 2)
                elif s["state"] == "active" or (i == len(step_durations_s) and not success):
                    s["state"] = "failed"
            c["phase"], c["message"], c["text"] = phase, message, text
            self._skill = {**self._skill, "active": "", "progress": 0.0, "state": phase, "hold_reason": ""}
            self.runs.appendleft(RunRecord(text, list(plan), phase, message, list(step_durations_s), now))

    def on_command_status(self, text: str, outcome: int, message: str, now: float) -> None:
        """/legion/command_status: refusals and outcomes of every command, whoever sent it; refusals are
        listed with the holds (the operator sees every refusal with its reason)."""
        if int(outcome) in (CommandOutcome.REFUSED, CommandOutcome.BUSY):
            with self._lock:
                self._holds.appendleft({"t": now, "reason": f"command {text!r} refused: {message}"})

    def on_safety(self, estop_latched: bool, estop_reason: str, level: int, reason: str, ready_needed: bool,
                  driver_fault: str, dead_nodes, silent_nodes, now: float) -> None:  # fmt: skip
        with self._lock:
            self._safety = {
                "estop_latched": bool(estop_latched),
                "estop_reason": estop_reason,
                "level": level_name(level),
                "reason": reason,
                "ready_needed": bool(ready_needed),
                "driver_fault": driver_fault,
                "dead_nodes": list(dead_nodes),
                "silent_nodes": list(silent_nodes),
            }
            self._t_safety = now

    def on_command_report(self, hold: bool, reason: str, now: float) -> None:
        """sim2real's command report: a hold or a refused step, with its reason (repeats are merged)."""
        if not (hold or (reason and reason != "ok")):
            return
        with self._lock:
            if self._holds and self._holds[0]["reason"] == reason:
                self._holds[0]["t"] = now
                self._holds[0]["count"] = self._holds[0].get("count", 1) + 1
            else:
                self._holds.appendleft({"t": now, "reason": reason, "count": 1})

    def on_status(self, node: str, level: int, message: str, now: float) -> None:
        with self._lock:
            self._status.appendleft({"t": now, "node": node, "level": level_name(level), "message": message})

    def on_diagnostics(self, values: dict[str, str]) -> None:
        """One sim2real_node /diagnostics status: keeps the keys the page shows."""
        with self._lock:
            self._diagnostics = {k: values[k] for k in DIAGNOSTIC_KEYS if k in values}

    def on_camera_frame(self, now: float) -> None:
        with self._lock:
            self._t_camera = now

    # -- output ----------------------------------------------------------------------------------------
    def runtime_connected(self, now: float) -> tuple[bool, str]:
        """(connected, why not): sim2real_node's SafetyState (>= 1 Hz) arrived within runtime_timeout_s."""
        if self._t_safety is None:
            return False, "no SafetyState from sim2real_node yet (is the runtime launched?)"
        age = now - self._t_safety
        if age > self.runtime_timeout_s:
            return False, f"no SafetyState from sim2real_node for {age:.1f} s (it publishes at >= 1 Hz)"
        return True, ""

    def snapshot(self, now: float | None = None, can_command: bool = False) -> dict:
        """The state message (docs/console.md): a deep enough copy to serialise outside the lock."""
        now = time.time() if now is None else now
        with self._lock:
            if self._q is not None and self._points_q is not self._q:
                self._points, self._points_q = arm_points_base_m(self._q, self.arm), self._q
            connected, why = self.runtime_connected(now)
            arm = {
                "joint_names": list(self.robot_joint_names),
                "q_rad": list(self._q) if self._q is not None else None,
                "age_s": None if self._t_joints is None else round(now - self._t_joints, 3),
                "points_base_m": self._points,
                "gripper_opening_m": self._gripper_m,
            }
            objects = [{"label": k, "pos_base_m": p, "age_s": round(now - t, 3)}
                       for k, (p, t) in sorted(self._objects.items())]  # fmt: skip
            cmd = {**self._command, "plan": list(self._command["plan"]),
                   "steps": [dict(s) for s in self._command["steps"]]}  # fmt: skip
            return {
                "type": "state",
                "t": now,
                "runtime": {
                    "connected": connected,
                    "safety_age_s": None if self._t_safety is None else round(now - self._t_safety, 3),
                    "lost_reason": why,
                },
                "auth": {
                    "can_command": bool(can_command and not self.read_only),
                    "read_only_console": self.read_only,
                },  # fmt: skip
                "arm": arm,
                "objects": objects,
                "skill": dict(self._skill),
                "command": cmd,
                "safety": dict(self._safety) if self._safety is not None else None,
                "holds": [dict(h) for h in self._holds],
                "diagnostics": dict(self._diagnostics),
                "status": [dict(s) for s in self._status],
                "camera": {
                    "available": self._t_camera is not None,
                    "age_s": None if self._t_camera is None else round(now - self._t_camera, 3),
                },  # fmt: skip
            }
