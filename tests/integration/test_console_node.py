"""console_node alone, without a runtime (docs/console.md): what the page is told when nothing answers, the
refusals of a read-only console, a token setting it cannot use, and past runs read from a recording.
Real process, real HTTP and websocket; the e2e test (tests/e2e/test_console.py) drives it with the graph."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from legion_core.tools.console_graph import start_console
from legion_core.tools.demo import DEFAULT_MODEL
from legion_core.tools.ros_env import ensure_workspace, start_composed, stop_process_group

pytestmark = [pytest.mark.ros]

ensure_workspace()


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def _post(url: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    req = urllib.request.Request(url, data=json.dumps(body or {}).encode(), headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def _recording(path, replies) -> None:
    """A `legion record`-style bag holding the sequencer's replies (/legion/command_status)."""
    from legion_msgs.msg import CommandStatus
    from rclpy.serialization import serialize_message

    from legion_core.contracts.interface import TOPIC_COMMAND_STATUS
    from legion_core.tools.bags.store import legion_typestore, open_writer

    w = open_writer(path)
    w.open()
    conn = w.add_connection(
        TOPIC_COMMAND_STATUS, "legion_msgs/msg/CommandStatus", typestore=legion_typestore()
    )
    for t_s, cid, text, outcome, message in replies:
        m = CommandStatus(command_id=cid, command=text, outcome=outcome, message=message)
        w.write(conn, int(t_s * 1e9), serialize_message(m))
    w.close()


def test_a_read_only_console_without_a_runtime_says_so_and_lists_recorded_runs(tmp_path, monkeypatch):
    from legion_core.contracts.interface import CommandOutcome

    monkeypatch.delenv("LEGION_CONSOLE_TOKEN", raising=False)
    _recording(tmp_path / "bags" / "session", [
        (100.0, 1, "open the drawer", CommandOutcome.ACCEPTED, "plan: drawer-open"),
        (101.0, 2, "make me a sandwich", CommandOutcome.REFUSED, "matches no skill"),
        (112.0, 1, "open the drawer", CommandOutcome.SUCCEEDED, "Done: drawer-open (11.5 s)."),
    ])  # fmt: skip
    proc, url = start_console(DEFAULT_MODEL, "drawer-button", tmp_path / "console.log",
                              recordings_dir=str(tmp_path / "bags"))  # fmt: skip
    try:
        state = _get(f"{url}/api/state")
        assert state["auth"] == {"can_command": False, "read_only_console": True}
        assert not state["runtime"]["connected"] and "sim2real_node" in state["runtime"]["lost_reason"]
        assert state["arm"]["q_rad"] is None and state["safety"] is None  # nothing heard: nothing claimed
        info = _get(f"{url}/api/info")
        assert info["read_only"] and info["skills"] == ["drawer-open", "button-press-topdown", "drawer-close"]
        assert info["card_markdown"].startswith("# Model card")
        runs = _get(f"{url}/api/runs")["runs"]
        assert [(r["command"], r["outcome"], r["plan"]) for r in runs] == [
            ("open the drawer", "succeeded", ["drawer-open"])
        ]
        assert runs[0]["source"] == "recording session" and runs[0]["t"] == pytest.approx(112.0)

        # Read-only: no token can command; the e-stop is open to all but here nothing answers it.
        for action in ("preview", "execute", "cancel", "rearm"):
            code, out = _post(f"{url}/api/{action}", {"text": "open the drawer"}, token="x" * 20)
            assert code == 401, (action, out)
        t0 = time.monotonic()
        code, out = _post(f"{url}/api/estop")
        assert code == 503 and "not offered" in out["message"] and "hardware e-stop" in out["message"], out
        assert time.monotonic() - t0 < 15

        from websockets.sync.client import connect

        with connect(url.replace("http://", "ws://") + "/ws", open_timeout=10) as ws:
            ws.send(json.dumps({"type": "auth", "token": "x" * 20}))
            while (m := json.loads(ws.recv(timeout=10)))["type"] != "reply":
                pass
            assert m["ok"] is False and "read-only" in m["message"]
    finally:
        assert stop_process_group(proc, 10.0) == 0


@pytest.mark.parametrize(
    "token, needle",
    [("short", "at least 16"), (None, "cannot read it")],
)
def test_a_token_setting_it_cannot_use_stops_the_console_with_the_fix(tmp_path, token, needle):
    token_file = tmp_path / "token"
    if token is not None:
        token_file.write_text(token)
    log = tmp_path / "console.log"
    proc = start_composed("console", {"console.port": 0, "console.token_file": str(token_file)}, log)
    try:
        assert proc.wait(timeout=60) != 0
    finally:
        stop_process_group(proc, 5.0)
    text = log.read_text()
    assert "token_file" in text and needle in text and "token_urlsafe" in text, text[-2000:]
    assert "console serving on" not in text


def test_the_camera_view_is_the_newest_frame_as_jpeg(tmp_path):
    """camera_topic: the page's <img> gets the newest sensor_msgs/Image as a JPEG (a view, not perception)."""
    import cv2
    import numpy as np
    import rclpy
    from sensor_msgs.msg import Image

    from legion_core.contracts.interface import CAMERA_IMAGE_TOPIC
    from legion_core.ros.common import SENSOR_QOS

    proc, url = start_console(DEFAULT_MODEL, "drawer-button", tmp_path / "console.log",
                              camera_topic=CAMERA_IMAGE_TOPIC)  # fmt: skip
    if not rclpy.ok():
        rclpy.init()
    node = rclpy.create_node("camera_probe")
    try:
        pub = node.create_publisher(Image, CAMERA_IMAGE_TOPIC, SENSOR_QOS)
        img = np.zeros((120, 160, 3), np.uint8)
        img[:, :80] = (255, 0, 0)  # left half red (rgb8)
        msg = Image(height=120, width=160, encoding="rgb8", step=160 * 3, data=img.tobytes())
        msg.header.frame_id = "camera"
        end, jpeg = time.monotonic() + 30, None
        while time.monotonic() < end and jpeg is None:
            pub.publish(msg)
            rclpy.spin_once(node, timeout_sec=0.1)
            try:
                with urllib.request.urlopen(f"{url}/api/camera.jpg", timeout=5) as r:
                    assert r.headers["Content-Type"] == "image/jpeg"
                    jpeg = r.read()
            except urllib.error.HTTPError as e:
                assert e.code == 404  # nothing received yet
        assert jpeg is not None, "no camera frame served"
        bgr = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert bgr.shape == (120, 160, 3)
        assert bgr[60, 40, 2] > 200 and bgr[60, 40, 0] < 60  # red stays red (rgb8 -> BGR for the encoder)
        assert bgr[60, 120].max() < 60
        assert _get(f"{url}/api/state")["camera"]["available"]
    finally:
        node.destroy_node()
        assert stop_process_group(proc, 10.0) == 0
