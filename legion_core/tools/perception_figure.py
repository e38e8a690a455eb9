"""The README's perception picture (docs/perception.md): the twin's cell seen from the side, beside what its
perception camera sees, with every detected tag drawn (outline, id, object label, the pose's axes) and its
position error against the rendered ground truth. Written by `legion bench perception --figure`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: The overview camera of the left panel [m, sim_world]: beside the table, so that the robot, the tagged
#: objects and the perception camera's side of the cell are all in view.
OVERVIEW_EYE_M = (1.0, 0.15, 0.95)
OVERVIEW_TARGET_M = (-0.05, 0.7, 0.15)


def draw_detections(rgb: np.ndarray, frame, camera, truth_camera: dict[int, np.ndarray]) -> np.ndarray:
    """`rgb` with each detection of `frame` (sim2real.tags.FrameResult) drawn: outline, pose axes (3 cm),
    `id label error`; `truth_camera`: tag id -> rendered centre [m, camera frame]."""
    import cv2

    from legion_core.robot.frames import quat_to_R

    img = np.ascontiguousarray(rgb.copy())
    for d in frame.detections:
        pts = np.round(d.corners_px).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(img, [pts], True, (0, 220, 0), 2, cv2.LINE_AA)
        rvec, _ = cv2.Rodrigues(quat_to_R(d.quat_wxyz))
        cv2.drawFrameAxes(img, camera.K, camera.dist, rvec, np.asarray(d.position_m, float), 0.03, 2)
        err = truth_camera.get(d.tag_id)
        text = f"{d.tag_id} {d.label}" + (
            f" {np.linalg.norm(np.asarray(d.position_m) - err) * 1e3:.1f} mm" if err is not None else ""
        )
        label(img, text, (int(d.corners_px[:, 0].min()), int(d.corners_px[:, 1].min()) - 8), 0.4)
    return img


def label(img: np.ndarray, text: str, org: tuple[int, int], scale: float) -> None:
    """White text on a dark box at `org` (its baseline's left end), in place."""
    import cv2

    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    x, y = org
    cv2.rectangle(img, (x - 2, y - h - 3), (x + w + 2, y + base), (30, 30, 30), -1)
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)


def perception_figure(out_path: str | Path, variation: int = 3, width: int = 640, height: int = 480) -> Path:
    """Render the picture for placement `variation` of the drawer-button scene, the hand over the button
    (where the chain's second skill works), and write it as PNG."""
    from legion_core.robot import kinematics
    from legion_core.robot.frames import Transform, look_at_R
    from legion_core.sim.camera import PERCEPTION_CAMERA_FOVY_DEG, SimCamera, twin_tag_map
    from legion_core.sim.twin import DigitalTwin
    from legion_core.sim.video import write_still
    from sim2real.calibration import CAMERA_CALIBRATION_PATH, load_calibration
    from sim2real.tags import TagDetector

    cal = load_calibration(CAMERA_CALIBRATION_PATH)
    twin = DigitalTwin(cal, "drawer-button", variation)
    try:
        button = twin._scene_points()["button"]
        ik = kinematics.start_posture(cal.T_sim_base.inverse().apply(button + [0.0, 0.0, 0.05]),
                                      kinematics.R_base_flange_down(cal.T_sim_base.R))  # fmt: skip
        twin.place_arm(ik.q)
        eye = np.asarray(OVERVIEW_EYE_M, float)
        views = []
        for T, fovy in ((Transform(look_at_R(eye, OVERVIEW_TARGET_M), eye), 58.0),
                        (cal.T_sim_camera, PERCEPTION_CAMERA_FOVY_DEG)):  # fmt: skip
            cam = SimCamera(
                twin.env.env.model_name, twin_tag_map(), T, width=width, height=height, fovy_deg=fovy
            )
            try:
                cam.sync(twin.env.env.model, twin.env.env.data)
                views.append(
                    (cam.render(), cam.camera, {i: cam.tag_pose_camera(i)[0] for i in cam.placements})
                )
            finally:
                cam.close()
    finally:
        twin.close()
    (overview, _, _), (seen, camera, truth) = views
    frame = TagDetector(twin_tag_map(), camera).detect(seen)
    right = draw_detections(seen, frame, camera, truth)
    left = np.ascontiguousarray(overview.copy())
    label(left, "the twin (MuJoCo)", (12, 26), 0.6)
    label(right, f"its camera, {width}x{height}: AprilTag 3 + PnP; error against the render", (12, 26), 0.55)
    gap = np.full((height, 8, 3), 255, np.uint8)
    return write_still(np.concatenate([left, gap, right], axis=1), out_path)
