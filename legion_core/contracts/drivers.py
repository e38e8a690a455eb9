"""Driver profiles: the ROS interface of the robot driver the runtime talks to, chosen by one launch argument
(`driver:=lbr | ros2_control | twin`), resolved to absolute names, message types and command rates.

One home for what the driver side looks like (docs/robot-integration.md): the runtime nodes subscribe and
publish on the names resolved here, the pre-flight checks (sim2real.preflight) know which controller must
be active and where to ask, and the twin's lbr emulator (legion_core.sim.emulator) serves the same names,
so robot.launch.yaml is tested against the interface a lab has, not against the runtime's own.

- `lbr`: lbr_fri_ros2_stack. Everything under the namespace `robot_name` (default `lbr`); joints
  `<robot_name>_A1..A7`; two position controllers, `forward_position_controller` (std_msgs/Float64MultiArray
  on `~/commands`) and `joint_trajectory_controller` (trajectory_msgs/JointTrajectory on
  `~/joint_trajectory`; the stack's default); `controller_manager` services; the robot state of
  `lbr_state_broadcaster` (lbr_fri_idl/LBRState on `state`) and the estimated external wrench of
  `force_torque_broadcaster`. The FRI send period and the controller manager's update rate go together
  (10 ms <-> 100 Hz, 2 ms <-> 500 Hz): the command rate must be a whole-millisecond period.
- `ros2_control`: any ros2_control driver with a forward position or joint trajectory controller, in an
  optional namespace; the controller name is configuration, the command interface says which kind it is.
- `twin`: the runtime's own MuJoCo twin (legion_core.sim.twin) on the runtime's default names (its wrench
  estimate from MuJoCo's contacts on /twin/wrench).

Pure Python (no rclpy): the nodes, `legion doctor`, the emulator and the tests share it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from legion_core.contracts.interface import TOPIC_JOINT_COMMAND, TOPIC_JOINT_STATES, TOPIC_TWIN_WRENCH

#: The profiles `driver` may name.
DRIVERS = ("lbr", "ros2_control", "twin")
#: Joint command message kinds (sim2real_node's `command_interface`).
POSITION_ARRAY, TRAJECTORY = "position_array", "trajectory"
COMMAND_INTERFACES = (POSITION_ARRAY, TRAJECTORY)
#: The two position controllers of lbr_fri_ros2_stack (and of ros2_controllers), with their command kind.
FORWARD_POSITION_CONTROLLER = "forward_position_controller"
JOINT_TRAJECTORY_CONTROLLER = "joint_trajectory_controller"
LBR_CONTROLLERS = {FORWARD_POSITION_CONTROLLER: POSITION_ARRAY, JOINT_TRAJECTORY_CONTROLLER: TRAJECTORY}
#: The controllers and broadcasters the lbr stack's bringup loads besides the command controller.
LBR_BROADCASTERS = ("joint_state_broadcaster", "lbr_state_broadcaster", "force_torque_broadcaster")
#: Relative names under a ros2_control namespace (controller_manager, controllers, broadcasters).
_JOINT_STATES = "joint_states"
_COMMANDS = {POSITION_ARRAY: "commands", TRAJECTORY: "joint_trajectory"}
_CONTROLLER_MANAGER = "controller_manager"
_LBR_STATE = "state"
_LBR_WRENCH = "force_torque_broadcaster/wrench"
#: robot_state_publisher's URDF (std_msgs/String, transient local), in the driver's namespace.
_ROBOT_DESCRIPTION = "robot_description"
ROBOT_DESCRIPTION_TYPE = "std_msgs/msg/String"
#: Message types (ROS 2 names) on the driver side.
JOINT_STATE_TYPE = "sensor_msgs/msg/JointState"
COMMAND_TYPES = {
    POSITION_ARRAY: "std_msgs/msg/Float64MultiArray",
    TRAJECTORY: "trajectory_msgs/msg/JointTrajectory",
}
LBR_STATE_TYPE = "lbr_fri_idl/msg/LBRState"
WRENCH_TYPE = "geometry_msgs/msg/WrenchStamped"
LIST_CONTROLLERS_TYPE = "controller_manager_msgs/srv/ListControllers"
SWITCH_CONTROLLER_TYPE = "controller_manager_msgs/srv/SwitchController"
#: The controller manager parameter that sets the control rate [Hz].
UPDATE_RATE_PARAMETER = "update_rate"
#: Command rates the lbr profile accepts: FRI send periods of 1-10 ms in whole milliseconds [Hz].
LBR_COMMAND_RATES_HZ = tuple(1000.0 / n for n in range(1, 11))


class DriverProfileError(ValueError):
    """A driver setting that cannot work; the message names the parameter and the fix."""


@dataclass(frozen=True)
class DriverProfile:
    """The resolved interface of one driver: absolute names, message kinds, what must be active."""

    driver: str
    """Profile name: lbr | ros2_control | twin."""
    namespace: str
    """The driver's namespace, absolute ('' = root): /lbr for lbr_fri_ros2_stack's default robot_name."""
    joint_names: tuple[str, ...]
    """The driver's joint names, base to flange, where the profile knows them (() = the calibration's
    joint_names say); the calibration's joint_names map them to LEGION's."""
    joint_states_topic: str
    """sensor_msgs/JointState from the driver (joint_state_broadcaster)."""
    command_topic: str
    """Where joint commands go: the active position controller's command topic."""
    command_interface: str
    """position_array (std_msgs/Float64MultiArray) | trajectory (trajectory_msgs/JointTrajectory)."""
    controller: str
    """The ros2_control controller that must be active for commands to move the arm ('' = none: the twin)."""
    controller_manager: str
    """Absolute name of the controller manager node ('' = none)."""
    robot_state_topic: str
    """lbr_fri_idl/LBRState of lbr_state_broadcaster ('' = the driver has none)."""
    wrench_topic: str
    """geometry_msgs/WrenchStamped estimated external wrench at the flange ('' = none)."""
    command_rate_hz: float
    """Joint command stream rate [Hz], checked against what the profile supports."""
    robot_description_topic: str = ""
    """std_msgs/String URDF of the driver's robot_state_publisher ('' = none: the twin)."""

    @property
    def command_type(self) -> str:
        """ROS 2 type name of the command message."""
        return COMMAND_TYPES[self.command_interface]

    def controller_manager_service(self, name: str) -> str:
        """`<controller_manager>/<name>` ('' when the driver has no controller manager)."""
        return f"{self.controller_manager}/{name}" if self.controller_manager else ""

    @property
    def list_controllers_service(self) -> str:
        return self.controller_manager_service("list_controllers")

    @property
    def switch_controller_service(self) -> str:
        return self.controller_manager_service("switch_controller")

    @property
    def load_controller_service(self) -> str:
        return self.controller_manager_service("load_controller")

    @property
    def configure_controller_service(self) -> str:
        return self.controller_manager_service("configure_controller")

    def switch_hint(self, active: str = "") -> str:
        """The one-line fix when the wrong command controller is active (or the profile's is not loaded: the
        lbr stack's bringup loads only its `ctrl:=` controller)."""
        cm = self.controller_manager
        load = f"ros2 control load_controller --set-state inactive {self.controller} -c {cm}"
        deactivate = f" --deactivate {active}" if active else ""
        switch = f"ros2 control switch_controllers -c {cm}{deactivate} --activate {self.controller}"
        if self.driver == "lbr":
            return f"start the driver with ctrl:={self.controller}, or load and switch: {load} && {switch}"
        return f"activate {self.controller}: {load} && {switch}"


def _absolute(namespace: str, name: str) -> str:
    return f"{namespace}/{name}" if namespace else f"/{name}"


def _namespace(name: str, field: str) -> str:
    """'' | 'lbr' | '/lbr' | '/cell1/lbr' -> '' | '/lbr' | '/lbr' | '/cell1/lbr' (ROS name rules)."""
    ns = name.strip().strip("/")
    for part in ns.split("/") if ns else []:
        if (
            not part
            or not (part[0].isalpha() or part[0] == "_")
            or not all(c.isalnum() or c == "_" for c in part)
        ):
            raise DriverProfileError(
                f"{field} {name!r} is not a valid ROS namespace: use letters, digits and '_', not starting with "
                "a digit (e.g. lbr)"
            )
    return f"/{ns}" if ns else ""


def resolve_driver(
    driver: str,
    robot_name: str = "lbr",
    controller: str = "",
    command_interface: str = "",
    command_rate_hz: float = 100.0,
    joint_states_topic: str = "",
    command_topic: str = "",
) -> DriverProfile:
    """The profile `driver` for a robot called `robot_name` (the lbr stack's namespace and joint-name
    prefix; the namespace of a ros2_control driver, '' = root) commanding through `controller` ('' = the
    profile's default) with messages of `command_interface` ('' = what the controller takes) at
    `command_rate_hz`. `joint_states_topic` / `command_topic` override the resolved names (a driver with
    other names). DriverProfileError names the parameter and the fix."""
    if driver not in DRIVERS:
        raise DriverProfileError(f"driver must be one of {', '.join(DRIVERS)}; got {driver!r}")
    if command_interface and command_interface not in COMMAND_INTERFACES:
        raise DriverProfileError(
            f"command_interface must be one of {', '.join(COMMAND_INTERFACES)} ('' = the controller's); "
            f"got {command_interface!r}"
        )
    rate = float(command_rate_hz)
    if not (math.isfinite(rate) and 1.0 <= rate <= 1000.0):
        raise DriverProfileError(f"command_rate_hz must be within 1-1000 Hz; got {command_rate_hz}")
    if driver == "twin":
        if controller:
            raise DriverProfileError(f"controller {controller!r}: the twin has no controllers; leave it ''")
        iface = command_interface or POSITION_ARRAY
        return DriverProfile(
            "twin", "", tuple(f"lbr_A{i}" for i in range(1, 8)), joint_states_topic or TOPIC_JOINT_STATES,
            command_topic or TOPIC_JOINT_COMMAND, iface, "", "", "", TOPIC_TWIN_WRENCH, rate,
        )  # fmt: skip
    if driver == "lbr":
        ns = _namespace(robot_name or "lbr", "robot_name")
        if not ns:
            raise DriverProfileError(
                "robot_name must not be empty for driver lbr (the stack's default is lbr)"
            )
        ctrl = controller or FORWARD_POSITION_CONTROLLER
        if ctrl not in LBR_CONTROLLERS:
            raise DriverProfileError(
                f"controller must be one of {', '.join(LBR_CONTROLLERS)} for driver lbr; got {ctrl!r}"
            )
        iface = LBR_CONTROLLERS[ctrl]
        if command_interface and command_interface != iface:
            raise DriverProfileError(
                f"command_interface {command_interface!r} does not fit controller {ctrl} (it takes {iface}); "
                "leave command_interface '' or choose the other controller"
            )
        if not any(abs(rate - r) < 1e-6 * r for r in LBR_COMMAND_RATES_HZ):
            raise DriverProfileError(
                f"command_rate_hz {rate:g} is not a whole-millisecond FRI send period: use 100.0 (10 ms) or "
                "500.0 (2 ms), the rate of the driver's controller_manager update_rate"
            )
        prefix = ns.rsplit("/", 1)[-1]
        return DriverProfile(
            "lbr", ns, tuple(f"{prefix}_A{i}" for i in range(1, 8)),
            joint_states_topic or _absolute(ns, _JOINT_STATES),
            command_topic or _absolute(ns, f"{ctrl}/{_COMMANDS[iface]}"), iface, ctrl,
            _absolute(ns, _CONTROLLER_MANAGER), _absolute(ns, _LBR_STATE), _absolute(ns, _LBR_WRENCH), rate,
            robot_description_topic=_absolute(ns, _ROBOT_DESCRIPTION),
        )  # fmt: skip
    ns = _namespace(robot_name, "robot_name")
    iface = command_interface or POSITION_ARRAY
    ctrl = controller or (
        FORWARD_POSITION_CONTROLLER if iface == POSITION_ARRAY else JOINT_TRAJECTORY_CONTROLLER
    )
    return DriverProfile(
        "ros2_control", ns, (),
        joint_states_topic or _absolute(ns, _JOINT_STATES), command_topic or _absolute(ns, f"{ctrl}/{_COMMANDS[iface]}"),
        iface, ctrl, _absolute(ns, _CONTROLLER_MANAGER), "", "", rate,
        robot_description_topic=_absolute(ns, _ROBOT_DESCRIPTION),
    )  # fmt: skip


@dataclass
class DriverParams:
    """The driver parameters of the runtime nodes (real2sim_node, sim2real_node) and of twin_node, set by the
    launch files' `driver`, `robot_name`, `controller` and `command_rate_hz` arguments."""

    driver: str = "twin"
    """Driver profile: lbr (lbr_fri_ros2_stack) | ros2_control (any ros2_control position or trajectory
    controller) | twin (the runtime's MuJoCo twin); legion_core.contracts.drivers."""
    robot_name: str = "lbr"
    """lbr: the stack's robot_name (its namespace and joint-name prefix); ros2_control: the driver's
    namespace ('' = root); twin: unused."""
    controller: str = ""
    """The position controller to command through ('' = the profile's: forward_position_controller, or
    joint_trajectory_controller for command_interface trajectory)."""
    command_interface: str = ""
    """position_array (std_msgs/Float64MultiArray) | trajectory (trajectory_msgs/JointTrajectory); '' = what
    the controller takes (the twin: position_array)."""
    command_rate_hz: float = 100.0
    """Joint command stream rate [Hz]: the driver's command period (lbr: FRI send period 10 ms -> 100.0,
    2 ms -> 500.0; checked against the controller manager's update_rate)."""
    joint_states_topic: str = ""
    """Override of the profile's joint state topic ('' = the profile's, e.g. /lbr/joint_states)."""
    joint_command_topic: str = ""
    """Override of the profile's command topic ('' = the profile's, e.g.
    /lbr/forward_position_controller/commands)."""
    robot_description_timeout_s: float = 20.0
    """How long [s] a node waits at start for the driver's robot_description, where the calibration takes
    the arm from it (`arm: description: topic`); then it refuses to start, saying so."""

    def profile(self) -> DriverProfile:
        """The resolved profile (DriverProfileError names the parameter and the fix)."""
        return resolve_driver(
            self.driver, self.robot_name, self.controller, self.command_interface, self.command_rate_hz,
            self.joint_states_topic, self.joint_command_topic,
        )  # fmt: skip
