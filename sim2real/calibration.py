"""Calibration of a robot cell against the simulator: load, validate, save, and the hand-eye solver.

A calibration says where the robot base sits in the policy's frame (`T_sim_base`), where the camera sits
in the robot base frame (`T_base_camera`, the hand-eye result), how to get from a detected marker to the
point the simulator calls the object (per-label `markers`), the gripper's opening range, and how the
robot's driver names its joints. Files are YAML, every key commented with its unit and meaning; see
`config/calibration_sim.yaml` (the simulated twin) and `config/calibration_example_real.yaml`.

Marker offsets: `offset_m` goes from the detected marker's origin to the object's reference point (the
point Meta-World observes, e.g. the handle of a drawer). `frame: marker` (default) expresses it in the
marker's own axes, so it stays right when the object turns (door, window, faucet); `frame: sim_world`
expresses it in sim_world axes, which ignores the (noisier) marker orientation and suits objects that only
translate (puck, drawer). A label used by the active skill must be listed (a zero offset is an explicit
statement, never a silent default).

Errors are `CalibrationError`s that name the field, the problem and the fix, e.g.
"T_base_camera.rotation is not a proper rotation (det=-1): ...".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import yaml

from legion_core.robot import iiwa7
from legion_core.robot.description import DATASHEET, SHIPPED, ArmSource, load_arm
from legion_core.robot.frames import (
    FrameError,
    R_to_quat,
    R_to_rpy,
    Transform,
    look_at_R,
    quat_to_R,
    rpy_to_R,
)
from legion_core.robot.kinematics import ArmModel, ToolMount

SCHEMA = "legion-calibration/1"
CONFIG_DIR = Path(__file__).resolve().parent / "config"
SIM_CALIBRATION_PATH = CONFIG_DIR / "calibration_sim.yaml"
EXAMPLE_REAL_CALIBRATION_PATH = CONFIG_DIR / "calibration_example_real.yaml"

MARKER_FRAMES = ("marker", "sim_world")
#: Sanity bounds: a cell is a few metres across; anything beyond is a unit error (mm, cm) or a typo.
MAX_TRANSLATION_M = 5.0
MAX_MARKER_OFFSET_M = 0.5
MAX_GRIPPER_OPENING_M = 0.3
QUAT_NORM_TOL = 1e-3

#: The twin's camera: opposite the robot across the table, 0.75 m up, looking at the table centre. It
#: only needs to be plausible: the twin expresses simulated detections in it, so that the real2sim path
#: (camera -> base -> sim_world) is exercised with a non-trivial transform.
SIM_CAMERA_EYE_M = (0.0, 1.45, 0.75)
SIM_CAMERA_TARGET_M = (0.0, 0.65, 0.0)


class CalibrationError(ValueError):
    """A calibration file or value is malformed; the message names the field and the fix."""


@dataclass(frozen=True)
class MarkerOffset:
    """Detected marker -> the object's reference point (what the simulator observes)."""

    offset_m: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Offset [m] from the marker origin to the object's reference point."""
    frame: str = "marker"
    """Axes `offset_m` is expressed in: `marker` (the detected marker's, rotates with it) or `sim_world`."""


@dataclass
class Calibration:
    T_sim_base: Transform
    """Robot base frame in sim_world (parent sim_world, child base)."""
    T_base_camera: Transform
    """Camera optical frame in the robot base frame (hand-eye result)."""
    markers: dict[str, MarkerOffset]
    """Detection label -> marker offset."""
    gripper_open_m: float
    """Finger opening [m] commanded for gripper action -1 (open)."""
    gripper_closed_m: float
    """Finger opening [m] commanded for gripper action +1 (close)."""
    joint_names: dict[str, str]
    """Robot driver's joint name -> LEGION joint name (lbr_A1..lbr_A7, base to flange)."""
    name: str = ""
    """Free text: which cell/robot/date."""
    frame_ids: dict[str, str] = field(
        default_factory=lambda: {"sim_world": "sim_world", "base": "lbr_link_0", "camera": "camera"}
    )
    """Frame names for ROS tf and logs."""
    hand_eye: dict | None = None
    """Optional hand-eye quality record: rms_residual_m, max_residual_m, n_samples."""
    contact_limits: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Skill -> (force [N], torque [N m]) bounds of the contact guard for that skill (absent skills: the
    supervisor's max_contact_force_N / max_contact_torque_Nm; docs/robot-integration.md, "Contact guard")."""
    arm: ArmSource = field(default_factory=ArmSource)
    """Where the arm's kinematics and limits come from and the tool on its flange (docs/robot-integration.md,
    "Robot description"); default: the iiwa 7 datasheet model with the shipped gripper."""
    source: str = "<memory>"
    """Where it was loaded from (for error messages)."""

    def __post_init__(self) -> None:
        self.T_sim_base = self.T_sim_base.with_frames("sim_world", "base")
        self.T_base_camera = self.T_base_camera.with_frames("base", "camera")
        validate_calibration(self)

    @property
    def T_sim_camera(self) -> Transform:
        return self.T_sim_base @ self.T_base_camera

    def static_transforms(self) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
        """The calibrated frames as static transforms (parent, child, translation [m], quaternion (w,x,y,z)),
        both children of the robot base: base -> sim_world (T_sim_base inverted) and base -> camera
        (T_base_camera). The base is the parent because the robot's own description already gives it a
        parent (tf allows one per frame), so the calibration only adds leaves."""
        from legion_core.robot.frames import R_to_quat

        fid = self.frame_ids
        out = []
        for child, T in (("sim_world", self.T_sim_base.inverse()), ("camera", self.T_base_camera)):
            out.append((fid["base"], fid[child], np.array(T.p, float), R_to_quat(T.R)))
        return out

    @property
    def robot_joint_names(self) -> tuple[str, ...]:
        """The robot's names of lbr_A1..lbr_A7, in LEGION order."""
        inv = {v: k for k, v in self.joint_names.items()}
        return tuple(inv[n] for n in iiwa7.JOINT_NAMES)

    def arm_model(self, urdf_text: str | None = None) -> ArmModel:
        """The arm described by `arm` (`urdf_text`: the driver's robot_description, for `topic`). A description
        whose joints the driver names differently from joint_names is refused: the two would disagree on
        which joint is which."""
        folder = Path(self.source).parent if Path(self.source).is_file() else None
        source = self.arm if self.arm.base_link else replace(self.arm, base_link=self.frame_ids["base"])
        try:
            model = load_arm(source, relative_to=folder, urdf_text=urdf_text)
        except ValueError as e:
            raise _err(self.source, "arm.description", f"({self.arm.description}): {e}") from None
        if self.arm.description not in (DATASHEET, *SHIPPED):
            for i, (name, ours) in enumerate(zip(model.joint_names, iiwa7.JOINT_NAMES, strict=True)):
                mapped = self.joint_names.get(name)
                if mapped != ours:
                    what = (
                        f"has no entry for the description's joint {i + 1} ({name!r}, base to flange)"
                        if mapped is None
                        else f"maps the description's joint {i + 1} ({name!r}, base to flange) to {mapped!r}, not {ours!r}"
                    )
                    raise _err(
                        self.source,
                        "joint_names",
                        f"{what}: the description and joint_names disagree on the driver's joints; map each "
                        f"driver joint in the description's order ({list(model.joint_names)})",
                    )
        return model

    def marker(self, label: str) -> MarkerOffset:
        try:
            return self.markers[label]
        except KeyError:
            raise CalibrationError(
                f"{self.source}: markers has no entry for detection label {label!r}; add "
                f"'markers: {{{label}: {{offset_m: [0, 0, 0], frame: marker}}}}' with the measured offset "
                f"(known labels: {sorted(self.markers)})"
            ) from None

    def gripper_opening_m(self, action: float) -> float:
        """Finger opening [m] for a gripper action in [-1 (open), +1 (close)], linear in between."""
        a = min(1.0, max(-1.0, float(action)))
        return self.gripper_open_m + (self.gripper_closed_m - self.gripper_open_m) * (a + 1.0) * 0.5


# -- validation ----------------------------------------------------------------------------------------


def _err(source: str, field_name: str, problem: str) -> CalibrationError:
    return CalibrationError(f"{source}: {field_name} {problem}")


def validate_calibration(cal: Calibration) -> None:
    """Raise CalibrationError on the first problem; checks what a loader cannot see from types alone."""
    src = cal.source
    for nm, T in (("T_sim_base", cal.T_sim_base), ("T_base_camera", cal.T_base_camera)):
        n = float(np.linalg.norm(T.p))
        if n > MAX_TRANSLATION_M:
            raise _err(
                src,
                f"{nm}.translation_m",
                f"is {n:.3g} m from the origin (limit {MAX_TRANSLATION_M} m): units are "
                "metres; was it entered in mm or cm?",
            )
    for label, m in cal.markers.items():
        off = np.asarray(m.offset_m, float)
        if off.shape != (3,) or not np.all(np.isfinite(off)):
            raise _err(src, f"markers.{label}.offset_m", f"must be 3 finite numbers [m], got {m.offset_m}")
        if np.linalg.norm(off) > MAX_MARKER_OFFSET_M:
            raise _err(
                src,
                f"markers.{label}.offset_m",
                f"is {np.linalg.norm(off):.3g} m long (limit {MAX_MARKER_OFFSET_M} m): units are metres",
            )
        if m.frame not in MARKER_FRAMES:
            raise _err(
                src, f"markers.{label}.frame", f"must be one of {list(MARKER_FRAMES)}, got {m.frame!r}"
            )
    o, c = cal.gripper_open_m, cal.gripper_closed_m
    if not (math.isfinite(o) and math.isfinite(c)):
        raise _err(src, "gripper", f"open_m/closed_m must be finite, got {o}, {c}")
    if not (0.0 <= c < o <= MAX_GRIPPER_OPENING_M):
        raise _err(
            src,
            "gripper",
            f"needs 0 <= closed_m < open_m <= {MAX_GRIPPER_OPENING_M} m, got closed_m={c}, "
            f"open_m={o} (openings in metres)",
        )
    _validate_joint_names(src, cal.joint_names)


def _validate_joint_names(src: str, names: Mapping[str, str]) -> None:
    if not isinstance(names, Mapping):
        raise _err(src, "joint_names", "must map the robot's joint names to lbr_A1..lbr_A7")
    canon = set(iiwa7.JOINT_NAMES)
    bad = {k: v for k, v in names.items() if v not in canon}
    if bad:
        raise _err(
            src,
            "joint_names",
            f"maps to unknown LEGION joints {bad}; targets must be {list(iiwa7.JOINT_NAMES)}",
        )
    targets = list(names.values())
    dup = sorted({v for v in targets if targets.count(v) > 1})
    if dup:
        raise _err(
            src, "joint_names", f"maps several robot joints onto {dup}; each LEGION joint needs exactly one"
        )
    missing = [n for n in iiwa7.JOINT_NAMES if n not in targets]
    if missing:
        raise _err(
            src, "joint_names", f"has no robot joint for {missing}; add 'ROBOT_NAME: {missing[0]}' lines"
        )
    empty = [k for k in names if not isinstance(k, str) or not k]
    if empty:
        raise _err(src, "joint_names", f"has empty or non-string robot joint names {empty}")


# -- YAML ------------------------------------------------------------------------------------------------

_TOP_KEYS = (
    "schema",
    "name",
    "frame_ids",
    "T_sim_base",
    "T_base_camera",
    "hand_eye",
    "markers",
    "gripper",
    "joint_names",
    "contact_limits",
    "arm",
)
_REQUIRED = ("T_sim_base", "T_base_camera", "markers", "gripper", "joint_names")


def _vec(src: str, field_name: str, value, n: int) -> np.ndarray:
    try:
        v = np.asarray(value, float)
    except (TypeError, ValueError):
        raise _err(src, field_name, f"must be a list of {n} numbers, got {value!r}") from None
    if v.shape != (n,):
        raise _err(src, field_name, f"must be a list of {n} numbers, got {value!r}")
    if not np.all(np.isfinite(v)):
        raise _err(src, field_name, f"must be finite, got {value!r}")
    return v


def _transform_from_dict(src: str, name: str, d, parent: str, child: str) -> Transform:
    if not isinstance(d, Mapping):
        raise _err(src, name, "must be a mapping with translation_m and rotation")
    unknown = set(d) - {"translation_m", "rotation"}
    if unknown:
        raise _err(src, name, f"has unknown key(s) {sorted(unknown)}; expected translation_m, rotation")
    if "translation_m" not in d:
        raise _err(src, f"{name}.translation_m", "is missing: add 'translation_m: [x, y, z]' in metres")
    p = _vec(src, f"{name}.translation_m", d["translation_m"], 3)
    rot = d.get("rotation")
    forms = ("quaternion_wxyz", "rpy_rad", "matrix")
    if not isinstance(rot, Mapping) or len(rot) != 1 or next(iter(rot)) not in forms:
        raise _err(
            src,
            f"{name}.rotation",
            f"must hold exactly one of {list(forms)}, got {rot!r} "
            "(e.g. 'rotation: {quaternion_wxyz: [1, 0, 0, 0]}')",
        )
    ((form, value),) = rot.items()
    try:
        if form == "quaternion_wxyz":
            R = quat_to_R(
                _vec(src, f"{name}.rotation.quaternion_wxyz", value, 4),
                f"{name}.rotation.quaternion_wxyz",
                norm_tol=QUAT_NORM_TOL,
            )
        elif form == "rpy_rad":
            R = rpy_to_R(_vec(src, f"{name}.rotation.rpy_rad", value, 3))
        else:
            R = np.asarray(value, float)
        return Transform(R, p, parent, child)
    except FrameError as e:
        raise CalibrationError(
            f"{src}: {name}.rotation ({form}): {e}. Fix the {form} entries (a rotation "
            "matrix must be orthonormal with det +1)"
        ) from None
    except (TypeError, ValueError) as e:
        raise _err(src, f"{name}.rotation.{form}", f"is malformed: {e}") from None


def calibration_from_dict(d: Mapping, source: str = "<dict>") -> Calibration:
    """Parse and validate the YAML structure (see the shipped files for the commented schema)."""
    if not isinstance(d, Mapping):
        raise CalibrationError(f"{source}: the calibration must be a YAML mapping, got {type(d).__name__}")
    unknown = set(d) - set(_TOP_KEYS)
    if unknown:
        raise CalibrationError(
            f"{source}: unknown top-level key(s) {sorted(unknown)}; known: {list(_TOP_KEYS)}"
        )
    missing = [k for k in _REQUIRED if k not in d]
    if missing:
        raise CalibrationError(
            f"{source}: missing required key(s) {missing}; see {SIM_CALIBRATION_PATH.name}"
        )
    schema = d.get("schema", SCHEMA)
    if schema != SCHEMA:
        raise _err(source, "schema", f"is {schema!r}; this runtime reads {SCHEMA!r}")
    T_sim_base = _transform_from_dict(source, "T_sim_base", d["T_sim_base"], "sim_world", "base")
    T_base_camera = _transform_from_dict(source, "T_base_camera", d["T_base_camera"], "base", "camera")
    markers_d = d["markers"] or {}
    if not isinstance(markers_d, Mapping):
        raise _err(source, "markers", "must map detection labels to {offset_m, frame}")
    markers = {}
    for label, m in markers_d.items():
        if not isinstance(m, Mapping) or "offset_m" not in m or set(m) - {"offset_m", "frame"}:
            raise _err(
                source,
                f"markers.{label}",
                f"must be {{offset_m: [x, y, z], frame: marker|sim_world}}, got {m!r}",
            )
        off = _vec(source, f"markers.{label}.offset_m", m["offset_m"], 3)
        markers[str(label)] = MarkerOffset(tuple(float(v) for v in off), str(m.get("frame", "marker")))
    g = d["gripper"]
    if not isinstance(g, Mapping) or set(g) != {"open_m", "closed_m"}:
        raise _err(source, "gripper", f"must be {{open_m: <m>, closed_m: <m>}}, got {g!r}")
    try:
        g_open, g_closed = float(g["open_m"]), float(g["closed_m"])
    except (TypeError, ValueError):
        raise _err(source, "gripper", f"open_m/closed_m must be numbers [m], got {g!r}") from None
    jn = d["joint_names"]
    _validate_joint_names(source, jn)
    frame_ids = d.get("frame_ids") or {}
    if not isinstance(frame_ids, Mapping) or set(frame_ids) - {"sim_world", "base", "camera"}:
        raise _err(source, "frame_ids", f"may only name sim_world, base, camera; got {frame_ids!r}")
    fid = {
        "sim_world": "sim_world",
        "base": "lbr_link_0",
        "camera": "camera",
        **{k: str(v) for k, v in frame_ids.items()},
    }
    hand_eye = d.get("hand_eye")
    if hand_eye is not None and not isinstance(hand_eye, Mapping):
        raise _err(
            source, "hand_eye", "must be a mapping (rms_residual_m, max_residual_m, n_samples) or absent"
        )
    limits_d = d.get("contact_limits") or {}
    if not isinstance(limits_d, Mapping):
        raise _err(source, "contact_limits", "must map skill names to {force_N, torque_Nm}")
    contact_limits = {}
    for skill, lim in limits_d.items():
        if not isinstance(lim, Mapping) or set(lim) != {"force_N", "torque_Nm"}:
            raise _err(
                source, f"contact_limits.{skill}", f"must be {{force_N: <N>, torque_Nm: <N m>}}, got {lim!r}"
            )
        v = _vec(source, f"contact_limits.{skill}", [lim["force_N"], lim["torque_Nm"]], 2)
        if np.any(v < 0):
            raise _err(source, f"contact_limits.{skill}", f"bounds must be >= 0 (0 = off), got {lim!r}")
        contact_limits[str(skill)] = (float(v[0]), float(v[1]))
    return Calibration(
        T_sim_base=T_sim_base,
        T_base_camera=T_base_camera,
        markers=markers,
        gripper_open_m=g_open,
        gripper_closed_m=g_closed,
        joint_names={str(k): str(v) for k, v in jn.items()},
        name=str(d.get("name", "")),
        frame_ids=fid,
        hand_eye=dict(hand_eye) if hand_eye is not None else None,
        contact_limits=contact_limits,
        arm=_arm_from_dict(source, d.get("arm")),
        source=source,
    )


_ARM_KEYS = ("description", "base_link", "flange_link", "T_flange_hand", "hand_to_tcp_m")


def _arm_from_dict(src: str, d) -> ArmSource:
    if d is None:
        return ArmSource()
    if not isinstance(d, Mapping) or set(d) - set(_ARM_KEYS):
        raise _err(src, "arm", f"must be a mapping with keys from {list(_ARM_KEYS)}, got {d!r}")
    default = ArmSource()
    tool = default.tool
    if "T_flange_hand" in d:
        T = _transform_from_dict(src, "arm.T_flange_hand", d["T_flange_hand"], "flange", "hand")
        if np.linalg.norm(T.p) > MAX_MARKER_OFFSET_M:
            raise _err(
                src,
                "arm.T_flange_hand.translation_m",
                f"is {np.linalg.norm(T.p):.3g} m long: units are metres",
            )
        tool = ToolMount(tuple(map(float, T.p)), tuple(map(float, R_to_quat(T.R))), tool.hand_to_tcp_xyz_m)
    if "hand_to_tcp_m" in d:
        tcp = _vec(src, "arm.hand_to_tcp_m", d["hand_to_tcp_m"], 3)
        if np.linalg.norm(tcp) > MAX_MARKER_OFFSET_M:
            raise _err(src, "arm.hand_to_tcp_m", f"is {np.linalg.norm(tcp):.3g} m long: units are metres")
        tool = ToolMount(tool.flange_to_hand_xyz_m, tool.flange_to_hand_quat_wxyz, tuple(map(float, tcp)))
    try:
        return ArmSource(
            description=str(d.get("description", default.description)),
            base_link=str(d.get("base_link", default.base_link)),
            flange_link=str(d.get("flange_link", default.flange_link)),
            tool=tool,
        )
    except ValueError as e:
        raise _err(src, "arm", str(e)) from None


def load_calibration(path: str | Path) -> Calibration:
    path = Path(path)
    if not path.exists():
        raise CalibrationError(
            f"calibration file {path} does not exist (shipped examples are in {CONFIG_DIR})"
        )
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise CalibrationError(f"{path}: not valid YAML: {e}") from None
    return calibration_from_dict(data, source=str(path))


def sim_calibration() -> Calibration:
    """The calibration of the simulated KUKA embodiment (the digital twin)."""
    return load_calibration(SIM_CALIBRATION_PATH)


def _f(x: float) -> str:
    # 12 decimals (sub-picometre) keeps files readable: no 8.3e-17 residue from the matrix products.
    return repr(round(float(x), 12) + 0.0)


def _list(v) -> str:
    return "[" + ", ".join(_f(x) for x in np.asarray(v, float).reshape(-1)) + "]"


def _line(text: str, comment: str, col: int = 46) -> str:
    return f"{text:<{col}} # {comment}" if len(text) < col else f"{text}  # {comment}"


def calibration_to_yaml(cal: Calibration, header: str = "") -> str:
    """The calibration as YAML with every key commented (unit and meaning). Rotations are written as
    quaternions, with the equivalent roll/pitch/yaw in degrees in the comment for a human to check."""
    out = []
    for ln in (header or f"LEGION calibration: {cal.name}").splitlines():
        out.append(f"# {ln}".rstrip())
    out += [
        "# Frames (REP-103): metres, radians, quaternions (w, x, y, z). T_a_b maps coordinates in frame b to a.",
        "# Read by sim2real.calibration.load_calibration; errors name the field and the fix.",
        _line(f"schema: {SCHEMA}", "format version of this file; do not edit"),
        _line(
            f"name: {yaml.safe_dump(cal.name, default_style=None).strip().splitlines()[0]}",
            "free text: which cell, robot and date this belongs to",
        ),
        _line("frame_ids:", "frame names used for ROS tf and in logs"),
        _line(
            f"  sim_world: {cal.frame_ids['sim_world']}",
            "the policy's frame (Meta-World's world, table top z=0)",
        ),
        _line(f"  base: {cal.frame_ids['base']}", "the robot base frame as the driver names it"),
        _line(
            f"  camera: {cal.frame_ids['camera']}", "the camera's optical frame (z forward, x right, y down)"
        ),
    ]
    for nm, T, what in (
        (
            "T_sim_base",
            cal.T_sim_base,
            "pose of the robot base in sim_world (where the arm stands in the training scene)",
        ),
        (
            "T_base_camera",
            cal.T_base_camera,
            "pose of the camera optical frame in the robot base frame (hand-eye result)",
        ),
    ):
        rpy_deg = (np.round(np.rad2deg(R_to_rpy(T.R)), 4) + 0.0).tolist()
        parent, child = ("sim_world", "base") if nm == "T_sim_base" else ("base", "camera")
        out += [
            _line(f"{nm}:", what),
            _line(f"  translation_m: {_list(T.p)}", f"{child} origin in {parent} [m]"),
            _line("  rotation:", f"{child} axes in {parent}: one of quaternion_wxyz | rpy_rad | matrix"),
            _line(
                f"    quaternion_wxyz: {_list(T.quat_wxyz)}",
                f"unit quaternion (w,x,y,z); = rpy {rpy_deg} deg",
            ),
        ]
    if cal.hand_eye:
        out.append(
            _line("hand_eye:", "quality of the hand-eye solve that produced T_base_camera (information)")
        )
        units = {
            "rms_residual_m": "RMS residual [m]",
            "max_residual_m": "largest residual [m]",
            "n_samples": "number of tool poses used [1]",
        }
        for k, v in cal.hand_eye.items():
            out.append(_line(f"  {k}: {v}", units.get(k, "information")))
    out.append(_line("markers:", "detection label -> offset from the detected marker to the object's point"))
    for label, m in sorted(cal.markers.items()):
        out += [
            _line(f"  {label}:", f"detections labelled {label!r}"),
            _line(
                f"    offset_m: {_list(m.offset_m)}", "marker origin -> the point the simulator observes [m]"
            ),
            _line(f"    frame: {m.frame}", "axes of offset_m: marker (turns with the marker) | sim_world"),
        ]
    out += [
        _line("gripper:", "finger opening range commanded for gripper actions -1..+1"),
        _line(f"  open_m: {_f(cal.gripper_open_m)}", "opening [m] at action -1 (open)"),
        _line(
            f"  closed_m: {_f(cal.gripper_closed_m)}",
            "opening [m] at action +1 (closed; grasps stop on the object)",
        ),
        _line("joint_names:", "robot driver's joint name -> LEGION joint (lbr_A1..lbr_A7, base to flange)"),
    ]
    for robot_name, ours in cal.joint_names.items():
        out.append(_line(f"  {robot_name}: {ours}", f"driver joint {robot_name!r} is LEGION's {ours}"))
    if cal.arm != ArmSource():
        tool = cal.arm.tool
        rpy_deg = (np.round(np.rad2deg(R_to_rpy(tool.R_flange_hand)), 4) + 0.0).tolist()
        out += [
            _line(
                "arm:", "the arm's kinematics, limits and tool (docs/robot-integration.md, Robot description)"
            ),
            _line(
                f"  description: {cal.arm.description}",
                "datasheet | iiwa7 | iiwa14 | topic (the driver's robot_description) | URDF file (relative to here)",
            ),
        ]
        if cal.arm.base_link:
            out.append(
                _line(
                    f"  base_link: {cal.arm.base_link}", "first link of the chain (default: frame_ids.base)"
                )
            )
        out += [
            _line(
                f"  flange_link: {cal.arm.flange_link}", "link at the flange face, where the tool is mounted"
            ),
            _line("  T_flange_hand:", "pose of the policy's `hand` point on the tool, in the flange frame"),
            _line(f"    translation_m: {_list(tool.flange_to_hand_xyz_m)}", "hand origin in flange [m]"),
            _line("    rotation:", "hand axes in flange (the policy holds the hand at a fixed orientation)"),
            _line(
                f"      quaternion_wxyz: {_list(tool.flange_to_hand_quat_wxyz)}",
                f"unit quaternion (w,x,y,z); = rpy {rpy_deg} deg",
            ),
            _line(
                f"  hand_to_tcp_m: {_list(tool.hand_to_tcp_xyz_m)}", "tool centre point in the hand frame [m]"
            ),
        ]
    if cal.contact_limits:
        out.append(
            _line("contact_limits:", "contact guard bounds per skill (others: sim2real_node's max_contact_*)")
        )
        for skill, (f, t) in sorted(cal.contact_limits.items()):
            out += [
                _line(f"  {skill}:", f"while {skill} runs"),
                _line(f"    force_N: {_f(f)}", "estimated external force bound [N] (0 = off)"),
                _line(f"    torque_Nm: {_f(t)}", "estimated external torque bound [N m] (0 = off)"),
            ]
    return "\n".join(out) + "\n"


def save_calibration(cal: Calibration, path: str | Path, header: str = "") -> Path:
    """Write the commented YAML (validated first: an invalid calibration is never written)."""
    validate_calibration(cal)
    text = calibration_to_yaml(cal, header)
    calibration_from_dict(yaml.safe_load(text), source=str(path))  # round-trip check before writing
    path = Path(path)
    path.write_text(text)
    return path


# -- the simulated twin ----------------------------------------------------------------------------------


def sim_marker_labels() -> list[str]:
    """Every detection label the task registry uses (object labels and goal markers)."""
    from legion_core.contracts.tasks import TASKS

    labels = {t.object_label for t in TASKS.values()}
    labels |= {t.goal.marker_label for t in TASKS.values() if t.goal.marker_label}
    return sorted(labels)


def make_sim_calibration() -> Calibration:
    """The calibration that matches the simulated KUKA embodiment: T_sim_base from iiwa7.base_pose_sim(),
    the twin's fixed camera (SIM_CAMERA_EYE_M looking at SIM_CAMERA_TARGET_M), zero marker offsets (the
    twin "detects" the object's reference point itself), Meta-World's gripper normalisation (0.1 m) and
    the driver's default joint names, and the contact guard bound of the button skill, which presses to
    its stop."""
    p_base, R_base = iiwa7.base_pose_sim()
    T_sim_base = Transform(R_base, p_base, "sim_world", "base")
    T_sim_camera = Transform(
        look_at_R(SIM_CAMERA_EYE_M, SIM_CAMERA_TARGET_M), SIM_CAMERA_EYE_M, "sim_world", "camera"
    )
    return Calibration(
        T_sim_base=T_sim_base,
        T_base_camera=T_sim_base.inverse() @ T_sim_camera,
        markers={label: MarkerOffset() for label in sim_marker_labels()},
        gripper_open_m=0.1,
        gripper_closed_m=0.0,
        joint_names={n: n for n in iiwa7.JOINT_NAMES},
        name="simulated KUKA iiwa 7 twin (legion_core.sim.kuka)",
        frame_ids={"sim_world": "sim_world", "base": "lbr_link_0", "camera": "camera_optical_frame"},
        # button-press-topdown pushes the button down to its stop: 306 N sustained over 0.1 s on the twin
        # (the drawer skills stay under the 150 N default); docs/robot-integration.md, "Contact guard".
        contact_limits={"button-press-topdown": (400.0, 30.0)},
    )


# -- hand-eye (eye-to-hand) solver -------------------------------------------------------------------------


@dataclass
class HandEyeResult:
    T_base_camera: Transform
    """The least-squares camera pose in the base frame."""
    rms_residual_m: float
    """RMS of |T_base_camera * marker_camera - tcp_base| over the samples [m]."""
    max_residual_m: float
    """Largest residual [m]: a single bad sample shows here first."""
    residuals_m: np.ndarray
    """Per-sample residual [m]."""
    n_samples: int


def solve_T_base_camera(
    tcp_positions_base,
    marker_positions_camera,
    min_spread_m: float = 0.01,
) -> HandEyeResult:
    """Camera pose in the base frame from N >= 3 corresponding points: the calibration marker's position
    on the tool from FK (`tcp_positions_base` [N, 3], base frame, m — FK(q).point("tcp") plus the marker's
    mount offset) and as the fixed camera sees it (`marker_positions_camera` [N, 3], camera frame, m).

    Rigid least squares (Kabsch/Umeyama without scale): minimises sum |R c_i + t - b_i|^2. Raises
    CalibrationError for N < 3, non-finite data or collinear points (the rotation about their line would
    be undetermined): `min_spread_m` is the smallest RMS spread [m] required off the best-fit line."""
    b = np.asarray(tcp_positions_base, float)
    c = np.asarray(marker_positions_camera, float)
    if b.ndim != 2 or b.shape[1] != 3 or c.shape != b.shape:
        raise CalibrationError(
            f"hand-eye: need two [N, 3] arrays of matching points, got {b.shape} and {c.shape}"
        )
    n = b.shape[0]
    if n < 3:
        raise CalibrationError(
            f"hand-eye: need at least 3 tool positions (better 10+ spread over the workspace), got {n}"
        )
    if not (np.all(np.isfinite(b)) and np.all(np.isfinite(c))):
        raise CalibrationError(
            "hand-eye: the point lists contain NaN/inf; drop the samples without a detection"
        )
    b0, c0 = b.mean(axis=0), c.mean(axis=0)
    B, C = b - b0, c - c0
    for nm, X in (("tool (base frame)", B), ("marker (camera frame)", C)):
        s = np.linalg.svd(X, compute_uv=False)
        off_line = float(s[1] / math.sqrt(n))
        if off_line < min_spread_m:
            raise CalibrationError(
                f"hand-eye: the {nm} points are (nearly) collinear (RMS spread off their line {off_line * 1e3:.2f} "
                f"mm < {min_spread_m * 1e3:.1f} mm): move the tool to positions spanning a plane or volume"
            )
    H = C.T @ B
    U, _, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(Vt.T @ U.T)) or 1.0
    R = Vt.T @ np.diag([1.0, 1.0, d]) @ U.T
    t = b0 - R @ c0
    T = Transform(R, t, "base", "camera")
    res = np.linalg.norm(T.apply(c) - b, axis=1)
    return HandEyeResult(T, float(np.sqrt(np.mean(res**2))), float(res.max()), res, n)


SIM_CALIBRATION_HEADER = """Calibration of the SIMULATED KUKA iiwa 7 twin (legion_core.sim.kuka, joint_position mode).
Generated by `python -m sim2real.calibration --write-sim` (make_sim_calibration()); tests/unit/test_calibration.py
checks that it still matches the simulated embodiment (T_sim_base = iiwa7.base_pose_sim()). The camera is a
fixed, plausible one (opposite the robot, 0.75 m up, looking at the table centre): the twin expresses its
simulated detections in it, so that real2sim's camera -> base -> sim_world path is exercised."""


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--write-sim"]:
        print(save_calibration(make_sim_calibration(), SIM_CALIBRATION_PATH, SIM_CALIBRATION_HEADER))
    else:
        print("usage: python -m sim2real.calibration --write-sim   (regenerates config/calibration_sim.yaml)")
