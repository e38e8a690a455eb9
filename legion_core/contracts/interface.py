"""The runtime graph's interface contract, in one place: every topic, service and action name, the QoS of
each kind of stream, and the status levels (docs/architecture.md, "Data flow, one control step").

Pure Python (no rclpy): tools that only read bags, the regression checks and the tests import it on machines
without ROS. `legion_core.ros.common` turns the QoS specs into rclpy `QoSProfile`s (`qos_profile`), the nodes,
tools and benches take their names from here, and `legion_core.tools.bags` derives its topic table from
`TOPICS`. Launch files and docs keep the literal names (they are read by `ros2 launch` and by people);
tests/unit/test_interface.py fails when code grows a topic literal that is not declared here.

Names are written absolute, as a client in the root namespace calls them; the nodes use them relative
(`robot_scoped`), so a runtime launched in a namespace (`namespace:=arm1`) keeps to /arm1/... and two arms run
side by side. Service names are private to the node that serves them ("~/estop" resolves to
"/sim2real_node/estop", "/arm1/sim2real_node/estop" in a namespace), with the resolved name beside them for
clients.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum, IntEnum


# ----------------------------------------------------------------------------------------------- QoS
class Reliability(str, Enum):
    """DDS reliability: best effort drops a sample rather than resend it (sensor streams)."""

    RELIABLE = "reliable"
    BEST_EFFORT = "best_effort"


class Durability(str, Enum):
    """DDS durability: transient-local keeps the last `depth` samples for late-joining subscribers."""

    VOLATILE = "volatile"
    TRANSIENT_LOCAL = "transient_local"


class History(str, Enum):
    """DDS history: the runtime only keeps the last `depth` samples (never an unbounded queue)."""

    KEEP_LAST = "keep_last"


@dataclass(frozen=True)
class QosSpec:
    """A QoS profile as plain data; `legion_core.ros.common.qos_profile` makes the rclpy `QoSProfile`."""

    depth: int
    """History depth: how many samples a writer/reader keeps per topic [messages]."""
    reliability: Reliability = Reliability.RELIABLE
    """Reliable (resend until acknowledged) or best effort (drop instead of resend)."""
    durability: Durability = Durability.VOLATILE
    """Volatile (only live samples) or transient-local (late joiners get the last `depth` samples)."""
    history: History = History.KEEP_LAST
    """History policy; always keep-last here."""


# QoS kinds (docs/architecture.md, "Data flow, one control step"): sensor streams best effort, shallow;
# commands reliable depth 1; the active skill and the safety state transient-local so that late joiners get
# the last value. The kind names are also what `legion_core.tools.bags` stores per topic.
SENSOR, RELIABLE, COMMAND, LATCHED = "sensor", "reliable", "command", "latched"
OPERATOR, HEARTBEAT, STATUS = "operator", "heartbeat", "status"

QOS: dict[str, QosSpec] = {
    # Sensor streams: a late sample is worth less than the next one, so never resend; shallow queue.
    SENSOR: QosSpec(depth=5, reliability=Reliability.BEST_EFFORT),
    # Runtime data every consumer must see (observations, actions, reports, status, diagnostics).
    RELIABLE: QosSpec(depth=10),
    # Robot commands: only the newest target matters; reliable so that it is not silently lost.
    COMMAND: QosSpec(depth=1),
    # Last-value topics (active skill, safety state, twin success): late joiners get the current value.
    LATCHED: QosSpec(depth=1, durability=Durability.TRANSIENT_LOCAL),
    # Operator commands and their replies: a burst of commands must not be dropped by a shallow queue (every
    # command gets a CommandStatus reply; the sequencer refuses what it cannot run instead of losing it).
    OPERATOR: QosSpec(depth=100),
    # Node status: reliable and transient-local, so a late joiner (an operator's `ros2 topic echo`, a console)
    # gets each node's last statuses, including a refusal published before it started listening.
    STATUS: QosSpec(depth=10, durability=Durability.TRANSIENT_LOCAL),
    # Heartbeats: the newest is all that matters; a lost one only brings the deadline closer.
    HEARTBEAT: QosSpec(depth=10, reliability=Reliability.BEST_EFFORT),
}


# ----------------------------------------------------------------------------------------- node names
NODE_POLICY = "policy_node"
NODE_REAL2SIM = "real2sim_node"
NODE_SIM2REAL = "sim2real_node"
NODE_TASK_SEQUENCER = "task_sequencer_node"
NODE_TWIN = "twin_node"
NODE_PERCEPTION = "perception_node"
NODE_CONSOLE = "console_node"


def node_fqn(node: str) -> str:
    """The fully qualified name of a node in the root namespace ("policy_node" -> "/policy_node"), as
    heartbeats and `get_fully_qualified_name()` report it."""
    return f"/{node}"


def resolved_service(node: str, private_name: str) -> str:
    """The name a client calls for a node's private service ("sim2real_node", "~/rearm" -> "/sim2real_node/rearm")."""
    if not private_name.startswith("~/"):
        raise ValueError(f"{private_name!r} is not a private name (it must start with '~/')")
    return f"{node_fqn(node)}/{private_name[2:]}"


# ----------------------------------------------------------------------------------------------- topics
# sensor_msgs/JointState; pub: robot driver or twin_node; sub: real2sim_node, sim2real_node (tools: longhorizon).
TOPIC_JOINT_STATES = "/joint_states"
# legion_msgs/ObjectDetectionArray; pub: camera pipeline or twin_node; sub: real2sim_node.
TOPIC_DETECTIONS = "/detections"
# std_msgs/Float64 gripper opening [m]; pub: gripper driver or twin_node; sub: real2sim_node.
TOPIC_GRIPPER_STATE = "/gripper_state"
# legion_msgs/Observation; pub: real2sim_node; sub: policy_node, sim2real_node, task_sequencer_node.
TOPIC_OBSERVATION = "/legion/observation"
# std_msgs/String (latched); pub: task_sequencer_node (tools: demo, bench transfer); sub: real2sim_node,
# policy_node, sim2real_node.
TOPIC_ACTIVE_SKILL = "/legion/active_skill"
#: The reserved skill name on /legion/active_skill for the ready move (sim2real's slow joint-space move to
#: the policy's tool orientation, docs/robot-integration.md "The ready move"): no policy acts; the task
#: sequencer puts it first in a plan when the arm's tool orientation is not the policy's.
READY_SKILL = "ready"
# legion_msgs/PolicyAction; pub: policy_node; sub: sim2real_node (tools: demo, longhorizon).
TOPIC_ACTION = "/legion/action"
# std_msgs/Float64MultiArray (trajectory_msgs/JointTrajectory with sim2real_node's command_type "trajectory");
# pub: sim2real_node; sub: robot driver or twin_node.
TOPIC_JOINT_COMMAND = "/joint_command"
# std_msgs/Float64 gripper opening command [m]; pub: sim2real_node; sub: gripper driver or twin_node.
TOPIC_GRIPPER_COMMAND = "/gripper_command"
# legion_msgs/CommandReport; pub: sim2real_node; sub: task_sequencer_node (bench runtime, regression checks).
TOPIC_COMMAND_REPORT = "/legion/command_sent"
# legion_msgs/RuntimeStatus; pub: every LegionNode (`publish_status`); sub: operators, tools (demo, longhorizon).
TOPIC_STATUS = "/legion/status"
# std_msgs/Bool, True = e-stop; pub: operator, tests, bench faults; sub: sim2real_node (latched and volatile).
TOPIC_ESTOP = "/legion/estop"
# std_msgs/Bool, True = pressed; pub: a hardware e-stop input (a safety relay read by a GPIO/IO driver);
# sub: sim2real_node (its hw_estop_topic parameter).
TOPIC_ESTOP_HW = "/legion/estop_hw"
# std_msgs/String operator command; pub: operator (`ros2 topic pub`); sub: task_sequencer_node.
TOPIC_COMMAND_TEXT = "/legion/command"
# legion_msgs/CommandStatus, one reply per command; pub: task_sequencer_node; sub: operator, command_client.
TOPIC_COMMAND_STATUS = "/legion/command_status"
# std_msgs/Empty; pub: operator; sub: task_sequencer_node (cancels the running plan).
TOPIC_CANCEL = "/legion/cancel"
# legion_msgs/Heartbeat; pub: policy_node, real2sim_node, task_sequencer_node; sub: sim2real_node (liveness).
TOPIC_HEARTBEAT = "/legion/heartbeat"
#: Default heartbeat period [s] of the nodes on the control path (policy_node, real2sim_node): sim2real_node
#: holds after two missed ones, so this sets how fast a dead node is caught (docs/architecture.md, "Safety layer").
CONTROL_PATH_HEARTBEAT_PERIOD_S = 0.02
# sensor_msgs/JointState; pub and sub: `legion bench runtime`'s floor (one cross-process DDS hop, off the graph).
TOPIC_BENCH_HOP_JOINT_STATES = "/legion_bench/hop_joint_states"
# legion_msgs/SafetyState (latched); pub: sim2real_node; sub: task_sequencer_node.
TOPIC_SAFETY_STATE = "/legion/safety_state"
# geometry_msgs/WrenchStamped estimated external wrench at the flange; pub: twin_node (from MuJoCo's contacts,
# the twin driver profile's stand-in for a driver's estimate); sub: sim2real_node (contact guard).
TOPIC_TWIN_WRENCH = "/twin/wrench"
# std_msgs/Bool (latched) task success in the twin; pub: twin_node; sub: tools (demo, bench transfer, regression).
TOPIC_TWIN_SUCCESS = "/twin/success"
# diagnostic_msgs/DiagnosticArray; pub: every LegionNode; sub: diagnostics aggregators, longhorizon, bench faults.
TOPIC_DIAGNOSTICS = "/diagnostics"
# tf2_msgs/TFMessage (latched, as tf2_ros's static broadcaster); pub: real2sim_node (the calibrated frames:
# base -> sim_world, base -> camera); sub: RViz, tf2 listeners, a lab's perception.
TOPIC_TF_STATIC = "/tf_static"
# rosgraph_msgs/Clock; pub: bag replay with --sim-clock; sub: every node running with use_sim_time:=true.
TOPIC_CLOCK = "/clock"
# The camera driver's topics (not the runtime's, so not in TOPICS): realsense2_camera 4.x's defaults (namespace
# and name `camera`); sensor_msgs/Image and sensor_msgs/CameraInfo; sub: perception_node (its image_topic and
# camera_info_topic parameters; docs/perception.md).
CAMERA_IMAGE_TOPIC = "/camera/camera/color/image_raw"
CAMERA_INFO_TOPIC = "/camera/camera/color/camera_info"
# The driver's depth aligned to the colour image (realsense2_camera align_depth.enable:=true): sensor_msgs/Image
# 16UC1 [mm, 0 = no depth] and its CameraInfo (the colour camera's intrinsics); pub: the twin (camera_depth).
CAMERA_DEPTH_TOPIC = "/camera/camera/aligned_depth_to_color/image_raw"
CAMERA_DEPTH_INFO_TOPIC = "/camera/camera/aligned_depth_to_color/camera_info"


@dataclass(frozen=True)
class TopicSpec:
    """What travels on a topic and how the runtime publishes it."""

    msgtype: str
    """ROS 2 type name, e.g. sensor_msgs/msg/JointState."""
    qos: str
    """QoS kind (a key of `QOS`) the runtime publishes it with: sensor | reliable | command | latched |
    operator | heartbeat | status. Recorders use it when no publisher is up yet to adapt to."""


#: Every topic of the runtime graph: its message type and QoS kind.
TOPICS: dict[str, TopicSpec] = {
    TOPIC_JOINT_STATES: TopicSpec("sensor_msgs/msg/JointState", SENSOR),
    TOPIC_DETECTIONS: TopicSpec("legion_msgs/msg/ObjectDetectionArray", SENSOR),
    TOPIC_GRIPPER_STATE: TopicSpec("std_msgs/msg/Float64", SENSOR),
    TOPIC_OBSERVATION: TopicSpec("legion_msgs/msg/Observation", RELIABLE),
    TOPIC_ACTIVE_SKILL: TopicSpec("std_msgs/msg/String", LATCHED),
    TOPIC_ACTION: TopicSpec("legion_msgs/msg/PolicyAction", RELIABLE),
    TOPIC_JOINT_COMMAND: TopicSpec("std_msgs/msg/Float64MultiArray", COMMAND),
    TOPIC_GRIPPER_COMMAND: TopicSpec("std_msgs/msg/Float64", COMMAND),
    TOPIC_COMMAND_REPORT: TopicSpec("legion_msgs/msg/CommandReport", RELIABLE),
    TOPIC_STATUS: TopicSpec("legion_msgs/msg/RuntimeStatus", STATUS),
    TOPIC_ESTOP: TopicSpec("std_msgs/msg/Bool", RELIABLE),
    TOPIC_ESTOP_HW: TopicSpec("std_msgs/msg/Bool", RELIABLE),
    TOPIC_COMMAND_TEXT: TopicSpec("std_msgs/msg/String", OPERATOR),
    TOPIC_COMMAND_STATUS: TopicSpec("legion_msgs/msg/CommandStatus", OPERATOR),
    TOPIC_CANCEL: TopicSpec("std_msgs/msg/Empty", OPERATOR),
    TOPIC_HEARTBEAT: TopicSpec("legion_msgs/msg/Heartbeat", HEARTBEAT),
    TOPIC_SAFETY_STATE: TopicSpec("legion_msgs/msg/SafetyState", LATCHED),
    TOPIC_BENCH_HOP_JOINT_STATES: TopicSpec("sensor_msgs/msg/JointState", SENSOR),
    TOPIC_TWIN_SUCCESS: TopicSpec("std_msgs/msg/Bool", LATCHED),
    TOPIC_TWIN_WRENCH: TopicSpec("geometry_msgs/msg/WrenchStamped", SENSOR),
    TOPIC_DIAGNOSTICS: TopicSpec("diagnostic_msgs/msg/DiagnosticArray", RELIABLE),
    TOPIC_CLOCK: TopicSpec("rosgraph_msgs/msg/Clock", RELIABLE),
    TOPIC_TF_STATIC: TopicSpec("tf2_msgs/msg/TFMessage", LATCHED),
}

# sensor_msgs/JointState flood of the recorder throughput benchmark (pub and sub: the benchmark itself,
# `python -m legion_core.tools.bags bench`); not part of the runtime graph.
TOPIC_FLOOD_BENCH = "/legion_flood"

#: Topics of the whole graph, not of one robot: they stay absolute when the runtime runs in a namespace.
GLOBAL_TOPICS = frozenset({TOPIC_DIAGNOSTICS, TOPIC_CLOCK, TOPIC_TF_STATIC, TOPIC_BENCH_HOP_JOINT_STATES})


def robot_scoped(name: str) -> str:
    """The name a node uses for one of the runtime's graph names: relative ("legion/action") for a robot's
    own topics and actions, so that the nodes of an arm launched in namespace /arm1 meet on /arm1/legion/action
    and two arms run side by side without crosstalk; in the root namespace it resolves to the same absolute
    name as before. Global topics (GLOBAL_TOPICS) and names the runtime does not own (a driver's
    /lbr/joint_states) are returned unchanged."""
    if name.startswith("/") and (name in TOPICS or name == ACTION_EXECUTE_TASK) and name not in GLOBAL_TOPICS:
        return name[1:]
    return name


# ---------------------------------------------------------------------------------- services and actions
# std_srvs/Trigger; served by sim2real_node: latch the e-stop.
SERVICE_ESTOP = "~/estop"
# std_srvs/Trigger; served by sim2real_node: clear a latched e-stop (the only way to clear it).
SERVICE_REARM = "~/rearm"
# std_srvs/Trigger; served by sim2real_node: re-anchor on the measured posture (after a twin reset).
SERVICE_RESET = "~/reset"
# legion_msgs/ReadyTarget; served by sim2real_node: a target posture for the ready move (joint angles; only
# while the active skill is READY_SKILL; caller: `legion calibrate --graph/--robot`). A service, not a topic:
# the caller needs the refusal and its reason back before it waits for the arm (docs/robot-integration.md,
# "The ready move").
SERVICE_READY_TARGET = "~/ready_target"
# std_srvs/Trigger; served by task_sequencer_node: cancel the running plan.
SERVICE_CANCEL = "~/cancel"
# legion_msgs/PreviewCommand; served by task_sequencer_node: the plan a command would run now, without running
# it (caller: the operator console, docs/console.md).
SERVICE_PREVIEW = "~/preview"
# legion_msgs/ResetTask; served by twin_node: reset the simulated task (placement variation).
SERVICE_RESET_TASK = "~/reset_task"
# The same services as clients call them (callers: tests, bench faults/transfer, longhorizon).
SIM2REAL_ESTOP_SERVICE = resolved_service(NODE_SIM2REAL, SERVICE_ESTOP)
SIM2REAL_REARM_SERVICE = resolved_service(NODE_SIM2REAL, SERVICE_REARM)
SIM2REAL_RESET_SERVICE = resolved_service(NODE_SIM2REAL, SERVICE_RESET)
SIM2REAL_READY_TARGET_SERVICE = resolved_service(NODE_SIM2REAL, SERVICE_READY_TARGET)
SEQUENCER_CANCEL_SERVICE = resolved_service(NODE_TASK_SEQUENCER, SERVICE_CANCEL)
SEQUENCER_PREVIEW_SERVICE = resolved_service(NODE_TASK_SEQUENCER, SERVICE_PREVIEW)
TWIN_RESET_TASK_SERVICE = resolved_service(NODE_TWIN, SERVICE_RESET_TASK)

# legion_msgs/ExecuteTask; served by task_sequencer_node; clients: command_client, longhorizon (ChainRunner).
ACTION_EXECUTE_TASK = "/legion/execute_task"


# ------------------------------------------------------------------------------------------ status levels
def reason_kind(reason: str) -> str:
    """A status or hold reason without its numbers: "no action for 0.31 s" and "... 0.32 s" are one kind.
    sim2real republishes a hold only when its kind changes; the task sequencer counts holds per kind."""
    return re.sub(r"-?\d+(\.\d+)?", "#", reason)


class StatusLevel(IntEnum):
    """legion_msgs/RuntimeStatus (and SafetyState.level) levels; values equal the .msg constants
    (ros2_ws/src/legion_msgs/msg/RuntimeStatus.msg), checked by tests/unit/test_interface.py."""

    OK = 0
    WARN = 1
    HOLD = 2
    ESTOP = 3
    ERROR = 4


class CommandOutcome(IntEnum):
    """legion_msgs/CommandStatus outcomes (ros2_ws/src/legion_msgs/msg/CommandStatus.msg)."""

    ACCEPTED = 0
    BUSY = 1
    REFUSED = 2
    CANCELLED = 3
    SUCCEEDED = 4
    FAILED = 5


class DiagnosticLevel(IntEnum):
    """diagnostic_msgs/DiagnosticStatus levels that `LegionNode.publish_diagnostics` sends."""

    OK = 0
    WARN = 1
    ERROR = 2
