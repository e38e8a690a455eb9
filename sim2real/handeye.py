"""Hand-eye calibration from a fiducial tag: samples of (flange pose, tag pose) -> the camera's pose, without ROS.

Two set-ups (docs/calibration.md):

- `eye_to_hand`: the camera is fixed in the cell, the tag is on the flange. Unknowns: `T_base_camera` (what the
  runtime's calibration file needs) and `T_flange_tag` (where the tag sits on the flange). Per sample i:
  T_base_camera @ T_camera_tag_i = T_base_flange_i @ T_flange_tag.
- `eye_in_hand`: the camera is on the flange, the tag is fixed in the cell. Unknowns: `T_flange_camera` and
  `T_base_tag`. Per sample i: T_base_flange_i @ T_flange_camera @ T_camera_tag_i = T_base_tag.

A sample is the flange pose in the robot base frame (FK of the measured joints, legion_core.robot.kinematics)
and the tag's pose in the camera's optical frame (sim2real.tags: AprilTag 3 + PnP). The solve has two stages:

1. A closed-form start: OpenCV's robot-world/hand-eye solvers (`cv2.calibrateRobotWorldHandEye`, Shah's and
   Li's methods), which solve both unknowns at once. For eye-to-hand the robot poses are passed as given
   (base -> flange) where eye-in-hand passes them inverted: the same equation with the roles of the tag and
   the robot base swapped, as OpenCV's documentation of its hand-eye solvers describes.
2. Nonlinear least squares over all samples (scipy.optimize.least_squares): each sample's predicted tag pose
   in the camera frame against the detected one, position in metres over `position_sigma_m` (the depth
   axis of the camera over `depth_sigma_m`: PnP of a small tag measures depth worse than the lateral
   position) and orientation (rotation vector) over `rotation_sigma_deg`. The best of the refined starts is
   kept.

The result carries each sample's residual (position mm, rotation deg), their RMS and maximum, a 1-sigma
estimate of the camera pose from the fit's covariance, and a verdict: `passed` when the residuals are under
the configured bounds. Bad input (too few samples, non-finite values, poses that do not rotate the flange
about two different axes) raises `HandEyeError` naming the problem and the fix.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from legion_core.robot.frames import FrameError, Transform, check_rotation, quat_to_R, rotation_angle
from sim2real.calibration import CalibrationError, read_yaml_file

EYE_TO_HAND = "eye_to_hand"
EYE_IN_HAND = "eye_in_hand"
SETUPS = (EYE_TO_HAND, EYE_IN_HAND)


class HandEyeError(CalibrationError):
    """Hand-eye input that cannot give a calibration; the message names the problem and the fix."""


@dataclass(frozen=True)
class HandEyeSample:
    """One pose of the arm: where FK puts the flange and where the camera saw the tag."""

    T_base_flange: Transform
    """Flange pose in the robot base frame (FK of the measured joint angles) [m]."""
    T_camera_tag: Transform
    """Tag pose in the camera's optical frame (the detector's PnP) [m]."""
    name: str = ""
    """Free text naming the pose (the sample plan's name), shown with its residual."""


def make_sample(
    p_base_flange, R_base_flange, p_camera_tag, quat_camera_tag_wxyz, name: str = ""
) -> HandEyeSample:
    """A sample from arrays (FK's position + rotation matrix, the detector's position + quaternion), refused
    with a HandEyeError naming the sample and the field when a value is missing or not finite."""
    where = f"sample {name!r}" if name else "sample"
    try:
        pf = np.asarray(p_base_flange, float).reshape(-1)
        Rf = np.asarray(R_base_flange, float)
        pt = np.asarray(p_camera_tag, float).reshape(-1)
        qt = np.asarray(quat_camera_tag_wxyz, float).reshape(-1)
    except (TypeError, ValueError) as e:
        raise HandEyeError(
            f"hand-eye: {where} is not numeric ({e}): give metres and unit quaternions"
        ) from None
    for field_name, v, n in (("flange position", pf, 3), ("tag position", pt, 3), ("tag quaternion", qt, 4)):
        if v.shape != (n,) or not np.all(np.isfinite(v)):
            raise HandEyeError(
                f"hand-eye: {where} {field_name} must be {n} finite numbers, got {v.tolist()}: drop the sample "
                "(a pose without a detection or joint state) and collect it again"
            )
    try:
        Rf = check_rotation(Rf, "flange rotation", tol=1e-5)
        Rt = quat_to_R(qt, "tag quaternion_wxyz", norm_tol=1e-3)
    except FrameError as e:
        raise HandEyeError(f"hand-eye: {where}: {e}") from None
    return HandEyeSample(Transform(Rf, pf, "base", "flange"), Transform(Rt, pt, "camera", "tag"), name)


@dataclass
class HandEyeConfig:
    """What the solver needs, what input it refuses, and when its result passes."""

    min_samples: int = 8
    """Fewest samples accepted [1]: the closed-form start needs 3; the least squares and a useful residual
    check need more (each sample adds 6 equations for 12 unknowns)."""
    min_rotation_deg: float = 15.0
    """The largest rotation of the flange between two samples must reach this [deg]: smaller rotations leave
    the tag's offset on the flange (and with it the camera's position) poorly determined."""
    min_axis_spread_deg: float = 20.0
    """The flange must turn about at least two axes at least this far apart [deg] (pairs of samples whose
    relative rotation exceeds min_rotation_deg/3): rotations about one axis only leave a translation along
    that axis undetermined (the classic hand-eye degeneracy)."""
    min_position_spread_m: float = 0.03
    """RMS spread of the flange positions about their mean must reach this [m]."""
    position_sigma_m: float = 0.001
    """Expected lateral error of a detected tag position [m] (weights the position residuals across the
    camera's optical axis)."""
    depth_sigma_m: float = 0.003
    """Expected error of a detected tag position along the camera's optical axis [m] (PnP's depth from a
    tag's apparent size is its weakest direction)."""
    rotation_sigma_deg: float = 1.0
    """Expected error of a detected tag orientation [deg] (weights the orientation residuals)."""
    loss: str = "soft_l1"
    """scipy.optimize.least_squares loss: `linear` (plain least squares) or `soft_l1`/`huber`/`cauchy` (a
    single bad detection pulls less), applied to the weighted residuals with scale 3 (3 sigma)."""
    max_rms_position_mm: float = 3.0
    """Verdict: RMS of the per-sample position residuals must be at most this [mm]."""
    max_position_mm: float = 8.0
    """Verdict: every per-sample position residual must be at most this [mm]."""
    max_rms_rotation_deg: float = 2.0
    """Verdict: RMS of the per-sample rotation residuals must be at most this [deg]."""
    max_rotation_deg: float = 5.0
    """Verdict: every per-sample rotation residual must be at most this [deg]."""

    def __post_init__(self) -> None:
        if int(self.min_samples) != self.min_samples or self.min_samples < 3:
            raise ValueError(f"min_samples must be an integer >= 3, got {self.min_samples}")
        for nm in ("position_sigma_m", "depth_sigma_m", "rotation_sigma_deg", "max_rms_position_mm",
                   "max_position_mm", "max_rms_rotation_deg", "max_rotation_deg"):  # fmt: skip
            v = getattr(self, nm)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{nm} must be a finite number > 0, got {v}")
        for nm in ("min_rotation_deg", "min_axis_spread_deg", "min_position_spread_m"):
            v = getattr(self, nm)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{nm} must be a finite number >= 0, got {v}")
        if self.loss not in ("linear", "soft_l1", "huber", "cauchy"):
            raise ValueError(f"loss must be linear, soft_l1, huber or cauchy, got {self.loss!r}")


@dataclass
class SampleResidual:
    index: int
    name: str
    position_mm: float
    """Distance [mm] between the detected tag centre and where the solution puts it (camera frame)."""
    rotation_deg: float
    """Angle [deg] between the detected tag orientation and the solution's."""


@dataclass
class HandEyeSolution:
    setup: str
    """`eye_to_hand` or `eye_in_hand`."""
    camera: Transform
    """eye_to_hand: T_base_camera; eye_in_hand: T_flange_camera."""
    tag: Transform
    """eye_to_hand: T_flange_tag (the tag on the flange); eye_in_hand: T_base_tag (the tag in the cell)."""
    residuals: list[SampleResidual]
    rms_position_mm: float
    max_position_mm: float
    rms_rotation_deg: float
    max_rotation_deg: float
    std_position_mm: float
    """1-sigma uncertainty [mm] of the camera's position, from the fit's covariance (weighted residuals)."""
    std_rotation_deg: float
    """1-sigma uncertainty [deg] of the camera's orientation, from the fit's covariance."""
    start: str
    """Which closed-form start the refined solution came from (e.g. `opencv-shah`)."""
    passed: bool
    verdict: str
    """One line: PASS or FAIL, and which bound failed with the fix."""
    n_samples: int = 0
    config: HandEyeConfig = field(default_factory=HandEyeConfig)

    def report_lines(self) -> list[str]:
        """Per-sample residuals, their summary and the verdict, as printed by `legion calibrate`."""
        name = "T_base_camera" if self.setup == EYE_TO_HAND else "T_flange_camera"
        out = [f"{'#':>3} {'pose':14s} {'position [mm]':>14s} {'rotation [deg]':>15s}"]
        for r in self.residuals:
            flag = (
                "  <- over the bound"
                if r.position_mm > self.config.max_position_mm
                or r.rotation_deg > self.config.max_rotation_deg
                else ""
            )
            out.append(f"{r.index:>3} {r.name[:14]:14s} {r.position_mm:14.2f} {r.rotation_deg:15.3f}{flag}")
        out += [
            f"RMS {self.rms_position_mm:.2f} mm / {self.rms_rotation_deg:.3f} deg, max {self.max_position_mm:.2f} mm / "
            f"{self.max_rotation_deg:.3f} deg over {self.n_samples} samples ({self.setup}, start {self.start})",
            f"{name}: translation {np.round(self.camera.p, 4).tolist()} m, rpy "
            f"{np.round(np.degrees(self.camera.rpy_rad), 3).tolist()} deg (1 sigma {self.std_position_mm:.2f} mm, "
            f"{self.std_rotation_deg:.3f} deg)",
            self.verdict,
        ]
        return out

    def quality_record(self) -> dict:
        """The calibration file's `hand_eye` entry (sim2real.calibration: rms_residual_m, max_residual_m,
        n_samples and the rotation residuals)."""
        return {
            "rms_residual_m": round(self.rms_position_mm * 1e-3, 6),
            "max_residual_m": round(self.max_position_mm * 1e-3, 6),
            "rms_rotation_deg": round(self.rms_rotation_deg, 4),
            "max_rotation_deg": round(self.max_rotation_deg, 4),
            "n_samples": int(self.n_samples),
            "setup": self.setup,
        }


# -- input checks ----------------------------------------------------------------------------------------


def _rotvec(R: np.ndarray) -> np.ndarray:
    """Rotation vector (axis * angle) of a rotation matrix."""
    from scipy.spatial.transform import Rotation

    return Rotation.from_matrix(R).as_rotvec()


def _exp(w: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_rotvec(w).as_matrix()


def check_samples(samples: Sequence[HandEyeSample], cfg: HandEyeConfig) -> None:
    """Refuse input a hand-eye solve cannot use (HandEyeError with the fix)."""
    n = len(samples)
    if n < cfg.min_samples:
        raise HandEyeError(
            f"hand-eye: {n} samples, at least {cfg.min_samples} needed: collect more poses (the sample plan has "
            "20-30; poses without a tag detection are dropped)"
        )
    for i, s in enumerate(samples):
        for nm, T in (("T_base_flange", s.T_base_flange), ("T_camera_tag", s.T_camera_tag)):
            if not isinstance(T, Transform):
                raise HandEyeError(
                    f"hand-eye: sample {i} ({s.name}) {nm} must be a Transform, got {type(T).__name__}"
                )
            if not (np.all(np.isfinite(T.R)) and np.all(np.isfinite(T.p))):
                raise HandEyeError(
                    f"hand-eye: sample {i} ({s.name}) {nm} is not finite: drop the sample and collect it again"
                )
        if s.T_camera_tag.p[2] <= 0:
            raise HandEyeError(
                f"hand-eye: sample {i} ({s.name}) puts the tag {s.T_camera_tag.p[2]:.3f} m along the camera's "
                "optical axis (must be in front of it, > 0): is T_camera_tag inverted (T_tag_camera)?"
            )
    P = np.array([s.T_base_flange.p for s in samples])
    spread = float(np.sqrt(np.mean(np.sum((P - P.mean(axis=0)) ** 2, axis=1))))
    if spread < cfg.min_position_spread_m:
        raise HandEyeError(
            f"hand-eye: the flange positions spread only {spread * 1e3:.1f} mm RMS (at least "
            f"{cfg.min_position_spread_m * 1e3:.0f} mm needed): spread the poses over the workspace"
        )
    Rs = [s.T_base_flange.R for s in samples]
    axes, largest = [], 0.0
    floor = math.radians(cfg.min_rotation_deg) / 3.0
    for i in range(n):
        for j in range(i + 1, n):
            w = _rotvec(Rs[i].T @ Rs[j])  # relative rotation, in flange i's axes
            a = float(np.linalg.norm(w))
            largest = max(largest, a)
            if a > floor:
                axes.append(Rs[i] @ (w / a))  # its axis in the base frame
    if math.degrees(largest) < cfg.min_rotation_deg:
        raise HandEyeError(
            f"hand-eye: the flange turns at most {math.degrees(largest):.1f} deg between samples (at least "
            f"{cfg.min_rotation_deg:.0f} deg needed): add poses turned about the tool axis and tilted"
        )
    spread_deg = 0.0
    if axes:
        A = np.array(axes)
        cos = np.clip(np.abs(A @ A.T), 0.0, 1.0)  # an axis and its opposite are the same axis
        spread_deg = math.degrees(math.acos(float(cos.min())))
    if spread_deg < cfg.min_axis_spread_deg:
        raise HandEyeError(
            f"hand-eye: the flange rotations between samples share nearly one axis (axes at most {spread_deg:.1f} "
            f"deg apart, at least {cfg.min_axis_spread_deg:.0f} deg needed): rotations about a single axis leave the "
            "calibration undetermined along it; add poses tilted about another axis (e.g. tilted 10-20 deg as well as "
            "turned about the tool axis)"
        )


# -- the solve ---------------------------------------------------------------------------------------------


def _opencv_starts(samples: Sequence[HandEyeSample], setup: str) -> list[tuple[str, Transform, Transform]]:
    """Closed-form (X, Y) from OpenCV's robot-world/hand-eye solvers (see the module docstring for the
    frames); a method that fails or returns non-finite values is skipped."""
    import cv2

    R_w2c = [s.T_camera_tag.R for s in samples]
    t_w2c = [s.T_camera_tag.p.reshape(3, 1) for s in samples]
    if setup == EYE_TO_HAND:
        # cTw_i wTb = cTg gTb_i with w = tag, b = flange, g = base: gTb_i = T_base_flange_i.
        robot = [s.T_base_flange for s in samples]
    else:
        # w = tag (fixed in the cell), b = base, g = flange: gTb_i = T_flange_base_i.
        robot = [s.T_base_flange.inverse() for s in samples]
    R_b2g = [T.R for T in robot]
    t_b2g = [T.p.reshape(3, 1) for T in robot]
    out = []
    for label, method in (("opencv-shah", cv2.CALIB_ROBOT_WORLD_HAND_EYE_SHAH),
                          ("opencv-li", cv2.CALIB_ROBOT_WORLD_HAND_EYE_LI)):  # fmt: skip
        try:
            R_b2w, t_b2w, R_g2c, t_g2c = cv2.calibrateRobotWorldHandEye(
                R_w2c, t_w2c, R_b2g, t_b2g, method=method
            )
        except cv2.error:
            continue
        if not all(np.all(np.isfinite(v)) for v in (R_b2w, t_b2w, R_g2c, t_g2c)):
            continue
        try:
            T_w_b = Transform(_orthonormal(R_b2w), np.ravel(t_b2w))  # tag <- (flange | base)
            T_c_g = Transform(_orthonormal(R_g2c), np.ravel(t_g2c))  # camera <- (base | flange)
        except FrameError:
            continue
        # eye_to_hand: X = T_base_camera = T_c_g^-1, Y = T_flange_tag = T_w_b^-1;
        # eye_in_hand: X = T_flange_camera = T_c_g^-1, Y = T_base_tag = T_w_b^-1.
        out.append((label, T_c_g.inverse(), T_w_b.inverse()))
    return out


def _orthonormal(R) -> np.ndarray:
    U, _, Vt = np.linalg.svd(np.asarray(R, float))
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt)) or 1.0])
    return U @ D @ Vt


def _predict(X: Transform, Y: Transform, T_bf: Transform, setup: str) -> tuple[np.ndarray, np.ndarray]:
    """The tag's pose in the camera frame (R, p) that the unknowns X, Y predict for one flange pose."""
    Xi, A, Y = X.with_frames("", "").inverse(), T_bf.with_frames("", ""), Y.with_frames("", "")
    if setup == EYE_TO_HAND:  # T_camera_tag = X^-1 T_base_flange Y
        T = Xi @ A @ Y
    else:  # T_camera_tag = X^-1 T_base_flange^-1 Y
        T = Xi @ A.inverse() @ Y
    return T.R, T.p


def _unpack(x: np.ndarray, X0: Transform, Y0: Transform) -> tuple[Transform, Transform]:
    X = Transform(X0.R @ _exp(x[0:3]), X0.p + x[3:6], _check=False)
    Y = Transform(Y0.R @ _exp(x[6:9]), Y0.p + x[9:12], _check=False)
    return X, Y


def _residual_fn(samples, setup, X0, Y0, cfg):
    """Weighted residuals of all samples (vectorised: least_squares evaluates it ~13 times per iteration)."""
    from scipy.spatial.transform import Rotation

    sig_p, sig_z = cfg.position_sigma_m, cfg.depth_sigma_m
    sig_r = math.radians(cfg.rotation_sigma_deg)
    A = [s.T_base_flange if setup == EYE_TO_HAND else s.T_base_flange.inverse() for s in samples]
    RA = np.array([T.R for T in A])  # [N, 3, 3]
    pA = np.array([T.p for T in A])  # [N, 3]
    Rm = np.array([s.T_camera_tag.R for s in samples])
    pm = np.array([s.T_camera_tag.p for s in samples])
    # Depth is along the line of sight to the tag (the optical axis for a tag near the image centre).
    u = pm / np.linalg.norm(pm, axis=1, keepdims=True)
    n = len(samples)

    def fun(x):
        RX = X0.R @ _exp(x[0:3])
        pX = X0.p + x[3:6]
        RY = Y0.R @ _exp(x[6:9])
        pY = Y0.p + x[9:12]
        # T_camera_tag = X^-1 A_i Y: R = RX^T RA_i RY, p = RX^T (RA_i pY + pA_i - pX).
        R = np.einsum("ji,njk,kl->nil", RX, RA, RY)
        p = (RA @ pY + pA - pX) @ RX
        d = p - pm
        along = np.sum(d * u, axis=1, keepdims=True)
        out = np.empty((n, 6))
        out[:, :3] = (d - along * u) / sig_p + (along / sig_z) * u
        out[:, 3:] = Rotation.from_matrix(np.transpose(Rm, (0, 2, 1)) @ R).as_rotvec() / sig_r
        return out.ravel()

    return fun


def _residuals(samples, setup, X, Y) -> list[SampleResidual]:
    out = []
    for i, s in enumerate(samples):
        R, p = _predict(X, Y, s.T_base_flange, setup)
        out.append(
            SampleResidual(
                i,
                s.name or f"s{i:02d}",
                float(np.linalg.norm(p - s.T_camera_tag.p)) * 1e3,
                math.degrees(rotation_angle(s.T_camera_tag.R.T @ R)),
            )
        )
    return out


def solve_hand_eye(
    samples: Sequence[HandEyeSample],
    setup: str = EYE_TO_HAND,
    config: HandEyeConfig | None = None,
    initial: tuple[Transform, Transform] | None = None,
) -> HandEyeSolution:
    """Solve a hand-eye calibration (module docstring). `initial`: an optional (X, Y) start refined alongside
    OpenCV's (a previous calibration: a wrong one only costs a worse start, the best refined start wins)."""
    from scipy.optimize import least_squares

    cfg = config or HandEyeConfig()
    if setup not in SETUPS:
        raise HandEyeError(f"hand-eye: setup must be one of {list(SETUPS)}, got {setup!r}")
    samples = list(samples)
    check_samples(samples, cfg)
    starts = _opencv_starts(samples, setup)
    if initial is not None:
        starts.append(("given", initial[0].with_frames("", ""), initial[1].with_frames("", "")))
    if not starts:
        raise HandEyeError(
            "hand-eye: OpenCV's closed-form solvers found no solution: check that T_base_flange comes from the "
            "measured joints and T_camera_tag from the same instant (a stale detection breaks every equation)"
        )
    best = None
    for label, X0, Y0 in starts:
        fun = _residual_fn(samples, setup, X0, Y0, cfg)
        res = least_squares(fun, np.zeros(12), loss=cfg.loss, f_scale=3.0, x_scale=1.0, max_nfev=200)
        if best is None or res.cost < best[0].cost:
            best = (res, label, X0, Y0)
    res, label, X0, Y0 = best
    X, Y = _unpack(res.x, X0, Y0)
    X = Transform(_orthonormal(X.R), X.p)
    Y = Transform(_orthonormal(Y.R), Y.p)
    names = (
        ("base", "camera", "flange", "tag") if setup == EYE_TO_HAND else ("flange", "camera", "base", "tag")
    )
    X, Y = X.with_frames(names[0], names[1]), Y.with_frames(names[2], names[3])
    # 1-sigma of the camera pose: the Gauss-Newton covariance, scaled by the residuals' own variance.
    J = res.jac
    dof = max(J.shape[0] - J.shape[1], 1)
    s2 = float(np.sum(res.fun**2)) / dof
    try:
        cov = np.linalg.inv(J.T @ J) * s2
        std_rot = math.degrees(math.sqrt(max(float(np.trace(cov[0:3, 0:3])), 0.0)))
        std_pos = math.sqrt(max(float(np.trace(cov[3:6, 3:6])), 0.0)) * 1e3
    except np.linalg.LinAlgError:
        std_rot = std_pos = math.inf
    residuals = _residuals(samples, setup, X, Y)
    pos = np.array([r.position_mm for r in residuals])
    rot = np.array([r.rotation_deg for r in residuals])
    rms_p, max_p = float(np.sqrt(np.mean(pos**2))), float(pos.max())
    rms_r, max_r = float(np.sqrt(np.mean(rot**2))), float(rot.max())
    failed = []
    if rms_p > cfg.max_rms_position_mm:
        failed.append(f"RMS position {rms_p:.2f} mm > {cfg.max_rms_position_mm} mm")
    if max_p > cfg.max_position_mm:
        worst = residuals[int(pos.argmax())]
        failed.append(f"sample {worst.index} ({worst.name}) {max_p:.2f} mm > {cfg.max_position_mm} mm")
    if rms_r > cfg.max_rms_rotation_deg:
        failed.append(f"RMS rotation {rms_r:.3f} deg > {cfg.max_rms_rotation_deg} deg")
    if max_r > cfg.max_rotation_deg:
        worst = residuals[int(rot.argmax())]
        failed.append(f"sample {worst.index} ({worst.name}) {max_r:.3f} deg > {cfg.max_rotation_deg} deg")
    if failed:
        verdict = (
            "FAIL: "
            + "; ".join(failed)
            + ". Check the tag's printed size in the tag map, the camera intrinsics "
            "and that each detection belongs to its joint state (the arm at rest); drop or recollect the flagged "
            "samples"
        )
    else:
        verdict = (
            f"PASS: residuals within {cfg.max_rms_position_mm} mm RMS / {cfg.max_position_mm} mm max and "
            f"{cfg.max_rms_rotation_deg} deg RMS / {cfg.max_rotation_deg} deg max"
        )
    return HandEyeSolution(
        setup=setup,
        camera=X,
        tag=Y,
        residuals=residuals,
        rms_position_mm=rms_p,
        max_position_mm=max_p,
        rms_rotation_deg=rms_r,
        max_rotation_deg=max_r,
        std_position_mm=std_pos,
        std_rotation_deg=std_rot,
        start=label,
        passed=not failed,
        verdict=verdict,
        n_samples=len(samples),
        config=cfg,
    )


def pose_error(T: Transform, T_true: Transform) -> tuple[float, float]:
    """(position error [mm], rotation error [deg]) between two poses of the same frame pair."""
    dp = float(np.linalg.norm(np.asarray(T.p) - np.asarray(T_true.p))) * 1e3
    return dp, math.degrees(rotation_angle(np.asarray(T_true.R).T @ np.asarray(T.R)))


# -- samples files (`legion calibrate --samples`) ------------------------------------------------------------

SAMPLES_SCHEMA = "legion-handeye-samples/1"


def _pose_dict(T: Transform) -> dict:
    return {
        "translation_m": [round(float(v), 9) for v in T.p],
        "quaternion_wxyz": [round(float(v), 9) for v in T.quat_wxyz],
    }


def samples_to_dict(
    samples: Sequence[HandEyeSample], setup: str, q_rad: Sequence | None = None, note: str = ""
) -> dict:
    """A samples file's content: the set-up and per sample the flange pose (base frame), the tag pose
    (camera frame) and, if given, the measured joint angles they came from."""
    if setup not in SETUPS:
        raise HandEyeError(f"hand-eye: setup must be one of {list(SETUPS)}, got {setup!r}")
    out = []
    for i, s in enumerate(samples):
        d = {"name": s.name or f"s{i:02d}", "T_base_flange": _pose_dict(s.T_base_flange),
             "T_camera_tag": _pose_dict(s.T_camera_tag)}  # fmt: skip
        if q_rad is not None:
            d["q_rad"] = [round(float(v), 9) for v in q_rad[i]]
        out.append(d)
    return {"schema": SAMPLES_SCHEMA, "setup": setup, "note": note, "samples": out}


def samples_from_dict(d, source: str = "<samples>") -> tuple[str, list[HandEyeSample]]:
    """(setup, samples) from a samples file's content; HandEyeError names the entry and the fix."""
    if not isinstance(d, dict) or "samples" not in d:
        raise HandEyeError(
            f"{source}: must be a mapping with 'schema: {SAMPLES_SCHEMA}', 'setup' and 'samples'"
        )
    if d.get("schema", SAMPLES_SCHEMA) != SAMPLES_SCHEMA:
        raise HandEyeError(f"{source}: schema is {d.get('schema')!r}; this runtime reads {SAMPLES_SCHEMA!r}")
    setup = d.get("setup", EYE_TO_HAND)
    if setup not in SETUPS:
        raise HandEyeError(f"{source}: setup must be one of {list(SETUPS)}, got {setup!r}")
    entries = d["samples"]
    if not isinstance(entries, list):
        raise HandEyeError(f"{source}: samples must be a list of {{name, T_base_flange, T_camera_tag}}")
    out = []
    for i, e in enumerate(entries):
        where = f"{source}: samples[{i}]"
        if not isinstance(e, dict) or not {"T_base_flange", "T_camera_tag"} <= set(e):
            raise HandEyeError(
                f"{where} needs T_base_flange and T_camera_tag (translation_m, quaternion_wxyz)"
            )
        poses = []
        for key in ("T_base_flange", "T_camera_tag"):
            p = e[key]
            if not isinstance(p, dict) or set(p) != {"translation_m", "quaternion_wxyz"}:
                raise HandEyeError(
                    f"{where}.{key} must be {{translation_m: [x, y, z], quaternion_wxyz: [w, x, y, z]}}, got {p!r}"
                )
            poses.append((p["translation_m"], p["quaternion_wxyz"]))
        (pf, qf), (pt, qt) = poses
        try:
            qf_arr = np.asarray(qf, float)
            Rf = quat_to_R(qf_arr, f"{where}.T_base_flange.quaternion_wxyz", norm_tol=1e-3)
        except (TypeError, ValueError) as err:
            raise HandEyeError(f"{where}.T_base_flange: {err}") from None
        try:
            out.append(make_sample(pf, Rf, pt, qt, str(e.get("name", f"s{i:02d}"))))
        except HandEyeError as err:
            raise HandEyeError(f"{where}: {err}") from None
    return setup, out


def load_samples(path) -> tuple[str, list[HandEyeSample]]:
    data = read_yaml_file(path, "samples file", "`legion calibrate --twin --save-samples FILE` writes one",
                          HandEyeError)  # fmt: skip
    return samples_from_dict(data, str(path))


def save_samples(
    path, samples: Sequence[HandEyeSample], setup: str, q_rad: Sequence | None = None, note: str = ""
):
    from pathlib import Path

    import yaml

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (
        "# Hand-eye samples (sim2real.handeye; docs/calibration.md): per pose the flange in the robot base frame\n"
        "# (FK of the measured joints) and the tag in the camera's optical frame; metres, quaternions (w, x, y, z).\n"
        "# Solve again with `legion calibrate --samples THIS_FILE`.\n"
    )
    path.write_text(header + yaml.safe_dump(samples_to_dict(samples, setup, q_rad, note), sort_keys=False))
    return path
