"""Which DDS discovery a LEGION process uses, set before rclpy starts (docs/robot-integration.md, "Two hosts").

`LEGION_NETWORK=loopback` (the default, and the only setting tests, CI, the demo and the benchmarks use):
discovery on this host only, in the variable the distribution reads: `ROS_LOCALHOST_ONLY=1` on Humble (and
older), `ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST` on Jazzy and newer (which deprecate the former).
`LEGION_NETWORK=robot` (robot.launch.yaml's `network:=robot`): a driver on a separate real-time PC must be
visible, so discovery reaches the subnet unless the environment already chose a range (e.g. with
ROS_STATIC_PEERS); the two hosts' clocks must then be synchronised (chrony), which `legion doctor` checks.
The old `LEGION_ALLOW_NETWORK=1` still means `robot`.

Stdlib only, imported before rclpy by legion_core.ros.common.
"""

from __future__ import annotations

from collections.abc import Mapping

LOOPBACK, ROBOT = "loopback", "robot"
NETWORKS = (LOOPBACK, ROBOT)
#: Distributions that read ROS_LOCALHOST_ONLY instead of ROS_AUTOMATIC_DISCOVERY_RANGE.
_LOCALHOST_ONLY_DISTROS = ("foxy", "galactic", "humble")


def network_setting(env: Mapping[str, str]) -> str:
    """The process's setting from its environment; ValueError naming the variable and the choices."""
    value = env.get("LEGION_NETWORK", "").strip().lower()
    if not value:
        return ROBOT if env.get("LEGION_ALLOW_NETWORK") == "1" else LOOPBACK
    if value not in NETWORKS:
        raise ValueError(f"LEGION_NETWORK must be {' or '.join(NETWORKS)}; got {value!r}")
    return value


def discovery_environment(env: Mapping[str, str]) -> dict[str, str | None]:
    """The variables to set (None: remove) so that DDS discovery follows `network_setting(env)` on the
    distribution named by ROS_DISTRO (unset: a wheel install, Jazzy or newer)."""
    network = network_setting(env)
    humble = env.get("ROS_DISTRO", "").lower() in _LOCALHOST_ONLY_DISTROS
    if network == LOOPBACK:
        if humble:
            return {"ROS_LOCALHOST_ONLY": "1"}
        return {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    if humble:
        return {"ROS_LOCALHOST_ONLY": "0"}
    if env.get("ROS_AUTOMATIC_DISCOVERY_RANGE"):
        return {}  # the cell chose its range (SUBNET, SYSTEM_DEFAULT, LOCALHOST with static peers)
    return {"ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"}


def apply(environ) -> str:
    """Set `environ` (os.environ) for the process's network setting; returns the setting."""
    for name, value in discovery_environment(environ).items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value
    return network_setting(environ)
