"""What a regression check judges and how strictly: the judgements, their tolerances and the replay
settings of a scenario (scenarios/default.yaml), loaded with every key checked."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from legion_core.tools.bags.topics import SENSOR_TOPICS

LIVE_JUDGEMENTS = (
    "observations",
    "actions",
    "same_inputs_same_actions",
    "commands",
    "skill_switches",
    "safety_events",
    "replay_timing",
)
ALL_JUDGEMENTS = ("policy_offline", *LIVE_JUDGEMENTS)

DEFAULT_TOLERANCES: dict[str, float] = {
    # Where the numeric signatures match (0.0: bit-exact); across signatures float32_action_atol applies.
    "offline_action_atol": 0.0,
    "offline_max_unmatched": 2,  # actions of observations published before the recorder subscribed
    "observation_atol_m": 0.01,
    "action_atol": 0.05,
    # Commands are compared as the tool step each one asks for (FK of its IK target minus FK of the command
    # before it, same run): sim2real chains targets (target_from=last_target) and its settle gate cannot be
    # reproduced open loop once one step differs (the replayed arm follows the recorded targets, not the new
    # ones), so absolute targets drift apart by a centimetre per missed step while the mapping is unchanged.
    "command_step_atol_m": 0.002,
    "gripper_atol_m": 0.005,
    "min_coverage": 0.8,
    # Lower for commands: once the gates differ, the two runs issue commands at different stamps (matched
    # within one policy step of the recording plus stamp_tol_s: judge_commands).
    "min_command_coverage": 0.5,
    "stamp_tol_s": 0.02,  # a few joint-state periods: which sample real2sim's tick saw is timing
    "skill_switch_tol_s": 0.3,
    "safety_time_tol_s": 1.0,
    "ignore_first_s": 0.5,
    "ignore_last_s": 0.3,
    "max_lateness_p99_ms": 20.0,
}


@dataclass
class Scenario:
    name: str = "default"
    judgements: list[str] = field(default_factory=lambda: list(ALL_JUDGEMENTS))
    tolerances: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_TOLERANCES))
    rate: float | None = 1.0
    """Replay time factor for the live judgements (None = as fast as possible: only for coarse checks)."""
    topics: list[str] = field(default_factory=lambda: list(SENSOR_TOPICS))
    runtime_params: dict[str, Any] = field(default_factory=dict)
    """Extra node.name:=value parameters of the fresh runtime (match the recorded runtime's settings)."""
    drain_s: float = 1.0
    """Wall seconds to keep recording after the last replayed message (outputs in flight)."""
    startup_timeout_s: float = 60.0
    z_mode: str = "mean"
    closed_loop: dict[str, Any] = field(
        default_factory=lambda: {
            "timeout_s": 30.0,
            "margin_s": 2.0,
            "duration_tol_s": 3.0,
            "placement_tol_m": 0.05,
        }
    )


def load_scenario(source: str | Path | dict | None = None) -> Scenario:
    """Scenario from a YAML file or dict; unknown keys and judgements are refused (typos must not silently
    disable a check)."""
    import yaml

    if source is None:
        data: dict = {}
    elif isinstance(source, dict):
        data = dict(source)
    else:
        data = yaml.safe_load(Path(source).read_text()) or {}
    sc = Scenario()
    known = set(Scenario.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"scenario {source}: unknown key(s) {unknown}; known: {sorted(known)}")
    for k, v in data.items():
        if k == "tolerances":
            bad = sorted(set(v) - set(DEFAULT_TOLERANCES))
            if bad:
                raise ValueError(
                    f"scenario {source}: unknown tolerance(s) {bad}; known: {sorted(DEFAULT_TOLERANCES)}"
                )
            sc.tolerances.update({kk: float(vv) for kk, vv in v.items()})
        elif k == "closed_loop":
            sc.closed_loop.update(v)
        else:
            setattr(sc, k, v)
    bad = [j for j in sc.judgements if j not in ALL_JUDGEMENTS]
    if bad:
        raise ValueError(f"scenario {source}: unknown judgement(s) {bad}; known: {list(ALL_JUDGEMENTS)}")
    return sc
