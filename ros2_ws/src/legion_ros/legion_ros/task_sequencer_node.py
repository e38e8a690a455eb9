"""task_sequencer_node: an operator's language command -> a grounded plan of bundle skills -> run one after
another (docs/architecture.md, "Long-horizon chains in one scene"). Exposes the action
/legion/execute_task (legion_msgs/action/ExecuteTask) and the plain topic /legion/command (std_msgs/String,
same path). Nothing from the text reaches the robot except skill names chosen by the grounder's closed world
(legion_core.runtime.grounding); the run itself is legion_core.runtime.sequencer (pure, unit-tested).

Operator input (docs/operator-input.md): every command, topic or action, is checked as text first
(legion_core.runtime.operator_text: control characters, invalid UTF-8, over-long text are refused with the reason)
and answered on /legion/command_status (legion_msgs/CommandStatus: ACCEPTED with the plan, BUSY or
REFUSED; later SUCCEEDED, FAILED or CANCELLED when the plan ends). Any running plan is cancelled by the
service ~/cancel (std_srvs/Trigger), the topic /legion/cancel (std_msgs/Empty) or the action's cancel.
sim2real_node's /legion/safety_state refuses commands and ends the plan while the e-stop is latched or a
watched node is dead. Operator text appears in logs only through operator_text.for_log (capped)."""

from __future__ import annotations

import time

from legion_core.contracts.interface import (
    ACTION_EXECUTE_TASK,
    NODE_TASK_SEQUENCER,
    READY_SKILL,
    SERVICE_CANCEL,
    SERVICE_PREVIEW,
    TOPIC_ACTIVE_SKILL,
    TOPIC_CANCEL,
    TOPIC_COMMAND_REPORT,
    TOPIC_COMMAND_STATUS,
    TOPIC_COMMAND_TEXT,
    TOPIC_OBSERVATION,
    TOPIC_SAFETY_STATE,
    StatusLevel,
    robot_scoped,
)
from legion_core.ros.common import (
    LATCHED_QOS,
    OPERATOR_QOS,
    RELIABLE_QOS,
    LegionNode,
    NodeStartupError,
    spin_nodes,
    stamp_to_s,
)
from legion_core.runtime.operator_text import check, for_echo, for_log
from legion_core.runtime.sequencer import safety_refusal

ACTION_NAME = robot_scoped(ACTION_EXECUTE_TASK)  # /<namespace>/legion/execute_task


class TaskSequencerNode(LegionNode):
    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_TASK_SEQUENCER, **kwargs)
        from legion_msgs.action import ExecuteTask
        from legion_msgs.msg import CommandReport, CommandStatus, Observation, SafetyState
        from legion_msgs.srv import PreviewCommand
        from rclpy.action import ActionServer, CancelResponse
        from std_msgs.msg import Empty, String
        from std_srvs.srv import Trigger

        from legion_core.base.params import pick
        from legion_core.contracts.bundle import load
        from legion_core.contracts.bundle_schema import BundleError
        from legion_core.runtime.grounding import Grounder, skill_cards_from_bundle
        from legion_core.runtime.node_params import (
            SEQUENCER_CONFIG_PARAMETERS,
            TaskSequencerNodeParams,
            task_sequencer_node_parameters,
        )
        from legion_core.runtime.sequencer import SequencerConfig

        values = self.declare_parameters_from(task_sequencer_node_parameters())
        p = TaskSequencerNodeParams(**pick(TaskSequencerNodeParams, values))
        path, trusted_keys, rate = p.bundle, p.trusted_keys, p.rate_hz
        self.log_parameters()
        if not rate > 0:
            raise NodeStartupError(f"rate_hz must be > 0 Hz, got {rate}")
        if not path:
            raise NodeStartupError("parameter 'bundle' is empty: pass bundle:=models/<name>")
        try:
            self.bundle = load(path, trusted_keys=trusted_keys or None)
        except BundleError as e:
            raise NodeStartupError(f"invalid bundle {path}: {e}") from None
        # The bundle's verified transitions: a plan over another pair is refused (docs/operator-input.md).
        transitions = self.bundle.transitions if p.check_transitions else None
        self.grounder = Grounder(skill_cards_from_bundle(self.bundle), transitions=transitions)
        self.cfg = SequencerConfig(**pick(SequencerConfig, values, SEQUENCER_CONFIG_PARAMETERS))
        self._ExecuteTask, self._String, self._CommandStatus = ExecuteTask, String, CommandStatus
        self.skill_pub = self.create_publisher(String, TOPIC_ACTIVE_SKILL, LATCHED_QOS)
        # One reply per command (docs/operator-input.md): reliable and as deep as the command queue, so that
        # the replies to a burst are not dropped either.
        self.reply_pub = self.create_publisher(CommandStatus, TOPIC_COMMAND_STATUS, OPERATOR_QOS)
        self.create_subscription(Observation, TOPIC_OBSERVATION, self.on_observation, RELIABLE_QOS)
        # A skill's step budget counts the steps the arm was commanded (sim2real's non-hold reports), not the
        # policy's actions: the policy acts on every observation (50 Hz) while sim2real's settle gate takes
        # one action per reached target (~10 Hz), so counting actions would spend the budget 5x too fast.
        self.create_subscription(CommandReport, TOPIC_COMMAND_REPORT, self.on_command_report, RELIABLE_QOS)
        # Depth 100, not 10: a burst of commands is answered one by one (busy), never dropped by the queue.
        self.create_subscription(String, TOPIC_COMMAND_TEXT, self.on_command_text, OPERATOR_QOS)
        self.create_subscription(Empty, TOPIC_CANCEL, self.on_cancel_topic, OPERATOR_QOS)
        self.create_service(Trigger, SERVICE_CANCEL, self.on_cancel_service)
        self.create_service(PreviewCommand, SERVICE_PREVIEW, self.on_preview)
        # sim2real_node's safety state, transient local: a sequencer (re)started after the e-stop latched
        # still gets it. None = never received: every command is refused until it arrives, because the plan
        # depends on it (a ready move first when the tool is not at the policy's orientation); an action goal
        # waits up to safety_state_wait_s for it (the runtime's processes discover each other in any order).
        self.create_subscription(SafetyState, TOPIC_SAFETY_STATE, self.on_safety_state, LATCHED_QOS)
        self._safety = None
        self._safety_wait_s = p.safety_state_wait_s
        self._server = ActionServer(
            self, ExecuteTask, ACTION_NAME, execute_callback=self.execute, goal_callback=self.on_goal,
            cancel_callback=lambda _g: CancelResponse.ACCEPT,
        )  # fmt: skip
        self.seq = None
        self.goal_handle = None
        self.done_future = None
        self._command_id = 0  # counts every command received, topic and action (CommandStatus.command_id)
        self._running = (0, "")  # (command_id, text) of the running plan
        # Publish nothing until a command runs: a skill given at launch (policy/real2sim `skill` parameter, or
        # an operator's /legion/active_skill) must not be overridden by an idle sequencer.
        self._active = ""
        self._active_t = 0.0  # when the current skill was published [s, node clock]
        self.create_timer(1.0 / rate, self.on_tick)
        self.start_heartbeat(p.heartbeat_s())  # after the rate_hz check: 0 means one period
        self.get_logger().info(
            f"ready: skills {self.bundle.skill_names}; action {ACTION_NAME}, topic {TOPIC_COMMAND_TEXT}, "
            f"replies on {TOPIC_COMMAND_STATUS}; cancel: service {self.get_fully_qualified_name()}/cancel or "
            f"topic {TOPIC_CANCEL}"
        )

    # -- inputs ----------------------------------------------------------------------------------------
    def on_observation(self, msg) -> None:
        if self.seq is not None:
            self.seq.on_observation(msg.skill, msg.valid, msg.reason, msg.values, self.now_s())

    def on_command_report(self, msg) -> None:
        if self.seq is None or not self._active:
            return
        if msg.reason and msg.reason != "ok":
            # A hold, or a refused policy step (IK residual, limits): the operator hears it (Sequencer.on_hold).
            self.seq.on_hold(msg.reason, self.now_s())
        if not msg.hold:
            self.seq.on_action(self._active)

    def on_safety_state(self, msg) -> None:
        self._safety = msg
        why = self._safety_refusal()
        fresh = stamp_to_s(msg.header.stamp) > self._active_t
        if self.seq is not None and self._active == READY_SKILL and msg.ready_move and fresh:
            # The ready move's progress is sim2real's to report; a refusal ends the plan with its reason
            # (Sequencer.on_ready), not as an unexplained cleared skill.
            self.seq.on_ready(msg.ready_move)
            if msg.ready_move.startswith("refused"):
                return
        # sim2real cleared the skill this plan runs (e.g. a tracking-error fault) after it was published: the
        # plan cannot go on, and only a new command may move the arm again.
        cleared = msg.skill_cleared_by and not msg.active_skill and self._active
        if why is None and cleared and fresh:
            why = f"the safety layer stopped the skill ({msg.skill_cleared_by}); send a new command"
        if why is not None and self.seq is not None:
            self._cancel(why)

    def _safety_refusal(self) -> str | None:
        s = self._safety
        if s is None:
            return (
                f"no safety state from sim2real_node on {TOPIC_SAFETY_STATE} yet: the plan depends on it (e-stop, "
                "driver, ready move); is sim2real_node running? It publishes within a second of starting"
            )
        # Its own name is stale news (a state latched before this process was respawned): it is running.
        dead = [n for n in s.dead_nodes if n != self.get_fully_qualified_name()]
        return safety_refusal(s.estop_latched, s.estop_reason, dead, s.driver_fault)

    # -- replies ---------------------------------------------------------------------------------------
    def _reply(self, command_id: int, text: str, outcome: int, message: str) -> None:
        m = self._CommandStatus()
        m.header.stamp = self.get_clock().now().to_msg()
        m.command_id, m.command, m.outcome, m.message = int(command_id), for_echo(text), int(outcome), message
        self.reply_pub.publish(m)

    def _gate(self, text) -> tuple[int, str] | None:
        """(outcome, reason) if `text` must not be grounded now, None if it may: the text itself first
        (operator_text), then the safety state, then a running plan."""
        CS = self._CommandStatus
        why = check(text)
        if why is not None:
            return CS.REFUSED, f"refused: {why}"
        why = self._safety_refusal()
        if why is not None:
            return CS.REFUSED, f"refused: {why}"
        if self.seq is not None:
            cid, running = self._running
            return CS.BUSY, (
                f"busy: command {cid} ({for_log(running)}) is running; cancel it first (service "
                f"{self.get_fully_qualified_name()}/cancel, topic {TOPIC_CANCEL} or the action's cancel)"
            )
        return None

    def _plan(self, text, gate=None):
        """Check and ground `text` as a command now: (refusal, plan, skills) where refusal is (outcome,
        message) or None. The one path for commands and previews, so a preview shows what would run."""
        from legion_core.runtime.sequencer import SkillSpec

        CS = self._CommandStatus
        refusal = gate if gate is not None else self._gate(text)
        plan, skills = [], []
        if refusal is None:
            res = self.grounder.ground(text)
            if not res.ok:
                refusal = CS.REFUSED, res.describe()
            else:
                try:
                    plan = [SkillSpec.from_bundle(self.bundle, s) for s in res.skills]
                except ValueError as e:
                    refusal = CS.REFUSED, f"refused: {e}"
                skills = list(res.skills)
                if refusal is None and self._safety is not None and self._safety.ready_needed:
                    # The arm's tool is not at the policy's orientation (a posture the policy never saw): the
                    # ready move comes first, shown in the plan (docs/robot-integration.md, "The ready move").
                    plan, skills = [SkillSpec.ready(), *plan], [READY_SKILL, *skills]
        return refusal, plan, skills

    def on_preview(self, req, resp):
        """~/preview: the plan `req.command` would run now, or the refusal; nothing starts (docs/console.md)."""
        refusal, _plan, skills = self._plan(req.command)
        resp.accepted = refusal is None
        resp.message = refusal[1] if refusal is not None else f"plan: {' -> '.join(skills)}"
        resp.plan = list(skills) if refusal is None else []
        return resp

    def _receive(self, text, via: str, gate=None):
        """Count, check, ground and start one command; reply on /legion/command_status either way.
        Returns (ok, message, plan)."""
        from legion_core.runtime.sequencer import Sequencer

        CS = self._CommandStatus
        self._command_id += 1
        cid = self._command_id
        shown = for_log(text)
        refusal, plan, skills = self._plan(text, gate)
        if refusal is not None:
            outcome, message = refusal
            self.get_logger().warn(f"command {cid} via {via} {shown}: {message}")
            self.publish_status(StatusLevel.WARN, f"command {cid}: {message}")
            self._reply(cid, text, outcome, message)
            return False, message, []
        self.seq = Sequencer(plan, self.bundle.layout.name, self.cfg)
        self.seq.start(self.now_s())
        self._running = (cid, text)
        message = f"plan: {' -> '.join(skills)}"
        self.get_logger().info(f"command {cid} via {via} {shown}: {message}")
        self.publish_status(StatusLevel.OK, f"command {cid}: {message}")
        self._reply(cid, text, CS.ACCEPTED, message)
        self.on_tick()  # the first skill is active from now on, so an early cancel has something to clear
        return True, message, skills

    def on_command_text(self, msg) -> None:
        self._receive(msg.data, TOPIC_COMMAND_TEXT)

    def on_goal(self, goal_request):
        """Reject a goal while a plan runs (the action's own busy answer), replying BUSY like the topic;
        every other refusal is the goal's result (accepted, then aborted with the reason), so that an
        action client reads why."""
        from rclpy.action import GoalResponse

        gate = self._gate(goal_request.command)
        if gate is not None and gate[0] == self._CommandStatus.BUSY:
            self._receive(goal_request.command, ACTION_NAME, gate)
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    async def execute(self, goal_handle):
        from rclpy.task import Future

        result = self._ExecuteTask.Result()
        if self._safety is None:
            await self._first_safety_state(self._safety_wait_s)
        ok, message, plan = self._receive(goal_handle.request.command, ACTION_NAME)
        result.plan = list(plan)
        if not ok:
            result.success, result.message = False, message
            goal_handle.abort()
            return result
        self.goal_handle = goal_handle
        self.done_future = Future()
        out = await self.done_future
        result.success, result.message = out.success, out.message
        result.step_durations_s = [float(v) for v in out.step_durations_s]
        if out.state == "cancelled" and goal_handle.is_cancel_requested:
            goal_handle.canceled()
        elif out.success:
            goal_handle.succeed()
        else:  # failed, or ended by a cancel that did not come through the action (service, topic, e-stop)
            goal_handle.abort()
        return result

    async def _first_safety_state(self, timeout_s: float) -> None:
        """Until sim2real_node's first SafetyState has arrived or `timeout_s` [s] passed (the executor keeps
        spinning meanwhile: a timer polls, the coroutine awaits)."""
        from rclpy.task import Future

        arrived, end = Future(), time.monotonic() + timeout_s

        def poll() -> None:
            if not arrived.done() and (self._safety is not None or time.monotonic() >= end):
                arrived.set_result(self._safety is not None)

        timer = self.create_timer(0.05, poll)
        try:
            await arrived
        finally:
            self.destroy_timer(timer)

    # -- cancel ----------------------------------------------------------------------------------------
    def _cancel(self, reason: str) -> bool:
        """End the running plan now (the robot holds: '' on /legion/active_skill, CANCELLED reply)."""
        if self.seq is None:
            return False
        self.get_logger().warn(f"cancelling command {self._running[0]}: {reason}")
        self.seq.cancel(self.now_s(), reason)
        self.on_tick()
        return True

    def on_cancel_service(self, _request, response):
        cid, text = self._running
        response.success = self._cancel(f"cancel requested ({self.get_fully_qualified_name()}/cancel)")
        response.message = (
            f"cancelled command {cid} ({for_log(text)})" if response.success else "no plan is running"
        )
        return response

    def on_cancel_topic(self, _msg) -> None:
        if not self._cancel(f"cancel requested ({TOPIC_CANCEL})"):
            # Answered, not silent; command_id 0: a cancel is not a command.
            self._reply(0, "", self._CommandStatus.REFUSED, f"cancel on {TOPIC_CANCEL}: no plan is running")

    # -- state machine ---------------------------------------------------------------------------------
    def _publish_skill(self, name: str) -> None:
        if name != self._active:
            self._active_t = self.now_s()
            self.skill_pub.publish(self._String(data=name))
            self._active = name

    def on_tick(self) -> None:
        if self.seq is None:
            return
        if self.goal_handle is not None and self.goal_handle.is_cancel_requested:
            self.seq.cancel(self.now_s(), "cancel requested by the action client")
        out = self.seq.tick(self.now_s())
        self._publish_skill(out.active_skill)
        if self.goal_handle is not None and not out.done:
            fb = self._ExecuteTask.Feedback()
            fb.active_skill, fb.step_index, fb.step_count = out.active_skill, out.step_index, out.step_count
            fb.progress, fb.state, fb.hold_reason = float(out.progress), out.state, out.hold_reason
            self.goal_handle.publish_feedback(fb)
        if out.done:
            CS = self._CommandStatus
            cid, text = self._running
            outcome = CS.SUCCEEDED if out.success else CS.CANCELLED if out.state == "cancelled" else CS.FAILED
            log = self.get_logger()
            (log.info if out.success else log.warn)(f"command {cid}: {out.message}")
            self.publish_status(
                StatusLevel.OK if out.success else StatusLevel.WARN, f"command {cid}: {out.message}"
            )
            self._reply(cid, text, outcome, out.message)
            if self.done_future is not None and not self.done_future.done():
                self.done_future.set_result(out)
            self.seq, self.goal_handle, self.done_future = None, None, None
            self._running = (0, "")


def main(args=None) -> int:
    return spin_nodes([TaskSequencerNode], args)


if __name__ == "__main__":
    raise SystemExit(main())
