"""sim2real.mapper.Segment and step_limited: what sim2real_node's command stream sends while a control step
holds the node (the current segment's point, limited to one period's step from the last command sent), and
the step limit every command obeys."""

from __future__ import annotations

import numpy as np
import pytest

from sim2real.calibration import sim_calibration
from sim2real.mapper import MapperConfig, Segment, Sim2RealMapper, step_limited

DQ = np.full(7, 0.01)  # one period's largest step [rad]
P = 0.002  # 500 Hz


def test_a_segment_is_linear_in_time_and_clamped_to_its_ends():
    seg = Segment(1.0, 0.1, np.zeros(7), np.ones(7))
    assert np.allclose(seg.at(0.5), 0.0) and np.allclose(seg.at(1.05), 0.5) and np.allclose(seg.at(9.0), 1.0)
    assert np.allclose(Segment(1.0, 0.0, np.zeros(7), np.ones(7)).at(0.0), 1.0), (
        "a zero-length segment is its end"
    )


def test_every_command_moves_at_most_one_periods_step_from_the_last_one_sent():
    q_prev = np.zeros(7)
    far = np.full(7, 1.0)
    assert np.allclose(step_limited(far, q_prev, 1.0 + P, 1.0, DQ, P), 0.01)
    assert np.allclose(step_limited(-far, q_prev, 1.0 + P / 2, 1.0, DQ, P), -0.005), (
        "half a period, half a step"
    )
    assert np.allclose(step_limited(far, q_prev, 5.0, 1.0, DQ, P), 0.01), "no catch-up jump after a stall"
    near = np.full(7, 0.004)
    assert np.array_equal(step_limited(near, q_prev, 1.0 + P, 1.0, DQ, P), near), (
        "within the limit: unchanged"
    )
    assert np.allclose(step_limited(far, q_prev, 1.0, float("-inf"), DQ, P), 0.01), (
        "no previous time: a full step"
    )


def test_the_supervisor_and_the_stream_share_one_limit():
    """Supervisor._limited is step_limited on its last command (one piece of code for the rule)."""
    from sim2real.supervisor import Supervisor, SupervisorConfig

    mapper = Sim2RealMapper(sim_calibration(), MapperConfig(command_period_s=P, policy_period_s=0.1))
    sup = Supervisor(mapper, SupervisorConfig())
    sup.q_sent, sup.t_sent = np.zeros(7), 1.0
    far = np.full(7, 1.0)
    assert np.allclose(
        sup._limited(far, 1.0 + P), step_limited(far, np.zeros(7), 1.0 + P, 1.0, sup.dq_max_per_period, P)
    )


def test_the_mapper_snapshot_is_its_current_segment_and_does_not_change_with_it():
    mapper = Sim2RealMapper(sim_calibration(), MapperConfig(command_period_s=P, policy_period_s=0.1))
    with pytest.raises(RuntimeError):
        mapper.segment()
    from legion_core.sim.kuka import home_posture

    q0 = home_posture((0.0, 0.6, 0.2))[0]
    mapper.reset(q0, 0.0)
    seg = mapper.segment()
    assert np.allclose(seg.at(0.0), q0) and np.allclose(seg.q_target, mapper.interpolate(10.0))
    seg.q_start[:] = 9.0  # a copy: the mapper's own segment is untouched
    assert np.allclose(mapper.segment().q_start, q0)
