"""The lbr_fri_ros2_stack emulator's logic, without ROS: the controller manager a lab's bringup leaves
running (docs/robot-integration.md) and the FRI robot state the twin reports through it.

twin_node with `driver:=lbr` presents the stack's interface around the MuJoCo twin (names from
legion_core.contracts.drivers): joint states from `joint_state_broadcaster`, the two position controllers'
command topics, `controller_manager` with `list_controllers` / `switch_controller` and its `update_rate`
parameter, `lbr_state_broadcaster`'s LBRState and `force_torque_broadcaster`'s wrench. A command reaches the
twin only through the active command controller, as in ros2_control: a configured but inactive controller
keeps its subscription and drops what it receives. Only one command controller may be active at a time.
As the stack's hardware bringup does, only the broadcasters and the `ctrl:=` controller are loaded; the other
command controllers exist only as types in the controller configuration, so a lab switches with
`ros2 control load_controller --set-state inactive` then `ros2 control switch_controllers` (or restarts the
driver with another `ctrl:=`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from legion_core.contracts.drivers import (
    FORWARD_POSITION_CONTROLLER,
    JOINT_TRAJECTORY_CONTROLLER,
    LBR_BROADCASTERS,
)

ACTIVE, INACTIVE, UNCONFIGURED = "active", "inactive", "unconfigured"
#: Controller types as the stack's lbr_controllers.yaml names them (ListControllers reports them).
CONTROLLER_TYPES = {
    "joint_state_broadcaster": "joint_state_broadcaster/JointStateBroadcaster",
    "lbr_state_broadcaster": "lbr_ros2_control/LBRStateBroadcaster",
    "force_torque_broadcaster": "force_torque_sensor_broadcaster/ForceTorqueSensorBroadcaster",
    FORWARD_POSITION_CONTROLLER: "position_controllers/JointGroupPositionController",
    JOINT_TRAJECTORY_CONTROLLER: "joint_trajectory_controller/JointTrajectoryController",
}
COMMAND_CONTROLLERS = (FORWARD_POSITION_CONTROLLER, JOINT_TRAJECTORY_CONTROLLER)
#: SwitchController strictness values (controller_manager_msgs/srv/SwitchController).
BEST_EFFORT, STRICT = 1, 2


@dataclass
class ControllerManager:
    """Loaded controllers and their states; `ctrl` is the bringup's `ctrl:=` (the one active command
    controller, loaded with the broadcasters; nothing else is loaded)."""

    ctrl: str = JOINT_TRAJECTORY_CONTROLLER
    """The command controller the bringup activated (the stack's default: joint_trajectory_controller)."""
    update_rate_hz: int = 100
    """controller_manager update_rate [Hz] (FRI send period 10 ms)."""
    states: dict[str, str] = field(default_factory=dict)
    on_configured: list[Callable[[str], None]] = field(default_factory=list)
    """Called with a controller's name when it is configured (its command subscription comes to exist)."""

    def __post_init__(self) -> None:
        if self.ctrl not in COMMAND_CONTROLLERS:
            raise ValueError(f"ctrl must be one of {', '.join(COMMAND_CONTROLLERS)}; got {self.ctrl!r}")
        if not self.states:
            self.states = {n: ACTIVE for n in (*LBR_BROADCASTERS, self.ctrl)}

    def is_active(self, name: str) -> bool:
        return self.states.get(name) == ACTIVE

    def load(self, name: str) -> tuple[bool, str]:
        """load_controller: a controller of the configuration becomes 'unconfigured'."""
        if name in self.states:
            return False, f"{name} is already loaded"
        if name not in CONTROLLER_TYPES:
            return False, f"{name} has no type in the controller configuration"
        self.states[name] = UNCONFIGURED
        return True, f"loaded {name}"

    def configure(self, name: str) -> tuple[bool, str]:
        """configure_controller: 'unconfigured' -> 'inactive' (its command subscription now exists)."""
        if self.states.get(name) != UNCONFIGURED:
            return False, f"{name} is {self.states.get(name, 'not loaded')}, not unconfigured"
        self.states[name] = INACTIVE
        for hook in self.on_configured:
            hook(name)
        return True, f"configured {name}"

    def subscribed(self, name: str) -> bool:
        """A configured controller (inactive or active) has its command subscription."""
        return self.states.get(name) in (ACTIVE, INACTIVE)

    def switch(
        self, activate: list[str], deactivate: list[str], strictness: int = STRICT
    ) -> tuple[bool, str]:
        """ros2_control's switch: STRICT fails as a whole on any unknown or wrongly stated controller,
        BEST_EFFORT skips those. Refuses a result with two active command controllers (both claim the
        joints' position interfaces). Returns (ok, what happened)."""
        bad = [n for n in activate if n not in self.states] + [n for n in deactivate if n not in self.states]
        bad += [n for n in activate if self.states.get(n) == ACTIVE and n not in deactivate]
        bad += [n for n in activate if self.states.get(n) == UNCONFIGURED]
        bad += [n for n in deactivate if self.states.get(n) in (INACTIVE, UNCONFIGURED)]
        if bad and strictness == STRICT:
            return (
                False,
                f"switch refused (strict): {', '.join(sorted(set(bad)))} cannot be switched as asked",
            )
        new = dict(self.states)
        for n in deactivate:
            if n in new:
                new[n] = INACTIVE
        for n in activate:
            if new.get(n) == INACTIVE:
                new[n] = ACTIVE
        if sum(new[n] == ACTIVE for n in COMMAND_CONTROLLERS) > 1:
            return False, "switch refused: two command controllers would claim the same position interfaces"
        self.states = new
        return True, f"activated {activate or 'nothing'}, deactivated {deactivate or 'nothing'}"


@dataclass
class FriState:
    """What lbr_state_broadcaster reports from FRI: the session (COMMANDING_ACTIVE while the LBRServer
    application runs in position control) and the safety state."""

    session_state: int = 4
    """FRI ESessionState: 0 IDLE, 1 MONITORING_WAIT, 2 MONITORING_READY, 3 COMMANDING_WAIT, 4 COMMANDING_ACTIVE."""
    safety_state: int = 0
    """FRI ESafetyState: 0 NORMAL_OPERATION, 1-3 SAFETY_STOP_LEVEL_0..2."""
