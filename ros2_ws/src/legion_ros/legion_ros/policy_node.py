"""policy_node: the frozen LEGION policy. Loads a bundle (refuses to start on an invalid one), follows the
active skill, and turns each valid, fresh observation into an action stamped with the observation's stamp.
Logic: legion_core.runtime.policy_runner (pure, unit-tested)."""

from __future__ import annotations

from array import array

from legion_core.contracts.interface import (
    NODE_POLICY,
    READY_SKILL,
    TOPIC_ACTION,
    TOPIC_ACTIVE_SKILL,
    TOPIC_OBSERVATION,
    DiagnosticLevel,
    StatusLevel,
)
from legion_core.ros.common import (
    LATCHED_QOS,
    RELIABLE_QOS,
    LegionNode,
    NodeStartupError,
    spin_nodes,
    stamp_to_s,
)


class PolicyNode(LegionNode):
    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_POLICY, **kwargs)
        from legion_msgs.msg import Observation, PolicyAction
        from std_msgs.msg import String

        from legion_core.base.params import pick
        from legion_core.contracts.bundle import load
        from legion_core.contracts.bundle_schema import BundleError
        from legion_core.runtime.node_params import PolicyNodeParams, policy_node_parameters
        from legion_core.runtime.policy_runner import PolicyRunner, PolicyRunnerConfig

        values = self.declare_parameters_from(policy_node_parameters())
        p = PolicyNodeParams(**pick(PolicyNodeParams, values))
        path, trusted_keys = p.bundle, p.trusted_keys
        self.log_parameters()
        if not path:
            raise NodeStartupError(
                "parameter 'bundle' is empty: pass bundle:=models/<name> to the launch file"
            )
        try:
            bundle = load(path, trusted_keys=trusted_keys or None)
        except BundleError as e:
            raise NodeStartupError(f"invalid bundle {path}: {e}") from None
        self.runner = PolicyRunner(bundle, **pick(PolicyRunnerConfig, values))
        self.get_logger().info(f"loaded bundle {bundle.name} with skills {bundle.skill_names}")
        self._PolicyAction = PolicyAction
        self.pub = self.handoff_publisher(PolicyAction, TOPIC_ACTION, RELIABLE_QOS)
        self.handoff_subscription(Observation, TOPIC_OBSERVATION, self.on_observation, RELIABLE_QOS)
        self.create_subscription(String, TOPIC_ACTIVE_SKILL, self.on_skill, LATCHED_QOS)
        self._last_reason = ""
        self._seq = 0
        if p.skill:
            self.on_skill(String(data=p.skill))
        self.create_timer(1.0, self._diagnostics)
        self.start_heartbeat(p.heartbeat_period_s)

    def on_skill(self, msg) -> None:
        # The ready move is sim2real's alone: no policy acts during it.
        res = self.runner.set_skill("" if msg.data == READY_SKILL else msg.data)
        if res != "ok":
            self.get_logger().error(res)
            self.publish_status(StatusLevel.ERROR, res)
        else:
            self.get_logger().info(f"active skill: {msg.data or '(none)'}")
            self.publish_status(StatusLevel.OK, f"active skill {msg.data or '(none)'}", msg.data)

    def on_observation(self, msg) -> None:
        d = self.runner.step(
            msg.values, msg.valid, msg.reason, msg.skill, stamp_to_s(msg.header.stamp), self.now_s()
        )
        if d.action is None:
            if d.reason != self._last_reason:  # log state changes, not every step
                self.get_logger().warn(f"not acting: {d.reason}")
                self.publish_status(StatusLevel.WARN, f"not acting: {d.reason}", self.runner.skill or "")
            self._last_reason = d.reason
            return
        if self._last_reason:
            self.publish_status(StatusLevel.OK, "acting", self.runner.skill or "")
            self._last_reason = ""
        out = self._PolicyAction()
        out.header.stamp = msg.header.stamp
        out.header.frame_id = "sim_world"
        out.skill = self.runner.skill or ""
        out.action = array(
            "d", d.action.astype(float).tobytes()
        )  # as real2sim's values: no per-element check
        self._seq += 1
        out.sequence = self._seq
        self.publish_handoff(self.pub, out)

    def _diagnostics(self) -> None:
        self.publish_diagnostics(
            DiagnosticLevel.OK if not self._last_reason else DiagnosticLevel.WARN,
            self._last_reason or "acting",
            {"skill": self.runner.skill, "actions": self.runner.actions},
        )


def main(args=None) -> int:
    return spin_nodes([PolicyNode], args)


if __name__ == "__main__":
    raise SystemExit(main())
