"""Real robot data -> the policy's observation (docs/method.md#tasks). Pure Python, no ROS, no wall clock.

`Real2Sim` is fed the robot's joint states (by joint NAME, any order), the gripper state and camera
detections (label, pose in the camera frame, stamp, confidence), and builds the observation of the active
skill's layout (legion12: hand | object | padding | goal, in sim_world) on request:

- hand_pos = FK(q).point("hand") mapped through `T_sim_base` (the same kinematic model as the twin);
- obj_pos  = the skill object's marker -> camera -> base -> sim_world, plus the calibrated marker offset;
- goal_pos = a detected goal marker (GoalRule "marker"), or the skill's GoalRule offset applied to the
  object's FIRST accepted position after `reset_skill()` (GoalRule "object_offset"): that is how the task
  code places the goal, at the object's initial position, and it keeps the goal still while the object
  moves (a drawer being closed).

Every observation says whether it may be used: `Observation.valid` with a `reason` naming every failed
check (non-finite, stale, implausible, missing, wrong joint names). An invalid observation has
`vector=None`, never a silently wrong vector. Times are float seconds passed in by the caller (ROS stamps
on the robot, simulated time in the twin, bag time in replays), so the same code is testable and
replayable.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from legion_core.contracts.layouts import ObservationLayout, get_layout
from legion_core.contracts.tasks import TaskSpec, get_task
from legion_core.robot import iiwa7, kinematics
from legion_core.robot.frames import R_to_quat, Transform
from sim2real.calibration import Calibration

#: Fields Real2Sim can fill. A layout asking for anything else is refused at construction (a zero default
#: standing in for e.g. Meta-World's previous-frame block would be a silently wrong vector).
PRODUCED_FIELDS = ("hand_pos", "obj_pos", "goal_pos", "gripper_open", "obj_quat")
PADDING_FIELDS = ("obj2_pos", "obj2_quat")
DETECTION_FILTERS = ("latest", "median")

#: Meta-World's hand box (most tasks' mocap limits), sim_world [m]: the plausibility check adds a margin.
MW_HAND_LOW_M = (-0.5, 0.40, 0.05)
MW_HAND_HIGH_M = (0.5, 1.0, 0.5)


@dataclass(frozen=True)
class Detection:
    """One camera detection of a labelled marker."""

    label: str
    """Detection label (task registry's object_label / marker_label)."""
    position_m: Sequence[float]
    """Marker origin in the camera frame [m]."""
    quat_wxyz: Sequence[float] | None
    """Marker orientation in the camera frame (w, x, y, z); may be None for labels whose offset is in
    sim_world axes (the orientation is then not needed)."""
    stamp: float
    """Capture time [s] (same clock as the joint states and `now`)."""
    confidence: float = 1.0
    """Detector confidence in [0, 1]."""
    frame_id: str = ""
    """The frame `position_m` / `quat_wxyz` are expressed in: one of the calibration's frame_ids (camera,
    base, sim_world); '' = the calibration's camera frame. Any other frame is refused with the reason."""


@dataclass
class Real2SimConfig:
    max_joint_age_s: float = 0.1
    """Joint states older than this [s] make the observation invalid (driver at ~200 Hz: 20 periods)."""
    max_object_age_s: float = 0.5
    """The object detection may be this old [s] (camera at ~30 Hz plus detector latency)."""
    max_goal_age_s: float = 1.0
    """A goal *marker* detection may be this old [s] (goals are static; object_offset goals are latched
    at the object's first sighting and have no age)."""
    max_future_s: float = 0.05
    """Stamps more than this [s] ahead of `now` are rejected (unsynchronised clocks)."""
    joint_limit_tol_rad: float = 0.05
    """Measured joint angles may exceed the datasheet limits by this much [rad] (encoder/model slack)."""
    hand_box_low_m: tuple[float, float, float] = MW_HAND_LOW_M
    """Lower corner [m, sim_world] of the workspace the hand is expected in (Meta-World's hand box)."""
    hand_box_high_m: tuple[float, float, float] = MW_HAND_HIGH_M
    """Upper corner [m, sim_world] of that workspace."""
    hand_margin_m: float = 0.15
    """The hand may be this far [m] outside the hand box before the observation is invalid."""
    detection_box_low_m: tuple[float, float, float] = (-1.0, -0.2, -0.2)
    """Lower corner [m, sim_world] of the sane box for detections (table +- margins): outside = rejected."""
    detection_box_high_m: tuple[float, float, float] = (1.0, 1.5, 1.0)
    """Upper corner [m, sim_world] of the sane detection box."""
    skill_box_low_m: tuple[float, float, float] | None = None
    """Lower corner [m, sim_world] of the skill's workspace (the bundle's `workspace_box_sim_m`, the box
    the hand was trained in); None = not checked (no bundle given). Detections outside it plus
    `skill_box_margin_m` are refused: an object the hand cannot reach is not one a skill of this bundle
    acts on, and chasing it would drive the arm to the edge of its box (docs/architecture.md)."""
    skill_box_high_m: tuple[float, float, float] | None = None
    """Upper corner [m, sim_world] of the skill's workspace."""
    skill_box_margin_m: float = 0.10
    """Detections may lie this far [m] outside the skill's workspace (objects sit below the hand box's
    floor: a puck's centre at z = 0.02 m vs the hand's 0.05 m; a drawer handle travels with the drawer)."""
    min_confidence: float = 0.5
    """Detections below this confidence are dropped."""
    detection_filter: str = "latest"
    """`latest`: newest accepted detection; `median`: component-wise median of the last `median_window`
    fresh ones (rejects single outliers, adds ~half a window of lag)."""
    median_window: int = 5
    """Samples in the median filter."""
    tool_point: str = "hand"
    """Kinematic point reported as hand_pos (Meta-World observes the `hand` body)."""

    def __post_init__(self) -> None:
        if self.detection_filter not in DETECTION_FILTERS:
            raise ValueError(
                f"detection_filter must be one of {DETECTION_FILTERS}, got {self.detection_filter!r}"
            )
        if self.median_window < 1:
            raise ValueError(f"median_window must be >= 1, got {self.median_window}")
        if self.tool_point not in kinematics.TOOL_POINT_NAMES:
            raise ValueError(
                f"tool_point must be one of {list(kinematics.TOOL_POINT_NAMES)}, got {self.tool_point!r}"
            )
        if (self.skill_box_low_m is None) != (self.skill_box_high_m is None):
            raise ValueError("skill_box_low_m and skill_box_high_m must be given together (or neither)")
        if self.skill_box_low_m is not None and not np.all(
            np.asarray(self.skill_box_low_m, float) < np.asarray(self.skill_box_high_m, float)
        ):
            raise ValueError(
                f"skill box needs low < high per axis, got {self.skill_box_low_m}..{self.skill_box_high_m}"
            )
        for nm in ("max_joint_age_s", "max_object_age_s", "max_goal_age_s", "max_future_s", "hand_margin_m",
                   "skill_box_margin_m"):  # fmt: skip
            v = getattr(self, nm)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{nm} must be a finite number >= 0, got {v}")


@dataclass
class Observation:
    valid: bool
    """True when every check passed; only then is `vector` set."""
    reason: str
    """'ok', or every failed check, '; '-separated, each naming its source/field."""
    vector: np.ndarray | None
    """The layout's flat vector (sim_world), or None when invalid."""
    fields: dict[str, np.ndarray]
    """Every field that could be computed (also when invalid, for diagnostics): hand_pos, obj_pos,
    goal_pos, q (LEGION joint order), and gripper_open / obj_quat when available."""
    stamp: float
    """Oldest stamp [s] of the live sources used (joints, object, goal marker): for end-to-end latency
    tracing. NaN when a source is missing."""
    stamps: dict[str, float] = field(default_factory=dict)
    """Stamp [s] of each source: joints, object, goal (the latched first sighting for offset goals), gripper."""
    skill: str = ""
    layout: str = "legion12"


def _qmul(a, b) -> tuple[float, float, float, float]:
    """Hamilton product of two (w, x, y, z) quaternions."""
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return (
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    )


def _qrot(q, v) -> tuple[float, float, float]:
    """Rotate vector v by the unit quaternion q (w, x, y, z)."""
    w, x, y, z = q
    vx, vy, vz = (float(c) for c in v)
    # v + 2 w (u x v) + 2 u x (u x v), u = (x, y, z)
    cx, cy, cz = y * vz - z * vy, z * vx - x * vz, x * vy - y * vx
    ccx, ccy, ccz = y * cz - z * cy, z * cx - x * cz, x * cy - y * cx
    return (vx + 2 * (w * cx + ccx), vy + 2 * (w * cy + ccy), vz + 2 * (w * cz + ccz))


class _Track:
    """Accepted detections of one label, in sim_world."""

    __slots__ = ("samples", "first", "last_problem")

    def __init__(self, maxlen: int) -> None:
        self.samples: deque = deque(maxlen=maxlen)  # (stamp, p_sim [3], quat_sim or None)
        self.first: tuple[float, np.ndarray] | None = None
        self.last_problem = ""


class Real2Sim:
    """Builds the active skill's observation from joint states, gripper state and detections."""

    def __init__(
        self,
        calibration: Calibration,
        task_spec: TaskSpec | str,
        layout: str | ObservationLayout = "legion12",
        config: Real2SimConfig | None = None,
        arm: kinematics.ArmModel | None = None,
    ) -> None:
        """`arm`: the arm's kinematics and limits; None = the calibration's (`Calibration.arm_model`)."""
        self.calibration = calibration
        self.arm = arm or calibration.arm_model()
        self.config = config or Real2SimConfig()
        self.layout = get_layout(layout) if isinstance(layout, str) else layout
        unsupported = [f for f in self.layout.field_names if f not in PRODUCED_FIELDS + PADDING_FIELDS]
        if unsupported:
            raise ValueError(
                f"real2sim cannot fill field(s) {unsupported} of layout {self.layout.name!r}; it produces "
                f"{list(PRODUCED_FIELDS)} (+ zero padding {list(PADDING_FIELDS)})"
            )
        T = calibration.T_sim_base
        self._R_sim_base, self._p_sim_base = T.R, T.p
        # Every calibrated frame a detection may be expressed in -> (R_sim_frame, p_sim_frame, q_sim_frame) as
        # Python lists (this runs per detection at camera rate); '' is the camera (a camera pipeline's default).
        fid = calibration.frame_ids
        self._frames = {}
        for name, T_ in (
            ("sim_world", Transform(np.eye(3), np.zeros(3), _check=False)),
            ("base", T),
            ("camera", calibration.T_sim_camera),
        ):
            self._frames[fid[name]] = (T_.R.tolist(), T_.p.tolist(), tuple(R_to_quat(T_.R).tolist()))
        self._frames[""] = self._frames[fid["camera"]]
        self._robot_to_index = {r: iiwa7.JOINT_NAMES.index(c) for r, c in calibration.joint_names.items()}
        cfg = self.config
        self._q_lo = self.arm.q_low - cfg.joint_limit_tol_rad
        self._q_hi = self.arm.q_high + cfg.joint_limit_tol_rad
        self._hand_lo = np.asarray(cfg.hand_box_low_m, float) - cfg.hand_margin_m
        self._hand_hi = np.asarray(cfg.hand_box_high_m, float) + cfg.hand_margin_m
        self._det_lo = np.asarray(cfg.detection_box_low_m, float)
        self._det_hi = np.asarray(cfg.detection_box_high_m, float)
        self._skill_lo = self._skill_hi = None
        if cfg.skill_box_low_m is not None:
            self._skill_lo = np.asarray(cfg.skill_box_low_m, float) - cfg.skill_box_margin_m
            self._skill_hi = np.asarray(cfg.skill_box_high_m, float) + cfg.skill_box_margin_m
        self._q: np.ndarray | None = None
        self._q_stamp = math.nan
        self._q_problem = "no joint state received yet"
        self._gripper: tuple[float, float] | None = None
        self.reset_skill(task_spec)

    # -- skill -----------------------------------------------------------------------------------------
    @property
    def task_spec(self) -> TaskSpec:
        return self._task

    def reset_skill(self, task_spec: TaskSpec | str | None = None) -> None:
        """Start a skill (or restart the current one): forget its detections and the latched first object
        position, so that an object_offset goal is re-anchored at the next sighting. Joint and gripper
        state are kept (they do not depend on the skill)."""
        if task_spec is not None:
            self._task = get_task(task_spec) if isinstance(task_spec, str) else task_spec
        spec = self._task
        self._obj_label = spec.object_label
        self._goal_label = spec.goal.marker_label if spec.goal.kind in ("marker", "anchor_offset") else None
        # Fail at skill start, not at the first detection, when the calibration lacks an offset.
        self._offsets = {lb: self.calibration.marker(lb) for lb in (self._obj_label, self._goal_label) if lb}
        n = self.config.median_window if self.config.detection_filter == "median" else 1
        self._tracks = {lb: _Track(n) for lb in self._offsets}

    # -- inputs ----------------------------------------------------------------------------------------
    def set_joint_state(self, names: Sequence[str], positions: Sequence[float], stamp: float) -> None:
        """Joint angles [rad] by the robot's joint names (any order; extra names such as gripper joints are
        ignored). Problems (missing/duplicate names, length mismatch) are reported by `observe`."""
        problem = ""
        q = [math.nan] * iiwa7.N_JOINTS
        if len(names) != len(positions):
            problem = f"{len(names)} joint names but {len(positions)} positions"
        else:
            idx = self._robot_to_index
            seen = 0
            dup = []
            unknown = []
            for nm, v in zip(names, positions):
                i = idx.get(nm)
                if i is None:
                    unknown.append(nm)
                    continue
                if seen >> i & 1:
                    dup.append(nm)
                seen |= 1 << i
                q[i] = float(v)
            if dup:
                problem = f"duplicate joint name(s) {dup}"
            elif seen != (1 << iiwa7.N_JOINTS) - 1:
                robot = self.calibration.robot_joint_names
                missing = [
                    f"{iiwa7.JOINT_NAMES[i]} (robot name {robot[i]!r})" for i in range(7) if not seen >> i & 1
                ]
                problem = f"missing {', '.join(missing)}"
                if unknown:
                    problem += (
                        f"; the message had unknown name(s) {unknown[:9]} (check calibration joint_names)"
                    )
        self._q = np.array(q)
        self._q_stamp = float(stamp)
        self._q_problem = problem

    def set_gripper(self, opening_m: float, stamp: float) -> None:
        """Measured finger opening [m]; reported as gripper_open = opening / 0.1 m clipped to [0, 1]
        (Meta-World's normalisation)."""
        self._gripper = (float(opening_m), float(stamp))

    def tracks(self, label: str) -> bool:
        """Whether detections of `label` matter to the active skill (its object, goal marker or anchor)."""
        return label in self._tracks

    def add_detection(self, det: Detection) -> bool:
        """Buffer a detection of the active skill's object or goal marker (other labels are ignored).
        Returns whether it was accepted. A rejection (low confidence, non-finite, outside the sane box or
        the skill's workspace) invalidates that label at once: its buffered detections are dropped and
        the observation is invalid, naming the cause, until a detection is accepted again (the last good
        one must not keep the arm moving for max_object_age_s). The first sighting that anchors an
        offset goal is kept: it is where the object was when the skill started."""
        track = self._tracks.get(det.label)
        if track is None:
            return False
        problem = ""
        conf = float(det.confidence)
        if not conf >= self.config.min_confidence:  # also rejects NaN
            problem = f"confidence {conf:.2f} < {self.config.min_confidence:.2f}"
        elif not math.isfinite(float(det.stamp)):
            problem = "non-finite stamp"
        else:
            p_sim, quat_sim, problem = self._to_sim(det)
            if not problem and (np.any(p_sim < self._det_lo) or np.any(p_sim > self._det_hi)):
                problem = (
                    f"position {np.round(p_sim, 3).tolist()} m (sim_world) outside the sane box "
                    f"{self._det_lo.tolist()}..{self._det_hi.tolist()}"
                )
            elif (
                not problem
                and self._skill_lo is not None
                and (np.any(p_sim < self._skill_lo) or np.any(p_sim > self._skill_hi))
            ):
                problem = (
                    f"position {np.round(p_sim, 3).tolist()} m (sim_world) outside the skill's workspace "
                    f"{list(self.config.skill_box_low_m)}..{list(self.config.skill_box_high_m)} "
                    f"+ {self.config.skill_box_margin_m} m"
                )
        if problem:
            track.last_problem = f"rejected detection at t={float(det.stamp):.3f}: {problem}"
            track.samples.clear()
            return False
        stamp = float(det.stamp)
        s = track.samples
        if s and stamp < s[-1][0]:
            # Out of order (e.g. two camera pipelines): keep the deque sorted by stamp.
            items = sorted([*s, (stamp, p_sim, quat_sim)], key=lambda x: x[0])
            s.clear()
            s.extend(items[-s.maxlen :])
        else:
            s.append((stamp, p_sim, quat_sim))
        if track.first is None:
            track.first = (stamp, p_sim)
        track.last_problem = ""
        return True

    def add_detections(self, dets: Iterable[Detection]) -> tuple[int, int]:
        """Buffer detections; returns (accepted, rejected) among the labels the active skill tracks."""
        acc = rej = 0
        for d in dets:
            if self.add_detection(d):
                acc += 1
            elif d.label in self._tracks:
                rej += 1
        return acc, rej

    def _to_sim(self, det: Detection) -> tuple[np.ndarray, tuple | None, str]:
        """Detection -> (object point in sim_world [m], marker orientation in sim_world (w,x,y,z) or None,
        problem). Python floats throughout: this runs for every detection at camera rate."""
        frame = self._frames.get(det.frame_id)
        if frame is None:
            known = ", ".join(k for k in self._frames if k)
            return (
                np.zeros(3),
                None,
                (
                    f"frame {det.frame_id!r} is not a calibrated frame ({known}): publish detections in one of them"
                ),
            )
        R, t, q_frame = frame
        try:
            px, py, pz = (float(v) for v in det.position_m)
        except (TypeError, ValueError):
            return np.zeros(3), None, f"position must be 3 numbers, got {det.position_m!r}"
        if not (math.isfinite(px) and math.isfinite(py) and math.isfinite(pz)):
            return np.zeros(3), None, f"non-finite position {[px, py, pz]}"
        q_sim = None
        if det.quat_wxyz is not None:
            try:
                qw, qx, qy, qz = (float(v) for v in det.quat_wxyz)
            except (TypeError, ValueError):
                return np.zeros(3), None, f"orientation must be 4 numbers (w,x,y,z), got {det.quat_wxyz!r}"
            n = math.sqrt(qw * qw + qx * qx + qy * qy + qz * qz)
            if not (math.isfinite(n) and abs(n - 1.0) < 0.1):
                # A pose estimator emitting a non-unit quaternion is broken; do not guess.
                return (
                    np.zeros(3),
                    None,
                    f"orientation is not a unit quaternion (w,x,y,z): {[qw, qx, qy, qz]}",
                )
            q_sim = _qmul(q_frame, (qw / n, qx / n, qy / n, qz / n))
        p = [R[i][0] * px + R[i][1] * py + R[i][2] * pz + t[i] for i in range(3)]
        off = self._offsets[det.label]
        if off.frame == "marker":
            if any(off.offset_m):
                if q_sim is None:
                    return (
                        np.array(p),
                        None,
                        "needs an orientation (marker-frame offset) but quat_wxyz is None",
                    )
                d = _qrot(q_sim, off.offset_m)
                p = [p[0] + d[0], p[1] + d[1], p[2] + d[2]]
        else:
            o = off.offset_m
            p = [p[0] + o[0], p[1] + o[1], p[2] + o[2]]
        return np.array(p), q_sim, ""

    # -- output ----------------------------------------------------------------------------------------
    def _track_value(self, label: str, now: float, max_age: float, what: str, problems: list) -> tuple:
        track = self._tracks[label]
        cfg = self.config
        if track.last_problem:
            problems.append(f"{what} {label!r}: {track.last_problem}")
            return None, None, math.nan
        if not track.samples:
            msg = f"{what} {label!r}: not detected since the skill started"
            problems.append(f"{msg} ({track.last_problem})" if track.last_problem else msg)
            return None, None, math.nan
        fresh = [s for s in track.samples if now - s[0] <= max_age]
        newest = track.samples[-1]
        if newest[0] - now > cfg.max_future_s:
            problems.append(
                f"{what} {label!r}: stamp {newest[0]:.3f} s is {newest[0] - now:.3f} s in the future"
            )
            return None, None, newest[0]
        if not fresh:
            problems.append(f"{what} {label!r}: stale (age {now - newest[0]:.3f} s > {max_age:.3f} s)")
            return None, None, newest[0]
        if cfg.detection_filter == "median" and len(fresh) > 1:
            p = np.median(np.array([s[1] for s in fresh]), axis=0)
        else:
            p = newest[1]
        return p, newest[2], newest[0]

    def observe(self, now: float) -> Observation:
        """The observation at time `now` [s] (same clock as the stamps)."""
        cfg = self.config
        problems: list[str] = []
        fields: dict[str, np.ndarray] = {}
        stamps: dict[str, float] = {}
        now = float(now)
        if not math.isfinite(now):
            problems.append(f"now={now} is not finite")
        # Joints -> hand.
        q = self._q
        stamps["joints"] = self._q_stamp
        if q is None or self._q_problem:
            problems.append(f"joints: {self._q_problem}")
        else:
            fields["q"] = q
            bad = [iiwa7.JOINT_NAMES[i] for i in range(7) if not math.isfinite(q[i])]
            age = now - self._q_stamp
            if bad:
                problems.append(f"joints: non-finite value for {bad}")
            elif not math.isfinite(self._q_stamp):
                problems.append("joints: non-finite stamp")
            else:
                if age > cfg.max_joint_age_s:
                    problems.append(f"joints: stale (age {age:.3f} s > {cfg.max_joint_age_s:.3f} s)")
                elif -age > cfg.max_future_s:
                    problems.append(f"joints: stamp {self._q_stamp:.3f} s is {-age:.3f} s in the future")
                out = (q < self._q_lo) | (q > self._q_hi)
                if out.any():
                    i = int(np.argmax(out))
                    problems.append(
                        f"joints: {iiwa7.JOINT_NAMES[i]} = {q[i]:.3f} rad outside its limits "
                        f"[{self.arm.q_low[i]:.3f}, {self.arm.q_high[i]:.3f}] (+{cfg.joint_limit_tol_rad} tolerance)"
                    )
                hand = self._R_sim_base @ kinematics.fk_point(q, cfg.tool_point, self.arm) + self._p_sim_base
                fields["hand_pos"] = hand
                if np.any(hand < self._hand_lo) or np.any(hand > self._hand_hi):
                    problems.append(
                        f"hand_pos: {np.round(hand, 3).tolist()} m outside the workspace box "
                        f"{cfg.hand_box_low_m}..{cfg.hand_box_high_m} + {cfg.hand_margin_m} m margin"
                    )
        # Object.
        obj, obj_quat, stamps["object"] = self._track_value(
            self._obj_label, now, cfg.max_object_age_s, "object", problems
        )
        if obj is not None:
            obj = self._task.object_point(obj)
            fields["obj_pos"] = obj
            if obj_quat is not None:
                fields["obj_quat"] = np.array(obj_quat)
        # Goal.
        goal_rule = self._task.goal
        if goal_rule.kind == "marker":
            goal, _, stamps["goal"] = self._track_value(
                self._goal_label, now, cfg.max_goal_age_s, "goal marker", problems
            )
        elif goal_rule.kind == "anchor_offset":
            # A static marker (the drawer's cabinet): latched at its first sighting since the skill started.
            anchor = self._tracks[self._goal_label]
            first = anchor.first
            goal = None
            if anchor.last_problem:
                # The anchor was latched, but the camera now reports it somewhere implausible: the scene
                # may have changed (or the detector broke), so the latched goal is not trusted either.
                problems.append(f"goal: anchor {self._goal_label!r}: {anchor.last_problem}")
            elif first is None:
                problems.append(f"goal: anchor {self._goal_label!r} not detected since the skill started")
            else:
                stamps["goal"] = first[0]
                goal = goal_rule.goal_from_anchor(first[1])
        else:
            first = self._tracks[self._obj_label].first
            if first is None:
                goal = None
                if obj is not None:  # cannot happen (first is set with the first sample); defensive
                    problems.append("goal: object position was never latched")
                elif not any(p.startswith("object") for p in problems):
                    problems.append(f"goal: needs a first sighting of {self._obj_label!r}")
            else:
                stamps["goal"] = first[0]
                goal = goal_rule.goal_from_object(self._task.object_point(first[1]))
        if goal is not None:
            fields["goal_pos"] = goal
        # Gripper (optional: not in legion12).
        if self._gripper is not None:
            fields["gripper_open"] = np.array([min(1.0, max(0.0, self._gripper[0] / 0.1))])
            stamps["gripper"] = self._gripper[1]
        live = [stamps["joints"], stamps["object"]] + ([stamps["goal"]] if goal_rule.kind == "marker" else [])
        stamp = min(live) if all(math.isfinite(s) for s in live) else math.nan
        vector = None
        if not problems:
            needed = {f: v for f, v in fields.items() if f in self.layout.field_names}
            missing = [f.name for f in self.layout.fields if f.default is None and f.name not in needed]
            if missing:
                problems.append(f"layout {self.layout.name!r} needs {missing} (no source for them)")
            else:
                vector = self.layout.build(needed)
        valid = not problems
        return Observation(
            valid=valid,
            reason="ok" if valid else "; ".join(problems),
            vector=vector if valid else None,
            fields=fields,
            stamp=stamp,
            stamps=stamps,
            skill=self._task.name,
            layout=self.layout.name,
        )
