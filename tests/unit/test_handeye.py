"""The hand-eye solver (sim2real.handeye) on synthetic samples: exact samples give the exact poses for both
set-ups, noisy ones land within the noise's reach, the verdict flags a bad sample, and input that cannot give
a calibration is refused with the fix. The sample plan (sim2real.handeye_plan) stays inside the arm's limits
and the workspace box and gives the solver the rotation diversity it needs."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("cv2")

from legion_core.robot import kinematics  # noqa: E402
from legion_core.robot.frames import Transform, look_at_R, rpy_to_R  # noqa: E402
from sim2real.calibration import sim_calibration  # noqa: E402
from sim2real.handeye import (  # noqa: E402
    EYE_IN_HAND,
    EYE_TO_HAND,
    HandEyeConfig,
    HandEyeError,
    HandEyeSample,
    check_samples,
    make_sample,
    pose_error,
    solve_hand_eye,
)
from sim2real.handeye_plan import SamplePlanConfig, plan_samples  # noqa: E402

#: Camera fixed across the table (eye-to-hand), 1.3 m from the flange poses.
X_E2H = Transform(look_at_R([0.2, 1.1, 1.0], [0.5, 0.0, 0.2]), [0.2, 1.1, 1.0], "base", "camera")
#: The tag on a bracket on the flange, face up.
Y_E2H = Transform(rpy_to_R([math.pi, 0.05, 0.1]), [0.0, 0.11, 0.005], "flange", "tag")
#: Camera on the flange (eye-in-hand) and the tag on the table.
X_EIH = Transform(rpy_to_R([0.07, -0.1, 1.57]), [0.07, 0.0, 0.02], "flange", "camera")
Y_EIH = Transform(rpy_to_R([0.0, 0.0, 0.4]), [0.55, 0.05, -0.3], "base", "tag")


def _flange_poses(n: int, seed: int = 0) -> list[Transform]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        R = rpy_to_R([math.pi + rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3), rng.uniform(-0.7, 0.7)])
        out.append(Transform(R, np.array([0.5, 0.0, 0.3]) + rng.uniform(-0.15, 0.15, 3), "base", "flange"))
    return out


def _samples(setup, n=20, noise_m=0.0, noise_deg=0.0, seed=0) -> list[HandEyeSample]:
    rng = np.random.default_rng(seed + 100)
    out = []
    for i, A in enumerate(_flange_poses(n, seed)):
        if setup == EYE_TO_HAND:
            T = X_E2H.inverse() @ A @ Y_E2H
        else:
            T = X_EIH.inverse() @ A.inverse() @ Y_EIH
        R = T.R @ rpy_to_R(np.radians(rng.normal(0.0, noise_deg, 3)))
        p = T.p + rng.normal(0.0, noise_m, 3)
        out.append(HandEyeSample(A, Transform(R, p, "camera", "tag"), f"s{i:02d}"))
    return out


@pytest.mark.parametrize("setup, X, Y", [(EYE_TO_HAND, X_E2H, Y_E2H), (EYE_IN_HAND, X_EIH, Y_EIH)])
def test_exact_samples_give_the_exact_poses(setup, X, Y):
    sol = solve_hand_eye(_samples(setup), setup)
    for got, true in ((sol.camera, X), (sol.tag, Y)):
        dp, dr = pose_error(got, true)
        assert dp < 1e-6 and dr < 1e-6, (setup, dp, dr)
    assert sol.rms_position_mm < 1e-6 and sol.max_rotation_deg < 1e-6
    assert sol.passed and sol.verdict.startswith("PASS")
    assert (sol.camera.parent, sol.camera.child) == (
        ("base", "camera") if setup == EYE_TO_HAND else ("flange", "camera")
    )


def test_noisy_samples_land_within_the_noise_reach():
    """0.5 mm / 0.3 deg of detection noise on 30 samples: the camera 1.3 m away within 5 mm / 0.5 deg, the
    residuals about the noise, the 1-sigma estimate of the right size (the error within 4 sigma)."""
    sol = solve_hand_eye(_samples(EYE_TO_HAND, n=30, noise_m=0.0005, noise_deg=0.3), EYE_TO_HAND)
    dp, dr = pose_error(sol.camera, X_E2H)
    assert dp < 5.0 and dr < 0.5, (dp, dr)
    assert 0.3 < sol.rms_position_mm < 1.5
    assert 0.2 < sol.rms_rotation_deg < 1.0
    assert dp < 4 * sol.std_position_mm + 0.5 and dr < 4 * sol.std_rotation_deg + 0.05
    assert sol.passed


def test_a_wrong_prior_does_not_change_the_result():
    samples = _samples(EYE_TO_HAND, noise_m=0.0005, noise_deg=0.3)
    wrong = Transform(X_E2H.R @ rpy_to_R([0.3, -0.2, 0.5]), X_E2H.p + [0.3, -0.2, 0.1])
    a = solve_hand_eye(samples, EYE_TO_HAND)
    b = solve_hand_eye(samples, EYE_TO_HAND, initial=(wrong, Transform.identity()))
    dp, dr = pose_error(a.camera, b.camera)
    assert dp < 1e-3 and dr < 1e-4


def test_the_verdict_names_a_bad_sample():
    """One detection 3 cm off (a stale frame): the verdict fails and names that sample; its residual stands
    out in the report."""
    samples = _samples(EYE_TO_HAND, n=20, noise_m=0.0003, noise_deg=0.2)
    bad = samples[7]
    samples[7] = HandEyeSample(
        bad.T_base_flange, Transform(bad.T_camera_tag.R, bad.T_camera_tag.p + [0.03, 0.0, 0.0]), "stale"
    )
    sol = solve_hand_eye(samples, EYE_TO_HAND)
    assert not sol.passed
    assert "sample 7 (stale)" in sol.verdict and sol.verdict.startswith("FAIL")
    worst = max(sol.residuals, key=lambda r: r.position_mm)
    assert worst.name == "stale" and worst.position_mm > 10.0
    assert any("stale" in line and "over the bound" in line for line in sol.report_lines())
    # The robust loss keeps the camera close despite the bad sample.
    assert pose_error(sol.camera, X_E2H)[0] < 5.0


def test_too_few_samples_are_refused():
    with pytest.raises(HandEyeError, match=r"5 samples, at least 8 needed: collect more poses"):
        solve_hand_eye(_samples(EYE_TO_HAND, n=5), EYE_TO_HAND)


def test_rotations_about_one_axis_are_refused():
    """Turns about the tool axis only (no tilt): the classic degenerate case."""
    base = _samples(EYE_TO_HAND, n=10)
    R0 = rpy_to_R([math.pi, 0.0, 0.0])
    samples = []
    for i, s in enumerate(base):
        A = Transform(R0 @ rpy_to_R([0.0, 0.0, 0.15 * i]), s.T_base_flange.p, "base", "flange")
        samples.append(HandEyeSample(A, X_E2H.inverse() @ A @ Y_E2H, f"s{i}"))
    with pytest.raises(HandEyeError, match=r"share nearly one axis.*add poses tilted about another axis"):
        solve_hand_eye(samples, EYE_TO_HAND)


def test_too_little_rotation_is_refused():
    samples = []
    for i, s in enumerate(_samples(EYE_TO_HAND, n=10)):
        A = Transform(
            rpy_to_R([math.pi + 0.01 * (i % 3), 0.01 * (i % 2), 0.0]), s.T_base_flange.p, "base", "flange"
        )
        samples.append(HandEyeSample(A, X_E2H.inverse() @ A @ Y_E2H))
    with pytest.raises(
        HandEyeError, match=r"turns at most \d+\.\d deg between samples \(at least 15 deg needed\)"
    ):
        solve_hand_eye(samples, EYE_TO_HAND)


def test_a_flange_that_does_not_move_is_refused():
    samples = []
    for i, s in enumerate(_samples(EYE_TO_HAND, n=10)):
        A = Transform(s.T_base_flange.R, [0.5, 0.0, 0.3 + 0.001 * i], "base", "flange")
        samples.append(HandEyeSample(A, X_E2H.inverse() @ A @ Y_E2H))
    with pytest.raises(HandEyeError, match=r"flange positions spread only .* spread the poses"):
        check_samples(samples, HandEyeConfig())


def test_non_finite_or_inverted_input_is_refused():
    A = _flange_poses(1)[0]
    with pytest.raises(
        HandEyeError, match=r"sample 'p03' tag position must be 3 finite numbers.*drop the sample"
    ):
        make_sample(A.p, A.R, [0.1, float("nan"), 1.0], [1, 0, 0, 0], "p03")
    with pytest.raises(HandEyeError, match=r"sample 'p04' flange position must be 3 finite numbers"):
        make_sample([0.1, 0.2], A.R, [0.1, 0.0, 1.0], [1, 0, 0, 0], "p04")
    with pytest.raises(HandEyeError, match=r"tag quaternion_wxyz has norm 2"):
        make_sample(A.p, A.R, [0.1, 0.0, 1.0], [2, 0, 0, 0], "p05")
    samples = _samples(EYE_TO_HAND)
    s = samples[2]
    samples[2] = HandEyeSample(s.T_base_flange, s.T_camera_tag.inverse().with_frames("camera", "tag"), "inv")
    if samples[2].T_camera_tag.p[2] > 0:  # the inverse of this pose happens to be in front: force it behind
        samples[2] = HandEyeSample(s.T_base_flange, Transform(s.T_camera_tag.R, -s.T_camera_tag.p), "inv")
    with pytest.raises(HandEyeError, match=r"sample 2 \(inv\).*must be in front of it.*inverted"):
        solve_hand_eye(samples, EYE_TO_HAND)
    with pytest.raises(HandEyeError, match=r"setup must be one of"):
        solve_hand_eye(_samples(EYE_TO_HAND), "eye_on_hand")
    with pytest.raises(ValueError, match=r"min_samples must be an integer >= 3"):
        HandEyeConfig(min_samples=2)


# -- the sample plan -------------------------------------------------------------------------------------


def test_the_plan_stays_inside_the_limits_and_the_box_and_turns_about_several_axes():
    cal = sim_calibration()
    cfg = SamplePlanConfig()
    plan = plan_samples(cal, cfg)
    assert len(plan.poses) >= 24 and len(plan.poses) + len(plan.dropped) == cfg.n_poses
    arm = cal.arm_model()
    lo, hi = np.asarray(cfg.workspace_low_m), np.asarray(cfg.workspace_high_m)
    for pose in plan.poses:
        assert np.all(pose.q >= arm.q_low + cfg.joint_margin_rad - 1e-9)
        assert np.all(pose.q <= arm.q_high - cfg.joint_margin_rad + 1e-9)
        tool = cal.T_sim_base.apply(kinematics.fk_point(pose.q, "hand", arm))
        np.testing.assert_allclose(tool, pose.tool_sim_m, atol=1e-9)
        assert np.all(tool >= lo - 1e-9) and np.all(tool <= hi + 1e-9)
        assert cal.T_sim_base.apply(kinematics.fk_point(pose.q, "tcp", arm))[2] >= cfg.min_height_m - 1e-9
    # The solver's rotation checks pass on the plan's flange poses (synthetic detections).
    samples = []
    for pose in plan.poses:
        R, p = pose.T_base_flange
        A = Transform(R, p, "base", "flange")
        samples.append(HandEyeSample(A, X_E2H.inverse() @ A @ Y_E2H, pose.name))
    check_samples(samples, HandEyeConfig())
    # The walk keeps the moves short: no joint turns more than ~1 rad between consecutive poses.
    steps = [float(np.max(np.abs(a.q - b.q))) for a, b in zip(plan.poses, plan.poses[1:], strict=False)]
    assert max(steps) < 1.2, steps


def test_poses_out_of_reach_or_out_of_the_box_are_dropped_with_the_reason():
    cal = sim_calibration()
    # A box 1.5 m out along y (out of reach) and a workspace box that the plan's volume crosses.
    far = plan_samples(
        cal, SamplePlanConfig(centre_sim_m=(0.0, 1.6, 0.3), half_extent_m=(0.05, 0.05, 0.05), n_poses=4)
    )
    assert not far.poses and len(far.dropped) == 4
    assert all("out of reach" in why or "workspace box" in why for _, why in far.dropped), far.dropped
    clipped = plan_samples(cal, SamplePlanConfig(workspace_low_m=(-0.5, 0.4, 0.25), n_poses=12))
    assert any("leaves the workspace box" in why for _, why in clipped.dropped), clipped.dropped
    assert all(p.tool_sim_m[2] >= 0.25 - 1e-9 for p in clipped.poses)
    low = plan_samples(cal, SamplePlanConfig(centre_sim_m=(0.0, 0.6, 0.1), half_extent_m=(0.1, 0.1, 0.0),
                                             workspace_low_m=(-0.5, 0.4, 0.0), n_poses=6))  # fmt: skip
    assert any("above the table (minimum 0.08 m)" in why for _, why in low.dropped), low.dropped
    with pytest.raises(ValueError, match=r"tilt_deg must be in \[0, 45\] deg"):
        SamplePlanConfig(tilt_deg=60)


# -- samples files and `legion calibrate --samples` --------------------------------------------------------


def test_a_samples_file_round_trips_and_names_a_bad_entry(tmp_path):
    import yaml

    from sim2real.handeye import load_samples, save_samples

    samples = _samples(EYE_TO_HAND, n=10, noise_m=0.0003, noise_deg=0.2)
    path = save_samples(tmp_path / "s.yaml", samples, EYE_TO_HAND, q_rad=[np.zeros(7)] * 10, note="unit test")
    setup, back = load_samples(path)
    assert setup == EYE_TO_HAND and [s.name for s in back] == [s.name for s in samples]
    for a, b in zip(samples, back, strict=True):
        assert pose_error(a.T_base_flange, b.T_base_flange)[0] < 1e-5
        assert pose_error(a.T_camera_tag, b.T_camera_tag)[1] < 1e-5
    data = yaml.safe_load(path.read_text())
    data["samples"][3]["T_camera_tag"]["translation_m"][1] = float("nan")
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(HandEyeError, match=r"samples\[3\].*tag position must be 3 finite numbers"):
        load_samples(path)
    data["samples"][3]["T_camera_tag"] = {"translation_m": [0, 0, 1]}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(HandEyeError, match=r"samples\[3\]\.T_camera_tag must be \{translation_m"):
        load_samples(path)
    with pytest.raises(HandEyeError, match=r"does not exist .*--save-samples"):
        load_samples(tmp_path / "missing.yaml")


def test_calibrate_from_a_samples_file_writes_a_loadable_calibration(tmp_path, capsys):
    from legion_core.cli import main
    from sim2real.calibration import load_calibration
    from sim2real.handeye import save_samples

    # The twin's calibration, its camera moved: the samples seen from the moved camera.
    cal = sim_calibration()
    X_true = Transform(
        cal.T_base_camera.R @ rpy_to_R(np.radians([1.0, -2.0, 3.0])),
        cal.T_base_camera.p + [0.03, -0.02, 0.04],
    )
    samples = []
    for i, A in enumerate(_flange_poses(20)):
        samples.append(HandEyeSample(A, (X_true.inverse() @ A @ Y_E2H).with_frames("camera", "tag"), f"s{i}"))
    src = save_samples(tmp_path / "samples.yaml", samples, EYE_TO_HAND)
    out = tmp_path / "cell.yaml"
    assert (
        main(["calibrate", "--samples", str(src), "--out", str(out), "--json", str(tmp_path / "r.json")]) == 0
    )
    text = capsys.readouterr().out
    assert "PASS" in text and "s19" in text and f"wrote {out}" in text
    got = load_calibration(out)
    dp, dr = pose_error(got.T_base_camera, X_true)
    assert dp < 1e-3 and dr < 1e-4
    assert got.hand_eye["n_samples"] == 20 and got.hand_eye["rms_residual_m"] < 1e-6
    assert got.T_sim_base.is_close(cal.T_sim_base)  # the rest of the base calibration is kept
    # A stale detection: FAIL, exit status 1, nothing written.
    bad = tmp_path / "bad.yaml"
    samples[4] = HandEyeSample(
        samples[4].T_base_flange,
        Transform(samples[4].T_camera_tag.R, samples[4].T_camera_tag.p + [0.05, 0, 0], "camera", "tag"),
        "stale",
    )
    save_samples(bad, samples, EYE_TO_HAND)
    assert main(["calibrate", "--samples", str(bad), "--out", str(tmp_path / "no.yaml")]) == 1
    assert "FAIL" in capsys.readouterr().out and not (tmp_path / "no.yaml").exists()
    # Too few samples: exit status 2 and the fix.
    few = save_samples(tmp_path / "few.yaml", samples[:4], EYE_TO_HAND)
    assert main(["calibrate", "--samples", str(few)]) == 2
    assert "4 samples, at least 8 needed" in capsys.readouterr().out
