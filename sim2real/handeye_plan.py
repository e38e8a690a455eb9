"""The poses a hand-eye calibration visits (docs/calibration.md), checked with the arm's model, without ROS.

Hand-eye calibration needs the flange to turn about several axes between samples (sim2real.handeye refuses
rotations about one axis), while the tag on the flange keeps facing the camera. The plan therefore keeps the
flange near the policy's tool-down orientation and varies it a little: a turn about the tool axis (`yaw_deg`,
cycling through a list) and a tilt of `tilt_deg` about a horizontal axis that turns by the golden angle from
pose to pose. The tool point's positions fill a box inside the skill workspace evenly (a Halton sequence).

Each pose is solved by the arm model's IK (legion_core.robot.kinematics.solve_ik, warm-started from the
previous pose so that the elbow stays on one side) and kept only when the solution reaches it (position and
orientation residuals), stays inside the joint limits with a margin, puts the tool point inside the workspace
box and keeps the tool centre point and the flange above the table. A pose that fails is dropped with the
reason. The kept poses are ordered by a nearest-neighbour walk in joint space (short moves).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from legion_core.robot import iiwa7, kinematics
from legion_core.robot.frames import rot_z
from sim2real.calibration import Calibration

GOLDEN_ANGLE_DEG = 137.50776405003785


@dataclass
class SamplePlanConfig:
    """Where the calibration poses are and how they turn."""

    centre_sim_m: tuple[float, float, float] = (0.0, 0.6, 0.25)
    """Centre [m, sim_world] of the box the tool point's positions fill (above the table's middle)."""
    half_extent_m: tuple[float, float, float] = (0.2, 0.12, 0.1)
    """Half the edge lengths [m] of that box, per sim_world axis."""
    n_poses: int = 30
    """Poses generated [1] (before the ones that fail the checks are dropped). On the twin 23 poses in a
    smaller box gave 3.3 mm, 30 in this one 0.7 mm (docs/calibration.md)."""
    yaw_deg: tuple[float, ...] = (0.0, 30.0, -30.0, 15.0, -15.0, 40.0, -40.0)
    """Turns [deg] about the tool axis, cycled through (a tag on a bracket stays in view within about 45 deg)."""
    tilt_deg: float = 15.0
    """Tilt [deg] of the tool axis away from the policy's orientation, about an axis that turns by the
    golden angle from pose to pose (every other pose tilts half as far)."""
    tool_point: str = "hand"
    """The tool point the workspace box bounds (the policy's `hand`)."""
    workspace_low_m: tuple[float, float, float] = (-0.5, 0.40, 0.05)
    """Lower corner [m, sim_world] of the workspace box (a bundle's `workspace_box_sim_m`; the mapper's default)."""
    workspace_high_m: tuple[float, float, float] = (0.5, 1.0, 0.5)
    """Upper corner [m, sim_world] of the workspace box."""
    min_height_m: float = 0.08
    """The tool centre point and the flange stay at least this high [m, sim_world z; the table top is 0]."""
    joint_margin_rad: float = 0.05
    """Postures stay this far [rad] inside the arm's joint limits."""
    max_position_error_m: float = 0.001
    """IK position residual [m] above which a pose is dropped."""
    max_orientation_error_deg: float = 0.5
    """IK orientation residual [deg] above which a pose is dropped."""

    def __post_init__(self) -> None:
        lo, hi = np.asarray(self.workspace_low_m, float), np.asarray(self.workspace_high_m, float)
        if lo.shape != (3,) or hi.shape != (3,) or not np.all(lo < hi):
            raise ValueError(
                f"workspace box needs low < high per axis, got {self.workspace_low_m}..{self.workspace_high_m}"
            )
        c, h = np.asarray(self.centre_sim_m, float), np.asarray(self.half_extent_m, float)
        if (
            c.shape != (3,)
            or h.shape != (3,)
            or not (np.all(np.isfinite(c)) and np.all(np.isfinite(h)) and np.all(h >= 0))
        ):
            raise ValueError(
                f"centre_sim_m and half_extent_m must be 3 finite numbers [m] (extents >= 0), got {self.centre_sim_m}, "
                f"{self.half_extent_m}"
            )
        if int(self.n_poses) != self.n_poses or self.n_poses < 1:
            raise ValueError(f"n_poses must be an integer >= 1, got {self.n_poses}")
        if not self.yaw_deg or not all(math.isfinite(y) and abs(y) <= 90 for y in self.yaw_deg):
            raise ValueError(f"yaw_deg must list turns within +-90 deg, got {self.yaw_deg}")
        if not (math.isfinite(self.tilt_deg) and 0 <= self.tilt_deg <= 45):
            raise ValueError(f"tilt_deg must be in [0, 45] deg, got {self.tilt_deg}")
        if self.tool_point not in kinematics.TOOL_POINT_NAMES:
            raise ValueError(
                f"tool_point must be one of {list(kinematics.TOOL_POINT_NAMES)}, got {self.tool_point!r}"
            )


@dataclass
class PlannedPose:
    name: str
    q: np.ndarray
    """Joint angles [rad], LEGION order (lbr_A1..A7)."""
    tool_sim_m: np.ndarray
    """The tool point at q [m, sim_world]."""
    T_base_flange: tuple[np.ndarray, np.ndarray]
    """(R, p [m]) of the flange at q in the base frame (FK)."""
    yaw_deg: float
    tilt_deg: float


@dataclass
class SamplePlan:
    poses: list[PlannedPose] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)
    """(pose name, why) for every generated pose that failed a check."""


def _halton(k: int, base: int) -> float:
    f, r = 1.0, 0.0
    while k > 0:
        f /= base
        r += f * (k % base)
        k //= base
    return r


def _axis_angle(axis: np.ndarray, angle: float) -> np.ndarray:
    a = axis / np.linalg.norm(axis)
    K = np.array([[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]])
    return np.eye(3) + math.sin(angle) * K + (1 - math.cos(angle)) * (K @ K)


def plan_samples(
    calibration: Calibration,
    config: SamplePlanConfig | None = None,
    arm: kinematics.ArmModel | None = None,
    q_start: np.ndarray | None = None,
) -> SamplePlan:
    """The calibration poses for the calibration's robot base (`T_sim_base`) and arm (module docstring).
    `q_start`: where the arm is (the walk starts at the pose closest to it; default the home seed)."""
    cfg = config or SamplePlanConfig()
    arm = arm or calibration.arm_model()
    T_sb = calibration.T_sim_base
    R_down = kinematics.R_base_flange_down(T_sb.R, arm.tool)
    lo_box, hi_box = np.asarray(cfg.workspace_low_m, float), np.asarray(cfg.workspace_high_m, float)
    q_lo, q_hi = arm.q_low + cfg.joint_margin_rad, arm.q_high - cfg.joint_margin_rad
    seed = np.asarray(iiwa7.HOME_SEED_Q_RAD, float)
    ik_cfg = kinematics.IKConfig(max_iterations=300, orientation_weight=1.0, nullspace_gain=0.05,
                                 limit_margin_rad=cfg.joint_margin_rad)  # fmt: skip
    c, h = np.asarray(cfg.centre_sim_m, float), np.asarray(cfg.half_extent_m, float)
    plan = SamplePlan()
    q_prev = seed.copy()
    for k in range(cfg.n_poses):
        name = f"p{k:02d}"
        u = np.array([_halton(k + 1, 2), _halton(k + 1, 3), _halton(k + 1, 5)])
        p_sim = c + (2 * u - 1) * h
        yaw = float(cfg.yaw_deg[k % len(cfg.yaw_deg)])
        tilt = cfg.tilt_deg * (1.0 if k % 2 == 0 else 0.5)
        phi = math.radians(GOLDEN_ANGLE_DEG * k)
        R_tilt = _axis_angle(np.array([math.cos(phi), math.sin(phi), 0.0]), math.radians(tilt))
        R = R_down @ rot_z(math.radians(yaw)) @ R_tilt  # both in the flange's own axes
        p_base = T_sb.inverse().apply(p_sim)
        # Two seeds: the previous pose's posture (continuity), then the home seed (if the first fails).
        res = None
        for q0 in (q_prev, seed):
            r = kinematics.solve_ik(p_base, q0, R, point=cfg.tool_point, q_rest=seed, cfg=ik_cfg, arm=arm)
            if res is None or (r.position_error_m, r.orientation_error_rad) < (
                res.position_error_m,
                res.orientation_error_rad,
            ):
                res = r
            if (
                r.position_error_m <= cfg.max_position_error_m
                and math.degrees(r.orientation_error_rad) <= cfg.max_orientation_error_deg
            ):
                res = r
                break
        why = _problem(res, arm, cfg, T_sb, lo_box, hi_box, q_lo, q_hi)
        if why:
            plan.dropped.append((name, why))
            continue
        q_prev = res.q
        st = kinematics.forward(res.q, arm)
        plan.poses.append(PlannedPose(name, res.q.copy(), T_sb.apply(st.point(cfg.tool_point)),
                                      (st.R_flange.copy(), st.p_flange.copy()), yaw, tilt))  # fmt: skip
    plan.poses = _walk(plan.poses, seed if q_start is None else np.asarray(q_start, float))
    return plan


def _problem(res, arm, cfg, T_sb, lo_box, hi_box, q_lo, q_hi) -> str:
    if res.position_error_m > cfg.max_position_error_m:
        return f"out of reach: IK position residual {res.position_error_m * 1e3:.1f} mm"
    if math.degrees(res.orientation_error_rad) > cfg.max_orientation_error_deg:
        return f"orientation out of reach: IK residual {math.degrees(res.orientation_error_rad):.2f} deg"
    q = res.q
    if np.any(q < q_lo - 1e-9) or np.any(q > q_hi + 1e-9):
        j = int(np.argmax(np.maximum(q_lo - q, q - q_hi)))
        return f"joint {arm.joint_names[j]} at {math.degrees(q[j]):.1f} deg is within {cfg.joint_margin_rad} rad of its limit"
    st = kinematics.forward(q, arm)
    tool = T_sb.apply(st.point(cfg.tool_point))
    if np.any(tool < lo_box - 1e-9) or np.any(tool > hi_box + 1e-9):
        return f"tool point {np.round(tool, 3).tolist()} m leaves the workspace box"
    for nm in ("tcp", "flange"):
        z = float(T_sb.apply(st.point(nm))[2])
        if z < cfg.min_height_m:
            return f"{nm} {z:.3f} m above the table (minimum {cfg.min_height_m} m)"
    return ""


def _walk(poses: list[PlannedPose], q_start: np.ndarray) -> list[PlannedPose]:
    """Nearest-neighbour order in joint space (largest joint change), from the pose closest to q_start."""
    left, out, q = list(poses), [], q_start
    while left:
        k = min(range(len(left)), key=lambda i: float(np.max(np.abs(left[i].q - q))))
        out.append(left.pop(k))
        q = out[-1].q
    return out
