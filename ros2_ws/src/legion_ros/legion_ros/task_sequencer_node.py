"""task_sequencer_node: placeholder until the sequencer lands (issue 7); refuses to start."""

from __future__ import annotations

from legion_ros.common import LegionNode, NodeStartupError, spin_nodes


class TaskSequencerNode(LegionNode):
    def __init__(self, **kwargs) -> None:
        super().__init__("task_sequencer_node", **kwargs)
        raise NodeStartupError("the task sequencer is not implemented yet (issue 7)")


def main(args=None) -> int:
    return spin_nodes([TaskSequencerNode], args)
