"""`legion doctor` against the lbr emulator with one fault injected per check, and what it prints
(docs/results/doctor-drill.md, written by `python -m legion_core.tools.doctor_drill --write`).

Each drill starts the emulator (twin_node driver:=lbr) in a child process with the fault, runs `legion doctor`
as an operator would, and keeps its output and exit code. The faults are what a lab meets on the first day:
no driver, a calibration that maps other joint names, the stack's default controller, the runtime's
controller loaded but not active, a command rate that is not the driver's, the LBRServer application not
commanding, a driver host whose clock is off.
"""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "results" / "doctor-drill.md"


@dataclass
class Drill:
    check: str
    """The check the fault is aimed at."""
    fault: str
    """What is wrong, in a lab's words."""
    emulator: dict[str, object] | None = field(default_factory=dict)
    """twin_node parameters of the emulator (None: no driver at all)."""
    doctor_args: list[str] = field(default_factory=list)
    prepare: Callable[[], None] | None = None
    """Run against the live emulator before the doctor (a lab's own commands)."""


class _Lab:
    """A node on its own rclpy context (the caller may have rclpy initialised already: a test's probe)."""

    def __init__(self, name: str) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.ctx = rclpy.Context()
        self.ctx.init()
        self.node = rclpy.create_node(name, context=self.ctx)
        self.executor = SingleThreadedExecutor(context=self.ctx)
        self.executor.add_node(self.node)

    def call(self, srv_type, name: str, request, timeout: float = 20.0):
        cli = self.node.create_client(srv_type, name)
        end = time.monotonic() + timeout
        while not cli.service_is_ready():
            if time.monotonic() > end:
                raise RuntimeError(f"{name} not offered")
            self.executor.spin_once(timeout_sec=0.1)
        fut = cli.call_async(request)
        self.executor.spin_until_future_complete(fut, timeout_sec=timeout)
        if not fut.done():
            raise RuntimeError(f"{name} did not answer")
        return fut.result()

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.ctx.try_shutdown()


def _load_and_configure_fpc() -> None:
    """`ros2 control load_controller --set-state inactive forward_position_controller -c /lbr/controller_manager`."""
    from controller_manager_msgs.srv import ConfigureController, LoadController

    lab = _Lab("drill_lab")
    try:
        for srv, name in ((LoadController, "load_controller"), (ConfigureController, "configure_controller")):
            if not lab.call(
                srv, f"/lbr/controller_manager/{name}", srv.Request(name="forward_position_controller")
            ).ok:
                raise RuntimeError(f"{name} failed")
    finally:
        lab.close()


def _other_joint_names_calibration() -> str:
    from sim2real.calibration import EXAMPLE_REAL_CALIBRATION_PATH, load_calibration, save_calibration

    cal = load_calibration(EXAMPLE_REAL_CALIBRATION_PATH)
    cal = dataclasses.replace(cal, joint_names={f"iiwa7_A{i}": f"lbr_A{i}" for i in range(1, 8)})
    path = Path(tempfile.mkdtemp(prefix="drill_")) / "cell_iiwa7_names.yaml"
    save_calibration(
        cal, path, header="drill: a calibration written for a driver that names its joints iiwa7_A*"
    )
    return str(path)


def _iiwa14_calibration() -> str:
    from legion_core.robot.description import ArmSource
    from sim2real.calibration import EXAMPLE_REAL_CALIBRATION_PATH, load_calibration, save_calibration

    cal = dataclasses.replace(load_calibration(EXAMPLE_REAL_CALIBRATION_PATH), arm=ArmSource("iiwa14"))
    path = Path(tempfile.mkdtemp(prefix="drill_")) / "cell_iiwa14.yaml"
    save_calibration(
        cal, path, header="drill: a calibration written for an iiwa 14 (arm: description: iiwa14)"
    )
    return str(path)


#: Stand-ins in a drill's doctor arguments: the calibration files the drills write.
CALIBRATIONS = {"<other-names>": _other_joint_names_calibration, "<iiwa14>": _iiwa14_calibration}
FPC_ACTIVE = {"ctrl": "forward_position_controller"}
DRILLS = (
    Drill("joint_states", "no driver running", None),
    Drill(
        "joint_names",
        "the calibration maps iiwa7_A1.. but the driver publishes lbr_A1..",
        FPC_ACTIVE,
        ["--calibration", "<other-names>"],
    ),  # fmt: skip
    Drill("command_subscriber", "the stack started with its default ctrl:=joint_trajectory_controller", {}),
    Drill(
        "controller",
        "forward_position_controller loaded and configured but not switched to",
        {},
        prepare=_load_and_configure_fpc,
    ),  # fmt: skip
    Drill(
        "update_rate",
        "the runtime set to 500 Hz, the driver's update_rate is 100 Hz",
        FPC_ACTIVE,
        ["--command-rate-hz", "500"],
    ),  # fmt: skip
    Drill(
        "robot_state",
        "the LBRServer application is not commanding (FRI MONITORING_READY)",
        {**FPC_ACTIVE, "fri_session_state": 2},
    ),  # fmt: skip
    Drill(
        "clock_offset",
        "the driver's host clock is 0.25 s ahead (no chrony)",
        {**FPC_ACTIVE, "stamp_offset_s": 0.25},
    ),
    Drill(
        "robot_description",
        "a calibration written for an iiwa 14 on the iiwa 7 the driver describes",
        FPC_ACTIVE,
        ["--calibration", "<iiwa14>"],
    ),
    Drill("(none)", "a ready driver", FPC_ACTIVE),
)


@dataclass
class Outcome:
    drill: Drill
    code: int
    output: str


def run_drill(d: Drill, seconds: float = 3.0) -> Outcome:
    """One drill: the emulator with the fault, then `legion doctor`; both children stay on loopback."""
    from legion_core.tools.ros_env import child_env, start_composed, stop_process_group

    emu = None
    if d.emulator is not None:
        params = {
            "twin.driver": "lbr",
            "twin.task": "drawer-close",
            **{f"twin.{k}": v for k, v in d.emulator.items()},
        }
        emu = start_composed("twin", params)
    try:
        args = [CALIBRATIONS[a]() if a in CALIBRATIONS else a for a in d.doctor_args]
        if emu is not None:
            _wait_for_emulator()
        if d.prepare is not None:
            d.prepare()
        cmd = [sys.executable, "-m", "legion_core.cli", "doctor", "--seconds", str(seconds), *args]
        p = subprocess.run(cmd, env=child_env(), capture_output=True, text=True, timeout=120)
        out = p.stdout
    finally:
        if emu is not None:
            stop_process_group(emu)
    return Outcome(d, p.returncode, out)


def _wait_for_emulator(timeout: float = 60.0) -> None:
    """Until the emulator's controller manager answers (it is up and discovered)."""
    from controller_manager_msgs.srv import ListControllers

    lab = _Lab("drill_wait")
    try:
        lab.call(
            ListControllers, "/lbr/controller_manager/list_controllers", ListControllers.Request(), timeout
        )
    finally:
        lab.close()


def live_part(output: str) -> str:
    """The doctor's lines after the install checks (what the drill is about)."""
    lines = output.splitlines()
    start = next((i for i, ln in enumerate(lines) if "joint_states" in ln or "settings" in ln), 0)
    return "\n".join(lines[start:])


def write_doc(outcomes: list[Outcome], path: Path = DOC) -> Path:
    parts = [
        "# `legion doctor` on the lbr emulator, one fault per check",
        "",
        "Generated by `python -m legion_core.tools.doctor_drill --write` (legion_core/tools/doctor_drill.py): each",
        "drill starts the lbr_fri_ros2_stack emulator (twin_node `driver:=lbr`, docs/robot-integration.md) with one",
        "fault, then runs `legion doctor` (default arguments: `--driver lbr --controller forward_position_controller",
        "--command-rate-hz 100`) as an operator would. The install checks (all passing here) are left out.",
        "",
    ]
    for o in outcomes:
        d = o.drill
        parts += [
            f"## {d.check}: {d.fault}",
            "",
            f"exit code {o.code}",
            "",
            "```",
            live_part(o.output),
            "```",
            "",
        ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts))
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m legion_core.tools.doctor_drill",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  python -m legion_core.tools.doctor_drill --write",
    )
    ap.add_argument("--write", action="store_true", help=f"write {DOC.relative_to(DOC.parents[2])}")
    args = ap.parse_args(argv)
    from legion_core.tools.ros_env import ensure_workspace

    ensure_workspace()
    outcomes = []
    for d in DRILLS:
        o = run_drill(d)
        print(f"{d.check:20s} exit {o.code}: {d.fault}", flush=True)
        outcomes.append(o)
    if args.write:
        print(f"wrote {write_doc(outcomes)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
