"""The ROS parameters of twin_node, each with its one default.

The sensor model is declared from TwinConfig (the home of its defaults); what only the node uses (scene
choice, rates, video) is a field of TwinNodeParams here. `twin_node_parameters()` lists them all in the
order the node declares them; ros2_ws/src/legion_bringup/config/runtime.yaml sets only what a deployment
changes (tests/unit/test_params.py checks it against this list).
"""

from __future__ import annotations

from dataclasses import dataclass

from legion_core.base.params import Parameter, check_unique, parameters
from legion_core.contracts.drivers import DriverParams
from legion_core.contracts.interface import (
    CAMERA_DEPTH_INFO_TOPIC,
    CAMERA_DEPTH_TOPIC,
    CAMERA_IMAGE_TOPIC,
    CAMERA_INFO_TOPIC,
)
from legion_core.sim.twin import TwinConfig

#: DriverParams fields twin_node declares: which driver's interface it presents (twin | lbr) and for what.
TWIN_DRIVER_PARAMETERS = ("driver", "robot_name", "command_interface")
#: TwinConfig fields that are twin_node parameters of the same name (render_size and scene are set from
#: video_path and the `scene` parameter).
TWIN_CONFIG_PARAMETERS = ("detection_noise_m", "detection_latency_s", "detection_dropout", "seed")


@dataclass
class TwinNodeParams:
    """twin_node's own parameters (the camera's noise model is TwinConfig's)."""

    calibration: str = ""
    """Calibration YAML of the simulated cell ('' = built-in)."""
    task: str = "drawer-close"
    """Task (registry name) or multi-object scene (legion_core.contracts.scenes)."""
    scene: str = ""
    """For a single task: place it as in this scene ('' = Meta-World's placements)."""
    variation: int = 0
    """Placement index 0-49 of the seeded Meta-World variations."""
    joint_state_rate_hz: float = 200.0
    """Joint state publishing rate [Hz] (the FRI driver's rate)."""
    detection_rate_hz: float = 30.0
    """Camera detection rate [Hz]."""
    start_q_rad: str = ""
    """Start the arm here instead of the scene's start posture: 7 comma-separated joint angles [rad], e.g.
    lbr_fri_ros2_stack's HOME "0,0.486,0,-1.756,0,0.9,-1.571" ('' = the scene's start)."""
    ctrl: str = "joint_trajectory_controller"
    """driver lbr (the emulator): the command controller active at start, as lbr_fri_ros2_stack's `ctrl:=`
    (its default: joint_trajectory_controller); the other one is not loaded."""
    update_rate_hz: int = 100
    """driver lbr (the emulator): the controller manager's update_rate [Hz] (FRI send period 10 ms -> 100)."""
    fri_session_state: int = 4
    """driver lbr (the emulator): the FRI session state LBRState reports (4 COMMANDING_ACTIVE; 2
    MONITORING_READY = the LBRServer application not commanding: a fault drill)."""
    fri_safety_state: int = 0
    """driver lbr (the emulator): the FRI safety state LBRState reports (0 NORMAL_OPERATION; 1-3 a safety stop)."""
    stamp_offset_s: float = 0.0
    """Joint states are stamped this much [s] ahead of this host's clock (negative: behind): a driver on a
    host whose clock is not synchronised (a fault drill of `legion doctor`'s clock check)."""
    robot_state_rate_hz: float = 50.0
    """driver lbr (the emulator): lbr_fri_idl/LBRState rate [Hz] (the stack publishes it every update; a
    lower rate keeps the Python twin's load down and is all the runtime's checks need)."""
    real_time_factor: float = 1.0
    """Simulated seconds per wall-clock second [-]."""
    video_path: str = ""
    """Write an MP4 of the scene here at shutdown ('' = off)."""
    video_fps: float = 10.0
    """Video frame rate [Hz]."""
    camera_rate_hz: float = 0.0
    """Rendered camera images [Hz] with the scene's AprilTags, published as a camera driver does on
    camera_image_topic / camera_info_topic for perception_node (0 = off; software rendering costs ~0.1 s a
    640x480 frame, on its own thread; docs/perception.md)."""
    camera_width: int = 640
    """Rendered image width [px]."""
    camera_height: int = 480
    """Rendered image height [px]."""
    camera_fovy_deg: float = 58.0
    """Vertical field of view [deg] of the rendered camera (a RealSense D435's colour camera: ~58)."""
    camera_image_topic: str = CAMERA_IMAGE_TOPIC
    """sensor_msgs/Image (rgb8) of the rendered camera."""
    camera_info_topic: str = CAMERA_INFO_TOPIC
    """sensor_msgs/CameraInfo of the rendered camera."""
    camera_depth: bool = False
    """Also publish the depth image aligned to the colour one (16UC1 [mm], 0 = no depth), as realsense2_camera
    with align_depth: a second render pass per frame (docs/perception.md)."""
    camera_depth_topic: str = CAMERA_DEPTH_TOPIC
    """sensor_msgs/Image (16UC1) of the rendered depth."""
    camera_depth_info_topic: str = CAMERA_DEPTH_INFO_TOPIC
    """sensor_msgs/CameraInfo of the rendered depth (the colour camera's intrinsics)."""
    camera_exposure_gain: float = 1.0
    """A real camera's effects on the rendered images (legion_core.sim.camera.ImageEffects; docs/perception.md):
    pixel values times this gain, clipped (1 = off)."""
    camera_blur_sigma_px: float = 0.0
    """Gaussian blur [px] of the rendered images, defocus or motion (0 = off)."""
    camera_noise_std_dn: float = 0.0
    """Additive Gaussian sensor noise [digital numbers of 0-255] on the rendered images (0 = off; seeded by
    the twin's `seed`)."""
    camera_calibration_tag: bool = False
    """Also render the hand-eye calibration tag on the flange (legion_core.sim.camera.CALIBRATION_TAG_PLACEMENT,
    tag 10 of sim2real/config/tags_calibration.yaml) in the camera images: `legion calibrate --graph`."""
    ground_truth_detections: bool = True
    """Publish the scene's objects as detections from the simulator's state (false: perception_node makes
    them from the rendered images)."""


def twin_node_parameters() -> list[Parameter]:
    """Every parameter twin_node declares, with its default and description."""
    return check_unique(
        [
            *parameters(TwinNodeParams),
            *parameters(DriverParams, TWIN_DRIVER_PARAMETERS),
            *parameters(TwinConfig, TWIN_CONFIG_PARAMETERS),
        ]
    )
