"""iiwa 7 R800 kinematics in numpy: forward kinematics (flange, hand, tool centre point), the geometric
Jacobian, and damped-least-squares IK for a position target at the fixed downward orientation the policy
assumes (issue 5 §Kinematics).

One model for sim and real: the chain is built from `legion_core.robots.iiwa7`, the same numbers the
MJCF of the simulated KUKA embodiment is generated from (`tests/unit/test_kinematics.py` checks FK
against MuJoCo). Frames: everything here is in the robot `base` frame (REP-103) unless a `T_world_base`
is given; metres and radians.

Why a hand-written solver rather than MuJoCo's: the robot PC runs it at the command rate without a
simulator, and it must be bounded in time (fixed iteration cap) and report its residual.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from legion_core.robots import iiwa7

_AXES = np.array(iiwa7.JOINT_AXES, float)
_OFFSETS = np.array(iiwa7.JOINT_OFFSETS_Z_M, float)
Q_LOW = iiwa7.JOINT_LIMITS_RAD[:, 0].copy()
Q_HIGH = iiwa7.JOINT_LIMITS_RAD[:, 1].copy()


def _quat_to_R(q) -> np.ndarray:
    w, x, y, z = np.asarray(q, float) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def _axis_angle_R(axis: np.ndarray, angle: float) -> np.ndarray:
    # Rodrigues; the axes here are unit vectors along +-x/y/z.
    k = axis
    K = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(angle) * K + (1.0 - np.cos(angle)) * (K @ K)


#: The `hand` body in the flange frame, and the tcp in the hand frame (hand +x points away from the arm).
R_FLANGE_HAND = _quat_to_R(iiwa7.FLANGE_TO_HAND_QUAT)
P_FLANGE_HAND = np.array([0.0, 0.0, iiwa7.FLANGE_TO_HAND_M])
P_HAND_TCP = np.array([iiwa7.HAND_TO_TCP_M, 0.0, 0.0])

#: Points on the tool that can be controlled, as offsets in the flange frame.
TOOL_POINTS = {
    "flange": np.zeros(3),
    "hand": P_FLANGE_HAND,
    "tcp": P_FLANGE_HAND + R_FLANGE_HAND @ P_HAND_TCP,
}


@dataclass
class ChainState:
    """Result of FK: joint origins/axes in the base frame and the flange pose."""

    joint_origins: np.ndarray  # [7, 3] m
    joint_axes: np.ndarray  # [7, 3] unit
    p_flange: np.ndarray  # [3] m
    R_flange: np.ndarray  # [3, 3]

    def point(self, name: str = "hand") -> np.ndarray:
        return self.p_flange + self.R_flange @ TOOL_POINTS[name]


def forward(q: np.ndarray) -> ChainState:
    """Forward kinematics in the base frame."""
    q = np.asarray(q, float)
    if q.shape != (iiwa7.N_JOINTS,):
        raise ValueError(f"q must have {iiwa7.N_JOINTS} joint angles [rad], got shape {q.shape}")
    R = np.eye(3)
    p = np.zeros(3)
    origins = np.empty((7, 3))
    axes = np.empty((7, 3))
    for i in range(7):
        p = p + R[:, 2] * _OFFSETS[i]
        origins[i] = p
        axes[i] = R @ _AXES[i]
        R = R @ _axis_angle_R(_AXES[i], q[i])
    p = p + R[:, 2] * iiwa7.A7_TO_FLANGE_M
    return ChainState(origins, axes, p, R)


def fk_point(q: np.ndarray, point: str = "hand") -> np.ndarray:
    return forward(q).point(point)


def jacobian(state: ChainState, point: str = "hand") -> np.ndarray:
    """Geometric Jacobian [6, 7] (linear rows of `point`, then angular rows) in the base frame."""
    p = state.point(point)
    Jv = np.cross(state.joint_axes, p - state.joint_origins).T
    return np.vstack([Jv, state.joint_axes.T])


def orientation_error(R: np.ndarray, R_target: np.ndarray) -> np.ndarray:
    """Rotation vector (axis * angle, base frame) taking R to R_target: the log map of R_target R^T.

    Unlike the common 0.5 * sum(r_i x r*_i) error it does not vanish at 180 deg, which matters here: two
    A7 angles pi apart both point the flange down, and only one gives Meta-World's hand orientation."""
    E = R_target @ R.T
    cos_a = np.clip((np.trace(E) - 1.0) * 0.5, -1.0, 1.0)
    angle = np.arccos(cos_a)
    v = np.array([E[2, 1] - E[1, 2], E[0, 2] - E[2, 0], E[1, 0] - E[0, 1]])
    if angle < 1e-9:
        return 0.5 * v
    s = np.sin(angle)
    if s > 1e-6:
        return v * (angle / (2.0 * s))
    # angle ~ pi: the axis is the column of (E + I) with the largest norm.
    B = E + np.eye(3)
    axis = B[:, int(np.argmax(np.linalg.norm(B, axis=0)))]
    return axis / np.linalg.norm(axis) * angle


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


def solve_ik(
    p_target: np.ndarray,
    q_init: np.ndarray,
    R_target: np.ndarray | None = None,
    point: str = "hand",
    q_rest: np.ndarray | None = None,
    cfg: IKConfig | None = None,
) -> IKResult:
    """Damped least squares for a position (and optionally orientation) target of a tool point, in the
    base frame, with joint limits (clamped each iteration), a null-space posture term and a bounded
    iteration count. Always returns finite joint angles inside the limits, with the residual."""
    cfg = cfg or IKConfig()
    q = np.clip(np.asarray(q_init, float), Q_LOW + cfg.limit_margin_rad, Q_HIGH - cfg.limit_margin_rad)
    q_rest = q.copy() if q_rest is None else np.asarray(q_rest, float)
    p_target = np.asarray(p_target, float)
    lam2 = cfg.damping**2
    w = cfg.orientation_weight
    pos_err = ori_err = np.inf
    it = 0
    for it in range(1, cfg.max_iterations + 1):
        st = forward(q)
        e_p = p_target - st.point(point)
        J = jacobian(st, point)
        if R_target is not None:
            e_r = orientation_error(st.R_flange, R_target)
            e = np.concatenate([e_p, w * e_r])
            J = np.vstack([J[:3], w * J[3:]])
            ori_err = float(np.linalg.norm(e_r))
        else:
            e = e_p
            J = J[:3]
            ori_err = 0.0
        pos_err = float(np.linalg.norm(e_p))
        if pos_err < cfg.position_tol_m and ori_err < cfg.orientation_tol_rad:
            it -= 1
            break
        JJt = J @ J.T
        A = JJt + lam2 * np.eye(JJt.shape[0])
        dq = J.T @ np.linalg.solve(A, e)
        # Null-space posture term: (I - J^+ J) k (q_rest - q), with the damped pseudo-inverse.
        J_pinv = J.T @ np.linalg.solve(A, np.eye(JJt.shape[0]))
        dq += (np.eye(7) - J_pinv @ J) @ (cfg.nullspace_gain * (q_rest - q))
        step = np.max(np.abs(dq))
        if step > cfg.max_step_rad:
            dq *= cfg.max_step_rad / step
        q = np.clip(q + dq, Q_LOW + cfg.limit_margin_rad, Q_HIGH - cfg.limit_margin_rad)
    else:
        st = forward(q)
        pos_err = float(np.linalg.norm(p_target - st.point(point)))
        ori_err = (
            float(np.linalg.norm(orientation_error(st.R_flange, R_target))) if R_target is not None else 0.0
        )
    at_limit = bool(
        np.any(q <= Q_LOW + cfg.limit_margin_rad + 1e-9) or np.any(q >= Q_HIGH - cfg.limit_margin_rad - 1e-9)
    )
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


def R_base_flange_down(R_sim_base: np.ndarray) -> np.ndarray:
    """The fixed downward flange orientation (Meta-World's hand orientation) in the base frame."""
    return R_sim_base.T @ iiwa7.R_WORLD_FLANGE_DOWN
