"""`legion calibrate`: hand-eye calibration of the cell's camera from a tag on the flange (docs/calibration.md).

Four sources of samples:

- `--graph`: the twin through sim2real_node's safety layer, as on a robot (legion_core.tools.calibrate_graph:
  the ready move to each pose as a target posture, perception_node's detections of the rendered frames).
- `--robot`: the same client against an already running robot graph (sim2real_node, camera driver,
  perception_node with the calibration tag map).
- `--twin`: the MuJoCo twin with a camera at a pose the solver is not told (the twin's perception camera,
  optionally moved by `--camera-offset`/`--camera-rpy-deg`). The arm visits the sample plan
  (sim2real.handeye_plan). TWIN ONLY, the fast offline check: each move is planned and checked in this
  process with sim2real_node's checks of a ready target (sim2real.mapper.Sim2RealMapper.plan_target: joint
  limits with its margin, the workspace box, the table floor, the ready move's slow cosine profile at
  `ready_joint_vel_scale` of the axis speeds; the mapper's start check first), then streamed to the twin's
  position servos at the command rate, not through sim2real_node (`--graph` goes through it; docs/calibration.md,
  "Robot path"). At each pose, once the
  arm is at rest, the twin renders the calibration tag (legion_core.sim.camera), AprilTag 3 + PnP detect it
  (sim2real.tags) and FK of the measured joints gives the flange.
- `--samples FILE`: a samples file (sim2real.handeye's format; `--save-samples` writes one from a twin run).

Then sim2real.handeye solves, the per-sample residuals and the verdict are printed, and on PASS the
calibration YAML is written (`--out`): the base calibration (`--calibration`, default the twin's) with the new
T_base_camera and its `hand_eye` quality record. On the twin the error against the camera's true pose is
printed too.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

from legion_core.robot import kinematics
from legion_core.robot.frames import Transform, look_at_R, rpy_to_R

#: The tag id the calibration tag map lists (sim2real/config/tags_calibration.yaml).
CALIBRATION_TAG_ID = 10


class MoveRefusedError(ValueError):
    """A calibration move that the safety checks refuse; the message says which check and the fix."""


def twin_camera_pose(offset_m=(0.0, 0.0, 0.0), rpy_deg=(0.0, 0.0, 0.0)) -> Transform:
    """The twin's perception camera (legion_core.sim.camera.PERCEPTION_CAMERA_*) moved by `offset_m` [m,
    sim_world] and turned by `rpy_deg` [deg] in its own axes: T_sim_camera."""
    from legion_core.sim.camera import PERCEPTION_CAMERA_EYE_M, PERCEPTION_CAMERA_TARGET_M

    eye = np.asarray(PERCEPTION_CAMERA_EYE_M, float)
    R = look_at_R(eye, PERCEPTION_CAMERA_TARGET_M) @ rpy_to_R(np.radians(np.asarray(rpy_deg, float)))
    return Transform(R, eye + np.asarray(offset_m, float), "sim_world", "camera")


def plan_move(mapper, q_from: np.ndarray, q_to: np.ndarray):
    """The move from q_from to q_to [rad] as sim2real_node plans a ready move to a target posture
    (sim2real.mapper.Sim2RealMapper.plan_target: the ready move's cosine profile at `ready_joint_vel_scale` of
    the axis speeds, checked at 41 points along it: joints inside the limits with the mapper's margin, the
    tool point inside the workspace box (+ box_tolerance_m) and at least ready_min_height_m above the table).
    MoveRefusedError with the mapper's reason otherwise."""
    from sim2real.mapper import WorkspaceError

    try:
        return mapper.plan_target(q_from, q_to, 0.0)
    except WorkspaceError as e:
        raise MoveRefusedError(str(e)) from None


def drive_twin(twin, move, period_s: float, settle_s: float = 0.5, max_settle_s: float = 3.0) -> np.ndarray:
    """Stream the move's joint targets to the twin's servos at `period_s`, then hold the end until the arm is
    at rest (every joint slower than 0.005 rad/s for `settle_s`); the measured joint angles [rad]."""
    t = 0.0
    while t < move.duration_s:
        t = min(t + period_s, move.duration_s)
        twin.set_joint_targets(move.at(t))
        twin.advance(period_s)
    still, waited = 0.0, 0.0
    while still < settle_s and waited < max_settle_s:
        twin.set_joint_targets(move.q_target)
        twin.advance(period_s)
        waited += period_s
        still = still + period_s if float(np.max(np.abs(twin.env.env.arm_qvel))) < 0.005 else 0.0
    return np.array(twin.env.env.arm_qpos, float)


@dataclasses.dataclass
class TwinRun:
    samples: list
    q_measured: list
    missed: list[tuple[str, str]]
    """(pose name, why) for poses without a sample (plan drops, refused moves, no detection)."""
    T_base_camera_true: Transform


def collect_on_twin(cal, plan, T_sim_camera: Transform, width: int, height: int, mapper, progress: bool = True,
                    task: str = "drawer-button", variation: int = 3) -> TwinRun:  # fmt: skip
    """Visit the plan's poses on a fresh twin and collect the hand-eye samples (module docstring)."""
    from tqdm import tqdm

    from legion_core.sim.camera import CALIBRATION_TAG_PLACEMENT, SimCamera, calibration_tag_map
    from legion_core.sim.twin import DigitalTwin
    from sim2real.handeye import make_sample
    from sim2real.tags import TagDetector

    twin = DigitalTwin(cal, task, variation)
    tag_map = calibration_tag_map()
    cam = SimCamera(twin.env.env.model_name, tag_map, T_sim_camera, placements=(CALIBRATION_TAG_PLACEMENT,),
                    width=width, height=height)  # fmt: skip
    det = TagDetector(tag_map, cam.camera)
    run = TwinRun([], [], [], cal.T_sim_base.inverse() @ T_sim_camera)
    try:
        q = np.array(twin.env.env.arm_qpos, float)
        mapper.reset(q, 0.0)  # the mapper's start check: inside the joint limits and the workspace box
        for pose in tqdm(plan.poses, desc="calibration poses", unit="pose", disable=not progress):
            try:
                move = plan_move(mapper, q, pose.q)
            except MoveRefusedError as e:
                run.missed.append((pose.name, f"move refused: {e}"))
                continue
            q = drive_twin(twin, move, mapper.config.command_period_s)
            cam.sync(twin.env.env.model, twin.env.env.data)
            frame = det.detect(cam.render())
            found = [d for d in frame.detections if d.tag_id == CALIBRATION_TAG_ID]
            if not found:
                why = "; ".join(f"tag {i}: {r}" for i, r in frame.rejected) or "tag not in view"
                run.missed.append((pose.name, f"no detection ({why})"))
                continue
            st = kinematics.forward(q, mapper.arm)
            run.samples.append(
                make_sample(st.p_flange, st.R_flange, found[0].position_m, found[0].quat_wxyz, pose.name)
            )
            run.q_measured.append(q.copy())
    finally:
        cam.close()
        twin.close()
    return run


def write_result(path: str, solution, base_cal, setup: str) -> Path:
    """eye_to_hand: the base calibration with the new T_base_camera and its hand_eye record (validated and
    round-tripped by sim2real.calibration.save_calibration). eye_in_hand: T_flange_camera and T_base_tag in a
    small YAML (the calibration file has no camera-on-the-flange entry)."""
    import yaml

    from sim2real.calibration import save_calibration
    from sim2real.handeye import EYE_TO_HAND, _pose_dict

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if setup == EYE_TO_HAND:
        cal = dataclasses.replace(
            base_cal,
            T_base_camera=solution.camera,
            hand_eye=solution.quality_record(),
            name=(base_cal.name + ", camera by `legion calibrate`").lstrip(", "),
        )
        header = (
            "LEGION calibration: "
            + cal.name
            + "\nT_base_camera from a hand-eye calibration (`legion calibrate`, "
            "docs/calibration.md); hand_eye: its residuals."
        )
        return save_calibration(cal, out, header)
    body = {
        "schema": "legion-handeye-result/1",
        "setup": setup,
        "T_flange_camera": _pose_dict(solution.camera),
        "T_base_tag": _pose_dict(solution.tag),
        "hand_eye": solution.quality_record(),
    }
    out.write_text("# Eye-in-hand result of `legion calibrate` (docs/calibration.md): metres, quaternions (w, x, y, z).\n"
                   + yaml.safe_dump(body, sort_keys=False))  # fmt: skip
    return out


def run(args: argparse.Namespace) -> int:
    from sim2real.calibration import CalibrationError, load_calibration, sim_calibration
    from sim2real.handeye import (
        EYE_TO_HAND,
        HandEyeError,
        load_samples,
        pose_error,
        save_samples,
        solve_hand_eye,
    )
    from sim2real.mapper import WorkspaceError

    try:
        base_cal = load_calibration(args.calibration) if args.calibration else sim_calibration()
    except CalibrationError as e:
        print(f"calibrate: --calibration: {e}")
        return 2
    initial = None
    if args.prior:
        try:
            initial = (load_calibration(args.prior).T_base_camera, Transform.identity())
        except CalibrationError as e:
            print(f"calibrate: --prior: {e}")
            return 2
    truth = None
    try:
        if args.samples:
            setup, samples = load_samples(args.samples)
            q_measured = None
            print(f"{len(samples)} samples ({setup}) from {args.samples}")
        elif getattr(args, "graph", False) or getattr(args, "robot", False):
            from legion_core.tools.calibrate_graph import CalibrationGraphError

            setup = EYE_TO_HAND
            try:
                samples, q_measured, truth = _collect_graph(args, base_cal)
            except CalibrationGraphError as e:
                print(f"calibrate: {e}")
                return 2
        else:
            setup = EYE_TO_HAND
            plan, mapper = _plan(base_cal, args.poses)
            T_sim_camera = twin_camera_pose(args.camera_offset, args.camera_rpy_deg)
            run_ = collect_on_twin(
                base_cal, plan, T_sim_camera, args.width, args.height, mapper, not args.no_progress
            )
            for name, why in run_.missed:
                print(f"  {name}: no sample, {why}")
            samples, q_measured, truth = run_.samples, run_.q_measured, run_.T_base_camera_true
        if args.save_samples:
            note = f"from {args.samples}" if args.samples else f"`legion calibrate {_source(args)}`"
            print(f"wrote {save_samples(args.save_samples, samples, setup, q_measured, note)}")
        solution = solve_hand_eye(samples, setup, initial=initial)
    except (HandEyeError, WorkspaceError) as e:
        print(f"calibrate: {e}")
        return 2
    for line in solution.report_lines():
        print(line)
    if truth is not None:
        dp, dr = pose_error(solution.camera, truth)
        print(
            f"twin truth: the recovered T_base_camera is {dp:.2f} mm / {dr:.3f} deg from the camera's true pose"
        )
    if args.json:
        import json

        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(_json(solution, truth), indent=2, default=float) + "\n")
        print(f"wrote {args.json}")
    if not solution.passed:
        print("calibration not written (FAIL)")
        return 1
    if args.out:
        print(f"wrote {write_result(args.out, solution, base_cal, setup)}")
    return 0


def _source(args) -> str:
    return next(f"--{k}" for k in ("graph", "robot", "twin") if getattr(args, k, False))


def _plan(base_cal, n_poses: int, mcfg=None):
    from sim2real.handeye_plan import SamplePlanConfig, plan_samples
    from sim2real.mapper import MapperConfig, Sim2RealMapper

    mcfg = mcfg or MapperConfig()
    plan_cfg = SamplePlanConfig(n_poses=n_poses, workspace_low_m=mcfg.workspace_low_m,
                                workspace_high_m=mcfg.workspace_high_m)  # fmt: skip
    mapper = Sim2RealMapper(base_cal, mcfg)
    plan = plan_samples(base_cal, plan_cfg, mapper.arm)
    print(f"sample plan: {len(plan.poses)} poses, {len(plan.dropped)} dropped")
    for name, why in plan.dropped:
        print(f"  {name}: dropped, {why}")
    return plan, mapper


def _collect_graph(args, base_cal):
    """`--graph` (start the twin graph, legion_core.tools.calibrate_graph.graph_processes) or `--robot`
    (connect to a running graph): samples, measured joints, the camera's true pose (the twin's; None on a
    robot)."""
    from legion_core.tools import calibrate_graph as cg

    plan, mapper = _plan(base_cal, args.poses)
    if args.robot:
        import rclpy

        from legion_core.tools.ros_env import ensure_workspace

        ensure_workspace()
        if not rclpy.ok():
            rclpy.init()
        node = rclpy.create_node("legion_calibrate")
        try:
            client = cg.GraphCalibrationClient(node, base_cal, args.joint_states_topic)
            run_ = cg.collect_through_graph(client, plan, mapper.arm, not args.no_progress)
            client.stop_skill()
        finally:
            node.destroy_node()
        truth = None
    else:
        from legion_core.tools.graph import SimGraph

        logs = Path(args.log_dir)
        T_sim_camera = twin_camera_pose(args.camera_offset, args.camera_rpy_deg)
        twin_cal = cg.write_twin_calibration(logs / "twin_camera_calibration.yaml", T_sim_camera)
        procs = cg.graph_processes(twin_cal, args.width, args.height, logs / "graph.log")
        print(f"starting the graph (twin + sim2real + perception; logs in {logs})")
        with SimGraph(procs, node_name="legion_calibrate") as g:
            client = cg.GraphCalibrationClient(g.node, base_cal)
            run_ = cg.collect_through_graph(client, plan, mapper.arm, not args.no_progress)
        truth = base_cal.T_sim_base.inverse() @ T_sim_camera
    for name, why in run_.missed:
        print(f"  {name}: no sample, {why}")
    print(
        f"{len(run_.samples)} samples in {run_.seconds:.0f} s through sim2real_node ({run_.refused} poses refused)"
    )
    return run_.samples, run_.q_measured, truth


def _json(solution, truth) -> dict:
    from sim2real.handeye import pose_error

    out = {
        "setup": solution.setup,
        "passed": solution.passed,
        "verdict": solution.verdict,
        "camera_translation_m": solution.camera.p.tolist(),
        "camera_quaternion_wxyz": solution.camera.quat_wxyz.tolist(),
        **solution.quality_record(),
        "std_position_mm": solution.std_position_mm,
        "std_rotation_deg": solution.std_rotation_deg,
        "residuals": [dataclasses.asdict(r) for r in solution.residuals],
    }
    if truth is not None:
        dp, dr = pose_error(solution.camera, truth)
        out["twin_error_mm"], out["twin_error_deg"] = dp, dr
    return out
