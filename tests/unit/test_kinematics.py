"""legion_core.robot.kinematics: FK against MuJoCo (the twin's model), datasheet height, Jacobian, bounded IK."""

from __future__ import annotations

import numpy as np
import pytest

from legion_core.robot import iiwa7
from legion_core.robot import kinematics as kin

P_BASE, R_SIM_BASE = iiwa7.base_pose_sim()
R_DOWN = kin.R_base_flange_down(R_SIM_BASE)


@pytest.fixture(scope="module")
def mj():
    mujoco = pytest.importorskip("mujoco")
    from legion_core.sim.kuka_model import build_assets

    root = build_assets()
    model = mujoco.MjModel.from_xml_path(str(root / "kuka_xyz" / "sawyer_reach_v3.xml"))
    return mujoco, model, mujoco.MjData(model)


def _random_q(rng, n, shrink=1.0):
    mid = 0.5 * (kin.Q_LOW + kin.Q_HIGH)
    half = 0.5 * (kin.Q_HIGH - kin.Q_LOW) * shrink
    return mid + rng.uniform(-1, 1, (n, 7)) * half


def test_fk_matches_mujoco_on_random_q(mj):
    mujoco, model, data = mj
    rng = np.random.default_rng(0)
    for q in _random_q(rng, 200):
        data.qpos[:7] = q
        mujoco.mj_kinematics(model, data)
        st = kin.forward(q)
        for name, ours in (("flange", st.point("flange")), ("tcp", st.point("tcp"))):
            np.testing.assert_allclose(R_SIM_BASE @ ours + P_BASE, data.site(name).xpos, atol=1e-12)
        np.testing.assert_allclose(R_SIM_BASE @ st.point("hand") + P_BASE, data.body("hand").xpos, atol=1e-12)
        np.testing.assert_allclose(
            R_SIM_BASE @ st.R_flange, data.site("flange").xmat.reshape(3, 3), atol=1e-12
        )
        np.testing.assert_allclose(kin.fk_point(q, "hand"), st.point("hand"), atol=1e-15)


def test_zero_pose_points_straight_up_at_datasheet_height():
    st = kin.forward(np.zeros(7))
    np.testing.assert_allclose(st.p_flange, [0.0, 0.0, 1.266], atol=1e-12)
    np.testing.assert_allclose(iiwa7.FLANGE_HEIGHT_ZERO_POSE_M, 1.266)
    np.testing.assert_allclose(st.R_flange, np.eye(3), atol=1e-15)
    # A2 at 0.34 m, A4 at 0.74 m, A6 at 1.14 m (datasheet link lengths 0.340 / 0.400 / 0.400 / 0.126).
    np.testing.assert_allclose(st.joint_origins[[1, 3, 5], 2], [0.34, 0.74, 1.14], atol=1e-12)


def test_forward_rejects_wrong_shape():
    with pytest.raises(ValueError, match="7 joint angles"):
        kin.forward(np.zeros(6))


@pytest.mark.parametrize("point", ["flange", "hand", "tcp"])
def test_jacobian_matches_finite_differences(point):
    rng = np.random.default_rng(1)
    eps = 1e-6
    for q in _random_q(rng, 20, shrink=0.9):
        st = kin.forward(q)
        J = kin.jacobian(st, point)
        for i in range(7):
            dq = np.zeros(7)
            dq[i] = eps
            sp, sm = kin.forward(q + dq), kin.forward(q - dq)
            np.testing.assert_allclose(J[:3, i], (sp.point(point) - sm.point(point)) / (2 * eps), atol=1e-7)
            # Angular column: the rotation vector of R(q+dq) R(q-dq)^T over 2 eps.
            w = kin.orientation_error(sm.R_flange, sp.R_flange) / (2 * eps)
            np.testing.assert_allclose(J[3:, i], w, atol=1e-7)


def test_orientation_error_is_the_log_map_including_180_degrees():
    from legion_core.robot.frames import rot_y, rot_z

    for angle in (0.0, 1e-10, 0.3, 2.0, np.pi - 1e-9, np.pi):
        e = kin.orientation_error(np.eye(3), rot_z(angle))
        assert np.linalg.norm(e) == pytest.approx(angle, abs=1e-6)
        assert abs(abs(e[2]) - angle) < 1e-6
    e = kin.orientation_error(rot_y(0.5), rot_y(0.5) @ rot_z(0.2))
    assert np.linalg.norm(e) == pytest.approx(0.2, abs=1e-9)


def _reachable_cases(n, seed=2):
    """Targets from FK of postures near the home posture (reachable by construction, flange down-ish)."""
    rng = np.random.default_rng(seed)
    home = np.asarray(iiwa7.HOME_SEED_Q_RAD)
    # Kept 0.3 rad inside the limits: a clamped DLS solver can stall on a limit it need not touch.
    qs = np.clip(home + rng.uniform(-0.4, 0.4, (n, 7)), kin.Q_LOW + 0.3, kin.Q_HIGH - 0.3)
    return home, qs


def test_ik_reaches_reachable_position_targets_within_the_cap():
    home, qs = _reachable_cases(100)
    cfg = kin.IKConfig(max_iterations=50)
    for q_true in qs:
        target = kin.fk_point(q_true)
        res = kin.solve_ik(target, home, cfg=cfg)
        assert res.iterations <= cfg.max_iterations
        assert res.position_error_m < 1e-3, res
        np.testing.assert_allclose(kin.fk_point(res.q), target, atol=1e-3)


@pytest.mark.parametrize(
    "n,seed,cfg",
    [
        (100, 3, kin.IKConfig(max_iterations=60, orientation_weight=1.0, nullspace_gain=0.0)),
        # Issue 5: the position-first solver (IKConfig.max_tilt_rad) keeps the flange down where it can.
        (60, 7, kin.IKConfig(max_iterations=60, nullspace_gain=0.0, max_tilt_rad=0.6)),
    ],
    ids=["stacked", "position_first_tilt"],
)
def test_ik_reaches_reachable_pose_targets_within_the_cap(n, seed, cfg):
    home, qs = _reachable_cases(n, seed=seed)
    for q_true in qs:
        st = kin.forward(q_true)
        res = kin.solve_ik(st.point("hand"), home, st.R_flange, cfg=cfg)
        assert res.iterations <= cfg.max_iterations
        assert res.position_error_m < 1e-3 and res.orientation_error_rad < 1e-2, res


def test_ik_warm_started_small_steps_converge_in_a_few_iterations():
    """What the mapper does every policy step: 1 cm from the current posture, flange down."""
    q = kin.solve_ik(
        kin.sim_to_base(np.array([0.0, 0.6, 0.2]), P_BASE, R_SIM_BASE),
        np.asarray(iiwa7.HOME_SEED_Q_RAD),
        R_DOWN,
        cfg=kin.IKConfig(max_iterations=200, orientation_weight=2.0),
    ).q
    rng = np.random.default_rng(4)
    for _ in range(50):
        d = rng.normal(size=3)
        target = kin.fk_point(q) + 0.01 * d / np.linalg.norm(d)
        res = kin.solve_ik(target, q, R_DOWN, cfg=kin.IKConfig(max_iterations=5, orientation_weight=1.0))
        assert res.position_error_m < 1e-3 and res.iterations <= 5
        q = res.q


def test_ik_reports_the_residual_for_unreachable_targets():
    home = np.asarray(iiwa7.HOME_SEED_Q_RAD)
    target = np.array([2.0, 0.0, 0.5])  # 2 m away: the arm reaches ~1.1 m from the shoulder
    res = kin.solve_ik(target, home, cfg=kin.IKConfig(max_iterations=100))
    assert not res.converged
    reached = kin.fk_point(res.q)
    assert res.position_error_m == pytest.approx(np.linalg.norm(target - reached), abs=1e-9)
    assert res.position_error_m > 0.8
    assert np.all(res.q >= kin.Q_LOW) and np.all(res.q <= kin.Q_HIGH)


def test_ik_never_leaves_joint_limits_and_stays_finite():
    rng = np.random.default_rng(5)
    cfg = kin.IKConfig(max_iterations=15)
    for i in range(200):
        seed = rng.uniform(kin.Q_LOW - 0.5, kin.Q_HIGH + 0.5)
        if i % 10 == 0:
            seed[rng.integers(7)] = np.nan
        target = rng.uniform(-1.5, 1.5, 3)
        if i % 13 == 0:
            target[0] = np.inf
        R = R_DOWN if i % 2 else None
        res = kin.solve_ik(target, seed, R, point=("hand", "tcp", "flange")[i % 3], cfg=cfg)
        assert np.all(np.isfinite(res.q))
        assert np.all(res.q >= kin.Q_LOW + cfg.limit_margin_rad - 1e-12)
        assert np.all(res.q <= kin.Q_HIGH - cfg.limit_margin_rad + 1e-12)
        assert np.isfinite(res.position_error_m)


def test_home_posture_of_the_twin_is_still_solved():
    """legion_core.sim.kuka solves its home posture with solve_ik: the optimisation must not change it."""
    from legion_core.sim.kuka import home_posture

    home_posture.cache_clear()
    q, residual = home_posture((0.0, 0.6, 0.2))
    assert residual < 1e-3
    np.testing.assert_allclose(R_SIM_BASE @ kin.fk_point(q) + P_BASE, [0.0, 0.6, 0.2], atol=1e-3)
    assert np.linalg.norm(kin.orientation_error(kin.forward(q).R_flange, R_DOWN)) < 1e-2


def test_sim_to_base_round_trip():
    p_sim = np.array([0.1, 0.7, 0.15])
    p_base = kin.sim_to_base(p_sim, P_BASE, R_SIM_BASE)
    np.testing.assert_allclose(R_SIM_BASE @ p_base + P_BASE, p_sim, atol=1e-15)
    np.testing.assert_allclose(R_SIM_BASE @ R_DOWN, iiwa7.R_WORLD_FLANGE_DOWN, atol=1e-15)


# -- position-first IK with a bounded tilt (docs/decisions/ik-bounded-tilt.md) ---------------------------


def test_position_first_ik_reaches_near_base_targets_that_flange_down_cannot():
    """door-open's final hand positions: with the flange down the iiwa would need A4 past -120 deg."""
    from legion_core.sim.kuka import home_posture

    home = home_posture((0.0, 0.6, 0.2))[0]
    target = kin.sim_to_base(np.array([0.0, 0.45, 0.16]), P_BASE, R_SIM_BASE)
    down = kin.solve_ik(target, home, R_DOWN, cfg=kin.IKConfig(max_iterations=200, orientation_weight=1.0))
    assert down.position_error_m > 0.01
    cfg = kin.IKConfig(max_iterations=50, max_tilt_rad=0.6)
    res = kin.solve_ik(target, home, R_DOWN, cfg=cfg)
    assert res.position_error_m < 1e-3, res
    assert 0.02 < res.orientation_error_rad <= 0.6 + 1e-6
    assert np.all(res.q >= kin.Q_LOW + cfg.limit_margin_rad - 1e-12)
    assert np.all(res.q <= kin.Q_HIGH - cfg.limit_margin_rad + 1e-12)


def test_position_first_ik_respects_the_tilt_bound_limits_and_finiteness():
    rng = np.random.default_rng(8)
    for i in range(200):
        bound = float(rng.uniform(0.05, 0.8))
        cfg = kin.IKConfig(max_iterations=30, max_tilt_rad=bound)
        seed = kin.solve_ik(
            rng.uniform([0.2, -0.4, 0.0], [0.8, 0.4, 0.6]),
            np.asarray(iiwa7.HOME_SEED_Q_RAD),
            R_DOWN,
            cfg=kin.IKConfig(max_iterations=50, orientation_weight=1.0),
        ).q
        target = rng.uniform(-1.2, 1.2, 3)
        if i % 17 == 0:
            target[1] = np.nan
        res = kin.solve_ik(target, seed, R_DOWN, point=("hand", "tcp")[i % 2], cfg=cfg)
        assert np.all(np.isfinite(res.q)) and np.isfinite(res.position_error_m)
        assert np.all(res.q >= kin.Q_LOW + cfg.limit_margin_rad - 1e-12)
        assert np.all(res.q <= kin.Q_HIGH - cfg.limit_margin_rad + 1e-12)
        # Where the target is (nearly) reached, the tilt is within the bound; far out of reach, with joints
        # pinned, it may not be: the mapper's residual check is the hard bound (it refuses such solutions).
        if res.position_error_m < 0.05:
            assert res.orientation_error_rad <= bound + 0.05, (i, bound, res)
