"""The contact guard (sim2real.supervisor): the driver's estimated external wrench over the active skill's
bound for contact_persist_s holds the arm at the measured posture and clears the skill; a contact impulse
does not; the calibration sets bounds per skill."""

from __future__ import annotations

import numpy as np

from legion_core.contracts.interface import StatusLevel
from legion_core.robot import iiwa7
from sim2real.calibration import sim_calibration
from sim2real.mapper import MapperConfig, Sim2RealMapper
from sim2real.supervisor import Supervisor, SupervisorConfig

NAMES = list(iiwa7.JOINT_NAMES)


def _running(skill: str = "drawer-close") -> tuple[Supervisor, np.ndarray]:
    sup = Supervisor(Sim2RealMapper(sim_calibration(), MapperConfig()), SupervisorConfig())
    sup.contact_limits = dict(sim_calibration().contact_limits)
    q = np.array(iiwa7.HOME_SEED_Q_RAD)
    sup.on_joint_state(NAMES, q, 1.0, 1.0)
    sup.set_active_skill(skill)
    sup.on_action([0.0, 1.0, 0.0, -1.0], 1, 1.0, 1.0)
    sup.tick(1.0)
    return sup, q


def test_a_sustained_push_over_the_bound_holds_at_the_measured_posture_and_clears_the_skill():
    sup, q = _running()
    assert not sup.on_wrench(160.0, 2.0, 1.00)  # over 150 N, but not yet for 0.1 s
    assert sup.tick(1.05).level != StatusLevel.HOLD or "contact" not in sup.tick(1.05).reason
    assert sup.on_wrench(170.0, 2.0, 1.11)  # 0.11 s without a break: newly holding
    q_meas = q + 0.01
    sup.on_joint_state(NAMES, q_meas, 1.11, 1.11)
    tk = sup.tick(1.11)
    assert (
        tk.level == StatusLevel.HOLD
        and "contact guard: contact force 170.0 N > 150 N during drawer-close" in tk.reason
    )
    assert sup.active_skill == "" and sup.skill_cleared_by == "contact guard"
    np.testing.assert_allclose(sup.q_hold_target, q_meas)
    # The push ends: the guard lets go, the arm stays held until a new command.
    sup.on_wrench(5.0, 0.1, 1.2)
    assert "no active skill (cleared by contact guard)" in sup.tick(1.2).reason


def test_an_impulse_is_not_a_push():
    sup, _ = _running()
    for t, f in ((1.00, 300.0), (1.05, 10.0), (1.10, 300.0), (1.15, 10.0), (1.20, 300.0)):
        assert not sup.on_wrench(f, 1.0, t)
        assert "contact" not in sup.tick(t).reason
    assert sup.active_skill == "drawer-close"


def test_the_calibration_sets_a_skills_own_bound_and_torque_counts_too():
    sup, _ = _running("button-press-topdown")
    sup.on_wrench(300.0, 5.0, 1.0)
    assert not sup.on_wrench(300.0, 5.0, 1.2)  # under the button's 400 N
    sup, q = _running("drawer-close")
    sup.on_wrench(10.0, 40.0, 1.0)
    assert sup.on_wrench(10.0, 40.0, 1.2)
    sup.on_joint_state(NAMES, q, 1.2, 1.2)
    assert "contact torque 40.0 N m > 25 N m" in sup.tick(1.2).reason


def test_a_non_finite_estimate_holds_and_zero_bounds_turn_the_guard_off():
    sup, _ = _running()
    sup.on_wrench(float("nan"), 0.0, 1.0)
    assert sup.on_wrench(float("nan"), 0.0, 1.2)
    off = Supervisor(Sim2RealMapper(sim_calibration(), MapperConfig()),
                     SupervisorConfig(max_contact_force_N=0.0, max_contact_torque_Nm=0.0))  # fmt: skip
    off.on_wrench(1e4, 1e3, 1.0)
    assert not off.on_wrench(1e4, 1e3, 2.0)
