"""The arithmetic of `legion bench faults` / `soak` on synthetic command sequences (the drills themselves run
the ROS graph: see the bench and tests/integration/test_fault_drills.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from legion_core.bench.fault_rig import (
    analyse_commands,
    dq_max_per_period,
    held_from,
    hold_episodes,
    linear_slope,
    reason_key,
    stalls_near,
    summarise,
)
from legion_core.bench.faults import DRILLS, judge_drill
from legion_core.bench.soak import _missed_cycles

P = 0.01  # command period [s]
DQ = 0.005  # per-period joint step limit used in the synthetic sequences [rad]


def _ramp(n: int, q0: float = 0.0, dq: float = 0.002) -> list[np.ndarray]:
    return [np.full(7, q0 + i * dq) for i in range(n)]


def test_held_from_finds_the_start_of_the_final_constant_run():
    q = [np.zeros(7), np.ones(7), np.ones(7) * 2, np.ones(7) * 2, np.ones(7) * 2]
    assert held_from(q) == 2
    assert held_from([np.ones(7)] * 4) == 0
    assert held_from([]) == 0
    # A difference above the tolerance is motion; below it, the same command.
    assert held_from([np.zeros(7), np.full(7, 1e-13), np.full(7, 1e-13)]) == 0
    assert held_from([np.zeros(7), np.full(7, 1e-9), np.full(7, 1e-9)]) == 1


def test_a_hold_at_once_keeps_the_command_in_flight():
    """Fault at t=0.105: the command before it is q_before; the first command after it (in flight) and every
    later one are the same: hold at the first command, nothing beyond it."""
    before = _ramp(10)
    q_before = before[-1]
    times = [i * P for i in range(10)] + [0.108 + i * P for i in range(40)]
    qs = before + [q_before + 0.002] * 40
    r = analyse_commands(times, qs, 0.105, q_before, DQ)
    assert r["commands_after"] == 40
    assert r["time_to_hold_ms"] == pytest.approx(3.0)
    assert r["first_command_after_ms"] == pytest.approx(3.0)
    assert r["beyond_in_flight_rad"] == 0.0
    assert r["max_displacement_rad"] == pytest.approx(0.002)
    assert r["step_over_limit_rad"] == 0.0


def test_a_late_hold_is_timed_at_the_last_change():
    """The commands go on moving for three periods after the fault, then hold: time to hold is the receive
    time of the first command of the final constant run, and the motion after the first post-fault
    command is beyond the command in flight."""
    q_before = np.zeros(7)
    after = _ramp(4, 0.002)  # 0.002, 0.004, 0.006, 0.008
    times = [0.0] + [0.003 + i * P for i in range(4)] + [0.043 + i * P for i in range(30)]
    qs = [q_before] + after + [after[-1]] * 30
    r = analyse_commands(times, qs, 0.001, q_before, DQ)
    assert r["time_to_hold_ms"] == pytest.approx(32.0)  # the 4th post-fault command, at 0.033 s
    assert r["beyond_in_flight_rad"] == pytest.approx(0.006)
    assert r["max_displacement_rad"] == pytest.approx(0.008)
    # The motion stayed on the segment planned before the fault (target 0.01): nothing beyond it.
    r2 = analyse_commands(times, qs, 0.001, q_before, DQ, in_flight_targets=[np.full(7, 0.01)])
    assert r2["beyond_in_flight_segments_rad"] == 0.0
    # Without that segment, the same motion is beyond the command before the fault.
    assert r["beyond_in_flight_segments_rad"] == pytest.approx(0.008)


def test_a_jump_beyond_the_command_in_flight_and_the_step_limit_is_caught():
    q_before = np.zeros(7)
    jump = q_before.copy()
    jump[1] = 0.05  # ten periods' worth of joint step in one command
    times = [0.0, 0.005, 0.015] + [0.025 + i * P for i in range(30)]
    qs = [q_before, q_before, jump] + [jump] * 30
    r = analyse_commands(times, qs, 0.001, q_before, DQ, in_flight_targets=[np.full(7, 0.01)])
    assert r["beyond_in_flight_rad"] == pytest.approx(0.05)
    assert r["beyond_in_flight_segments_rad"] == pytest.approx(0.04)
    assert r["step_over_limit_rad"] == pytest.approx(0.045)
    assert r["time_to_hold_ms"] == pytest.approx(14.0)


def test_no_hold_when_the_commands_never_settle_or_never_come():
    q_before = np.zeros(7)
    moving = _ramp(60, 0.001, 0.001)
    times = [0.002 + i * P for i in range(60)]
    r = analyse_commands(times, moving, 0.0, q_before, DQ)
    assert r["time_to_hold_ms"] is None and r["held_for_s"] == 0.0
    empty = analyse_commands([], [], 0.0, q_before, DQ)
    assert empty["commands_after"] == 0 and empty["time_to_hold_ms"] is None


def test_per_joint_step_limit():
    dq = dq_max_per_period()
    assert dq.shape == (7,) and np.all(dq > 0)
    q_before = np.zeros(7)
    step = dq * 0.99
    r = analyse_commands([0.01, 0.02, 0.25], [step, step, step], 0.0, q_before, dq)
    assert r["step_over_limit_rad"] == 0.0
    over = dq.copy()
    over[6] *= 1.5
    r = analyse_commands([0.01, 0.25], [over, over], 0.0, q_before, dq)
    assert r["step_over_limit_rad"] == pytest.approx(dq[6] * 0.5)


def _run(hold_ms, decided_ms=None, beyond=0.0, segments=0.0, step_over=0.0, reached=True):
    return {"time_to_hold_ms": hold_ms, "cause_decided_ms": hold_ms if decided_ms is None else decided_ms,
            "cause_status_ms": hold_ms, "cause_report_ms": None, "beyond_in_flight_rad": beyond,
            "beyond_in_flight_segments_rad": segments, "step_over_limit_rad": step_over,
            "reached_measured": reached}  # fmt: skip


def test_judging_a_drill_over_its_repeats():
    estop = DRILLS["estop_topic"]
    assert all(judge_drill(estop, [_run(2.0), _run(9.9)]).values())
    late = judge_drill(estop, [_run(2.0), _run(10.5)])
    assert not late["time_to_hold"] and late["nothing_beyond_in_flight"]
    moved = judge_drill(estop, [_run(2.0, beyond=0.001)])
    assert not moved["nothing_beyond_in_flight"]
    # The commands stopped in time (a segment ended), but sim2real decided the hold only later: not met.
    assert not judge_drill(estop, [_run(2.0, decided_ms=25.0)])["cause_decided_within_target"]
    assert not judge_drill(estop, [_run(None)])["time_to_hold"]
    # Dead nodes: the segment in flight may finish (first-command figure not judged), within 50 ms.
    dead = DRILLS["dead_policy"]
    assert dead.target_ms == pytest.approx(50.0)
    ok = judge_drill(dead, [_run(35.0, beyond=0.006)])
    assert all(ok.values()) and "nothing_beyond_in_flight" not in ok
    assert not judge_drill(dead, [_run(35.0, segments=0.002)])["nothing_beyond_in_flight_segments"]
    # Tracking error: judged on its steps and on reaching the measured posture, not on a time.
    tr = DRILLS["tracking_error"]
    assert all(judge_drill(tr, [_run(600.0, decided_ms=12.0)]).values())
    assert not judge_drill(tr, [_run(600.0, step_over=0.001)])["no_step_over_limit"]
    assert not judge_drill(tr, [_run(600.0, reached=False)])["reached_measured_posture"]
    assert not judge_drill(estop, [])["time_to_hold"]


def test_targets_follow_the_shipped_rates():
    assert DRILLS["estop_service"].target_ms == pytest.approx(10.0)
    assert DRILLS["dead_real2sim"].target_ms == pytest.approx(2 * 20.0 + 10.0)
    for d in ("stale_stamps", "implausible_detection", "nan_detection"):
        assert DRILLS[d].target_ms == pytest.approx(10.0)
    assert DRILLS["tracking_error"].target_ms is None


def test_summaries_stalls_slopes_and_reasons():
    s = summarise([3.0, None, 1.0, 2.0, math.nan])
    assert s == {"median": 2.0, "max": 3.0, "n": 3, "missing": 2}
    assert summarise([None])["median"] is None
    wake = [(0.95, 0.003), (1.0, 0.0001), (1.02, 0.002), (1.2, 0.004), (2.0, 0.01)]
    assert stalls_near(wake, 1.0, 1.1) == [(-50.0, 3.0), (20.0, 2.0)]
    assert stalls_near(wake, 1.0, 1.1, near_s=0.0) == [(20.0, 2.0)]
    assert linear_slope([0, 60, 120], [100.0, 101.0, 102.0]) == pytest.approx(1 / 60)
    assert linear_slope([5.0], [1.0]) is None
    assert reason_key("holding: /policy_node silent for 0.041 s") == reason_key(
        "holding: /policy_node silent for 0.047 s"
    )


def test_missed_cycles_are_placed_between_diagnostics_and_matched_to_machine_contention():
    """A miss counts as the machine's when, between the two reports around it, the probe woke at least half
    a period late or sim2real waited a whole period for a CPU."""

    def d(missed, runq=None):
        return {"command_cycles_missed": str(missed), "_runq_s": runq}

    diag = [(10.0, d(3, 0.0)), (11.0, d(3, 0.001)), (12.0, d(5, 0.002)), (13.0, d(6, 0.003)),
            (14.0, d(7, 0.020)), (15.0, {"other": "x"})]  # fmt: skip
    wake = [(11.5, 0.02), (12.5, 0.002)]  # a 20 ms stall in 11-12 s; only a 2 ms one in 12-13 s
    m = _missed_cycles(diag, wake)
    assert m["total"] == 4 and m["since_sim2real_start"] == 7
    assert [i["missed"] for i in m["intervals"]] == [2, 1, 1]
    assert [i["machine_contention"] for i in m["intervals"]] == [True, False, True]  # 13-14 s: 17 ms queued
    assert m["outside_machine_stalls"] == 1
    assert m["intervals"][0]["probe_stalls_ms"] == [20.0]
    assert m["machine_share_of_intervals"] == pytest.approx(2 / 4)
    assert _missed_cycles([], wake)["total"] is None


def test_hold_episodes_from_status_transitions():
    st = [(1.0, 0, "ok"), (2.0, 2, "holding: /policy_node silent for 0.041 s"),
          (2.5, 2, "holding: /policy_node dead"), (3.0, 0, "ok"),
          (10.0, 2, "holding: no active skill"), (10.3, 1, "waiting"), (20.0, 3, "holding: e-stop latched")]  # fmt: skip
    ep = hold_episodes(st, t_end=21.0, planned=[(9.9, 10.2)])
    assert [(e["start"], round(e["duration_s"], 6), e["planned"]) for e in ep] == [
        (2.0, 1.0, False),
        (10.0, 0.3, True),
        (20.0, 1.0, False),
    ]
    assert ep[0]["reasons"] == ["holding: /policy_node silent for 0.041 s", "holding: /policy_node dead"]
    assert hold_episodes([], 5.0) == []


@pytest.mark.slow
@pytest.mark.ros
def test_the_bench_runs_a_drill_end_to_end():
    """Smoke test of the rig (three node processes, the driver, recovery after a kill): the figures are
    recorded; timing is judged by the bench on a quiet machine, never here."""
    from legion_core.bench.faults import run_bench

    rep = run_bench(drills=("estop_topic", "dead_policy"), repeats=1, progress=False)
    assert not rep["errors"], rep["errors"]
    for name in ("estop_topic", "dead_policy"):
        (r,) = rep["drills"][name]["repeats"]
        assert r["commands_after"] > 10 and r["time_to_hold_ms"] is not None, r
        assert r["cause_status_ms"] is not None and r["cause_decided_ms"] is not None, r
        assert r["beyond_in_flight_segments_rad"] == 0.0, r
    assert rep["drills"]["estop_topic"]["repeats"][0]["beyond_in_flight_rad"] == 0.0
    assert rep["joint_states"]["rate_hz_achieved"] > 100
