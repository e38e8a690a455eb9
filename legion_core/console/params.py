"""console_node's parameters (docs/console.md; launch arguments console_* in launch/runtime.launch.yaml)."""

from __future__ import annotations

from dataclasses import dataclass

from legion_core.base.params import Parameter, check_unique, parameters
from legion_core.contracts.drivers import DriverParams

#: DriverParams fields console_node declares (it reads only the driver's joint states).
CONSOLE_DRIVER_PARAMETERS = ("driver", "robot_name", "joint_states_topic")


@dataclass
class ConsoleNodeParams:
    """console_node's own parameters."""

    host: str = "127.0.0.1"
    """Address the web server listens on. Loopback by default; another address (e.g. 0.0.0.0) is an explicit
    choice: put a TLS-terminating proxy in front, the token travels in clear over plain HTTP."""
    port: int = 8080
    """TCP port of the web server (0 = any free port; the node logs the URL it serves)."""
    token_file: str = ""
    """File holding the operator token (one line, >= 16 characters) that commanding and re-arming need; ''
    = the LEGION_CONSOLE_TOKEN environment variable; neither = a read-only console (watch and e-stop)."""
    state_rate_hz: float = 10.0
    """Rate [Hz] of the state messages pushed to each page (always the newest state; slow pages skip)."""
    runtime_timeout_s: float = 3.0
    """The page says the runtime is lost when sim2real_node's SafetyState (>= 1 Hz) is older than this [s]."""
    calibration: str = ""
    """Calibration YAML of the cell ('' = the simulated embodiment's): the driver's joint names and the
    camera frame of detections."""
    bundle: str = ""
    """Policy bundle directory: its skills and model card are shown ('' = none shown)."""
    scene: str = ""
    """The scene or task the cell runs (shown on the page; '' = not given)."""
    recordings_dir: str = ""
    """Directory of `legion record` bags whose commands are listed as past runs ('' = this session's only)."""
    camera_topic: str = ""
    """sensor_msgs/Image shown on the page, JPEG-encoded at <= 5 Hz ('' = no camera view)."""
    service_timeout_s: float = 5.0
    """How long [s] the console waits for a runtime service (preview, e-stop, re-arm, cancel) to answer."""


def console_node_parameters() -> list[Parameter]:
    """Every parameter console_node declares, with its default and description."""
    return check_unique(
        [*parameters(ConsoleNodeParams), *parameters(DriverParams, CONSOLE_DRIVER_PARAMETERS)]
    )
