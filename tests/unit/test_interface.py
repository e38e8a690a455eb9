"""The interface contract (legion_core/contracts/interface.py) is the one home of the graph's names, QoS and
status levels: its levels equal the legion_msgs constants, the bag topic table is built from it, its QoS specs
make the profiles the runtime has always used, and no module of legion_core, sim2real or the nodes spells a
topic, service or action name itself."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest

from legion_core.contracts import interface as I

REPO = Path(__file__).resolve().parents[2]
MSG_DIR = REPO / "ros2_ws" / "src" / "legion_msgs" / "msg"


def _msg_constants(msg: str) -> dict[str, int]:
    """`uint8 NAME = value` lines of a .msg file."""
    text = (MSG_DIR / f"{msg}.msg").read_text()
    return {
        m[1]: int(m[2]) for m in re.finditer(r"^\s*u?int\d+\s+([A-Z_][A-Z0-9_]*)\s*=\s*(\d+)", text, re.M)
    }


# ------------------------------------------------------------------------------------------ status levels
def test_status_levels_equal_the_msg_file_constants():
    assert {level.name: level.value for level in I.StatusLevel} == _msg_constants("RuntimeStatus")
    assert {o.name: o.value for o in I.CommandOutcome} == _msg_constants("CommandStatus")


@pytest.mark.ros
def test_status_levels_equal_the_generated_message_constants():
    from legion_core.tools.ros_env import ensure_workspace

    ensure_workspace()
    from diagnostic_msgs.msg import DiagnosticStatus
    from legion_msgs.msg import CommandStatus, RuntimeStatus

    for level in I.StatusLevel:
        assert getattr(RuntimeStatus, level.name) == level.value, level
    for outcome in I.CommandOutcome:
        assert getattr(CommandStatus, outcome.name) == outcome.value, outcome
    for level in I.DiagnosticLevel:  # diagnostic_msgs keeps its levels as bytes
        assert getattr(DiagnosticStatus, level.name) == bytes([level.value]), level


def test_the_supervisor_ticks_with_the_interface_levels():
    from sim2real import supervisor

    assert tuple(I.StatusLevel) == (
        supervisor.OK,
        supervisor.WARN,
        supervisor.HOLD,
        supervisor.ESTOP,
        supervisor.ERROR,
    )


# --------------------------------------------------------------------------------------------- topic table
def test_every_topic_of_the_bag_table_comes_from_the_interface():
    from legion_core.tools.bags import topics as bags

    for name, spec in bags.RUNTIME_TOPICS.items():
        assert spec is I.TOPICS[name], name  # the interface's own spec, not a copy
    assert set(bags.SENSOR_TOPICS) <= set(bags.RUNTIME_TOPICS)
    assert set(bags.OUTPUT_TOPICS) <= set(bags.RUNTIME_TOPICS)
    assert bags.CLOCK_TOPIC == I.TOPIC_CLOCK and I.TOPICS[I.TOPIC_CLOCK].msgtype == bags.CLOCK_TYPE
    assert bags.TopicSpec is I.TopicSpec


def test_every_topic_constant_is_in_the_table_with_a_known_type_and_qos_kind():
    constants = {v for k, v in vars(I).items() if k.startswith("TOPIC_") and k != "TOPIC_FLOOD_BENCH"}
    assert constants == set(I.TOPICS)
    for name, spec in I.TOPICS.items():
        assert spec.qos in I.QOS, name
        pkg, kind, typ = spec.msgtype.split("/")
        assert kind == "msg", name
        if pkg == "legion_msgs":
            assert (MSG_DIR / f"{typ}.msg").exists(), name


def test_service_names_resolve_as_ros_does():
    assert I.SIM2REAL_REARM_SERVICE == "/sim2real_node/rearm"
    assert I.SEQUENCER_CANCEL_SERVICE == "/task_sequencer_node/cancel"
    assert I.TWIN_RESET_TASK_SERVICE == "/twin_node/reset_task"
    with pytest.raises(ValueError, match="private name"):
        I.resolved_service(I.NODE_SIM2REAL, "/legion/estop")


# ---------------------------------------------------------------------------------------------------- QoS
def test_qos_specs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        I.QOS[I.SENSOR].depth = 50  # type: ignore[misc]


def test_qos_specs_map_to_the_expected_rclpy_profiles():
    pytest.importorskip("rclpy")
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    from legion_core.ros import common
    from legion_core.tools.bags.topics import table_qos

    best_effort, reliable = ReliabilityPolicy.BEST_EFFORT, ReliabilityPolicy.RELIABLE
    volatile, latched = DurabilityPolicy.VOLATILE, DurabilityPolicy.TRANSIENT_LOCAL
    expected = {  # kind: (profile constant of legion_core.ros.common, depth, reliability, durability)
        I.SENSOR: (common.SENSOR_QOS, 5, best_effort, volatile),
        I.RELIABLE: (common.RELIABLE_QOS, 10, reliable, volatile),
        I.COMMAND: (common.COMMAND_QOS, 1, reliable, volatile),
        I.LATCHED: (common.LATCHED_QOS, 1, reliable, latched),
        I.OPERATOR: (common.OPERATOR_QOS, 100, reliable, volatile),
        I.HEARTBEAT: (common.HEARTBEAT_QOS, 10, best_effort, volatile),
        I.STATUS: (common.STATUS_QOS, 10, reliable, latched),
    }
    assert set(expected) == set(I.QOS)
    for kind, (profile, depth, reliability, durability) in expected.items():
        want = QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=reliability, durability=durability
        )
        assert profile == want, kind
        assert common.qos_profile(I.QOS[kind]) == want, kind
        assert table_qos(kind) == want, kind
        deeper = common.qos_profile(kind, depth=1000)
        assert deeper.depth == 1000 and deeper.reliability == reliability and deeper.durability == durability


# --------------------------------------------------------------------------------- no name literals elsewhere
SCANNED = ("legion_core", "sim2real", "ros2_ws/src/legion_ros/legion_ros")
#: A string is a ROS graph name if it looks like one...
NAME_RE = re.compile(r"~?/[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z0-9_]+)*")
#: ...and either starts like the graph's names (first word of a declared name, or a standard ROS topic)...
STANDARD_STEMS = {"tf", "rosout", "parameter", "robot"}
#: ...or is the name argument of an rclpy call.
ROS_CALLS = {"create_publisher", "create_subscription", "create_client", "create_service", "ActionClient",
             "ActionServer", "handoff_publisher", "handoff_subscription", "Recorder"}  # fmt: skip


def _stem(name: str) -> str:
    return name.lstrip("~/").split("/")[0].split("_")[0]


def _graph_stems() -> set[str]:
    names = [v for v in vars(I).values() if isinstance(v, str) and v.startswith("/") and NAME_RE.fullmatch(v)]
    names += [I.node_fqn(v) for k, v in vars(I).items() if k.startswith("NODE_")]
    return {_stem(n) for n in names} | STANDARD_STEMS


def name_literals(source: str, stems: set[str]) -> list[tuple[int, str]]:
    """(line, text) of every string constant in `source` that is a ROS graph name (docstrings aside)."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    in_ros_call = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if (f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")) in ROS_CALLS:
                in_ros_call.update(id(a) for a in [*node.args, *(k.value for k in node.keywords)])
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)) or id(node) in docstrings:
            continue
        text = node.value
        if NAME_RE.fullmatch(text) and (
            text.startswith("~/") or _stem(text) in stems or id(node) in in_ros_call
        ):
            found.append((node.lineno, text))
    return found


def test_the_literal_scan_finds_names_and_leaves_paths_alone():
    stems = _graph_stems()
    src = (
        '"""Publishes /legion/action."""\n'
        'pub = node.create_publisher(String, "/legion/new_topic", 10)\n'
        'cli = node.create_client(Trigger, "/other_node/go")\n'
        'srv = node.create_service(Trigger, "~/stop", cb)\n'
        'names = {"/twin/success": 1, "/tf": 2}\n'
        'paths = [open("/proc/stat"), tmp + "/a", "~/.cache/legion", f"{node}/cancel"]\n'
    )
    assert name_literals(src, stems) == [
        (2, "/legion/new_topic"),
        (3, "/other_node/go"),
        (4, "~/stop"),
        (5, "/twin/success"),
        (5, "/tf"),
    ]


def test_no_module_spells_a_graph_name_that_the_interface_owns():
    stems = _graph_stems()
    offenders = []
    for root in SCANNED:
        for path in sorted((REPO / root).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if rel == "legion_core/contracts/interface.py":
                continue
            offenders += [f"{rel}:{line}: {text!r}" for line, text in name_literals(path.read_text(), stems)]
    assert not offenders, (
        "graph names spelled outside legion_core/contracts/interface.py (declare them there and import the "
        "constant):\n" + "\n".join(offenders)
    )
