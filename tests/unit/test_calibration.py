"""legion_core.robot.frames and sim2real.calibration: transforms, the calibration file format and the hand-eye solver."""

from __future__ import annotations

import re

import numpy as np
import pytest
import yaml

from legion_core.robot import iiwa7
from legion_core.robot.frames import (
    FrameError,
    R_to_quat,
    R_to_rpy,
    Transform,
    is_rotation,
    quat_to_R,
    rot_x,
    rot_y,
    rot_z,
    rotation_angle,
    rpy_to_R,
)
from sim2real import calibration as C


def _random_R(rng):
    q = rng.normal(size=4)
    return quat_to_R(q / np.linalg.norm(q))


# -- frames ---------------------------------------------------------------------------------------------


def test_transform_inverse_compose_apply():
    rng = np.random.default_rng(0)
    T_a_b = Transform(_random_R(rng), rng.normal(size=3), "a", "b")
    T_b_c = Transform(_random_R(rng), rng.normal(size=3), "b", "c")
    T_a_c = T_a_b @ T_b_c
    assert (T_a_c.parent, T_a_c.child) == ("a", "c")
    pts = rng.normal(size=(10, 3))
    np.testing.assert_allclose(T_a_c.apply(pts), T_a_b.apply(T_b_c.apply(pts)), atol=1e-12)
    np.testing.assert_allclose((T_a_b.inverse() @ T_a_b).matrix(), np.eye(4), atol=1e-12)
    np.testing.assert_allclose(T_a_b.inverse().apply(T_a_b.apply(pts)), pts, atol=1e-12)
    np.testing.assert_allclose(T_a_c.matrix(), T_a_b.matrix() @ T_b_c.matrix(), atol=1e-12)
    assert Transform.from_matrix(T_a_c.matrix()).is_close(T_a_c, 1e-12, 1e-9)
    np.testing.assert_allclose(T_a_b.apply(pts[0]), T_a_b.apply(pts)[0])
    np.testing.assert_allclose(T_a_b.apply_vector([1.0, 0, 0]), T_a_b.R[:, 0])


def test_chaining_mismatched_frames_is_refused():
    T_sim_base = Transform.identity("sim_world", "base")
    T_base_camera = Transform.identity("base", "camera")
    T_sim_base @ T_base_camera  # fine
    with pytest.raises(FrameError, match="inverted"):
        T_sim_base @ T_base_camera.inverse()


@pytest.mark.parametrize("seed", range(5))
def test_quaternion_and_rpy_round_trips(seed):
    rng = np.random.default_rng(seed)
    R = _random_R(rng)
    q = R_to_quat(R)
    assert q[0] >= 0 and np.linalg.norm(q) == pytest.approx(1.0)
    np.testing.assert_allclose(quat_to_R(q), R, atol=1e-12)
    np.testing.assert_allclose(rpy_to_R(R_to_rpy(R)), R, atol=1e-12)
    T = Transform.from_quat([1, 2, 3], q)
    np.testing.assert_allclose(Transform.from_rpy([1, 2, 3], T.rpy_rad).R, R, atol=1e-12)


@pytest.mark.parametrize(
    "R",
    [rot_x(np.pi), rot_y(np.pi), rot_z(np.pi), iiwa7.R_WORLD_FLANGE_DOWN, rot_z(np.pi) @ rot_x(np.pi / 2)],
)
def test_quaternion_of_180_degree_turns(R):
    np.testing.assert_allclose(quat_to_R(R_to_quat(R)), R, atol=1e-12)


def test_rpy_convention_is_ros_fixed_axis():
    np.testing.assert_allclose(rpy_to_R([0.1, 0.2, 0.3]), rot_z(0.3) @ rot_y(0.2) @ rot_x(0.1), atol=1e-15)
    np.testing.assert_allclose(R_to_rpy(rpy_to_R([0.0, np.pi / 2, 0.4])), [0.0, np.pi / 2, 0.4], atol=1e-7)
    assert rotation_angle(rot_x(0.7)) == pytest.approx(0.7)


def test_rotation_validation():
    assert is_rotation(np.eye(3))
    assert not is_rotation(np.diag([1.0, 1.0, -1.0]))  # reflection
    assert not is_rotation(np.eye(3) * 1.01)  # not orthonormal
    assert not is_rotation(np.full((3, 3), np.nan))
    assert not is_rotation(np.eye(4))
    with pytest.raises(FrameError, match=r"det=-1"):
        Transform(np.diag([1.0, 1.0, -1.0]), np.zeros(3), "base", "camera")
    with pytest.raises(FrameError, match="translation"):
        Transform(np.eye(3), [0.0, np.nan, 0.0])
    with pytest.raises(FrameError, match="last row"):
        Transform.from_matrix(np.ones((4, 4)))
    with pytest.raises(FrameError, match="norm"):
        quat_to_R([2.0, 0, 0, 0], norm_tol=1e-3)


# -- the shipped calibration files ---------------------------------------------------------------------


def test_sim_calibration_matches_the_simulated_embodiment():
    cal = C.sim_calibration()
    p, R = iiwa7.base_pose_sim()
    np.testing.assert_allclose(cal.T_sim_base.p, p, atol=1e-9)
    np.testing.assert_allclose(cal.T_sim_base.R, R, atol=1e-9)
    # The file is exactly what make_sim_calibration() produces (regenerate with --write-sim otherwise).
    assert cal.T_base_camera.is_close(C.make_sim_calibration().T_base_camera, 1e-9, 1e-9)
    assert cal.robot_joint_names == iiwa7.JOINT_NAMES
    assert set(C.sim_marker_labels()) <= set(cal.markers)


def test_sim_camera_is_a_plausible_fixed_camera_looking_at_the_table():
    cal = C.sim_calibration()
    T = cal.T_sim_camera
    assert T.p[2] > 0.3  # above the table top (z = 0)
    view = T.R[:, 2]  # optical axis
    to_table = np.array([0.0, 0.65, 0.0]) - T.p
    assert np.degrees(np.arccos(view @ to_table / np.linalg.norm(to_table))) < 1.0
    assert T.R[:, 1][2] < 0  # image "down" (y) points down in the world: the camera is upright
    # The table centre projects in front of the camera (positive depth).
    assert T.inverse().apply([0.0, 0.65, 0.0])[2] > 0.5


@pytest.mark.parametrize("path", [C.SIM_CALIBRATION_PATH, C.EXAMPLE_REAL_CALIBRATION_PATH])
def test_shipped_files_comment_every_key(path):
    text = path.read_text()
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        assert re.match(r"^\s*[\w.-]+:", line), line
        assert " # " in line, f"{path.name}: key without a comment: {line!r}"
    C.load_calibration(path)


def test_example_real_calibration_fits_robot_launch_defaults():
    """As shipped, the example works with robot.launch.yaml's defaults (lbr_fri_ros2_stack, robot_name lbr):
    the driver's joint names and base frame, and a marker for every label a skill observes."""
    from legion_core.contracts.drivers import resolve_driver

    cal = C.load_calibration(C.EXAMPLE_REAL_CALIBRATION_PATH)
    lbr = resolve_driver("lbr")
    assert cal.robot_joint_names == lbr.joint_names
    assert cal.frame_ids["base"] == "lbr_link_0"
    assert set(C.sim_marker_labels()) <= set(cal.markers)
    assert cal.gripper_opening_m(-1.0) == pytest.approx(cal.gripper_open_m)
    assert cal.gripper_opening_m(1.0) == pytest.approx(cal.gripper_closed_m)
    assert cal.gripper_opening_m(0.0) == pytest.approx(0.5 * (cal.gripper_open_m + cal.gripper_closed_m))
    assert cal.gripper_opening_m(7.0) == pytest.approx(cal.gripper_closed_m)  # clamped


def test_save_load_round_trip(tmp_path):
    cal = C.load_calibration(C.EXAMPLE_REAL_CALIBRATION_PATH)
    out = C.save_calibration(cal, tmp_path / "cal.yaml", header="test cell")
    back = C.load_calibration(out)
    assert back.T_base_camera.is_close(cal.T_base_camera, 1e-9, 1e-9)
    assert back.T_sim_base.is_close(cal.T_sim_base, 1e-9, 1e-9)
    assert back.markers == cal.markers
    assert back.joint_names == cal.joint_names
    assert back.hand_eye == cal.hand_eye
    assert (back.gripper_open_m, back.gripper_closed_m) == (cal.gripper_open_m, cal.gripper_closed_m)
    assert out.read_text().startswith("# test cell")


# -- validation errors name the field and the fix --------------------------------------------------------


def _sim_dict() -> dict:
    return yaml.safe_load(C.SIM_CALIBRATION_PATH.read_text())


def _expect(d: dict, *patterns: str) -> None:
    with pytest.raises(C.CalibrationError) as e:
        C.calibration_from_dict(d, source="cal.yaml")
    for pat in patterns:
        assert re.search(pat, str(e.value)), str(e.value)


def test_reflection_matrix_is_rejected_with_det_and_field():
    d = _sim_dict()
    d["T_base_camera"]["rotation"] = {"matrix": [[1, 0, 0], [0, 1, 0], [0, 0, -1]]}
    _expect(d, r"T_base_camera\.rotation", r"not a proper rotation \(det=-1\)", "Fix")


def test_non_orthonormal_matrix_and_bad_quaternion_are_rejected():
    d = _sim_dict()
    d["T_sim_base"]["rotation"] = {"matrix": [[1, 0, 0], [0, 1, 0], [0, 0, 1.2]]}
    _expect(d, r"T_sim_base\.rotation", "orthonormal")
    d = _sim_dict()
    d["T_base_camera"]["rotation"] = {"quaternion_wxyz": [1.0, 1.0, 0.0, 0.0]}
    _expect(d, r"T_base_camera\.rotation", "norm 1.41")
    d = _sim_dict()
    d["T_base_camera"]["rotation"] = {"quaternion_wxyz": [1.0, 0.0, 0.0, 0.0], "rpy_rad": [0, 0, 0]}
    _expect(d, r"T_base_camera\.rotation", "exactly one of")


def test_rpy_and_matrix_forms_are_accepted():
    d = _sim_dict()
    d["T_sim_base"]["rotation"] = {"rpy_rad": [0.0, 0.0, np.pi / 2]}
    d["T_base_camera"]["rotation"] = {"matrix": C.sim_calibration().T_base_camera.R.tolist()}
    cal = C.calibration_from_dict(d)
    np.testing.assert_allclose(cal.T_sim_base.R, iiwa7.base_pose_sim()[1], atol=1e-12)


@pytest.mark.parametrize(
    "mutate, patterns",
    [
        (
            lambda d: d["T_base_camera"].update(translation_m=[1350.0, 0.0, 750.0]),
            [r"translation_m", "mm or cm"],
        ),
        (
            lambda d: d["T_base_camera"].update(translation_m=[1.0, 2.0]),
            [r"T_base_camera\.translation_m", "3"],
        ),
        (lambda d: d["T_base_camera"].pop("translation_m"), [r"translation_m is missing"]),
        (lambda d: d.update(T_base_cam=d.pop("T_base_camera")), ["unknown top-level key", "T_base_cam"]),
        (lambda d: d["joint_names"].pop("lbr_A3"), [r"joint_names", r"lbr_A3"]),
        (
            lambda d: d["joint_names"].update(lbr_A3="lbr_A2"),
            [r"joint_names", "several robot joints", "lbr_A2"],
        ),
        (lambda d: d["joint_names"].update(lbr_A3="A3"), [r"joint_names", "unknown LEGION joints"]),
        (lambda d: d["gripper"].update(open_m=0.0), ["gripper", "closed_m < open_m"]),
        (lambda d: d["gripper"].update(open_m=85.0), ["gripper", "metres"]),
        (lambda d: d["markers"]["puck"].update(frame="camera"), [r"markers\.puck\.frame", "marker"]),
        (lambda d: d["markers"]["puck"].update(offset_m=[0, 0, 40]), [r"markers\.puck\.offset_m", "metres"]),
        (lambda d: d["markers"]["puck"].update(offset_m=[0, "x", 0]), [r"markers\.puck\.offset_m"]),
        (lambda d: d.update(schema="legion-calibration/0"), ["schema"]),
        (
            lambda d: d.update(arm={"model": "iiwa7"}),
            [r"arm must be a mapping with keys from", "description"],
        ),
        (lambda d: d.update(arm={"description": ""}), [r"arm\.description must be one of", "URDF file path"]),
        (
            lambda d: d.update(
                arm={"T_flange_hand": {"translation_m": [0, 0, 65], "rotation": {"rpy_rad": [0, 0, 0]}}}
            ),
            [r"arm\.T_flange_hand\.translation_m", "metres"],
        ),
        (lambda d: d.update(arm={"hand_to_tcp_m": [0.045, 0]}), [r"arm\.hand_to_tcp_m", "3 numbers"]),
    ],
)
def test_field_errors(mutate, patterns):
    d = _sim_dict()
    mutate(d)
    _expect(d, r"^cal\.yaml: ", *patterns)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(C.CalibrationError, match="does not exist"):
        C.load_calibration(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("T_sim_base: [1, 2\n")
    with pytest.raises(C.CalibrationError, match="not valid YAML"):
        C.load_calibration(bad)
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(C.CalibrationError, match="mapping"):
        C.load_calibration(bad)


def test_unknown_marker_label_names_the_fix():
    with pytest.raises(C.CalibrationError, match=r"markers has no entry for detection label 'mug'.*offset_m"):
        C.sim_calibration().marker("mug")


# -- hand-eye ------------------------------------------------------------------------------------------


def _hand_eye_data(rng, n, noise_m, T_true):
    # Tool positions spread over the hand box, in the base frame.
    p_base, R_base = iiwa7.base_pose_sim()
    sim = rng.uniform([-0.3, 0.45, 0.05], [0.3, 0.9, 0.4], (n, 3))
    tcp_base = (sim - p_base) @ R_base
    cam = T_true.inverse().apply(tcp_base) + rng.normal(0.0, noise_m, (n, 3))
    return tcp_base, cam


@pytest.mark.parametrize("seed", range(3))
def test_hand_eye_recovers_a_known_transform_from_noisy_data(seed):
    rng = np.random.default_rng(seed)
    T_true = C.sim_calibration().T_base_camera
    if seed == 2:  # an arbitrary, far-from-identity pose too
        T_true = Transform(_random_R(rng), rng.uniform(-1.5, 1.5, 3), "base", "camera")
    tcp, cam = _hand_eye_data(rng, 40, 0.001, T_true)
    res = C.solve_T_base_camera(tcp, cam)
    d = T_true.inverse() @ res.T_base_camera
    assert np.linalg.norm(d.p) < 2e-3
    assert np.degrees(rotation_angle(d.R)) < 0.3
    assert 0.001 < res.rms_residual_m < 0.0025  # ~sqrt(3) * noise, minus the fitted dof
    assert res.max_residual_m >= res.rms_residual_m
    assert res.n_samples == 40 and res.residuals_m.shape == (40,)


def test_hand_eye_is_exact_without_noise_and_with_three_points():
    rng = np.random.default_rng(7)
    T_true = C.sim_calibration().T_base_camera
    tcp, cam = _hand_eye_data(rng, 3, 0.0, T_true)
    res = C.solve_T_base_camera(tcp, cam)
    assert res.T_base_camera.is_close(T_true, 1e-9, 1e-9)
    assert res.rms_residual_m < 1e-9


def test_hand_eye_rejects_degenerate_input():
    rng = np.random.default_rng(8)
    T_true = C.sim_calibration().T_base_camera
    tcp, cam = _hand_eye_data(rng, 10, 0.0, T_true)
    with pytest.raises(C.CalibrationError, match="at least 3"):
        C.solve_T_base_camera(tcp[:2], cam[:2])
    line = np.linspace([0.5, 0.0, 0.2], [0.7, 0.1, 0.4], 10)
    with pytest.raises(C.CalibrationError, match="collinear"):
        C.solve_T_base_camera(line, T_true.inverse().apply(line))
    nearly = line + rng.normal(0, 1e-4, line.shape)
    with pytest.raises(C.CalibrationError, match="collinear"):
        C.solve_T_base_camera(nearly, T_true.inverse().apply(nearly))
    bad = cam.copy()
    bad[3, 1] = np.nan
    with pytest.raises(C.CalibrationError, match="NaN"):
        C.solve_T_base_camera(tcp, bad)
    with pytest.raises(C.CalibrationError, match=r"\[N, 3\]"):
        C.solve_T_base_camera(tcp, cam[:, :2])


def test_hand_eye_result_round_trips_into_a_calibration(tmp_path):
    rng = np.random.default_rng(9)
    cal = C.sim_calibration()
    tcp, cam = _hand_eye_data(rng, 20, 0.0005, cal.T_base_camera)
    res = C.solve_T_base_camera(tcp, cam)
    new = C.Calibration(
        T_sim_base=cal.T_sim_base,
        T_base_camera=res.T_base_camera,
        markers=cal.markers,
        gripper_open_m=cal.gripper_open_m,
        gripper_closed_m=cal.gripper_closed_m,
        joint_names=cal.joint_names,
        name="hand-eye test",
        hand_eye={"rms_residual_m": round(res.rms_residual_m, 6), "n_samples": res.n_samples},
    )
    back = C.load_calibration(C.save_calibration(new, tmp_path / "he.yaml"))
    assert back.T_base_camera.is_close(res.T_base_camera, 1e-9, 1e-9)
    assert back.hand_eye["n_samples"] == 20


def test_static_transforms_are_leaves_of_the_robot_base_and_compose_to_the_calibration():
    """/tf_static gets base -> sim_world and base -> camera: composing them gives T_sim_camera back, and the
    base (which the robot's own description parents) is never a child."""
    from legion_core.robot.frames import Transform, quat_to_R

    cal = C.load_calibration(C.EXAMPLE_REAL_CALIBRATION_PATH)
    tfs = {child: (parent, p, q) for parent, child, p, q in cal.static_transforms()}
    assert set(tfs) == {"sim_world", cal.frame_ids["camera"]}
    assert {parent for parent, _, _ in tfs.values()} == {"lbr_link_0"}
    T_base_sim = Transform(quat_to_R(tfs["sim_world"][2]), tfs["sim_world"][1])
    T_base_cam = Transform(quat_to_R(tfs[cal.frame_ids["camera"]][2]), tfs[cal.frame_ids["camera"]][1])
    assert (T_base_sim.inverse() @ T_base_cam).is_close(cal.T_sim_camera, 1e-9, 1e-9)


# -- the arm section (docs/robot-integration.md, "Robot description") ------------------------------------


def test_the_arm_section_round_trips_and_builds_the_arm(tmp_path):
    from legion_core.robot import kinematics
    from legion_core.robot.description import shipped_urdf

    d = _sim_dict()
    d["arm"] = {
        "description": "robot.urdf",  # relative to the calibration file
        "base_link": "iiwa14_link_0",
        "flange_link": "iiwa14_link_ee",
        "T_flange_hand": {
            "translation_m": [0.0, 0.0, 0.08],
            "rotation": {"rpy_rad": [0.0, -1.5707963267948966, 0.0]},
        },
        "hand_to_tcp_m": [0.05, 0.0, 0.0],
    }
    d["joint_names"] = {f"iiwa14_A{i}": f"lbr_A{i}" for i in range(1, 8)}
    (tmp_path / "robot.urdf").write_text(shipped_urdf("iiwa14", "iiwa14"))
    path = tmp_path / "cal.yaml"
    path.write_text(yaml.safe_dump(d))
    cal = C.load_calibration(path)
    arm = cal.arm_model()
    assert arm.joint_names == tuple(f"iiwa14_A{i}" for i in range(1, 8))
    assert kinematics.fk_point(np.zeros(7), "flange", arm)[2] == pytest.approx(1.306)
    np.testing.assert_allclose(arm.tool_points["hand"], [0, 0, 0.08])
    np.testing.assert_allclose(arm.tool_points["tcp"], [0, 0, 0.13], atol=1e-12)
    back = C.load_calibration(C.save_calibration(cal, tmp_path / "again.yaml"))
    assert back.arm == cal.arm or np.allclose(
        back.arm.tool.flange_to_hand_quat_wxyz, cal.arm.tool.flange_to_hand_quat_wxyz
    )
    assert back.arm.description == "robot.urdf" and back.arm.tool.hand_to_tcp_xyz_m == (0.05, 0.0, 0.0)


def test_a_description_whose_joints_the_driver_names_otherwise_is_refused():
    """The driver says iiwa7_A*, the calibration maps lbr_A*: the description (from the driver) and the
    calibration disagree on which joint is which; nothing is guessed."""
    from legion_core.robot.description import shipped_urdf

    cal = C.load_calibration(C.EXAMPLE_REAL_CALIBRATION_PATH)
    assert cal.arm.description == "topic"
    with pytest.raises(C.CalibrationError, match="no robot_description was received"):
        cal.arm_model()
    assert cal.arm_model(shipped_urdf("iiwa7")).joint_names == cal.robot_joint_names
    # A driver with robot_name iiwa7: its links are not where the calibration's base frame says ...
    with pytest.raises(C.CalibrationError, match=r"no link 'lbr_link_0' \(base_link\); set arm\.base_link"):
        cal.arm_model(shipped_urdf("iiwa7", "iiwa7"))
    # ... and with the frames right, its joints are not the ones joint_names maps.
    import dataclasses

    frames = dataclasses.replace(
        cal,
        frame_ids=dict(cal.frame_ids, base="iiwa7_link_0"),
        arm=dataclasses.replace(cal.arm, flange_link="iiwa7_link_ee"),
    )
    with pytest.raises(
        C.CalibrationError, match=r"joint_names has no entry for the description's joint 1 \('iiwa7_A1'"
    ):
        frames.arm_model(shipped_urdf("iiwa7", "iiwa7"))
    swapped = dict(cal.joint_names, lbr_A1="lbr_A2", lbr_A2="lbr_A1")

    with pytest.raises(C.CalibrationError, match="joint 1 \\('lbr_A1'.*to 'lbr_A2', not 'lbr_A1'"):
        dataclasses.replace(cal, joint_names=swapped).arm_model(shipped_urdf("iiwa7"))


def test_a_missing_urdf_file_names_the_path_and_the_choices(tmp_path):
    d = _sim_dict()
    d["arm"] = {"description": "nowhere.urdf"}
    path = tmp_path / "cal.yaml"
    path.write_text(yaml.safe_dump(d))
    with pytest.raises(
        C.CalibrationError, match=r"arm\.description.*cannot read the URDF file .*nowhere\.urdf.*iiwa14"
    ):
        C.load_calibration(path).arm_model()
