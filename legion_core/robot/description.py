"""The arm's kinematic chain and limits from a robot description (URDF), parsed with urdf_parser_py (ROS's
urdfdom_py, installed on every robot PC; a URDF is not parsed by hand here), as the `ArmModel` that the
runtime's kinematics reads (legion_core.robot.kinematics).

Sources (`ArmSource.description`, the `arm` section of a calibration file; docs/robot-integration.md,
"Robot description"):
- `datasheet`: the iiwa 7 R800 datasheet model (the default; the simulated embodiment is built from it),
- `iiwa7`, `iiwa14`: lbr_description's chains shipped in legion_core/robot/descriptions/,
- `topic`: the URDF the driver's robot_state_publisher publishes (`robot_description`, received by the node),
- a path to a URDF file (relative to the calibration file).

The chain runs from `base_link` to `flange_link` (lbr_fri_ros2_stack: `<robot_name>_link_0` ->
`<robot_name>_link_ee`); its i-th revolute joint is LEGION's joint i (lbr_A1..lbr_A7, base to flange).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from legion_core.robot.frames import rpy_to_R
from legion_core.robot.kinematics import ArmJoint, ArmModel, ToolMount

DESCRIPTIONS = Path(__file__).resolve().parent / "descriptions"
SHIPPED = ("iiwa7", "iiwa14")
"""Descriptions shipped with the project (lbr_description's chains, link names with prefix `lbr_`)."""
DATASHEET = "datasheet"
TOPIC = "topic"


@dataclass(frozen=True)
class ArmSource:
    """Where the arm's kinematics and limits come from, and the tool on its flange."""

    description: str = DATASHEET
    """`datasheet`, `iiwa7`, `iiwa14`, `topic` (the driver's robot_description) or a URDF file path."""
    base_link: str = ""
    """First link of the chain (a URDF file or the topic; the shipped ones use lbr_link_0); '' = the
    calibration's robot base frame (frame_ids.base, e.g. lbr_link_0)."""
    flange_link: str = "lbr_link_ee"
    """Link at the flange face, where the tool is mounted (lbr_fri_ros2_stack: <robot_name>_link_ee)."""
    tool: ToolMount = field(default_factory=ToolMount)

    def __post_init__(self) -> None:
        if not isinstance(self.description, str) or not self.description.strip():
            raise ValueError(
                f"arm.description must be one of {[DATASHEET, *SHIPPED, TOPIC]} or a URDF file path, "
                f"got {self.description!r}"
            )

    @property
    def needs_topic(self) -> bool:
        return self.description == TOPIC


def from_urdf(text: str | bytes, base_link: str, flange_link: str, tool: ToolMount | None = None) -> ArmModel:
    """The chain `base_link` -> `flange_link` of a URDF document. ValueError names what is wrong and the fix."""
    from urdf_parser_py.urdf import URDF

    try:
        robot = URDF.from_xml_string(text.encode() if isinstance(text, str) else text)
    except Exception as e:  # the parser raises assorted types for malformed XML
        raise ValueError(f"the robot description is not a valid URDF ({type(e).__name__}: {e})") from None
    links = set(robot.link_map)
    for role, link in (("base_link", base_link), ("flange_link", flange_link)):
        if link not in links:
            raise ValueError(
                f"the description {robot.name!r} has no link {link!r} ({role}); set arm.{role} to one of "
                f"{sorted(links)}"
            )
    try:
        names = robot.get_chain(base_link, flange_link, joints=True, links=False, fixed=True)
    except KeyError as e:
        raise ValueError(f"the description has no chain {base_link} -> {flange_link} ({e})") from None
    if not names:
        raise ValueError(
            f"the description has no chain {base_link} -> {flange_link}: is the base above the flange?"
        )
    joints: list[ArmJoint] = []
    # Fixed joints fold into the next joint's frame (or the flange's after the last revolute joint).
    p_acc, R_acc = np.zeros(3), np.eye(3)
    for n in names:
        j = robot.joint_map[n]
        xyz = np.array(j.origin.xyz if j.origin is not None and j.origin.xyz else (0, 0, 0), float)
        R = rpy_to_R(j.origin.rpy if j.origin is not None and j.origin.rpy else (0, 0, 0))
        p_acc, R_acc = p_acc + R_acc @ xyz, R_acc @ R
        if j.type == "fixed":
            continue
        if j.type not in ("revolute", "continuous"):
            raise ValueError(f"joint {n} is {j.type}; the arm's chain must be revolute and fixed joints only")
        axis = np.array(j.axis if j.axis is not None else (1.0, 0.0, 0.0), float)  # URDF's default axis
        if j.limit is None or (j.type == "revolute" and j.limit.lower == j.limit.upper):
            raise ValueError(f"joint {n} has no position limits in the description; add <limit lower upper>")
        lower, upper = (
            (float(j.limit.lower), float(j.limit.upper)) if j.type == "revolute" else (-np.pi, np.pi)
        )
        joints.append(
            ArmJoint(
                n,
                tuple(map(float, p_acc)),
                R_acc.copy(),
                tuple(map(float, axis / np.linalg.norm(axis))),
                lower,
                upper,
                float(j.limit.velocity),
            )
        )
        p_acc, R_acc = np.zeros(3), np.eye(3)
    return ArmModel(robot.name, tuple(joints), tuple(map(float, p_acc)), R_acc, tool or ToolMount())


def shipped_urdf(model: str, robot_name: str = "lbr") -> str:
    """The text of a shipped description (`iiwa7` | `iiwa14`), its links and joints prefixed `robot_name`
    as lbr_description names them (`<robot_name>_link_0`, `<robot_name>_A1`)."""
    if model not in SHIPPED:
        raise ValueError(f"no shipped description {model!r}; have {list(SHIPPED)}")
    text = (DESCRIPTIONS / f"{model}.urdf").read_text()
    return text if robot_name == "lbr" else text.replace('"lbr_', f'"{robot_name}_')


def load_arm(source: ArmSource, relative_to: Path | None = None, urdf_text: str | None = None) -> ArmModel:
    """The ArmModel for `source`. `urdf_text` is the robot_description received for `topic`; a file path is
    resolved against `relative_to` (the calibration file's folder). ValueError says what is wrong."""
    d = source.description
    if d == DATASHEET:
        return ArmModel.datasheet(source.tool)
    if d in SHIPPED:
        return from_urdf(shipped_urdf(d), "lbr_link_0", "lbr_link_ee", source.tool)
    if d == TOPIC:
        if urdf_text is None:
            raise ValueError("arm.description is `topic` but no robot_description was received")
        return from_urdf(urdf_text, source.base_link or "lbr_link_0", source.flange_link, source.tool)
    path = Path(d).expanduser()
    if not path.is_absolute() and relative_to is not None:
        path = relative_to / path
    try:
        text = path.read_text()
    except OSError as e:
        raise ValueError(
            f"arm.description: cannot read the URDF file {path} ({e.strerror}); give a path relative to the "
            f"calibration file, or one of {[DATASHEET, *SHIPPED, TOPIC]}"
        ) from None
    return from_urdf(text, source.base_link or "lbr_link_0", source.flange_link, source.tool)
