"""twin_node: the MuJoCo digital twin of the iiwa (joint_position mode) standing in for the robot and the
camera: publishes joint states (default 200 Hz) and detections (default 30 Hz, with noise / latency /
drop-outs), takes the joint and gripper commands sim2real_node sends, offers reset-to-task and a success
report. Logic: legion_core.sim.twin.DigitalTwin.

With `driver:=lbr` it is the lbr_fri_ros2_stack emulator (legion_core.sim.emulator): the arm's interface as
the stack presents it under its namespace (joint states, both position controllers' command topics, of which
only the active one moves the arm, a `controller_manager` node with list/load/configure/switch services and
its update_rate parameter, LBRState), so that robot.launch.yaml is tested against what a lab runs."""

from __future__ import annotations

import time

from legion_core.contracts.interface import (
    NODE_TWIN,
    SERVICE_RESET_TASK,
    TOPIC_DETECTIONS,
    TOPIC_GRIPPER_COMMAND,
    TOPIC_GRIPPER_STATE,
    TOPIC_TWIN_SUCCESS,
    DiagnosticLevel,
)
from legion_core.ros.common import (
    COMMAND_QOS,
    LATCHED_QOS,
    RELIABLE_QOS,
    SENSOR_QOS,
    LegionNode,
    NodeStartupError,
    s_to_stamp,
    spin_nodes,
)


class TwinNode(LegionNode):
    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_TWIN, **kwargs)
        from legion_msgs.msg import ObjectDetectionArray
        from legion_msgs.srv import ResetTask
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Bool, Float64, Float64MultiArray
        from trajectory_msgs.msg import JointTrajectory

        from legion_core.base.params import pick
        from legion_core.contracts.drivers import DriverParams
        from legion_core.contracts.tasks import UnknownTaskError
        from legion_core.sim.node_params import (
            TWIN_CONFIG_PARAMETERS,
            TWIN_DRIVER_PARAMETERS,
            TwinNodeParams,
            twin_node_parameters,
        )
        from legion_core.sim.twin import DigitalTwin, TwinConfig
        from sim2real.calibration import CalibrationError, load_calibration, sim_calibration

        values = self.declare_parameters_from(twin_node_parameters())
        p = TwinNodeParams(**pick(TwinNodeParams, values))
        cal_path, task, scene, variation = p.calibration, p.task, p.scene, p.variation
        js_rate, det_rate, video_fps = p.joint_state_rate_hz, p.detection_rate_hz, p.video_fps
        self.real_time_factor, self.video_path = p.real_time_factor, p.video_path
        self.stamp_offset_s = float(p.stamp_offset_s)
        self.log_parameters()
        try:
            cal = load_calibration(cal_path) if cal_path else sim_calibration()
            size = (480, 360) if self.video_path else None
            sensors = pick(TwinConfig, values, TWIN_CONFIG_PARAMETERS)
            self.twin = DigitalTwin(
                cal, task, variation, TwinConfig(**sensors, render_size=size, scene=scene or None)
            )
            if p.start_q_rad.strip():
                q0 = [float(v) for v in p.start_q_rad.replace(" ", "").split(",")]
                self.twin.place_arm(q0)
            driver = DriverParams(**pick(DriverParams, values, TWIN_DRIVER_PARAMETERS))
            if driver.driver not in ("twin", "lbr"):
                raise ValueError(
                    f"driver must be twin or lbr (the lbr_fri_ros2_stack emulator); got {driver.driver!r}"
                )
            self.profile = driver.profile()
        except (CalibrationError, UnknownTaskError, OSError, ValueError) as e:
            raise NodeStartupError(str(e)) from None
        # The names the driver publishes (the lbr stack prefixes them with robot_name) -> the twin's joints.
        self.driver_joint_names = list(self.profile.joint_names) or list(self.twin.joint_names)
        self._JointState, self._Float64, self._Bool = JointState, Float64, Bool
        self._Det = ObjectDetectionArray
        # joint_state_broadcaster publishes reliable (SystemDefaultsQoS); the twin's own stream is best effort.
        lbr = self.profile.driver == "lbr"
        self.js_pub = self.create_publisher(
            JointState, self.profile.joint_states_topic, RELIABLE_QOS if lbr else SENSOR_QOS
        )
        self.det_pub = self.create_publisher(ObjectDetectionArray, TOPIC_DETECTIONS, SENSOR_QOS)
        self.grip_pub = self.create_publisher(Float64, TOPIC_GRIPPER_STATE, SENSOR_QOS)
        self.success_pub = self.create_publisher(Bool, TOPIC_TWIN_SUCCESS, LATCHED_QOS)
        # The estimated external wrench (from MuJoCo's contacts) where the driver profile has one: the
        # contact guard's input, as lbr_fri_ros2_stack's force_torque_broadcaster publishes it.
        from geometry_msgs.msg import WrenchStamped

        self._Wrench = WrenchStamped
        self.wrench_pub = self.create_publisher(WrenchStamped, self.profile.wrench_topic, SENSOR_QOS)
        self._wrench_frame = f"{self.profile.namespace.rsplit('/', 1)[-1]}_link_ee" if lbr else "flange"
        self.emulator = None
        if lbr:
            self._start_lbr_emulator(p, JointTrajectory, Float64MultiArray)
        elif self.profile.command_interface == "trajectory":
            self.create_subscription(
                JointTrajectory, self.profile.command_topic, self.on_trajectory, COMMAND_QOS
            )
        else:
            self.create_subscription(
                Float64MultiArray, self.profile.command_topic, self.on_array, COMMAND_QOS
            )
        self.create_subscription(Float64, TOPIC_GRIPPER_COMMAND, self.on_gripper, COMMAND_QOS)
        self.create_service(ResetTask, SERVICE_RESET_TASK, self.on_reset)
        self._wall_last = time.monotonic()
        self.create_timer(1.0 / js_rate, self.on_physics)
        if p.ground_truth_detections:
            self.create_timer(1.0 / det_rate, self.on_camera)
        else:
            self.create_timer(1.0 / det_rate, self.on_gripper_state)
        self.camera_stream = None
        if p.camera_rate_hz > 0:
            self._start_camera(p, cal)
        self.create_timer(0.1, self.on_success)
        self._success = None
        self.commands = 0
        self.frames: list = []
        if self.video_path:
            self._video_timer = self.create_timer(1.0 / video_fps, self.on_frame)
            self._video_fps = video_fps

    def _start_lbr_emulator(self, p, JointTrajectory, Float64MultiArray) -> None:
        """The stack's controllers around the twin (legion_core.sim.emulator): both position controllers'
        command topics, each reaching the arm only while that controller is active; the controller manager
        node (`make_controller_manager`); LBRState."""
        from lbr_fri_idl.msg import LBRState  # the emulated copy here, ros2_ws/emulated

        from legion_core.contracts.drivers import FORWARD_POSITION_CONTROLLER as FPC
        from legion_core.contracts.drivers import JOINT_TRAJECTORY_CONTROLLER as JTC
        from legion_core.contracts.drivers import resolve_driver
        from legion_core.sim.emulator import ControllerManager, FriState

        name = self.profile.namespace
        self.emulator = ControllerManager(p.ctrl, int(p.update_rate_hz))
        self.fri = FriState(int(p.fri_session_state), int(p.fri_safety_state))
        # Each controller's command topic, message type and handler: the forward controller takes arrays,
        # the trajectory controller trajectories.
        self._controllers = {
            FPC: (resolve_driver("lbr", name, FPC).command_topic, Float64MultiArray, self.on_array),
            JTC: (resolve_driver("lbr", name, JTC).command_topic, JointTrajectory, self.on_trajectory),
        }
        self._subscribed: set[str] = set()
        # A controller's command subscription exists once it is configured (ros2_control creates it then),
        # and a message counts only while that controller is active: an inactive one drops what it gets.
        self.emulator.on_configured.append(self._subscribe_controller)
        for c in self._controllers:
            if self.emulator.subscribed(c):
                self._subscribe_controller(c)
        from std_msgs.msg import String

        from legion_core.robot.description import shipped_urdf

        # robot_state_publisher's description (transient local): lbr_description's iiwa 7, the twin's arm.
        self.description_pub = self.create_publisher(
            String, self.profile.robot_description_topic, LATCHED_QOS
        )
        self.description_pub.publish(String(data=shipped_urdf("iiwa7", name.rsplit("/", 1)[-1])))
        self._LBRState = LBRState
        self.state_pub = self.create_publisher(LBRState, self.profile.robot_state_topic, 1)
        self.create_timer(1.0 / p.robot_state_rate_hz, self.on_robot_state)

    def _subscribe_controller(self, controller: str) -> None:
        if controller in self._subscribed or controller not in self._controllers:
            return
        topic, msg_type, handler = self._controllers[controller]

        def on_command(msg) -> None:  # an inactive controller drops what it receives, as in ros2_control
            if self.emulator.is_active(controller):
                handler(msg)

        self.create_subscription(msg_type, topic, on_command, COMMAND_QOS)
        self._subscribed.add(controller)

    def on_robot_state(self) -> None:
        m = self._LBRState()
        m.sample_time = 1.0 / self.emulator.update_rate_hz
        m.session_state, m.safety_state = self.fri.session_state, self.fri.safety_state
        m.connection_quality, m.drive_state, m.client_command_mode = 3, 2, 1  # EXCELLENT, ACTIVE, POSITION
        _, q, _ = self.twin.joint_state()
        m.measured_joint_position = [float(v) for v in q]
        m.commanded_joint_position = [
            float(v) for v in (q if self.twin.q_target is None else self.twin.q_target)
        ]
        m.ipo_joint_position = list(m.commanded_joint_position)
        m.tracking_performance = 1.0 if self.fri.session_state == 4 else 0.0
        now = self.get_clock().now().nanoseconds
        m.time_stamp_sec, m.time_stamp_nano_sec = now // 1_000_000_000, now % 1_000_000_000
        self.state_pub.publish(m)

    def make_controller_manager(self):
        """The `controller_manager` node of the emulated stack (None for the plain twin)."""
        if self.emulator is None:
            return None
        from legion_ros.lbr_emulation import controller_manager_node

        return controller_manager_node(self.emulator, self.profile)

    def on_frame(self) -> None:
        # Only the state is kept in the real-time loop; frames are rendered at shutdown.
        self.frames.append(self.twin.snapshot())

    def on_shutdown(self) -> None:
        if self.camera_stream is not None:
            # The renderer's GL context must be released on its own thread before the process exits
            # (tearing it down with the interpreter crashes in the EGL driver).
            self.camera_stream.set()
            with self._camera_wake:
                self._camera_wake.notify()
            self._camera_thread.join(timeout=10.0)
        if self.video_path and self.frames:
            from legion_core.sim.video import write_video

            try:
                write_video(
                    self.twin.render_snapshots(self.frames), self.video_path, fps=int(round(self._video_fps))
                )
                print(f"[twin_node] wrote {self.video_path} ({len(self.frames)} frames)", flush=True)
            except Exception as e:  # noqa: BLE001 - a video problem must not hide the run's result
                print(
                    f"[twin_node] no video: rendering failed ({e}); set MUJOCO_GL=egl or osmesa", flush=True
                )
        self.twin.close()

    def _apply(self, q) -> None:
        if len(q) != 7:
            self.get_logger().warn(f"ignoring joint command with {len(q)} values (need 7)")
            return
        try:
            if self.twin.set_joint_targets(q):
                self.commands += 1
            else:
                self.get_logger().warn(
                    "ignoring joint commands far from the posture after reset; restart the runtime from the "
                    "measured posture (/sim2real_node/reset)",
                    throttle_duration_sec=2.0,
                )
        except ValueError as e:
            self.get_logger().error(f"ignoring joint command: {e}")

    def on_array(self, msg) -> None:
        self._apply(list(msg.data))

    def on_trajectory(self, msg) -> None:
        if not msg.points:
            return
        order = {n: i for i, n in enumerate(msg.joint_names)}
        try:
            q = [msg.points[-1].positions[order[n]] for n in self.driver_joint_names]
        except KeyError:
            self.get_logger().error(
                f"trajectory joint names {list(msg.joint_names)} != {self.driver_joint_names}"
            )
            return
        self._apply(q)

    def on_gripper(self, msg) -> None:
        self.twin.set_gripper_opening(msg.data)

    def on_reset(self, req, resp):
        from legion_core.contracts.tasks import UnknownTaskError

        try:
            self.twin.reset(req.task or self.twin.name, int(req.variation))
            resp.success, resp.message = True, f"reset to {self.twin.name} variation {req.variation}"
            self._success = None
        except (UnknownTaskError, ValueError) as e:
            resp.success, resp.message = False, str(e)
        self.get_logger().info(resp.message)
        return resp

    def on_physics(self) -> None:
        now_wall = time.monotonic()
        self.twin.advance((now_wall - self._wall_last) * self.real_time_factor)
        self._wall_last = now_wall
        _, q, qd = self.twin.joint_state()
        m = self._JointState()
        m.header.stamp = (
            s_to_stamp(self.now_s() + self.stamp_offset_s)
            if self.stamp_offset_s
            else self.get_clock().now().to_msg()
        )
        m.name = self.driver_joint_names
        m.position = [float(v) for v in q]
        m.velocity = [float(v) for v in qd]
        self.js_pub.publish(m)
        f, tau = self.twin.external_wrench()
        w = self._Wrench()
        w.header.stamp, w.header.frame_id = m.header.stamp, self._wrench_frame
        w.wrench.force.x, w.wrench.force.y, w.wrench.force.z = (float(v) for v in f)
        w.wrench.torque.x, w.wrench.torque.y, w.wrench.torque.z = (float(v) for v in tau)
        self.wrench_pub.publish(w)

    def on_camera(self) -> None:
        from legion_msgs.msg import ObjectDetection

        now = self.now_s()
        arr = self._Det()
        arr.header.stamp = self.get_clock().now().to_msg()
        arr.header.frame_id = self.twin.cal.frame_ids.get("camera", "camera")
        for d in self.twin.detections(now):
            od = ObjectDetection()
            od.header.stamp = s_to_stamp(d.stamp)
            od.header.frame_id = arr.header.frame_id
            od.label = d.label
            od.pose.position.x, od.pose.position.y, od.pose.position.z = d.position_m
            o = od.pose.orientation
            o.w, o.x, o.y, o.z = d.quat_wxyz
            od.confidence = float(d.confidence)
            arr.detections.append(od)
        self.det_pub.publish(arr)
        self.on_gripper_state()

    def _start_camera(self, p, cal) -> None:
        """Rendered images of the cell with its tags (legion_core.sim.camera), as a camera driver publishes
        them: the state is copied in the twin's loop, the frame rendered and published on a thread of its
        own (~0.1 s a frame in software GL must not stall the physics)."""
        import threading

        import numpy as np
        from sensor_msgs.msg import CameraInfo, Image

        from legion_core.sim.camera import ImageEffects, SimCamera, camera_tags

        frame_id = cal.frame_ids.get("camera", "camera")
        try:
            effects = ImageEffects(p.camera_exposure_gain, p.camera_blur_sigma_px, p.camera_noise_std_dn,
                                   self.twin.config.seed).make()  # fmt: skip
        except ValueError as e:
            raise NodeStartupError(str(e)) from None
        img_pub = self.create_publisher(Image, p.camera_image_topic, SENSOR_QOS)
        info_pub = self.create_publisher(CameraInfo, p.camera_info_topic, SENSOR_QOS)
        depth_pubs = (
            (self.create_publisher(Image, p.camera_depth_topic, SENSOR_QOS),
             self.create_publisher(CameraInfo, p.camera_depth_info_topic, SENSOR_QOS))
            if p.camera_depth else None
        )  # fmt: skip
        slot: dict = {"state": None}
        wake = threading.Condition()
        self.camera_stream = stop = threading.Event()
        env = self.twin.env.env
        model_xml, T = env.model_name, cal.T_sim_camera

        def render_loop() -> None:
            # The GL context belongs to the thread that makes it: the camera is built here.
            tag_map, placements = camera_tags(p.camera_calibration_tag)
            cam = SimCamera(model_xml, tag_map, T, placements=placements, width=p.camera_width,
                            height=p.camera_height, fovy_deg=p.camera_fovy_deg)  # fmt: skip
            info = CameraInfo(width=cam.width, height=cam.height, distortion_model="plumb_bob")
            info.k = [float(v) for v in cam.camera.K.ravel()]
            info.d = [0.0] * 5
            info.p = [float(v) for v in np.c_[cam.camera.K, np.zeros(3)].ravel()]
            info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
            try:
                while not stop.is_set():
                    with wake:
                        wake.wait_for(lambda: slot["state"] is not None or stop.is_set(), timeout=1.0)
                        item, slot["state"] = slot["state"], None
                    if item is None:
                        continue
                    stamp, state = item
                    cam.set_state(state)
                    rgb = effects(cam.render())
                    img = Image(
                        height=rgb.shape[0], width=rgb.shape[1], encoding="rgb8", step=rgb.shape[1] * 3
                    )
                    img.data = rgb.tobytes()
                    img.header.stamp = info.header.stamp = stamp
                    img.header.frame_id = info.header.frame_id = frame_id
                    info_pub.publish(info)
                    img_pub.publish(img)
                    if depth_pubs is not None:  # the same state, stamp, frame and intrinsics (aligned)
                        mm = cam.render_depth_mm()
                        depth = Image(
                            height=mm.shape[0], width=mm.shape[1], encoding="16UC1", step=mm.shape[1] * 2
                        )
                        depth.data = mm.tobytes()
                        depth.header = img.header
                        depth_pubs[1].publish(info)
                        depth_pubs[0].publish(depth)
            finally:
                cam.close()

        def take() -> None:  # in the twin's loop: a copy of the state, the newest one wins
            now = self.twin.env.env
            if now.model_name != model_xml:  # reset to another world: its camera would need rebuilding
                if not stop.is_set():
                    self.get_logger().warn("camera stopped: the twin was reset to another scene")
                    stop.set()
                return
            with wake:
                slot["state"] = (self.get_clock().now().to_msg(), SimCamera.snapshot(now.model, now.data))
                wake.notify()

        self._camera_thread = threading.Thread(target=render_loop, name="twin_camera", daemon=True)
        self._camera_wake = wake
        self._camera_thread.start()
        self.create_timer(1.0 / p.camera_rate_hz, take)

    def on_gripper_state(self) -> None:
        self.grip_pub.publish(self._Float64(data=self.twin.gripper_opening_m()))

    def on_success(self) -> None:
        s = self.twin.success()
        if s != self._success:
            self.success_pub.publish(self._Bool(data=bool(s)))
            if s:
                self.get_logger().info(f"task {self.twin.name} succeeded at t={self.twin.sim_time:.2f} s")
            self._success = s
        joints = {f"joint {k}": round(v, 5) for k, v in self.twin.object_joints().items()}
        self.publish_diagnostics(DiagnosticLevel.OK, "running", {"task": self.twin.name, "sim_time_s": round(self.twin.sim_time, 3),
                                                "success": s, "commands": self.commands, **joints})  # fmt: skip


def main(args=None) -> int:
    twin: list[TwinNode] = []

    def make_twin() -> TwinNode:
        twin.append(TwinNode())
        return twin[0]

    return spin_nodes([make_twin, lambda: twin[0].make_controller_manager()], args)


if __name__ == "__main__":
    raise SystemExit(main())
