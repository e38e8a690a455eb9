"""sim2real.tags without rendering: a sensor_msgs/Image buffer becomes the right pixels (row padding, BGR),
bad buffers and encodings are refused with the reason, CameraInfo intrinsics are checked."""

from __future__ import annotations

import numpy as np
import pytest

from sim2real.tags import CameraModel, TagMap, image_array


def test_rgb_bgr_and_mono_buffers_with_row_padding():
    rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    step = 5 * 3 + 2  # two padding bytes per row, as some drivers align rows
    padded = np.zeros((4, step), np.uint8)
    padded[:, :15] = rgb.reshape(4, 15)
    np.testing.assert_array_equal(image_array("rgb8", 4, 5, step, padded.tobytes()), rgb)
    bgr = padded.copy()
    bgr[:, :15] = rgb[:, :, ::-1].reshape(4, 15)
    np.testing.assert_array_equal(image_array("bgr8", 4, 5, step, bgr.tobytes()), rgb)
    mono = np.arange(20, dtype=np.uint8).reshape(4, 5)
    np.testing.assert_array_equal(image_array("mono8", 4, 5, 5, mono.tobytes()), mono)


def test_bad_buffers_and_encodings_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="encoding '16UC1' is not one of .*set the camera driver to rgb8"):
        image_array("16UC1", 4, 5, 10, bytes(40))
    with pytest.raises(ValueError, match="holds 10 bytes, 4 rows of step 15 need 60"):
        image_array("rgb8", 4, 5, 15, bytes(10))


def test_camera_info_intrinsics():
    cam = CameraModel.from_camera_info([600.0, 0, 320, 0, 600.0, 240, 0, 0, 1], [], 640, 480)
    assert cam.dist.shape == (5,) and cam.K[0, 0] == 600.0
    ideal = CameraModel.from_fovy(58.0, 640, 480)
    assert ideal.K[1, 1] == pytest.approx(240 / np.tan(np.radians(29.0)))


def test_the_twin_tag_map_loads_and_labels_calibrated_objects():
    from sim2real.calibration import sim_calibration
    from sim2real.tags import TWIN_TAG_MAP_PATH

    tm = TagMap.load(TWIN_TAG_MAP_PATH)
    assert tm.family == "tag36h11" and {t.label for t in tm.tags.values()} <= set(sim_calibration().markers)


def test_pose_topics_parse_and_bad_entries_name_the_form():
    from sim2real.node_params import parse_pose_topics

    assert parse_pose_topics("") == {}
    assert parse_pose_topics("button=/a/pose, puck=/b/pose") == {"button": "/a/pose", "puck": "/b/pose"}
    with pytest.raises(ValueError, match="must be label=/absolute/topic"):
        parse_pose_topics("button:/a/pose")
    with pytest.raises(ValueError, match="must be label=/absolute/topic"):
        parse_pose_topics("button=relative/pose")
    with pytest.raises(ValueError, match="names label 'button' twice"):
        parse_pose_topics("button=/a,button=/b")
