"""The MuJoCo digital twin of the iiwa, without ROS (the logic of twin_node).

The KUKA embodiment in `joint_position` mode (no mocap: 7 position servos) with a task scene, advanced in
simulated time by the caller (the node ties it to the wall clock). It offers what the real cell offers:
joint states by the driver's joint names, camera detections of the scene objects in the camera frame of
the calibration (with optional position noise, latency and drop-outs), joint position targets and a
gripper opening command in, reset to a task/placement, and a success report from Meta-World's own task
code.

`task` may also name a multi-object scene (legion_core.contracts.scenes): one MuJoCo world with the objects
of all the scene's skills where the scene places them, detections for every object, and the hand at the
scene's start point. There the skills' successes are judged by the sequencer from observations (each
skill's goal is anchored when it starts); the twin reports the objects' joint positions instead.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from legion_core.contracts.tasks import get_task
from legion_core.robot.frames import R_to_quat
from legion_core.sim.factory import TaskEnv
from sim2real.calibration import Calibration

PHYSICS_DT_S = 0.0025  # Meta-World's MuJoCo timestep


@dataclass
class TwinDetection:
    label: str
    position_m: tuple[float, float, float]
    quat_wxyz: tuple[float, float, float, float]
    stamp: float
    confidence: float


@dataclass
class TwinConfig:
    detection_noise_m: float = 0.0
    """Std [m] of Gaussian noise on each detected position (camera frame)."""
    detection_latency_s: float = 0.0
    """Detections describe the scene this long [s] ago and carry that stamp."""
    detection_dropout: float = 0.0
    """Probability that one detection is missing from a camera frame."""
    seed: int = 0
    """Seed of the noise/drop-out stream and of the placements (metaworld.MT1 seed)."""
    render_size: tuple[int, int] | None = None
    """(width, height) of rendered frames, or None for no rendering (offscreen GL costs CPU)."""
    scene: str | None = None
    """Single-task resets place the task as in this multi-object scene (offsets, hand start): what a bundle
    trained in that scene expects. None = Meta-World's own placements."""


class DigitalTwin:
    def __init__(self, calibration: Calibration, task: str = "drawer-close", variation: int = 0,
                 config: TwinConfig | None = None) -> None:  # fmt: skip
        self.cal = calibration
        self.config = config or TwinConfig()
        self.rng = np.random.default_rng(self.config.seed)
        T = calibration.T_sim_camera
        self._R_cam_sim = T.R.T
        self._p_sim_cam = T.p
        self._quat_marker_cam = tuple(R_to_quat(self._R_cam_sim).tolist())  # marker axes = sim_world axes
        self.joint_names = list(calibration.robot_joint_names)
        self.env: TaskEnv | None = None
        self.name = ""  # the task or scene the twin was last reset to
        self.scene = None
        self._history: deque = deque(maxlen=512)  # (sim_time, {label: p_sim})
        self.reset(task, variation)

    # -- scene ---------------------------------------------------------------------------------------------
    def reset(self, task: str, variation: int = 0) -> None:
        from legion_core.contracts.scenes import SCENES

        if task in SCENES:
            self._reset_scene(SCENES[task], variation)
            return
        spec = get_task(task)
        if self.env is None or self.scene is not None or self.env.spec.name != spec.name:
            if self.env is not None:
                self.env.close()
            self.env = TaskEnv(spec, "kuka", seed=self.config.seed, control_mode="joint_position",
                               scene=self.config.scene, **self._render_kw())  # fmt: skip
        self.spec, self.scene, self.name = spec, None, spec.name
        self.env.reset(variation)
        self._after_reset(variation)

    def _render_kw(self) -> dict:
        if self.config.render_size is None:
            return {}
        return dict(
            render_mode="rgb_array", width=self.config.render_size[0], height=self.config.render_size[1]
        )

    def _reset_scene(self, scene, variation: int) -> None:
        """One world with every object of `scene`: the first object's first task hosts it (its task code
        places that object and the hand); the others' bodies are placed here from their own tasks' seeded
        placement `variation`, moved by the scene's offsets."""
        from legion_core.sim import kuka_model
        from legion_core.sim.factory import env_class, seeded_placement

        specs = [get_task(o.tasks[0]) for o in scene.objects]
        if self.env is None or self.scene is None or self.scene.name != scene.name:
            if self.env is not None:
                self.env.close()
            xmls = [Path(env_class(s.env_name, "sawyer").model_name.fget(None)).name for s in specs]
            path, self._scene_bodies = kuka_model.scene_xml_path(scene.name, xmls)
            self.env = TaskEnv(specs[0], "kuka", seed=self.config.seed, control_mode="joint_position",
                               scene=scene.name, model_xml=str(path), **self._render_kw())  # fmt: skip
            self.env.task_hand_starts = False  # a chain starts in the scene's start box
            from metaworld.env_dict import ALL_V3_ENVIRONMENTS

            # Each task's own code reads its object point from the shared world (bodies/sites by name).
            self._pos_objects = {
                t: ALL_V3_ENVIRONMENTS[get_task(t).env_name]._get_pos_objects for t in scene.tasks
            }
        self.spec, self.scene, self.name = specs[0], scene, scene.name
        self.env.reset(variation)
        env = self.env.env
        for o, s, body in zip(scene.objects[1:], specs[1:], self._scene_bodies[1:], strict=True):
            env.model.body(body).pos = (
                seeded_placement(s.env_name, self.config.seed, variation)[:3] + o.offset_m
            )
        mujoco.mj_forward(env.model, env.data)
        self._after_reset(variation)

    def _after_reset(self, variation: int) -> None:
        self.variation = variation
        self.sim_time = 0.0
        self._acc = 0.0
        self.q_target = self.env.env.arm_qpos
        self.gripper_action = -1.0
        # After a reset the arm is teleported home; a command stream that still holds the previous
        # episode's posture would drag it back through the new scene. Until the runtime restarts from the
        # measured posture (/sim2real_node/reset), commands far from the current posture are ignored.
        self.reset_guard = True
        self._history.clear()
        self._record()
        self.success_latched = False

    def place_arm(self, q) -> None:
        """Teleport the arm to joint angles q [rad] and hold it there: a twin that starts where a real arm
        stands (e.g. lbr_fri_ros2_stack's HOME, a posture the policy never saw)."""
        q = np.asarray(q, float)
        env = self.env.env
        if q.shape != (7,) or not np.all(np.isfinite(q)):
            raise ValueError(f"place_arm needs 7 finite joint angles [rad], got {q!r}")
        qpos, qvel = env.data.qpos.copy(), env.data.qvel.copy()
        qpos[:7], qvel[:7] = q, 0.0
        env.set_state(qpos, qvel)
        env.set_joint_targets(q)
        self.q_target = q.copy()
        self._record()

    # -- commands ------------------------------------------------------------------------------------------
    #: A command within this distance [rad, max over joints] of the current posture ends the reset guard.
    RESET_GUARD_RAD = 0.05

    def set_joint_targets(self, q: np.ndarray) -> bool:
        """Returns False when the command was ignored by the reset guard (see `reset`)."""
        q = np.asarray(q, float)
        if self.reset_guard:
            if float(np.max(np.abs(q - self.env.env.arm_qpos))) > self.RESET_GUARD_RAD:
                return False
            self.reset_guard = False
        self.q_target = q
        self.env.env.set_joint_targets(self.q_target)
        return True

    def set_gripper_opening(self, opening_m: float) -> None:
        """Finger opening [m] -> Meta-World's gripper action (-1 open .. +1 closed) via the calibration's range."""
        lo, hi = self.cal.gripper_open_m, self.cal.gripper_closed_m
        a = -1.0 + 2.0 * (float(opening_m) - lo) / (hi - lo) if hi != lo else -1.0
        self.gripper_action = float(np.clip(a, -1.0, 1.0)) if math.isfinite(a) else self.gripper_action

    # -- time ------------------------------------------------------------------------------------------------
    def advance(self, dt_s: float) -> int:
        """Advance the simulation by dt_s [s] (whole physics steps; the remainder carries over)."""
        self._acc += max(0.0, float(dt_s))
        n = int(self._acc / PHYSICS_DT_S)
        if n <= 0:
            return 0
        n = min(n, 400)  # at most 1 s per call: a stalled process must not fast-forward the world
        self._acc -= n * PHYSICS_DT_S
        self.env.env.do_simulation([self.gripper_action, -self.gripper_action], n)
        self.sim_time += n * PHYSICS_DT_S
        self._record()
        return n

    def _scene_points(self) -> dict[str, np.ndarray]:
        """Sim-world point of every labelled object (and goal marker) the camera sees."""
        if self.scene is not None:
            pts = {}
            for t, fn in self._pos_objects.items():
                spec = get_task(t)
                pts.setdefault(spec.object_label, spec.label_point(np.asarray(fn(self.env.env), float)[:3]))
                self._add_anchor(spec, pts)
            return pts
        obs = self.env.env._get_obs()
        pts = {self.spec.object_label: self.spec.label_point(obs[4:7])}
        if self.spec.goal.kind == "marker":
            pts[self.spec.goal.marker_label] = obs[36:39].copy()
        self._add_anchor(self.spec, pts)
        return pts

    def _add_anchor(self, spec, pts: dict) -> None:
        """The static marker of an anchor_offset goal: the origin of the body it is fixed to."""
        if spec.goal.kind == "anchor_offset":
            pts[spec.goal.marker_label] = self.env.env.data.body(spec.goal.anchor_body).xpos.copy()

    def _record(self) -> None:
        self._history.append((self.sim_time, self._scene_points()))

    # -- sensors ---------------------------------------------------------------------------------------------
    def joint_state(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        return self.joint_names, self.env.env.arm_qpos, self.env.env.arm_qvel

    def gripper_opening_m(self) -> float:
        d = self.env.env.data
        return float(np.linalg.norm(d.body("rightclaw").xpos - d.body("leftclaw").xpos))

    def detections(self, now: float) -> list[TwinDetection]:
        """Camera detections describing the scene `detection_latency_s` ago, stamped `now - latency`."""
        cfg = self.config
        t_seen = self.sim_time - cfg.detection_latency_s
        snap = self._history[0][1]
        for t, pts in self._history:
            if t <= t_seen + 1e-9:
                snap = pts
        out = []
        for label, p_sim in snap.items():
            if cfg.detection_dropout > 0 and self.rng.random() < cfg.detection_dropout:
                continue
            # The tag sits where the calibration says it is stuck: the object point minus the marker offset
            # (marker axes = sim_world axes here, so both offset frames coincide), which real2sim adds back.
            marker = self.cal.markers.get(label)
            if marker is not None and any(marker.offset_m):
                p_sim = p_sim - np.asarray(marker.offset_m, float)
            p_cam = self._R_cam_sim @ (p_sim - self._p_sim_cam)
            if cfg.detection_noise_m > 0:
                p_cam = p_cam + self.rng.normal(0.0, cfg.detection_noise_m, 3)
            out.append(TwinDetection(label, tuple(p_cam.tolist()), self._quat_marker_cam,
                                     now - cfg.detection_latency_s, 1.0))  # fmt: skip
        return out

    #: Bodies of the arm and its tool (the kuka model's names): contacts between one of them and anything
    #: else are external forces on the robot.
    ROBOT_BODY_PREFIXES = ("iiwa_link", "iiwa_flange", "tcp_frame", "hand", "rightclaw", "rightpad", "leftclaw",
                           "leftpad")  # fmt: skip

    def external_wrench(self) -> tuple[np.ndarray, np.ndarray]:
        """The external wrench on the arm and tool from MuJoCo's contact forces, as a driver's estimate
        reports it (lbr_fri_ros2_stack's force_torque_broadcaster: the estimated wrench at the flange):
        force [N] and torque about the flange origin [N m], in the flange frame."""
        m, d = self.env.env.model, self.env.env.data
        if not hasattr(self, "_robot_bodies"):
            self._robot_bodies = {
                i for i in range(m.nbody) if m.body(i).name.startswith(self.ROBOT_BODY_PREFIXES)
            }
            self._flange = m.body("iiwa_flange").id
        robot = self._robot_bodies
        f_w, tau_w, buf = np.zeros(3), np.zeros(3), np.zeros(6)
        p_fl = d.xpos[self._flange]
        for k in range(d.ncon):
            c = d.contact[k]
            on1, on2 = m.geom_bodyid[c.geom1] in robot, m.geom_bodyid[c.geom2] in robot
            if on1 == on2:
                continue  # self-contact (fingers on the hand) or contact elsewhere in the scene
            mujoco.mj_contactForce(m, d, k, buf)
            # The contact frame's first row is the normal, pointing from geom1 to geom2: the force geom1
            # exerts on geom2 (MuJoCo's convention).
            f = c.frame.reshape(3, 3).T @ buf[:3]
            f = f if on2 else -f
            f_w += f
            tau_w += np.cross(c.pos - p_fl, f)
        R = d.xmat[self._flange].reshape(3, 3)
        return R.T @ f_w, R.T @ tau_w

    def object_joints(self) -> dict[str, float]:
        """Position [m or rad] of every joint of the scene's objects (drawer slide, button travel, ...)."""
        m, d = self.env.env.model, self.env.env.data
        return {m.joint(j).name: float(d.qpos[m.jnt_qposadr[j]]) for j in range(m.njnt)
                if m.jnt_type[j] in (2, 3) and not m.joint(j).name.startswith(("lbr_", "r_close", "l_close"))}  # fmt: skip

    def success(self) -> bool:
        """Meta-World's own success check of the task on the current state (latched once reached). In a
        multi-object scene always False: the sequencer judges each skill from observations."""
        if self.scene is not None:
            return False
        obs = self.env.env._get_obs()
        _, info = self.env.env.evaluate_state(obs, np.array([0.0, 0.0, 0.0, self.gripper_action]))
        if info.get("success", 0.0) >= 1.0:
            self.success_latched = True
        return self.success_latched

    def hand_pos_sim(self) -> np.ndarray:
        return np.array(self.env.env.get_endeff_pos(), float)

    def render(self):
        if self.config.render_size is None:
            raise RuntimeError("the twin was created without render_size; it cannot render")
        return self.env.render()

    def snapshot(self) -> np.ndarray:
        """The simulator state (qpos) for rendering later: copying it costs microseconds, rendering with
        software GL ~50-100 ms, which must not run inside the real-time loop."""
        return self.env.env.data.qpos.copy()

    def render_snapshots(self, snapshots: list[np.ndarray]) -> list[np.ndarray]:
        """Frames of earlier snapshots (after the run); the live state is restored afterwards."""
        import mujoco

        d, m = self.env.env.data, self.env.env.model
        live = d.qpos.copy()
        frames = []
        for q in snapshots:
            d.qpos[:] = q
            mujoco.mj_forward(m, d)
            frames.append(self.render())
        d.qpos[:] = live
        mujoco.mj_forward(m, d)
        return frames

    def close(self) -> None:
        if self.env is not None:
            self.env.close()
