"""`legion record`, `legion replay`: ROS 2 bags of a session, and the regression check that replays one
through a fresh runtime (docs/decisions/portable-regression-check.md). The work is done in
legion_core/tools/bags/ (record, play) and legion_core/tools/regression/ (check, closed loop)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import TYPE_CHECKING

from legion_core.cli.common import add_command
from legion_core.tools.bags.store import DEFAULT_METADATA_VERSION, METADATA_VERSIONS

if TYPE_CHECKING:
    from legion_core.tools.bags.record import Recorder


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    s = add_command(
        subparsers,
        "record",
        help="record runtime topics to a ROS 2 bag (MCAP, rosbag2 layout) without a ROS install",
        description="Record the runtime topics (or the ones given) into an MCAP bag with the standard rosbag2\n"
        "layout; custom legion_msgs types are embedded from their .msg definitions.\n\n"
        "examples:\n  legion record -o out/session.mcap --duration 30\n"
        "  legion record -o out/for_humble.mcap --metadata-version 8   # readable by ROS 2 Humble's ros2 bag",
    )
    add_record_arguments(s)
    s.set_defaults(func=run_record)

    s = add_command(
        subparsers,
        "replay",
        help="replay a bag into the runtime; --check judges a fresh runtime against the recording",
        description="Publish recorded sensor topics at recorded timing (or --rate/--fast, --sim-clock); with\n"
        "--check scenario.yaml --bundle DIR run a regression check (exit 0 only if all judgements pass);\n"
        "with --closed-loop run the runtime on the twin set up from the recorded detections.\n\n"
        "example:\n  legion replay tests/data/replay/session --check scenarios/default.yaml --bundle models/x",
    )
    add_replay_arguments(s)
    s.set_defaults(func=run_replay)


def add_record_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("topics", nargs="*", help="topics to record (default: every runtime topic)")
    parser.add_argument("-o", "--output", required=True,
                        help="bag to write: session.mcap -> directory session/ with metadata.yaml + session_0.mcap")  # fmt: skip
    parser.add_argument(
        "--duration", type=float, default=None, help="stop after this many seconds (default: Ctrl-C)"
    )
    parser.add_argument(
        "--use-sim-time", action="store_true", help="log times from /clock instead of the wall clock"
    )
    parser.add_argument("--require", action="append", default=[],
                        help="wait for a publisher of this topic before reporting ready (repeatable)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print the final statistics as one JSON line")
    parser.add_argument("--metadata-version", type=int, choices=METADATA_VERSIONS, default=DEFAULT_METADATA_VERSION,
                        help="rosbag2 metadata version: 9 for Jazzy and newer (default), 8 for Humble as well")  # fmt: skip


def run_record(args: argparse.Namespace) -> int:
    """`legion record -o session.mcap [topics...] [--duration S]`: exit 0 when nothing was dropped."""
    from legion_core.tools.bags.record import record
    from legion_core.tools.bags.store import RecordingError

    # The first SIGINT/SIGTERM only asks the write loop to stop, so the bag is closed (metadata.yaml written)
    # on the normal path: raising KeyboardInterrupt from the handler could land inside close() and leave a
    # bag without metadata. A second signal forces the exit.
    stop = threading.Event()

    def _term(_sig, _frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    if threading.current_thread() is threading.main_thread():
        # Also covers a shell that started us in the background with SIGINT ignored.
        signal.signal(signal.SIGTERM, _term)
        signal.signal(signal.SIGINT, _term)

    def ready(rec: Recorder) -> None:
        print(f"[legion record] ready: recording {len(rec._subs)} topic(s) into {rec.path}", flush=True)

    try:
        stats = record(args.output, args.topics or None, args.duration, stop, use_sim_time=args.use_sim_time,
                       require_topics=args.require, on_ready=ready, metadata_version=args.metadata_version)  # fmt: skip
    except RecordingError as e:
        print(f"[legion record] {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(stats.to_dict()), flush=True)
    else:
        print(
            f"[legion record] {stats.written} messages in {stats.duration_s:.2f} s into {stats.path}, drops {stats.drops}"
        )
        for topic, st in sorted(stats.topics.items()):
            print(f"  {topic:28s} {st.msgtype:40s} {st.written}")
    return 0 if stats.drops == 0 else 1


def add_replay_arguments(parser: argparse.ArgumentParser) -> None:
    from legion_core.tools.bags.topics import SENSOR_TOPICS

    parser.add_argument(
        "bag", help="bag directory (or its .mcap / metadata.yaml, or the -o name given to record)"
    )
    g = parser.add_mutually_exclusive_group()
    g.add_argument("--rate", type=float, default=None,
                   help="time factor (2 = twice as fast); default 1, or the scenario's rate with --check")  # fmt: skip
    g.add_argument("--fast", action="store_true", help="publish as fast as possible (no timing)")
    parser.add_argument(
        "--topics", nargs="+", default=None, help=f"topics to publish (default {' '.join(SENSOR_TOPICS)})"
    )
    parser.add_argument(
        "--sim-clock", action="store_true", help="also publish /clock with the bag time (use_sim_time nodes)"
    )
    parser.add_argument("--check", metavar="SCENARIO", default=None,
                        help="regression check: replay through a fresh runtime and compare (scenario YAML)")  # fmt: skip
    parser.add_argument(
        "--closed-loop", action="store_true", help="re-run the recorded scene in the digital twin"
    )
    parser.add_argument("--bundle", default=None, help="policy bundle for --check / --closed-loop")
    parser.add_argument("--calibration", default="", help="calibration YAML ('' = the simulated cell's)")
    parser.add_argument("--wait-subscribers", type=float, default=3.0,
                        help="plain replay: wait up to S seconds for subscribers of every topic before starting")  # fmt: skip
    parser.add_argument(
        "--out", default=None, help="directory for the check's bags and judgements (default: a temp dir)"
    )


def run_replay(args: argparse.Namespace) -> int:
    """`legion replay BAG [--rate F | --fast] [--sim-clock] [--check S --bundle B] [--closed-loop --bundle B]`:
    exit 0 only if every judgement passed (plain replay: if it ran)."""
    from legion_core.tools.bags.play import replay
    from legion_core.tools.bags.store import RecordingError, resolve_bag
    from legion_core.tools.bags.topics import SENSOR_TOPICS

    try:
        bag = resolve_bag(args.bag)
    except RecordingError as e:
        print(f"[legion replay] {e}", file=sys.stderr)
        return 2
    if (args.check or args.closed_loop) and not args.bundle:
        print("[legion replay] --check and --closed-loop need --bundle DIR", file=sys.stderr)
        return 2
    ok = True
    if args.check:
        from legion_core.tools.regression.live import check

        rate = None if args.fast else (args.rate if args.rate is not None else "scenario")
        res = check(bag, args.check, args.bundle, out_dir=args.out, rate=rate, calibration=args.calibration)
        ok = ok and res.passed
    if args.closed_loop:
        from legion_core.tools.regression.closed_loop import closed_loop

        res = closed_loop(
            bag, args.bundle, calibration=args.calibration, scenario=args.check, out_dir=args.out
        )
        ok = ok and res.passed
    if not args.check and not args.closed_loop:
        topics = args.topics if args.topics else list(SENSOR_TOPICS)
        rate = None if args.fast else (args.rate if args.rate is not None else 1.0)
        st = replay(
            bag, rate=rate, topics=topics, sim_clock=args.sim_clock, wait_subscribers_s=args.wait_subscribers
        )
        print(json.dumps({"replay": st.to_dict()}), flush=True)
    return 0 if ok else 1
