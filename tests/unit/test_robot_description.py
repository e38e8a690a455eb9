"""The arm from a robot description (legion_core.robot.description, docs/robot-integration.md "Robot
description"): lbr_description's iiwa 7 chain equals the datasheet model (FK, Jacobian, limits, IK); the
general chain (rotated joint frames, fixed joints) is right; the iiwa 14 loads and reaches the shipped
skills' workspace; the tool mount is configuration; broken descriptions are refused with the fix."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from legion_core.robot import iiwa7, kinematics
from legion_core.robot.description import ArmSource, from_urdf, load_arm, shipped_urdf
from legion_core.robot.frames import R_to_quat, R_to_rpy, quat_to_R, rot_z
from legion_core.robot.kinematics import IIWA7, ToolMount

RNG_POSES = 2000


def _poses(arm, n=RNG_POSES, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(arm.q_low, arm.q_high, size=(n, 7))


def test_iiwa7_urdf_equals_the_datasheet_model_fk_jacobian_and_limits():
    urdf = load_arm(ArmSource("iiwa7"))
    assert urdf.joint_names == iiwa7.JOINT_NAMES
    np.testing.assert_allclose(urdf.q_low, iiwa7.JOINT_LIMITS_RAD[:, 0], atol=1e-12)
    np.testing.assert_allclose(urdf.q_high, iiwa7.JOINT_LIMITS_RAD[:, 1], atol=1e-12)
    np.testing.assert_allclose(urdf.velocity_limits_rad_s, iiwa7.JOINT_VEL_LIMITS_RAD_S, atol=1e-12)
    for q in _poses(IIWA7):
        a, b = kinematics.forward(q), kinematics.forward(q, urdf)
        np.testing.assert_allclose(b.p_flange, a.p_flange, atol=1e-12)
        np.testing.assert_allclose(b.R_flange, a.R_flange, atol=1e-12)
        for point in kinematics.TOOL_POINT_NAMES:
            np.testing.assert_allclose(kinematics.fk_point(q, point, urdf), a.point(point), atol=1e-12)
        # The joint origins differ (lbr_description offsets them along their axes), the Jacobian may not.
        np.testing.assert_allclose(kinematics.jacobian(b, "tcp"), kinematics.jacobian(a, "tcp"), atol=1e-12)


def test_iiwa7_urdf_ik_gives_the_datasheet_solution():
    urdf = load_arm(ArmSource("iiwa7"))
    p_base, R_sim_base = iiwa7.base_pose_sim()
    R = kinematics.R_base_flange_down(R_sim_base)
    seed = np.asarray(iiwa7.HOME_SEED_Q_RAD)
    for p_sim in ([0.0, 0.6, 0.2], [0.2, 0.7, 0.1], [-0.25, 0.55, 0.3]):
        p = kinematics.sim_to_base(np.asarray(p_sim), p_base, R_sim_base)
        a = kinematics.solve_ik(p, seed, R)
        b = kinematics.solve_ik(p, seed, R, arm=urdf)
        np.testing.assert_allclose(b.q, a.q, atol=1e-9)
        assert b.position_error_m == pytest.approx(a.position_error_m, abs=1e-9)


def _rotated_frames_urdf(seed: int) -> str:
    """lbr_description's iiwa 7 with every link frame turned by a random rotation (joint origins carry rpy,
    axes are no longer principal) and a fixed mounting joint world -> lbr_link_0 and a fixed joint before
    the flange: the same arm written another way."""
    d = from_urdf(shipped_urdf("iiwa7"), "lbr_link_0", "lbr_link_ee")
    rng = np.random.default_rng(seed)
    Q = [np.eye(3)] + [np.linalg.qr(rng.normal(size=(3, 3)))[0] for _ in range(7)]
    Q = [q if np.linalg.det(q) > 0 else -q for q in Q]

    def fmt(v):
        return " ".join(f"{float(x):.17g}" for x in v)

    parts = ['<robot name="rotated">', '<link name="world"/>', '<link name="lbr_link_0"/>']
    parts.append('<joint name="mount" type="fixed"><parent link="world"/><child link="lbr_link_0"/></joint>')
    for i, j in enumerate(d.joints):
        xyz = Q[i].T @ np.asarray(j.origin_xyz_m)
        R = Q[i].T @ Q[i + 1]
        axis = Q[i + 1].T @ np.asarray(j.axis)
        parts += [
            f'<link name="l{i + 1}"/>',
            f'<joint name="{j.name}" type="revolute"><parent link="{"lbr_link_0" if i == 0 else f"l{i}"}"/>'
            f'<child link="l{i + 1}"/><origin xyz="{fmt(xyz)}" rpy="{fmt(R_to_rpy(R))}"/><axis xyz="{fmt(axis)}"/>'
            f'<limit lower="{j.lower_rad}" upper="{j.upper_rad}" velocity="{j.velocity_rad_s}" effort="200"/></joint>',
        ]
    half = np.asarray(d.flange_xyz_m) / 2
    Qi = Q[7].T
    parts += [
        '<link name="mid"/><link name="lbr_link_ee"/>',
        f'<joint name="a" type="fixed"><parent link="l7"/><child link="mid"/><origin xyz="{fmt(Qi @ half)}" '
        f'rpy="{fmt(R_to_rpy(Qi))}"/></joint>',
        f'<joint name="b" type="fixed"><parent link="mid"/><child link="lbr_link_ee"/><origin xyz="{fmt(half)}"/></joint>',
        "</robot>",
    ]
    return "\n".join(parts)


@pytest.mark.parametrize("seed", [1, 2])
def test_a_description_with_rotated_frames_and_fixed_joints_is_the_same_arm(seed):
    arm = from_urdf(_rotated_frames_urdf(seed), "world", "lbr_link_ee")
    for q in _poses(IIWA7, 300, seed):
        a, b = kinematics.forward(q), kinematics.forward(q, arm)
        np.testing.assert_allclose(b.p_flange, a.p_flange, atol=1e-9)
        np.testing.assert_allclose(b.R_flange, a.R_flange, atol=1e-9)
        np.testing.assert_allclose(kinematics.jacobian(b), kinematics.jacobian(a), atol=1e-9)


def test_iiwa14_loads_with_its_own_limits_and_a_longer_chain():
    arm = load_arm(ArmSource("iiwa14"))
    np.testing.assert_allclose(
        np.rad2deg(arm.velocity_limits_rad_s), [85, 85, 100, 75, 130, 135, 135], atol=1e-9
    )
    assert kinematics.fk_point(np.zeros(7), "flange", arm)[2] == pytest.approx(1.306, abs=1e-9)
    assert kinematics.fk_point(np.zeros(7), "flange")[2] == pytest.approx(iiwa7.FLANGE_HEIGHT_ZERO_POSE_M)


def _scene_grid(n=3):
    """Grid points of the shipped model's scene: the hand-start box and each object's box [m, sim_world]."""
    from legion_core.contracts.bundle import load
    from legion_core.contracts.scenes import SCENES

    sc = SCENES[load("models/legion-kuka").scene]
    boxes = [(sc.hand_start_low_m, sc.hand_start_high_m)] + [(o.end_low_m, o.end_high_m) for o in sc.objects]
    u = np.array(list(itertools.product(*[np.linspace(0, 1, n)] * 3)))
    start = 0.5 * (np.asarray(sc.hand_start_low_m) + np.asarray(sc.hand_start_high_m))
    return start, [np.asarray(lo) + w * (np.asarray(hi) - np.asarray(lo)) for lo, hi in boxes for w in u]


def _reached(arm, p_base, R_sim_base, start, points) -> np.ndarray:
    """Which points the hand reaches with the policy's fixed orientation (1 mm, 0.01 rad), walking there in
    1 cm steps from the start posture as the mapper does."""
    R = kinematics.R_base_flange_down(R_sim_base)

    def base(p):
        return kinematics.sim_to_base(p, p_base, R_sim_base)

    q0 = kinematics.start_posture(base(start), R, arm=arm).q
    out = []
    for p in points:
        q, n = q0, int(math.ceil(np.linalg.norm(p - start) / 0.01))
        for s in range(1, n + 1):
            q = kinematics.solve_ik(base(start + (p - start) * s / n), q, R, q_rest=q0, arm=arm).q
        r = kinematics.solve_ik(
            base(p), q, R, cfg=kinematics.IKConfig(max_iterations=100, nullspace_gain=0), arm=arm
        )
        out.append(r.position_error_m < 1e-3 and r.orientation_error_rad < 1e-2)
    return np.array(out)


def test_iiwa14_ik_reaches_the_shipped_skills_workspace():
    """Where the iiwa 7 the policies were trained on reaches (flange down), the iiwa 14 reaches too once its
    base stands 3 cm further back (a calibration's T_sim_base: its longer upper arm binds A4 earlier near
    the base); at the twin's own placement it misses only points at that near edge. Neither arm reaches the
    points closest to its base flange-down (the A4 limit; docs/kuka-embodiment.md)."""
    start, points = _scene_grid()
    p_base, R_sim_base = iiwa7.base_pose_sim()
    iiwa14 = load_arm(ArmSource("iiwa14"))
    by7 = _reached(IIWA7, p_base, R_sim_base, start, points)
    assert by7.sum() >= 0.75 * len(points)  # the scene is laid out for the iiwa 7
    back = p_base - R_sim_base @ np.array([0.03, 0.0, 0.0])  # 3 cm along the base's -x (away from the table)
    by14 = _reached(iiwa14, back, R_sim_base, start, points)
    missed = [np.round(p, 3).tolist() for p, a, b in zip(points, by7, by14, strict=True) if a and not b]
    assert not missed, missed
    by14_here = _reached(iiwa14, p_base, R_sim_base, start, points)
    assert by14_here[by7].mean() >= 0.9


def test_the_tool_mount_is_configuration():
    """A gripper turned 90 deg about the flange axis: the IK turns the flange so that the hand keeps the
    policy's orientation, and the hand point moves with the configured offset."""
    base = kinematics.ToolMount()
    # The hand turned 90 deg about the flange's axis (z): R_flange_hand' = Rz(90 deg) R_flange_hand.
    turned_quat = R_to_quat(rot_z(math.pi / 2) @ base.R_flange_hand)
    turned = ToolMount((0.0, 0.0, 0.10), tuple(float(v) for v in turned_quat), base.hand_to_tcp_xyz_m)
    arm = kinematics.ArmModel.datasheet(turned)
    np.testing.assert_allclose(arm.tool_points["hand"], [0, 0, 0.10])
    p_base, R_sim_base = iiwa7.base_pose_sim()
    R_flange = kinematics.R_base_flange_down(R_sim_base, turned)
    p = kinematics.sim_to_base(np.array([0.0, 0.6, 0.2]), p_base, R_sim_base)
    seed = np.asarray(iiwa7.HOME_SEED_Q_RAD)
    res = kinematics.solve_ik(
        p, seed, R_flange, cfg=kinematics.IKConfig(max_iterations=300, nullspace_gain=0), arm=arm
    )
    assert res.position_error_m < 1e-4 and res.orientation_error_rad < 1e-3
    R_hand_sim = R_sim_base @ kinematics.forward(res.q, arm).R_flange @ turned.R_flange_hand
    np.testing.assert_allclose(R_hand_sim, quat_to_R(iiwa7.HAND_QUAT_DOWN), atol=1e-3)
    # The default mount keeps the datasheet's flange-down target.
    np.testing.assert_allclose(
        kinematics.R_base_flange_down(np.eye(3)), iiwa7.R_WORLD_FLANGE_DOWN, atol=1e-12
    )
    # ... and the turned one the same flange turned back by 90 deg about its own axis.
    np.testing.assert_allclose(
        R_flange, kinematics.R_base_flange_down(R_sim_base) @ rot_z(-math.pi / 2), atol=1e-9
    )


@pytest.mark.parametrize(
    "text, base, flange, match",
    [
        ("<robot", "lbr_link_0", "lbr_link_ee", "not a valid URDF"),
        (None, "lbr_link_0", "tool0", "no link 'tool0' \\(flange_link\\); set arm.flange_link to one of"),
        (None, "iiwa7_link_0", "lbr_link_ee", "no link 'iiwa7_link_0' \\(base_link\\)"),
        (None, "lbr_link_2", "lbr_link_ee", "has 5 revolute joints; LEGION's policies drive 7-joint arms"),
        (None, "lbr_link_ee", "lbr_link_0", "no chain"),
    ],
)
def test_a_broken_description_is_refused_with_the_fix(text, base, flange, match):
    with pytest.raises(ValueError, match=match):
        from_urdf(text if text is not None else shipped_urdf("iiwa7"), base, flange)


def test_a_joint_without_limits_or_of_another_type_is_refused():
    prismatic = shipped_urdf("iiwa7").replace(
        'name="lbr_A3" type="revolute"', 'name="lbr_A3" type="prismatic"'
    )
    with pytest.raises(ValueError, match="joint lbr_A3 is prismatic"):
        from_urdf(prismatic, "lbr_link_0", "lbr_link_ee")
    no_speed = shipped_urdf("iiwa7").replace('velocity="1.710422666954443"', 'velocity="0"', 1)
    with pytest.raises(ValueError, match="joint lbr_A1 needs a velocity limit > 0"):
        from_urdf(no_speed, "lbr_link_0", "lbr_link_ee")


def test_shipped_urdf_takes_the_robot_name_prefix():
    arm = from_urdf(shipped_urdf("iiwa7", "iiwa7"), "iiwa7_link_0", "iiwa7_link_ee")
    assert arm.joint_names == tuple(f"iiwa7_A{i}" for i in range(1, 8))
    with pytest.raises(ValueError, match="no shipped description 'med7'"):
        shipped_urdf("med7")
