"""The sim2real node's safety supervisor, without ROS: e-stop latch, watchdogs, liveness, hold.

Layers, outermost wins (docs/architecture.md, "Safety layer"):

1. e-stop latch (topic, service, hardware input): hold; only `rearm` clears it, and re-arming never
   restarts motion (IEC 60204-1: resetting a stop must not restart the machine): the skill is cleared,
   nothing moves until a new skill is started by an operator command.
2. driver interlock (sim2real.preflight, gathered by the node): while the driver is not ready (wrong
   controller active, nothing subscribed to the command topic, FRI not commanding, ...) nothing is sent
   before the first command, and a running arm holds with its skill cleared.
3. joint-state watchdog: missing, malformed, non-finite, stale by ARRIVAL or by STAMP, stamped in the
   future: hold. When the runtime itself stalled (this supervisor's tick ran late), the hold says so
   instead of blaming the driver.
4. tracking error (measured vs commanded beyond its bound: a blocked or pushed arm, a wrong joint order),
   and the contact guard (the driver's estimated external wrench beyond the skill's bound): hold at the
   measured posture and clear the skill (a fault: an operator restarts).
5. liveness of the control-path nodes (policy, real2sim, sequencer heartbeats): a node silent for two of
   its periods -> hold; silent for `dead_after_s` -> dead: skill cleared, only a new command restarts.
6. no active skill / invalid observation (real2sim says why) / no fresh action: hold.
7. the mapper's own limits (box, IK, joint position and velocity limits, Cartesian speed).

`tick(now)` is called at the command rate and returns the joint command to send (or None before the first
valid joint state: nothing is sent until we know where the arm is). Every command obeys the joint speed
limit from the last one sent, for the time since it was sent and at most one period's step (no catch-up
jump after a stall).

Holding means: keep sending the last command that was sent, so a position-controlled arm stops where it
was commanded to be (the running segment is cut, not finished), instead of jumping to a new target or to a
stale measurement. A tracking-error fault instead steps the command to the measured posture (rate-limited),
so that a blocked arm is no longer pushed. When a transient cause clears (stale input, a late heartbeat),
the mapper restarts from the held command, so motion resumes without a jump.

Settle timing (mapper `timing='settle'`): the next action is taken only once the arm has reached the
previous target AND the action was computed from an observation stamped after that moment — the closest
match to the simulator, where each policy step sees the state after the previous step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from legion_core.contracts.interface import READY_SKILL, StatusLevel
from sim2real.mapper import Command, ReadyMove, Sim2RealMapper, WorkspaceError, step_limited

# Short names for the legion_msgs/RuntimeStatus levels of every Tick (legion_core.contracts.interface).
OK, WARN, HOLD, ESTOP, ERROR = (
    StatusLevel.OK,
    StatusLevel.WARN,
    StatusLevel.HOLD,
    StatusLevel.ESTOP,
    StatusLevel.ERROR,
)
ESTOP_LATCHED = "e-stop latched"  # the words every refusal while latched starts with


@dataclass
class SupervisorConfig:
    joint_state_timeout_s: float = 0.1
    """Hold when the newest joint state ARRIVED longer ago than this, or is STAMPED older than this [s]
    (driver at 200 Hz: 20 periods)."""
    action_timeout_s: float = 0.3
    """No new action for this long [s] -> hold (policy starved of valid observations)."""
    max_future_s: float = 0.05
    """Joint states stamped more than this [s] ahead of the node clock are refused (unsynchronised clocks)."""
    max_tracking_error_rad: float = 0.2
    """Measured joint angle further than this [rad] from the command sent = a fault (blocked or pushed arm,
    wrong joint order): hold at the measured posture and clear the skill. Why 0.2: at the shipped
    joint_vel_scale 0.5 the fastest axis moves at most 0.016 rad per 10 ms command period, so a tracking
    lag of even 10 periods stays under it; the largest error seen while running is in sim2real's diagnostics
    (`tracking_error_max_rad`) for a cell to check its own arm against."""
    runtime_stall_s: float = 0.05
    """This supervisor's own tick running later than this [s] after the previous one is a stall of the
    runtime (host, GC, scheduling): counted, and a joint-state hold that follows it is reported as the
    runtime's stall, not as a silent driver."""
    stall_attribution_s: float = 1.0
    """After this node's own stall, a joint-state hold is reported as the runtime's stall (not a silent
    driver) for up to this long [s] while no joint state has been read since the stall ended: on a loaded
    host the resumed process's input thread can be starved for several periods (seen: over 0.25 s under
    `stress-ng --cpu 2`). The hold itself is the same either way; only its reason differs."""
    liveness_periods: float = 2.0
    """A watched node is silent (hold) after missing this many of its own heartbeat periods [-]."""
    dead_after_s: float = 1.0
    """A watched node silent for this long [s] is dead: the skill is cleared, and after it comes back
    (respawn) only a new command moves the arm. The hold itself comes after two periods; this only decides
    when a silence is a death (0.5 s was reached by live nodes on a saturated 2-core machine)."""
    max_contact_force_N: float = 150.0
    """Contact guard: an estimated external force on the arm and tool above this [N] for `contact_persist_s`
    (the driver's wrench estimate, e.g. lbr_fri_ros2_stack's force_torque_broadcaster; the twin's from
    MuJoCo's contacts) holds the arm at the measured posture and clears the skill; the calibration's
    `contact_limits` set it per skill. 0 = off. Why 150: on the twin the shipped drawer skills push with
    at most 15 / 91 N sustained over 0.1 s (button-press-topdown 306 N: its own limit in the calibration),
    and an arm driven into the drawer front passes 150 N within ~3 s (docs/robot-integration.md,
    "Contact guard")."""
    max_contact_torque_Nm: float = 25.0
    """Contact guard: an estimated external torque about the flange above this [N m] for `contact_persist_s`
    holds likewise (0 = off; the shipped skills: at most 13 N m sustained)."""
    contact_persist_s: float = 0.1
    """A bound must be exceeded this long [s] without a break: a contact impulse is not a push (the twin's
    single-sample peaks reach 315 N where 0.1 s sustained stays at 306 N, 53 vs 15 N for drawer-open)."""
    hw_estop_timeout_s: float = 0.0
    """A hardware e-stop input that has been seen and then stays silent this long [s] latches the e-stop
    (a broken wire must stop the arm); 0 = do not watch the input's liveness."""

    def __post_init__(self) -> None:
        for nm in ("joint_state_timeout_s", "action_timeout_s", "max_tracking_error_rad", "runtime_stall_s",
                   "stall_attribution_s", "liveness_periods", "dead_after_s"):  # fmt: skip
            v = getattr(self, nm)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{nm} must be a finite number > 0, got {v}")
        for nm in ("max_future_s", "hw_estop_timeout_s", "max_contact_force_N", "max_contact_torque_Nm",
                   "contact_persist_s"):  # fmt: skip
            v = getattr(self, nm)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{nm} must be a finite number >= 0, got {v}")


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


@dataclass
class _Watched:
    """Heartbeat bookkeeping of one control-path node."""

    period_s: float
    last_beat: float
    """When the node last beat [s]: the heartbeat's stamp (so DDS delivery does not extend the deadline),
    or its arrival for a stamp that cannot be right."""
    sequence: int
    dead: bool = False


class Supervisor:
    def __init__(self, mapper: Sim2RealMapper, config: SupervisorConfig | None = None) -> None:
        self.mapper = mapper
        self.config = config or SupervisorConfig()
        self._names_to_index = {r: i for i, r in enumerate(mapper.robot_joint_names)}
        mc = mapper.config
        # Per-period joint step limit [rad]: the mapper plans every segment within it; `tick` enforces it
        # on what is actually sent (a late tick must not jump to where the trajectory should be by now).
        self.dq_max_per_period = mapper.joint_vel_limits_rad_s * mc.command_period_s
        self.q_meas: np.ndarray | None = None
        self.q_problem = "no joint state received yet"
        self.js_time = -math.inf
        self.js_stamp = -math.inf
        self.action: np.ndarray | None = None
        self.action_time = -math.inf
        self.action_stamp = math.nan
        self.action_seq = -1
        self.used_seq = -1
        self.estop_reason = ""
        self.hw_estop_pressed = False
        self.hw_estop_time = -math.inf
        self.driver_fault = ""  # why the driver is not ready ('' = ready, or not checked by this owner)
        self.driver_fault_severe = False
        self.contact_force_N = 0.0  # newest estimated external force / torque magnitudes
        self.contact_torque_Nm = 0.0
        self.contact_force_max_N = 0.0  # largest seen while no contact fault held (diagnostics)
        self.contact_over_since = math.inf  # when the bounds were first exceeded without a break [s]
        self._contact_holding = False
        self.contact_limits: dict[
            str, tuple[float, float]
        ] = {}  # skill -> (force N, torque N m), calibration's
        self.ready: ReadyMove | None = None  # the ready move in progress (active skill READY_SKILL)
        self.ready_state = ""  # '' | 'moving' | 'reached' | 'refused: why' (the last ready move's)
        # The posture the ready move goes to when a client gave one (set_ready_target); None: the ready posture.
        self.ready_target: np.ndarray | None = None
        self.started = False
        self.holding = ""
        self.q_sent: np.ndarray | None = None
        self.t_sent = -math.inf  # when q_sent was computed [s]
        self.q_hold_target: np.ndarray | None = None
        self.gripper_m: float | None = None
        self.ready_since = -math.inf
        self.segment_stamp = math.nan
        self.start_error = ""
        self.active_skill: str | None = None  # None: not told (standalone); '' : no skill -> hold
        self.skill_cleared_by = ""
        self.obs_valid: bool | None = None  # None: no observation seen (no real2sim in this graph)
        self.obs_reason = ""
        self.watched: dict[str, _Watched] = {}
        self.last_tick = math.nan
        self.last_stall_s = 0.0
        self.stall_end = -math.inf
        self.stalls = 0
        self.tracking_error_rad = 0.0
        self.tracking_error_max_rad = (
            0.0  # largest seen while no fault held (diagnostics: is the bound sane?)
        )

    # -- inputs ----------------------------------------------------------------------------------------
    def on_joint_state(self, names, positions, stamp: float, now: float) -> bool:
        """A joint state (robot names, any order) stamped `stamp` [s] arriving at `now` [s] (same clock).
        Returns True when it newly makes the supervisor hold (the node then ticks at once, so the hold is
        sent at the first bad message, not at the next timer tick)."""
        q = np.full(7, np.nan)
        problem = ""
        cfg = self.config
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
        if not problem:
            stamp = float(stamp)
            if not (math.isfinite(stamp) and stamp > 0):
                problem = f"joint state has no valid header stamp ({stamp}); the driver must stamp them"
            elif now - stamp > cfg.joint_state_timeout_s and (
                now - self.stall_end <= cfg.stall_attribution_s
                or (math.isfinite(self.last_tick) and now - self.last_tick > cfg.runtime_stall_s)
            ):
                # The backlog of a stream this node could not read while it stalled (seen by the last tick, or
                # not yet: no tick has run for longer than a stall either): the runtime's delay.
                stall_s = max(self.last_stall_s if now - self.stall_end <= cfg.stall_attribution_s else 0.0,
                              now - self.last_tick if math.isfinite(self.last_tick) else 0.0)  # fmt: skip
                problem = (
                    f"joint state stamped {now - stamp:.3f} s ago, read after this node's {stall_s:.3f} s "
                    "stall (host or runtime, not the driver)"
                )
            elif now - stamp > cfg.joint_state_timeout_s:
                problem = (
                    f"joint state stamped {now - stamp:.3f} s ago (> {cfg.joint_state_timeout_s} s): "
                    "the driver's data is late or its clock is behind"
                )
            elif stamp - now > cfg.max_future_s:
                problem = (
                    f"joint state stamped {stamp - now:.3f} s in the future (> {cfg.max_future_s} s): "
                    "synchronise the driver's clock with this PC's"
                )
        newly_bad = bool(problem) and not self.q_problem
        self.q_problem = problem
        if not problem:
            self.q_meas = q
            self.js_time = now
            self.js_stamp = float(stamp)
        return newly_bad

    def on_action(self, action, seq: int, source_stamp: float, now: float) -> None:
        a = np.asarray(action, float)
        if a.shape != (4,):
            return  # the mapper would reject it anyway; the policy node publishes 4 values
        self.action, self.action_seq, self.action_stamp, self.action_time = a, int(seq), source_stamp, now

    def on_observation(self, valid: bool, reason: str) -> bool:
        """real2sim's verdict on the newest observation. An invalid one holds the arm at once (the policy
        will not act on it, and the segment in flight must not be finished on data the runtime no longer
        trusts). Returns True when it newly makes the supervisor hold."""
        newly_bad = (not valid) and self.obs_valid is not False
        self.obs_valid, self.obs_reason = bool(valid), reason
        return newly_bad

    def on_heartbeat(
        self, node: str, period_s: float, sequence: int, now: float, stamp: float = math.nan
    ) -> str:
        """A heartbeat of a control-path node stamped `stamp` [s] arriving at `now` [s] (watched from its first
        heartbeat on). The deadline runs from the stamp: a node killed right after a beat is held within
        two of its periods plus one command period, however long the beat took to arrive. Returns a line for
        the operator when something changed (a restart, a dead node back), else ''."""
        w = self.watched.get(node)
        if not (math.isfinite(period_s) and period_s > 0):
            return f"ignoring heartbeat of {node}: period {period_s} s is not > 0"
        beat = now
        if math.isfinite(stamp) and now - self.config.dead_after_s <= stamp <= now + self.config.max_future_s:
            beat = min(stamp, now)
        if w is None:
            self.watched[node] = _Watched(float(period_s), beat, int(sequence))
            return f"watching {node} (heartbeat every {period_s:.3f} s)"
        note = ""
        if w.dead:
            note = f"{node} is alive again; the arm stays held until a new command starts a skill"
        elif sequence <= w.sequence:
            note = f"{node} restarted (heartbeat sequence {w.sequence} -> {sequence})"
            self._clear_skill(f"{node} restarted")
        w.period_s, w.last_beat, w.sequence, w.dead = (
            float(period_s),
            max(w.last_beat, beat),
            int(sequence),
            False,
        )
        return note

    def contact_bounds(self) -> tuple[float, float]:
        """(force [N], torque [N m]) bounds of the contact guard for the active skill (0 = off)."""
        c = self.config
        return self.contact_limits.get(
            self.active_skill or "", (c.max_contact_force_N, c.max_contact_torque_Nm)
        )

    def on_wrench(self, force_N: float, torque_Nm: float, now: float) -> bool:
        """The driver's estimated external wrench magnitudes [N, N m] arriving at `now` [s]. Returns True
        when they have newly been over the active skill's bounds for `contact_persist_s` (the node ticks at
        once, so the hold goes out now)."""
        self.contact_force_N, self.contact_torque_Nm = float(force_N), float(torque_Nm)
        if self._over_bounds():
            self.contact_over_since = min(self.contact_over_since, now)
        else:
            self.contact_over_since = math.inf
            self.contact_force_max_N = max(self.contact_force_max_N, self.contact_force_N)
        holding = bool(self._contact_problem(now))
        newly, self._contact_holding = holding and not self._contact_holding, holding
        return newly

    def _over_bounds(self) -> str:
        f_max, t_max = self.contact_bounds()
        f, t = self.contact_force_N, self.contact_torque_Nm
        if not (math.isfinite(f) and math.isfinite(t)):
            return f"estimated external wrench not finite ({f}, {t})"
        if f_max > 0 and f > f_max:
            return f"contact force {f:.1f} N > {f_max:g} N"
        if t_max > 0 and t > t_max:
            return f"contact torque {t:.1f} N m > {t_max:g} N m"
        return ""

    def _contact_problem(self, now: float) -> str:
        """Why the contact guard holds ('' = it does not): over the bounds for contact_persist_s."""
        if now - self.contact_over_since < self.config.contact_persist_s:
            return ""
        return self._over_bounds()

    def estop(self, reason: str = "e-stop topic") -> bool:
        """Latch the e-stop (idempotent: the first reason is kept). Clears the skill: after re-arm nothing
        moves until a new command. Returns True when it newly latched."""
        self._clear_skill("e-stop")
        if self.estop_reason:
            return False
        self.estop_reason = reason
        return True

    def on_hw_estop(self, pressed: bool, now: float) -> bool:
        """The hardware e-stop input (level: True while pressed). Returns True when it newly latched."""
        self.hw_estop_pressed, self.hw_estop_time = bool(pressed), now
        return self.estop("hardware e-stop input") if pressed else False

    def set_driver_fault(self, reason: str, severe: bool = True) -> bool:
        """The driver interlock (sim2real.preflight): '' = ready. A `severe` fault (wrong controller, nothing
        subscribed, FRI not commanding) clears a running skill (a controller switched away mid-motion must not
        resume by itself when it is switched back) and refuses new ones; a mild one (the checks still
        running, a driver that paused its stream) only holds. Returns True when it newly makes the
        supervisor hold."""
        newly = bool(reason) and not self.driver_fault
        if reason and severe and self.active_skill:
            self._clear_skill("driver not ready")
        self.driver_fault, self.driver_fault_severe = reason, bool(reason) and severe
        return newly

    def _joint_state_fresh(self, now: float) -> str:
        """'' when the newest joint state is valid and fresh by arrival AND by stamp, else why not."""
        cfg = self.config
        if self.q_meas is None or self.q_problem:
            return self.q_problem or "no joint state received yet"
        if now - self.js_time > cfg.joint_state_timeout_s:
            return f"no joint state for {now - self.js_time:.3f} s"
        if now - self.js_stamp > cfg.joint_state_timeout_s:
            return f"newest joint state stamped {now - self.js_stamp:.3f} s ago"
        return ""

    def rearm(self, now: float) -> tuple[bool, str]:
        """Clear the e-stop latch. Only on a fresh (by stamp and arrival), valid, in-limit joint state and a
        released hardware input; the skill stays cleared, so the arm holds until a new command."""
        if not self.estop_reason:
            return True, "not latched"
        if self.hw_estop_pressed:
            return False, "cannot re-arm: the hardware e-stop input is still pressed; release it first"
        stale = self._joint_state_fresh(now)
        if stale:
            return False, f"cannot re-arm without a fresh, valid joint state ({stale})"
        q = self.q_meas
        q_low, q_high = self.mapper.joint_limits_rad
        if np.any(q < q_low) or np.any(q > q_high):
            return False, f"cannot re-arm: measured q {np.round(q, 3).tolist()} is outside the joint limits"
        self.estop_reason = ""
        self.q_hold_target = None
        self._restart(self.q_sent if self.q_sent is not None else q, now)
        return True, "re-armed: holding until a new command starts a skill"

    def set_active_skill(self, name: str) -> tuple[bool, str]:
        """'' makes the arm hold at once (cancel, plan finished); a new skill must bring fresh actions.
        Refused while the e-stop is latched or a watched node is dead (a stop is never refused)."""
        if name and self.estop_reason:
            return False, f"{ESTOP_LATCHED} ({self.estop_reason}): skill {name!r} refused"
        dead = self.dead_nodes()
        if name and dead:
            return False, f"skill {name!r} refused: {', '.join(dead)} not alive"
        if name and self.driver_fault_severe:
            return False, f"skill {name!r} refused: {self.driver_fault}"
        if name != self.active_skill:
            if name == READY_SKILL:
                self.ready_state = ""  # a new ready move: planned at the next tick from the command sent
            self.ready = None
            self.ready_target = None  # a target is given for one activation of `ready` only
            self.active_skill = name
            self.used_seq = self.action_seq  # never execute an action computed for the previous skill
        if name:
            self.skill_cleared_by = ""
        return True, f"active skill {name!r}"

    def set_ready_target(self, names, positions, now: float) -> tuple[bool, str]:
        """A target posture for the ready move (docs/robot-integration.md, "The ready move"): `positions`
        [rad] by the driver's joint `names` (any order), or all 7 in the driver's order when `names` is
        empty. Accepted only while the active skill is READY_SKILL, nothing holds the arm and no ready move
        is under way; planned at once from the command sent (mapper.plan_target: the ready move's profile
        and speed, joint limits with margin, workspace box and table floor along the path), so that a
        refusal comes back to the caller with its reason and nothing moves. Accepted: the move starts now
        and `ready_state` goes 'moving', then 'reached'."""
        skill = self.active_skill
        if self.estop_reason:
            return False, f"{ESTOP_LATCHED} ({self.estop_reason}): ready target refused"
        if skill != READY_SKILL:
            return False, (
                f"ready target refused: the active skill is {skill or 'none'!r}, not {READY_SKILL!r}: "
                f"start {READY_SKILL!r} first (a target is never taken while a skill runs)"
            )
        if self.driver_fault:
            return False, f"ready target refused: {self.driver_fault}"
        if self.q_sent is None or self.q_meas is None or self.q_problem:
            return False, f"ready target refused: no valid joint state yet ({self.q_problem or 'none'})"
        if self.holding:
            return False, f"ready target refused: holding ({self.holding})"
        if self.ready_state == "moving" and self.ready is not None and self.ready.fraction(now) < 1.0:
            # Once its profile has ended, a move whose arm did not arrive (blocked) may be replaced: the new
            # move starts from the command sent, at zero speed, with every check.
            return False, (
                f"ready target refused: a ready move is under way ({self.ready.fraction(now):.0%} of "
                f"{self.ready.duration_s:.1f} s); wait until it is reached"
            )
        names, positions = list(names), list(positions)
        if names:
            if len(names) != len(positions):
                return False, f"ready target refused: {len(names)} joint names but {len(positions)} positions"
            unknown = [n for n in names if n not in self._names_to_index]
            missing = [n for n in self._names_to_index if n not in names]
            if unknown or missing or len(set(names)) != len(names):
                return False, (
                    f"ready target refused: joint_names must name each of {list(self._names_to_index)} once "
                    f"(unknown {unknown}, missing {missing}); or leave joint_names empty and give 7 positions "
                    "in the driver's order"
                )
            q = np.full(len(self._names_to_index), np.nan)
            for n, v in zip(names, positions):
                q[self._names_to_index[n]] = float(v)
        else:
            q = np.asarray(positions, float)
        try:
            move = self.mapper.plan_target(self.q_sent, q, now)
        except (WorkspaceError, ValueError) as e:
            return False, str(e)
        self.ready, self.ready_target, self.ready_state = move, move.q_target.copy(), "moving"
        return True, f"ready target accepted: a {move.duration_s:.1f} s move"

    def _clear_skill(self, why: str) -> None:
        if self.active_skill != "":
            self.skill_cleared_by = why
        self.active_skill = ""
        self.used_seq = self.action_seq

    def wants_action(self, now: float) -> bool:
        """True when a tick now would start a new policy step (used to react to an action immediately)."""
        return (
            self.started
            and self.active_skill != ""
            and not self.estop_reason
            and not self.holding
            and self.obs_valid is not False
            and self.q_meas is not None
            and not self.q_problem
            and self.action_seq > self.used_seq
            and self.mapper.ready_for_next_action(self.q_meas, now)
        )

    def reset_to_measured(self, now: float) -> tuple[bool, str]:
        """Forget the commanded trajectory and restart from the measured posture (after the digital twin
        was reset to a new scene, or the arm was moved by hand in a compliant mode). Refused while the
        e-stop is latched."""
        if self.estop_reason:
            return False, f"{ESTOP_LATCHED} ({self.estop_reason}): reset refused; re-arm first"
        stale = self._joint_state_fresh(now)
        if stale:
            return False, f"cannot reset without a fresh, valid joint state ({stale})"
        self.q_sent = self.q_meas.copy()
        self.q_hold_target = None
        self.holding = ""
        self._restart(self.q_meas, now)
        return self.started, "restarted from the measured posture" if self.started else self.start_error

    # -- state for the operator ------------------------------------------------------------------------
    def silent_nodes(self, now: float) -> list[str]:
        lim = self.config.liveness_periods
        return sorted(
            n for n, w in self.watched.items() if not w.dead and now - w.last_beat > lim * w.period_s
        )

    def dead_nodes(self) -> list[str]:
        return sorted(n for n, w in self.watched.items() if w.dead)

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

    def _limited(self, q: np.ndarray, now: float) -> np.ndarray:
        """`q` moved from the last command sent by no more than the joint speed limit allows for the time
        since it was sent, and never more than one period's step (a tick after a stall must not jump to
        where the trajectory should be by now; an extra event-driven tick right after a timer tick must not
        add a second full step): sim2real.mapper.step_limited."""
        if self.q_sent is None:
            return q
        return step_limited(
            q, self.q_sent, now, self.t_sent, self.dq_max_per_period, self.mapper.config.command_period_s
        )

    def _hold(self, level: int, reason: str) -> Tick:
        self.holding = reason
        self.ready = None  # an interrupted ready move is planned anew from where it stopped
        if self.q_hold_target is not None and self.q_sent is not None:
            self.q_sent = self._limited(self.q_hold_target, self.last_tick)
            self.t_sent = self.last_tick
        return Tick(self.q_sent, self.gripper_m, level, f"holding: {reason}", source_stamp=self.segment_stamp)

    def _check_liveness(self, now: float) -> tuple[int, str] | None:
        cfg = self.config
        lines = []
        for n, w in sorted(self.watched.items()):
            silent = now - w.last_beat
            if w.dead:
                continue
            if silent > cfg.dead_after_s:
                w.dead = True
                self._clear_skill(f"{n} died")
                lines.append(f"{n} dead: no heartbeat for {silent:.3f} s")
            elif silent > cfg.liveness_periods * w.period_s:
                lines.append(f"{n} silent for {silent:.3f} s (heartbeat period {w.period_s:.3f} s)")
        dead = self.dead_nodes()
        if dead and not lines:
            lines.append(f"{', '.join(dead)} dead; a new command is needed once it is back")
        elif dead:
            lines.append(f"dead: {', '.join(dead)}")
        return (HOLD, "; ".join(lines)) if lines else None

    def tool_orientation_error_rad(self) -> float | None:
        """How far [rad] the measured tool orientation is from the policy's (None: no valid joint state)."""
        if self.q_meas is None or self.q_problem:
            return None
        return self.mapper.tool_orientation_error_rad(self.q_meas)

    def ready_needed(self, err: float | None = None) -> bool:
        """The measured tool orientation is not the policy's (a posture the policy never saw, e.g. the
        driver's home): the ready move must come first, or every action would be refused by the IK. `err`:
        `tool_orientation_error_rad()` when the caller has it already."""
        err = self.tool_orientation_error_rad() if err is None else err
        return err is not None and err > self.mapper.config.ik_max_orientation_err_rad

    def _ready_tick(self, now: float) -> Tick:
        """The ready move (mapper.plan_ready): no policy, a slow joint-space move; `ready_state` says where
        it is. On arrival the mapper restarts from the ready posture and the arm holds until the next skill."""
        if self.ready is None and self.ready_state != "reached":
            try:
                if self.ready_target is None:
                    self.ready = self.mapper.plan_ready(self.q_sent, now)
                else:  # an interrupted move to a given target: planned anew, with the same checks
                    self.ready = self.mapper.plan_target(self.q_sent, self.ready_target, now)
            except (WorkspaceError, ValueError) as e:
                self.ready_state = f"refused: {e}"
                self._clear_skill("ready move refused")
                return self._hold(HOLD, str(e))
            self.ready_state = "moving"
        self.holding = ""
        at = "ready: at the ready posture" if self.ready_target is None else "ready: at the target posture"
        if self.ready_state == "reached":
            return Tick(self.q_sent, self.gripper_m, OK, f"{at}, waiting for a skill")
        move = self.ready
        q = self._limited(move.at(now), now)
        self.q_sent, self.t_sent = q, now
        arrived = float(np.max(np.abs(self.q_meas - move.q_target))) <= self.mapper.config.ready_tolerance_rad
        if move.fraction(now) >= 1.0 and arrived:
            self.ready_state = "reached"
            self.q_sent = move.q_target.copy()
            self._restart(self.q_sent, now)
            return Tick(self.q_sent, self.gripper_m, OK, f"{at}, waiting for a skill")
        return Tick(q, self.gripper_m, OK, f"ready move: {move.fraction(now):.0%} of {move.duration_s:.1f} s")

    def tick(self, now: float) -> Tick:
        cfg = self.config
        gap = now - self.last_tick if math.isfinite(self.last_tick) else 0.0
        self.last_tick = now
        if self.q_sent is None and self.driver_fault:
            # Never commanded: nothing goes out until the driver is ready (its own controller holds the arm).
            return Tick(None, None, HOLD, f"not commanding: {self.driver_fault}")
        if self.q_sent is None and self.q_meas is None:
            return Tick(None, None, WARN, f"waiting for joint states ({self.q_problem})")
        if self.q_sent is None:
            # First valid joint state: the first command is where the arm is.
            self.q_sent = self.q_meas.copy()
            self._restart(self.q_meas, now)
        if (
            cfg.hw_estop_timeout_s > 0
            and math.isfinite(self.hw_estop_time)
            and now - self.hw_estop_time > cfg.hw_estop_timeout_s
        ):
            self.estop(f"hardware e-stop input silent for {now - self.hw_estop_time:.3f} s")
        if self.estop_reason:
            return self._hold(
                ESTOP,
                f"{ESTOP_LATCHED} ({self.estop_reason}); re-arm via the rearm service, then a new command",
            )
        if self.driver_fault:
            return self._hold(HOLD, self.driver_fault)
        if gap > cfg.runtime_stall_s:
            # The runtime itself stalled (host, GC, a long callback in this process). Not a hold by itself:
            # the inputs decide (a joint state read before the stall is now old, by arrival and stamp), but
            # a hold that follows is told apart from a silent driver, and the command sent next is still
            # within the joint speed limit of the last one (`_limited`).
            self.stalls += 1
            self.last_stall_s, self.stall_end = gap, now
        if self.q_problem:
            return self._hold(HOLD, f"invalid joint state: {self.q_problem}")
        if now - self.js_time > cfg.joint_state_timeout_s:
            since_stall = now - self.stall_end
            unread = self.js_time <= self.stall_end  # nothing read since this node resumed
            if since_stall <= cfg.joint_state_timeout_s or (
                unread and since_stall <= cfg.stall_attribution_s
            ):
                return self._hold(
                    HOLD, f"runtime stall: this node's command cycle ran {self.last_stall_s:.3f} s late (host or "
                    "runtime, not the driver); joint states not read since",
                )  # fmt: skip
            return self._hold(
                HOLD,
                f"no joint state for {now - self.js_time:.3f} s (timeout {cfg.joint_state_timeout_s} s): driver "
                "silent?",
            )
        err = float(np.max(np.abs(self.q_meas - self.q_sent)))
        self.tracking_error_rad = err
        if err <= cfg.max_tracking_error_rad:
            self.tracking_error_max_rad = max(self.tracking_error_max_rad, err)
        if err > cfg.max_tracking_error_rad:
            i = int(np.argmax(np.abs(self.q_meas - self.q_sent)))
            self.q_hold_target = self.q_meas.copy()
            self._clear_skill("tracking error")
            return self._hold(
                HOLD,
                f"tracking error: A{i + 1} measured {err:.3f} rad from the command (bound "
                f"{cfg.max_tracking_error_rad} rad): blocked or pushed arm? holding at the measured posture",
            )
        contact = self._contact_problem(now)
        if contact:
            # Pushing harder than the skill may (stuck in the drawer, an obstacle, a person): stop pushing, as
            # for a tracking fault, and let an operator decide (a new command).
            self.q_hold_target = self.q_meas.copy()
            skill = self.active_skill
            self._clear_skill("contact guard")
            return self._hold(
                HOLD, f"contact guard: {contact}{f' during {skill}' if skill else ''} (estimated external wrench): "
                "blocked or pushing too hard? holding at the measured posture",
            )  # fmt: skip
        live = self._check_liveness(now)
        if live is not None:
            return self._hold(*live)
        if self.active_skill == READY_SKILL:
            return self._ready_tick(now)
        if not self.started:
            self._restart(self.q_sent, now)
            if not self.started:
                return self._hold(ERROR, self.start_error)
        if self.active_skill == "":
            why = f" (cleared by {self.skill_cleared_by})" if self.skill_cleared_by else ""
            return self._hold(HOLD, f"no active skill{why}: waiting for a command")
        if self.obs_valid is False:
            return self._hold(HOLD, f"observation invalid: {self.obs_reason}")
        if not math.isfinite(self.action_time):
            return self._hold(HOLD, "no action yet: waiting for the policy (is a skill active?)")
        if now - self.action_time > cfg.action_timeout_s:
            return self._hold(
                HOLD, f"no action for {now - self.action_time:.3f} s (timeout {cfg.action_timeout_s} s)"
            )
        if self.holding:
            # The cause cleared: restart the mapper from the held command (no jump), then continue.
            self.holding = ""
            self.q_hold_target = None
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
        q = self._limited(self.mapper.interpolate(now), now)
        self.q_sent, self.t_sent = q, now
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
