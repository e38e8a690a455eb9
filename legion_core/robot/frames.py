"""Rigid transforms between the frames of the sim2real layer (REP-103: metres, radians, right-handed).

Frames: `sim_world` (Meta-World's world frame, what the policy sees), `base` (the robot base),
`camera` (the camera's optical frame: z forward, x right, y down), `marker` (a detected fiducial).

Naming: `T_a_b` maps coordinates in frame b to frame a (`p_a = T_a_b.apply(p_b)`), so that products chain
left to right by matching inner names: `T_sim_camera = T_sim_base @ T_base_camera`. A `Transform` may carry
the names of its two frames; `@` then refuses to chain mismatched frames, which catches the classic
inverted-calibration bug at the first use instead of as a 0.5 m offset on the robot.

Quaternions are (w, x, y, z) like MuJoCo and Meta-World (ROS messages are (x, y, z, w): convert at the
edge). Roll-pitch-yaw are the ROS/URDF fixed-axis angles: R = Rz(yaw) @ Ry(pitch) @ Rx(roll).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


class FrameError(ValueError):
    """A rotation/transform is malformed, or two transforms are chained across mismatched frames."""


ROTATION_TOL = 1e-6
"""Default tolerance of `is_rotation`: max |R^T R - I| entry and |det R - 1|."""


def rotation_problem(R, tol: float = ROTATION_TOL) -> str | None:
    """Why R is not a proper rotation matrix (None when it is): shape, finiteness, orthonormality, det."""
    try:
        R = np.asarray(R, float)
    except (TypeError, ValueError):
        return "is not numeric"
    if R.shape != (3, 3):
        return f"must be 3x3, got shape {R.shape}"
    if not np.all(np.isfinite(R)):
        return "has non-finite entries"
    ortho = float(np.max(np.abs(R.T @ R - np.eye(3))))
    det = float(np.linalg.det(R))
    if det < 0:
        return f"is not a proper rotation (det={det:.3g}): a reflection, e.g. one axis flipped"
    if ortho > tol or abs(det - 1.0) > tol:
        return f"is not orthonormal (max |R^T R - I| = {ortho:.3g}, det={det:.6g}, tolerance {tol:g})"
    return None


def is_rotation(R, tol: float = ROTATION_TOL) -> bool:
    """True for a finite 3x3 orthonormal matrix with det +1 (within tol)."""
    return rotation_problem(R, tol) is None


def check_rotation(R, name: str = "rotation", tol: float = ROTATION_TOL) -> np.ndarray:
    """R as a float array, or FrameError naming `name` and the problem."""
    problem = rotation_problem(R, tol)
    if problem is not None:
        raise FrameError(f"{name} {problem}")
    return np.asarray(R, float)


def rot_x(angle_rad: float) -> np.ndarray:
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rot_y(angle_rad: float) -> np.ndarray:
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_z(angle_rad: float) -> np.ndarray:
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def quat_to_R(q_wxyz, name: str = "quaternion", norm_tol: float | None = None) -> np.ndarray:
    """Rotation matrix of a (w, x, y, z) quaternion. It is normalised; with `norm_tol` a norm further than
    that from 1 raises instead (calibration files: a typo should not be silently normalised away)."""
    q = np.asarray(q_wxyz, float).reshape(-1)
    if q.shape != (4,) or not np.all(np.isfinite(q)):
        raise FrameError(f"{name} must be 4 finite numbers (w, x, y, z), got {np.asarray(q_wxyz).tolist()}")
    n = float(np.linalg.norm(q))
    if n < 1e-9:
        raise FrameError(f"{name} has zero norm")
    if norm_tol is not None and abs(n - 1.0) > norm_tol:
        raise FrameError(f"{name} has norm {n:.6g}, not 1 (tolerance {norm_tol:g}): check for a typo")
    w, x, y, z = q / n
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def R_to_quat(R) -> np.ndarray:
    """(w, x, y, z) unit quaternion of a rotation matrix, with w >= 0 (Shepperd's method: stable for
    every angle, including 180 deg turns)."""
    R = np.asarray(R, float)
    tr = R[0, 0] + R[1, 1] + R[2, 2]
    if tr > 0:
        s = math.sqrt(tr + 1.0) * 2.0
        q = [0.25 * s, (R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s]
    elif R[0, 0] > R[1, 1] and R[0, 0] > R[2, 2]:
        s = math.sqrt(1.0 + R[0, 0] - R[1, 1] - R[2, 2]) * 2.0
        q = [(R[2, 1] - R[1, 2]) / s, 0.25 * s, (R[0, 1] + R[1, 0]) / s, (R[0, 2] + R[2, 0]) / s]
    elif R[1, 1] > R[2, 2]:
        s = math.sqrt(1.0 + R[1, 1] - R[0, 0] - R[2, 2]) * 2.0
        q = [(R[0, 2] - R[2, 0]) / s, (R[0, 1] + R[1, 0]) / s, 0.25 * s, (R[1, 2] + R[2, 1]) / s]
    else:
        s = math.sqrt(1.0 + R[2, 2] - R[0, 0] - R[1, 1]) * 2.0
        q = [(R[1, 0] - R[0, 1]) / s, (R[0, 2] + R[2, 0]) / s, (R[1, 2] + R[2, 1]) / s, 0.25 * s]
    q = np.array(q)
    q /= np.linalg.norm(q)
    return -q if q[0] < 0 else q


def rpy_to_R(rpy_rad) -> np.ndarray:
    """ROS fixed-axis roll, pitch, yaw [rad] -> R = Rz(yaw) Ry(pitch) Rx(roll)."""
    r, p, y = (float(v) for v in np.asarray(rpy_rad, float).reshape(3))
    return rot_z(y) @ rot_y(p) @ rot_x(r)


def R_to_rpy(R) -> np.ndarray:
    """Inverse of `rpy_to_R` (pitch in [-pi/2, pi/2]; at gimbal lock roll is set to 0)."""
    R = np.asarray(R, float)
    sp = -R[2, 0]
    sp = max(-1.0, min(1.0, sp))
    pitch = math.asin(sp)
    if abs(sp) > 1.0 - 1e-9:
        roll = 0.0
        yaw = math.atan2(-R[0, 1], R[1, 1])
    else:
        roll = math.atan2(R[2, 1], R[2, 2])
        yaw = math.atan2(R[1, 0], R[0, 0])
    return np.array([roll, pitch, yaw])


def look_at_R(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """Rotation of a camera optical frame (z forward, x right, y down) at `eye` looking at `target`,
    with image-up as close to `up` as possible: columns are the camera axes in the parent frame."""
    z = np.asarray(target, float) - np.asarray(eye, float)
    z /= np.linalg.norm(z)
    x = np.cross(z, np.asarray(up, float))
    if np.linalg.norm(x) < 1e-9:
        raise FrameError("look_at_R: viewing direction is parallel to `up`; pick another up vector")
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.column_stack([x, y, z])


@dataclass(frozen=True, eq=False)
class Transform:
    """A rigid transform T_parent_child: p_parent = R @ p_child + p.

    `R` [3, 3] is the child frame's axes in the parent frame; `p` [m] its origin in the parent frame.
    `parent`/`child` are optional frame names; when both operands of `@` name their frames, the inner
    names must match."""

    R: np.ndarray
    p: np.ndarray
    parent: str = ""
    child: str = ""
    _check: bool = field(default=True, repr=False, compare=False)

    def __post_init__(self) -> None:
        R = np.array(self.R, float)
        p = np.array(self.p, float).reshape(-1)
        if self._check:
            R = check_rotation(R, f"{self.name}.rotation")
            if p.shape != (3,) or not np.all(np.isfinite(p)):
                raise FrameError(f"{self.name}.translation must be 3 finite numbers [m], got {p.tolist()}")
        R.flags.writeable = False
        p.flags.writeable = False
        object.__setattr__(self, "R", R)
        object.__setattr__(self, "p", p)

    # -- construction --------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return f"T_{self.parent or '?'}_{self.child or '?'}"

    @classmethod
    def identity(cls, parent: str = "", child: str = "") -> Transform:
        return cls(np.eye(3), np.zeros(3), parent, child)

    @classmethod
    def from_matrix(cls, T, parent: str = "", child: str = "") -> Transform:
        """From a homogeneous 4x4 matrix (last row must be 0 0 0 1)."""
        T = np.asarray(T, float)
        if T.shape != (4, 4):
            raise FrameError(f"homogeneous transform must be 4x4, got shape {T.shape}")
        if not np.allclose(T[3], [0.0, 0.0, 0.0, 1.0], atol=1e-9):
            raise FrameError(f"last row of a homogeneous transform must be [0, 0, 0, 1], got {T[3].tolist()}")
        return cls(T[:3, :3], T[:3, 3], parent, child)

    @classmethod
    def from_quat(cls, p, q_wxyz, parent: str = "", child: str = "") -> Transform:
        return cls(quat_to_R(q_wxyz), p, parent, child)

    @classmethod
    def from_rpy(cls, p, rpy_rad, parent: str = "", child: str = "") -> Transform:
        return cls(rpy_to_R(rpy_rad), p, parent, child)

    # -- views ---------------------------------------------------------------------------------------
    def matrix(self) -> np.ndarray:
        """Homogeneous 4x4 matrix."""
        T = np.eye(4)
        T[:3, :3] = self.R
        T[:3, 3] = self.p
        return T

    @property
    def quat_wxyz(self) -> np.ndarray:
        return R_to_quat(self.R)

    @property
    def rpy_rad(self) -> np.ndarray:
        return R_to_rpy(self.R)

    # -- algebra -------------------------------------------------------------------------------------
    def inverse(self) -> Transform:
        """T_child_parent."""
        Rt = self.R.T
        return Transform(Rt, -(Rt @ self.p), self.child, self.parent, _check=False)

    def __matmul__(self, other: Transform) -> Transform:
        if not isinstance(other, Transform):
            return NotImplemented
        if self.child and other.parent and self.child != other.parent:
            raise FrameError(
                f"cannot chain {self.name} @ {other.name}: inner frames {self.child!r} and {other.parent!r} "
                "differ (is one of them inverted?)"
            )
        return Transform(
            self.R @ other.R, self.R @ other.p + self.p, self.parent, other.child or self.child, _check=False
        )

    def apply(self, points) -> np.ndarray:
        """Points [..., 3] in the child frame -> the parent frame."""
        pts = np.asarray(points, float)
        if pts.shape[-1] != 3:
            raise FrameError(f"{self.name}.apply needs points of shape [..., 3], got {pts.shape}")
        return pts @ self.R.T + self.p

    def apply_vector(self, vectors) -> np.ndarray:
        """Directions [..., 3] (rotation only)."""
        return np.asarray(vectors, float) @ self.R.T

    def with_frames(self, parent: str, child: str) -> Transform:
        return Transform(self.R, self.p, parent, child, _check=False)

    def is_close(self, other: Transform, tol_m: float = 1e-9, tol_rad: float = 1e-9) -> bool:
        d = self.inverse() @ other.with_frames(self.parent, self.child)
        return bool(np.linalg.norm(d.p) <= tol_m and rotation_angle(d.R) <= tol_rad)

    def __repr__(self) -> str:
        return (
            f"Transform({self.name}, p_m={np.round(self.p, 6).tolist()}, "
            f"quat_wxyz={np.round(self.quat_wxyz, 6).tolist()})"
        )


def rotation_angle(R) -> float:
    """Angle [rad] of a rotation matrix (0..pi). atan2 of the sine and cosine parts, not acos of the trace:
    acos loses half the digits near 0 (a 1e-12 perturbation would read as 1e-6 rad)."""
    R = np.asarray(R, float)
    s = 0.5 * math.sqrt((R[2, 1] - R[1, 2]) ** 2 + (R[0, 2] - R[2, 0]) ** 2 + (R[1, 0] - R[0, 1]) ** 2)
    c = 0.5 * (R[0, 0] + R[1, 1] + R[2, 2] - 1.0)
    return math.atan2(s, c)
