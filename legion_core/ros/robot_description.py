"""The arm a runtime node controls: the calibration's `arm` section, with the URDF of the driver's
robot_state_publisher where it says `description: topic` (docs/robot-integration.md, "Robot description").

Received once at start, before the node builds its mapper or observation builder: a node never moves or
observes with a guessed model. The topic is the profile's (`/lbr/robot_description` for lbr_fri_ros2_stack),
published transient-local by robot_state_publisher, so a node started after the driver still gets it.
"""

from __future__ import annotations

import time

from legion_core.contracts.drivers import DriverProfile
from legion_core.robot.kinematics import ArmModel
from legion_core.ros.common import LATCHED_QOS, NodeStartupError
from sim2real.calibration import Calibration, CalibrationError


def wait_for_robot_description(node, topic: str, timeout_s: float) -> str | None:
    """The first std_msgs/String on `topic` within `timeout_s` [s], or None. Spins a short-lived helper node
    of the same context (the caller is still in its constructor, not yet in an executor)."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from std_msgs.msg import String

    helper = rclpy.create_node(f"{node.get_name()}_robot_description", context=node.context)
    got: list[str] = []
    helper.create_subscription(String, topic, lambda m: got.append(m.data), LATCHED_QOS)
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(helper)
    try:
        end = time.monotonic() + timeout_s
        while not got and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.1)
    finally:
        executor.remove_node(helper)
        executor.shutdown(timeout_sec=1.0)
        helper.destroy_node()
    return got[0] if got else None


def arm_for_node(node, calibration: Calibration, profile: DriverProfile, timeout_s: float) -> ArmModel:
    """The calibration's arm; for `description: topic` from the driver's robot_description. NodeStartupError
    says what is missing and the fix."""
    text = None
    if calibration.arm.needs_topic:
        topic = profile.robot_description_topic
        if not topic:
            raise NodeStartupError(
                f"calibration {calibration.source}: arm.description is `topic` but driver {profile.driver!r} "
                "publishes no robot_description; set arm.description to datasheet, iiwa7, iiwa14 or a URDF file"
            )
        node.get_logger().info(f"waiting up to {timeout_s:g} s for the robot description on {topic}")
        text = wait_for_robot_description(node, topic, timeout_s)
        if text is None:
            raise NodeStartupError(
                f"no robot description on {topic} within {timeout_s:g} s: start the driver (its "
                "robot_state_publisher publishes it), or set arm.description in the calibration to iiwa7, "
                "iiwa14 or a URDF file"
            )
    try:
        arm = calibration.arm_model(text)
    except CalibrationError as e:
        raise NodeStartupError(f"calibration: {e}") from None
    lo, hi = arm.q_low, arm.q_high
    node.get_logger().info(
        f"arm: {arm.name} from {calibration.arm.description} ({len(arm.joints)} joints, limits "
        f"{[f'{a:.2f}..{b:.2f}' for a, b in zip(lo, hi, strict=True)]} rad)"
    )
    return arm
