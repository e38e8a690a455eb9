"""The ROS parameters of policy_node and task_sequencer_node, each with its one default.

A parameter that configures the runtime logic is declared from that logic's config dataclass (the home of
its default: PolicyRunnerConfig, SequencerConfig); what only the node uses (bundle, rates, heartbeat) is a
field of the node's own dataclass here. `*_node_parameters()` list them all in the order the node declares
them; ros2_ws/src/legion_bringup/config/runtime.yaml sets only what a deployment changes
(tests/unit/test_params.py checks it against these lists).
"""

from __future__ import annotations

from dataclasses import dataclass

from legion_core.base.params import Parameter, check_unique, parameters
from legion_core.contracts.interface import CONTROL_PATH_HEARTBEAT_PERIOD_S
from legion_core.runtime.policy_runner import PolicyRunnerConfig
from legion_core.runtime.sequencer import SequencerConfig

#: SequencerConfig fields that are task_sequencer_node parameters of the same name.
SEQUENCER_CONFIG_PARAMETERS = ("precondition_timeout_s", "seconds_per_step", "retries")


@dataclass
class PolicyNodeParams:
    """policy_node's own parameters (when to act is PolicyRunnerConfig's)."""

    bundle: str = ""
    """Policy bundle directory (models/<name>) [required]."""
    skill: str = ""
    """Skill active at start ('' = wait for /legion/active_skill)."""
    trusted_keys: str = ""
    """Public keys a bundle must be signed by ('' = no check; docs/bundle-signing.md)."""
    heartbeat_period_s: float = CONTROL_PATH_HEARTBEAT_PERIOD_S
    """Liveness heartbeat period [s], watched by sim2real_node (held after two missed ones)."""


@dataclass
class TaskSequencerNodeParams:
    """task_sequencer_node's own parameters (the plan's timing is SequencerConfig's)."""

    bundle: str = ""
    """Policy bundle directory: its skills are the closed world of the grounder [required]."""
    rate_hz: float = 20.0
    """State machine and feedback rate [Hz]."""
    heartbeat_period_s: float = 0.0
    """Period [s] of this node's /legion/heartbeat; 0 = one state machine period (1 / rate_hz).
    sim2real_node's liveness watchdog declares the node silent after two missed periods."""
    trusted_keys: str = ""
    """Public keys a bundle must be signed by ('' = no check; docs/bundle-signing.md)."""
    check_transitions: bool = True
    """Refuse plans over skill-to-skill transitions the bundle was not verified on (its `transitions`
    section; legion_core/contracts/transitions.py). false only to evaluate new pairs (`legion bench
    longhorizon` sets it for the chains it measures)."""
    safety_state_wait_s: float = 10.0
    """How long [s] an ExecuteTask goal waits for sim2real_node's first SafetyState before it is refused
    (commands are refused until it arrives; a topic command is refused at once)."""

    def heartbeat_s(self) -> float:
        """The heartbeat period [s] in effect (`heartbeat_period_s`, or 1 / rate_hz when it is 0; rate_hz
        must be > 0)."""
        return self.heartbeat_period_s or 1.0 / self.rate_hz


def policy_node_parameters() -> list[Parameter]:
    """Every parameter policy_node declares, with its default and description."""
    return check_unique([*parameters(PolicyNodeParams), *parameters(PolicyRunnerConfig)])


def task_sequencer_node_parameters() -> list[Parameter]:
    """Every parameter task_sequencer_node declares, with its default and description."""
    return check_unique(
        [*parameters(TaskSequencerNodeParams), *parameters(SequencerConfig, SEQUENCER_CONFIG_PARAMETERS)]
    )
