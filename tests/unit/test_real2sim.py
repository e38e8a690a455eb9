"""sim2real.real2sim: joint states + detections -> the policy's observation, with explicit validity."""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from legion_core.contracts.layouts import LEGION12
from legion_core.contracts.tasks import get_task
from legion_core.robot import iiwa7
from legion_core.robot import kinematics as kin
from legion_core.robot.description import shipped_urdf
from legion_core.robot.frames import R_to_quat, rot_z
from sim2real.calibration import (
    EXAMPLE_REAL_CALIBRATION_PATH,
    CalibrationError,
    MarkerOffset,
    load_calibration,
    sim_calibration,
)
from sim2real.real2sim import Detection, Real2Sim, Real2SimConfig

CAL = sim_calibration()
T_CAM_SIM = CAL.T_sim_camera.inverse()
NAMES = list(iiwa7.JOINT_NAMES)
Q_CAM_IDENTITY = R_to_quat(T_CAM_SIM.R)  # a marker whose axes are sim_world's


def home_q() -> np.ndarray:
    from legion_core.sim.kuka import home_posture

    return home_posture((0.0, 0.6, 0.2))[0]


def hand_sim(q) -> np.ndarray:
    return CAL.T_sim_base.apply(kin.fk_point(np.asarray(q), "hand"))


def det(label, p_sim, t, conf=0.9, quat=None, cal=CAL):
    T = cal.T_sim_camera.inverse()
    q = R_to_quat(T.R) if quat is None else quat
    return Detection(label, T.apply(np.asarray(p_sim, float)), q, t, conf)


OBJ = np.array([0.05, 0.7, 0.02])
GOAL = np.array([-0.1, 0.8, 0.2])


def fed(task="pick-place", t=1.0, q=None, config=None, cal=CAL, arm=None) -> Real2Sim:
    r = Real2Sim(cal, task, config=config, arm=arm)
    q = home_q() if q is None else q
    r.set_joint_state(list(cal.robot_joint_names), list(q), t)
    r.add_detection(det(r.task_spec.object_label, OBJ, t, cal=cal))
    if r.task_spec.goal.kind == "marker":
        r.add_detection(det(r.task_spec.goal.marker_label, GOAL, t, cal=cal))
    return r


def test_valid_observation_has_the_right_fields_and_vector():
    q = home_q()
    r = fed(q=q)
    ob = r.observe(1.02)
    assert ob.valid and ob.reason == "ok", ob.reason
    np.testing.assert_allclose(ob.fields["hand_pos"], hand_sim(q), atol=1e-12)
    np.testing.assert_allclose(ob.fields["obj_pos"], OBJ, atol=1e-12)
    np.testing.assert_allclose(ob.fields["goal_pos"], GOAL, atol=1e-12)
    expected = LEGION12.build({"hand_pos": hand_sim(q), "obj_pos": OBJ, "goal_pos": GOAL})
    np.testing.assert_allclose(ob.vector, expected, atol=1e-12)
    assert ob.vector.shape == (12,) and np.all(ob.vector[6:9] == 0.0)
    assert ob.skill == "pick-place" and ob.layout == "legion12"
    np.testing.assert_allclose(ob.fields["obj_quat"], [1, 0, 0, 0], atol=1e-12)
    np.testing.assert_allclose(hand_sim(q), [0.0, 0.6, 0.2], atol=1e-3)


def test_joint_order_does_not_matter_and_extra_names_are_ignored():
    q = home_q()
    r = fed(q=q)
    order = [6, 2, 0, 5, 1, 4, 3]
    r.set_joint_state(["finger_l"] + [NAMES[i] for i in order], [0.04] + [q[i] for i in order], 1.0)
    ob = r.observe(1.0)
    assert ob.valid, ob.reason
    np.testing.assert_allclose(ob.fields["q"], q)
    np.testing.assert_allclose(ob.fields["hand_pos"], hand_sim(q), atol=1e-12)


def test_driver_joint_names_come_from_the_calibration():
    import dataclasses

    cal = load_calibration(EXAMPLE_REAL_CALIBRATION_PATH)
    cal = dataclasses.replace(
        cal,
        joint_names={f"iiwa7_A{i}": f"lbr_A{i}" for i in range(1, 8)},
        frame_ids=dict(cal.frame_ids, base="iiwa7_link_0"),
        arm=dataclasses.replace(cal.arm, flange_link="iiwa7_link_ee"),
    )
    # The arm from the driver's robot_description (lbr stack, robot_name iiwa7), as the example says.
    r = fed(cal=cal, arm=cal.arm_model(shipped_urdf("iiwa7", "iiwa7")))
    assert r.observe(1.0).valid
    r.set_joint_state(NAMES, list(home_q()), 1.0)  # our names, not the driver's
    ob = r.observe(1.0)
    assert not ob.valid and ob.vector is None
    assert "lbr_A1 (robot name 'iiwa7_A1')" in ob.reason
    assert "unknown name(s)" in ob.reason and "lbr_A1" in ob.reason


@pytest.mark.parametrize(
    "names, positions, pattern",
    [
        (NAMES[:2] + NAMES[3:], [0.0] * 6, r"missing lbr_A3 \(robot name 'lbr_A3'\)"),
        (NAMES + ["lbr_A2"], [0.0] * 8, r"duplicate joint name\(s\) \['lbr_A2'\]"),
        (NAMES, [0.0] * 6, "7 joint names but 6 positions"),
    ],
)
def test_bad_joint_messages_name_the_problem(names, positions, pattern):
    r = fed()
    r.set_joint_state(names, positions, 1.0)
    ob = r.observe(1.0)
    assert not ob.valid and ob.vector is None
    assert re.search(pattern, ob.reason), ob.reason


def test_no_joint_state_yet():
    r = Real2Sim(CAL, "reach")
    ob = r.observe(0.0)
    assert not ob.valid and "joints: no joint state received yet" in ob.reason
    assert "object 'puck': not detected" in ob.reason and "goal marker 'goal_marker'" in ob.reason
    assert math.isnan(ob.stamp)


def test_non_finite_and_out_of_limit_joints():
    q = home_q()
    q_nan = q.copy()
    q_nan[4] = np.nan
    r = fed(q=q_nan)
    ob = r.observe(1.0)
    assert not ob.valid and "non-finite value for ['lbr_A5']" in ob.reason
    q_out = q.copy()
    q_out[1] = kin.Q_HIGH[1] + 0.2
    ob = fed(q=q_out).observe(1.0)
    assert not ob.valid and "lbr_A2" in ob.reason and "outside its limits" in ob.reason
    # Within the tolerance it is fine.
    q_tol = q.copy()
    q_tol[0] = kin.Q_HIGH[0] + 0.01
    assert "outside its limits" not in fed(q=q_tol).observe(1.0).reason


def test_hand_outside_the_workspace_is_invalid():
    ob = fed(q=np.zeros(7)).observe(1.0)  # straight up: hand ~1.3 m high
    assert not ob.valid and ob.reason.startswith("hand_pos:") and "outside the workspace box" in ob.reason
    assert ob.fields["hand_pos"][2] > 1.0  # still reported for diagnostics


def test_staleness_per_source():
    cfg = Real2SimConfig(max_joint_age_s=0.05, max_object_age_s=0.3, max_goal_age_s=0.6)
    r = fed(t=1.0, config=cfg)
    assert r.observe(1.04).valid
    ob = r.observe(1.1)
    assert not ob.valid and "joints: stale (age 0.100 s > 0.050 s)" in ob.reason
    assert "object" not in ob.reason
    r.set_joint_state(NAMES, list(home_q()), 1.5)
    ob = r.observe(1.5)
    assert not ob.valid and "object 'puck': stale" in ob.reason and "goal" not in ob.reason
    r.add_detection(det("puck", OBJ, 1.5))
    r.set_joint_state(NAMES, list(home_q()), 1.7)
    ob = r.observe(1.7)
    assert not ob.valid and "goal marker 'goal_marker': stale" in ob.reason and "object" not in ob.reason


def test_future_stamps_are_rejected():
    r = fed(t=2.0)
    ob = r.observe(1.0)
    assert not ob.valid and "in the future" in ob.reason


def test_stamp_is_the_oldest_live_source():
    r = fed(t=1.0)
    r.set_joint_state(NAMES, list(home_q()), 1.08)
    r.add_detection(det("puck", OBJ, 1.05))
    ob = r.observe(1.1)
    assert ob.valid
    assert ob.stamp == pytest.approx(1.0)  # the goal marker, seen at 1.0
    assert ob.stamps == {"joints": 1.08, "object": 1.05, "goal": 1.0}


def test_object_offset_goal_is_latched_at_the_first_sighting():
    spec = get_task("button-press-topdown")
    assert spec.goal.kind == "object_offset"
    r = fed("button-press-topdown", t=1.0)
    ob = r.observe(1.0)
    assert ob.valid, ob.reason
    np.testing.assert_allclose(ob.fields["goal_pos"], OBJ + np.asarray(spec.goal.offset_m), atol=1e-12)
    # The button moves (pressed): the goal stays where the task put it.
    r.add_detection(det("button", OBJ + [0, 0, -0.05], 1.1))
    r.set_joint_state(NAMES, list(home_q()), 1.1)
    ob = r.observe(1.1)
    np.testing.assert_allclose(ob.fields["obj_pos"], OBJ + [0, 0, -0.05], atol=1e-12)
    np.testing.assert_allclose(ob.fields["goal_pos"], OBJ + np.asarray(spec.goal.offset_m), atol=1e-12)
    # Latched goal stamps are not live: the observation stamp is the oldest live source.
    assert ob.stamp == pytest.approx(1.1) and ob.stamps["goal"] == pytest.approx(1.0)
    # A new skill (or a restart) re-anchors at the next sighting.
    r.reset_skill()
    ob = r.observe(1.1)
    assert not ob.valid and "not detected since the skill started" in ob.reason
    r.add_detection(det("button", OBJ + [0, 0.05, 0], 1.2))
    r.set_joint_state(NAMES, list(home_q()), 1.2)
    ob = r.observe(1.2)
    np.testing.assert_allclose(ob.fields["goal_pos"], OBJ + [0, 0.05, 0] + np.asarray(spec.goal.offset_m))


def test_anchor_goal_comes_from_the_static_marker_whatever_the_handle_does():
    """drawer-close in a chain: the drawer may start half open (a previous skill pushed it). The goal is the
    closed handle, from the cabinet's marker; the handle's own point is 5 cm above its marker."""
    spec = get_task("drawer-close")
    assert spec.goal.kind == "anchor_offset" and spec.goal.marker_label == "drawer_cabinet"
    cabinet = np.array([-0.24, 0.85, 0.0])
    r = fed("drawer-close", t=1.0)  # handle seen at OBJ, no cabinet yet
    ob = r.observe(1.0)
    assert not ob.valid and "anchor 'drawer_cabinet' not detected" in ob.reason
    r.add_detection(det("drawer_cabinet", cabinet, 1.0))
    ob = r.observe(1.0)
    assert ob.valid, ob.reason
    np.testing.assert_allclose(ob.fields["goal_pos"], cabinet + np.asarray(spec.goal.offset_m), atol=1e-9)
    np.testing.assert_allclose(ob.fields["obj_pos"], OBJ + [0.0, 0.0, 0.05], atol=1e-9)
    # The cabinet marker is latched; a later (noisy) sighting does not move the goal.
    r.add_detection(det("drawer_cabinet", cabinet + [0.01, 0, 0], 1.1))
    r.add_detection(det("drawer_handle", OBJ + [0, 0.1, 0], 1.1))
    r.set_joint_state(NAMES, list(home_q()), 1.1)
    ob = r.observe(1.1)
    np.testing.assert_allclose(ob.fields["goal_pos"], cabinet + np.asarray(spec.goal.offset_m), atol=1e-9)
    assert ob.stamps["goal"] == pytest.approx(1.0)


def test_reset_skill_switches_task_and_ignores_other_labels():
    r = fed("pick-place")
    r.reset_skill("button-press-topdown")
    assert r.task_spec.name == "button-press-topdown"
    assert not r.add_detection(det("puck", OBJ, 1.0))  # not this skill's label
    assert r.add_detection(det("button", OBJ, 1.0))
    ob = r.observe(1.0)
    assert ob.valid and ob.skill == "button-press-topdown"


def test_low_confidence_nan_and_implausible_detections_are_dropped():
    r = Real2Sim(CAL, "pick-place")
    r.set_joint_state(NAMES, list(home_q()), 1.0)
    r.add_detection(det("goal_marker", GOAL, 1.0))
    assert not r.add_detection(det("puck", OBJ, 1.0, conf=0.2))
    ob = r.observe(1.0)
    assert not ob.valid and "confidence 0.20 < 0.50" in ob.reason
    assert not r.add_detection(Detection("puck", [np.nan, 0, 1], Q_CAM_IDENTITY, 1.0, 0.9))
    assert "non-finite position" in r.observe(1.0).reason
    assert not r.add_detection(det("puck", [3.0, 0.7, 0.0], 1.0))  # 3 m to the side of the table
    assert "outside the sane box" in r.observe(1.0).reason
    assert not r.add_detection(Detection("puck", [0, 0, 1], [2.0, 0, 0, 0], 1.0, 0.9))
    assert "unit quaternion" in r.observe(1.0).reason
    assert not r.add_detection(det("puck", OBJ, 1.0, conf=float("nan")))
    assert r.add_detection(det("puck", OBJ, 1.0))
    assert r.observe(1.0).valid


def test_latest_and_median_filters():
    outlier = OBJ + [0.2, 0.0, 0.0]
    seq = [(OBJ + [0.001 * i, 0, 0], 1.0 + 0.01 * i) for i in range(4)] + [(outlier, 1.04)]
    latest = fed()
    median = fed(config=Real2SimConfig(detection_filter="median", median_window=5, max_object_age_s=0.2))
    for p, t in seq:
        latest.add_detection(det("puck", p, t))
        median.add_detection(det("puck", p, t))
    np.testing.assert_allclose(latest.observe(1.05).fields["obj_pos"], outlier, atol=1e-12)
    m = median.observe(1.05).fields["obj_pos"]
    assert abs(m[0] - OBJ[0]) < 0.0025  # the outlier is rejected
    # Stale samples leave the median window.
    median.set_joint_state(NAMES, list(home_q()), 1.5)
    median.add_detection(det("puck", OBJ + [0.05, 0, 0], 1.45))
    median.add_detection(det("goal_marker", GOAL, 1.45))
    np.testing.assert_allclose(median.observe(1.5).fields["obj_pos"], OBJ + [0.05, 0, 0], atol=1e-12)


def test_out_of_order_detections_keep_the_newest():
    r = fed(t=1.0)
    r.add_detection(det("puck", OBJ + [0.01, 0, 0], 1.2))
    r.add_detection(det("puck", OBJ + [0.02, 0, 0], 1.1))  # arrives late
    r.set_joint_state(NAMES, list(home_q()), 1.2)
    np.testing.assert_allclose(r.observe(1.2).fields["obj_pos"], OBJ + [0.01, 0, 0], atol=1e-12)


def _cal_with_offsets(**markers):
    m = dict(CAL.markers)
    m.update(markers)
    return dataclasses.replace(CAL, markers=m)


def test_marker_offsets_in_marker_and_sim_world_axes():
    turn = rot_z(np.pi / 2)  # the marker is turned 90 deg about sim_world z
    for frame, expected_offset in (("marker", turn @ [0.05, 0.0, 0.0]), ("sim_world", [0.05, 0.0, 0.0])):
        cal = _cal_with_offsets(puck=MarkerOffset((0.05, 0.0, 0.0), frame))
        r = fed(cal=cal)
        T_cam = cal.T_sim_camera.inverse()
        q_cam_marker = R_to_quat(T_cam.R @ turn)
        r.add_detection(Detection("puck", T_cam.apply(OBJ), q_cam_marker, 1.0, 0.9))
        ob = r.observe(1.0)
        assert ob.valid
        np.testing.assert_allclose(ob.fields["obj_pos"], OBJ + expected_offset, atol=1e-12)
        np.testing.assert_allclose(ob.fields["obj_quat"], R_to_quat(turn), atol=1e-12)


def test_marker_frame_offset_needs_an_orientation():
    cal = _cal_with_offsets(puck=MarkerOffset((0.05, 0.0, 0.0), "marker"))
    r = fed(cal=cal)
    r.reset_skill()
    assert not r.add_detection(Detection("puck", T_CAM_SIM.apply(OBJ), None, 1.0, 0.9))
    assert "needs an orientation" in r.observe(1.0).reason
    # A zero offset or a sim_world offset does not need one.
    r0 = fed()
    r0.reset_skill()
    assert r0.add_detection(Detection("puck", T_CAM_SIM.apply(OBJ), None, 1.0, 0.9))


def test_missing_calibration_for_the_skill_label_fails_at_skill_start():
    cal = dataclasses.replace(CAL, markers={k: v for k, v in CAL.markers.items() if k != "drawer_handle"})
    with pytest.raises(CalibrationError, match="drawer_handle"):
        Real2Sim(cal, "drawer-close")


def test_layouts_it_cannot_fill_are_refused():
    with pytest.raises(ValueError, match="prev_hand_pos"):
        Real2Sim(CAL, "reach", layout="mw39")


def test_gripper_state_is_reported_normalised():
    r = fed()
    r.set_gripper(0.05, 1.0)
    ob = r.observe(1.0)
    np.testing.assert_allclose(ob.fields["gripper_open"], [0.5])
    assert ob.stamps["gripper"] == 1.0


def test_config_validation():
    with pytest.raises(ValueError, match="detection_filter"):
        Real2SimConfig(detection_filter="mean")
    with pytest.raises(ValueError, match="max_joint_age_s"):
        Real2SimConfig(max_joint_age_s=float("nan"))


_any_float = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-3.0, 3.0),
    st.sampled_from([0.0, 1e300, -1e300]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    q=st.lists(_any_float, min_size=7, max_size=7),
    p=st.lists(_any_float, min_size=3, max_size=3),
    quat=st.one_of(st.none(), st.lists(_any_float, min_size=4, max_size=4)),
    stamps=st.lists(st.one_of(st.floats(0.0, 2.0), _any_float), min_size=3, max_size=3),
    conf=_any_float,
    now=st.one_of(st.floats(0.0, 2.0), _any_float),
)
def test_garbage_in_never_gives_a_silently_wrong_vector(q, p, quat, stamps, conf, now):
    r = Real2Sim(CAL, "pick-place")
    r.set_joint_state(NAMES, q, stamps[0])
    r.add_detection(Detection("puck", p, quat, stamps[1], conf))
    r.add_detection(Detection("goal_marker", T_CAM_SIM.apply(GOAL), Q_CAM_IDENTITY, stamps[2], 0.9))
    ob = r.observe(now)
    if ob.valid:
        assert ob.vector is not None and np.all(np.isfinite(ob.vector))
        np.testing.assert_allclose(ob.vector[0:3], hand_sim(q), atol=1e-9)
        assert all(math.isfinite(s) and s - now <= 0.05 for s in ob.stamps.values())
    else:
        assert ob.vector is None and ob.reason != "ok"


def test_detections_are_taken_from_the_frame_they_are_stamped_in():
    """header.frame_id decides the transform: the camera (or ''), the robot base and sim_world all give
    the same object point; a frame the calibration does not know is refused with its name."""
    r = fed()
    label = r.task_spec.object_label
    fid = CAL.frame_ids
    T_base_sim = CAL.T_sim_base.inverse()
    for frame, p in ((fid["camera"], T_CAM_SIM.apply(OBJ)), (fid["base"], T_base_sim.apply(OBJ)),
                     (fid["sim_world"], OBJ), ("", T_CAM_SIM.apply(OBJ))):  # fmt: skip
        assert r.add_detection(Detection(label, p, None, 1.01, 0.9, frame)), frame
        np.testing.assert_allclose(r.observe(1.02).fields["obj_pos"], OBJ, atol=1e-12)
    assert not r.add_detection(Detection(label, OBJ, None, 1.03, 0.9, "tag_36h11_4"))
    ob = r.observe(1.03)
    assert not ob.valid and "frame 'tag_36h11_4' is not a calibrated frame" in ob.reason
    assert fid["base"] in ob.reason
