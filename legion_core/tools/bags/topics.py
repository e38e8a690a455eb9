"""The topic table of `legion record` / `legion replay` and the QoS mapping between rclpy, the interface
contract and rosbag2 metadata (legion_core/tools/bags/)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from legion_core.contracts.interface import (
    LATCHED,
    QOS,
    RELIABLE,
    TOPIC_ACTION,
    TOPIC_ACTIVE_SKILL,
    TOPIC_CLOCK,
    TOPIC_COMMAND_REPORT,
    TOPIC_COMMAND_STATUS,
    TOPIC_DETECTIONS,
    TOPIC_DIAGNOSTICS,
    TOPIC_ESTOP,
    TOPIC_GRIPPER_COMMAND,
    TOPIC_GRIPPER_STATE,
    TOPIC_JOINT_COMMAND,
    TOPIC_JOINT_STATES,
    TOPIC_OBSERVATION,
    TOPIC_STATUS,
    TOPIC_TWIN_SUCCESS,
    TOPICS,
    Durability,
    Reliability,
    TopicSpec,
)

# ------------------------------------------------------------------------------------------- topic table
# Names, message types and QoS kinds come from the interface contract (legion_core.contracts.interface);
# this table only chooses which of its topics `legion record` / `legion replay` take by default.

#: Every runtime topic (docs/architecture.md), the default set of `legion record`.
RUNTIME_TOPICS: dict[str, TopicSpec] = {
    name: TOPICS[name]
    for name in (
        TOPIC_JOINT_STATES,
        TOPIC_DETECTIONS,
        TOPIC_GRIPPER_STATE,
        TOPIC_OBSERVATION,
        TOPIC_ACTIVE_SKILL,
        TOPIC_ACTION,
        TOPIC_JOINT_COMMAND,
        TOPIC_GRIPPER_COMMAND,
        TOPIC_COMMAND_REPORT,
        TOPIC_STATUS,
        TOPIC_ESTOP,
        TOPIC_TWIN_SUCCESS,
        TOPIC_DIAGNOSTICS,
        TOPIC_COMMAND_STATUS,  # the operator's commands and their outcomes: the console's past runs
    )
}
#: What a robot/twin feeds the runtime: the default of `legion replay` (the runtime's own outputs are what a
#: replay re-computes, so they are not re-published).
SENSOR_TOPICS = (TOPIC_JOINT_STATES, TOPIC_DETECTIONS, TOPIC_GRIPPER_STATE, TOPIC_ACTIVE_SKILL)
#: What the runtime (real2sim + policy + sim2real) produces: what a regression check records.
OUTPUT_TOPICS = (
    TOPIC_OBSERVATION,
    TOPIC_ACTION,
    TOPIC_JOINT_COMMAND,
    TOPIC_GRIPPER_COMMAND,
    TOPIC_COMMAND_REPORT,
    TOPIC_STATUS,
)
CLOCK_TOPIC = TOPIC_CLOCK
CLOCK_TYPE = TOPICS[TOPIC_CLOCK].msgtype
SUBSCRIPTION_DEPTH = 1000  # receive-side buffer: a burst while the executor is busy must not overwrite


# ------------------------------------------------------------------------------------------------- QoS
def table_qos(kind: str, depth: int | None = None):
    """rclpy QoS of a QoS kind of the interface contract (what the runtime publishes with); `depth` overrides
    the kind's history depth."""
    from legion_core.ros.common import qos_profile

    return qos_profile(kind, depth)


def subscription_qos(pub_profiles: Sequence[Any], kind: str):
    """A subscription QoS that matches every current publisher (what rosbag2 does): best effort if any
    publisher is best effort, transient local only if all publishers are (then late joiners still get the
    latched value), and a deep receive buffer. Without publishers, the table's kind decides."""
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    if pub_profiles:
        best_effort = any(p.reliability == ReliabilityPolicy.BEST_EFFORT for p in pub_profiles)
        latched = all(p.durability == DurabilityPolicy.TRANSIENT_LOCAL for p in pub_profiles)
    else:
        spec = QOS[kind]
        best_effort = spec.reliability == Reliability.BEST_EFFORT
        latched = spec.durability == Durability.TRANSIENT_LOCAL
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=SUBSCRIPTION_DEPTH,
        reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )


def qos_compatible(sub, pub) -> bool:
    from rclpy.qos import DurabilityPolicy, ReliabilityPolicy

    if sub.reliability == ReliabilityPolicy.RELIABLE and pub.reliability == ReliabilityPolicy.BEST_EFFORT:
        return False
    return not (
        sub.durability == DurabilityPolicy.TRANSIENT_LOCAL and pub.durability == DurabilityPolicy.VOLATILE
    )


def to_bag_qos(profile):
    """rclpy QoSProfile -> rosbags Qos (for the offered_qos_profiles of metadata.yaml and the mcap channel)."""
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

    def dur(d) -> QosTime:
        ns = int(getattr(d, "nanoseconds", 0) or 0)
        return QosTime(ns // 1_000_000_000, ns % 1_000_000_000)

    def enum(cls, value, default):
        name = getattr(value, "name", str(value)).upper()
        return cls[name] if name in cls.__members__ else default

    return Qos(
        history=enum(QosHistory, profile.history, QosHistory.KEEP_LAST),
        depth=int(profile.depth),
        reliability=enum(QosReliability, profile.reliability, QosReliability.RELIABLE),
        durability=enum(QosDurability, profile.durability, QosDurability.VOLATILE),
        deadline=dur(profile.deadline),
        lifespan=dur(profile.lifespan),
        liveliness=enum(QosLiveliness, profile.liveliness, QosLiveliness.AUTOMATIC),
        liveliness_lease_duration=dur(profile.liveliness_lease_duration),
        avoid_ros_namespace_conventions=bool(profile.avoid_ros_namespace_conventions),
    )


def from_bag_qos(qos_list: Sequence[Any], topic: str):
    """Publisher QoS for replaying a topic: the recorded offered profile (latched stays latched), else the
    table's, else reliable depth 10."""
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    if qos_list:
        q = qos_list[0]
        latched = any(x.durability.name == "TRANSIENT_LOCAL" for x in qos_list)
        best_effort = all(x.reliability.name == "BEST_EFFORT" for x in qos_list)
        return QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=max(int(q.depth), 10 if not latched else 1),
            reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
        )
    spec = RUNTIME_TOPICS.get(topic)
    return table_qos(spec.qos, depth=None if spec.qos == LATCHED else 10) if spec else table_qos(RELIABLE)
