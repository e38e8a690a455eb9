"""`legion calibrate --graph` / `--robot`: hand-eye samples through sim2real_node's safety layer
(docs/calibration.md, "Robot path").

The arm moves only as sim2real_node moves it: the client makes `ready` the active skill (the plain ready move
to the ready posture first), then gives each plan pose as a target posture of the ready move (the
`SIM2REAL_READY_TARGET_SERVICE` of legion_core/contracts/interface.py; sim2real.supervisor.set_ready_target:
e-stop, driver interlock, watchdogs; sim2real.mapper.plan_target: joint limits with margin, workspace box and
table floor along the path, the ready move's slow cosine profile). A refused pose is skipped with the node's
reason. At each accepted pose it waits until sim2real reports the ready move `reached` and the measured joints
rest at the target, takes perception_node's detection of the calibration tag from an image stamped after the
rest began, and FK of the joint state closest to the image's stamp gives the flange. The solve is the same as
`--twin`'s (legion_core.tools.calibrate).

`--graph` starts the graph on the twin (graph_processes): twin_node (its camera rendering the calibration tag
on the flange from a camera pose the solver is not told, `ground_truth_detections` off) with sim2real_node in
one process and perception_node (the calibration tag map) in another, both with the large-frames DDS profile.
`--robot` connects to a running robot graph instead (sim2real_node, the camera driver, perception_node with
`tag_map:=sim2real/config/tags_calibration.yaml`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import deque
from pathlib import Path

import numpy as np

from legion_core.robot import kinematics
from legion_core.robot.frames import Transform

#: The detection label of the calibration tag (sim2real/config/tags_calibration.yaml).
CALIBRATION_TAG_LABEL = "calibration_tag"
#: The twin's camera frame rate while calibrating [Hz]: a 1280x960 frame takes ~0.3-0.5 s to render in software
#: GL on the dev VM; the client only needs one frame after each rest.
GRAPH_CAMERA_RATE_HZ = 2.0


class CalibrationGraphError(RuntimeError):
    """The graph cannot be used for the calibration (not up, the ready move refused, a timeout); the message
    says what and the fix."""


@dataclasses.dataclass
class GraphClientConfig:
    """How the client waits on the graph."""

    rest_window_s: float = 0.5
    """The arm rests when every measured joint moved less than `rest_tolerance_rad` over this long [s]."""
    rest_tolerance_rad: float = 0.001
    """Largest joint excursion [rad] over `rest_window_s` of an arm at rest."""
    arrive_tolerance_rad: float = 0.01
    """The measured joints are at the target when every one is this close [rad] (sim2real's
    ready_tolerance_rad)."""
    move_timeout_margin_s: float = 30.0
    """A move may take its planned duration plus this [s] to be reached and rest."""
    detection_timeout_s: float = 20.0
    """Wait this long [s] for a frame stamped after the rest."""
    frames_without_tag: int = 3
    """After this many frames stamped after the rest without the tag, the pose has no sample."""
    connect_timeout_s: float = 120.0
    """Wait this long [s] for sim2real's service, its safety state and the joint states."""


def graph_processes(twin_calibration: str | Path, width: int, height: int, log_path: str | Path,
                    task: str = "drawer-button", variation: int = 3) -> list:  # fmt: skip
    """The processes of `--graph`: twin (camera with the calibration tag, from `twin_calibration`'s camera
    pose) + sim2real (the default calibration: it is not told the camera) in one, perception_node with the
    calibration tag map in another, both with the large-frames DDS profile."""
    from legion_core.tools.graph import GraphProcess
    from sim2real.tags import TWIN_TAG_MAP_PATH

    twin = {
        "twin.task": task,
        "twin.variation": int(variation),
        "twin.calibration": str(twin_calibration),
        "twin.camera_rate_hz": GRAPH_CAMERA_RATE_HZ,
        "twin.camera_width": int(width),
        "twin.camera_height": int(height),
        "twin.ground_truth_detections": False,
        "twin.camera_calibration_tag": True,
    }
    perception = {"perception.tag_map": str(TWIN_TAG_MAP_PATH.parent / "tags_calibration.yaml")}
    log = Path(log_path)
    return [GraphProcess("twin,sim2real", twin, log, large_frames=True),
            GraphProcess("perception", perception, log.with_suffix(".perception.log"), large_frames=True)]  # fmt: skip


def write_twin_calibration(path: str | Path, T_sim_camera: Transform) -> Path:
    """The twin's calibration with its camera at `T_sim_camera` (what the twin renders from; the solver is
    not told)."""
    from sim2real.calibration import save_calibration, sim_calibration

    cal = sim_calibration()
    moved = dataclasses.replace(cal, T_base_camera=cal.T_sim_base.inverse() @ T_sim_camera,
                                name="twin, camera moved for `legion calibrate --graph`")  # fmt: skip
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return save_calibration(moved, path, "The twin's cell with its camera moved (legion calibrate --graph).")


@dataclasses.dataclass
class MoveResult:
    accepted: bool
    message: str
    """sim2real's answer (the refusal's reason)."""
    rest_stamp: float = math.nan
    """Stamp [s] of the joint state at which the arm was seen resting at the target."""
    reached: bool = False
    """Accepted and the arm rests at the target (not reached: blocked, e.g. by an object in the cell)."""


class GraphCalibrationClient:
    """An rclpy node's view of sim2real_node and perception_node for the calibration: the active skill, the
    ready-target service, the safety state, the joint states and the tag detections."""

    def __init__(
        self, node, calibration, joint_states_topic: str = "", config: GraphClientConfig | None = None
    ):
        from legion_msgs.msg import ObjectDetectionArray, SafetyState
        from legion_msgs.srv import ReadyTarget
        from sensor_msgs.msg import JointState
        from std_msgs.msg import String

        from legion_core.contracts.interface import (
            SIM2REAL_READY_TARGET_SERVICE,
            TOPIC_ACTIVE_SKILL,
            TOPIC_DETECTIONS,
            TOPIC_JOINT_STATES,
            TOPIC_SAFETY_STATE,
        )
        from legion_core.ros.common import LATCHED_QOS, SENSOR_QOS

        self.node, self.cal = node, calibration
        self.config = config or GraphClientConfig()
        self.names = list(calibration.robot_joint_names)
        self._index = {n: i for i, n in enumerate(self.names)}
        self._String, self._ReadyTarget = String, ReadyTarget
        self.safety = None
        self.joint_log: deque = deque(maxlen=4000)  # (stamp [s], q [rad, LEGION order])
        self.frames: deque = deque(maxlen=50)  # (stamp [s], the tag's detection or None)
        node.create_subscription(SafetyState, TOPIC_SAFETY_STATE, self._on_safety, LATCHED_QOS)
        node.create_subscription(JointState, joint_states_topic or TOPIC_JOINT_STATES, self._on_joint_state,
                                 SENSOR_QOS)  # fmt: skip
        node.create_subscription(ObjectDetectionArray, TOPIC_DETECTIONS, self._on_detections, SENSOR_QOS)
        self.skill_pub = node.create_publisher(String, TOPIC_ACTIVE_SKILL, LATCHED_QOS)
        self.target_client = node.create_client(ReadyTarget, SIM2REAL_READY_TARGET_SERVICE)

    # -- inputs ----------------------------------------------------------------------------------------
    def _on_safety(self, m) -> None:
        self.safety = m

    def _on_joint_state(self, m) -> None:
        from legion_core.ros.common import stamp_to_s

        q = np.full(len(self.names), np.nan)
        for n, v in zip(m.name, m.position):
            i = self._index.get(n)
            if i is not None:
                q[i] = v
        if np.all(np.isfinite(q)):
            self.joint_log.append((stamp_to_s(m.header.stamp), q))

    def _on_detections(self, m) -> None:
        from legion_core.ros.common import stamp_to_s

        found = [d for d in m.detections if d.label == CALIBRATION_TAG_LABEL]
        self.frames.append((stamp_to_s(m.header.stamp), found[0] if found else None))

    # -- waiting -----------------------------------------------------------------------------------------
    def spin_until(self, predicate, timeout_s: float) -> bool:
        from legion_core.tools.graph import spin_until

        return spin_until(self.node, predicate, timeout_s, 0.02)

    @property
    def q(self) -> np.ndarray | None:
        return self.joint_log[-1][1] if self.joint_log else None

    def resting(self) -> bool:
        """The measured joints moved less than rest_tolerance_rad over the last rest_window_s."""
        if len(self.joint_log) < 2:
            return False
        t_end = self.joint_log[-1][0]
        window = [q for t, q in self.joint_log if t >= t_end - self.config.rest_window_s]
        if self.joint_log[0][0] > t_end - self.config.rest_window_s or len(window) < 2:
            return False
        return float(np.max(np.ptp(np.stack(window), axis=0))) < self.config.rest_tolerance_rad

    def _ready_problem(self) -> str:
        from legion_core.contracts.interface import READY_SKILL

        s = self.safety
        if s is None:
            return ""
        if s.estop_latched:
            return f"e-stop latched ({s.estop_reason}): re-arm sim2real_node first"
        if s.ready_move.startswith("refused"):
            return f"sim2real refused the ready move: {s.ready_move}"
        if s.active_skill != READY_SKILL and s.skill_cleared_by:
            return f"the active skill was cleared by {s.skill_cleared_by} ({s.reason})"
        return ""

    def connect(self) -> None:
        """Wait for sim2real's ready-target service, its safety state and the joint states."""
        ok = self.spin_until(lambda: self.target_client.service_is_ready() and self.safety is not None
                             and self.q is not None, self.config.connect_timeout_s)  # fmt: skip
        if not ok:
            raise CalibrationGraphError(
                f"no sim2real_node ready-target service, safety state or joint states within "
                f"{self.config.connect_timeout_s:.0f} s (service {self.target_client.srv_name}, "
                f"safety state seen: {self.safety is not None}, joint states: {self.q is not None}): is the "
                "graph running in this ROS domain with a workspace that has legion_msgs/ReadyTarget?"
            )

    def start_ready(self, timeout_s: float = 180.0) -> None:
        """Make `ready` the active skill and wait until the plain ready move has reached the ready posture
        (or a target from before: a skill already `ready` keeps its state)."""
        from legion_core.contracts.interface import READY_SKILL

        self.skill_pub.publish(self._String(data=READY_SKILL))

        def done() -> bool:
            s = self.safety
            return bool(self._ready_problem()) or (
                s is not None
                and s.active_skill == READY_SKILL
                and s.ready_move == "reached"
                and self.resting()
            )

        if not self.spin_until(done, timeout_s) or self._ready_problem():
            s = self.safety
            raise CalibrationGraphError(
                self._ready_problem()
                or f"the ready move did not reach the ready posture within {timeout_s:.0f} s "
                f"(sim2real: {s.reason if s else 'no safety state'}, ready move {s.ready_move if s else '?'})"
            )

    def stop_skill(self) -> None:
        """No active skill: the arm holds where it is (a skill needs the ready move first)."""
        self.skill_pub.publish(self._String(data=""))
        self.spin_until(lambda: self.safety is not None and self.safety.active_skill == "", 5.0)

    def move_to(self, q_target, timeout_s: float | None = None) -> MoveResult:
        """Ask sim2real for the ready move to `q_target` [rad, LEGION order]; when accepted, wait until it is
        reached and the measured joints rest at the target. A refusal comes back with sim2real's reason."""
        from legion_core.tools.graph import call_service

        q_target = np.asarray(q_target, float)
        req = self._ReadyTarget.Request(joint_names=self.names, positions=[float(v) for v in q_target])
        resp = call_service(self.node, self.target_client, req, timeout_s=20.0)
        if resp is None:
            raise CalibrationGraphError("sim2real_node did not answer the ready-target request within 20 s")
        if not resp.accepted:
            return MoveResult(False, resp.message)
        cfg = self.config
        limit = timeout_s if timeout_s is not None else resp.duration_s + cfg.move_timeout_margin_s

        def arrived() -> bool:
            s, q = self.safety, self.q
            return bool(self._ready_problem()) or (
                s is not None and s.ready_move == "reached" and q is not None
                and float(np.max(np.abs(q - q_target))) <= cfg.arrive_tolerance_rad and self.resting()
            )  # fmt: skip

        ok = self.spin_until(arrived, limit)
        if self._ready_problem():
            raise CalibrationGraphError(self._ready_problem())
        if not ok:  # blocked (an object in the way) or too slow: the next target replaces the move
            err = float(np.max(np.abs(self.q - q_target)))
            return MoveResult(True, f"the arm did not reach and rest at the target within {limit:.0f} s "
                              f"({err:.3f} rad away: blocked?)")  # fmt: skip
        return MoveResult(True, resp.message, self.joint_log[-1][0], True)

    def move_to_retrying(self, q_target, attempts: int = 3) -> MoveResult:
        """move_to; a refusal is asked again once sim2real is back at level OK (a transient hold: a late
        joint state on a loaded host), until the same refusal comes twice (a check that fails: final)."""
        from legion_core.contracts.interface import StatusLevel

        res = self.move_to(q_target)
        for _ in range(attempts - 1):
            if res.accepted:
                break
            self.spin_until(lambda: self.safety is not None and self.safety.level == StatusLevel.OK, 10.0)
            again = self.move_to(q_target)
            if not again.accepted and again.message == res.message:
                return again
            res = again
        return res

    def detection_after(self, stamp: float):
        """The calibration tag's detection in the first frame stamped after `stamp` [s] that has it, with
        the frame's stamp; (None, why) after `frames_without_tag` later frames without it, or a timeout."""
        cfg = self.config

        def later():
            return [(t, d) for t, d in self.frames if t > stamp]

        def decided() -> bool:
            fr = later()
            return any(d is not None for _, d in fr) or len(fr) >= cfg.frames_without_tag

        if not self.spin_until(decided, cfg.detection_timeout_s):
            return None, f"no camera frame stamped after the rest within {cfg.detection_timeout_s:.0f} s"
        for t, d in later():
            if d is not None:
                return (t, d), ""
        return None, f"tag not detected in {cfg.frames_without_tag} frames after the rest"

    def q_at(self, stamp: float) -> np.ndarray:
        """The measured joints [rad] of the joint state stamped closest to `stamp` [s]."""
        return min(self.joint_log, key=lambda e: abs(e[0] - stamp))[1].copy()


@dataclasses.dataclass
class GraphRun:
    samples: list
    q_measured: list
    missed: list[tuple[str, str]]
    """(pose name, why) for poses without a sample (refused by sim2real, no detection)."""
    refused: int = 0
    """Poses sim2real refused."""
    seconds: float = 0.0
    """Wall time of the collection [s]."""


def collect_through_graph(client: GraphCalibrationClient, plan, arm: kinematics.ArmModel,
                          progress: bool = True) -> GraphRun:  # fmt: skip
    """Visit the plan's poses through sim2real_node (module docstring) and collect the hand-eye samples."""
    from tqdm import tqdm

    from sim2real.handeye import make_sample

    t0 = time.monotonic()
    run = GraphRun([], [], [])
    client.connect()
    client.start_ready()
    for pose in tqdm(plan.poses, desc="calibration poses", unit="pose", disable=not progress):
        res = client.move_to_retrying(pose.q)
        if not res.accepted:
            run.refused += 1
            run.missed.append((pose.name, f"sim2real refused the move: {res.message}"))
            continue
        if not res.reached:
            run.missed.append((pose.name, res.message))
            continue
        found, why = client.detection_after(res.rest_stamp)
        if found is None:
            run.missed.append((pose.name, f"no detection ({why})"))
            continue
        stamp, d = found
        q = client.q_at(stamp)
        st = kinematics.forward(q, arm)
        p, o = d.pose.position, d.pose.orientation
        run.samples.append(make_sample(st.p_flange, st.R_flange, np.array([p.x, p.y, p.z]),
                                       np.array([o.w, o.x, o.y, o.z]), pose.name))  # fmt: skip
        run.q_measured.append(q)
    run.seconds = time.monotonic() - t0
    return run
