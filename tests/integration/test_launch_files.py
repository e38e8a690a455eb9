"""Our launch files stay within what both runners understand, and the sim graph comes up and shuts
down cleanly through `legion launch`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from legion_core.tools.launch.description import parse_launch_file
from legion_core.tools.ros_env import REPO, child_env, ensure_workspace
from tests.bundle_factory import make_tiny_bundle

ensure_workspace()

LAUNCH = REPO / "launch"


@pytest.mark.parametrize(
    "name,args,n",
    [
        ("sim.launch.yaml", {"bundle": "/tmp/x"}, 5),
        ("robot.launch.yaml", {"bundle": "/tmp/x", "calibration": "/tmp/c.yaml"}, 4),
        ("runtime.launch.yaml", {"bundle": "/tmp/x"}, 4),
        ("lbr_emulator.launch.yaml", {}, 1),
    ],
)
def test_launch_files_parse(name, args, n):
    desc = parse_launch_file(LAUNCH / name, args)
    assert len(desc.processes) == n
    for p in desc.processes:
        assert p.env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"


def test_robot_launch_composed_hosts_the_runtime_in_one_process():
    """composed:=true: one `composed` process (real2sim, policy, sim2real) + the sequencer; remaps and params
    reach it, and it carries no node name (that would rename all three nodes)."""
    desc = parse_launch_file(
        LAUNCH / "robot.launch.yaml",
        {"bundle": "/tmp/x", "calibration": "/tmp/c.yaml", "composed": "true", "cpu_affinity": "2-3"},
    )
    assert len(desc.processes) == 2
    comp = next(p for p in desc.processes if Path(p.executable).name == "composed")
    argv = comp.argv
    assert argv[argv.index("--nodes") + 1] == "real2sim,policy,sim2real"
    assert (
        argv[argv.index("--cpu-affinity") + 1] == "2-3" and argv[argv.index("--realtime-priority") + 1] == "0"
    )
    assert argv.index("--nodes") < argv.index("--ros-args")
    assert not any(a.startswith("__node:=") for a in argv)
    joined = " ".join(argv)
    for rule in ("driver:=lbr", "robot_name:=lbr", "controller:=forward_position_controller",
                 "/detections:=/detections", "bundle:=/tmp/x", "calibration:=/tmp/c.yaml"):  # fmt: skip
        assert rule in joined


def test_robot_launch_requires_calibration():
    with pytest.raises(Exception, match="calibration"):
        parse_launch_file(LAUNCH / "robot.launch.yaml", {"bundle": "/tmp/x"})


def _driver_profile(argv: list[str]):
    """The driver profile a node resolves from the `-p name:=value` parameters of its command line."""
    import yaml

    from legion_core.base.params import pick
    from legion_core.contracts.drivers import DriverParams

    values = {}
    for a, b in zip(argv, argv[1:]):
        if a == "-p" and ":=" in b:
            k, v = b.split(":=", 1)
            values[k] = yaml.safe_load(v)  # as ROS reads a `-p` value
    return DriverParams(**pick(DriverParams, values)).profile()


@pytest.mark.parametrize(
    "args, topics",
    [
        ({}, ("/lbr/joint_states", "/lbr/forward_position_controller/commands")),
        (
            {"controller": "joint_trajectory_controller"},
            ("/lbr/joint_states", "/lbr/joint_trajectory_controller/joint_trajectory"),
        ),
        ({"robot_name": "arm2"}, ("/arm2/joint_states", "/arm2/forward_position_controller/commands")),
    ],
)
def test_robot_launch_takes_the_lbr_stacks_names_from_the_driver_profile(args, topics):
    desc = parse_launch_file(
        LAUNCH / "robot.launch.yaml", {"bundle": "/tmp/x", "calibration": "/tmp/c.yaml", **args}
    )
    prof = _driver_profile(desc.process("sim2real_node").argv)
    assert (prof.driver, prof.joint_states_topic, prof.command_topic) == ("lbr", *topics)
    assert _driver_profile(desc.process("real2sim_node").argv).joint_states_topic == topics[0]


def test_runtime_respawns_the_nodes_whose_restart_is_safe_and_not_sim2real():
    """A dead policy, real2sim or sequencer comes back (sim2real has cleared the skill: a new command is
    needed before anything moves); sim2real, which owns the e-stop latch, is never restarted behind the
    operator's back."""
    desc = parse_launch_file(LAUNCH / "robot.launch.yaml", {"bundle": "/tmp/x", "calibration": "/tmp/c.yaml"})
    for name in ("policy_node", "real2sim_node", "task_sequencer_node"):
        p = desc.process(name)
        assert p.respawn and p.respawn_delay >= 0.5, name
    assert not desc.process("sim2real_node").respawn
    # real2sim checks detections against the bundle's workspace: it must get the bundle.
    assert "bundle:=/tmp/x" in " ".join(desc.process("real2sim_node").argv)


@pytest.mark.ros
@pytest.mark.parametrize("composed", ["false", "true"])
def test_sim_launch_runs_and_stops_cleanly(tmp_path, composed):
    from legion_msgs.msg import PolicyAction

    from tests.integration.rosutil import Probe

    bundle = make_tiny_bundle(tmp_path / "run", tmp_path / "tiny")[2]
    out = open(tmp_path / "launch.out", "w")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "legion_core.cli", "launch", str(LAUNCH / "sim.launch.yaml"), f"bundle:={bundle}",
         "skill:=drawer-close", f"composed:={composed}", "--log-dir", str(tmp_path / "logs")],
        env=child_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    probe = Probe("launch_probe")
    try:
        actions = probe.record("/legion/action", PolicyAction)
        probe.wait_for(lambda: len(actions) > 10, 45, "actions from the launched graph")
    finally:
        probe.close()
        os.killpg(proc.pid, signal.SIGINT)
        code = proc.wait(30)
    assert code == 0, Path(tmp_path / "launch.out").read_text()[-2000:]
    time.sleep(0.5)
    leftovers = subprocess.run(
        ["pgrep", "-f", f"bundle:={bundle}"], capture_output=True, text=True
    ).stdout.split()
    assert not leftovers, f"orphan node processes: {leftovers}"
