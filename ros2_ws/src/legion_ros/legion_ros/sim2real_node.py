"""sim2real_node: policy actions -> safe joint position commands at the command rate.

Owns the safety layer (sim2real.supervisor: e-stop latch, joint-state and action watchdogs, hold; and
sim2real.mapper: workspace box, IK, joint position/velocity limits, Cartesian speed). Publishes the command
as trajectory_msgs/JointTrajectory (joint_trajectory_controller) or std_msgs/Float64MultiArray (forward
position controller), the gripper opening, and a CommandReport with what was requested and what was sent.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from array import array

from legion_core.contracts.interface import (
    NODE_SIM2REAL,
    SERVICE_ESTOP,
    SERVICE_READY_TARGET,
    SERVICE_REARM,
    SERVICE_RESET,
    TOPIC_ACTION,
    TOPIC_ACTIVE_SKILL,
    TOPIC_COMMAND_REPORT,
    TOPIC_ESTOP,
    TOPIC_GRIPPER_COMMAND,
    TOPIC_HEARTBEAT,
    TOPIC_OBSERVATION,
    TOPIC_SAFETY_STATE,
    DiagnosticLevel,
    StatusLevel,
    reason_kind,
)
from legion_core.ros.common import (
    COMMAND_QOS,
    HEARTBEAT_QOS,
    IN_PROCESS_NODES,
    LATCHED_QOS,
    RELIABLE_QOS,
    SENSOR_QOS,
    LegionNode,
    NodeStartupError,
    s_to_stamp,
    spin_nodes,
    stamp_to_s,
)
from sim2real.mapper import step_limited


class Sim2RealNode(LegionNode):
    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_SIM2REAL, **kwargs)
        import numpy as np
        from legion_msgs.msg import CommandReport, Heartbeat, Observation, PolicyAction, SafetyState
        from legion_msgs.srv import ReadyTarget
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Bool, Float64, Float64MultiArray, String
        from std_srvs.srv import Trigger
        from trajectory_msgs.msg import JointTrajectory

        from legion_core.base.params import pick
        from legion_core.contracts.drivers import TRAJECTORY, DriverParams, DriverProfileError
        from legion_core.ros.driver_monitor import DriverMonitor
        from legion_core.ros.robot_description import arm_for_node
        from sim2real.calibration import CalibrationError, load_calibration, sim_calibration
        from sim2real.control_stats import ControlStats
        from sim2real.mapper import MapperConfig, Sim2RealMapper
        from sim2real.node_params import (
            MAPPER_CONFIG_PARAMETERS,
            Sim2RealNodeParams,
            sim2real_node_parameters,
        )
        from sim2real.preflight import PreflightConfig
        from sim2real.supervisor import Supervisor, SupervisorConfig

        self._np = np
        values = self.declare_parameters_from(sim2real_node_parameters())
        p = Sim2RealNodeParams(**pick(Sim2RealNodeParams, values))
        cal_path, bundle, trusted_keys = p.calibration, p.bundle, p.trusted_keys
        self.latency_log = p.latency_log
        self.log_parameters()
        try:
            driver_params = DriverParams(**pick(DriverParams, values))
            self.profile = driver_params.profile()
        except DriverProfileError as e:
            raise NodeStartupError(str(e)) from None
        self.interface = self.profile.command_interface
        command_rate_hz = self.profile.command_rate_hz
        try:
            cal = load_calibration(cal_path) if cal_path else sim_calibration()
        except (CalibrationError, OSError) as e:
            raise NodeStartupError(f"calibration: {e}") from None
        arm = arm_for_node(self, cal, self.profile, driver_params.robot_description_timeout_s)
        motion = pick(MapperConfig, values, MAPPER_CONFIG_PARAMETERS)
        mcfg = dict(command_period_s=1.0 / command_rate_hz, **motion)
        if bundle:
            from legion_core.contracts.bundle import load
            from legion_core.contracts.bundle_schema import BundleError

            try:
                loaded = load(bundle, trusted_keys=trusted_keys or None)
            except BundleError as e:
                raise NodeStartupError(f"invalid bundle {bundle}: {e}") from None
            act = loaded.action
            if loaded.scene:
                # The ready move ends where the bundle's chains start: the centre of its scene's hand-start box.
                from legion_core.contracts.scenes import SCENES

                sc = SCENES[loaded.scene]
                mcfg["ready_hand_pos_sim_m"] = tuple(
                    0.5 * (a + b) for a, b in zip(sc.hand_start_low_m, sc.hand_start_high_m, strict=True)
                )
            mcfg.update(
                action_scale_m=act.delta_xyz_scale_m_per_step,
                workspace_low_m=act.workspace_box_sim_m.low,
                workspace_high_m=act.workspace_box_sim_m.high,
            )
        try:
            mapper = Sim2RealMapper(cal, MapperConfig(**mcfg), arm)
            self.sup = Supervisor(mapper, SupervisorConfig(**pick(SupervisorConfig, values)))
            self.sup.contact_limits = dict(cal.contact_limits)  # per-skill contact guard bounds
        except ValueError as e:
            raise NodeStartupError(str(e)) from None
        self.joint_names = list(mapper.robot_joint_names)
        self._msgs = dict(JointTrajectory=JointTrajectory, Float64MultiArray=Float64MultiArray, Float64=Float64,
                          CommandReport=CommandReport, SafetyState=SafetyState)  # fmt: skip
        cmd_type = JointTrajectory if self.interface == TRAJECTORY else Float64MultiArray
        self.cmd_pub = self.create_publisher(cmd_type, self.profile.command_topic, COMMAND_QOS)
        self.grip_pub = self.create_publisher(Float64, TOPIC_GRIPPER_COMMAND, COMMAND_QOS)
        self.report_pub = self.create_publisher(CommandReport, TOPIC_COMMAND_REPORT, RELIABLE_QOS)
        # The control path's inputs are served by the process's control thread (legion_core.ros.control).
        self.control_subscription(
            JointState, self.profile.joint_states_topic, self.on_joint_state, SENSOR_QOS
        )
        self.handoff_subscription(PolicyAction, TOPIC_ACTION, self.on_action, RELIABLE_QOS)
        # The e-stop is durable: a transient-local subscription gets an e-stop latched before this node
        # started (from a transient-local publisher: `ros2 topic pub --once --qos-durability transient_local
        # /legion/estop std_msgs/msg/Bool "{data: true}"`); a volatile one matches every other publisher (a
        # transient-local subscription would not match a volatile publisher at all).
        try:  # Jazzy and newer; Humble has the same class in rclpy.qos_event
            from rclpy.event_handler import SubscriptionEventCallbacks
        except ImportError:  # pragma: no cover - Humble
            from rclpy.qos_event import SubscriptionEventCallbacks
        # A volatile e-stop publisher is (correctly) incompatible with the transient-local subscription;
        # rclpy's default handler would warn "incompatible QoS ... no messages will be received", which an
        # operator would read as "my e-stop does not work". The volatile subscription receives it.
        quiet = SubscriptionEventCallbacks(incompatible_qos=lambda _info: None)
        self.control_subscription(Bool, TOPIC_ESTOP, self.on_estop, LATCHED_QOS, event_callbacks=quiet)
        self.control_subscription(Bool, TOPIC_ESTOP, self.on_estop, RELIABLE_QOS)
        if p.hw_estop_topic:
            self.control_subscription(Bool, p.hw_estop_topic, self.on_hw_estop, RELIABLE_QOS)
        self.create_subscription(String, TOPIC_ACTIVE_SKILL, self.on_skill, LATCHED_QOS)
        if self.profile.wrench_topic:
            # Contact guard input: the driver's estimated external wrench, served like the joint states.
            from geometry_msgs.msg import WrenchStamped

            self.control_subscription(WrenchStamped, self.profile.wrench_topic, self.on_wrench, SENSOR_QOS)
        self.control_subscription(Heartbeat, TOPIC_HEARTBEAT, self.on_heartbeat, HEARTBEAT_QOS)
        self.handoff_subscription(Observation, TOPIC_OBSERVATION, self.on_observation, RELIABLE_QOS)
        self.safety_pub = self.create_publisher(SafetyState, TOPIC_SAFETY_STATE, LATCHED_QOS)
        self._safety_key = None
        self.create_service(Trigger, SERVICE_ESTOP, self.on_estop_service)
        self.create_service(Trigger, SERVICE_REARM, self.on_rearm)
        self.create_service(Trigger, SERVICE_RESET, self.on_reset)
        # The ready move's target posture (a calibration pose): a service because the caller must learn of a
        # refusal and its reason before it waits for the arm (legion_core/contracts/interface.py).
        self.create_service(ReadyTarget, SERVICE_READY_TARGET, self.on_ready_target)
        self.period = 1.0 / command_rate_hz
        # The command stream: one command per period on a deadline grid, from its own thread, interpolated
        # between policy targets by the mapper (legion_core.ros.control, the stream thread).
        self.command_stream(self.period, self.on_command_cycle, takes_lock=True)
        # What the stream needs when a control step holds this node (mapping a new command, IK): the last
        # command sent [rad, s] and the segment it was on (None: holding), both written under _publish_lock.
        self._publish_lock = threading.Lock()
        self._last_sent: tuple | None = None
        self._segment = None
        self._sent_on_segment = False
        # Missed and late command cycles, stamp -> command latency, the latency log (sim2real.control_stats).
        self.stats = ControlStats(keep_log=bool(self.latency_log))
        self.create_timer(1.0, self.on_diagnostics)
        self._last_level, self._last_reason = -1, ""
        # Pre-flight, before the first motion and continuously after it (sim2real.preflight): nothing is
        # commanded until the driver's checks pass; a failure holds and says the fix.
        self.monitor = DriverMonitor(
            self,
            self.profile,
            tuple(mapper.robot_joint_names),
            PreflightConfig(**pick(PreflightConfig, values)),
        )
        self.preflight = None
        self.sup.set_driver_fault("checking the driver (pre-flight)", severe=False)
        self.create_timer(0.2, self.on_preflight)
        self.get_logger().info(
            f"driver {self.profile.driver}: joint states {self.profile.joint_states_topic}, commands "
            f"{self.profile.command_topic} ({self.profile.command_type}) at {command_rate_hz:g} Hz"
            + (f" through {self.profile.controller}" if self.profile.controller else "")
        )

    def on_joint_state(self, msg) -> None:
        now = self.now_s()
        names = msg.name
        self.monitor.on_joint_state(names, now)
        if self.sup.on_joint_state(names, list(msg.position), stamp_to_s(msg.header.stamp), now):
            self.on_tick()  # hold at the first bad joint state, not at the next timer tick

    def on_preflight(self) -> None:
        """The driver checks (sim2real.preflight) at 5 Hz: the first failure is the supervisor's driver
        interlock, with its fix; only a driver that stops streaming keeps the skill (the joint-state watchdog
        already holds it, and it resumes like any stale input), every other failure clears it."""
        now = self.now_s()
        self.monitor.poll(now)
        res = self.preflight = self.monitor.result(now)
        reason = res.reason()
        if not reason and not self.monitor.first_round_done(now):
            reason = f"checking the driver (pre-flight): waiting for {self.profile.controller_manager} and the robot state"
        if reason == self.sup.driver_fault:
            return
        changed = reason_kind(reason) != reason_kind(self.sup.driver_fault)
        # Only a driver that stops streaming is mild; every other failure is a fault of the setup.
        self.sup.set_driver_fault(reason, severe=any(c.name != "joint_states" for c in res.failures))
        if not changed:
            return
        if reason:
            self.get_logger().warn(reason)
        else:
            passed = ", ".join(c.name for c in res.checks if c.status == "pass")
            self.get_logger().info(f"driver ready ({passed} pass)")
        self.on_tick()

    def on_wrench(self, msg) -> None:
        f, t = msg.wrench.force, msg.wrench.torque
        force = math.sqrt(f.x * f.x + f.y * f.y + f.z * f.z)
        torque = math.sqrt(t.x * t.x + t.y * t.y + t.z * t.z)
        if self.sup.on_wrench(force, torque, self.now_s()):
            self.on_tick()  # the hold goes out at the first wrench over the bound

    def on_observation(self, msg) -> None:
        if self.sup.on_observation(msg.valid, msg.reason):
            self.on_tick()  # hold at the first invalid observation (implausible detection, stale input)

    def on_heartbeat(self, msg) -> None:
        if msg.node in IN_PROCESS_NODES:
            return  # same process: it cannot die alone, and its lateness is this process's stall
        note = self.sup.on_heartbeat(
            msg.node, msg.period_s, msg.sequence, self.now_s(), stamp_to_s(msg.header.stamp)
        )
        if note:
            self.get_logger().info(note)

    def on_action(self, msg) -> None:
        now = self.now_s()
        self.sup.on_action(list(msg.action), msg.sequence, stamp_to_s(msg.header.stamp), now)
        # Event-driven: if the arm is ready for the next step, command it now instead of at the next tick
        # (the 100 Hz stream continues regardless).
        if self.sup.wants_action(now):
            self.on_tick()

    def on_skill(self, msg) -> None:
        ok, message = self.sup.set_active_skill(msg.data)
        if not ok:
            self.get_logger().warn(message)
            self.publish_status(
                StatusLevel.ESTOP if self.sup.estop_reason else StatusLevel.HOLD, f"refused: {message}"
            )
        self._publish_safety_state(force=True)

    def _latch(self, reason: str) -> None:
        if self.sup.estop(reason):
            self.get_logger().error(
                f"E-STOP latched ({reason}): holding position; call ~/rearm, then a new command"
            )
        self.on_tick()  # the hold goes out now, not at the next timer tick

    def on_estop(self, msg) -> None:
        if msg.data:
            self._latch("e-stop topic")

    def on_hw_estop(self, msg) -> None:
        if self.sup.on_hw_estop(bool(msg.data), self.now_s()):
            self._latch("hardware e-stop input")

    def on_estop_service(self, _req, resp):
        self._latch("e-stop service")
        resp.success, resp.message = True, f"e-stop latched ({self.sup.estop_reason})"
        return resp

    def on_rearm(self, _req, resp):
        resp.success, resp.message = self.sup.rearm(self.now_s())
        self.get_logger().info(f"rearm: {resp.message}")
        self.on_tick()
        return resp

    def on_reset(self, _req, resp):
        resp.success, resp.message = self.sup.reset_to_measured(self.now_s())
        self.get_logger().info(f"reset: {resp.message}")
        return resp

    def on_ready_target(self, req, resp):
        """A target posture for the ready move (Supervisor.set_ready_target: the checks and the planning);
        a refusal goes back to the caller, to the log and on /legion/status with its reason."""
        ok, message = self.sup.set_ready_target(list(req.joint_names), list(req.positions), self.now_s())
        resp.accepted, resp.message = ok, message
        resp.duration_s = float(self.sup.ready.duration_s) if ok and self.sup.ready is not None else 0.0
        if ok:
            self.get_logger().info(message)
            self.on_tick()  # the move starts now
        else:
            self.get_logger().warn(message)
            self.publish_status(
                StatusLevel.ESTOP if self.sup.estop_reason else StatusLevel.WARN, f"refused: {message}"
            )
        self._publish_safety_state(force=True)
        return resp

    def _publish_safety_state(
        self, level: int | None = None, reason: str | None = None, force: bool = False
    ) -> None:
        """SafetyState on every change of what the sequencer and the operator act on, and at 1 Hz."""
        sup = self.sup
        now = self.now_s()
        silent, dead = sup.silent_nodes(now), sup.dead_nodes()
        level = self._last_level if level is None else level
        reason = self._last_reason if reason is None else reason
        key = (sup.estop_reason, tuple(silent), tuple(dead), level, sup.active_skill, sup.skill_cleared_by,
               sup.driver_fault if sup.driver_fault_severe else "", sup.ready_state)  # fmt: skip
        if key == self._safety_key and not force:
            return
        self._safety_key = key
        m = self._msgs["SafetyState"]()
        m.header.stamp = self.get_clock().now().to_msg()
        m.estop_latched = bool(sup.estop_reason)
        m.estop_reason = sup.estop_reason
        m.silent_nodes, m.dead_nodes = silent, dead
        m.level = max(StatusLevel.OK, int(level))
        m.reason = reason or "starting"
        m.active_skill = sup.active_skill or ""
        m.skill_cleared_by = sup.skill_cleared_by if not sup.active_skill else ""
        m.driver_fault = sup.driver_fault if sup.driver_fault_severe else ""
        m.ready_move = sup.ready_state
        err = sup.tool_orientation_error_rad()  # one FK for both fields
        if err is not None:
            m.tool_orientation_error_rad, m.ready_needed = err, sup.ready_needed(err)
        self.safety_pub.publish(m)

    def on_command_cycle(self, slot_ns: int, now_ns: int, skipped: int) -> None:
        """One cycle of the command stream: `skipped` slots before this one passed without a command.
        Normally a full tick of the supervisor. While a control step holds this node (a new command being
        mapped, IK: 1-2.5 ms of Python on the dev VM, longer than a 500 Hz period), the cycle instead sends
        the current segment's point for now, limited to one period's step from the last command sent, or
        nothing while holding (a missed cycle); the control step's own tick follows at once
        (docs/decisions/control-path.md)."""
        late_s = (now_ns - slot_ns) * 1e-9
        # Wait up to half a period for the lock: a short callback (a joint state, 50 us) ends well within it,
        # and only a long control step leaves the cycle to follow the segment.
        if self.callback_lock.acquire(timeout=0.5 * self.period):
            try:
                self.stats.on_cycle(self.now_s(), late_s, skipped)
                self.on_tick()
            finally:
                self.callback_lock.release()
            return
        now = self.now_s()
        sent = self._publish_command(None, now, keep_segment=True) is not None
        # A cycle that sent nothing (holding, or nothing sent yet) is a missed one.
        self.stats.on_cycle(now, late_s, skipped + (not sent), on_segment=sent)

    def on_tick(self) -> None:
        now = self.now_s()
        tk = self.sup.tick(now)
        if tk.level != self._last_level or (
            tk.level and reason_kind(tk.reason) != reason_kind(self._last_reason)
        ):
            log = self.get_logger().info if tk.level == StatusLevel.OK else self.get_logger().warn
            log(tk.reason)
            self.publish_status(tk.level, tk.reason)
            self._last_level, self._last_reason = tk.level, tk.reason
        self._publish_safety_state(tk.level, tk.reason)
        if tk.q_cmd is None:
            return
        sent = self._publish_command(tk.q_cmd, now)
        if sent is not None and sent is not tk.q_cmd:
            # What went out (limited against a command the stream sent during the control step).
            self.sup.q_sent = sent
            tk = dataclasses.replace(tk, q_cmd=sent)
        if tk.new_command is not None and tk.source_stamp == tk.source_stamp:
            # Control latency as the robot sees it: sensor stamp -> this new policy step's command sent.
            self.stats.on_new_step(self.now_s(), tk.source_stamp)
        if tk.new_command is not None or tk.level:
            self._publish_report(tk)
        if tk.gripper_m is not None:
            self.grip_pub.publish(self._msgs["Float64"](data=float(tk.gripper_m)))

    def _publish_command(self, q, t_cmd: float, keep_segment: bool = False):
        """Publish joint command `q` computed for control time `t_cmd` [s] (the trajectory interface's header
        stamp: the speed limit holds between the stamps of consecutive commands) and return what was sent
        (None: nothing). `q` None: the stream's cycle during a control step, the current segment's point for
        `t_cmd` limited to one period's step from the last command sent (sim2real.mapper.step_limited);
        nothing while holding (the driver keeps the hold; the cycle counts as missed). The first full tick
        after such a command is limited against it as well; every other full tick is the supervisor's own
        command, unchanged (a reset to the measured posture still goes out at once). The segment the stream
        may follow is updated under the same lock, so no segment point goes out after a hold."""
        np = self._np
        with self._publish_lock:
            last = self._last_sent
            if q is None:
                if last is None or self._segment is None:
                    return None
                q = step_limited(
                    self._segment.at(t_cmd), last[0], t_cmd, last[1], self.sup.dq_max_per_period, self.period
                )
                self._sent_on_segment = True
            else:
                q = np.asarray(q, float)
                if self._sent_on_segment and last is not None:
                    q = step_limited(q, last[0], t_cmd, last[1], self.sup.dq_max_per_period, self.period)
                self._sent_on_segment = False
            if not keep_segment:
                self._segment = self._current_segment()
            if self.interface == "trajectory":
                from builtin_interfaces.msg import Duration
                from trajectory_msgs.msg import JointTrajectoryPoint

                m = self._msgs["JointTrajectory"]()
                m.header.stamp = s_to_stamp(t_cmd)
                m.joint_names = self.joint_names
                pt = JointTrajectoryPoint(positions=[float(v) for v in q])
                pt.time_from_start = Duration(sec=0, nanosec=int(self.period * 1e9))
                m.points = [pt]
            else:
                m = self._msgs["Float64MultiArray"](data=array("d", q.tobytes()))
            self.cmd_pub.publish(m)
            self._last_sent = (q, t_cmd)
        self.stats.on_command_sent(self.now_s())
        return q

    def _current_segment(self):
        """The mapper's segment for the stream to follow, or None while the supervisor holds."""
        if self._last_level >= StatusLevel.HOLD or self.sup.holding or self.sup.estop_reason:
            return None
        try:
            return self.sup.mapper.segment()
        except RuntimeError:  # not started yet
            return None

    def _publish_report(self, tk) -> None:

        r = self._msgs["CommandReport"]()
        st = tk.source_stamp
        if st == st:  # not NaN
            r.header.stamp = s_to_stamp(st)
        r.header.frame_id = "base"
        r.joint_names = self.joint_names
        c = tk.new_command
        r.q_requested = [float(v) for v in (c.q_target if c is not None else tk.q_cmd)]
        r.q_sent = [float(v) for v in tk.q_cmd]
        r.gripper_opening_m = float(tk.gripper_m or 0.0)
        r.limits_hit = list(tk.limits_hit)
        r.ik_residual_m = float(c.ik_residual_m) if c is not None else 0.0
        r.hold = tk.level >= StatusLevel.HOLD
        r.reason = tk.reason
        self.report_pub.publish(r)

    def on_diagnostics(self) -> None:
        self._publish_safety_state(force=True)
        self.publish_diagnostics(
            min(self._last_level, DiagnosticLevel.ERROR)
            if self._last_level >= StatusLevel.OK
            else DiagnosticLevel.WARN,
            self._last_reason or "starting",
            {
                "commands_sent": self.stats.commands_sent,
                "estop": self.sup.estop_reason or "no",
                "interface": self.interface,
                "driver": self.profile.driver,
                "command_topic": self.profile.command_topic,
                **{
                    f"preflight {c.name}": f"{c.status}: {c.detail}"
                    for c in (self.preflight.checks if self.preflight else [])
                },
                **self.stats.diagnostics(),  # stamp_to_command_ms, command_cycles_missed, command_tick_late_ms
                "runtime_stalls": self.sup.stalls,
                "contact_force_N": f"{self.sup.contact_force_N:.1f}",
                "contact_force_max_N": f"{self.sup.contact_force_max_N:.1f}",
                "tracking_error_rad": f"{self.sup.tracking_error_rad:.4f}",
                "tracking_error_max_rad": f"{self.sup.tracking_error_max_rad:.4f}",
                "watched_nodes": ", ".join(sorted(self.sup.watched)) or "none yet",
                "dead_nodes": ", ".join(self.sup.dead_nodes()) or "none",
            },
        )

    def on_shutdown(self) -> None:
        if self.latency_log:
            import json

            with open(self.latency_log, "w") as f:
                json.dump(self.stats.latency_log(), f)


def main(args=None) -> int:
    return spin_nodes([Sim2RealNode], args)


if __name__ == "__main__":
    raise SystemExit(main())
