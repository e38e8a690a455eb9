"""`legion launch FILE [name:=value ...]`: resolve a YAML launch file and run its processes (or, with
`--dry-run`, print them). Runs as `python -m legion_core.tools.launch.runner` too."""

from __future__ import annotations

import argparse
import sys

from legion_core.tools.launch.description import parse_launch_args, parse_launch_file
from legion_core.tools.launch.errors import LaunchError
from legion_core.tools.launch.processes import LaunchRunner


def _add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="print the resolved processes; start nothing")
    parser.add_argument("--log-dir", default=None, help="where output=log files go (default ~/.ros/log/...)")
    parser.add_argument(
        "--install-dir",
        default=None,
        help="colcon install prefix to put on the environment (default: <repo>/ros2_ws/install if built)",
    )
    parser.add_argument(
        "--max-respawns",
        type=int,
        default=5,
        help="give up a respawning process after this many exits in a row within --rapid-exit-s (default 5)",
    )
    parser.add_argument(
        "--rapid-exit-s", type=float, default=5.0, help="a run shorter than this is a crash loop"
    )
    parser.add_argument("--sigint-timeout", type=float, default=5.0, help="seconds from SIGINT to SIGTERM")
    parser.add_argument("--sigterm-timeout", type=float, default=5.0, help="seconds from SIGTERM to SIGKILL")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `legion launch FILE [name:=value ...]`. Options may also come after the launch arguments
    (`run_from_args` picks them out of the remainder), as with `ros2 launch`."""
    _add_options(parser)
    parser.add_argument("file", help="a ROS 2 YAML launch file, e.g. launch/sim.launch.yaml")
    parser.add_argument(
        "launch_args",
        nargs=argparse.REMAINDER,
        metavar="name:=value",
        help="launch arguments, as for ros2 launch",
    )


def run_from_args(args: argparse.Namespace) -> int:
    rest = argparse.ArgumentParser(prog="legion launch", add_help=False)
    _add_options(rest)
    args, extra = rest.parse_known_args(
        list(args.launch_args or []), namespace=argparse.Namespace(**vars(args))
    )
    try:
        bad = [t for t in extra if t.startswith("-")]
        if bad:
            raise LaunchError(f"unknown option(s) {' '.join(bad)} (see legion launch --help)")
        desc = parse_launch_file(args.file, parse_launch_args(extra), install_dir=args.install_dir)
    except LaunchError as e:
        print(f"legion launch: error: {e}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(desc.describe())
        return 0
    runner = LaunchRunner(
        desc,
        log_dir=args.log_dir,
        sigint_timeout=args.sigint_timeout,
        sigterm_timeout=args.sigterm_timeout,
        max_rapid_respawns=args.max_respawns,
        rapid_exit_s=args.rapid_exit_s,
    )
    return runner.run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="legion launch",
        description="Run a ROS 2 YAML launch file (the subset ros2 launch and this runner both understand).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  legion launch launch/sim.launch.yaml use_sim:=true --dry-run",
    )
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
