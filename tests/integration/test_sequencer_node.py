"""task_sequencer_node in a child process, driven over loopback DDS by a probe that plays the operator and
sim2real_node (SafetyState): the operator-input and e-stop findings. Every fault path asserts what is
published (the CommandStatus reply, /legion/active_skill) and what is not (no skill for a refused command).
docs/operator-input.md is the contract under test.

No observations are published, so an accepted plan stays in its first skill's precondition wait
(precondition_timeout_s is set long): it is running, with its skill active, until cancelled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from legion_core.runtime.operator_text import MAX_CHARS
from legion_core.tools.ros_env import REPO, child_env
from tests.integration.rosutil import Probe, start_nodes, stop

pytestmark = pytest.mark.ros

from legion_msgs.action import ExecuteTask  # noqa: E402
from legion_msgs.msg import CommandStatus, Heartbeat, SafetyState  # noqa: E402
from rclpy.action import ActionClient  # noqa: E402
from rclpy.serialization import serialize_message  # noqa: E402
from std_msgs.msg import Empty, String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from legion_core.contracts.interface import (  # noqa: E402
    READY_SKILL,
    SEQUENCER_PREVIEW_SERVICE,
    TOPIC_ACTIVE_SKILL,
    TOPIC_CANCEL,
    TOPIC_COMMAND_STATUS,
    TOPIC_COMMAND_TEXT,
    TOPIC_HEARTBEAT,
    TOPIC_SAFETY_STATE,
)
from legion_core.ros.common import HEARTBEAT_QOS, LATCHED_QOS, OPERATOR_QOS  # noqa: E402

BUNDLE = str(Path(__file__).resolve().parents[2] / "models" / "legion-kuka")  # the shipped 3-skill bundle
PRESS, PRESS_SKILL = "press the button", "button-press-topdown"
OPEN, OPEN_SKILL = "open the drawer", "drawer-open"
CS = CommandStatus
TIMEOUT = 30.0  # generous: the first command loads the sentence embedder, and the CI machine is shared


class SequencerHarness:
    """The sequencer in a child process; the probe is the operator (topic, action, cancel) and sim2real
    (SafetyState, transient local as sim2real publishes it)."""

    def __init__(self, probe: Probe, log: Path, publish_safety: bool = True, **params) -> None:
        self.probe, self.log = probe, log
        p = {"sequencer.bundle": BUNDLE, "sequencer.precondition_timeout_s": 600.0, **params}
        self.proc = start_nodes("sequencer", p, log)
        n = probe.node
        self.replies = probe.record(TOPIC_COMMAND_STATUS, CommandStatus, OPERATOR_QOS)
        self.skills = probe.record(TOPIC_ACTIVE_SKILL, String, LATCHED_QOS)
        self.cmd_pub = n.create_publisher(String, TOPIC_COMMAND_TEXT, OPERATOR_QOS)
        self.cancel_pub = n.create_publisher(Empty, TOPIC_CANCEL, OPERATOR_QOS)
        self.safety_pub = n.create_publisher(SafetyState, TOPIC_SAFETY_STATE, LATCHED_QOS)
        self.cancel_srv = n.create_client(Trigger, "/task_sequencer_node/cancel")
        self.action = ActionClient(n, ExecuteTask, "/legion/execute_task")
        probe.wait_for(
            lambda: self.cmd_pub.get_subscription_count() > 0,
            60,
            "the sequencer's /legion/command subscription",
        )
        self.safety_sent = publish_safety
        if publish_safety:
            self.safety()  # sim2real's part: the sequencer refuses every command until a SafetyState arrives
        self._handshake()

    def _handshake(self) -> None:
        """Send blank commands (refused by the grounder, run nothing) until one is answered, so that both
        directions of discovery are complete before a test's first command; the k-th is k spaces. Once one
        is answered, every later one is too (reliable, in order), so wait for the last. Not fatal: where no
        reply ever comes, the test's own assertion says so."""
        sent, end = 0, time.monotonic() + 10
        while not self._answered_with_safety() and time.monotonic() < end:
            sent += 1
            self.cmd_pub.publish(String(data=" " * sent))
            self.probe.spin_for(0.3)
        if self.replies:
            last = " " * sent
            self.probe.wait_for(lambda: self.replies[-1][1].command == last, 10, "the handshake's last reply")

    def _answered_with_safety(self) -> bool:
        """A reply came that was not the refusal for a missing SafetyState (the latched one has arrived)."""
        return any(not self.safety_sent or "no safety state" not in m.message for _, m in self.replies)

    # -- operator ------------------------------------------------------------------------------------
    def send(self, text) -> tuple[int, float]:
        """Publish a command (a str, or raw serialized bytes); returns (reply index, time) to wait from."""
        mark = (len(self.replies), time.monotonic())
        self.cmd_pub.publish(String(data=text) if isinstance(text, str) else text)
        return mark

    def reply(self, mark: tuple[int, float], k: int = 0, timeout: float = TIMEOUT) -> CommandStatus:
        """The k-th reply after `mark`."""
        i0 = mark[0]
        self.probe.wait_for(
            lambda: len(self.replies) > i0 + k, timeout, f"reply {k + 1} on {TOPIC_COMMAND_STATUS}"
        )
        return self.replies[i0 + k][1]

    def replies_since(self, mark) -> list[CommandStatus]:
        return [m for _, m in self.replies[mark[0] :]]

    def skills_since(self, mark) -> list[str]:
        return [m.data for t, m in self.skills if t >= mark[1]]

    def wait_reply_or_skill(self, mark, timeout: float = TIMEOUT) -> None:
        """Until a reply arrives or a skill is published after `mark` (the first that happens decides)."""
        self.probe.wait_for(
            lambda: len(self.replies) > mark[0] or bool(self.skills_since(mark)),
            timeout,
            "a reply or a skill",
        )

    def start_plan(self, text: str = PRESS, skill: str = PRESS_SKILL) -> CommandStatus:
        mark = self.send(text)
        r = self.reply(mark)
        assert r.outcome == CS.ACCEPTED and skill in r.message, r.message
        self.probe.wait_for(
            lambda: skill in self.skills_since(mark), TIMEOUT, f"{skill} on {TOPIC_ACTIVE_SKILL}"
        )
        return r

    def send_goal(self, text: str):
        """An ExecuteTask goal; returns the goal handle future."""
        assert self.action.wait_for_server(timeout_sec=TIMEOUT), "no /legion/execute_task server"
        fut = self.action.send_goal_async(ExecuteTask.Goal(command=text))
        self.probe.wait_for(fut.done, TIMEOUT, "the goal response")
        return fut.result()

    def goal_result(self, handle):
        fut = handle.get_result_async()
        self.probe.wait_for(fut.done, TIMEOUT, "the goal result")
        return fut.result()

    def call_cancel(self) -> Trigger.Response:
        assert self.cancel_srv.wait_for_service(timeout_sec=TIMEOUT), "no /task_sequencer_node/cancel service"
        fut = self.cancel_srv.call_async(Trigger.Request())
        self.probe.wait_for(fut.done, TIMEOUT, "the cancel response")
        return fut.result()

    # -- sim2real's part ---------------------------------------------------------------------------------
    def safety(self, latched: bool = False, reason: str = "", dead: tuple[str, ...] = (),
               ready_needed: bool = False) -> None:  # fmt: skip
        m = SafetyState()
        m.header.stamp = self.probe.node.get_clock().now().to_msg()
        m.estop_latched, m.estop_reason, m.dead_nodes = latched, reason, list(dead)
        m.ready_needed = ready_needed
        self.safety_pub.publish(m)

    def wait_safety_seen(self, needle: str) -> CommandStatus:
        """Empty commands until the reply's refusal names `needle` (the SafetyState arrived): the state and
        the commands travel on different topics, so their order is not guaranteed otherwise."""
        end = time.monotonic() + TIMEOUT
        while time.monotonic() < end:
            r = self.reply(self.send(""))
            if needle in r.message:
                return r
        raise AssertionError(f"no refusal naming {needle!r} within {TIMEOUT} s")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def close(self) -> int:
        return stop(self.proc)


@pytest.fixture
def seq(probe, tmp_path):
    h = SequencerHarness(probe, tmp_path / "sequencer.log")
    yield h
    assert h.close() == 0


# --------------------------------------------------------------------------------------- operator text
def test_control_characters_are_refused_with_the_reason_and_run_nothing(seq):
    for text, named in (
        ("\x1b[2Jpress the button", "U+001B ESC"),
        ("press the button\rclose the drawer", "U+000D CR"),
        ("press\x07 the button", "U+0007 BEL"),
    ):
        mark = seq.send(text)
        seq.wait_reply_or_skill(mark)
        assert seq.skills_since(mark) == [], f"{text!r} started a skill"
        r = seq.reply(mark)
        assert r.outcome == CS.REFUSED and "control character" in r.message and named in r.message
        assert r.command == text  # echoed as received
        assert r.command_id > 0
    assert seq.skills_since((0, 0.0)) == []


def test_a_nul_cut_command_is_echoed_as_received(seq):
    """rclpy cuts a std_msgs/String at a NUL in the publishing process (documented in
    docs/operator-input.md): the sequencer cannot see it, so its reply echoes what it received, and an
    operator tool that compares the echo with what it sent sees the cut. `legion command` refuses the NUL
    before sending (test_operator_text, test_command_client_refuses_before_sending)."""
    sent = "press the button\0open the drawer"
    mark = seq.send(sent)
    r = seq.reply(mark)
    assert r.command == "press the button" != sent
    assert r.outcome == CS.ACCEPTED and OPEN_SKILL not in r.message
    assert seq.call_cancel().success


def test_invalid_utf8_is_refused_naming_the_replacement_character(seq):
    raw = serialize_message(String(data="press the XX button"))
    mark = seq.send(raw.replace(b"XX", b"\xff\xfe"))  # what a non-rclpy sender can put on the wire
    seq.wait_reply_or_skill(mark)
    assert seq.skills_since(mark) == []
    r = seq.reply(mark)
    assert r.outcome == CS.REFUSED and "U+FFFD" in r.message and "UTF-8" in r.message
    assert "\ufffd" in r.command


def test_over_long_command_is_refused_and_every_logged_copy_is_capped(seq):
    text = "press the button " * 5000 + "now!"  # 85 004 characters
    mark = seq.send(text)
    seq.probe.wait_for(
        lambda: len(seq.replies) > mark[0] or "(85004 characters)" in seq.log_text(),
        TIMEOUT,
        "a reply or the refusal in the log",
    )
    longest = max(len(line) for line in seq.log_text().splitlines())
    assert longest < 1000, f"a log line of {longest} characters"
    assert "(85004 characters)" in seq.log_text()
    r = seq.reply(mark)
    assert r.outcome == CS.REFUSED and "85004 characters" in r.message and str(MAX_CHARS) in r.message
    assert r.command.startswith("press the button") and r.command.endswith("(85004 characters)")
    assert len(r.command) <= MAX_CHARS + 30 and len(r.message) < 300
    assert seq.skills_since(mark) == []


def test_action_goal_with_control_characters_is_refused_with_the_reason(seq):
    mark = (len(seq.replies), time.monotonic())
    handle = seq.send_goal("press the button\x1b[A")
    res = seq.goal_result(handle).result
    assert not res.success and "control character" in res.message and "U+001B" in res.message
    r = seq.reply(mark)
    assert r.outcome == CS.REFUSED and r.command == "press the button\x1b[A"
    assert seq.skills_since(mark) == []


# ------------------------------------------------------------------------------------- none dropped
def test_a_burst_of_50_commands_gets_50_replies(seq):
    mark = (len(seq.replies), time.monotonic())
    for _ in range(50):
        seq.cmd_pub.publish(String(data=PRESS))
    seq.reply(mark, k=49, timeout=60)
    got = seq.replies_since(mark)
    outcomes = [r.outcome for r in got[:50]]
    assert outcomes.count(CS.ACCEPTED) == 1 and outcomes.count(CS.BUSY) == 49, outcomes
    ids = [r.command_id for r in got[:50]]
    assert len(set(ids)) == 50 and ids == sorted(ids)
    assert all(r.command == PRESS for r in got[:50])
    assert all("busy" in r.message for r in got[:50] if r.outcome == CS.BUSY)
    assert seq.skills_since(mark) == [PRESS_SKILL]
    assert seq.call_cancel().success


def test_action_goal_while_busy_is_answered_busy(seq):
    running = seq.start_plan()
    mark = (len(seq.replies), time.monotonic())
    handle = seq.send_goal(OPEN)
    assert not handle.accepted  # the action's own answer to a busy sequencer
    r = seq.reply(mark)
    assert r.outcome == CS.BUSY and r.command == OPEN and r.command_id > running.command_id
    assert OPEN_SKILL not in seq.skills_since(mark)


# ------------------------------------------------------------------------------------- cancel
def test_topic_started_plan_is_cancelled_by_the_service(seq):
    accepted = seq.start_plan()
    mark = (len(seq.replies), time.monotonic())
    resp = seq.call_cancel()
    assert resp.success and PRESS in resp.message
    r = seq.reply(mark)
    assert r.outcome == CS.CANCELLED and r.command_id == accepted.command_id and r.command == PRESS
    seq.probe.wait_for(lambda: seq.skills_since(mark) == [""], TIMEOUT, "'' on /legion/active_skill")
    # nothing left to cancel: said so, no reply for a plan, nothing published
    mark = (len(seq.replies), time.monotonic())
    resp = seq.call_cancel()
    assert not resp.success and "no plan" in resp.message
    # the sequencer takes a new command at once
    seq.start_plan(OPEN, OPEN_SKILL)
    assert seq.call_cancel().success


def test_topic_started_plan_is_cancelled_by_the_cancel_topic(seq):
    accepted = seq.start_plan()
    mark = (len(seq.replies), time.monotonic())
    seq.cancel_pub.publish(Empty())
    r = seq.reply(mark)
    assert r.outcome == CS.CANCELLED and r.command_id == accepted.command_id
    seq.probe.wait_for(lambda: seq.skills_since(mark) == [""], TIMEOUT, "'' on /legion/active_skill")
    # a cancel on the topic with nothing running is answered, not silent
    mark = (len(seq.replies), time.monotonic())
    seq.cancel_pub.publish(Empty())
    r = seq.reply(mark)
    assert r.outcome == CS.REFUSED and "no plan" in r.message and r.command_id == 0
    assert seq.skills_since(mark) == []


def test_action_started_plan_is_cancelled_by_the_service(seq):
    mark = (len(seq.replies), time.monotonic())
    handle = seq.send_goal(PRESS)
    assert handle.accepted
    seq.probe.wait_for(lambda: PRESS_SKILL in seq.skills_since(mark), TIMEOUT, "the goal's skill")
    assert seq.call_cancel().success
    res = seq.goal_result(handle).result
    assert not res.success and "Cancelled" in res.message
    seq.reply(mark, k=1)  # the goal's result and its reply travel apart: wait for the reply too
    outcomes = [r.outcome for r in seq.replies_since(mark)]
    assert outcomes == [CS.ACCEPTED, CS.CANCELLED]
    assert seq.skills_since(mark)[-1] == ""


# ------------------------------------------------------------------------------------- safety state
def test_estop_latched_cancels_the_plan_and_refuses_commands_until_rearmed(seq):
    accepted = seq.start_plan()
    mark = (len(seq.replies), time.monotonic())
    seq.safety(latched=True, reason="e-stop topic")
    r = seq.reply(mark)
    assert r.outcome == CS.CANCELLED and r.command_id == accepted.command_id
    assert "e-stop latched" in r.message and "e-stop topic" in r.message
    seq.probe.wait_for(lambda: seq.skills_since(mark) == [""], TIMEOUT, "'' on /legion/active_skill")

    latched = (len(seq.replies), time.monotonic())
    mark = seq.send(OPEN)
    seq.wait_reply_or_skill(mark)
    assert seq.skills_since(mark) == [], "a command sent while latched started a skill"
    r = seq.reply(mark)
    assert r.outcome == CS.REFUSED and "e-stop latched" in r.message and r.command == OPEN
    handle = seq.send_goal(OPEN)
    res = seq.goal_result(handle).result if handle.accepted else None
    assert res is None or (not res.success and "e-stop latched" in res.message)
    seq.reply(mark, k=1)  # the goal's result and its reply travel apart: wait for the reply too
    assert [m.outcome for m in seq.replies_since(mark)] == [CS.REFUSED, CS.REFUSED]

    seq.safety(latched=False)  # sim2real re-armed
    seq.probe.wait_for(
        lambda: "e-stop" not in seq.reply(seq.send("")).message, TIMEOUT, "a refusal not naming the e-stop"
    )
    seq.start_plan(PRESS, PRESS_SKILL)
    # what was refused while latched never ran after the re-arm: only the new command's skill
    assert seq.skills_since(latched) == [PRESS_SKILL]
    assert seq.call_cancel().success


def test_a_dead_node_ends_the_plan_and_refuses_commands(seq):
    accepted = seq.start_plan()
    mark = (len(seq.replies), time.monotonic())
    seq.safety(dead=("/policy_node",))
    r = seq.reply(mark)
    assert r.outcome == CS.CANCELLED and r.command_id == accepted.command_id
    assert "/policy_node is not alive" in r.message
    seq.probe.wait_for(lambda: seq.skills_since(mark) == [""], TIMEOUT, "'' on /legion/active_skill")
    mark = seq.send(OPEN)
    seq.wait_reply_or_skill(mark)
    assert seq.skills_since(mark) == []
    r = seq.reply(mark)
    assert r.outcome == CS.REFUSED and "/policy_node is not alive" in r.message
    # the policy came back; the sequencer's own name (stale news after its own respawn) refuses nothing
    seq.safety(dead=("/task_sequencer_node",))
    seq.probe.wait_for(
        lambda: "not alive" not in seq.reply(seq.send("")).message, TIMEOUT, "a refusal not naming it"
    )
    seq.start_plan(OPEN, OPEN_SKILL)
    assert seq.call_cancel().success


def test_estop_latched_before_any_command_refuses_the_first(seq):
    """The latched state is transient local: a sequencer that (re)starts after the latch gets it."""
    seq.safety(latched=True, reason="hardware e-stop input")
    r = seq.wait_safety_seen("e-stop latched")
    assert r.outcome == CS.REFUSED and "hardware e-stop input" in r.message
    mark = seq.send(PRESS)
    seq.wait_reply_or_skill(mark)
    assert seq.skills_since(mark) == []


def test_commands_wait_for_the_safety_state_and_plan_on_it(probe, tmp_path):
    """CI run (stop 24): an action goal reached the sequencer before sim2real's SafetyState did, so the plan
    had no ready move and the arm, at home, was held for the whole skill. Now a topic command is refused
    until the state arrives; a goal waits for it (up to safety_state_wait_s) and plans on it."""
    h = SequencerHarness(probe, tmp_path / "sequencer.log", publish_safety=False,
                         **{"sequencer.safety_state_wait_s": 60.0})  # fmt: skip
    try:
        mark = h.send(PRESS)
        r = h.reply(mark)
        assert r.outcome == CS.REFUSED and "no safety state" in r.message and TOPIC_SAFETY_STATE in r.message
        assert h.skills_since(mark) == []
        assert h.action.wait_for_server(timeout_sec=TIMEOUT), "no /legion/execute_task server"
        goal = h.action.send_goal_async(ExecuteTask.Goal(command=PRESS))
        probe.wait_for(goal.done, TIMEOUT, "the goal response")
        handle = goal.result()
        assert handle.accepted
        probe.spin_for(1.0)
        assert h.skills_since(mark) == [], "a plan started before the safety state arrived"
        h.safety(ready_needed=True)  # the tool is not at the policy's orientation: the ready move first
        probe.wait_for(
            lambda: READY_SKILL in h.skills_since(mark), TIMEOUT, "the ready move on the skill topic"
        )
        assert h.call_cancel().success
        result = h.goal_result(handle).result
        assert list(result.plan) == [READY_SKILL, PRESS_SKILL]
    finally:
        assert h.close() == 0


def test_preview_shows_the_plan_or_the_refusal_and_starts_nothing(seq):
    """~/preview (the operator console's plan before motion): the same checks as a command, nothing runs."""
    from legion_msgs.srv import PreviewCommand

    cli = seq.probe.node.create_client(PreviewCommand, SEQUENCER_PREVIEW_SERVICE)
    assert cli.wait_for_service(timeout_sec=TIMEOUT), f"no {SEQUENCER_PREVIEW_SERVICE}"

    def preview(text: str):
        fut = cli.call_async(PreviewCommand.Request(command=text))
        seq.probe.wait_for(fut.done, TIMEOUT, "the preview")
        return fut.result()

    mark = (len(seq.replies), time.monotonic())
    r = preview(f"{OPEN}, then {PRESS}")
    assert r.accepted and list(r.plan) == [OPEN_SKILL, PRESS_SKILL], r.message
    seq.safety(ready_needed=True)
    seq.probe.wait_for(
        lambda: list(preview(OPEN).plan)[:1] == [READY_SKILL], TIMEOUT, "ready first in the plan"
    )
    r = preview("make me a sandwich")
    assert not r.accepted and list(r.plan) == [] and "matches no skill" in r.message
    r = preview(f"{OPEN}, then close the drawer")  # a transition the shipped bundle was never verified on
    assert not r.accepted and "drawer-open -> drawer-close is not a verified transition" in r.message
    seq.safety(latched=True, reason="console test")
    seq.probe.wait_for(lambda: "e-stop latched" in preview(OPEN).message, TIMEOUT, "the e-stop refusal")
    seq.probe.spin_for(0.5)
    assert seq.skills_since(mark) == [] and seq.replies_since(mark) == [], (
        "a preview ran or replied as a command"
    )


def test_a_goal_without_any_safety_state_is_refused_with_the_reason(probe, tmp_path):
    h = SequencerHarness(probe, tmp_path / "sequencer.log", publish_safety=False,
                         **{"sequencer.safety_state_wait_s": 1.0})  # fmt: skip
    try:
        mark = (len(h.replies), time.monotonic())
        handle = h.send_goal(PRESS)
        assert handle.accepted  # refusals other than busy are the goal's result, with the reason
        result = h.goal_result(handle).result
        assert not result.success and "no safety state" in result.message
        assert h.skills_since(mark) == []
    finally:
        assert h.close() == 0


# ------------------------------------------------------------------------------------- liveness
def test_heartbeat_is_published_with_its_period(probe, tmp_path):
    beats = probe.record(TOPIC_HEARTBEAT, Heartbeat, HEARTBEAT_QOS)
    h = SequencerHarness(probe, tmp_path / "sequencer.log", **{"sequencer.heartbeat_period_s": 0.1})
    try:
        mine = lambda: [m for _, m in beats if m.node == "/task_sequencer_node"]  # noqa: E731
        probe.wait_for(lambda: len(mine()) >= 3, TIMEOUT, "three heartbeats from /task_sequencer_node")
        assert all(m.period_s == pytest.approx(0.1) for m in mine())
        seqs = [m.sequence for m in mine()]
        assert seqs == sorted(seqs)
    finally:
        assert h.close() == 0


# ------------------------------------------------------------------------------------- `legion command`
def _client(text: str, out: Path) -> subprocess.Popen:
    code = "import sys; from legion_core.tools.command_client import run_command; sys.exit(run_command(sys.argv[1]))"
    with open(out, "w") as f:
        return subprocess.Popen(
            [sys.executable, "-c", code, text], env=child_env(), stdout=f, stderr=subprocess.STDOUT, cwd=REPO
        )


def test_legion_command_prints_the_replies_and_ctrl_c_cancels(seq, tmp_path):
    out, busy_out = tmp_path / "client.out", tmp_path / "busy.out"
    mark = (len(seq.replies), time.monotonic())
    client = _client(PRESS, out)
    try:
        seq.probe.wait_for(
            lambda: f"accepted: plan: {PRESS_SKILL}" in out.read_text(), 60, "the client's accepted line"
        )
        seq.probe.wait_for(lambda: PRESS_SKILL in seq.skills_since(mark), TIMEOUT, "the command's skill")
        # a second operator while it runs: told busy, with the running command, and exit 4
        other = _client(OPEN, busy_out)
        seq.probe.wait_for(lambda: other.poll() is not None, 60, "the busy client to exit")
        assert other.returncode == 4 and "busy: command" in busy_out.read_text()
        os.kill(client.pid, signal.SIGINT)  # Ctrl-C
        seq.probe.wait_for(lambda: client.poll() is not None, TIMEOUT, "the client to exit")
    finally:
        if client.poll() is None:
            client.kill()
    text = out.read_text()
    assert client.returncode == 1, text
    assert "cancelling (the robot holds)" in text and f"Cancelled during {PRESS_SKILL}" in text
    ends = lambda: [r for r in seq.replies_since(mark) if r.outcome == CS.CANCELLED]  # noqa: E731
    seq.probe.wait_for(lambda: bool(ends()), TIMEOUT, "the CANCELLED reply")
    assert len(ends()) == 1 and "action client" in ends()[0].message
    seq.probe.wait_for(lambda: seq.skills_since(mark)[-1] == "", TIMEOUT, "'' on /legion/active_skill")
    assert OPEN_SKILL not in seq.skills_since(mark)
