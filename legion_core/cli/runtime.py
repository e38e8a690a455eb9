"""`legion demo`, `legion launch`, `legion command`, `legion run`, `legion doctor`: the runtime's ROS 2
graph, started, commanded, shown and checked."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from legion_core.cli.common import add_command, seed_option


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    s = add_command(
        subparsers,
        "demo",
        help="the main job: evaluate skills on the KUKA embodiment, print, write a video",
        description="Evaluate Meta-World's scripted experts on the KUKA iiwa 7\n"
        "embodiment, print per-task success, and write a video.\n\n"
        "examples:\n  legion demo\n  legion demo --perception camera   # rendered images -> AprilTags -> detections\n"
        "  legion demo --seed 7 --variation 3   # the card's evaluation and the chain on other placements",
    )
    s.add_argument("--model", default=None, help="bundle directory (default models/legion-kuka)")
    s.add_argument("--skill", default=None, help="skill run on the sim graph (default: the bundle's first)")
    s.add_argument("--variation", type=int, default=0, help="placement of the twin scene (0-49)")
    s.add_argument("--out-dir", default="out/demo", help="where the bag, video and logs go")
    s.add_argument("--scripted", action="store_true", help="only the scripted-expert evaluation (no model)")
    s.add_argument("--tasks", default="legion-mt10", help="task set of the scripted-expert evaluation")
    s.add_argument("--episodes", type=int, default=5, help="seeded episodes per task/skill")
    seed_option(s)  # the model's evaluation, the graph's placement and the chain's scene
    s.add_argument("--video", default="out/demo.mp4", help="video path ('' to skip)")
    s.add_argument("--video-task", default="drawer-close")
    s.add_argument("--min-success", type=float, default=0.8, help="exit non-zero below this mean success")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.add_argument(
        "--perception",
        choices=("ground_truth", "camera"),
        default="ground_truth",
        help="where the chain's detections come from: the twin's simulator state (default, fast) or its rendered "
        "camera images through perception_node (docs/perception.md)",
    )
    s.set_defaults(func=run_demo)

    s = add_command(
        subparsers,
        "launch",
        help="run a ROS 2 YAML launch file (what `ros2 launch` runs on a robot PC)",
        description="Run launch/*.launch.yaml here, where `ros2 launch` is not installable: node processes,\n"
        "arguments, substitutions, parameters, remaps, respawn, clean shutdown of all children.\n\n"
        "examples:\n  legion launch launch/sim.launch.yaml bundle:=models/legion-kuka skill:=drawer-close\n"
        "  legion launch launch/robot.launch.yaml bundle:=models/x calibration:=cell.yaml --dry-run",
    )
    from legion_core.tools.launch.runner import add_arguments

    add_arguments(s)
    s.set_defaults(func=run_launch)

    s = add_command(
        subparsers,
        "command",
        help="send a language command to the task sequencer and follow it live",
        description="Ground an operator command into skills of the running bundle and execute them one after\n"
        "another (needs the runtime with task_sequencer_node). Ctrl-C cancels: the robot holds. The text is\n"
        "checked before it is sent (no control characters, at most 500 characters: docs/operator-input.md),\n"
        "and the sequencer's reply (/legion/command_status) is printed.\n\n"
        "exit codes: 0 succeeded, 1 failed / cancelled / refused, 2 not sent (bad text), 3 no sequencer,\n"
        "4 busy, 5 no result in time\n\n"
        'examples:\n  legion command "close the drawer"\n  legion command "close the drawer, then press the button"',
    )
    s.add_argument("text", help="the command, in plain language")
    s.add_argument(
        "--timeout", type=float, default=600.0, help="give up waiting for the result after this [s]"
    )
    s.set_defaults(func=run_command)

    s = add_command(
        subparsers,
        "run",
        help="run several runtime nodes composed in one process (lowest latency)",
        description="Host LEGION nodes in one process on one executor (twin, real2sim, policy, sim2real,\n"
        "sequencer). Parameters as node.name:=value.\n\nexample:\n"
        "  legion run --nodes twin,real2sim,policy,sim2real -p policy.bundle:=models/legion-kuka \\\n"
        "      -p policy.skill:=drawer-close -p real2sim.skill:=drawer-close -p twin.task:=drawer-close",
    )
    s.add_argument("--nodes", default="twin,real2sim,policy,sim2real")
    s.add_argument("-p", "--param", action="append", default=[], help="node.name:=value (repeatable)")
    s.set_defaults(func=run_run)

    s = add_command(
        subparsers,
        "console",
        help="serve the operator console: a web page to command, watch and stop the robot",
        description="Start console_node beside a running runtime graph (docs/console.md): the arm, detected\n"
        "objects, the active skill and its progress, holds with their reasons, latency from /diagnostics; a\n"
        "text box whose plan is shown before anything moves, confirm, cancel; an e-stop button (open to every\n"
        "viewer) and re-arm. Commanding and re-arming need the operator token (--token-file or the\n"
        "LEGION_CONSOLE_TOKEN variable; never a default: without one the console is read-only). Listens on\n"
        "127.0.0.1 unless --host says otherwise. The launch files start the same node with console:=true.\n\n"
        "examples:\n"
        "  python3 -c 'import secrets; print(secrets.token_urlsafe(24))' > ~/.legion_console_token\n"
        "  legion console --bundle models/legion-kuka --token-file ~/.legion_console_token\n"
        "  legion console --bundle models/legion-kuka --scene drawer-button --port 8090   # read-only\n"
        "  legion launch launch/sim.launch.yaml bundle:=models/legion-kuka task:=drawer-button console:=true",
    )
    s.add_argument("--bundle", default="", help="the running bundle (its skills and card are shown)")
    s.add_argument("--calibration", default="", help="the cell's calibration YAML ('' = the twin's)")
    s.add_argument(
        "--driver", default="twin", help="driver profile of the joint states: lbr | ros2_control | twin"
    )
    s.add_argument("--robot-name", default="lbr", help="lbr: robot_name; ros2_control: namespace")
    s.add_argument(
        "--host", default="127.0.0.1", help="listen address (default loopback; another is explicit)"
    )
    s.add_argument("--port", type=int, default=8080, help="TCP port (default 8080; 0 = any free port)")
    s.add_argument("--token-file", default="", help="file with the operator token (>= 16 characters)")
    s.add_argument("--scene", default="", help="the scene shown on the page")
    s.add_argument("--camera-topic", default="", help="sensor_msgs/Image shown on the page ('' = none)")
    s.add_argument(
        "--recordings-dir", default="", help="directory of `legion record` bags listed as past runs"
    )
    s.set_defaults(func=run_console)

    s = add_command(
        subparsers,
        "doctor",
        help="check the install and the live robot driver: each check pass/fail with its fix",
        description="The robot PC's checks from a terminal: Python and packages, the DDS network setting, then\n"
        "the same pre-flight checks sim2real_node runs before it moves the arm (joint states, joint names,\n"
        "a subscriber on the command topic, the active controller, the controller manager's update_rate, the\n"
        "FRI session and safety state), the clock offset to the driver's host and whether the driver's\n"
        "robot_description is the calibration's arm, watched for --seconds.\n"
        "Exit code 0 when nothing fails, 1 otherwise (docs/robot-integration.md).\n\n"
        "examples:\n  legion doctor --driver lbr --calibration cell.yaml\n"
        "  legion doctor --driver lbr --controller joint_trajectory_controller --command-rate-hz 500\n"
        "  legion doctor --install-only",
    )
    s.add_argument("--driver", default="lbr", help="driver profile: lbr | ros2_control | twin (default lbr)")
    s.add_argument("--robot-name", default="lbr", help="lbr: robot_name; ros2_control: namespace")
    s.add_argument(
        "--controller", default="forward_position_controller", help="the position controller to command"
    )
    s.add_argument(
        "--command-interface", default="", help="position_array | trajectory ('' = the controller's)"
    )
    s.add_argument("--command-rate-hz", type=float, default=100.0, help="the runtime's command rate [Hz]")
    s.add_argument("--joint-states-topic", default="", help="override of the profile's joint state topic")
    s.add_argument("--joint-command-topic", default="", help="override of the profile's command topic")
    s.add_argument("--calibration", default="", help="the cell's calibration YAML ('' = the twin's)")
    s.add_argument("--seconds", type=float, default=3.0, help="how long to watch the driver [s] (default 3)")
    s.add_argument("--install-only", action="store_true", help="only the install checks (no ROS graph)")
    s.add_argument("--json", default="", help="also write the checks as JSON here")
    s.set_defaults(func=run_doctor)


def run_demo(args: argparse.Namespace) -> int:
    if not args.scripted:
        from legion_core.tools.demo import run_demo as run_graph_demo

        code = run_graph_demo(args.model, args.skill, args.episodes, Path(args.out_dir), args.variation,
                              perception=args.perception, seed=args.seed)  # fmt: skip
        # A negative code: no model to run on the graph, so the scripted-expert evaluation below stands in.
        if code >= 0:
            return code
    from legion_core.cli.sim import run_render
    from legion_core.contracts.tasks import get_task_set
    from legion_core.training.evaluation import evaluate

    tasks = get_task_set(args.tasks)
    print(
        f"LEGION demo: scripted experts on the KUKA iiwa 7 embodiment, {args.episodes} seeded episodes per task"
    )
    seed = 0 if args.seed is None else args.seed
    results = evaluate(tasks, "kuka", episodes=args.episodes, seed=seed, progress=not args.quiet)
    print(f"\n{'task':24s} success   first-success step   joint-limit overshoot")
    for r in results:
        fs = f"{r.mean_first_success_step:6.1f}" if r.mean_first_success_step else "   -  "
        print(
            f"{r.task:24s} {r.successes:2d}/{r.episodes:<3d}   {fs}               {r.max_limit_violation_rad:.3f} rad"
        )
    mean = sum(r.success_rate for r in results) / len(results)
    print(f"{'mean':24s} {mean:.2f}")
    if args.video:
        rargs = argparse.Namespace(
            task=args.video_task,
            embodiment="kuka",
            seed=seed,
            camera="corner",
            width=480,
            height=360,
            policy="scripted",
            variation=0,
            steps=None,
            output=args.video,
            still=None,
        )
        run_render(rargs)
    return 0 if mean >= args.min_success else 1


def run_launch(args: argparse.Namespace) -> int:
    from legion_core.tools.launch.runner import run_from_args

    return run_from_args(args)


def run_command(args: argparse.Namespace) -> int:
    from legion_core.tools.command_client import run_command as send_and_follow

    return send_and_follow(args.text, timeout_s=args.timeout)


def run_run(args: argparse.Namespace) -> int:
    import subprocess

    from legion_core.tools.ros_env import child_env, ensure_workspace

    ensure_workspace()
    cmd = [sys.executable, "-m", "legion_ros.composed", "--nodes", args.nodes]
    for p in args.param:
        cmd += ["-p", p]
    return subprocess.call(cmd, env=child_env())


def run_console(args: argparse.Namespace) -> int:
    import subprocess

    from legion_core.tools.ros_env import child_env, ensure_workspace

    ensure_workspace()
    params = {"bundle": args.bundle, "calibration": args.calibration, "driver": args.driver,
              "robot_name": args.robot_name, "host": args.host, "port": args.port, "token_file": args.token_file,
              "scene": args.scene, "camera_topic": args.camera_topic, "recordings_dir": args.recordings_dir}  # fmt: skip
    cmd = [sys.executable, "-m", "legion_ros.composed", "--nodes", "console"]
    for k, v in params.items():
        cmd += ["-p", f"console.{k}:={v}"]
    try:
        return subprocess.call(cmd, env=child_env())
    except KeyboardInterrupt:
        return 0


def run_doctor(args: argparse.Namespace) -> int:
    import contextlib
    import importlib.util

    if args.driver == "twin":
        args.controller = ""
    # Here the repository's workspace is loaded into this process; a robot PC has sourced its own.
    if importlib.util.find_spec("legion_msgs") is None:
        from legion_core.tools.ros_env import WorkspaceNotBuiltError, ensure_workspace

        with contextlib.suppress(WorkspaceNotBuiltError):  # reported by the install checks
            ensure_workspace()
    from legion_core.tools.doctor import run

    return run(args)
