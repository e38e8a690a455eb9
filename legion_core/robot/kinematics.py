"""iiwa 7 R800 kinematics in numpy: forward kinematics (flange, hand, tool centre point), the geometric
Jacobian, and damped-least-squares IK for a position target at the fixed downward orientation the policy
assumes (docs/method.md#tasks).

One model for sim and real: the chain is built from `legion_core.robot.iiwa7`, the same numbers the
MJCF of the simulated KUKA embodiment is generated from (`tests/unit/test_kinematics.py` checks FK
against MuJoCo). Frames: everything here is in the robot `base` frame (REP-103) unless a `T_world_base`
is given; metres and radians.

Why a hand-written solver rather than MuJoCo's: the robot PC runs it at the command rate without a
simulator, and it must be bounded in time (fixed iteration cap) and report its residual.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from legion_core.robot import iiwa7
from legion_core.robot.frames import quat_to_R

#: Points on the tool that can be controlled (ArmModel.tool_points).
TOOL_POINT_NAMES = ("flange", "hand", "tcp")


@dataclass(frozen=True)
class ToolMount:
    """The tool on the flange: where Meta-World's `hand` body (the point the policies move) and the tool
    centre point are. Defaults: the gripper the shipped policies were trained with, on its adapter
    (legion_core.robot.iiwa7; docs/robot-integration.md, "Robot description")."""

    flange_to_hand_xyz_m: tuple[float, float, float] = (0.0, 0.0, iiwa7.FLANGE_TO_HAND_M)
    """`hand` origin in the flange frame [m]."""
    flange_to_hand_quat_wxyz: tuple[float, float, float, float] = tuple(
        float(v) for v in iiwa7.FLANGE_TO_HAND_QUAT
    )
    """`hand` orientation in the flange frame (w, x, y, z). The policy holds the hand at Meta-World's fixed
    orientation, so this decides which flange orientation the IK targets."""
    hand_to_tcp_xyz_m: tuple[float, float, float] = (iiwa7.HAND_TO_TCP_M, 0.0, 0.0)
    """Tool centre point (between the finger tips) in the `hand` frame [m]."""

    @property
    def R_flange_hand(self) -> np.ndarray:
        return quat_to_R(self.flange_to_hand_quat_wxyz, "tool flange_to_hand_quat_wxyz", norm_tol=1e-3)

    def points(self) -> dict[str, np.ndarray]:
        """Tool point name -> offset [m] in the flange frame."""
        p_hand = np.asarray(self.flange_to_hand_xyz_m, float)
        return {
            "flange": np.zeros(3),
            "hand": p_hand,
            "tcp": p_hand + self.R_flange_hand @ np.asarray(self.hand_to_tcp_xyz_m, float),
        }


@dataclass(frozen=True)
class ArmJoint:
    """One revolute joint of the chain, as a URDF joint: its frame in the previous joint's frame, then a
    rotation about `axis`."""

    name: str
    origin_xyz_m: tuple[float, float, float]
    """Joint origin in the previous joint's frame [m] (the base link's frame for the first joint)."""
    origin_R: tuple[tuple[float, ...], ...] | None
    """Joint frame axes in the previous joint's frame (rows); None = aligned (the common case, faster)."""
    axis: tuple[float, float, float]
    """Rotation axis in the joint frame (unit)."""
    lower_rad: float
    upper_rad: float
    velocity_rad_s: float


@dataclass(frozen=True)
class ArmModel:
    """A 7-joint serial arm with its tool: the one input of the runtime's kinematics and joint limits.

    Built from the datasheet (`ArmModel.datasheet()`, the default and the model the simulated embodiment is
    generated from) or from a robot description (legion_core.robot.description: a URDF file, the driver's
    robot_description topic, or a shipped iiwa 7 / iiwa 14 description); tests/unit/test_robot_description.py
    keeps the two paths equal for the iiwa 7."""

    name: str
    joints: tuple[ArmJoint, ...]
    flange_xyz_m: tuple[float, float, float]
    """Flange (the tool's mounting face) in the last joint's frame [m]."""
    flange_R: tuple[tuple[float, ...], ...] | None = None
    """Flange axes in the last joint's frame (rows); None = aligned."""
    tool: ToolMount = field(default_factory=ToolMount)

    def __post_init__(self) -> None:
        if len(self.joints) != iiwa7.N_JOINTS:
            raise ValueError(
                f"{self.name}: the chain has {len(self.joints)} revolute joints; LEGION's policies drive "
                f"{iiwa7.N_JOINTS}-joint arms (iiwa 7 / iiwa 14 / Med): check base and flange link names"
            )
        for j in self.joints:
            if not (math.isfinite(j.lower_rad) and math.isfinite(j.upper_rad) and j.lower_rad < j.upper_rad):
                raise ValueError(f"{self.name}: joint {j.name} needs finite limits lower < upper [rad]")
            if not (math.isfinite(j.velocity_rad_s) and j.velocity_rad_s > 0):
                raise ValueError(f"{self.name}: joint {j.name} needs a velocity limit > 0 [rad/s]")
            if not math.isclose(float(np.linalg.norm(j.axis)), 1.0, abs_tol=1e-9):
                raise ValueError(f"{self.name}: joint {j.name} axis {j.axis} is not a unit vector")
        # Derived once (the IK reads the limits and the tool points at every solve): read-only arrays.
        points = self.tool.points()
        for v in points.values():
            v.setflags(write=False)
        derived = {
            "_plan": _compile(self),
            "_points": points,
            "_points_f": {k: tuple(map(float, v)) for k, v in points.items()},
            "_q_low": np.array([j.lower_rad for j in self.joints]),
            "_q_high": np.array([j.upper_rad for j in self.joints]),
            "_v_max": np.array([j.velocity_rad_s for j in self.joints]),
        }
        for name, value in derived.items():
            if isinstance(value, np.ndarray):
                value.setflags(write=False)
            object.__setattr__(self, name, value)

    @classmethod
    def datasheet(cls, tool: ToolMount | None = None) -> ArmModel:
        """The iiwa 7 R800 from legion_core.robot.iiwa7 (joint origins on the z axis, aligned frames)."""
        joints = tuple(
            ArmJoint(
                name, (0.0, 0.0, float(off)), None, tuple(map(float, axis)), float(lo), float(hi), float(v)
            )
            for name, off, axis, (lo, hi), v in zip(
                iiwa7.JOINT_NAMES,
                iiwa7.JOINT_OFFSETS_Z_M,
                iiwa7.JOINT_AXES,
                iiwa7.JOINT_LIMITS_RAD,
                iiwa7.JOINT_VEL_LIMITS_RAD_S,
                strict=True,
            )
        )
        return cls(
            "iiwa7 (datasheet)", joints, (0.0, 0.0, float(iiwa7.A7_TO_FLANGE_M)), None, tool or ToolMount()
        )

    @property
    def joint_names(self) -> tuple[str, ...]:
        return tuple(j.name for j in self.joints)

    @property
    def q_low(self) -> np.ndarray:
        """Lower joint limits [rad] (read-only)."""
        return self._q_low

    @property
    def q_high(self) -> np.ndarray:
        """Upper joint limits [rad] (read-only)."""
        return self._q_high

    @property
    def velocity_limits_rad_s(self) -> np.ndarray:
        """Axis speed limits [rad/s] (read-only)."""
        return self._v_max

    @property
    def tool_points(self) -> dict[str, np.ndarray]:
        """Tool point name -> offset [m] in the flange frame (read-only arrays)."""
        return self._points


def _principal_axis(axis) -> tuple[int, float] | None:
    """(index, sign) of a unit principal axis (+-x/y/z), None for any other axis."""
    a = np.asarray(axis, float)
    k = int(np.argmax(np.abs(a)))
    if not np.isclose(abs(a[k]), 1.0) or np.count_nonzero(np.abs(a) > 1e-12) != 1:
        return None
    return k, float(np.sign(a[k]))


def _rows(R) -> tuple[tuple[float, ...], ...] | None:
    """Rotation rows as float tuples; None for the identity (skipped in the chain)."""
    if R is None:
        return None
    R = np.asarray(R, float)
    return None if np.allclose(R, np.eye(3), atol=1e-15) else tuple(tuple(map(float, r)) for r in R)


def _compile(arm: ArmModel) -> tuple:
    """Per joint: (nonzero origin components [(c, v)], origin rows or None, principal (k, sign, i, j) or
    None, general axis (x, y, z)); then the flange's. The FK below reads only these."""
    plan = []
    for jt in arm.joints:
        off = tuple((c, float(v)) for c, v in enumerate(jt.origin_xyz_m) if v != 0.0)
        pa = _principal_axis(jt.axis)
        principal = None if pa is None else (pa[0], pa[1], (pa[0] + 1) % 3, (pa[0] + 2) % 3)
        plan.append((off, _rows(jt.origin_R), principal, tuple(map(float, jt.axis))))
    flange = (tuple((c, float(v)) for c, v in enumerate(arm.flange_xyz_m) if v != 0.0), _rows(arm.flange_R))
    return tuple(plan), flange


IIWA7 = ArmModel.datasheet()
"""The default arm: the iiwa 7 R800 datasheet model with the shipped gripper."""
Q_LOW = IIWA7.q_low
Q_HIGH = IIWA7.q_high
TOOL_POINTS = IIWA7.tool_points


# -- Fast forward kinematics ----------------------------------------------------------------------------
# Why pure-Python floats rather than numpy here: the chain is 7 tiny 3x3 products, where numpy's per-call
# overhead (~1 us) dominates; rotating two columns of R by hand about the joint's principal axis costs a
# few float multiplications. FK is ~5x faster this way and `tests/unit/test_kinematics.py` pins it to
# MuJoCo at 1e-12. A joint whose frame is rotated in its parent's, or whose axis is not a principal one
# (possible in a lab's URDF, not in the iiwa's), takes the general 3x3 product.

_N = iiwa7.N_JOINTS


def _times_rows(cols: list, M) -> list:
    """Columns of R @ M, given the columns of R and the rows of M."""
    return [
        [cols[0][r] * M[0][c] + cols[1][r] * M[1][c] + cols[2][r] * M[2][c] for r in range(3)]
        for c in range(3)
    ]


def _chain_lists(q, arm: ArmModel) -> tuple[list, list, list, list]:
    """FK core on Python floats: (origins [7][3], axes [7][3], p_flange [3], R columns [3][3])."""
    cols = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]  # cols[c] = column c of R_base_link
    p = [0.0, 0.0, 0.0]
    origins = []
    axes = []
    cos, sin = math.cos, math.sin
    plan, (f_off, f_rows) = arm._plan
    for n in range(_N):
        off, rows, principal, axis = plan[n]
        for c, v in off:
            col = cols[c]
            p[0] += col[0] * v
            p[1] += col[1] * v
            p[2] += col[2] * v
        origins.append(p.copy())
        if rows is not None:
            cols = _times_rows(cols, rows)
        ang = float(q[n])
        if principal is not None:
            k, sg, i, j = principal
            ck = cols[k]
            axes.append([sg * ck[0], sg * ck[1], sg * ck[2]])
            # R @ Rot_k(sg*q): column i -> c*ci + s*cj, column j -> -s*ci + c*cj (k, i, j cyclic).
            c, s = cos(sg * ang), sin(sg * ang)
            ci, cj = cols[i], cols[j]
            cols[i] = [c * ci[0] + s * cj[0], c * ci[1] + s * cj[1], c * ci[2] + s * cj[2]]
            cols[j] = [c * cj[0] - s * ci[0], c * cj[1] - s * ci[1], c * cj[2] - s * ci[2]]
        else:
            axes.append([sum(cols[m][r] * axis[m] for m in range(3)) for r in range(3)])
            cols = _times_rows(cols, _axis_angle_R(np.array(axis), ang).tolist())
    for c, v in f_off:
        col = cols[c]
        p[0] += col[0] * v
        p[1] += col[1] * v
        p[2] += col[2] * v
    if f_rows is not None:
        cols = _times_rows(cols, f_rows)
    return origins, axes, p, cols


def _axis_angle_R(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues' formula for a unit axis."""
    k = axis
    K = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(angle) * K + (1.0 - np.cos(angle)) * (K @ K)


def _tool_point_lists(p_flange: list, cols: list, name: str, arm: ArmModel) -> list:
    off = arm._points_f[name]
    c0, c1, c2 = cols
    return [p_flange[r] + c0[r] * off[0] + c1[r] * off[1] + c2[r] * off[2] for r in range(3)]


@dataclass
class ChainState:
    """Result of FK: joint origins/axes in the base frame and the flange pose."""

    joint_origins: np.ndarray  # [7, 3] m
    joint_axes: np.ndarray  # [7, 3] unit
    p_flange: np.ndarray  # [3] m
    R_flange: np.ndarray  # [3, 3]
    arm: ArmModel = IIWA7

    def point(self, name: str = "hand") -> np.ndarray:
        return self.p_flange + self.R_flange @ self.arm.tool_points[name]


def _check_q(q) -> np.ndarray:
    q = np.asarray(q, float)
    if q.shape != (_N,):
        raise ValueError(f"q must have {_N} joint angles [rad], got shape {q.shape}")
    return q


def forward(q: np.ndarray, arm: ArmModel = IIWA7) -> ChainState:
    """Forward kinematics in the base frame."""
    q = _check_q(q)
    origins, axes, p, cols = _chain_lists(q.tolist(), arm)
    return ChainState(np.array(origins), np.array(axes), np.array(p), np.array(cols).T, arm)


def fk_point(q: np.ndarray, point: str = "hand", arm: ArmModel = IIWA7) -> np.ndarray:
    """Position [m, base frame] of a tool point (`flange`, `hand`, `tcp`) at joint angles q [rad]."""
    q = _check_q(q)
    _, _, p, cols = _chain_lists(q.tolist(), arm)
    return np.array(_tool_point_lists(p, cols, point, arm))


def jacobian(state: ChainState, point: str = "hand") -> np.ndarray:
    """Geometric Jacobian [6, 7] (linear rows of `point`, then angular rows) in the base frame."""
    p = state.point(point)
    a = state.joint_axes
    d = p - state.joint_origins
    J = np.empty((6, 7))
    # a x d, written out: np.cross costs ~10 us of overhead for 7 rows.
    J[0] = a[:, 1] * d[:, 2] - a[:, 2] * d[:, 1]
    J[1] = a[:, 2] * d[:, 0] - a[:, 0] * d[:, 2]
    J[2] = a[:, 0] * d[:, 1] - a[:, 1] * d[:, 0]
    J[3:] = a.T
    return J


def _jacobian_lists(origins: list, axes: list, p: list) -> list:
    """Geometric Jacobian rows [6][7] from the FK lists (the IK inner loop)."""
    rows = [[0.0] * _N for _ in range(6)]
    r0, r1, r2, r3, r4, r5 = rows
    for n in range(_N):
        a = axes[n]
        o = origins[n]
        dx, dy, dz = p[0] - o[0], p[1] - o[1], p[2] - o[2]
        r0[n] = a[1] * dz - a[2] * dy
        r1[n] = a[2] * dx - a[0] * dz
        r2[n] = a[0] * dy - a[1] * dx
        r3[n], r4[n], r5[n] = a
    return rows


def orientation_error(R: np.ndarray, R_target: np.ndarray) -> np.ndarray:
    """Rotation vector (axis * angle, base frame) taking R to R_target: the log map of R_target R^T.

    Unlike the common 0.5 * sum(r_i x r*_i) error it does not vanish at 180 deg, which matters here: two
    A7 angles pi apart both point the flange down, and only one gives Meta-World's hand orientation."""
    return np.array(
        _orientation_error_lists(np.asarray(R, float).T.tolist(), np.asarray(R_target, float).tolist())
    )


def _orientation_error_lists(cols: list, Rt: list) -> list:
    """`orientation_error` on Python floats: `cols` are the columns of R, `Rt` the rows of R_target."""
    # E = R_target @ R^T: E[r][c] = sum_k R_target[r][k] * R[c][k]; R[c][k] = cols[k][c].
    E = [
        [Rt[r][0] * cols[0][c] + Rt[r][1] * cols[1][c] + Rt[r][2] * cols[2][c] for c in range(3)]
        for r in range(3)
    ]
    cos_a = (E[0][0] + E[1][1] + E[2][2] - 1.0) * 0.5
    cos_a = -1.0 if cos_a < -1.0 else (1.0 if cos_a > 1.0 else cos_a)
    angle = math.acos(cos_a)
    v = [E[2][1] - E[1][2], E[0][2] - E[2][0], E[1][0] - E[0][1]]
    if angle < 1e-9:
        return [0.5 * v[0], 0.5 * v[1], 0.5 * v[2]]
    s = math.sin(angle)
    if s > 1e-6:
        f = angle / (2.0 * s)
        return [v[0] * f, v[1] * f, v[2] * f]
    # angle ~ pi: the axis is the column of (E + I) with the largest norm.
    B = np.array(E) + np.eye(3)
    axis = B[:, int(np.argmax(np.linalg.norm(B, axis=0)))]
    return (axis / np.linalg.norm(axis) * angle).tolist()


@dataclass
class IKResult:
    q: np.ndarray
    position_error_m: float
    orientation_error_rad: float
    iterations: int
    converged: bool
    at_limit: bool


@dataclass
class IKConfig:
    max_iterations: int = 20
    """Hard cap on iterations: the solve is bounded in time whatever the target."""
    damping: float = 0.05
    """DLS damping lambda [m]: trades accuracy for stability near singularities."""
    position_tol_m: float = 1e-4
    orientation_tol_rad: float = 2e-3
    orientation_weight: float = 0.3
    """Weight [m/rad] of orientation error against position error in the stacked task."""
    nullspace_gain: float = 0.1
    """Pull towards the posture `q_rest` in the Jacobian null space (keeps the elbow up, away from limits)."""
    limit_margin_rad: float = 0.02
    """Solutions are clamped this far inside the joint limits."""
    max_step_rad: float = 0.3
    """Largest joint change per iteration (keeps DLS from jumping branches)."""
    max_tilt_rad: float = 0.0
    """0: the stacked (weighted) position + orientation solve. > 0: position first, orientation second
    (docs/decisions/ik-bounded-tilt.md): the orientation error may grow up to this bound [rad] where the
    target cannot be reached with R_target inside the joint limits (the iiwa's A4 limit near its base), and
    joints pinned at a limit are taken out of the Jacobian so that the others make up for them."""


def solve_ik(
    p_target: np.ndarray,
    q_init: np.ndarray,
    R_target: np.ndarray | None = None,
    point: str = "hand",
    q_rest: np.ndarray | None = None,
    cfg: IKConfig | None = None,
    arm: ArmModel = IIWA7,
) -> IKResult:
    """Damped least squares for a position (and optionally orientation) target of a tool point, in the
    base frame, with joint limits (clamped each iteration), a null-space posture term and a bounded
    iteration count. Always returns finite joint angles inside the limits, with the residual.

    Non-finite inputs never reach the solver: a non-finite q_init starts from the middle of the joint
    range, a non-finite target or q_rest is replaced by the start point/posture (a zero-motion solve)."""
    cfg = cfg or IKConfig()
    q_low, q_high = arm.q_low, arm.q_high
    lo = q_low + cfg.limit_margin_rad
    hi = q_high - cfg.limit_margin_rad
    q = np.asarray(q_init, float)
    if q.shape != (_N,):
        raise ValueError(f"q_init must have {_N} joint angles [rad], got shape {q.shape}")
    if not np.all(np.isfinite(q)):
        q = np.where(np.isfinite(q), q, 0.5 * (q_low + q_high))
    q = np.clip(q, lo, hi)
    q_rest = q.copy() if q_rest is None else np.asarray(q_rest, float)
    if not np.all(np.isfinite(q_rest)):
        q_rest = q.copy()
    p_target = np.asarray(p_target, float)
    if p_target.shape != (3,):
        raise ValueError(f"p_target must be a 3-vector [m], got shape {p_target.shape}")
    if not np.all(np.isfinite(p_target)):
        p_target = fk_point(q, point, arm)
    tx, ty, tz = p_target.tolist()
    Rt = None
    if R_target is not None:
        R_target = np.asarray(R_target, float)
        Rt = R_target.tolist()
    if Rt is not None and cfg.max_tilt_rad > 0:
        return _solve_ik_position_first(p_target, q, R_target, point, q_rest, cfg, lo, hi, arm)
    lam2 = cfg.damping**2
    w = cfg.orientation_weight
    m = 3 if Rt is None else 6
    lam2I = lam2 * np.eye(m)
    pos_tol, ori_tol = cfg.position_tol_m, cfg.orientation_tol_rad
    pos_err = ori_err = math.inf
    it = 0
    for it in range(1, cfg.max_iterations + 1):
        origins, axes, pf, cols = _chain_lists(q.tolist(), arm)
        p = _tool_point_lists(pf, cols, point, arm)
        ex, ey, ez = tx - p[0], ty - p[1], tz - p[2]
        pos_err = math.sqrt(ex * ex + ey * ey + ez * ez)
        rows = _jacobian_lists(origins, axes, p)
        if Rt is not None:
            e_r = _orientation_error_lists(cols, Rt)
            ori_err = math.sqrt(e_r[0] * e_r[0] + e_r[1] * e_r[1] + e_r[2] * e_r[2])
            e = np.array([ex, ey, ez, w * e_r[0], w * e_r[1], w * e_r[2]])
            J = np.array(rows)
            J[3:] *= w
        else:
            ori_err = 0.0
            e = np.array([ex, ey, ez])
            J = np.array(rows[:3])
        if pos_err < pos_tol and ori_err < ori_tol:
            it -= 1
            break
        # dq = J^+ e + (I - J^+ J) z with the damped pseudo-inverse J^+ = J^T (J J^T + lam^2 I)^-1 and the
        # posture pull z = k (q_rest - q), rearranged as z + J^T (J J^T + lam^2 I)^-1 (e - J z): one 6x6
        # solve per iteration instead of two (same result, less time).
        z = cfg.nullspace_gain * (q_rest - q)
        dq = z + J.T @ np.linalg.solve(J @ J.T + lam2I, e - J @ z)
        step = max(map(abs, dq.tolist()))  # Python max/abs: cheaper than numpy on 7 values
        if step > cfg.max_step_rad:
            dq *= cfg.max_step_rad / step
        q = np.minimum(np.maximum(q + dq, lo), hi)
    else:
        _, _, pf, cols = _chain_lists(q.tolist(), arm)
        p = _tool_point_lists(pf, cols, point, arm)
        pos_err = math.sqrt((tx - p[0]) ** 2 + (ty - p[1]) ** 2 + (tz - p[2]) ** 2)
        if Rt is not None:
            e_r = _orientation_error_lists(cols, Rt)
            ori_err = math.sqrt(e_r[0] * e_r[0] + e_r[1] * e_r[1] + e_r[2] * e_r[2])
        else:
            ori_err = 0.0
    at_limit = bool(np.any(q <= lo + 1e-9) or np.any(q >= hi - 1e-9))
    return IKResult(
        q=q,
        position_error_m=float(pos_err),
        orientation_error_rad=float(ori_err),
        iterations=it,
        converged=bool(pos_err < pos_tol * 10 and ori_err < ori_tol * 10),
        at_limit=at_limit,
    )


def start_posture(
    p_target: np.ndarray, R_target: np.ndarray, point: str = "hand", arm: ArmModel = IIWA7
) -> IKResult:
    """The arm posture a skill starts from: the tool point at `p_target` [m, base frame] with the flange at
    `R_target`, elbow up (solved to convergence from iiwa7.HOME_SEED_Q_RAD with the orientation weighted
    over position). Where the point is out of reach with that orientation (near the base the A4 limit
    binds), the orientation stays exact and the point is the closest reachable one: see the residual.
    Shared by the simulated embodiment's home posture and sim2real's ready move, so that the ready move ends
    in a posture the policies started from in training."""
    seed = np.asarray(iiwa7.HOME_SEED_Q_RAD, float)
    cfg = IKConfig(max_iterations=200, orientation_weight=2.0, nullspace_gain=0.05)
    return solve_ik(np.asarray(p_target, float), seed, R_target, point=point, cfg=cfg, arm=arm)


def _damped_pinv(J: np.ndarray, lam2: float) -> np.ndarray:
    return J.T @ np.linalg.solve(J @ J.T + lam2 * np.eye(J.shape[0]), np.eye(J.shape[0]))


def _solve_ik_position_first(p_target, q, R_target, point, q_rest, cfg, lo, hi, arm) -> IKResult:
    """Task-priority DLS (`IKConfig.max_tilt_rad`, docs/decisions/ik-bounded-tilt.md): the position is the
    primary task and the orientation the secondary one in its null space, then the posture pull; while the orientation error
    exceeds max_tilt_rad the priorities swap (bring the tilt back to the bound first, position second), so
    a solution that reaches its target is within the bound (far out of reach with joints pinned it may not
    be: callers check the orientation residual, as Sim2RealMapper does). Joints at a limit that the step would push
    further out are locked (their Jacobian column zeroed) and the step recomputed: clamping alone leaves
    the rest of the arm waiting for a joint that cannot move (door-open: A4 at -120 deg)."""
    lam2 = cfg.damping**2
    eye = np.eye(_N)
    bound = cfg.max_tilt_rad
    pos_err = ori_err = math.inf
    it = 0

    def errors(q):
        origins, axes, pf, cols = _chain_lists(q.tolist(), arm)
        p = _tool_point_lists(pf, cols, point, arm)
        e_p = p_target - np.array(p)
        e_o = np.array(_orientation_error_lists(cols, Rt))
        return origins, axes, p, e_p, e_o

    Rt = R_target.tolist()
    for it in range(1, cfg.max_iterations + 1):
        origins, axes, p, e_p, e_o = errors(q)
        pos_err, ori_err = float(np.linalg.norm(e_p)), float(np.linalg.norm(e_o))
        if pos_err < cfg.position_tol_m and ori_err < cfg.orientation_tol_rad:
            it -= 1
            break
        J = np.array(_jacobian_lists(origins, axes, p))
        Jp, Jo = J[:3], J[3:]
        if ori_err > bound:
            # Over the tilt bound: remove the excess first (the bound is a hard limit), position second.
            tasks = ((Jo, e_o * (1.0 - bound / ori_err)), (Jp, e_p))
        else:
            tasks = ((Jp, e_p), (Jo, e_o))
        z = cfg.nullspace_gain * (q_rest - q)
        free = np.ones(_N)
        for _ in range(3):
            (J1, e1), (J2, e2) = tasks
            J1f, J2f = J1 * free, J2 * free
            P1 = _damped_pinv(J1f, lam2)
            dq = P1 @ e1
            # The exact null space of the primary task: the damped one leaks the secondary task into it
            # (door-open: position residuals of 5 cm remained with a DLS projector).
            N1 = eye - np.linalg.pinv(J1f, rcond=1e-3) @ J1f
            J2n = J2f @ N1
            dq = dq + N1 @ (_damped_pinv(J2n, lam2) @ (e2 - J2f @ dq))
            Jall = np.vstack((J1f, J2f))
            dq = dq + (eye - _damped_pinv(Jall, lam2) @ Jall) @ (z * free)
            dq *= free
            pinned = ((q <= lo + 1e-9) & (dq < 0)) | ((q >= hi - 1e-9) & (dq > 0))
            if not np.any(pinned & (free > 0)):
                break
            free[pinned] = 0.0
        step = float(np.max(np.abs(dq)))
        if step > cfg.max_step_rad:
            dq *= cfg.max_step_rad / step
        q = np.minimum(np.maximum(q + dq, lo), hi)
    else:
        _, _, _, e_p, e_o = errors(q)
        pos_err, ori_err = float(np.linalg.norm(e_p)), float(np.linalg.norm(e_o))
    at_limit = bool(np.any(q <= lo + 1e-9) or np.any(q >= hi - 1e-9))
    return IKResult(
        q=q,
        position_error_m=pos_err,
        orientation_error_rad=ori_err,
        iterations=it,
        converged=bool(pos_err < cfg.position_tol_m * 10 and ori_err < cfg.orientation_tol_rad * 10),
        at_limit=at_limit,
    )


def sim_to_base(p_sim: np.ndarray, p_base_in_sim: np.ndarray, R_sim_base: np.ndarray) -> np.ndarray:
    """A point in the simulator world frame expressed in the robot base frame."""
    return R_sim_base.T @ (np.asarray(p_sim, float) - p_base_in_sim)


def R_base_flange_down(R_sim_base: np.ndarray, tool: ToolMount | None = None) -> np.ndarray:
    """The flange orientation [base frame] that holds the hand at Meta-World's fixed orientation
    (iiwa7.HAND_QUAT_DOWN), for the tool's mounting (default: the shipped gripper, which gives
    iiwa7.R_WORLD_FLANGE_DOWN: flange facing down)."""
    R_flange_hand = (tool or IIWA7.tool).R_flange_hand
    return R_sim_base.T @ quat_to_R(iiwa7.HAND_QUAT_DOWN) @ R_flange_hand.T
