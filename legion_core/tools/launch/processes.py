"""The process supervisor of `legion launch`: `LaunchRunner` starts, respawns and shuts down the
processes of a `LaunchDescription`.

The lifecycle follows ros2 launch: every process starts at once, a process that exits does not stop
the others (the launch ends when none is left running), unless it carries
`on_exit: shutdown` (ROS 1's `required="true"`; the YAML key exists in ros2 launch from Jazzy on). On
SIGINT/SIGTERM every child's process group gets SIGINT, then SIGTERM after `sigint_timeout` (5 s), then
SIGKILL after `sigterm_timeout` (5 s); a second Ctrl-C skips to the next step. Respawning is bounded: a
process that keeps dying within `rapid_exit_s` of its start is given up after `max_rapid_respawns` tries
(ros2 launch would respawn it forever). `output` is ros2 launch's: screen, log (default: stdout and stderr
to `<log_dir>/<name>.log`, stderr also on screen), both, own_log, full. The exit code is 0 unless a process
failed (non-zero exit outside a shutdown, could not start, or was given up). A `kill -9` of the runner
leaves its children running, as with ros2 launch (they are in their own process groups).
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from legion_core.tools.launch.model import LaunchDescription, ProcessSpec


@dataclass
class _Proc:
    spec: ProcessSpec
    popen: subprocess.Popen | None = None
    state: str = "pending"  # pending | running | respawn_wait | exited | failed
    started_at: float = 0.0
    starts: int = 0
    rapid_exits: int = 0
    next_start: float = 0.0
    returncode: int | None = None
    log: TextIO | None = None
    log_lock: threading.Lock = field(default_factory=threading.Lock)
    readers: list[threading.Thread] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)  # every pid this process has had (respawns)
    # shutdown ladder
    stage: int = 0  # 0: running, 1: SIGINT sent, 2: SIGTERM sent, 3: SIGKILL sent
    stage_deadline: float = 0.0


class LaunchRunner:
    """Runs a LaunchDescription's processes until they are all gone or a shutdown is requested.

    Each child gets its own process group (so Ctrl-C in a terminal reaches only the runner, which then
    shuts the children down in order, and so signals reach a child's own children too). Output lines are
    prefixed with `[name]`: output=screen shows stdout and stderr; output=log writes both to
    `<log_dir>/<name>.log` and, as ros2 launch does, still shows stderr; output=both does both.
    `run()` returns 0 when every process ended cleanly or was stopped by the shutdown, 1 when a process
    failed (non-zero exit outside a shutdown, could not start, or was given up after crash loops)."""

    def __init__(
        self,
        description: LaunchDescription,
        *,
        log_dir: str | Path | None = None,
        sigint_timeout: float = 5.0,
        sigterm_timeout: float = 5.0,
        max_rapid_respawns: int = 5,
        rapid_exit_s: float = 5.0,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
        poll_s: float = 0.05,
    ):
        self.description = description
        self.log_dir = Path(log_dir) if log_dir is not None else _default_log_dir(description.base_env)
        self.sigint_timeout = sigint_timeout
        self.sigterm_timeout = sigterm_timeout
        self.max_rapid_respawns = max_rapid_respawns
        self.rapid_exit_s = rapid_exit_s
        self.poll_s = poll_s
        self._out = stdout
        self._err = stderr
        self._procs = [_Proc(spec) for spec in description.processes]
        self._print_lock = threading.Lock()
        self._shutdown_reason: str | None = None
        self._escalate = False
        self._failed: list[str] = []
        self._launch_log: TextIO | None = None
        self.started = threading.Event()  # set once every process has been started the first time

    # -- public, thread-safe
    def request_shutdown(self, reason: str = "shutdown requested") -> None:
        """Start the SIGINT -> SIGTERM -> SIGKILL shutdown; a second call skips to the next step."""
        # Plain attribute writes only: this also runs inside the signal handler, where taking a lock the
        # interrupted main thread may hold would deadlock.
        if self._shutdown_reason is None:
            self._shutdown_reason = reason
        else:
            self._escalate = True

    def pids(self) -> dict[str, int]:
        """Current pid of every running process, by name."""
        return {p.spec.name: p.popen.pid for p in self._procs if p.popen is not None and p.state == "running"}

    def all_pids(self) -> dict[str, list[int]]:
        """Every pid each process has had (one per start)."""
        return {p.spec.name: list(p.pids) for p in self._procs}

    # -- output
    def _stream(self, err: bool) -> TextIO:
        if err:
            return self._err if self._err is not None else sys.stderr
        return self._out if self._out is not None else sys.stdout

    def _emit(self, line: str, *, err: bool = False) -> None:
        with self._print_lock:
            try:
                s = self._stream(err)
                s.write(line + "\n")
                s.flush()
            except (OSError, ValueError):
                pass  # a closed or broken terminal must not take the launch down

    def _info(self, msg: str, *, err: bool = False) -> None:
        self._emit(f"[launch] {msg}", err=err)
        if self._launch_log is not None:
            with self._print_lock:
                self._launch_log.write(f"{time.strftime('%H:%M:%S')} {msg}\n")
                self._launch_log.flush()

    # -- process control
    def _start(self, p: _Proc) -> None:
        spec = p.spec
        p.starts += 1
        if spec.output != "screen":
            if p.log is None:
                safe = re.sub(r"[^A-Za-z0-9_.-]", "__", spec.name)
                p.log = open(self.log_dir / f"{safe}.log", "a", encoding="utf-8")  # noqa: SIM115
            with p.log_lock:
                p.log.write(f"--- start #{p.starts}: {shlex.join(spec.argv)}\n")
                p.log.flush()
        try:
            p.popen = subprocess.Popen(
                spec.argv,
                env=spec.env,
                cwd=spec.cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # own process group: see the class docstring
                close_fds=True,
            )
        except OSError as e:
            hint = " (chmod +x it)" if isinstance(e, PermissionError) else ""
            self._info(f"{spec.name}: cannot start {spec.argv[0]!r}: {e}{hint}", err=True)
            p.state = "failed"
            self._failed.append(f"{spec.name}: could not start ({e})")
            if spec.required:
                self.request_shutdown(f"required process {spec.name} could not start")
            return
        p.state = "running"
        p.started_at = time.monotonic()
        p.pids.append(p.popen.pid)
        p.stage = 0
        self._info(f"{spec.name}: started, pid {p.popen.pid}")
        p.readers = [
            threading.Thread(target=self._read, args=(p, p.popen.stdout, False), daemon=True),
            threading.Thread(target=self._read, args=(p, p.popen.stderr, True), daemon=True),
        ]
        for t in p.readers:
            t.start()

    def _read(self, p: _Proc, pipe: Any, is_err: bool) -> None:
        spec = p.spec
        to_screen = spec.output in ("screen", "both", "full") or (spec.output == "log" and is_err)
        to_log = spec.output != "screen"
        try:
            for raw in iter(pipe.readline, b""):
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                if to_screen:
                    self._emit(f"[{spec.name}] {line}", err=is_err)
                if to_log and p.log is not None:
                    with p.log_lock:
                        p.log.write(line + "\n")
                        p.log.flush()
        except (OSError, ValueError):
            pass
        finally:
            pipe.close()

    def _signal(self, p: _Proc, sig: int) -> None:
        """Signal the child's whole process group (its pid: it leads its own session)."""
        assert p.popen is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.popen.pid, sig)

    def _on_exit(self, p: _Proc, now: float) -> None:
        assert p.popen is not None
        spec = p.spec
        code = p.popen.returncode
        p.returncode = code
        ran = now - p.started_at
        self._join_readers(p, 0.5)
        shutting_down = self._shutdown_reason is not None
        how = _describe_returncode(code)
        if shutting_down:
            p.state = "exited"
            self._info(f"{spec.name}: stopped ({how})")
            return
        level_err = code != 0
        self._info(f"{spec.name}: process has finished ({how}) after {ran:.1f} s", err=level_err)
        if spec.respawn:
            p.rapid_exits = p.rapid_exits + 1 if ran < self.rapid_exit_s else 0
            retries_done = p.starts - 1
            if 0 <= spec.respawn_max_retries <= retries_done:
                # The file's own limit: a normal end, unless the last run failed.
                self._give_up(p, f"respawned {retries_done} times (respawn_max_retries)", failed=code != 0)
            elif p.rapid_exits > self.max_rapid_respawns:
                self._give_up(
                    p,
                    f"it died {p.rapid_exits} times in a row within {self.rapid_exit_s:g} s of starting "
                    f"(--max-respawns {self.max_rapid_respawns})",
                )
            else:
                p.state = "respawn_wait"
                p.next_start = now + spec.respawn_delay
                self._info(f"{spec.name}: respawning in {spec.respawn_delay:g} s")
            return
        p.state = "exited"
        if code != 0:
            self._failed.append(f"{spec.name}: {how}")
        if spec.required:
            self.request_shutdown(f"required process {spec.name} exited ({how})")

    def _give_up(self, p: _Proc, why: str, *, failed: bool = True) -> None:
        p.state = "failed" if failed else "exited"
        if failed:
            self._failed.append(f"{p.spec.name}: not respawned any more: {why}")
        self._info(f"{p.spec.name}: not respawning any more: {why}", err=failed)
        if p.spec.required:
            self.request_shutdown(f"required process {p.spec.name} was given up")

    def _join_readers(self, p: _Proc, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for t in p.readers:
            t.join(max(0.0, deadline - time.monotonic()))

    def _shutdown(self) -> None:
        self._info(f"shutting down: {self._shutdown_reason}")
        for p in self._procs:
            if p.state in ("pending", "respawn_wait"):
                p.state = "exited"
        running = [p for p in self._procs if p.state == "running"]
        now = time.monotonic()
        for p in running:
            p.stage = 1
            p.stage_deadline = now + (
                p.spec.sigterm_timeout if p.spec.sigterm_timeout is not None else self.sigint_timeout
            )
            self._signal(p, signal.SIGINT)
        while True:
            now = time.monotonic()
            escalate, self._escalate = self._escalate, False
            if escalate:
                self._info("signal received again: escalating the shutdown", err=True)
            alive = False
            for p in running:
                assert p.popen is not None
                if p.state != "running":
                    continue
                if p.popen.poll() is not None:
                    self._on_exit(p, now)
                    continue
                alive = True
                if (escalate or now >= p.stage_deadline) and p.stage < 3:
                    p.stage += 1
                    sig = signal.SIGTERM if p.stage == 2 else signal.SIGKILL
                    if p.stage == 2:
                        t = (
                            p.spec.sigkill_timeout
                            if p.spec.sigkill_timeout is not None
                            else self.sigterm_timeout
                        )
                        p.stage_deadline = now + t
                    self._info(f"{p.spec.name}: still running, sending {sig.name}", err=True)
                    self._signal(p, sig)
            if not alive:
                break
            time.sleep(self.poll_s)
        # A child's own children (same process group) must not outlive the launch.
        for p in running:
            if p.popen is not None and _group_alive(p.popen.pid):
                self._signal(p, signal.SIGKILL)

    def run(self) -> int:
        """Start every process, supervise until all have ended or a shutdown was requested (SIGINT,
        SIGTERM, `request_shutdown()`, a required process exiting), then stop the rest. Returns 0/1."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._launch_log = open(self.log_dir / "launch.log", "a", encoding="utf-8")  # noqa: SIM115
        previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, self._on_signal)
        try:
            for w in self.description.warnings:
                self._info(f"warning: {w}", err=True)
            for m in self.description.messages:
                self._info(m)
            self._info(f"log files in {self.log_dir}")
            for p in self._procs:
                if self._shutdown_reason is None:
                    self._start(p)
            self.started.set()
            while self._shutdown_reason is None:
                now = time.monotonic()
                for p in self._procs:
                    if p.state == "running" and p.popen is not None and p.popen.poll() is not None:
                        self._on_exit(p, now)
                    if p.state == "respawn_wait" and now >= p.next_start and self._shutdown_reason is None:
                        self._start(p)
                if not any(p.state in ("running", "respawn_wait") for p in self._procs):
                    self._info("all processes have finished")
                    break
                time.sleep(self.poll_s)
        finally:
            self.started.set()
            if self._shutdown_reason is None and any(p.state == "running" for p in self._procs):
                self._shutdown_reason = "runner exiting"  # e.g. an exception in the loop above
            if self._shutdown_reason is not None:
                self._shutdown()
            for p in self._procs:
                self._join_readers(p, 1.0)
                if p.log is not None:
                    p.log.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if self._failed:
                self._info("failed: " + "; ".join(self._failed), err=True)
            self._launch_log.close()
            self._launch_log = None
        return 1 if self._failed else 0

    def _on_signal(self, signum: int, _frame: Any) -> None:
        # No printing here (the print lock may be held by the interrupted main thread); the main loop
        # reports the reason.
        self.request_shutdown(f"{signal.Signals(signum).name} received")


def _describe_returncode(code: int) -> str:
    if code >= 0:
        return f"exit code {code}"
    try:
        return f"signal {signal.Signals(-code).name}"
    except ValueError:
        return f"signal {-code}"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _default_log_dir(env: Mapping[str, str]) -> Path:
    base = env.get("ROS_LOG_DIR") or str(Path(env.get("ROS_HOME") or Path.home() / ".ros") / "log")
    return Path(base) / f"legion_launch_{time.strftime('%Y-%m-%d-%H-%M-%S')}_{os.getpid()}"
