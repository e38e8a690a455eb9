"""The lbr emulator's `controller_manager` node (twin_node with driver:=lbr; logic: legion_core.sim.emulator):
`<robot_name>/controller_manager` with the services a lab's tools call (list/load/configure/switch;
controller_manager_msgs, here the emulated copy of ros2_ws/emulated) and the `update_rate` parameter, an
integer as ros2_control declares it. It is the emulated driver's node, not a LEGION node: its names and its
parameter are the stack's (legion_core.contracts.drivers), not the runtime's."""

from __future__ import annotations


def controller_manager_node(manager, profile):
    """A plain rclpy Node serving `manager` (legion_core.sim.emulator.ControllerManager) under the names
    of `profile` (a resolved lbr DriverProfile)."""
    from controller_manager_msgs.msg import ControllerState
    from controller_manager_msgs.srv import (
        ConfigureController,
        ListControllers,
        LoadController,
        SwitchController,
    )
    from rclpy.node import Node

    from legion_core.contracts.drivers import UPDATE_RATE_PARAMETER
    from legion_core.sim.emulator import CONTROLLER_TYPES, STRICT

    ns, name = profile.controller_manager.rsplit("/", 1)
    node = Node(name, namespace=ns or "/")
    node.declare_parameter(UPDATE_RATE_PARAMETER, int(manager.update_rate_hz))
    log = node.get_logger()

    def list_controllers(_req, resp):
        resp.controller = [
            ControllerState(
                name=n, state=s, type=CONTROLLER_TYPES.get(n, ""), update_rate=manager.update_rate_hz
            )
            for n, s in manager.states.items()
        ]
        return resp

    def switch(req, resp):
        resp.ok, resp.message = manager.switch(
            list(req.activate_controllers), list(req.deactivate_controllers), int(req.strictness or STRICT)
        )
        (log.info if resp.ok else log.warn)(resp.message)
        return resp

    def lifecycle(step):
        def serve(req, resp):
            resp.ok, msg = step(req.name)
            (log.info if resp.ok else log.warn)(msg)
            return resp

        return serve

    node.create_service(ListControllers, profile.list_controllers_service, list_controllers)
    node.create_service(SwitchController, profile.switch_controller_service, switch)
    node.create_service(LoadController, profile.load_controller_service, lifecycle(manager.load))
    node.create_service(
        ConfigureController, profile.configure_controller_service, lifecycle(manager.configure)
    )
    return node
