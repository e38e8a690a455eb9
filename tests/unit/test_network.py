"""The network setting (legion_core.ros.network): loopback by default in the variable each distribution
reads; `robot` opens discovery for a driver on another PC only when asked, and a bad value is refused."""

from __future__ import annotations

import pytest

from legion_core.ros.network import apply, discovery_environment, network_setting


def test_loopback_is_the_default_on_every_distribution():
    assert network_setting({}) == "loopback"
    assert discovery_environment({}) == {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    assert discovery_environment({"ROS_DISTRO": "jazzy", "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"}) == {
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"  # loopback overrides what the shell had
    }
    assert discovery_environment({"ROS_DISTRO": "humble"}) == {"ROS_LOCALHOST_ONLY": "1"}


def test_robot_opens_discovery_in_the_distributions_variable():
    assert discovery_environment({"LEGION_NETWORK": "robot", "ROS_DISTRO": "humble"}) == {
        "ROS_LOCALHOST_ONLY": "0"
    }
    assert discovery_environment({"LEGION_NETWORK": "robot"}) == {"ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"}
    # A range the cell chose (e.g. LOCALHOST with static peers) is kept.
    assert (
        discovery_environment({"LEGION_NETWORK": "robot", "ROS_AUTOMATIC_DISCOVERY_RANGE": "SYSTEM_DEFAULT"})
        == {}
    )
    assert network_setting({"LEGION_ALLOW_NETWORK": "1"}) == "robot"  # the old switch


def test_a_bad_value_names_the_variable_and_the_choices():
    with pytest.raises(ValueError, match="LEGION_NETWORK must be loopback or robot"):
        network_setting({"LEGION_NETWORK": "wan"})


def test_apply_sets_the_environment():
    env = {"ROS_DISTRO": "humble", "ROS_LOCALHOST_ONLY": "0"}
    assert apply(env) == "loopback" and env["ROS_LOCALHOST_ONLY"] == "1"
