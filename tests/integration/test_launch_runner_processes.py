"""`legion launch` with real processes: `[name]`-prefixed output, log files, bounded respawn, the
SIGINT -> SIGTERM -> SIGKILL shutdown with no orphans, `on_exit: shutdown`, and what each child receives
(ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, name/namespace/params/remaps as --ros-args). The children are
tiny Python scripts in a fake ament prefix (tests/data/launch/prefix, copied to tmp_path); one test starts
a real rclpy node to prove rclpy reads those arguments. Every wait is on a condition with a timeout."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from legion_core.tools.launch.description import parse_launch_file
from legion_core.tools.launch.processes import LaunchRunner

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "launch"


@pytest.fixture
def prefix(tmp_path: Path) -> Path:
    """A copy of the fake ament prefix with its scripts made executable (git or a copy may drop the bit)."""
    dst = tmp_path / "prefix"
    shutil.copytree(DATA / "prefix", dst)
    for exe in (dst / "lib" / "fakepkg").iterdir():
        exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return dst


def alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (an unreaped zombie is dead for our purposes)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def wait_until(cond, timeout: float, what: str, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Capture:
    """A thread-safe text sink for LaunchRunner's stdout/stderr."""

    def __init__(self):
        self._lock = threading.Lock()
        self._parts: list[str] = []

    def write(self, s: str) -> int:
        with self._lock:
            self._parts.append(s)
        return len(s)

    def flush(self) -> None:
        pass

    @property
    def text(self) -> str:
        with self._lock:
            return "".join(self._parts)

    def lines(self) -> list[str]:
        return self.text.splitlines()


def ready_report(lines: list[str], name: str) -> dict | None:
    tag = f"[{name}] READY "
    for line in lines:
        if line.startswith(tag):
            return json.loads(line[len(tag) :])
    return None


def start_in_thread(runner: LaunchRunner) -> tuple[threading.Thread, dict]:
    result: dict = {}
    t = threading.Thread(target=lambda: result.setdefault("rc", runner.run()), daemon=True)
    t.start()
    return t, result


def write_launch(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "t.launch.yaml"
    p.write_text(body)
    return p


# ------------------------------------------------------------------------------------------------
def test_cli_run_respawns_bounded_and_sigint_leaves_no_orphans(prefix, tmp_path):
    """The full CLI in its own process, as a user runs it: Ctrl-C (SIGINT to the runner) must take down
    every child and the child's own children within a few seconds."""
    logs = tmp_path / "logs"
    cmd = [
        sys.executable,
        "-m",
        "legion_core.tools.launch.runner",
        str(DATA / "procs.launch.yaml"),
        "--install-dir",
        str(prefix),
        "--log-dir",
        str(logs),
        "--max-respawns",
        "2",
    ]
    proc = subprocess.Popen(
        cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ)
    )
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.extend(x.rstrip("\n") for x in iter(proc.stdout.readline, "")), daemon=True
    )
    reader.start()
    try:
        steady = wait_until(lambda: ready_report(list(lines), "steady"), 15, "[steady] READY")
        wait_until(
            lambda: any("crasher: not respawning any more" in x for x in list(lines)), 15, "crasher give-up"
        )
        parent_log = logs / "parent.log"
        parent = wait_until(
            lambda: (
                parent_log.is_file()
                and next(
                    (
                        json.loads(x[6:])
                        for x in parent_log.read_text().splitlines()
                        if x.startswith("READY ")
                    ),
                    None,
                )
            ),
            15,
            "parent READY in its log file",
        )
        snapshot = list(lines)
        # Bounded respawn: 1 start + 2 respawns, then given up.
        crasher_pids = [ln for ln in snapshot if ln.startswith("[launch] crasher: started, pid")]
        assert len(crasher_pids) == 3, snapshot
        assert "[crasher] exiting with code 3" in snapshot
        # output=screen: stdout and stderr lines both prefixed; output=log: stdout to the file, stderr shown.
        assert "[steady] a line on stderr" in snapshot and "[parent] a line on stderr" in snapshot
        assert not any(ln.startswith("[parent] READY") for ln in snapshot)
        # What the node got: NETWORK RULE, the parent's domain, name/namespace/params/remaps as --ros-args.
        assert steady["discovery"] == "LOCALHOST" and steady["domain"] == os.environ["ROS_DOMAIN_ID"]
        assert steady["argv"] == [
            "--ros-args",
            "-r",
            "__node:=steady",
            "-r",
            "__ns:=/demo",
            "-p",
            "rate_hz:=25",
            "-r",
            "chatter:=/demo/out",
        ]
        assert steady["pgid"] == steady["pid"]  # its own process group
        grandchild = parent["grandchild"]
        pids = [steady["pid"], parent["pid"], grandchild]
        assert all(alive(p) for p in pids)

        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=15)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:  # a failed assertion above: still shut down cleanly, then insist
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    reader.join(5)
    assert took < 5.0, f"shutdown took {took:.1f} s"
    assert rc == 1  # the crasher was given up: a failure, reported in the exit code
    wait_until(lambda: not any(alive(p) for p in pids), 3, "every child and grandchild to be gone")
    out = "\n".join(lines)
    assert "shutting down: SIGINT received" in out and "[steady] got SIGINT" in out
    assert "failed: crasher: not respawned any more" in out
    assert "got SIGINT" in (logs / "parent.log").read_text()
    assert "steady: started" in (logs / "launch.log").read_text()


def test_child_ignoring_sigint_gets_sigterm(prefix, tmp_path):
    body = """launch:
  - node: {pkg: fakepkg, exec: talker, name: stubborn, output: screen, args: --ignore-sigint}
"""
    d = parse_launch_file(write_launch(tmp_path, body), install_dir=prefix)
    out, err = Capture(), Capture()
    runner = LaunchRunner(
        d, log_dir=tmp_path / "logs", sigint_timeout=0.3, sigterm_timeout=2.0, stdout=out, stderr=err
    )
    t, result = start_in_thread(runner)
    wait_until(lambda: ready_report(out.lines(), "stubborn"), 10, "stubborn READY")
    t0 = time.monotonic()
    runner.request_shutdown("test")
    t.join(10)
    assert not t.is_alive() and time.monotonic() - t0 < 3.0
    assert result["rc"] == 0  # stopped by our shutdown: not a failure
    assert "[stubborn] ignoring SIGINT" in out.text and "[stubborn] got SIGTERM" in out.text
    assert "stubborn: still running, sending SIGTERM" in err.text
    assert not any(alive(p) for p in runner.all_pids()["stubborn"])


def test_sigkill_is_the_last_resort(prefix, tmp_path):
    # SIGTERM ignored too (a shell trap): only SIGKILL ends it.
    body = """launch:
  - executable:
      cmd: bash -c "trap '' INT TERM; echo armed; while true; do sleep 0.05; done"
      name: unkillable
      output: screen
"""
    d = parse_launch_file(write_launch(tmp_path, body), install_dir=prefix)
    out, err = Capture(), Capture()
    runner = LaunchRunner(
        d, log_dir=tmp_path / "logs", sigint_timeout=0.2, sigterm_timeout=0.2, stdout=out, stderr=err
    )
    t, result = start_in_thread(runner)
    wait_until(lambda: "[unkillable] armed" in out.text, 10, "armed")
    runner.request_shutdown("test")
    t.join(10)
    assert not t.is_alive() and result["rc"] == 0
    assert "sending SIGTERM" in err.text and "sending SIGKILL" in err.text
    assert "unkillable: stopped (signal SIGKILL)" in out.text
    assert not any(alive(p) for p in runner.all_pids()["unkillable"])


def test_required_process_exit_shuts_the_launch_down(prefix, tmp_path):
    body = """launch:
  - node: {pkg: fakepkg, exec: talker, name: steady, output: screen}
  - node: {pkg: fakepkg, exec: talker, name: boss, output: screen, args: --exit-after 0.3, on_exit: shutdown}
"""
    d = parse_launch_file(write_launch(tmp_path, body), install_dir=prefix)
    out = Capture()
    runner = LaunchRunner(d, log_dir=tmp_path / "logs", stdout=out, stderr=out)
    t0 = time.monotonic()
    rc = runner.run()  # returns by itself: no shutdown request from the test
    assert time.monotonic() - t0 < 8.0
    assert rc == 0
    assert "shutting down: required process boss exited (exit code 0)" in out.text
    assert "[steady] got SIGINT" in out.text
    assert not any(alive(p) for pids in runner.all_pids().values() for p in pids)


def test_launch_ends_when_every_process_has_ended_and_reports_failures(prefix, tmp_path):
    """ros2 launch's default: a process that ends does not stop the others; the launch ends with the last."""
    body = """launch:
  - node: {pkg: fakepkg, exec: talker, name: ok, args: --exit-after 0.1}
  - node: {pkg: fakepkg, exec: talker, name: bad, output: screen, args: --exit-after 0.4 --code 2}
  - node:
      pkg: fakepkg
      exec: talker
      name: twice
      output: both
      args: --exit-after 0.1
      respawn: 'true'
      respawn_max_retries: 1
"""
    d = parse_launch_file(write_launch(tmp_path, body), install_dir=prefix)
    out, err = Capture(), Capture()
    logs = tmp_path / "logs"
    rc = LaunchRunner(d, log_dir=logs, stdout=out, stderr=err).run()
    assert rc == 1
    assert "bad: process has finished (exit code 2)" in err.text
    assert "failed: bad: exit code 2" in err.text and "twice" not in err.text.split("failed:")[1]
    assert out.text.count("twice: started") == 2  # respawn_max_retries: 1 -> one respawn, then a normal end
    assert "all processes have finished" in out.text
    ok_log = (logs / "ok.log").read_text()  # output=log: stdout and stderr in the file, stderr on screen too
    assert "READY" in ok_log and "a line on stderr" in ok_log and "[ok] a line on stderr" in err.text
    assert "[ok] READY" not in out.text
    twice_log = (logs / "twice.log").read_text()  # output=both: file and screen
    assert twice_log.count("--- start #") == 2 and "[twice] READY" in out.text


def test_a_process_that_cannot_start_is_reported(prefix, tmp_path):
    (prefix / "lib" / "fakepkg" / "talker").chmod(0o644)
    d = parse_launch_file(
        write_launch(tmp_path, "launch:\n  - node: {pkg: fakepkg, exec: talker, name: t}\n"),
        install_dir=prefix,
    )
    err = Capture()
    assert LaunchRunner(d, log_dir=tmp_path / "logs", stdout=Capture(), stderr=err).run() == 1
    assert "t: cannot start" in err.text and "chmod +x" in err.text


@pytest.mark.ros
def test_rclpy_node_reads_name_namespace_params_and_remaps(prefix, tmp_path):
    """The `--ros-args` we build are understood by rclpy itself (not just by our parser)."""
    (tmp_path / "extra.yaml").write_text("/**:\n  ros__parameters:\n    from_file: 7\n    gain: 0.5\n")
    body = """launch:
  - group:
      - push-ros-namespace: {namespace: robot}
      - node:
          pkg: fakepkg
          exec: param_probe
          name: probe
          namespace: arm
          output: screen
          param:
            - from: $(dirname)/extra.yaml
            - {name: gain, value: 2.5}
            - {name: frame, value: tool0}
            - {name: flags, value: [true, false]}
            - {name: id, value: '007', type: str}
            - name: limits
              param: [{name: max_vel, value: 1.5}]
          remap: [{from: chatter, to: /robot/joint_commands}]
"""
    d = parse_launch_file(write_launch(tmp_path, body), install_dir=prefix)
    out = Capture()
    rc = LaunchRunner(d, log_dir=tmp_path / "logs", stdout=out, stderr=out).run()
    line = next((x for x in out.lines() if x.startswith("[probe] PROBE ")), None)
    assert rc == 0 and line, out.text
    report = json.loads(line[len("[probe] PROBE ") :])
    assert report["fqn"] == "/robot/arm/probe"
    assert report["topic"] == "/robot/joint_commands"
    assert report["discovery"] == "LOCALHOST"
    assert report["params"] == {
        "from_file": 7,
        "gain": 2.5,  # -p after --params-file wins, as with ros2 launch's ordering
        "frame": "tool0",
        "flags": [True, False],
        "id": "007",
        "limits.max_vel": 1.5,
    }
