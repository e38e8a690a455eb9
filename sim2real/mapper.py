"""Policy action -> safe joint position command for the iiwa. Pure Python, no ROS.

The safety layers, outermost first (docs/architecture.md, "Safety layer"), each reported in
`Command.limits_hit` when it acts:

  action clamp to [-1, 1] (non-finite xyz -> hold)                     action_clamp / action_nonfinite
  dxyz = action * scale (0.01 m per policy step: Meta-World's action scale, sim_world axes)
  target = reference + dxyz (reference: last target or measured tool)  target_lead (last_target leash)
  clamp to the training workspace box (sim_world box from the bundle)   workspace_box
  Cartesian speed bound on the target (default 0.1 m/s, the LBR twist default)   cartesian_speed
  IK, warm-started from the measured q, a few iterations, flange down
  IK residual check (position and orientation)                          ik_residual (hold or best effort)
  joint position limits with a margin                                   joint_limit
  per-joint velocity limit over the segment                             joint_velocity
  final FK check of the emitted target (box, Cartesian step)            fk_check (step shortened / hold)

Invariants (tests/unit/test_mapper_properties.py checks them on thousands of random inputs): whatever the
action, measured joint state or time, an emitted target is finite, inside the joint limits, reached from
the previous target within the velocity limits (also for every `interpolate` step), and puts the tool
inside the workspace box (+ `box_tolerance_m`) with a tool step within the Cartesian speed bound
(+ `cartesian_tolerance_m`). How: every candidate is checked by FK before it is
emitted, and the fallback is always the previous target, which passed the same checks (induction from
`reset`, which refuses a start posture outside the box).

Timing modes:
- `settle`: one segment per action, as fast as the limits allow; the next action is due when the arm has
  reached the target (`ready_for_next_action`) or after `settle_timeout_s`. Slower, but the policy always
  sees the result of its previous step, whatever the arm's dynamics (the real robot at 0.1 m/s).
- `stream`: fixed policy period; each action's segment lasts `policy_period_s` and `interpolate(t)` gives
  the joint targets at the command rate in between. The velocity limits then cap the motion per step.

Frames: actions and the workspace box are in sim_world; joint targets in the robot's joint order (LEGION
lbr_A1..A7; `robot_joint_names` gives the driver's names); Cartesian points in the base frame unless the
name says `_sim`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from legion_core.robot import iiwa7, kinematics
from sim2real.calibration import Calibration

TIMING_MODES = ("settle", "stream")
TARGET_FROM = ("last_target", "measured", "last_goal")
IK_SEEDS = ("reference", "measured")
IK_UNREACHABLE = ("best_effort", "hold")
_N = iiwa7.N_JOINTS
#: Upper bound [rad] of MapperConfig.ik_max_tilt_rad: a tilted gripper must still approach from above.
MAX_TILT_RAD = 0.8


class WorkspaceError(ValueError):
    """The mapper cannot start from the given posture (outside the joint limits or the workspace box)."""


@dataclass
class MapperConfig:
    action_scale_m: float = 0.01
    """Tool displacement [m] per unit action per policy step (the bundle's action scale; Meta-World 1/100)."""
    target_from: str = "last_target"
    """Reference the displacement is added to: `last_target` (the previous command's tool position, as
    Meta-World adds to the mocap position: the arm keeps full speed despite tracking lag) or `measured`
    (the measured tool position: slower, but never leads the arm)."""
    max_target_lead_m: float = 0.05
    """`last_target` leash: the target may lead the measured tool by at most this [m] (a blocked arm must not
    let the target run away)."""
    workspace_low_m: tuple[float, float, float] = (-0.5, 0.40, 0.05)
    """Lower corner [m, sim_world] of the training workspace box (the bundle's; Meta-World's hand box)."""
    workspace_high_m: tuple[float, float, float] = (0.5, 1.0, 0.5)
    """Upper corner [m, sim_world] of the training workspace box."""
    box_tolerance_m: float = 0.002
    """An emitted target's tool may be this far [m] outside the box (IK residual allowance)."""
    cartesian_tolerance_m: float = 1e-4
    """An emitted target's tool step may exceed max_tool_speed_m_s * segment by this much [m] (IK residual
    allowance: 1e-4 m on a 1 cm step is 1 %)."""
    ik_seed: str = "measured"
    """IK warm start: `reference` (the posture whose tool point the displacement was added to: the last
    target's q for target_from=last_target, the measured q otherwise; the solve is then a 1 cm step and
    converges in 1-2 iterations) or `measured` (always the measured q: with a lagging arm and
    last_target, the few iterations fall short and the arm moves slower than commanded)."""
    ik_iterations: int = 5
    """IK iteration cap per action (bounded time; warm start from the measured q needs 1-3)."""
    ik_damping: float = 0.05
    """DLS damping [m]."""
    ik_orientation_weight: float = 1.0
    """Weight [m/rad] of the flange-down orientation task against position."""
    ik_nullspace_gain: float = 0.01
    """Null-space pull towards `q_rest` per iteration (keeps the elbow posture of the start)."""
    ik_max_residual_m: float = 0.01
    """IK position residual [m] above which the target counts as unreachable (see ik_unreachable)."""
    ik_max_orientation_err_rad: float = 0.1
    """IK orientation residual [rad] above which the solution is refused (hold)."""
    ik_max_tilt_rad: float = 0.0
    """Orientation freedom [rad] for targets the flange-down IK cannot reach
    (docs/decisions/ik-bounded-tilt.md): 0 keeps the flange down (the real-robot default); > 0 solves
    position first with the flange-down orientation as the secondary task, the hand tilting at most this far
    (hard bound, at most MAX_TILT_RAD). A command whose solution is tilted reports `ik_tilt`."""
    ik_unreachable: str = "best_effort"
    """When the IK position residual exceeds ik_max_residual_m: `best_effort` moves to the IK solution if it
    brings the tool closer to the target (orientation within limits), `hold` keeps the previous target."""
    q_rest: tuple[float, ...] | None = None
    """Null-space rest posture [rad]; None = the posture given to `reset`."""
    joint_limit_margin_rad: float = 0.02
    """Targets stay this far [rad] inside the arm's joint limits (from its description)."""
    joint_vel_scale: float = 0.5
    """Fraction of the arm's axis speeds (its description's velocity limits) a target may demand."""
    max_tool_speed_m_s: float = 0.1
    """Cartesian speed bound [m/s] of the tool between targets (0.1: the LBR TwistController default)."""
    command_period_s: float = 0.01
    """Period [s] of the joint command stream (`interpolate`; FRI/ros2_control at 100 Hz)."""
    timing: str = "settle"
    """`settle` or `stream` (see the module docstring)."""
    policy_period_s: float = 0.1
    """`stream`: seconds per policy step (also the segment length). 0.1 s with 1 cm steps = 0.1 m/s."""
    settle_tolerance_m: float = 0.002
    """`settle`: the arm has reached the target when the measured tool is this close [m]."""
    settle_timeout_s: float = 0.5
    """`settle`: the next action is due after this long [s] even if not settled; also the longest segment."""
    max_tracking_error_rad: float = 0.3
    """Measured q further than this [rad] from the commanded one = a fault (blocked arm, wrong joint order):
    hold."""
    tool_point: str = "hand"
    """Kinematic point the policy controls (Meta-World's `hand` body)."""
    ready_hand_pos_sim_m: tuple[float, float, float] = (0.0, 0.5, 0.25)
    """Where the ready move puts the tool [m, sim_world], at the policy's fixed orientation: a hand start the
    policies were trained from (sim2real_node takes the centre of the bundle's scene's hand-start box;
    docs/robot-integration.md, "The ready move")."""
    ready_joint_vel_scale: float = 0.1
    """Peak joint speed of the ready move as a fraction of the arm's axis speeds [-]: slow, because the
    arm moves from a posture the policy never saw."""
    ready_tolerance_rad: float = 0.01
    """The ready move has arrived when every measured joint is this close [rad] to the ready posture."""
    ready_min_height_m: float = 0.05
    """The tool stays at least this high [m, sim_world z; the table top is 0] along the ready move (or no
    lower than where it starts, if that is lower)."""

    def __post_init__(self) -> None:
        if self.timing not in TIMING_MODES:
            raise ValueError(f"timing must be one of {TIMING_MODES}, got {self.timing!r}")
        if self.target_from not in TARGET_FROM:
            raise ValueError(f"target_from must be one of {TARGET_FROM}, got {self.target_from!r}")
        lo, hi = np.asarray(self.workspace_low_m, float), np.asarray(self.workspace_high_m, float)
        if lo.shape != (3,) or hi.shape != (3,) or not np.all(lo < hi):
            raise ValueError(
                f"workspace box needs low < high per axis, got {self.workspace_low_m}..{self.workspace_high_m}"
            )
        for nm in (
            "action_scale_m",
            "command_period_s",
            "policy_period_s",
            "max_tool_speed_m_s",
            "settle_timeout_s",
            "joint_vel_scale",
        ):
            v = getattr(self, nm)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{nm} must be a finite number > 0, got {v}")
        if self.policy_period_s < self.command_period_s or self.settle_timeout_s < self.command_period_s:
            raise ValueError("policy_period_s and settle_timeout_s must be >= command_period_s")
        if self.tool_point not in kinematics.TOOL_POINT_NAMES:
            raise ValueError(f"tool_point must be one of {list(kinematics.TOOL_POINT_NAMES)}")
        if self.ik_unreachable not in IK_UNREACHABLE:
            raise ValueError(f"ik_unreachable must be one of {IK_UNREACHABLE}, got {self.ik_unreachable!r}")
        if not (math.isfinite(self.ik_max_tilt_rad) and 0.0 <= self.ik_max_tilt_rad <= MAX_TILT_RAD):
            raise ValueError(
                f"ik_max_tilt_rad must be in [0, {MAX_TILT_RAD}] rad, got {self.ik_max_tilt_rad}"
            )
        if self.ik_seed not in IK_SEEDS:
            raise ValueError(f"ik_seed must be one of {IK_SEEDS}, got {self.ik_seed!r}")

    @property
    def segment_max_s(self) -> float:
        """Longest segment [s]: the budget the per-segment limits are computed for."""
        return self.policy_period_s if self.timing == "stream" else self.settle_timeout_s


@dataclass
class Command:
    q_target: np.ndarray
    """Joint targets [rad], LEGION order, at the end of the segment."""
    gripper: float
    """Finger opening [m] (calibration's range)."""
    gripper_action: float
    """The gripper action in [-1 open, +1 close] it came from (for a twin that takes actions)."""
    limits_hit: list[str]
    """Every safety layer that changed the command (empty = the policy got exactly what it asked for)."""
    ik_residual_m: float
    """IK position residual [m] of the solve (0 when no IK ran)."""
    ik_orientation_err_rad: float = 0.0
    """IK orientation residual [rad]."""
    ik_iterations: int = 0
    hold: bool = False
    """True when the previous target was kept (reason in `reason`)."""
    reason: str = "ok"
    """'ok', or why the command holds."""
    t_start: float = 0.0
    """Segment start time [s]."""
    duration_s: float = 0.0
    """Segment length [s]: `interpolate` ramps from q_start to q_target over it."""
    q_start: np.ndarray = field(default_factory=lambda: np.zeros(_N))
    """Commanded joint position at t_start [rad]."""
    tool_target_sim_m: np.ndarray = field(default_factory=lambda: np.zeros(3))
    """Requested tool position after the Cartesian clamps [m, sim_world]."""
    tool_pos_sim_m: np.ndarray = field(default_factory=lambda: np.zeros(3))
    """Tool position of q_target by FK [m, sim_world]."""


@dataclass(frozen=True)
class Segment:
    """A snapshot of the mapper's current segment: joint targets move linearly from `q_start` to `q_target`
    [rad] over `duration_s` from `t0_s` [s]. Immutable, so a command stream may read it from another thread
    while the next segment is being mapped (sim2real_node's cycles during a control step)."""

    t0_s: float
    duration_s: float
    q_start: np.ndarray
    q_target: np.ndarray

    def fraction(self, t: float) -> float:
        """How far along the segment time `t` [s] is, in [0, 1]."""
        return 1.0 if self.duration_s <= 0 else min(1.0, max(0.0, (t - self.t0_s) / self.duration_s))

    def at(self, t: float) -> np.ndarray:
        """Joint targets [rad] at time `t` [s] (clamped to the segment: before it the start, after it the end)."""
        return self.q_start + (self.q_target - self.q_start) * self.fraction(t)


class ReadyMove(Segment):
    """The ready move: a segment with a cosine speed profile (zero speed at both ends) instead of a linear
    one: a long, slow move from a standstill to a standstill."""

    def at(self, t: float) -> np.ndarray:
        return self.q_start + (self.q_target - self.q_start) * (
            0.5 - 0.5 * math.cos(math.pi * self.fraction(t))
        )


def step_limited(
    q: np.ndarray, q_prev: np.ndarray, t: float, t_prev: float, dq_max_per_period: np.ndarray, period_s: float
) -> np.ndarray:
    """`q` [rad] moved from the previous command `q_prev` (sent at `t_prev` [s]) by no more than the joint
    speed limit allows for the time since, and never more than one period's step `dq_max_per_period` [rad]
    (no catch-up jump after a stall). A tiny slack keeps a plan that is already within the limit unclipped."""
    frac = 1.0
    if math.isfinite(t_prev):
        frac = min(1.0, max(0.0, (t - t_prev) / period_s))
    d = dq_max_per_period * frac * (1 + 1e-9) + 1e-12
    return np.minimum(np.maximum(q, q_prev - d), q_prev + d)


class Sim2RealMapper:
    """Maps policy actions to joint position commands that satisfy the invariants in the module docstring."""

    def __init__(
        self,
        calibration: Calibration,
        config: MapperConfig | None = None,
        arm: kinematics.ArmModel | None = None,
    ) -> None:
        """`arm`: the arm's kinematics and limits; None = the calibration's (`Calibration.arm_model`; a
        calibration whose description is the driver's topic needs it given, as sim2real_node does)."""
        self.calibration = calibration
        self.config = cfg = config or MapperConfig()
        self.arm = arm = arm or calibration.arm_model()
        T = calibration.T_sim_base
        self._R_sim_base, self._p_sim_base = np.array(T.R), np.array(T.p)
        self._R_base_sim = self._R_sim_base.T.copy()
        self._R_flange = kinematics.R_base_flange_down(self._R_sim_base, arm.tool)
        self._box_lo = np.asarray(cfg.workspace_low_m, float)
        self._box_hi = np.asarray(cfg.workspace_high_m, float)
        self._q_low, self._q_high = arm.q_low, arm.q_high
        self._q_lo = self._q_low + cfg.joint_limit_margin_rad
        self._q_hi = self._q_high - cfg.joint_limit_margin_rad
        self._v_max = self.joint_vel_limits_rad_s
        self._ik_cfg = kinematics.IKConfig(
            max_iterations=cfg.ik_iterations,
            damping=cfg.ik_damping,
            orientation_weight=cfg.ik_orientation_weight,
            nullspace_gain=cfg.ik_nullspace_gain,
            limit_margin_rad=cfg.joint_limit_margin_rad,
            max_tilt_rad=cfg.ik_max_tilt_rad,
        )
        # The orientation residual a solution may have: the tilt allowance where one is configured.
        self._max_ori_err = max(cfg.ik_max_orientation_err_rad, cfg.ik_max_tilt_rad)
        self._ready = False
        self.last_settle_reason = ""
        # FK of the last few postures: one control step asks for the same ones several times (the measured
        # q in the settle check and in map, the finished segment's target as the next start, the checked
        # step as the new target); 4-5 of its ~9 FK evaluations are repeats (docs/decisions/runtime-latency.md).
        self._fk_memo: dict[bytes, np.ndarray] = {}

    def _tool_pos_base(self, q: np.ndarray) -> np.ndarray:
        """Tool position [m, base frame] at joint angles q [rad], memoised on the exact float values."""
        q = np.asarray(q, float)
        key = q.tobytes()
        p = self._fk_memo.get(key)
        if p is None:
            p = kinematics.fk_point(q, self.config.tool_point, self.arm)
            if len(self._fk_memo) >= 4:
                del self._fk_memo[next(iter(self._fk_memo))]  # oldest first
            self._fk_memo[key] = p
        return p.copy()

    @property
    def joint_vel_limits_rad_s(self) -> np.ndarray:
        """The speed bound [rad/s] of every target: the arm's axis speeds times joint_vel_scale."""
        return self.arm.velocity_limits_rad_s * self.config.joint_vel_scale

    @property
    def joint_limits_rad(self) -> tuple[np.ndarray, np.ndarray]:
        """The arm's joint limits (lower, upper) [rad]."""
        return self._q_low.copy(), self._q_high.copy()

    # -- frames --------------------------------------------------------------------------------------
    @property
    def robot_joint_names(self) -> tuple[str, ...]:
        """The driver's names of the joints in `Command.q_target` order."""
        return self.calibration.robot_joint_names

    def tool_pos_sim(self, q: np.ndarray) -> np.ndarray:
        """Tool position [m, sim_world] at joint angles q."""
        return self._R_sim_base @ self._tool_pos_base(q) + self._p_sim_base

    def box_excess_m(self, p_sim: np.ndarray) -> float:
        """How far [m] a sim_world point is outside the workspace box (0 inside; inf if not finite)."""
        if not np.all(np.isfinite(p_sim)):
            return math.inf
        d = np.maximum(self._box_lo - p_sim, p_sim - self._box_hi)
        return float(np.linalg.norm(np.maximum(d, 0.0)))

    def _q_problem(self, q) -> str:
        try:
            q = np.asarray(q, float)
        except (TypeError, ValueError):
            return "measured q is not numeric"
        if q.shape != (_N,):
            return f"measured q must have {_N} angles, got shape {q.shape}"
        if not np.all(np.isfinite(q)):
            return f"measured q is not finite: {q.tolist()}"
        if np.any(q < self._q_low - 0.1) or np.any(q > self._q_high + 0.1):
            return f"measured q is outside the joint limits: {np.round(q, 3).tolist()}"
        return ""

    # -- the ready move ----------------------------------------------------------------------------------
    def tool_orientation_error_rad(self, q: np.ndarray) -> float:
        """How far [rad] the flange at joint angles q is from the policy's fixed tool orientation."""
        R = kinematics.forward(np.asarray(q, float), self.arm).R_flange
        return float(np.linalg.norm(kinematics.orientation_error(R, self._R_flange)))

    def ready_posture(self) -> np.ndarray:
        """The ready posture [rad]: the tool at `ready_hand_pos_sim_m` at the policy's orientation, elbow up,
        as the simulated embodiment starts a skill (kinematics.start_posture: the closest reachable point
        where the flange-down reach ends). ValueError when that is more than 3 cm off or the orientation more
        than half the mapper's orientation residual bound off (a calibration that puts the point out of
        reach)."""
        cfg = self.config
        p = self._R_base_sim @ (np.asarray(cfg.ready_hand_pos_sim_m, float) - self._p_sim_base)
        res = kinematics.start_posture(p, self._R_flange, cfg.tool_point, self.arm)
        if res.position_error_m > 0.03 or res.orientation_error_rad > 0.5 * cfg.ik_max_orientation_err_rad:
            raise ValueError(
                f"ready_hand_pos_sim_m {list(cfg.ready_hand_pos_sim_m)} is out of reach at the policy's tool "
                f"orientation (IK residual {res.position_error_m * 1e3:.1f} mm / {res.orientation_error_rad:.3f} rad): "
                "choose a point inside the workspace box"
            )
        return res.q

    def _slow_move(self, q0: np.ndarray, q1: np.ndarray, t: float) -> ReadyMove:
        """The ready move's cosine profile from q0 to q1 starting at `t` [s], its peak joint speeds at
        `ready_joint_vel_scale` of the axis speeds (peak speed = pi/2 * distance / duration)."""
        cfg = self.config
        v = self.arm.velocity_limits_rad_s * cfg.ready_joint_vel_scale
        duration = max(float(np.max(0.5 * math.pi * np.abs(q1 - q0) / v)), cfg.command_period_s)
        return ReadyMove(float(t), duration, q0.copy(), q1)

    def plan_ready(self, q_from: np.ndarray, t: float) -> ReadyMove:
        """The ready move from the commanded posture `q_from` at time `t` [s]. WorkspaceError when it would
        take the tool below `ready_min_height_m` (move the arm up by hand first)."""
        cfg = self.config
        q0 = np.asarray(q_from, float)
        problem = self._q_problem(q0)
        if problem:
            raise WorkspaceError(f"ready move refused: {problem}")
        move = self._slow_move(q0, self.ready_posture(), t)
        duration = move.duration_s
        floor = min(cfg.ready_min_height_m, float(self.tool_pos_sim(q0)[2])) - 1e-3
        for u in np.linspace(0.0, 1.0, 41)[1:]:
            z = float(self.tool_pos_sim(move.at(t + u * duration))[2])
            if z < floor:
                raise WorkspaceError(
                    f"ready move refused: the tool would pass {z:.3f} m above the table (minimum {floor + 1e-3:.3f} m); "
                    "move the arm up by hand (or in T1 from the smartPAD) first"
                )
        return move

    def target_problem(self, q_target) -> str:
        """Why the posture `q_target` [rad, LEGION order] cannot be a ready-move target ('' = it can): 7
        finite angles, each inside the joint limits by joint_limit_margin_rad (the joint named by the driver's
        name, with its limit in degrees)."""
        try:
            q = np.asarray(q_target, float)
        except (TypeError, ValueError):
            return "target posture is not numeric: give 7 joint angles [rad]"
        if q.shape != (_N,):
            return f"target posture needs {_N} joint angles [rad], got {q.size}"
        if not np.all(np.isfinite(q)):
            return f"target posture is not finite: {q.tolist()}"
        margin = self.config.joint_limit_margin_rad
        for j in range(_N):
            if not (self._q_lo[j] - 1e-9 <= q[j] <= self._q_hi[j] + 1e-9):
                side, lim = ("lower", self._q_low[j]) if q[j] < self._q_lo[j] else ("upper", self._q_high[j])
                return (
                    f"joint {self.robot_joint_names[j]} target {math.degrees(q[j]):.1f} deg is beyond its {side} "
                    f"limit {math.degrees(lim):.1f} deg less the margin joint_limit_margin_rad {margin} rad: "
                    "choose a posture inside the limits"
                )
        return ""

    def plan_target(self, q_from: np.ndarray, q_target: np.ndarray, t: float) -> ReadyMove:
        """The ready move to a given posture `q_target` [rad, LEGION order] instead of the ready posture (a
        hand-eye calibration pose, docs/calibration.md) from the commanded posture `q_from` at time `t` [s]:
        the ready move's cosine profile at `ready_joint_vel_scale` of the axis speeds, checked at 41 points
        along it: the joints inside the limits by joint_limit_margin_rad (target_problem; the profile never
        leaves the straight joint-space segment, so the end points decide), the tool inside the workspace box
        (+ box_tolerance_m) and at least ready_min_height_m above the table. WorkspaceError names the joint or
        the limit, where along the move, and the fix; nothing is planned then."""
        cfg = self.config
        q0 = np.asarray(q_from, float)
        problem = self._q_problem(q0)
        if problem:
            raise WorkspaceError(f"ready target refused: {problem}")
        problem = self.target_problem(q_target)
        if problem:
            raise WorkspaceError(f"ready target refused: {problem}")
        move = self._slow_move(q0, np.asarray(q_target, float).copy(), t)
        duration = move.duration_s
        for u in np.linspace(0.0, 1.0, 41)[1:]:
            q = move.at(t + u * duration)
            if np.any(q < self._q_lo - 1e-9) or np.any(q > self._q_hi + 1e-9):
                j = int(np.argmax(np.maximum(self._q_lo - q, q - self._q_hi)))
                raise WorkspaceError(
                    f"ready target refused: joint {self.robot_joint_names[j]} would leave its limits (margin "
                    f"{cfg.joint_limit_margin_rad} rad) at {u:.0%} of the move: move the arm inside the limits first"
                )
            p = self.tool_pos_sim(q)
            excess = self.box_excess_m(p)
            if excess > cfg.box_tolerance_m:
                raise WorkspaceError(
                    f"ready target refused: the tool would leave the workspace box {np.round(self._box_lo, 3).tolist()}.."
                    f"{np.round(self._box_hi, 3).tolist()} m by {excess:.3f} m at {np.round(p, 3).tolist()} m (sim_world, "
                    f"{u:.0%} of the move): choose a target whose path stays inside the box"
                )
            if p[2] < cfg.ready_min_height_m:
                raise WorkspaceError(
                    f"ready target refused: the tool would pass {p[2]:.3f} m above the table (minimum "
                    f"ready_min_height_m {cfg.ready_min_height_m} m) at {u:.0%} of the move: choose a higher target"
                )
        return move

    # -- lifecycle -------------------------------------------------------------------------------------
    def reset(self, q_measured: Sequence[float], t: float, gripper_action: float = -1.0) -> None:
        """Start from the measured posture at time t [s]. Raises WorkspaceError when the posture is outside
        the joint limits or its tool outside the workspace box (+ tolerance): move the arm to its home
        posture first; the mapper only ever emits targets it can prove safe."""
        problem = self._q_problem(q_measured)
        if problem:
            raise WorkspaceError(f"cannot start: {problem}")
        q = np.asarray(q_measured, float).copy()
        if np.any(q < self._q_low) or np.any(q > self._q_high):
            raise WorkspaceError(f"cannot start: q {np.round(q, 4).tolist()} is outside the joint limits")
        if not math.isfinite(float(t)):
            raise WorkspaceError(f"cannot start: t={t} is not finite")
        p_sim = self.tool_pos_sim(q)
        excess = self.box_excess_m(p_sim)
        if excess > self.config.box_tolerance_m:
            raise WorkspaceError(
                f"cannot start: the tool is at {np.round(p_sim, 3).tolist()} m (sim_world), {excess:.3f} m outside "
                f"the workspace box {list(self.config.workspace_low_m)}..{list(self.config.workspace_high_m)}; move "
                "the arm to the home posture first"
            )
        self._q_start = q.copy()
        self._q_target = q.copy()
        self._q_emitted = q.copy()
        self._s_emitted = 1.0
        self._p_target_base = self._tool_pos_base(q)
        self._p_goal_base = self._p_target_base.copy()
        self._t0 = float(t)
        self._duration = self.config.command_period_s
        self._t_last = float(t)
        self._q_rest = np.asarray(self.config.q_rest, float) if self.config.q_rest is not None else q.copy()
        self._gripper_action = (
            float(np.clip(gripper_action, -1.0, 1.0)) if math.isfinite(gripper_action) else -1.0
        )
        self._ready = True

    def _require_reset(self) -> None:
        if not self._ready:
            raise RuntimeError("Sim2RealMapper: call reset(q_measured, t) before mapping actions")

    # -- interpolation -------------------------------------------------------------------------------
    def interpolate(self, t: float) -> np.ndarray:
        """Joint targets [rad] at time t on the current segment (linear in joint space from q_start to
        q_target), never moving backwards along it: call at the command rate."""
        self._require_reset()
        t = float(t)
        if math.isfinite(t):
            s = 1.0 if self._duration <= 0 else (t - self._t0) / self._duration
            s = min(1.0, max(self._s_emitted, s))
            if s != self._s_emitted:
                self._s_emitted = s
                # Exactly q_target at the end (no rounding residue carried into the next segment).
                self._q_emitted = (
                    self._q_target.copy()
                    if s >= 1.0
                    else self._q_start + (self._q_target - self._q_start) * s
                )
        return self._q_emitted.copy()

    def segment(self) -> Segment:
        """The current segment, as an immutable snapshot."""
        self._require_reset()
        return Segment(self._t0, self._duration, self._q_start.copy(), self._q_target.copy())

    def ready_for_next_action(self, q_measured: Sequence[float], t: float) -> bool:
        """`settle`: True once the segment is over and the measured tool is within settle_tolerance_m of the
        target, or settle_timeout_s after the segment started. `stream`: True once the policy period is
        over. `last_settle_reason` says which (settled / timeout / period / waiting)."""
        self._require_reset()
        t = float(t)
        cfg = self.config
        if not math.isfinite(t):
            self.last_settle_reason = "waiting (t not finite)"
            return False
        elapsed = t - self._t0
        if cfg.timing == "stream":
            ok = elapsed >= cfg.policy_period_s - 1e-9
            self.last_settle_reason = "period" if ok else "waiting"
            return ok
        if elapsed >= cfg.settle_timeout_s - 1e-9:
            self.last_settle_reason = "timeout"
            return True
        if elapsed >= self._duration - 1e-9 and not self._q_problem(q_measured):
            err = float(
                np.linalg.norm(self._tool_pos_base(np.asarray(q_measured, float)) - self._p_target_base)
            )
            if err <= cfg.settle_tolerance_m:
                self.last_settle_reason = "settled"
                return True
        self.last_settle_reason = "waiting"
        return False

    # -- the mapping ---------------------------------------------------------------------------------
    def _new_segment(self, t: float, q_start: np.ndarray, q_target: np.ndarray, duration: float) -> None:
        self._t0 = t
        self._q_start = q_start
        self._q_target = q_target
        self._duration = duration
        self._s_emitted = 0.0
        self._q_emitted = q_start.copy()
        self._p_target_base = self._tool_pos_base(q_target)

    def _hold(
        self, t: float, q_cur: np.ndarray, limits: list[str], reason: str, grip: float, **kw
    ) -> Command:
        cfg = self.config
        duration = cfg.policy_period_s if cfg.timing == "stream" else cfg.command_period_s
        self._new_segment(t, q_cur, q_cur.copy(), duration)
        return self._command(t, limits, grip, hold=True, reason=reason, **kw)

    def _command(self, t: float, limits: list[str], grip: float, p_req_sim=None, **kw) -> Command:
        p_sim = self._R_sim_base @ self._p_target_base + self._p_sim_base
        return Command(
            q_target=self._q_target.copy(),
            gripper=self.calibration.gripper_opening_m(grip),
            gripper_action=grip,
            limits_hit=limits,
            t_start=t,
            duration_s=self._duration,
            q_start=self._q_start.copy(),
            tool_target_sim_m=p_sim if p_req_sim is None else p_req_sim,
            tool_pos_sim_m=p_sim,
            ik_residual_m=kw.pop("ik_residual_m", 0.0),
            **kw,
        )

    def map(self, action: Sequence[float], q_measured: Sequence[float], t: float) -> Command:
        """One policy action (a = [dx, dy, dz, grip] in sim_world) -> the next segment's joint targets."""
        self._require_reset()
        cfg = self.config
        limits: list[str] = []
        t = float(t)
        if not math.isfinite(t) or t < self._t_last:
            # Time must be finite and monotone; hold where we are, at the last valid time.
            limits.append("invalid_time")
            t = self._t_last
            q_cur = self.interpolate(t)
            return self._hold(
                t, q_cur, limits, "time stamp not finite or going backwards", self._gripper_action
            )
        self._t_last = t
        q_cur = self.interpolate(t)  # where the command stream is now: the new segment starts here

        # 1. Action: shape, finiteness, clamp.
        try:
            a = np.asarray(action, float)
        except (TypeError, ValueError):
            a = np.full(1, np.nan)
        if a.shape == (1, 4):  # a batch of one, as a policy network returns it
            a = a[0]
        if a.shape != (4,):
            a = np.full(4, np.nan)
            limits.append("action_malformed")
        if math.isfinite(a[3]):
            if abs(a[3]) > 1.0:
                limits.append("gripper_clamp")
            self._gripper_action = min(1.0, max(-1.0, float(a[3])))
        elif "action_malformed" not in limits:
            limits.append("gripper_nonfinite")  # keep the last gripper command
        grip = self._gripper_action
        dxyz = a[:3]
        if not np.all(np.isfinite(dxyz)):
            if "action_malformed" not in limits:
                limits.append("action_nonfinite")
            return self._hold(t, q_cur, limits, "action not finite", grip)
        if np.any(np.abs(dxyz) > 1.0):
            limits.append("action_clamp")
            dxyz = np.clip(dxyz, -1.0, 1.0)

        # 2. Measured state.
        problem = self._q_problem(q_measured)
        if problem:
            limits.append("invalid_measured_q")
            return self._hold(t, q_cur, limits, problem, grip)
        q_meas = np.asarray(q_measured, float)
        track_err = float(np.max(np.abs(q_meas - q_cur)))
        if track_err > cfg.max_tracking_error_rad:
            limits.append("tracking_error")
            return self._hold(
                t,
                q_cur,
                limits,
                f"measured q is {track_err:.3f} rad from the command (> {cfg.max_tracking_error_rad})",
                grip,
            )
        p_meas = self._tool_pos_base(q_meas)
        p_cur = self._tool_pos_base(q_cur)

        # 3. Cartesian target (base frame).
        p_ref = {"last_target": p_cur, "measured": p_meas, "last_goal": self._p_goal_base}[cfg.target_from]
        p_goal = p_ref + self._R_base_sim @ (dxyz * cfg.action_scale_m)
        if cfg.target_from != "measured":
            lead = p_goal - p_meas
            n = float(np.linalg.norm(lead))
            if n > cfg.max_target_lead_m:
                limits.append("target_lead")
                p_goal = p_meas + lead * (cfg.max_target_lead_m / n)
        p_goal_sim = self._R_sim_base @ p_goal + self._p_sim_base
        clipped = np.minimum(np.maximum(p_goal_sim, self._box_lo), self._box_hi)
        if np.any(clipped != p_goal_sim):
            limits.append("workspace_box")
            p_goal_sim = clipped
            p_goal = self._R_base_sim @ (p_goal_sim - self._p_sim_base)
        self._p_goal_base = p_goal.copy()
        seg_max = cfg.segment_max_s
        max_step_m = cfg.max_tool_speed_m_s * seg_max
        step = p_goal - p_cur
        n = float(np.linalg.norm(step))
        if n > max_step_m * (1.0 + 1e-9):
            limits.append("cartesian_speed")
            # Shrinking towards p_cur (inside the box, by induction) keeps the target inside the convex box.
            p_goal = p_cur + step * (max_step_m / n)
            p_goal_sim = self._R_sim_base @ p_goal + self._p_sim_base

        # 4. IK from the measured posture, flange down.
        q_seed = q_cur if (cfg.ik_seed == "reference" and cfg.target_from != "measured") else q_meas
        res = kinematics.solve_ik(
            p_goal, q_seed, self._R_flange, cfg.tool_point, self._q_rest, self._ik_cfg, self.arm
        )
        ik_kw = dict(
            ik_residual_m=res.position_error_m,
            ik_orientation_err_rad=res.orientation_error_rad,
            ik_iterations=res.iterations,
        )
        if cfg.ik_max_tilt_rad > 0 and res.orientation_error_rad > 10 * self._ik_cfg.orientation_tol_rad:
            limits.append("ik_tilt")
        if res.position_error_m > cfg.ik_max_residual_m or res.orientation_error_rad > self._max_ori_err:
            limits.append("ik_residual")
            # Out of reach (flange down) or a poor solve. `best_effort` keeps a solution that gets the tool
            # closer to the target with an acceptable orientation, so the hand slides along the edge of
            # the reachable space as the mocap weld lets it in training; anything else holds.
            progress = res.position_error_m < float(np.linalg.norm(p_goal - p_cur)) - 1e-4
            if not (
                cfg.ik_unreachable == "best_effort"
                and progress
                and res.orientation_error_rad <= self._max_ori_err
            ):
                return self._hold(
                    t,
                    q_cur,
                    limits,
                    f"IK residual {res.position_error_m * 1e3:.1f} mm / {res.orientation_error_rad:.3f} rad "
                    f"(limits {cfg.ik_max_residual_m * 1e3:.1f} mm / {self._max_ori_err} rad)",
                    grip,
                    **ik_kw,
                )

        # 5. Joint limits with margin, then the velocity limit over the segment (uniform scaling keeps the
        # joint-space direction, hence the tool path, instead of distorting it joint by joint).
        q_des = res.q
        q_clip = np.minimum(np.maximum(q_des, self._q_lo), self._q_hi)
        if res.at_limit or np.any(q_clip != q_des):
            limits.append("joint_limit")  # the IK clamps at the same margin: its at_limit flag is the report
        dq = q_clip - q_cur
        ratio = float(np.max(np.abs(dq) / (self._v_max * seg_max)))
        if ratio > 1.0:
            limits.append("joint_velocity")
            dq = dq / ratio

        # 6. Prove the candidate safe by FK (box and Cartesian step); shorten it, or hold, if not. The joint
        # path is not straight in Cartesian space, so the IK target's clamps alone do not guarantee this.
        tol = cfg.box_tolerance_m
        shortened = False
        for _ in range(8):
            q_new = q_cur + dq
            p_new = self._tool_pos_base(q_new)
            in_box = self.box_excess_m(self._R_sim_base @ p_new + self._p_sim_base) <= tol
            cart = float(np.linalg.norm(p_new - p_cur))
            if in_box and cart <= max_step_m + cfg.cartesian_tolerance_m:
                break
            shortened = True
            # Over the speed bound only: shrink in proportion (steps are small, FK is nearly linear);
            # outside the box: halve (q_cur is inside, so a short enough step is too).
            dq = dq * (0.5 if not in_box else 0.999 * max_step_m / cart)
        else:
            limits.append("fk_check")
            return self._hold(t, q_cur, limits, "no safe step towards the IK solution", grip, **ik_kw)
        if shortened:
            limits.append("fk_check")
        # Joint-limit invariant: q_cur and q_clip are inside the hard limits, so is every point between.
        q_new = np.minimum(np.maximum(q_new, self._q_low), self._q_high)

        # 7. Segment timing.
        if cfg.timing == "stream":
            duration = cfg.policy_period_s
        else:
            need = max(
                float(np.max(np.abs(q_new - q_cur) / self._v_max)),
                float(np.linalg.norm(p_new - p_cur)) / cfg.max_tool_speed_m_s,
                cfg.command_period_s,
            )
            periods = math.ceil(need / cfg.command_period_s - 1e-9)
            duration = min(periods * cfg.command_period_s, cfg.settle_timeout_s)
        self._new_segment(t, q_cur, q_new, duration)
        return self._command(t, limits, grip, p_req_sim=p_goal_sim, **ik_kw)
