"""real2sim_node: joint states + camera detections -> the policy's observation of the active skill, in the
simulator frame, at the control rate, with validity and reason (logic: sim2real.real2sim).

Event-driven for latency: an observation is built when a joint state arrives (decimated to rate_hz), and
stamped with that joint state's stamp, so the chain joint state -> observation -> action -> command runs
without waiting for timers and its latency is measurable at the end (`legion bench runtime`). A slow
timer keeps publishing (invalid) observations with their reason when joint states stop."""

from __future__ import annotations

from legion_core.ros.common import (
    LATCHED_QOS,
    RELIABLE_QOS,
    SENSOR_QOS,
    TOPIC_ACTIVE_SKILL,
    TOPIC_DETECTIONS,
    TOPIC_GRIPPER_STATE,
    TOPIC_JOINT_STATES,
    TOPIC_OBSERVATION,
    LegionNode,
    NodeStartupError,
    s_to_stamp,
    spin_nodes,
    stamp_to_s,
)


class Real2SimNode(LegionNode):
    def __init__(self, **kwargs) -> None:
        super().__init__("real2sim_node", **kwargs)
        from legion_msgs.msg import ObjectDetectionArray, Observation
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64, String

        from sim2real.calibration import CalibrationError, load_calibration, sim_calibration
        from sim2real.real2sim import Real2Sim, Real2SimConfig

        cal_path = self.param("calibration", "", "calibration YAML ('' = the simulated embodiment's)")
        layout = self.param("layout", "legion12", "observation layout of the bundle")
        rate = self.param("rate_hz", 50.0, "observation publishing rate [Hz]")
        skill = self.param("skill", "", "skill active at start ('' = wait for /legion/active_skill)")
        dfilter = self.param(
            "detection_filter", "latest", "latest | median of the last median_window detections"
        )
        min_conf = self.param("min_confidence", 0.5, "detections below this confidence are dropped")
        max_joint_age = self.param(
            "max_joint_age_s", 0.1, "joint states older than this make the observation invalid [s]"
        )
        max_obj_age = self.param("max_object_age_s", 0.5, "object detections older than this are stale [s]")
        bundle = self.param(
            "bundle", "", "bundle directory: detections outside its workspace box (+ margin) are refused"
        )
        margin = self.param(
            "workspace_margin_m", 0.10, "detections may lie this far outside the workspace [m]"
        )
        trusted_keys = self.param(
            "trusted_keys", "", "public keys a bundle must be signed by ('' = no check)"
        )
        heartbeat = self.param(
            "heartbeat_period_s", 0.02, "liveness heartbeat period, watched by sim2real [s]"
        )
        self.log_parameters()
        box = {}
        if bundle:
            from legion_core.contracts.bundle import BundleError, load

            try:
                ws = load(bundle, trusted_keys=trusted_keys or None).contract["action"]["workspace_box_sim_m"]
            except BundleError as e:
                raise NodeStartupError(f"invalid bundle {bundle}: {e}") from None
            box = dict(skill_box_low_m=tuple(ws["low"]), skill_box_high_m=tuple(ws["high"]))
        try:
            cal = load_calibration(cal_path) if cal_path else sim_calibration()
        except (CalibrationError, OSError) as e:
            raise NodeStartupError(f"calibration: {e}") from None
        self.cal = cal
        self.cfg = Real2SimConfig(
            detection_filter=dfilter,
            min_confidence=min_conf,
            max_joint_age_s=max_joint_age,
            max_object_age_s=max_obj_age,
            skill_box_margin_m=margin,
            **box,
        )
        self._make = lambda spec: Real2Sim(cal, spec, layout, self.cfg)
        self.r2s = None
        self.layout = layout
        self._Observation = Observation
        self.pub = self.handoff_publisher(Observation, TOPIC_OBSERVATION, RELIABLE_QOS)
        self.create_subscription(JointState, TOPIC_JOINT_STATES, self.on_joint_state, SENSOR_QOS)
        self.create_subscription(ObjectDetectionArray, TOPIC_DETECTIONS, self.on_detections, SENSOR_QOS)
        self.create_subscription(Float64, TOPIC_GRIPPER_STATE, self.on_gripper, SENSOR_QOS)
        self.create_subscription(String, TOPIC_ACTIVE_SKILL, self.on_skill, LATCHED_QOS)
        self._pending_js = None
        self._pending_grip = None
        if skill:
            self.on_skill(String(data=skill))
        self._period = 1.0 / rate
        self._last_pub = -1e18
        self._last_slot = None
        self.create_timer(0.1, self.on_tick)
        self._last_reason = ""
        self.start_heartbeat(heartbeat)

    def on_skill(self, msg) -> None:
        from legion_core.contracts.tasks import UnknownTaskError

        if not msg.data:
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
            self.publish_status(4, f"cannot observe skill {msg.data!r}: {e}")
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
            # Decimate on the joint states' own stamps, on a fixed grid (one observation per rate_hz slot of
            # stamp time): a replay of the same bag picks the same samples, whatever the delivery timing, so
            # the same inputs give the same observations (issue 8's determinism judgement). Unstamped joint
            # states fall back to the node clock.
            t = js[2] if js[2] > 0 else now
            slot = int(t // self._period)
            if slot != self._last_slot:
                self._last_slot = slot
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
                )
            )
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
        m.values = [float(v) for v in ob.vector] if ob.vector is not None else []
        self.publish_handoff(self.pub, m)
        if ob.reason != self._last_reason:
            (self.get_logger().info if ob.valid else self.get_logger().warn)(f"observation: {ob.reason}")
            self.publish_status(0 if ob.valid else 1, f"observation: {ob.reason}", ob.skill)
            self._last_reason = ob.reason


def main(args=None) -> int:
    return spin_nodes([Real2SimNode], args)


if __name__ == "__main__":
    raise SystemExit(main())
