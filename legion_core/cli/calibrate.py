"""`legion calibrate`: hand-eye calibration of the cell's camera from a tag on the flange (docs/calibration.md)."""

from __future__ import annotations

import argparse

from legion_core.cli.common import add_command


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    s = add_command(
        subparsers,
        "calibrate",
        help="hand-eye calibration: the camera's pose from a tag on the flange",
        description="Hand-eye calibration (docs/calibration.md): the arm visits a plan of poses inside the\n"
        "workspace box with a tag on its flange, the camera's detections and the flange poses (FK of the\n"
        "measured joints) are solved for the camera's pose in the robot base frame (OpenCV's closed form,\n"
        "then least squares over all samples). Prints each sample's residual and a verdict; on PASS writes\n"
        "the calibration YAML with the new T_base_camera. Exit status: 0 PASS, 1 FAIL, 2 bad input.\n\n"
        "--graph moves the twin through sim2real_node's safety layer, as on a robot: it starts twin +\n"
        "sim2real + perception, makes `ready` the active skill and gives each pose as a target of the\n"
        "ready move (joint limits, workspace box, table floor, slow cosine profile; a refused pose is\n"
        "skipped with the node's reason), then takes perception_node's tag detection after the arm rests.\n"
        "--robot does the same against a running robot graph (sim2real_node, the camera driver and\n"
        "perception_node with tag_map:=sim2real/config/tags_calibration.yaml).\n"
        "--twin is the fast offline check: the twin in this process, the same checks, not through\n"
        "sim2real_node. On the twin the camera stands where the solver is not told.\n\n"
        "examples:\n"
        "  legion calibrate --graph --camera-offset 0.04 -0.03 0.02 --camera-rpy-deg 1.5 -2 3 --out out/cal.yaml\n"
        "  legion calibrate --robot --calibration my_cell.yaml --joint-states-topic /lbr/joint_states \\\n"
        "      --out my_cell_new.yaml\n"
        "  legion calibrate --twin --out out/calibration_twin.yaml\n"
        "  legion calibrate --twin --camera-offset 0.04 -0.03 0.02 --camera-rpy-deg 1.5 -2 3 \\\n"
        "      --save-samples out/handeye_samples.yaml --json out/calibrate.json\n"
        "  legion calibrate --samples out/handeye_samples.yaml --calibration my_cell.yaml --out my_cell_new.yaml",
    )
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--graph", action="store_true",
                     help="collect on the twin through sim2real_node (starts twin + sim2real + perception)")  # fmt: skip
    src.add_argument("--robot", action="store_true",
                     help="collect through an already running sim2real_node + perception_node (a robot)")  # fmt: skip
    src.add_argument("--twin", action="store_true",
                     help="collect on the MuJoCo twin in this process (fast; not through sim2real_node)")  # fmt: skip
    src.add_argument(
        "--samples", metavar="FILE", help="solve from a samples file (--save-samples writes one)"
    )
    s.add_argument("--out", metavar="FILE", help="write the calibration YAML here (only on PASS)")
    s.add_argument("--calibration", metavar="FILE",
                   help="base calibration whose T_base_camera is replaced (default: the twin's)")  # fmt: skip
    s.add_argument("--prior", metavar="FILE",
                   help="a calibration whose T_base_camera also starts the solve (optional; the best start wins)")  # fmt: skip
    s.add_argument("--save-samples", metavar="FILE", help="also write the collected samples (YAML)")
    s.add_argument("--json", metavar="FILE", help="also write the result as JSON")
    s.add_argument("--poses", type=int, default=30, help="poses in the sample plan (default 30)")
    s.add_argument("--camera-offset", type=float, nargs=3, default=(0.0, 0.0, 0.0), metavar=("DX", "DY", "DZ"),
                   help="--twin/--graph: move the twin's camera by this [m, sim_world] (the solver is not told)")  # fmt: skip
    s.add_argument("--camera-rpy-deg", type=float, nargs=3, default=(0.0, 0.0, 0.0), metavar=("R", "P", "Y"),
                   help="--twin/--graph: turn the twin's camera by this [deg, its own axes]")  # fmt: skip
    s.add_argument(
        "--width", type=int, default=1280, help="--twin/--graph: rendered image width [px] (default 1280)"
    )
    s.add_argument(
        "--height", type=int, default=960, help="--twin/--graph: rendered image height [px] (default 960)"
    )
    s.add_argument("--joint-states-topic", default="", metavar="TOPIC",
                   help="--robot: the driver's joint states (default /joint_states)")  # fmt: skip
    s.add_argument("--log-dir", default="out/calibrate_graph", metavar="DIR",
                   help="--graph: the graph's logs and the twin's moved-camera calibration (default out/calibrate_graph)")  # fmt: skip
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(func=run_calibrate)


def run_calibrate(args: argparse.Namespace) -> int:
    from legion_core.tools.calibrate import run

    return run(args)
