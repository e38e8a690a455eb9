"""The child processes of a regression check: the fresh runtime (legion_ros.composed) and the recorder,
each in its own session so that it is stopped as a group."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def runtime_command(nodes: str, params: dict[str, Any]) -> list[str]:
    from legion_core.tools.ros_env import composed_argv

    return composed_argv(nodes, params)


def spawn_child(cmd: list[str], log_path: Path, pipe_stdout: bool = False) -> subprocess.Popen:
    """A child in its own session (stopped as a group by `stop_child`), its output in log_path (stdout piped when
    the caller reads it). The parent's handle of the log is closed at once: the child keeps its own."""
    from legion_core.tools.ros_env import child_env

    with open(log_path, "w") as log:
        return subprocess.Popen(cmd, env=child_env(), start_new_session=True, text=True,
                                stdout=subprocess.PIPE if pipe_stdout else log,
                                stderr=log if pipe_stdout else subprocess.STDOUT)  # fmt: skip


def stop_child(proc: subprocess.Popen, timeout: float = 10.0) -> int | None:
    from legion_core.tools.ros_env import stop_process_group

    return stop_process_group(proc, timeout)


class LineReader:
    """Collects a child's stdout lines on a thread; `wait_for(pred)` blocks until a line matches."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._cv = threading.Condition()
        self._proc = proc
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        for line in self._proc.stdout:
            with self._cv:
                self.lines.append(line.rstrip("\n"))
                self._cv.notify_all()
        with self._cv:
            self._cv.notify_all()

    def wait_for(self, pred: Callable[[str], bool], timeout: float) -> str | None:
        end = time.monotonic() + timeout
        with self._cv:
            while True:
                for ln in self.lines:
                    if pred(ln):
                        return ln
                if self._proc.poll() is not None and not any(pred(ln) for ln in self.lines):
                    return None
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self._cv.wait(min(left, 0.2))
