"""The operator console's pure parts (docs/console.md): the token rules, the state message the page draws, and
the app's refusals without the token (the app driven through its own ASGI interface, no server)."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from legion_core.console.access import (
    GATED_ACTIONS,
    MIN_TOKEN_CHARS,
    TOKEN_ENV,
    TokenError,
    bearer,
    load_token,
    may,
    token_matches,
)
from legion_core.console.state import ConsoleState, arm_points_base_m
from legion_core.contracts.interface import CommandOutcome, StatusLevel
from legion_core.robot.iiwa7 import JOINT_NAMES
from legion_core.robot.kinematics import fk_point

TOKEN = "s3cret-token-0123456789"


# ------------------------------------------------------------------------------------------------ access
def test_no_token_anywhere_is_a_read_only_console():
    assert load_token("", environ={}) is None


def test_token_from_file_then_environment(tmp_path):
    f = tmp_path / "token"
    f.write_text(TOKEN + "\n")
    assert load_token(str(f), environ={TOKEN_ENV: "x" * 40}) == TOKEN  # the file wins
    assert load_token("", environ={TOKEN_ENV: TOKEN}) == TOKEN


@pytest.mark.parametrize("bad", ["short", "a token with spaces in it"])
def test_weak_or_malformed_tokens_are_refused_naming_the_fix(tmp_path, bad):
    with pytest.raises(TokenError, match="token_urlsafe"):
        load_token("", environ={TOKEN_ENV: bad})
    assert len("short") < MIN_TOKEN_CHARS


def test_missing_token_file_is_refused_naming_the_file(tmp_path):
    with pytest.raises(TokenError, match="token_file .*nope"):
        load_token(str(tmp_path / "nope"))


def test_token_matching_and_bearer_header():
    assert token_matches(TOKEN, TOKEN)
    assert not token_matches(TOKEN, TOKEN + "x")
    assert not token_matches(None, "anything") and not token_matches(TOKEN, None)
    assert bearer(f"Bearer {TOKEN}") == TOKEN and bearer(f"bearer {TOKEN}") == TOKEN
    assert bearer(f"Basic {TOKEN}") is None and bearer(None) is None


def test_only_the_estop_is_open_to_viewers():
    assert may("estop", authed=False)
    for action in GATED_ACTIONS:
        assert not may(action, authed=False) and may(action, authed=True)
    with pytest.raises(ValueError, match="unknown console action"):
        may("launch_missiles", authed=True)


# ------------------------------------------------------------------------------------------------- state
def _state(**kw) -> ConsoleState:
    return ConsoleState(tuple(f"drv_{n}" for n in JOINT_NAMES), **kw)


def test_arm_polyline_ends_at_the_hand_point():
    q = np.array([0.3, 0.5, 0.0, -1.6, 0.0, 0.9, 0.0])
    pts = arm_points_base_m(q)
    assert len(pts) == 10 and pts[0] == [0.0, 0.0, 0.0]
    assert np.allclose(pts[-1], fk_point(q, "hand"), atol=1e-3)


def test_joint_states_are_reordered_by_name_and_partial_ones_ignored():
    s = _state()
    names = [f"drv_{n}" for n in reversed(JOINT_NAMES)]
    s.on_joint_state(names, [7, 6, 5, 4, 3, 2, 1], now=10.0)
    arm = s.snapshot(now=10.5)["arm"]
    assert arm["q_rad"] == [1, 2, 3, 4, 5, 6, 7] and arm["age_s"] == pytest.approx(0.5)
    s.on_joint_state(["drv_lbr_A1"], [0.0], now=11.0)  # a partial message is not the arm
    assert s.snapshot(now=11.0)["arm"]["q_rad"][0] == 1


def test_runtime_lost_when_the_safety_state_stops():
    s = _state(runtime_timeout_s=3.0)
    rt = s.snapshot(now=0.0)["runtime"]
    assert not rt["connected"] and "no SafetyState" in rt["lost_reason"]
    s.on_safety(False, "", StatusLevel.OK, "tracking", False, "", [], [], now=100.0)
    assert s.snapshot(now=102.0)["runtime"]["connected"]
    rt = s.snapshot(now=104.0)["runtime"]
    assert not rt["connected"] and "4.0 s" in rt["lost_reason"]


def test_plan_steps_follow_feedback_and_result():
    s = _state()
    s.on_command_started(
        "open the drawer, then press the button", ["ready", "drawer-open", "button-press-topdown"]
    )
    steps = lambda: [x["state"] for x in s.snapshot(now=1.0)["command"]["steps"]]  # noqa: E731
    assert steps() == ["active", "pending", "pending"]
    s.on_feedback("drawer-open", 2, 3, 0.4, "running", "")
    assert steps() == ["done", "active", "pending"]
    s.on_command_result("open the drawer, then press the button", False, False, "button-press failed",
                        ["ready", "drawer-open", "button-press-topdown"], [2.0, 11.5], now=5.0)  # fmt: skip
    snap = s.snapshot(now=6.0)
    assert steps() == ["done", "done", "failed"]
    assert snap["command"]["phase"] == "failed" and snap["command"]["steps"][1]["duration_s"] == 11.5
    assert s.runs[0].outcome == "failed" and s.runs[0].plan[0] == "ready"


def test_holds_and_refusals_reach_the_page_with_their_reasons():
    s = _state()
    for _ in range(3):
        s.on_command_report(True, "object stale: drawer_handle (0.7 s)", now=1.0)
    s.on_command_report(False, "ok", now=2.0)  # a normal step is not a hold
    s.on_command_status("make me a sandwich", CommandOutcome.REFUSED, "matches no skill", now=3.0)
    s.on_command_status("open the drawer", CommandOutcome.SUCCEEDED, "done", now=4.0)
    holds = s.snapshot(now=5.0)["holds"]
    assert len(holds) == 2
    assert "sandwich" in holds[0]["reason"] and "matches no skill" in holds[0]["reason"]
    assert holds[1]["reason"].startswith("object stale") and holds[1]["count"] == 3


def test_read_only_console_never_says_it_can_command():
    s = _state(read_only=True)
    assert s.snapshot(now=0.0, can_command=True)["auth"] == {"can_command": False, "read_only_console": True}


def test_snapshot_is_json_and_a_copy():
    s = _state()
    s.on_command_started("press the button", ["button-press-topdown"])
    snap = s.snapshot(now=1.0)
    json.dumps(snap)
    snap["command"]["steps"][0]["state"] = "tampered"
    assert s.snapshot(now=1.0)["command"]["steps"][0]["state"] == "active"


# --------------------------------------------------------------------------------------------------- app
class _Runtime:
    """Records which actions reached the runtime (the app's refusals must not reach it)."""

    def __init__(self) -> None:
        self.state = _state()
        self.calls: list[str] = []

    def _act(self, name: str, *args) -> dict:
        self.calls.append(name)
        return {"ok": True, "message": name, "plan": ["drawer-open"]}

    def preview(self, text):
        return self._act("preview", text)

    def execute(self, text):
        return self._act("execute", text)

    def cancel(self):
        return self._act("cancel")

    def estop(self):
        return self._act("estop")

    def rearm(self):
        return self._act("rearm")

    def info(self):
        return {"bundle": "b", "skills": [], "card_markdown": "", "scene": "", "read_only": False}

    def runs(self):
        return []

    def camera_jpeg(self):
        return None


async def _http(app, method: str, path: str, body: bytes = b"", headers=()) -> tuple[int, dict]:
    """One HTTP request through the ASGI interface."""
    sent, out = False, {}

    async def receive():
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(msg):
        if msg["type"] == "http.response.start":
            out["status"] = msg["status"]
        elif msg["type"] == "http.response.body":
            out["body"] = out.get("body", b"") + msg.get("body", b"")

    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": [(k.encode(), v.encode()) for k, v in headers], "scheme": "http",
             "server": ("127.0.0.1", 8080), "client": ("127.0.0.1", 5000), "root_path": "", "http_version": "1.1"}  # fmt: skip
    await app(scope, receive, send)
    return out["status"], json.loads(out["body"] or b"{}")


async def _ws(app, messages: list[dict], replies: int) -> list[dict]:
    """A websocket session: send `messages`, collect the first `replies` replies (states are skipped)."""
    inbox: asyncio.Queue = asyncio.Queue()
    got: list[dict] = []
    await inbox.put({"type": "websocket.connect"})
    for m in messages:
        await inbox.put({"type": "websocket.receive", "text": json.dumps(m)})
    done = asyncio.Event()

    async def receive():
        if done.is_set():
            return {"type": "websocket.disconnect", "code": 1000}
        try:
            return inbox.get_nowait()
        except asyncio.QueueEmpty:
            await done.wait()
            return {"type": "websocket.disconnect", "code": 1000}

    async def send(msg):
        if msg["type"] == "websocket.send":
            m = json.loads(msg["text"])
            if m["type"] == "reply":
                got.append(m)
                if len(got) >= replies:
                    done.set()

    scope = {"type": "websocket", "path": "/ws", "raw_path": b"/ws", "query_string": b"", "headers": [],
             "scheme": "ws", "server": ("127.0.0.1", 8080), "client": ("127.0.0.1", 5000), "root_path": "",
             "subprotocols": []}  # fmt: skip
    await asyncio.wait_for(app(scope, receive, send), 10)
    return got


def _app(token=TOKEN):
    from legion_core.console.app import build_app

    rt = _Runtime()
    return rt, build_app(rt, token, state_rate_hz=50.0)


def test_http_actions_need_the_token_except_the_estop():
    rt, app = _app()
    body = json.dumps({"text": "open the drawer"}).encode()
    for action in ("preview", "execute", "cancel", "rearm"):
        status, out = asyncio.run(_http(app, "POST", f"/api/{action}", body))
        assert status == 401 and "operator token" in out["message"]
        status, _ = asyncio.run(
            _http(app, "POST", f"/api/{action}", body, [("authorization", "Bearer wrong")])
        )
        assert status == 401
    assert rt.calls == [], "a refused request reached the runtime"
    status, out = asyncio.run(_http(app, "POST", "/api/estop"))
    assert status == 200 and rt.calls == ["estop"]
    status, out = asyncio.run(
        _http(app, "POST", "/api/execute", body, [("authorization", f"Bearer {TOKEN}")])
    )
    assert status == 200 and rt.calls == ["estop", "execute"]


def test_bad_input_is_refused_naming_the_field():
    rt, app = _app()
    auth = [("authorization", f"Bearer {TOKEN}")]
    status, out = asyncio.run(_http(app, "POST", "/api/preview", b'{"text": "  "}', auth))
    assert status == 400 and "'text'" in out["message"]
    status, out = asyncio.run(_http(app, "POST", "/api/preview", b"not json", auth))
    assert status == 400 and "JSON" in out["message"]
    assert rt.calls == []


def test_websocket_commands_need_the_token_and_the_estop_does_not():
    rt, app = _app()
    msgs = [{"type": "execute", "id": 1, "text": "open the drawer"}, {"type": "estop", "id": 2},
            {"type": "auth", "token": "wrong"}, {"type": "rearm", "id": 3},
            {"type": "auth", "token": TOKEN}, {"type": "rearm", "id": 4}]  # fmt: skip
    replies = asyncio.run(_ws(app, msgs, replies=6))
    by_id = {r.get("id"): r for r in replies}
    assert by_id[1]["ok"] is False and by_id[1]["status"] == 401
    assert by_id[2]["ok"] is True
    assert by_id[3]["status"] == 401
    assert by_id[4]["ok"] is True
    assert rt.calls == ["estop", "rearm"]


def test_a_console_without_a_token_cannot_be_unlocked():
    rt, app = _app(token=None)
    replies = asyncio.run(
        _ws(app, [{"type": "auth", "token": ""}, {"type": "execute", "id": 1, "text": "x"}], 2)
    )
    assert "read-only" in replies[0]["message"] and replies[1]["status"] == 401
    assert rt.calls == []


def test_past_runs_from_the_sequencers_replies():
    from legion_core.console.state import runs_from_replies

    CS = CommandOutcome
    replies = [
        (1.0, 1, "open the drawer", CS.ACCEPTED, "plan: drawer-open"),
        (2.0, 2, "make me a sandwich", CS.REFUSED, "matches no skill"),  # never ran: not a run
        (3.0, 3, "press it", CS.BUSY, "busy: command 1 is running"),
        (9.0, 1, "open the drawer", CS.SUCCEEDED, "Done: drawer-open (8.0 s)."),
        (
            10.0,
            4,
            "open the drawer, then press the button",
            CS.ACCEPTED,
            "plan: drawer-open -> button-press-topdown",
        ),
        (15.0, 4, "open the drawer, then press the button", CS.CANCELLED, "Cancelled during drawer-open"),
    ]
    runs = runs_from_replies(replies, source="recording demo_session")
    assert [(r.command, r.outcome) for r in runs] == [
        ("open the drawer, then press the button", "cancelled"),
        ("open the drawer", "succeeded"),
    ]
    assert runs[0].plan == ["drawer-open", "button-press-topdown"] and runs[0].t == 15.0
    assert runs[1].to_dict()["source"] == "recording demo_session"
