"""sim2real.supervisor without ROS: the e-stop latch and its re-arm guard, each watchdog (joint-state arrival
and stamp, tracking error, runtime stall, liveness of the control-path nodes, observation validity, action
timeout), the per-period step limit on what is sent, and every refusal. A simulated arm follows each command
exactly; time is passed in, so every judgement is exact and independent of the machine's speed."""

from __future__ import annotations

import numpy as np
import pytest

from legion_core.robot import iiwa7, kinematics
from sim2real.calibration import sim_calibration
from sim2real.mapper import MapperConfig, Sim2RealMapper
from sim2real.supervisor import ESTOP, HOLD, OK, WARN, Supervisor, SupervisorConfig

PERIOD = 0.01
HOME = np.array(iiwa7.HOME_SEED_Q_RAD)
NAMES = list(iiwa7.JOINT_NAMES)
T0 = 1000.0  # node clock [s] at the start of each test (stamps must be > 0)


class Arm:
    """Supervisor + an arm that is exactly where it was last commanded; one `cycle` is one command period
    with a fresh joint state and a fresh action."""

    def __init__(self, **cfg) -> None:
        self.sup = Supervisor(
            Sim2RealMapper(sim_calibration(), MapperConfig(command_period_s=PERIOD)), SupervisorConfig(**cfg)
        )
        self.t = T0
        self.q = HOME.copy()
        self.seq = 0
        self.sent: list[np.ndarray] = []
        self.last = None

    def joint_state(self, q=None, stamp_age=0.0, names=NAMES) -> bool:
        q = self.q if q is None else q
        return self.sup.on_joint_state(names, list(q), self.t - stamp_age, self.t)

    def action(self, a=(1.0, 0.0, 0.0, -1.0)) -> None:
        self.seq += 1
        self.sup.on_action(list(a), self.seq, self.t, self.t)

    def tick(self):
        tk = self.sup.tick(self.t)
        self.last = tk
        if tk.q_cmd is not None:
            self.sent.append(tk.q_cmd.copy())
            self.q = tk.q_cmd.copy()
        return tk

    def cycle(self, n: int = 1, js=True, act=True, **js_kw):
        for _ in range(n):
            self.t += PERIOD
            if js:
                self.joint_state(**js_kw)
            if act:
                self.action()
            tk = self.tick()
        return tk

    def moved_over(self, n: int) -> float:
        a = np.array(self.sent[-n:])
        return float(np.abs(a - a[0]).max())


@pytest.fixture
def arm() -> Arm:
    a = Arm()
    a.cycle(30)
    assert a.moved_over(20) > 1e-4, "the arm should move with fresh inputs"
    return a


# ----------------------------------------------------------------------------------------------- e-stop
def test_estop_holds_in_the_same_tick_and_stays_latched(arm):
    assert arm.sup.estop("e-stop topic")
    tk = arm.tick()
    assert tk.level == ESTOP and "e-stop latched" in tk.reason
    held = tk.q_cmd.copy()
    arm.cycle(50)
    assert arm.last.level == ESTOP
    assert np.array_equal(arm.sent[-1], held), "commands changed while latched"


def test_rearm_refused_on_joint_states_stamped_in_the_past(arm):
    """Finding 1: joint states stamped 1 s ago arriving now counted as fresh and re-armed."""
    arm.sup.estop("e-stop topic")
    arm.cycle(5, stamp_age=1.0)
    ok, msg = arm.sup.rearm(arm.t)
    assert not ok and "fresh" in msg, msg
    assert arm.sup.estop_reason


def test_rearm_refused_without_fresh_arrival_and_while_hardware_input_pressed(arm):
    arm.sup.estop("e-stop topic")
    arm.cycle(20, js=False)  # 0.2 s without joint states
    ok, msg = arm.sup.rearm(arm.t)
    assert not ok and "no joint state" in msg
    arm.sup.on_hw_estop(True, arm.t)
    arm.cycle(3)
    ok, msg = arm.sup.rearm(arm.t)
    assert not ok and "hardware e-stop input is still pressed" in msg
    arm.sup.on_hw_estop(False, arm.t)
    ok, msg = arm.sup.rearm(arm.t)
    assert ok, msg


def test_rearm_does_not_restart_motion_until_a_new_skill(arm):
    """Finding 1: after re-arm the active skill resumed within 44 ms with no start step."""
    arm.sup.set_active_skill("drawer-close")
    arm.cycle(10)
    arm.sup.estop("e-stop topic")
    arm.cycle(5)
    ok, msg = arm.sup.rearm(arm.t)
    assert ok, msg
    arm.cycle(60)  # fresh joint states and fresh actions keep coming
    assert arm.moved_over(60) == 0.0, "the arm moved after re-arm without a new command"
    assert arm.last.level == HOLD and "no active skill" in arm.last.reason and "e-stop" in arm.last.reason
    ok, msg = arm.sup.set_active_skill("drawer-close")  # the operator's new command
    assert ok, msg
    arm.cycle(30)
    assert arm.moved_over(20) > 1e-4


def test_skills_and_resets_refused_while_latched(arm):
    arm.sup.estop("e-stop service")
    ok, msg = arm.sup.set_active_skill("button-press-topdown")
    assert not ok and msg.startswith("e-stop latched")
    ok, msg = arm.sup.reset_to_measured(arm.t)
    assert not ok and msg.startswith("e-stop latched")
    ok, _ = arm.sup.set_active_skill("")  # a stop is never refused
    assert ok


def test_hardware_input_silence_latches_when_watched():
    a = Arm(hw_estop_timeout_s=0.05)
    a.sup.on_hw_estop(False, a.t)
    a.cycle(3)
    assert a.last.level == OK
    a.cycle(10)  # the input went silent (broken wire)
    assert a.last.level == ESTOP and "hardware e-stop input silent" in a.last.reason


@pytest.mark.parametrize("source", ["e-stop topic", "e-stop service", "hardware e-stop input"])
def test_every_estop_source_latches_in_the_same_tick(arm, source):
    arm.sup.set_active_skill("drawer-close")
    arm.cycle(5)
    if source == "hardware e-stop input":
        assert arm.sup.on_hw_estop(True, arm.t)
    else:
        assert arm.sup.estop(source)
    tk = arm.tick()
    assert tk.level == ESTOP and f"e-stop latched ({source})" in tk.reason
    assert arm.sup.active_skill == "" and arm.sup.skill_cleared_by == "e-stop"
    if source == "hardware e-stop input":
        arm.sup.on_hw_estop(False, arm.t)  # released: still latched until re-armed
    arm.cycle(20)
    assert arm.last.level == ESTOP and arm.moved_over(20) == 0.0


def test_the_latch_keeps_its_first_reason(arm):
    assert arm.sup.estop("e-stop service")
    assert not arm.sup.estop("e-stop topic"), "already latched"
    assert not arm.sup.on_hw_estop(True, arm.t)
    assert arm.sup.estop_reason == "e-stop service"


def test_hardware_input_silence_is_not_watched_when_off_or_before_it_was_seen():
    off = Arm()  # hw_estop_timeout_s = 0: liveness of the input not watched
    off.sup.on_hw_estop(False, off.t)
    off.cycle(100)
    assert off.last.level == OK
    unseen = Arm(hw_estop_timeout_s=0.05)  # watched, but no input has ever been seen (none wired)
    unseen.cycle(100)
    assert unseen.last.level == OK


def test_rearm_when_not_latched_is_a_no_op(arm):
    assert arm.sup.rearm(arm.t) == (True, "not latched")


def test_rearm_refused_on_joint_states_stamped_in_the_future(arm):
    arm.sup.estop("e-stop topic")
    arm.cycle(3, stamp_age=-0.5)  # the driver's clock is 0.5 s ahead
    ok, msg = arm.sup.rearm(arm.t)
    assert not ok and "in the future" in msg and arm.sup.estop_reason


def test_rearm_refused_with_the_arm_outside_its_joint_limits(arm):
    arm.sup.estop("e-stop topic")
    arm.cycle(3)
    q = arm.q.copy()
    q[0] = kinematics.Q_HIGH[0] + 0.05  # measured beyond A1's limit (moved by hand in a compliant mode)
    arm.t += PERIOD
    arm.joint_state(q=q)
    ok, msg = arm.sup.rearm(arm.t)
    assert not ok and "outside the joint limits" in msg and arm.sup.estop_reason
    arm.t += PERIOD
    arm.joint_state()  # back inside
    assert arm.sup.rearm(arm.t)[0]


# ------------------------------------------------------------------------------------- joint-state stamps
def test_stale_stamp_holds_at_the_first_such_message(arm):
    """Finding 4: the watchdog ignored header stamps; joint states 1 s old moved the arm 147 ms more."""
    arm.t += PERIOD
    assert arm.joint_state(stamp_age=1.0), "the first stale joint state must ask for an immediate hold"
    tk = arm.tick()
    assert tk.level == HOLD and "stamped 1.000 s ago" in tk.reason
    held = tk.q_cmd.copy()
    arm.cycle(10, stamp_age=1.0)
    assert np.array_equal(arm.sent[-1], held)


def test_future_and_missing_stamps_hold(arm):
    arm.cycle(1, stamp_age=-0.5)
    assert arm.last.level == HOLD and "in the future" in arm.last.reason
    arm.cycle(3)
    arm.t += PERIOD
    arm.sup.on_joint_state(NAMES, list(arm.q), 0.0, arm.t)
    assert "no valid header stamp" in arm.sup.tick(arm.t).reason


def test_malformed_joint_states_hold_with_the_reason(arm):
    q = list(arm.q)
    arm.t += PERIOD
    assert arm.sup.on_joint_state(NAMES[:-1], q[:-1], arm.t, arm.t), "a missing joint holds at once"
    tk = arm.tick()
    assert tk.level == HOLD and f"lacks ['{NAMES[-1]}']" in tk.reason
    arm.cycle(3)
    assert arm.last.level == OK
    arm.t += PERIOD
    arm.sup.on_joint_state(NAMES, q[:-1], arm.t, arm.t)
    assert "7 joint names but 6 positions" in arm.sup.tick(arm.t).reason
    arm.t += PERIOD
    arm.sup.on_joint_state(NAMES, [float("nan")] + q[1:], arm.t, arm.t)
    assert "non-finite joint positions" in arm.sup.tick(arm.t).reason


def test_joint_states_that_stop_arriving_hold_after_the_timeout(arm):
    arm.sup.set_active_skill("drawer-close")
    arm.cycle(5)
    t_last = arm.t
    while arm.last.level == OK:
        arm.cycle(1, js=False)
    assert arm.t - t_last == pytest.approx(arm.sup.config.joint_state_timeout_s + PERIOD, abs=PERIOD)
    assert "no joint state for" in arm.last.reason and "driver silent" in arm.last.reason


def test_nothing_is_sent_before_the_first_valid_joint_state():
    a = Arm()
    a.t += PERIOD
    tk = a.tick()
    assert tk.q_cmd is None and tk.level == WARN and "waiting for joint states" in tk.reason


# ------------------------------------------------------------------------------------------ tracking error
def test_tracking_error_holds_at_the_measured_posture_within_the_step_limit(arm):
    """Finding 4: a held 0.5 rad tracking error was only a warning, after 474 ms."""
    arm.sup.set_active_skill("drawer-close")
    arm.cycle(5)
    pushed = arm.q.copy()
    pushed[1] += 0.5  # the arm is pushed away (or blocked) while the command stays
    arm.t += PERIOD
    arm.sup.on_joint_state(NAMES, list(pushed), arm.t, arm.t)
    before = arm.sent[-1].copy()
    tk = arm.tick()
    assert tk.level == HOLD and "tracking error: A2" in tk.reason
    step = np.abs(tk.q_cmd - before)
    assert np.all(step <= arm.sup.dq_max_per_period * (1 + 1e-9) + 1e-12), (
        "hold jumped beyond the per-period limit"
    )
    assert tk.q_cmd[1] > before[1], "the hold must step towards the measured posture"
    assert arm.sup.active_skill == "", "a tracking fault clears the skill (an operator restarts)"


# ------------------------------------------------------------------------------------------ stall / catch-up
def test_no_catch_up_jump_after_a_stall(arm):
    """Finding 4: after a host stall the command jumped to where the trajectory should be by now."""
    arm.sup.set_active_skill("drawer-close")
    arm.cycle(20)
    arm.t += 0.2  # the runtime itself stalled for 200 ms; a fresh joint state is read right after it
    arm.joint_state()
    prev = arm.sent[-1].copy()
    tk = arm.tick()
    assert arm.sup.stalls == 1 and tk.q_cmd is not None
    assert np.all(np.abs(tk.q_cmd - prev) <= arm.sup.dq_max_per_period * (1 + 1e-9) + 1e-12)
    prev = tk.q_cmd.copy()
    for _ in range(30):
        arm.cycle(1)
        assert np.all(np.abs(arm.sent[-1] - prev) <= arm.sup.dq_max_per_period * (1 + 1e-9) + 1e-12)
        prev = arm.sent[-1].copy()


def test_missing_joint_states_after_a_stall_blame_the_runtime_not_the_driver(arm):
    """Finding 4: runtime stalls were reported as "no joint state", blaming the driver."""
    arm.t += 0.15  # stalled: no tick and no joint state read for 150 ms
    tk = arm.tick()
    assert tk.level == HOLD and "runtime stall" in tk.reason and "not the driver" in tk.reason
    arm.cycle(int(arm.sup.config.stall_attribution_s / 0.01) + 5, js=False)
    assert "driver silent" in arm.last.reason


def test_a_stale_backlog_read_right_after_a_stall_names_the_stall_not_the_driver(arm):
    """Joint states the stalled node reads late carry old stamps: held, and the reason names this node's
    stall; the same age outside a stall is the driver's lateness."""
    arm.t += 0.15
    arm.joint_state(stamp_age=0.15)  # read before this node's next tick has seen the stall
    tk = arm.tick()
    assert tk.level == HOLD and "read after this node's" in tk.reason and "not the driver" in tk.reason
    arm.joint_state(stamp_age=0.12)  # ... and after it
    tk = arm.tick()
    assert "read after this node's" in tk.reason
    arm.cycle(int(arm.sup.config.stall_attribution_s / 0.01) + 5)  # recovered, well past the window
    arm.joint_state(stamp_age=0.15)
    assert "the driver's data is late" in arm.tick().reason


def test_a_slow_resume_after_a_stall_still_blames_the_runtime_until_the_attribution_window_ends(arm):
    """On a loaded host the resumed node may not read the joint-state backlog for a few periods: while
    nothing has been read since the stall, the hold names the runtime for stall_attribution_s; a stream
    silent past it is the driver's."""
    arm.t += 0.15  # stalled
    arm.tick()
    for _ in range(int(arm.sup.config.stall_attribution_s / 0.01) - 2):
        arm.t += 0.01
        tk = arm.tick()  # cycles without any joint state read (the node's input thread starved)
        assert tk.level == HOLD and "runtime stall" in tk.reason, tk.reason
    arm.cycle(3, js=False)
    assert "driver silent" in arm.last.reason


def test_an_extra_tick_right_after_another_adds_no_second_full_step(arm):
    """Event-driven ticks (an action, a fault) come between timer ticks: the limit is a joint speed, so two
    commands 2 ms apart move at most 0.2 of a period's step."""
    arm.sup.set_active_skill("drawer-close")
    arm.cycle(20)
    arm.t += 0.2  # a stall: the trajectory is far ahead of the last command
    arm.joint_state()
    first = arm.tick().q_cmd.copy()
    arm.t += 0.002
    arm.joint_state()
    second = arm.tick().q_cmd.copy()
    assert np.all(np.abs(second - first) <= 0.2 * arm.sup.dq_max_per_period * (1 + 1e-9) + 1e-12)


def test_the_sent_command_never_exceeds_the_step_limit(arm):
    arm.sup.set_active_skill("drawer-close")
    for _ in range(300):
        arm.cycle(1, act=True)
    steps = np.abs(np.diff(np.array(arm.sent), axis=0))
    assert np.all(steps <= arm.sup.dq_max_per_period * (1 + 1e-9) + 1e-12)


# -------------------------------------------------------------------------------------------- liveness
def test_silent_node_holds_within_two_periods_then_dead_clears_the_skill(arm):
    """Finding 2: a dead policy was only caught by the 0.3 s action timeout with a generic reason."""
    sup = arm.sup
    sup.set_active_skill("drawer-close")
    for _ in range(10):
        sup.on_heartbeat("/policy_node", 0.02, arm.seq + 1, arm.t)
        arm.cycle(1)
    t_dead = arm.t
    held_at = None
    while arm.t - t_dead < 0.3:
        arm.cycle(1)  # actions still arrive (in flight), heartbeats do not
        if held_at is None and arm.last.level == HOLD:
            held_at = arm.t
    assert held_at is not None and held_at - t_dead <= 2 * 0.02 + PERIOD + 1e-9
    assert "/policy_node silent" in arm.last.reason
    arm.cycle(int(sup.config.dead_after_s / PERIOD))
    assert "/policy_node dead" in arm.last.reason or "dead" in arm.last.reason
    assert sup.dead_nodes() == ["/policy_node"] and sup.active_skill == ""
    ok, msg = sup.set_active_skill("drawer-close")
    assert not ok and "not alive" in msg
    # Respawned: alive again, but nothing moves until a new command.
    note = sup.on_heartbeat("/policy_node", 0.02, 1, arm.t)
    assert "alive again" in note
    arm.cycle(20)
    assert arm.moved_over(20) == 0.0
    assert sup.set_active_skill("drawer-close")[0]
    for _ in range(30):
        sup.on_heartbeat("/policy_node", 0.02, 2 + arm.seq, arm.t)
        arm.cycle(1)
    assert arm.moved_over(20) > 1e-4


def test_the_deadline_runs_from_the_heartbeat_stamp_not_its_arrival(arm):
    sup = arm.sup
    sup.set_active_skill("drawer-close")
    sup.on_heartbeat("/policy_node", 0.02, 1, arm.t, stamp=arm.t)
    arm.cycle(1)
    # The next beat was sent 5 ms later but took 30 ms to arrive; the node is killed right after sending it.
    sup.on_heartbeat("/policy_node", 0.02, 2, arm.t + 0.025, stamp=arm.t - 0.005)
    t_beat = arm.t - 0.005
    while arm.last.level != HOLD:
        arm.cycle(1)
    assert arm.t - t_beat <= 2 * 0.02 + PERIOD + 1e-9
    # A stamp that cannot be right (1 h old) falls back to the arrival time.
    sup.on_heartbeat("/real2sim_node", 0.02, 1, arm.t, stamp=arm.t - 3600.0)
    assert sup.watched["/real2sim_node"].last_beat == arm.t


def test_a_late_heartbeat_resumes_without_clearing_the_skill(arm):
    sup = arm.sup
    sup.set_active_skill("drawer-close")
    sup.on_heartbeat("/real2sim_node", 0.02, 1, arm.t)
    arm.cycle(6)  # 60 ms: silent (hold), not dead
    assert arm.last.level == HOLD and "/real2sim_node silent" in arm.last.reason
    sup.on_heartbeat("/real2sim_node", 0.02, 2, arm.t)
    arm.cycle(1)
    assert sup.active_skill == "drawer-close"
    for i in range(30):
        sup.on_heartbeat("/real2sim_node", 0.02, 3 + i, arm.t)
        arm.cycle(1)
    assert arm.moved_over(20) > 1e-4


def test_a_restarted_node_clears_the_skill(arm):
    sup = arm.sup
    sup.set_active_skill("drawer-close")
    sup.on_heartbeat("/policy_node", 0.02, 40, arm.t)
    note = sup.on_heartbeat("/policy_node", 0.02, 1, arm.t)
    assert "restarted" in note and sup.active_skill == ""


# ----------------------------------------------------------------------------------------- observations
def test_an_invalid_observation_holds_at_once_with_its_reason(arm):
    """Finding 3: a rejected detection left the last good one valid for 0.5 s (the arm kept moving)."""
    arm.sup.set_active_skill("drawer-close")
    arm.cycle(5)
    assert arm.sup.on_observation(False, "object 'drawer_handle': rejected detection ...")
    tk = arm.tick()
    assert tk.level == HOLD and "observation invalid: object 'drawer_handle'" in tk.reason
    held = tk.q_cmd.copy()
    arm.cycle(20)
    assert np.array_equal(arm.sent[-1], held)
    arm.sup.on_observation(True, "ok")
    arm.cycle(30)
    assert arm.moved_over(20) > 1e-4


# -------------------------------------------------------------------------------------------- actions
def test_no_action_yet_holds():
    a = Arm()
    a.cycle(5, act=False)
    assert a.last.level == HOLD and "no action yet" in a.last.reason


def test_action_timeout_holds_and_fresh_actions_resume(arm):
    arm.sup.set_active_skill("drawer-close")
    arm.cycle(5)
    t_last = arm.t
    while arm.last.level != HOLD:
        arm.cycle(1, act=False)  # the policy stopped acting (starved of valid observations)
    assert arm.t - t_last == pytest.approx(arm.sup.config.action_timeout_s + PERIOD, abs=PERIOD)
    assert (
        "no action for" in arm.last.reason
        and f"timeout {arm.sup.config.action_timeout_s} s" in arm.last.reason
    )
    held = arm.sent[-1].copy()
    arm.cycle(10, act=False)
    assert np.array_equal(arm.sent[-1], held)
    arm.cycle(30)
    assert arm.last.level == OK and arm.moved_over(20) > 1e-4


def test_an_action_from_before_a_skill_switch_is_not_executed(arm):
    arm.sup.set_active_skill("drawer-close")
    arm.cycle(20)
    arm.sup.set_active_skill("button-press-topdown")
    assert not arm.sup.wants_action(arm.t), "the newest action was computed for the previous skill"


# ------------------------------------------------------------------------------------------- refusals
def test_reset_refused_without_a_fresh_joint_state(arm):
    arm.cycle(20, js=False)
    ok, msg = arm.sup.reset_to_measured(arm.t)
    assert not ok and "cannot reset without a fresh, valid joint state" in msg
    arm.cycle(1)
    assert arm.sup.reset_to_measured(arm.t) == (True, "restarted from the measured posture")


def test_a_heartbeat_with_a_nonsense_period_is_ignored(arm):
    note = arm.sup.on_heartbeat("/policy_node", 0.0, 1, arm.t)
    assert "ignoring heartbeat" in note and "/policy_node" not in arm.sup.watched


def test_config_refuses_nonsense():
    with pytest.raises(ValueError, match="liveness_periods"):
        SupervisorConfig(liveness_periods=0)
    with pytest.raises(ValueError, match="hw_estop_timeout_s"):
        SupervisorConfig(hw_estop_timeout_s=-1)
