"""What a bag says about one run of the runtime: its observations, actions, command reports, statuses,
skills, twin success, joint states and detections, decoded with rosbags from the bag's own message
definitions (no ROS needed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from legion_core.contracts.interface import (
    TOPIC_ACTION,
    TOPIC_ACTIVE_SKILL,
    TOPIC_COMMAND_REPORT,
    TOPIC_DETECTIONS,
    TOPIC_JOINT_STATES,
    TOPIC_OBSERVATION,
    TOPIC_STATUS,
    TOPIC_TWIN_SUCCESS,
)
from legion_core.tools.bags.store import read_bag_signature, resolve_bag
from legion_core.tools.bags.topics import SENSOR_TOPICS


@dataclass
class Obs:
    t_ns: int
    stamp_ns: int
    skill: str
    valid: bool
    reason: str
    values: np.ndarray


@dataclass
class Act:
    t_ns: int
    stamp_ns: int
    skill: str
    action: np.ndarray
    sequence: int


@dataclass
class Report:
    t_ns: int
    stamp_ns: int
    q_requested: np.ndarray
    q_sent: np.ndarray
    gripper_m: float
    limits_hit: tuple[str, ...]
    hold: bool
    reason: str


@dataclass
class Status:
    t_ns: int
    node: str
    level: int
    message: str


@dataclass
class Session:
    """What a bag says about one run of the runtime (decoded with rosbags from the bag's own definitions)."""

    path: Path
    start_ns: int = 0
    end_ns: int = 0
    observations: list[Obs] = field(default_factory=list)
    actions: list[Act] = field(default_factory=list)
    reports: list[Report] = field(default_factory=list)
    statuses: list[Status] = field(default_factory=list)
    skills: list[tuple[int, str]] = field(default_factory=list)
    success: list[tuple[int, bool]] = field(default_factory=list)
    joint_states: list[tuple[int, list[str], np.ndarray]] = field(default_factory=list)
    detections: list[tuple[int, list[tuple[str, np.ndarray, float]]]] = field(default_factory=list)
    topics: dict[str, int] = field(default_factory=dict)
    sensor_span_ns: tuple[int, int] = (0, 0)
    """Log-time span of the sensor topics (what a replay feeds)."""
    numeric_signature: dict | None = None
    """The recording machine's numeric signature (bag metadata), None if the bag has none."""


def _stamp_ns(header) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def read_session(path: str | Path, max_joint_states: int | None = 5) -> Session:
    """Decode the runtime topics of a bag. Only the first `max_joint_states` joint states are kept (the
    closed loop needs the start; None keeps all)."""
    from rosbags.highlevel import AnyReader

    bag = resolve_bag(path)
    s = Session(bag, numeric_signature=read_bag_signature(bag))
    sensor_t: list[int] = []
    with AnyReader([bag]) as r:
        s.start_ns, s.end_ns = r.start_time, r.end_time
        s.topics = {c.topic: c.msgcount for c in r.connections}
        for c, t, raw in r.messages():
            topic = c.topic
            if topic in SENSOR_TOPICS:
                sensor_t.append(t)
            if topic == TOPIC_OBSERVATION:
                m = r.deserialize(raw, c.msgtype)
                s.observations.append(
                    Obs(
                        t,
                        _stamp_ns(m.header),
                        m.skill,
                        bool(m.valid),
                        m.reason,
                        np.asarray(m.values, np.float64),
                    )
                )
            elif topic == TOPIC_ACTION:
                m = r.deserialize(raw, c.msgtype)
                s.actions.append(
                    Act(t, _stamp_ns(m.header), m.skill, np.asarray(m.action, np.float64), int(m.sequence))
                )
            elif topic == TOPIC_COMMAND_REPORT:
                m = r.deserialize(raw, c.msgtype)
                s.reports.append(
                    Report(
                        t,
                        _stamp_ns(m.header),
                        np.asarray(m.q_requested, float),
                        np.asarray(m.q_sent, float),
                        float(m.gripper_opening_m),
                        tuple(m.limits_hit),
                        bool(m.hold),
                        m.reason,
                    )  # fmt: skip
                )
            elif topic == TOPIC_STATUS:
                m = r.deserialize(raw, c.msgtype)
                s.statuses.append(Status(t, m.node, int(m.level), m.message))
            elif topic == TOPIC_ACTIVE_SKILL:
                s.skills.append((t, r.deserialize(raw, c.msgtype).data))
            elif topic == TOPIC_TWIN_SUCCESS:
                s.success.append((t, bool(r.deserialize(raw, c.msgtype).data)))
            elif topic == TOPIC_JOINT_STATES and (
                max_joint_states is None or len(s.joint_states) < max_joint_states
            ):
                m = r.deserialize(raw, c.msgtype)
                s.joint_states.append((t, list(m.name), np.asarray(m.position, float)))
            elif topic == TOPIC_DETECTIONS and len(s.detections) < 200:
                m = r.deserialize(raw, c.msgtype)
                dets = [(d.label, np.array([d.pose.position.x, d.pose.position.y, d.pose.position.z]),
                         float(d.confidence)) for d in m.detections]  # fmt: skip
                s.detections.append((t, dets))
    if sensor_t:
        s.sensor_span_ns = (min(sensor_t), max(sensor_t))
    return s


def skill_of(rec: Session) -> str:
    for _, s in rec.skills:
        if s:
            return s
    for o in rec.observations:
        if o.skill:
            return o.skill
    return ""
