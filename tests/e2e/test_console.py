"""The operator console in a real headless browser (Debian's chromium, driven by Playwright) against the live
sim graph (twin, real2sim, policy, sim2real, sequencer in one composed process; console_node in its own, as
`legion console` runs it). docs/console.md; issue 19's "Done when":

- the page loads and the arm's state changes on it;
- "open the drawer, then press the button": the plan is shown before anything moves, confirmed, both steps
  complete;
- an out-of-scope command shows its refusal and moves nothing;
- the e-stop button holds the arm within two command periods (on the published commands, stamped: the
  twin takes joint_trajectory_controller's message here) and re-arm works behind its confirmation;
- a viewer without the token cannot command (HTTP and websocket both refuse).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from legion_core.contracts.bundle import load
from legion_core.tools.console_graph import CHROMIUM_ARGS, chromium_path, start_console
from legion_core.tools.demo import DEFAULT_MODEL
from legion_core.tools.ros_env import stop_process_group

pytestmark = [pytest.mark.e2e, pytest.mark.ros]

PLACEMENT = 3  # a held-out scene where the chain runs (tests/e2e/test_long_horizon.py)
CHAIN = "open the drawer, then press the button"
COMMAND_PERIOD_S = 0.01  # the twin's command stream: 100 Hz (DriverParams.command_rate_hz)
TOKEN = "console-e2e-token-0123456789"


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    from legion_core.tools.longhorizon import ChainRunner

    chromium_path()  # fails with the fix when chromium is missing
    if not load(DEFAULT_MODEL).scene:
        pytest.skip(f"{DEFAULT_MODEL} was not trained in a multi-object scene")
    tmp = tmp_path_factory.mktemp("console")
    # Stamped commands (JointTrajectory, as joint_trajectory_controller takes them): the e-stop check reads
    # when sim2real sent each one.
    extra = {"twin.command_interface": "trajectory", "sim2real.command_interface": "trajectory"}
    runner = ChainRunner(DEFAULT_MODEL, tmp / "graph.log", extra_params=extra)
    token_file = tmp / "token"
    token_file.write_text(TOKEN)
    log = tmp / "console.log"
    try:
        proc, url = start_console(DEFAULT_MODEL, runner.scene, log, token_file)
    except BaseException:
        runner.close()
        raise
    try:
        yield runner, url, log
    finally:
        assert stop_process_group(proc, 10.0) == 0, log.read_text()[-3000:]
        assert runner.close() == 0, "the graph did not shut down cleanly"


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield b
        b.close()


class Operator:
    """One browser page on the console; waits spin the graph's node so that its recordings keep filling."""

    def __init__(self, browser, runner, url: str) -> None:
        self.runner, self.errors = runner, []
        self.page = browser.new_page(viewport={"width": 1280, "height": 800})
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(url)

    def wait(self, js: str, timeout_s: float, what: str) -> None:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.page.evaluate(js):
                return
            self.runner.spin(0.1)
        raise AssertionError(f"timed out after {timeout_s} s waiting for {what} ({js})")

    def text(self, selector: str) -> str:
        return self.page.text_content(selector) or ""

    def authenticate(self) -> None:
        self.page.fill("#token", TOKEN)
        self.page.click("#auth-button")
        self.wait("document.querySelector('#auth-state').textContent.toLowerCase().includes('can command')", 10,
                  "the page to say it can command")  # fmt: skip

    def preview(self, text: str) -> None:
        self.page.fill("#command-text", text)
        self.page.click("#preview-button")

    def phase(self) -> str:
        return self.text("#command-phase").strip()


def _js_phase(phase: str) -> str:
    return f"document.querySelector('#command-phase').textContent.trim() === {json.dumps(phase)}"


def _recorder(runner):
    """(control time [s], q) of every joint command the twin receives, and sim2real's safety states."""
    from legion_msgs.msg import SafetyState
    from trajectory_msgs.msg import JointTrajectory

    from legion_core.contracts.interface import TOPIC_JOINT_COMMAND, TOPIC_SAFETY_STATE
    from legion_core.ros.common import LATCHED_QOS

    cmds, safety = [], []
    runner.node.create_subscription(
        JointTrajectory, TOPIC_JOINT_COMMAND,
        lambda m: cmds.append((m.header.stamp.sec + m.header.stamp.nanosec * 1e-9, np.array(m.points[0].positions))),
        100,
    )  # fmt: skip
    runner.node.create_subscription(SafetyState, TOPIC_SAFETY_STATE, safety.append, LATCHED_QOS)
    return cmds, safety


def test_the_operator_commands_watches_and_stops_the_arm_from_the_page(graph, browser, tmp_path):
    runner, url, _log = graph
    cmds, safety = _recorder(runner)
    assert runner.reset_scene(PLACEMENT)
    op = Operator(browser, runner, url)

    # The page shows the live arm: joint angles arrive and change while the arm moves.
    op.wait("document.querySelector('#joints') && /\\d/.test(document.querySelector('#joints').textContent)", 30,
            "joint angles on the page")  # fmt: skip
    assert "legion-kuka" in op.text("body")  # the bundle and its card
    # >= 10 states a second (the server's grid; a loaded machine may lose a few), each drawn promptly.
    s0, t0 = op.page.evaluate("window.legionConsoleStats.states"), time.monotonic()
    runner.spin(3.0)
    rate = (op.page.evaluate("window.legionConsoleStats.states") - s0) / (time.monotonic() - t0)
    assert rate >= 8.0, f"the page received {rate:.1f} states/s"
    lag = time.time() - op.page.evaluate("window.legionConsoleStats.lastRenderedT")
    assert lag < 1.0, f"the page draws a state {lag:.2f} s old"

    op.authenticate()
    op.preview(CHAIN)
    op.wait("document.querySelectorAll('#plan .plan-step').length > 0", 30, "the plan")
    plan = [s.strip() for s in op.page.locator("#plan .plan-step").all_text_contents()]
    assert [p for p in plan if "ready" not in p] == ["drawer-open", "button-press-topdown"], plan
    t_preview = time.monotonic()
    runner.spin(1.0)
    assert runner.arm_motion_rad(t_preview) < 0.005, "the arm moved on a preview"
    joints_before = op.text("#joints")
    op.page.click("#confirm-button")
    op.wait(_js_phase("running"), 30, "the command running")
    op.wait(f"document.querySelector('#joints').textContent !== {json.dumps(joints_before)}", 30,
            "the arm's state changing on the page")  # fmt: skip
    op.wait(f"{_js_phase('succeeded')} || {_js_phase('failed')}", 300, "the chain to end")
    states = op.page.eval_on_selector_all("#steps li", "els => els.map(e => e.dataset.state)")
    assert op.phase() == "succeeded", (op.text("#command-message") or op.text("body"))[:2000]
    assert states and all(s == "done" for s in states), states
    op.page.screenshot(path=str(tmp_path / "after_chain.png"))

    # Out of scope: the refusal with its reason, no confirm button, nothing moves.
    t_refused = time.monotonic()
    op.preview("make me a sandwich")
    op.wait("document.querySelector('#refusal') && document.querySelector('#refusal').offsetParent !== null", 30,
            "the refusal")  # fmt: skip
    assert "matches no skill" in op.text("#refusal")
    assert not op.page.is_visible("#confirm-button")
    runner.spin(1.5)
    assert runner.arm_motion_rad(t_refused) < 0.005, "the arm moved on a refused command"

    # E-stop while the arm moves: held within two command periods of the latch; re-arm behind a confirmation.
    op.preview("close the drawer")
    op.wait("document.querySelectorAll('#plan .plan-step').length > 0 && "
            "document.querySelector('#confirm-button').offsetParent !== null", 30, "the close plan")  # fmt: skip
    op.page.click("#confirm-button")
    op.wait(_js_phase("running"), 30, "close running")
    n0 = len(cmds)
    end = time.monotonic() + 30
    while time.monotonic() < end and not (len(cmds) > n0 + 10 and _moving(cmds[n0:])):
        runner.spin(0.1)
    assert _moving(cmds[n0:]), "the arm never moved for the e-stop check"
    op.page.click("#estop-button")
    op.wait("/LATCHED/.test(document.querySelector('#estop-state').textContent)", 10, "the latched e-stop")
    # The page heard it through the console; this process's own subscription may hear it a moment later.
    end = time.monotonic() + 10
    while time.monotonic() < end and not any(m.estop_latched for m in safety):
        runner.spin(0.05)
    latched = [m for m in safety if m.estop_latched]
    assert latched, "no latched SafetyState"
    t_latch = latched[0].header.stamp.sec + latched[0].header.stamp.nanosec * 1e-9
    end = time.monotonic() + 15
    while time.monotonic() < end and sum(1 for t, _ in cmds if t > t_latch + 2 * COMMAND_PERIOD_S) < 50:
        runner.spin(0.1)
    held = [q for t, q in sorted(cmds, key=lambda c: c[0]) if t > t_latch + 2 * COMMAND_PERIOD_S]
    assert len(held) >= 50, "the command stream stopped (the driver would see a dead stream)"
    assert np.abs(np.array(held) - held[0]).max() < 1e-9, (
        "commands still changing two periods after the latch"
    )
    op.wait(f"{_js_phase('cancelled')} || {_js_phase('failed')}", 30, "the plan ended by the e-stop")

    op.page.click("#rearm-button")
    assert not safety[-1].estop_latched or op.page.is_visible("#rearm-confirm-button")
    op.page.click("#rearm-confirm-button")
    op.wait("!/LATCHED/.test(document.querySelector('#estop-state').textContent)", 15, "the e-stop re-armed")
    runner.spin(0.5)
    assert not safety[-1].estop_latched
    t_rearm = time.monotonic()
    runner.spin(1.0)
    assert runner.arm_motion_rad(t_rearm) < 0.005, "the arm moved by itself after re-arm"
    assert not op.errors, op.errors


def _rearm_if_latched(runner) -> None:
    from std_srvs.srv import Trigger

    from legion_core.contracts.interface import SIM2REAL_REARM_SERVICE
    from legion_core.tools.graph import call_service

    res = call_service(
        runner.node, runner.node.create_client(Trigger, SIM2REAL_REARM_SERVICE), Trigger.Request()
    )
    assert res is not None, f"{SIM2REAL_REARM_SERVICE} did not answer"


def _moving(cmds) -> bool:
    qs = np.array([q for _, q in cmds])
    return len(qs) > 1 and float(np.abs(qs - qs[0]).max()) > 0.01


def test_a_viewer_without_the_token_cannot_command(graph, browser):
    runner, url, _log = graph
    op = Operator(browser, runner, url)
    op.wait(
        "document.querySelector('#auth-state') !== null && document.body.textContent.length > 0",
        30,
        "the page",
    )
    t0 = time.monotonic()
    op.preview("open the drawer")
    op.wait("/token/i.test(document.querySelector('#last-reply').textContent)", 15, "the page's refusal")
    assert not op.page.is_visible("#confirm-button")

    # HTTP: 401 for every commanding action, with and without a wrong token.
    for action in ("preview", "execute", "cancel", "rearm"):
        for headers in ({}, {"Authorization": "Bearer not-the-token-at-all"}):
            req = urllib.request.Request(f"{url}/api/{action}", data=b'{"text": "open the drawer"}',
                                         headers={"Content-Type": "application/json", **headers})  # fmt: skip
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(req, timeout=10)
            assert e.value.code == 401, (action, e.value.code)

    # Websocket: the same refusal as a reply, nothing started.
    from websockets.sync.client import connect

    with connect(url.replace("http://", "ws://") + "/ws", open_timeout=10) as ws:
        ws.send(json.dumps({"type": "auth", "token": "wrong-token-wrong-token"}))
        ws.send(json.dumps({"type": "execute", "id": 7, "text": "open the drawer"}))
        replies = []
        end = time.monotonic() + 10
        while time.monotonic() < end and len(replies) < 2:
            m = json.loads(ws.recv(timeout=10))
            if m["type"] == "reply":
                replies.append(m)
        assert replies[0]["ok"] is False and "wrong token" in replies[0]["message"]
        assert replies[1]["id"] == 7 and replies[1]["status"] == 401
    runner.spin(1.0)
    assert runner.arm_motion_rad(t0) < 0.005
    assert not op.errors, op.errors


def test_a_lost_console_says_so_and_stops_nothing(graph, browser, tmp_path):
    """The console process dies while a command runs: the page says the connection is lost and what the arm
    does now (the runtime's watchdogs decide); the command goes on, since the console is an observer."""
    runner, _url, _log = graph
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    proc, url = start_console(DEFAULT_MODEL, runner.scene, tmp_path / "console.log", token_file)
    try:
        _rearm_if_latched(runner)  # an earlier test that failed mid-way may have left the e-stop latched
        assert runner.reset_scene(PLACEMENT)
        op = Operator(browser, runner, url)
        op.authenticate()
        op.preview("open the drawer")
        op.wait("document.querySelector('#confirm-button') && "
                "document.querySelector('#confirm-button').offsetParent !== null", 30, "the plan")  # fmt: skip
        op.page.click("#confirm-button")
        op.wait(_js_phase("running"), 30, "the command running")
        assert not op.page.is_visible("#connection-banner")
    finally:
        assert stop_process_group(proc, 10.0) == 0
    t_lost = time.monotonic()
    op.wait("document.querySelector('#connection-banner').offsetParent !== null", 10, "the connection banner")
    banner = op.text("#connection-banner")
    assert "lost" in banner and "watchdogs" in banner and "hardware e-stop" in banner, banner
    assert op.page.evaluate("document.body.classList.contains('disconnected')")
    runner.spin(2.0)
    assert runner.arm_motion_rad(t_lost) > 0.01, "the command stopped when the console died"
    assert not op.errors, op.errors
