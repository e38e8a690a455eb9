"""The sim2real node's safety supervisor, without ROS (issue 6: watchdog, e-stop latch, hold).

Layers, outermost wins (docs/architecture.md): e-stop latch -> joint-state watchdog (missing, stale,
non-finite, wrong names) -> action watchdog (no fresh action) -> the mapper's own limits (box, IK, joint
position and velocity limits, Cartesian speed). `tick(now)` is called at the command rate and returns the
joint command to send (or None before the first valid joint state: nothing is sent until we know where
the arm is).

Holding means: keep sending the last command that was sent, so a position-controlled arm stops where it
was commanded to be, instead of jumping to a new target or to a stale measurement. When the cause clears,
the mapper restarts from the held command, so motion resumes without a jump.

Settle timing (mapper `timing='settle'`): the next action is taken only once the arm has reached the
previous target AND the action was computed from an observation stamped after that moment — the closest
match to the simulator, where each policy step sees the state after the previous step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sim2real.mapper import Command, Sim2RealMapper, WorkspaceError

OK, WARN, HOLD, ESTOP, ERROR = 0, 1, 2, 3, 4  # legion_msgs/RuntimeStatus levels


@dataclass
class SupervisorConfig:
    joint_state_timeout_s: float = 0.1
    """No joint state for this long [s] -> hold (driver at 200 Hz: 20 periods)."""
    action_timeout_s: float = 0.3
    """No new action for this long [s] -> hold (policy dead or starved of valid observations)."""

    def __post_init__(self) -> None:
        for nm in ("joint_state_timeout_s", "action_timeout_s"):
            v = getattr(self, nm)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{nm} must be > 0 s, got {v}")


@dataclass
class Tick:
    q_cmd: np.ndarray | None
    """Joint position command [rad, LEGION order] to send now, or None (send nothing)."""
    gripper_m: float | None
    level: int
    reason: str
    new_command: Command | None = None
    """The mapper's command when a new policy step was taken this tick (for the command report)."""
    source_stamp: float = math.nan
    """Stamp of the sensor data behind the current segment (end-to-end latency tracing)."""
    limits_hit: list[str] = field(default_factory=list)


class Supervisor:
    def __init__(self, mapper: Sim2RealMapper, config: SupervisorConfig | None = None) -> None:
        self.mapper = mapper
        self.config = config or SupervisorConfig()
        self._names_to_index = {r: i for i, r in enumerate(mapper.robot_joint_names)}
        self.q_meas: np.ndarray | None = None
        self.q_problem = "no joint state received yet"
        self.js_time = -math.inf
        self.action: np.ndarray | None = None
        self.action_time = -math.inf
        self.action_stamp = math.nan
        self.action_seq = -1
        self.used_seq = -1
        self.estop_reason = ""
        self.started = False
        self.holding = ""
        self.q_sent: np.ndarray | None = None
        self.gripper_m: float | None = None
        self.ready_since = -math.inf
        self.segment_stamp = math.nan
        self.start_error = ""
        self.active_skill: str | None = None  # None: not told (standalone); '' : no skill -> hold

    # -- inputs ----------------------------------------------------------------------------------------
    def on_joint_state(self, names, positions, now: float) -> None:
        q = np.full(7, np.nan)
        problem = ""
        if len(names) != len(positions):
            problem = f"{len(names)} joint names but {len(positions)} positions"
        else:
            seen = set()
            for n, v in zip(names, positions):
                i = self._names_to_index.get(n)
                if i is not None:
                    q[i] = float(v)
                    seen.add(n)
            missing = [n for n in self._names_to_index if n not in seen]
            if missing:
                problem = (
                    f"joint state lacks {missing} (got {list(names)}); check the calibration's joint_names"
                )
            elif not np.all(np.isfinite(q)):
                problem = f"non-finite joint positions {np.round(q, 4).tolist()}"
        self.q_problem = problem
        if not problem:
            self.q_meas = q
            self.js_time = now

    def on_action(self, action, seq: int, source_stamp: float, now: float) -> None:
        a = np.asarray(action, float)
        if a.shape != (4,):
            return  # the mapper would reject it anyway; the policy node publishes 4 values
        self.action, self.action_seq, self.action_stamp, self.action_time = a, int(seq), source_stamp, now

    def estop(self, reason: str = "e-stop input") -> None:
        if not self.estop_reason:
            self.estop_reason = reason

    def _joint_state_fresh(self, now: float) -> bool:
        return (
            self.q_meas is not None
            and not self.q_problem
            and now - self.js_time <= self.config.joint_state_timeout_s
        )

    def rearm(self, now: float) -> tuple[bool, str]:
        if not self.estop_reason:
            return True, "not latched"
        if not self._joint_state_fresh(now):
            return False, f"cannot re-arm without a fresh, valid joint state ({self.q_problem or 'stale'})"
        self.estop_reason = ""
        self._restart(self.q_sent if self.q_sent is not None else self.q_meas, now)
        return True, "re-armed"

    def set_active_skill(self, name: str) -> None:
        """'' makes the arm hold at once (cancel, plan finished); a new skill must bring fresh actions."""
        if name != self.active_skill:
            self.active_skill = name
            self.used_seq = self.action_seq  # never execute an action computed for the previous skill

    def wants_action(self, now: float) -> bool:
        """True when a tick now would start a new policy step (used to react to an action immediately)."""
        return (
            self.started
            and self.active_skill != ""
            and not self.estop_reason
            and not self.holding
            and self.q_meas is not None
            and not self.q_problem
            and self.action_seq > self.used_seq
            and self.mapper.ready_for_next_action(self.q_meas, now)
        )

    def reset_to_measured(self, now: float) -> tuple[bool, str]:
        """Forget the commanded trajectory and restart from the measured posture (after the digital twin
        was reset to a new scene, or the arm was moved by hand in a compliant mode). Never clears an
        e-stop."""
        if not self._joint_state_fresh(now):
            return False, f"cannot reset without a fresh, valid joint state ({self.q_problem or 'stale'})"
        self.q_sent = self.q_meas.copy()
        self.holding = ""
        self._restart(self.q_meas, now)
        return self.started, "restarted from the measured posture" if self.started else self.start_error

    # -- control step ------------------------------------------------------------------------------------
    def _restart(self, q: np.ndarray, now: float) -> None:
        try:
            self.mapper.reset(q, now)
            self.started = True
            self.start_error = ""
        except WorkspaceError as e:
            self.started = False
            self.start_error = str(e)
        self.used_seq = self.action_seq  # never replay an action from before the restart
        self.ready_since = -math.inf

    def _hold(self, level: int, reason: str) -> Tick:
        if not self.holding:
            self.holding = reason
        self.holding = reason
        return Tick(self.q_sent, self.gripper_m, level, f"holding: {reason}", source_stamp=self.segment_stamp)

    def tick(self, now: float) -> Tick:
        cfg = self.config
        if self.q_sent is None and self.q_meas is None:
            return Tick(None, None, WARN, f"waiting for joint states ({self.q_problem})")
        if self.q_sent is None:
            # First valid joint state: the first command is where the arm is.
            self.q_sent = self.q_meas.copy()
            self._restart(self.q_meas, now)
        if self.estop_reason:
            return self._hold(ESTOP, f"e-stop latched ({self.estop_reason}); re-arm via the rearm service")
        if self.q_problem:
            return self._hold(HOLD, f"invalid joint state: {self.q_problem}")
        if now - self.js_time > cfg.joint_state_timeout_s:
            return self._hold(
                HOLD, f"no joint state for {now - self.js_time:.3f} s (timeout {cfg.joint_state_timeout_s} s)"
            )
        if not self.started:
            self._restart(self.q_sent, now)
            if not self.started:
                return self._hold(ERROR, self.start_error)
        if self.active_skill == "":
            return self._hold(HOLD, "no active skill (sequencer idle, finished or cancelled)")
        if not math.isfinite(self.action_time):
            return self._hold(HOLD, "no action yet: waiting for the policy (is a skill active?)")
        if now - self.action_time > cfg.action_timeout_s:
            return self._hold(
                HOLD, f"no action for {now - self.action_time:.3f} s (timeout {cfg.action_timeout_s} s)"
            )
        if self.holding:
            # The cause cleared: restart the mapper from the held command (no jump), then continue.
            self.holding = ""
            self._restart(self.q_sent, now)
            if not self.started:
                return self._hold(ERROR, self.start_error)
        new_cmd = None
        ready = self.mapper.ready_for_next_action(self.q_meas, now)
        if ready and not math.isfinite(self.ready_since):
            self.ready_since = now
        if not ready:
            self.ready_since = -math.inf
        settle = self.mapper.config.timing == "settle"
        fresh_enough = (not settle) or (
            math.isfinite(self.action_stamp) and self.action_stamp >= self.ready_since
        )
        if ready and self.action_seq > self.used_seq and fresh_enough:
            new_cmd = self.mapper.map(self.action, self.q_meas, now)
            self.used_seq = self.action_seq
            self.ready_since = -math.inf
            self.gripper_m = new_cmd.gripper
            self.segment_stamp = self.action_stamp
        q = self.mapper.interpolate(now)
        self.q_sent = q
        level = OK if new_cmd is None or not new_cmd.hold else WARN
        reason = "ok" if new_cmd is None else new_cmd.reason
        return Tick(
            q,
            self.gripper_m,
            level,
            reason,
            new_cmd,
            self.segment_stamp,
            list(new_cmd.limits_hit) if new_cmd else [],
        )
