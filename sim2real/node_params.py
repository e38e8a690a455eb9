"""The ROS parameters of real2sim_node, sim2real_node and perception_node, each with its one default.

A parameter that configures the runtime logic is declared from that logic's config dataclass (the home of
its default: Real2SimConfig, MapperConfig, SupervisorConfig, PreflightConfig; the driver's: DriverParams); what only the node uses (its inputs, rates,
topic names) is a field of the node's own dataclass here. `*_node_parameters()` list them all in the order
the node declares them; ros2_ws/src/legion_bringup/config/runtime.yaml sets only what a deployment changes
(tests/unit/test_params.py checks it against these lists).
"""

from __future__ import annotations

from dataclasses import dataclass

from legion_core.base.params import Parameter, check_unique, parameters
from legion_core.contracts.drivers import DriverParams
from legion_core.contracts.interface import (
    CAMERA_IMAGE_TOPIC,
    CAMERA_INFO_TOPIC,
    CONTROL_PATH_HEARTBEAT_PERIOD_S,
    TOPIC_ESTOP_HW,
)
from sim2real.mapper import MapperConfig
from sim2real.preflight import PreflightConfig
from sim2real.real2sim import Real2SimConfig
from sim2real.supervisor import SupervisorConfig

#: Real2SimConfig fields that are real2sim_node parameters of the same name.
REAL2SIM_CONFIG_PARAMETERS = ("detection_filter", "min_confidence", "max_joint_age_s", "max_object_age_s")
#: MapperConfig fields that are sim2real_node parameters of the same name (the rest: calibration, bundle).
MAPPER_CONFIG_PARAMETERS = ("timing", "policy_period_s", "max_tool_speed_m_s", "joint_vel_scale")


@dataclass
class Real2SimNodeParams:
    """real2sim_node's own parameters (the observation's tuning is Real2SimConfig's)."""

    calibration: str = ""
    """Calibration YAML of the cell ('' = the simulated embodiment's)."""
    layout: str = "legion12"
    """Observation layout of the bundle (legion_core.contracts.layouts)."""
    rate_hz: float = 50.0
    """Observation rate [Hz]: joint states are decimated to this grid of their stamps
    (sim2real.decimation); the policy acts on each observation."""
    skill: str = ""
    """Skill active at start ('' = wait for /legion/active_skill)."""
    bundle: str = ""
    """Bundle directory: detections outside its workspace box (+ workspace_margin_m) are refused ('' = no
    box check)."""
    workspace_margin_m: float = Real2SimConfig.skill_box_margin_m
    """Detections may lie this far [m] outside the bundle's workspace box (Real2SimConfig.skill_box_margin_m)."""
    trusted_keys: str = ""
    """Public keys a bundle must be signed by ('' = no check; docs/bundle-signing.md)."""
    heartbeat_period_s: float = CONTROL_PATH_HEARTBEAT_PERIOD_S
    """Liveness heartbeat period [s], watched by sim2real_node (held after two missed ones)."""
    pose_topics: str = ""
    """Objects from a lab's own perception: comma-separated `label=topic` pairs of geometry_msgs/PoseStamped
    (header.frame_id: any calibrated frame), e.g. "button=/perception/button/pose" ('' = none; they join
    the detections on /detections; docs/perception.md)."""
    detection3d_topic: str = ""
    """Objects from a lab's own perception as vision_msgs/Detection3DArray ('' = none): each detection's
    highest-score hypothesis is one detection (class_id as the label, score as the confidence, its pose in
    the detection's header.frame_id, else the array's: any calibrated frame; docs/perception.md)."""
    detection3d_labels: str = ""
    """Object labels of the Detection3DArray's class ids where they differ: comma-separated `class_id=label`
    pairs, e.g. "handle=drawer_handle,btn=button" ('' = each class_id is the label; unlisted ones too)."""


def _parse_pairs(text: str, param: str, form: str, key_name: str, value_ok) -> dict[str, str]:
    """A comma-separated `key=value` list parameter as a dict; ValueError names the bad entry, the form
    (`form`, with an example) and a key given twice."""
    out: dict[str, str] = {}
    for entry in filter(None, (e.strip() for e in text.split(","))):
        key, sep, value = (x.strip() for x in entry.partition("="))
        if not sep or not key or not value_ok(value):
            raise ValueError(f"{param} entry {entry!r} must be {form}")
        if key in out:
            raise ValueError(f"{param} names {key_name} {key!r} twice")
        out[key] = value
    return out


def parse_pose_topics(text: str) -> dict[str, str]:
    """`pose_topics` as {label: topic}. ValueError names the bad entry and the form."""
    return _parse_pairs(text, "pose_topics", "label=/absolute/topic, e.g. button=/perception/button/pose",
                        "label", lambda topic: topic.startswith("/"))  # fmt: skip


def parse_detection3d_labels(text: str) -> dict[str, str]:
    """`detection3d_labels` as {class_id: label}. ValueError names the bad entry and the form."""
    return _parse_pairs(text, "detection3d_labels", "class_id=label, e.g. handle=drawer_handle", "class_id",
                        lambda label: bool(label) and "=" not in label)  # fmt: skip


@dataclass
class Sim2RealNodeParams:
    """sim2real_node's own parameters (the safety limits are SupervisorConfig's, the motion limits
    MapperConfig's)."""

    calibration: str = ""
    """Calibration YAML of the cell ('' = the simulated embodiment's)."""
    bundle: str = ""
    """Bundle directory: its action scale and workspace box are used ('' = MapperConfig's)."""
    hw_estop_topic: str = TOPIC_ESTOP_HW
    """Hardware e-stop input, std_msgs/Bool, true = pressed ('' = none)."""
    trusted_keys: str = ""
    """Public keys a bundle must be signed by ('' = no check; docs/bundle-signing.md)."""
    latency_log: str = ""
    """Benchmarks: JSON file written at shutdown with every stamp -> command latency and command publish
    time [s] ('' = off; sim2real.control_stats)."""


@dataclass
class PerceptionNodeParams:
    """perception_node's parameters (docs/perception.md)."""

    image_topic: str = CAMERA_IMAGE_TOPIC
    """sensor_msgs/Image from the camera driver (rgb8, bgr8 or mono8)."""
    camera_info_topic: str = CAMERA_INFO_TOPIC
    """sensor_msgs/CameraInfo of that image (K and plumb-bob distortion)."""
    tag_map: str = ""
    """Tag map YAML: tag id -> object label and printed size ('' = the twin's, sim2real/config/tags_twin.yaml)."""
    max_reprojection_px: float = 2.0
    """A tag pose whose corners reproject further than this [px] from the detected ones is rejected."""
    quad_decimate: float = 2.0
    """Tag outlines are searched on the image shrunk by this factor (edges refined at full size): speed."""
    diagnostics_period_s: float = 1.0
    """Period [s] of the /diagnostics summary (frames, detections, rejected frames, latency)."""
    latency_log: str = ""
    """Benchmarks: JSON file written at shutdown with every used frame's (image stamp, stamp -> detections
    published latency) [s] and the frame counts ('' = off; `legion bench perception`)."""


#: DriverParams fields real2sim_node declares (it reads only the joint states).
REAL2SIM_DRIVER_PARAMETERS = ("driver", "robot_name", "joint_states_topic", "robot_description_timeout_s")


def real2sim_node_parameters() -> list[Parameter]:
    """Every parameter real2sim_node declares, with its default and description."""
    return check_unique(
        [
            *parameters(Real2SimNodeParams),
            *parameters(DriverParams, REAL2SIM_DRIVER_PARAMETERS),
            *parameters(Real2SimConfig, REAL2SIM_CONFIG_PARAMETERS),
        ]
    )


def perception_node_parameters() -> list[Parameter]:
    """Every parameter perception_node declares, with its default and description."""
    return check_unique(list(parameters(PerceptionNodeParams)))


def sim2real_node_parameters() -> list[Parameter]:
    """Every parameter sim2real_node declares, with its default and description."""
    return check_unique(
        [
            *parameters(Sim2RealNodeParams),
            *parameters(DriverParams),
            *parameters(MapperConfig, MAPPER_CONFIG_PARAMETERS),
            *parameters(SupervisorConfig),
            *parameters(PreflightConfig),
        ]
    )
