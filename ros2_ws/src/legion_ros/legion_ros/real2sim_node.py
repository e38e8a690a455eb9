"""real2sim_node: joint states + camera detections -> the policy's observation of the active skill, in the
simulator frame, at the control rate, with validity and reason (logic: sim2real.real2sim).

Event-driven for latency: an observation is built when a joint state arrives (decimated to rate_hz), and
stamped with that joint state's stamp, so the chain joint state -> observation -> action -> command runs
without waiting for timers and its latency is measurable at the end (`legion bench runtime`). A slow
timer keeps publishing (invalid) observations with their reason when joint states stop."""

from __future__ import annotations

from array import array

from legion_core.contracts.interface import (
    NODE_REAL2SIM,
    READY_SKILL,
    TOPIC_ACTIVE_SKILL,
    TOPIC_DETECTIONS,
    TOPIC_GRIPPER_STATE,
    TOPIC_OBSERVATION,
    TOPIC_TF_STATIC,
    StatusLevel,
)
from legion_core.ros.common import (
    LATCHED_QOS,
    RELIABLE_QOS,
    SENSOR_QOS,
    LegionNode,
    NodeStartupError,
    s_to_stamp,
    spin_nodes,
    stamp_to_s,
)


class Real2SimNode(LegionNode):
    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_REAL2SIM, **kwargs)
        from legion_msgs.msg import ObjectDetectionArray, Observation
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64, String

        from legion_core.base.params import pick
        from legion_core.contracts.drivers import DriverParams, DriverProfileError
        from legion_core.ros.robot_description import arm_for_node
        from sim2real.calibration import CalibrationError, load_calibration, sim_calibration
        from sim2real.decimation import StampGrid
        from sim2real.node_params import (
            REAL2SIM_CONFIG_PARAMETERS,
            REAL2SIM_DRIVER_PARAMETERS,
            Real2SimNodeParams,
            parse_detection3d_labels,
            parse_pose_topics,
            real2sim_node_parameters,
        )
        from sim2real.real2sim import Real2Sim, Real2SimConfig

        values = self.declare_parameters_from(real2sim_node_parameters())
        p = Real2SimNodeParams(**pick(Real2SimNodeParams, values))
        self.log_parameters()
        cal_path, layout, bundle, trusted_keys = p.calibration, p.layout, p.bundle, p.trusted_keys
        try:
            self.grid = StampGrid(p.rate_hz)
        except ValueError as e:
            raise NodeStartupError(str(e)) from None
        box = {}
        if bundle:
            from legion_core.contracts.bundle import load
            from legion_core.contracts.bundle_schema import BundleError

            try:
                ws = load(bundle, trusted_keys=trusted_keys or None).action.workspace_box_sim_m
            except BundleError as e:
                raise NodeStartupError(f"invalid bundle {bundle}: {e}") from None
            box = dict(skill_box_low_m=ws.low, skill_box_high_m=ws.high)
        try:
            cal = load_calibration(cal_path) if cal_path else sim_calibration()
        except (CalibrationError, OSError) as e:
            raise NodeStartupError(f"calibration: {e}") from None
        self.cal = cal
        try:
            driver_params = DriverParams(**pick(DriverParams, values, REAL2SIM_DRIVER_PARAMETERS))
            driver = driver_params.profile()
        except DriverProfileError as e:
            raise NodeStartupError(str(e)) from None
        arm = arm_for_node(self, cal, driver, driver_params.robot_description_timeout_s)
        self.cfg = Real2SimConfig(
            **pick(Real2SimConfig, values, REAL2SIM_CONFIG_PARAMETERS),
            skill_box_margin_m=p.workspace_margin_m,
            **box,
        )
        self._make = lambda spec: Real2Sim(cal, spec, layout, self.cfg, arm)
        self.r2s = None
        self.layout = layout
        self._Observation = Observation
        self.pub = self.handoff_publisher(Observation, TOPIC_OBSERVATION, RELIABLE_QOS)
        # The inputs a control step starts from are served by the process's control thread
        # (legion_core.ros.control).
        self.control_subscription(JointState, driver.joint_states_topic, self.on_joint_state, SENSOR_QOS)
        self._publish_static_transforms(cal)
        self.control_subscription(ObjectDetectionArray, TOPIC_DETECTIONS, self.on_detections, SENSOR_QOS)
        try:
            pose_topics = parse_pose_topics(p.pose_topics)
        except ValueError as e:
            raise NodeStartupError(str(e)) from None
        if pose_topics:
            from geometry_msgs.msg import PoseStamped

            for label, topic in pose_topics.items():
                # Served by the control loop like /detections: object inputs start a control step.
                self.control_subscription(
                    PoseStamped, topic, lambda m, label=label: self.on_pose(label, m), SENSOR_QOS
                )
            self.get_logger().info(f"object poses from {pose_topics}")
        try:
            d3_labels = parse_detection3d_labels(p.detection3d_labels)
        except ValueError as e:
            raise NodeStartupError(str(e)) from None
        if p.detection3d_topic:
            self._subscribe_detection3d(p.detection3d_topic, d3_labels)
        elif d3_labels:
            raise NodeStartupError(
                "detection3d_labels is set but detection3d_topic is '': name the vision_msgs/Detection3DArray "
                "topic in detection3d_topic, or clear detection3d_labels"
            )
        self.create_subscription(Float64, TOPIC_GRIPPER_STATE, self.on_gripper, SENSOR_QOS)
        self.create_subscription(String, TOPIC_ACTIVE_SKILL, self.on_skill, LATCHED_QOS)
        self._pending_js = None
        self._pending_grip = None
        if p.skill:
            self.on_skill(String(data=p.skill))
        self._last_pub = -1e18
        self.create_timer(0.1, self.on_tick)
        self._last_reason = ""
        self.start_heartbeat(p.heartbeat_period_s)

    def _subscribe_detection3d(self, topic: str, labels: dict[str, str]) -> None:
        """A lab's vision_msgs/Detection3DArray (`detection3d_topic`), imported only when asked for: a robot
        PC without vision_msgs runs the other inputs."""
        if not topic.startswith("/"):
            raise NodeStartupError(
                f"detection3d_topic {topic!r} must be an absolute topic name, e.g. /perception/detections_3d"
            )
        try:
            from vision_msgs.msg import Detection3DArray
        except ImportError:
            raise NodeStartupError(
                f"detection3d_topic is {topic!r} but vision_msgs is not installed: install "
                "ros-$ROS_DISTRO-vision-msgs (and source its setup), or set detection3d_topic:=''"
            ) from None
        self._d3_labels = labels
        # Served by the control loop like /detections: object inputs start a control step.
        self.control_subscription(Detection3DArray, topic, self.on_detection3d, SENSOR_QOS)
        self.get_logger().info(f"object detections (vision_msgs) from {topic}, class_id -> label {labels}")

    def _publish_static_transforms(self, cal) -> None:
        """The calibrated frames on /tf_static (sim2real.calibration.Calibration.static_transforms), once,
        latched like tf2_ros's static broadcaster; skipped where tf2_msgs is not installed."""
        try:
            from tf2_msgs.msg import TFMessage
        except ImportError:
            self.get_logger().info(
                "tf2_msgs not installed: the calibrated frames are not published on /tf_static"
            )
            return
        from geometry_msgs.msg import TransformStamped

        msg = TFMessage()
        stamp = self.get_clock().now().to_msg()
        for parent, child, p, q in cal.static_transforms():
            t = TransformStamped()
            t.header.stamp, t.header.frame_id, t.child_frame_id = stamp, parent, child
            t.transform.translation.x, t.transform.translation.y, t.transform.translation.z = (
                float(v) for v in p
            )
            r = t.transform.rotation
            r.w, r.x, r.y, r.z = (float(v) for v in q)
            msg.transforms.append(t)
        self._tf_pub = self.create_publisher(TFMessage, TOPIC_TF_STATIC, LATCHED_QOS)
        self._tf_pub.publish(msg)

    def on_skill(self, msg) -> None:
        from legion_core.contracts.tasks import UnknownTaskError

        if not msg.data or msg.data == READY_SKILL:  # the ready move is sim2real's alone: nothing to observe
            self.r2s = None
            return
        try:
            if self.r2s is None:
                self.r2s = self._make(msg.data)
            else:
                self.r2s.reset_skill(msg.data)
        except (UnknownTaskError, ValueError) as e:
            self.r2s = None
            self.get_logger().error(f"cannot observe skill {msg.data!r}: {e}")
            self.publish_status(StatusLevel.ERROR, f"cannot observe skill {msg.data!r}: {e}")
            return
        if self._pending_js is not None:
            self.r2s.set_joint_state(*self._pending_js)
        self.get_logger().info(f"observing for skill {msg.data}")

    def on_joint_state(self, msg) -> None:
        js = (list(msg.name), list(msg.position), stamp_to_s(msg.header.stamp))
        self._pending_js = js
        if self.r2s is not None:
            self.r2s.set_joint_state(*js)
            now = self.now_s()
            # One observation per rate_hz slot of the joint states' own stamps: a replay of the same bag
            # picks the same samples (sim2real.decimation).
            if self.grid.accept(js[2], now):
                self._publish(now)

    def on_gripper(self, msg) -> None:
        if self.r2s is not None:
            self.r2s.set_gripper(msg.data, self.now_s())

    def on_detections(self, msg) -> None:
        if self.r2s is None:
            return
        from sim2real.real2sim import Detection

        dets = []
        for d in msg.detections:
            p, q = d.pose.position, d.pose.orientation
            dets.append(
                Detection(
                    d.label,
                    (p.x, p.y, p.z),
                    (q.w, q.x, q.y, q.z),
                    stamp_to_s(d.header.stamp),
                    float(d.confidence),
                    d.header.frame_id or msg.header.frame_id,  # a calibrated frame; '' = the camera's
                )
            )
        self._take(dets)

    def on_pose(self, label: str, msg) -> None:
        """One object's geometry_msgs/PoseStamped from a lab's perception (`pose_topics`): a detection."""
        if self.r2s is None:
            return
        from sim2real.real2sim import Detection

        p, q = msg.pose.position, msg.pose.orientation
        self._take([Detection(label, (p.x, p.y, p.z), (q.w, q.x, q.y, q.z), stamp_to_s(msg.header.stamp), 1.0,
                              msg.header.frame_id)])  # fmt: skip

    def on_detection3d(self, msg) -> None:
        """vision_msgs/Detection3DArray (`detection3d_topic`): each detection's highest-score hypothesis is a
        detection (its class_id through detection3d_labels, its score the confidence); a detection's empty
        header stamp or frame_id is the array's."""
        if self.r2s is None:
            return
        from sim2real.real2sim import Detection

        dets = []
        for d in msg.detections:
            if not d.results:
                continue  # no hypothesis: no label to track
            h = max(d.results, key=lambda r: r.hypothesis.score)
            p, q = h.pose.pose.position, h.pose.pose.orientation
            stamp = d.header.stamp if d.header.stamp.sec or d.header.stamp.nanosec else msg.header.stamp
            class_id = h.hypothesis.class_id
            dets.append(
                Detection(
                    self._d3_labels.get(class_id, class_id),
                    (p.x, p.y, p.z),
                    (q.w, q.x, q.y, q.z),
                    stamp_to_s(stamp),
                    float(h.hypothesis.score),
                    d.header.frame_id or msg.header.frame_id,  # a calibrated frame; '' = the camera's
                )
            )
        self._take(dets)

    def _take(self, dets) -> None:
        _, rejected = self.r2s.add_detections(dets)
        if rejected:
            # A rejected detection invalidates its object at once: say so now (sim2real holds on the first
            # invalid observation) instead of at the next joint state's slot.
            self._publish(self.now_s())

    def on_tick(self) -> None:
        """Fallback when no joint states arrive: keep saying why the observation is invalid."""
        now = self.now_s()
        if self.r2s is not None and now - self._last_pub > 0.1:
            self._publish(now)

    def _publish(self, now: float) -> None:
        self._last_pub = now
        ob = self.r2s.observe(now)
        m = self._Observation()
        t_joints = ob.stamps.get("joints", float("nan"))
        if t_joints == t_joints:  # not NaN: the joint state that triggered this control step
            m.header.stamp = s_to_stamp(t_joints)
        m.header.frame_id = "sim_world"
        m.skill = ob.skill
        m.layout = ob.layout
        m.valid = bool(ob.valid)
        m.reason = ob.reason
        # array('d') is taken as is by the float64[] setter (a list is checked element by element: 20 vs 8 us).
        m.values = array("d", ob.vector.astype(float).tobytes()) if ob.vector is not None else array("d")
        self.publish_handoff(self.pub, m)
        if ob.reason != self._last_reason:
            (self.get_logger().info if ob.valid else self.get_logger().warn)(f"observation: {ob.reason}")
            self.publish_status(
                StatusLevel.OK if ob.valid else StatusLevel.WARN, f"observation: {ob.reason}", ob.skill
            )
            self._last_reason = ob.reason


def main(args=None) -> int:
    return spin_nodes([Real2SimNode], args)


if __name__ == "__main__":
    raise SystemExit(main())
