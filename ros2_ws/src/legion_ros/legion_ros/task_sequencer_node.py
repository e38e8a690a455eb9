"""task_sequencer_node: an operator's language command -> a grounded plan of bundle skills -> run one after
another (issue 7). Exposes the action /legion/execute_task (legion_msgs/action/ExecuteTask) and the plain
topic /legion/command (std_msgs/String, same path). Nothing from the text reaches the robot except skill
names chosen by the grounder's closed world (legion_core.grounding); the run itself is
legion_core.sequencer (pure, unit-tested)."""

from __future__ import annotations

from legion_ros.common import (
    LATCHED_QOS,
    RELIABLE_QOS,
    TOPIC_ACTIVE_SKILL,
    TOPIC_COMMAND_REPORT,
    TOPIC_COMMAND_TEXT,
    TOPIC_OBSERVATION,
    LegionNode,
    NodeStartupError,
    spin_nodes,
)

ACTION_NAME = "/legion/execute_task"


class TaskSequencerNode(LegionNode):
    def __init__(self, **kwargs) -> None:
        super().__init__("task_sequencer_node", **kwargs)
        from legion_msgs.action import ExecuteTask
        from legion_msgs.msg import CommandReport, Observation
        from rclpy.action import ActionServer, CancelResponse, GoalResponse
        from std_msgs.msg import String

        from legion_core.bundle import BundleError, load
        from legion_core.grounding import Grounder, skill_cards_from_bundle
        from legion_core.sequencer import SequencerConfig

        path = self.param("bundle", "", "policy bundle directory: its skills are the closed world [required]")
        pre = self.param(
            "precondition_timeout_s", 5.0, "wait this long [s] for a skill's object/goal detection"
        )
        sps = self.param("seconds_per_step", 0.25, "time budget per policy step of a skill's step budget [s]")
        retries = self.param("retries", 1, "extra attempts per skill after its budget ran out")
        rate = self.param("rate_hz", 20.0, "state machine / feedback rate [Hz]")
        self.log_parameters()
        if not path:
            raise NodeStartupError("parameter 'bundle' is empty: pass bundle:=models/<name>")
        try:
            self.bundle = load(path)
        except BundleError as e:
            raise NodeStartupError(f"invalid bundle {path}: {e}") from None
        self.grounder = Grounder(skill_cards_from_bundle(self.bundle))
        self.cfg = SequencerConfig(precondition_timeout_s=pre, seconds_per_step=sps, retries=retries)
        self._ExecuteTask, self._String = ExecuteTask, String
        self.skill_pub = self.create_publisher(String, TOPIC_ACTIVE_SKILL, LATCHED_QOS)
        self.create_subscription(Observation, TOPIC_OBSERVATION, self.on_observation, RELIABLE_QOS)
        # A skill's step budget counts the steps the arm was commanded (sim2real's non-hold reports), not the
        # policy's actions: the policy acts on every observation (50 Hz) while sim2real's settle gate takes
        # one action per reached target (~10 Hz), so counting actions would spend the budget 5x too fast.
        self.create_subscription(CommandReport, TOPIC_COMMAND_REPORT, self.on_command_report, RELIABLE_QOS)
        self.create_subscription(String, TOPIC_COMMAND_TEXT, self.on_command_text, RELIABLE_QOS)
        self._server = ActionServer(
            self, ExecuteTask, ACTION_NAME, execute_callback=self.execute,
            goal_callback=lambda _g: GoalResponse.REJECT if self.seq is not None else GoalResponse.ACCEPT,
            cancel_callback=lambda _g: CancelResponse.ACCEPT,
        )  # fmt: skip
        self.seq = None
        self.goal_handle = None
        self.done_future = None
        # Publish nothing until a command runs: a skill given at launch (policy/real2sim `skill` parameter, or
        # an operator's /legion/active_skill) must not be overridden by an idle sequencer.
        self._active = ""
        self.create_timer(1.0 / rate, self.on_tick)
        self.get_logger().info(
            f"ready: skills {self.bundle.skill_names}; action {ACTION_NAME}, topic {TOPIC_COMMAND_TEXT}"
        )

    # -- inputs ----------------------------------------------------------------------------------------
    def on_observation(self, msg) -> None:
        if self.seq is not None:
            self.seq.on_observation(msg.skill, msg.valid, msg.reason, msg.values, self.now_s())

    def on_command_report(self, msg) -> None:
        if self.seq is not None and not msg.hold and self._active:
            self.seq.on_action(self._active)

    def _begin(self, text: str):
        """Ground and start; returns (ok, message, plan)."""
        from legion_core.sequencer import Sequencer, SkillSpec

        if self.seq is not None:
            return False, "busy: another command is running; cancel it first", []
        res = self.grounder.ground(text)
        if not res.ok:
            return False, res.describe(), []
        try:
            plan = [SkillSpec.from_bundle(self.bundle, s) for s in res.skills]
        except ValueError as e:
            return False, str(e), []
        self.seq = Sequencer(plan, self.bundle.layout.name, self.cfg)
        self.seq.start(self.now_s())
        msg = f"plan: {' -> '.join(res.skills)}"
        self.get_logger().info(f"command {text!r}: {msg}")
        self.publish_status(0, msg)
        return True, msg, res.skills

    def on_command_text(self, msg) -> None:
        ok, message, _ = self._begin(msg.data)
        if not ok:
            self.get_logger().warn(f"command {msg.data!r} refused: {message}")
            self.publish_status(1, f"refused: {message}")

    async def execute(self, goal_handle):
        from rclpy.task import Future

        result = self._ExecuteTask.Result()
        ok, message, plan = self._begin(goal_handle.request.command)
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
        if out.state == "cancelled":
            goal_handle.canceled()
        elif out.success:
            goal_handle.succeed()
        else:
            goal_handle.abort()
        return result

    # -- state machine ---------------------------------------------------------------------------------
    def _publish_skill(self, name: str) -> None:
        if name != self._active:
            self.skill_pub.publish(self._String(data=name))
            self._active = name

    def on_tick(self) -> None:
        if self.seq is None:
            return
        if self.goal_handle is not None and self.goal_handle.is_cancel_requested:
            self.seq.cancel(self.now_s())
        out = self.seq.tick(self.now_s())
        self._publish_skill(out.active_skill)
        if self.goal_handle is not None and not out.done:
            fb = self._ExecuteTask.Feedback()
            fb.active_skill, fb.step_index, fb.step_count = out.active_skill, out.step_index, out.step_count
            fb.progress, fb.state = float(out.progress), out.state
            self.goal_handle.publish_feedback(fb)
        if out.done:
            level = 0 if out.success else 1
            self.get_logger().info(out.message) if out.success else self.get_logger().warn(out.message)
            self.publish_status(level, out.message)
            if self.done_future is not None and not self.done_future.done():
                self.done_future.set_result(out)
            self.seq, self.goal_handle, self.done_future = None, None, None


def main(args=None) -> int:
    return spin_nodes([TaskSequencerNode], args)


if __name__ == "__main__":
    raise SystemExit(main())
