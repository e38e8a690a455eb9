"""The operator console's web app (docs/console.md): the page, the state stream over a websocket, and the
actions over both websocket and HTTP. Starlette (a maintained ASGI framework with websockets, served by
uvicorn) so that the server is not ours to get right; the page is static files, no build step.

The app knows the runtime only through `ConsoleRuntime` (console_node implements it over ROS): every action
is a blocking call into the node and runs on a worker thread, never on the event loop that streams states."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Protocol

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from legion_core.console.access import ACTIONS, bearer, may, token_matches
from legion_core.console.state import ConsoleState

STATIC_DIR = Path(__file__).with_name("static")
MAX_TEXT_CHARS = 2000
"""Longer command text is refused here (the sequencer's own cap is lower; this only bounds the request)."""


class ConsoleRuntime(Protocol):
    """What the console asks of the runtime (console_node). Each action returns {"ok", "message", ...}."""

    state: ConsoleState

    def preview(self, text: str) -> dict: ...
    def execute(self, text: str) -> dict: ...
    def cancel(self) -> dict: ...
    def estop(self) -> dict: ...
    def rearm(self) -> dict: ...
    def info(self) -> dict: ...
    def runs(self) -> list[dict]: ...
    def camera_jpeg(self) -> bytes | None: ...


def _unauthorized(action: str) -> dict:
    return {"ok": False, "status": 401,
            "message": f"{action} needs the operator token (enter it on the page; the console's token_file "
                       "or LEGION_CONSOLE_TOKEN sets it at launch)"}  # fmt: skip


async def run_action(runtime: ConsoleRuntime, action: str, payload: dict, authed: bool) -> dict:
    """One action for a client; the refusal (401, bad input) or the runtime's answer."""
    if action not in ACTIONS:
        return {"ok": False, "status": 400, "message": f"unknown action {action!r}; one of {sorted(ACTIONS)}"}
    if not may(action, authed):
        return _unauthorized(action)
    if action in ("preview", "execute"):
        text = payload.get("text")
        if not isinstance(text, str) or not text.strip():
            return {
                "ok": False,
                "status": 400,
                "message": "field 'text': type the command, e.g. 'open the drawer'",
            }
        if len(text) > MAX_TEXT_CHARS:
            return {"ok": False, "status": 400,
                    "message": f"field 'text': {len(text)} characters, at most {MAX_TEXT_CHARS}"}  # fmt: skip
        return await run_in_threadpool(getattr(runtime, action), text)
    return await run_in_threadpool(getattr(runtime, action))


def build_app(runtime: ConsoleRuntime, token: str | None, state_rate_hz: float = 10.0) -> Starlette:
    """The console's ASGI app. `token` None: read-only (watch and e-stop only)."""
    period = 1.0 / state_rate_hz

    def authed_http(request: Request) -> bool:
        return token_matches(token, bearer(request.headers.get("authorization")))

    async def page(_request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html")

    async def state(request: Request) -> Response:
        return JSONResponse(runtime.state.snapshot(time.time(), can_command=authed_http(request)))

    async def info(_request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(runtime.info))

    async def runs(_request: Request) -> Response:
        return JSONResponse({"runs": await run_in_threadpool(runtime.runs)})

    async def camera(_request: Request) -> Response:
        jpeg = await run_in_threadpool(runtime.camera_jpeg)
        if jpeg is None:
            return JSONResponse(
                {"message": "no camera frame (camera_topic not set or nothing received)"}, 404
            )
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    async def action(request: Request) -> Response:
        name = request.path_params["action"]
        try:
            payload = await request.json() if await request.body() else {}
        except json.JSONDecodeError:
            return JSONResponse({"ok": False, "message": 'the body must be JSON, e.g. {"text": "..."}'}, 400)
        if not isinstance(payload, dict):
            return JSONResponse({"ok": False, "message": "the body must be a JSON object"}, 400)
        out = await run_action(runtime, name, payload, authed_http(request))
        status = out.pop(
            "status", 200
        )  # 200 with ok false: the runtime answered and refused, with its reason
        return JSONResponse(out, status)

    async def ws(socket: WebSocket) -> None:
        await socket.accept()
        authed = False
        closed = asyncio.Event()

        async def push() -> None:
            # Always the newest state, on a grid of deadlines (the rate does not drift with the send time); a
            # slow page or a late wake-up skips states, it never queues or bursts them.
            deadline = time.monotonic()
            while not closed.is_set():
                await socket.send_text(json.dumps(runtime.state.snapshot(time.time(), can_command=authed)))
                deadline += period
                now = time.monotonic()
                if deadline < now - period:
                    deadline = now  # more than a period behind: skip, do not catch up in a burst
                await asyncio.sleep(max(0.0, deadline - now))

        async def receive() -> None:
            nonlocal authed
            while True:
                try:
                    msg = json.loads(await socket.receive_text())
                except json.JSONDecodeError:
                    await socket.send_text(json.dumps({"type": "reply", "ok": False, "status": 400,
                                                       "message": "messages are JSON objects"}))  # fmt: skip
                    continue
                if not isinstance(msg, dict):
                    continue
                kind, mid = msg.get("type"), msg.get("id")
                if kind == "auth":
                    authed = token_matches(token, msg.get("token"))
                    reply = {"ok": authed, "message": "token accepted: this page may command" if authed else
                             ("this console is read-only (started without a token)" if token is None
                              else "wrong token")}  # fmt: skip
                else:
                    reply = await run_action(runtime, str(kind), msg, authed)
                await socket.send_text(json.dumps({"type": "reply", "id": mid, "action": kind, **reply}))

        pusher = asyncio.create_task(push())
        try:
            await receive()
        except (WebSocketDisconnect, RuntimeError):
            pass  # the page went away
        finally:
            closed.set()
            pusher.cancel()

    routes = [
        Route("/", page),
        Route("/api/state", state),
        Route("/api/info", info),
        Route("/api/runs", runs),
        Route("/api/camera.jpg", camera),
        Route("/api/{action}", action, methods=["POST"]),
        WebSocketRoute("/ws", ws),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    return Starlette(routes=routes)
