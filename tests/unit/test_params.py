"""Every node parameter's default has one home, a dataclass field of the runtime (legion_core.base.params):
each node declares its parameters from those lists and nothing else, and the shipped parameter file
(legion_bringup/config/runtime.yaml) is checked against them: every key is a parameter the node declares,
of the same type, and a value that equals its default does not belong there (a value that differs says
why on its line). A renamed parameter therefore fails here, not silently on the robot."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from legion_core.base.params import Parameter, check_unique, field_docs, parameters, pick
from legion_core.console.params import console_node_parameters
from legion_core.contracts.interface import (
    NODE_CONSOLE,
    NODE_PERCEPTION,
    NODE_POLICY,
    NODE_REAL2SIM,
    NODE_SIM2REAL,
    NODE_TASK_SEQUENCER,
    NODE_TWIN,
)
from legion_core.runtime.node_params import (
    TaskSequencerNodeParams,
    policy_node_parameters,
    task_sequencer_node_parameters,
)
from legion_core.sim.node_params import twin_node_parameters
from sim2real.mapper import MapperConfig
from sim2real.node_params import (
    Real2SimNodeParams,
    Sim2RealNodeParams,
    perception_node_parameters,
    real2sim_node_parameters,
    sim2real_node_parameters,
)
from sim2real.real2sim import Real2SimConfig
from sim2real.supervisor import SupervisorConfig

REPO = Path(__file__).resolve().parents[2]
RUNTIME_YAML = REPO / "ros2_ws/src/legion_bringup/config/runtime.yaml"
NODES_DIR = REPO / "ros2_ws/src/legion_ros/legion_ros"

#: node name -> (its source file, the function listing its parameters)
NODES = {
    NODE_REAL2SIM: ("real2sim_node.py", real2sim_node_parameters),
    NODE_POLICY: ("policy_node.py", policy_node_parameters),
    NODE_SIM2REAL: ("sim2real_node.py", sim2real_node_parameters),
    NODE_TWIN: ("twin_node.py", twin_node_parameters),
    NODE_TASK_SEQUENCER: ("task_sequencer_node.py", task_sequencer_node_parameters),
    NODE_PERCEPTION: ("perception_node.py", perception_node_parameters),
    NODE_CONSOLE: ("console_node.py", console_node_parameters),
}


def declared(node: str) -> dict[str, Parameter]:
    return {p.name: p for p in NODES[node][1]()}


def check_params_file(text: str) -> list[str]:
    """Problems of a ROS 2 params file (node name -> ros__parameters) against the nodes' declared
    parameters; [] when it is right."""
    problems = []
    doc = yaml.safe_load(text) or {}
    lines = text.splitlines()
    for key_, section in doc.items():
        # "/**/sim2real_node" (any namespace, the shipped file's form) or "sim2real_node" (root namespace).
        node = key_.removeprefix("/**/")
        if node not in NODES:
            problems.append(f"{node}: not a LEGION node (nodes: {sorted(NODES)})")
            continue
        values = (section or {}).get("ros__parameters") or {}
        params = declared(node)
        for key, value in values.items():
            p = params.get(key)
            if p is None:
                problems.append(f"{node}.{key}: not a parameter of {node} (renamed or removed?)")
                continue
            if type(value) is not type(p.default):
                problems.append(
                    f"{node}.{key}: {type(value).__name__} {value!r}, but the parameter is a "
                    f"{type(p.default).__name__} (default {p.default!r} in {p.home}); ROS refuses the file"
                )
                continue
            if value == p.default:
                problems.append(
                    f"{node}.{key}: {value!r} is the default ({p.home}): set only what differs, or change "
                    "the default in its dataclass"
                )
                continue
            if not any(re.match(rf"\s+{re.escape(key)}\s*:[^#]*#\s*\S", ln) for ln in lines):
                problems.append(
                    f"{node}.{key}: {value!r} differs from the default {p.default!r}: say why (a # comment)"
                )
    return problems


# --------------------------------------------------------------------------------------- the params file
def test_the_shipped_params_file_matches_the_declared_parameters():
    assert check_params_file(RUNTIME_YAML.read_text()) == []
    keys = set(yaml.safe_load(RUNTIME_YAML.read_text()))
    assert keys == {f"/**/{n}" for n in NODES}, "one section per node, for any namespace (/**/)"


def test_a_renamed_or_unknown_parameter_fails():
    text = "sim2real_node:\n  ros__parameters:\n    joint_state_timeout: 0.2  # renamed\n"
    (msg,) = check_params_file(text)
    assert "joint_state_timeout: not a parameter of sim2real_node" in msg
    assert check_params_file("sim2real:\n  ros__parameters: {}\n")[0].startswith(
        "sim2real: not a LEGION node"
    )


def test_a_value_of_the_wrong_type_fails():
    (msg,) = check_params_file("real2sim_node:\n  ros__parameters:\n    rate_hz: 25  # slower camera\n")
    assert "rate_hz: int 25, but the parameter is a float" in msg
    (msg,) = check_params_file("task_sequencer_node:\n  ros__parameters:\n    retries: 2.0  # more\n")
    assert "retries: float 2.0, but the parameter is a int" in msg


def test_a_copy_of_a_default_is_flagged():
    (msg,) = check_params_file(
        "sim2real_node:\n  ros__parameters:\n    action_timeout_s: 0.3  # as shipped\n"
    )
    assert "action_timeout_s: 0.3 is the default (sim2real.supervisor.SupervisorConfig)" in msg


def test_a_changed_value_must_say_why():
    bare = "sim2real_node:\n  ros__parameters:\n    command_rate_hz: 200.0\n"
    (msg,) = check_params_file(bare)
    assert "command_rate_hz: 200.0 differs from the default 100.0: say why" in msg
    assert check_params_file(bare.replace("200.0\n", "200.0  # this cell's FRI driver runs at 5 ms\n")) == []


# ------------------------------------------------------------------------------ the nodes declare from them
def _calls(tree: ast.AST) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)]


@pytest.mark.parametrize("node", sorted(NODES))
def test_each_node_declares_its_parameters_from_the_dataclasses_only(node):
    source, listing = NODES[node]
    tree = ast.parse((NODES_DIR / source).read_text())
    calls = _calls(tree)
    literal = [
        c.func.attr for c in calls if c.func.attr in ("param", "declare_parameter", "declare_parameters")
    ]
    assert literal == [], f"{source} declares parameters with literal defaults: {literal}"
    decl = [c for c in calls if c.func.attr == "declare_parameters_from"]
    assert len(decl) == 1, f"{source} must declare its parameters once, from {listing.__name__}()"
    (arg,) = decl[0].args
    assert isinstance(arg, ast.Call) and getattr(arg.func, "id", None) == listing.__name__


@pytest.mark.parametrize("node", sorted(NODES))
def test_every_parameter_has_a_ros_typed_default_and_a_description(node):
    for p in NODES[node][1]():
        assert type(p.default) in (bool, int, float, str), p
        assert p.description, f"{node}.{p.name}: no docstring on its field in {p.home}"


def test_node_parameters_that_feed_a_config_take_its_default():
    assert Real2SimNodeParams().workspace_margin_m == Real2SimConfig().skill_box_margin_m
    from legion_core.contracts.drivers import DriverParams

    assert 1.0 / DriverParams().command_rate_hz == pytest.approx(MapperConfig().command_period_s)
    # Where the supervisor and the mapper share a name, sim2real_node's parameter is the supervisor's.
    assert (
        declared(NODE_SIM2REAL)["max_tracking_error_rad"].default == SupervisorConfig().max_tracking_error_rad
    )


def test_the_sequencer_heartbeat_defaults_to_one_state_machine_period():
    assert TaskSequencerNodeParams().heartbeat_s() == pytest.approx(1.0 / 20.0)
    assert TaskSequencerNodeParams(rate_hz=10.0).heartbeat_s() == pytest.approx(0.1)
    assert TaskSequencerNodeParams(heartbeat_period_s=0.2).heartbeat_s() == 0.2


# ---------------------------------------------------------------------------------- legion_core.base.params
def test_parameters_from_dataclass_fields():
    ps = parameters(SupervisorConfig, ["action_timeout_s", "dead_after_s"])
    assert [(p.name, p.default) for p in ps] == [("action_timeout_s", 0.3), ("dead_after_s", 1.0)]
    assert ps[0].description.startswith("No new action for this long [s] -> hold")
    assert "\n" not in ps[1].description and "  " not in ps[1].description
    assert "joint_vel_scale" in field_docs(MapperConfig)
    with pytest.raises(ValueError, match="no field 'nope'"):
        parameters(SupervisorConfig, ["nope"])
    with pytest.raises(ValueError, match="q_rest has no default a ROS parameter can take"):
        parameters(MapperConfig, ["q_rest"])
    with pytest.raises(
        ValueError, match="'calibration' is declared by .*Real2SimNodeParams and by .*Sim2RealNodeParams"
    ):
        check_unique([*parameters(Real2SimNodeParams), *parameters(Sim2RealNodeParams)])


def test_pick_takes_only_the_named_fields_of_a_config():
    values = {"max_tracking_error_rad": 0.2, "timing": "stream", "bundle": "x"}
    assert pick(MapperConfig, values) == {"max_tracking_error_rad": 0.2, "timing": "stream"}
    assert pick(MapperConfig, values, ["timing"]) == {"timing": "stream"}


# ------------------------------------------------------------------------------ docs/parameters.md
def test_the_parameter_reference_is_generated_from_the_same_lists():
    """docs/parameters.md lists every declared parameter of every node (the lab's knob list) and is exactly
    what legion_core.tools.params_doc writes: a changed default or docstring must regenerate it."""
    from legion_core.tools import params_doc

    assert set(params_doc.NODES) == set(NODES)
    text = params_doc.render()
    for node in NODES:
        for p in declared(node).values():
            assert f"| `{p.name}` | `{p.default!r}` |" in text, f"{node}.{p.name} missing from the reference"
    assert params_doc.DOC.read_text() == text, (
        "docs/parameters.md is stale: python -m legion_core.tools.params_doc --write"
    )
    assert params_doc.main(["--check"]) == 0
