"""console_node: the operator console (docs/console.md). Serves the page and its state stream (uvicorn on a
thread of this process) and answers the page's actions through the runtime's own interfaces: a preview from
the sequencer's ~/preview service, execution only as an ExecuteTask goal (the one path to motion), cancel
through the goal or the sequencer's ~/cancel, e-stop and re-arm through sim2real_node's services.

An observer: nothing in the runtime watches it, and its death stops nothing (a running command goes on; the
page says so when it loses the connection). Logic: legion_core.console (state, access, app; unit-tested)."""

from __future__ import annotations

import threading
import time

from legion_core.contracts.interface import (
    ACTION_EXECUTE_TASK,
    NODE_CONSOLE,
    NODE_SIM2REAL,
    SEQUENCER_CANCEL_SERVICE,
    SEQUENCER_PREVIEW_SERVICE,
    SIM2REAL_ESTOP_SERVICE,
    SIM2REAL_REARM_SERVICE,
    TOPIC_ACTIVE_SKILL,
    TOPIC_COMMAND_REPORT,
    TOPIC_COMMAND_STATUS,
    TOPIC_DETECTIONS,
    TOPIC_DIAGNOSTICS,
    TOPIC_GRIPPER_STATE,
    TOPIC_SAFETY_STATE,
    TOPIC_STATUS,
    robot_scoped,
)
from legion_core.ros.common import (
    LATCHED_QOS,
    OPERATOR_QOS,
    RELIABLE_QOS,
    SENSOR_QOS,
    STATUS_QOS,
    LegionNode,
    NodeStartupError,
    SampledSubscriptions,
    spin_nodes,
)

CAMERA_MAX_RATE_HZ = 5.0
"""The page's camera view is JPEG-encoded at most this often (a view, not a perception input)."""


class ConsoleNode(LegionNode):
    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_CONSOLE, **kwargs)
        from diagnostic_msgs.msg import DiagnosticArray
        from legion_msgs.action import ExecuteTask
        from legion_msgs.msg import (
            CommandReport,
            CommandStatus,
            ObjectDetectionArray,
            RuntimeStatus,
            SafetyState,
        )
        from legion_msgs.srv import PreviewCommand
        from rclpy.action import ActionClient
        from sensor_msgs.msg import Image, JointState
        from std_msgs.msg import Float64, String
        from std_srvs.srv import Trigger

        from legion_core.base.params import pick
        from legion_core.console.access import TokenError, load_token
        from legion_core.console.params import (
            CONSOLE_DRIVER_PARAMETERS,
            ConsoleNodeParams,
            console_node_parameters,
        )
        from legion_core.console.state import ConsoleState
        from legion_core.contracts.drivers import DriverParams, DriverProfileError
        from sim2real.calibration import CalibrationError, load_calibration, sim_calibration

        values = self.declare_parameters_from(console_node_parameters())
        self.p = p = ConsoleNodeParams(**pick(ConsoleNodeParams, values))
        self.log_parameters()
        if not p.state_rate_hz > 0:
            raise NodeStartupError(f"state_rate_hz must be > 0 Hz, got {p.state_rate_hz}")
        try:
            self.token = load_token(p.token_file)
        except TokenError as e:
            raise NodeStartupError(str(e)) from None
        try:
            cal = load_calibration(p.calibration) if p.calibration else sim_calibration()
            driver = DriverParams(**pick(DriverParams, values, CONSOLE_DRIVER_PARAMETERS)).profile()
        except (CalibrationError, OSError) as e:
            raise NodeStartupError(f"calibration: {e}") from None
        except DriverProfileError as e:
            raise NodeStartupError(str(e)) from None
        self.T_base_camera = cal.T_base_camera
        self.camera_frame, self.base_frame = (
            cal.frame_ids.get("camera", "camera"),
            cal.frame_ids.get("base", ""),
        )
        self.state = ConsoleState(cal.robot_joint_names, runtime_timeout_s=p.runtime_timeout_s,
                                  read_only=self.token is None)  # fmt: skip
        self._bundle_info = self._load_bundle_info(p.bundle)
        self._ExecuteTask, self._PreviewCommand, self._Trigger = ExecuteTask, PreviewCommand, Trigger

        # The driver's 200-500 Hz streams are sampled at the page's rate, not taken message by message: the
        # console must cost the robot PC little (docs/console.md, "Cost on the control path").
        self.sampled = SampledSubscriptions(self)
        gripper = lambda m: self.state.on_gripper(m.data)  # noqa: E731
        self._samples = (
            (self.sampled.subscribe(JointState, driver.joint_states_topic, SENSOR_QOS), self.on_joint_state),
            (self.sampled.subscribe(Float64, TOPIC_GRIPPER_STATE, SENSOR_QOS), gripper),
            (self.sampled.subscribe(ObjectDetectionArray, TOPIC_DETECTIONS, SENSOR_QOS), self.on_detections),
        )
        self.create_timer(1.0 / p.state_rate_hz, self.on_sample)
        self.create_subscription(String, TOPIC_ACTIVE_SKILL, lambda m: self.state.on_active_skill(m.data),
                                 LATCHED_QOS)  # fmt: skip
        self.create_subscription(SafetyState, TOPIC_SAFETY_STATE, self.on_safety, LATCHED_QOS)
        self.create_subscription(CommandReport, TOPIC_COMMAND_REPORT, self.on_command_report, RELIABLE_QOS)
        self.create_subscription(RuntimeStatus, TOPIC_STATUS, self.on_status, STATUS_QOS)
        self.create_subscription(CommandStatus, TOPIC_COMMAND_STATUS, self.on_command_status, OPERATOR_QOS)
        self.create_subscription(DiagnosticArray, TOPIC_DIAGNOSTICS, self.on_diagnostics, RELIABLE_QOS)
        self._camera_msg = None
        self._camera_jpeg: tuple[float, bytes] | None = None
        if p.camera_topic:
            self.create_subscription(Image, p.camera_topic, self.on_camera, SENSOR_QOS)

        self.preview_cli = self.create_client(PreviewCommand, SEQUENCER_PREVIEW_SERVICE)
        self.cancel_cli = self.create_client(Trigger, SEQUENCER_CANCEL_SERVICE)
        self.estop_cli = self.create_client(Trigger, SIM2REAL_ESTOP_SERVICE)
        self.rearm_cli = self.create_client(Trigger, SIM2REAL_REARM_SERVICE)
        self.action = ActionClient(self, ExecuteTask, robot_scoped(ACTION_EXECUTE_TASK))
        self._goal = None  # the ExecuteTask goal handle this console started and that has not ended

        self.server, self.url = self._serve()
        mode = (
            "read-only (no token: watch and e-stop only)" if self.token is None else "commanding with a token"
        )
        self.get_logger().info(f"console serving on {self.url} ({mode})")

    # -- the web server ------------------------------------------------------------------------------
    def _serve(self):
        import uvicorn

        from legion_core.console.app import build_app

        app = build_app(self, self.token, self.p.state_rate_hz)
        # lifespan off: nothing to set up; ws_ping: a page that vanished without closing is noticed.
        config = uvicorn.Config(app, host=self.p.host, port=self.p.port, log_level="warning", lifespan="off",
                                ws="websockets-sansio", ws_ping_interval=5.0, ws_ping_timeout=5.0)  # fmt: skip
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="console-http", daemon=True)
        thread.start()
        end = time.monotonic() + 10.0
        while not server.started and thread.is_alive() and time.monotonic() < end:
            time.sleep(0.02)
        if not server.started:
            raise NodeStartupError(
                f"the console could not listen on {self.p.host}:{self.p.port} (in use? set port:=<free port>)"
            )
        host, port = server.servers[0].sockets[0].getsockname()[:2]
        return server, f"http://{host}:{port}"

    def on_shutdown(self) -> None:
        self.server.should_exit = True
        self.sampled.destroy()

    # -- inputs --------------------------------------------------------------------------------------
    def on_sample(self) -> None:
        for sub, handle in self._samples:
            msg = self.sampled.newest(sub)
            if msg is not None:
                handle(msg)

    def on_joint_state(self, msg) -> None:
        self.state.on_joint_state(msg.name, msg.position, time.time())

    def on_detections(self, msg) -> None:
        import numpy as np

        frame = msg.header.frame_id
        objects = {}
        for d in msg.detections:
            p = np.array([d.pose.position.x, d.pose.position.y, d.pose.position.z])
            f = d.header.frame_id or frame
            if f in (self.camera_frame, ""):
                objects[d.label] = self.T_base_camera.R @ p + self.T_base_camera.p
            elif f == self.base_frame:
                objects[d.label] = p
        self.state.on_detections(objects, time.time())

    def on_safety(self, m) -> None:
        self.state.on_safety(m.estop_latched, m.estop_reason, m.level, m.reason, m.ready_needed, m.driver_fault,
                             m.dead_nodes, m.silent_nodes, time.time())  # fmt: skip

    def on_command_report(self, m) -> None:
        self.state.on_command_report(m.hold, m.reason, time.time())

    def on_status(self, m) -> None:
        self.state.on_status(m.node, m.level, m.message, time.time())

    def on_command_status(self, m) -> None:
        self.state.on_command_status(m.command, m.outcome, m.message, time.time())

    def on_diagnostics(self, arr) -> None:
        for st in arr.status:
            if st.name == f"legion/{NODE_SIM2REAL}":  # LegionNode.publish_diagnostics names it so
                self.state.on_diagnostics({kv.key: kv.value for kv in st.values})

    def on_camera(self, msg) -> None:
        self._camera_msg = msg
        self.state.on_camera_frame(time.time())

    # -- the page's actions (called on the web server's worker threads) -----------------------------
    def _call(self, client, request, what: str):
        """A service call from a worker thread: the executor (main thread) completes the future."""
        if not client.wait_for_service(timeout_sec=min(1.0, self.p.service_timeout_s)):
            return None, f"{what}: {client.srv_name} is not offered (is the runtime running?)"
        done = threading.Event()
        fut = client.call_async(request)
        fut.add_done_callback(lambda _f: done.set())
        if not done.wait(self.p.service_timeout_s) or fut.result() is None:
            return None, f"{what}: {client.srv_name} did not answer within {self.p.service_timeout_s:.0f} s"
        return fut.result(), ""

    def preview(self, text: str) -> dict:
        resp, err = self._call(self.preview_cli, self._PreviewCommand.Request(command=text), "preview")
        if resp is None:
            return {"ok": False, "status": 503, "message": err, "plan": []}
        return {"ok": bool(resp.accepted), "message": resp.message, "plan": list(resp.plan)}

    def execute(self, text: str) -> dict:
        """Send the text as an ExecuteTask goal; answers when the plan started or was refused."""
        if self._goal is not None:
            return {
                "ok": False,
                "message": "this console's previous command is still running; cancel it first",
            }
        plan = self.preview(text)
        if not plan["ok"]:
            return plan  # refused now: the refusal, and no goal sent
        if not self.action.wait_for_server(timeout_sec=min(1.0, self.p.service_timeout_s)):
            return {"ok": False, "status": 503, "message": "no task sequencer on the ExecuteTask action"}
        started, answer = threading.Event(), {}

        def on_feedback(fb_msg) -> None:
            fb = fb_msg.feedback
            if not started.is_set():
                self.state.on_command_started(text, plan["plan"])
                answer.update(ok=True, message=f"running: {' -> '.join(plan['plan'])}", plan=plan["plan"])
                started.set()
            self.state.on_feedback(fb.active_skill, fb.step_index, fb.step_count, fb.progress, fb.state,
                                   fb.hold_reason)  # fmt: skip

        def on_result(fut) -> None:
            res = fut.result()
            r = res.result
            from action_msgs.msg import GoalStatus

            # A cancel that did not come through this goal (e-stop, another operator) aborts it; the sequencer's
            # message then starts with "Cancelled" (legion_core/runtime/sequencer.py, Sequencer.tick).
            cancelled = res.status == GoalStatus.STATUS_CANCELED or r.message.startswith("Cancelled")
            self.state.on_command_result(text, r.success, cancelled, r.message, list(r.plan),
                                         list(r.step_durations_s), time.time())  # fmt: skip
            self._goal = None
            if not started.is_set():  # refused after the preview (the state changed in between)
                answer.update(ok=bool(r.success), message=r.message, plan=list(r.plan))
                started.set()

        def on_goal(fut) -> None:
            handle = fut.result()
            if handle is None or not handle.accepted:
                answer.update(ok=False, message="the sequencer rejected the command (busy with another one?)",
                              plan=[])  # fmt: skip
                started.set()
                return
            self._goal = handle
            handle.get_result_async().add_done_callback(on_result)

        self.action.send_goal_async(self._ExecuteTask.Goal(command=text), feedback_callback=on_feedback
                                    ).add_done_callback(on_goal)  # fmt: skip
        if not started.wait(self.p.service_timeout_s + 10.0):
            return {
                "ok": False,
                "status": 503,
                "message": "the sequencer did not start or refuse the command",
            }
        return answer

    def cancel(self) -> dict:
        goal = self._goal
        if goal is not None:
            done = threading.Event()
            goal.cancel_goal_async().add_done_callback(lambda _f: done.set())
            ok = done.wait(self.p.service_timeout_s)
            return {
                "ok": ok,
                "message": "cancel requested" if ok else "the sequencer did not answer the cancel",
            }
        resp, err = self._call(self.cancel_cli, self._Trigger.Request(), "cancel")
        return {"ok": bool(resp and resp.success), "message": resp.message if resp else err}

    def estop(self) -> dict:
        resp, err = self._call(self.estop_cli, self._Trigger.Request(), "e-stop")
        if resp is None:
            self.get_logger().error(f"e-stop from the console failed: {err}")
            return {"ok": False, "status": 503, "message": err + "; use the hardware e-stop"}
        self.get_logger().warn(f"e-stop from the console: {resp.message}")
        return {"ok": bool(resp.success), "message": resp.message}

    def rearm(self) -> dict:
        resp, err = self._call(self.rearm_cli, self._Trigger.Request(), "re-arm")
        if resp is None:
            return {"ok": False, "status": 503, "message": err}
        self.get_logger().info(f"re-arm from the console: {resp.message}")
        return {"ok": bool(resp.success), "message": resp.message}

    def info(self) -> dict:
        return {**self._bundle_info, "scene": self.p.scene, "read_only": self.token is None}

    def runs(self) -> list[dict]:
        """This console's runs, then those in the recordings directory's bags (newest first in each)."""
        return [r.to_dict() for r in list(self.state.runs)] + self._recorded_runs()

    def _recorded_runs(self, max_bags: int = 20) -> list[dict]:
        """Runs from the sequencer's replies in `legion record` bags (rosbag2 directories under
        recordings_dir), re-read only when a bag was added or changed."""
        from pathlib import Path

        if not self.p.recordings_dir:
            return []
        metas = sorted(Path(self.p.recordings_dir).expanduser().glob("**/metadata.yaml"),
                       key=lambda m: m.stat().st_mtime, reverse=True)[:max_bags]  # fmt: skip
        key = tuple((str(m), m.stat().st_mtime) for m in metas)
        if key != getattr(self, "_recorded_key", None):
            out = []
            for meta in metas:
                try:
                    out += [r.to_dict() for r in self._runs_in_bag(meta.parent)]
                except Exception as e:  # noqa: BLE001 - a bag we cannot read is named, not fatal
                    self.get_logger().warn(f"recordings: {meta.parent} not read: {e}")
            self._recorded_key, self._recorded = key, out
        return self._recorded

    def _runs_in_bag(self, bag):
        from legion_msgs.msg import CommandStatus
        from rclpy.serialization import deserialize_message
        from rosbags.rosbag2 import Reader

        from legion_core.console.state import runs_from_replies

        replies = []
        with Reader(bag) as reader:
            conns = [c for c in reader.connections if c.topic == TOPIC_COMMAND_STATUS]
            for _conn, t_ns, raw in reader.messages(connections=conns):
                m = deserialize_message(bytes(raw), CommandStatus)
                replies.append((t_ns * 1e-9, m.command_id, m.command, m.outcome, m.message))
        return runs_from_replies(sorted(replies, key=lambda r: r[0]), source=f"recording {bag.name}")

    def camera_jpeg(self) -> bytes | None:
        msg = self._camera_msg
        if msg is None:
            return None
        now = time.monotonic()
        if self._camera_jpeg is not None and now - self._camera_jpeg[0] < 1.0 / CAMERA_MAX_RATE_HZ:
            return self._camera_jpeg[1]
        import cv2

        from sim2real.tags import image_array

        img = image_array(msg.encoding, msg.height, msg.width, msg.step, msg.data)
        if img.ndim == 3 and msg.encoding == "rgb8":
            img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])
        if not ok:
            return None
        self._camera_jpeg = (now, buf.tobytes())
        return self._camera_jpeg[1]

    @staticmethod
    def _load_bundle_info(path: str) -> dict:
        if not path:
            return {"bundle": "", "skills": [], "card_markdown": ""}
        from pathlib import Path

        from legion_core.contracts.bundle import BundleError, load
        from legion_core.contracts.bundle_schema import MODEL_CARD_FILE

        try:
            b = load(path)
        except BundleError as e:
            raise NodeStartupError(f"invalid bundle {path}: {e}") from None
        card = Path(path) / MODEL_CARD_FILE
        return {"bundle": Path(path).name, "skills": list(b.skill_names),
                "card_markdown": card.read_text() if card.exists() else ""}  # fmt: skip


def main(args=None) -> int:
    return spin_nodes([ConsoleNode], args)


if __name__ == "__main__":
    raise SystemExit(main())
