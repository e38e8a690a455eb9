"""Make the built ROS 2 workspace (ros2_ws/install) usable from this Python process and its children,
without `source install/setup.bash`: what `legion launch`, `legion run`, the benchmarks and the tests use.

On a robot PC with a full ROS 2 install, source the workspace's setup.bash instead; nothing here is needed.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "ros2_ws" / "install"
#: Fast DDS profile for camera frames between processes (its comment says why; docs/perception.md).
LARGE_FRAMES_DDS_PROFILE = REPO / "ros2_ws" / "src" / "legion_bringup" / "config" / "fastdds_large_frames.xml"
#: The variable Fast DDS 3 (Jazzy, Kilted) reads, and Fast DDS 2's (Humble); Fast DDS 3 also reads the old
#: name but warns that it is deprecated, so only the distribution's own is set.
DDS_PROFILE_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")


def use_large_frames_profile(env: dict) -> dict:
    """`env` with the large-frames DDS profile, unless it already names a profile of its own."""
    if not any(env.get(k) for k in DDS_PROFILE_VARIABLES):
        name = DDS_PROFILE_VARIABLES[1] if env.get("ROS_DISTRO") == "humble" else DDS_PROFILE_VARIABLES[0]
        env[name] = str(LARGE_FRAMES_DDS_PROFILE)
    return env


class WorkspaceNotBuiltError(RuntimeError):
    pass


def site_packages(install: Path = INSTALL) -> Path:
    return install / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


def child_env(install: Path = INSTALL, base: dict | None = None) -> dict[str, str]:
    """Environment for a child process that runs LEGION nodes (loopback DDS forced)."""
    env = dict(os.environ if base is None else base)

    def prepend(key: str, value: str) -> None:
        env[key] = value + (os.pathsep + env[key] if env.get(key) else "")

    prepend("PYTHONPATH", str(site_packages(install)))
    prepend("LD_LIBRARY_PATH", str(install / "lib"))
    prepend("AMENT_PREFIX_PATH", str(install))
    prepend("PATH", str(Path(sys.executable).parent))
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("MUJOCO_GL", "egl")  # offscreen rendering (videos) on headless machines
    return env


def ensure_workspace(install: Path = INSTALL) -> Path:
    """Import path + shared libraries of the workspace for THIS process. The generated message libraries
    are found by the dynamic loader only through LD_LIBRARY_PATH, which a running process cannot change:
    preloading them with RTLD_GLOBAL makes their sonames resolvable for the typesupport modules."""
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    sp = site_packages(install)
    if not (sp / "legion_msgs").exists():
        raise WorkspaceNotBuiltError(
            f"{install} has no legion_msgs: build the workspace with `make ws` (scripts/build_ws.sh)"
        )
    if str(sp) not in sys.path:
        sys.path.insert(0, str(sp))
    lib = install / "lib"
    pending = sorted(lib.glob("*.so"))
    # Load in dependency order by retrying: generator_c before typesupport, etc.
    for _ in range(len(pending)):
        failed = []
        for so in pending:
            try:
                ctypes.CDLL(str(so), mode=ctypes.RTLD_GLOBAL)
            except OSError:
                failed.append(so)
        if not failed or len(failed) == len(pending):
            break
        pending = failed
    prefix = os.environ.get("AMENT_PREFIX_PATH", "")
    if str(install) not in prefix.split(os.pathsep):
        os.environ["AMENT_PREFIX_PATH"] = str(install) + (os.pathsep + prefix if prefix else "")
    return install


def composed_argv(nodes: str, params: dict[str, object] | list[str], handoff: bool = True,
                  realtime_priority: int = 0, cpu_affinity: str = "all", namespace: str = "") -> list[str]:  # fmt: skip
    """The command line of `legion_ros.composed` hosting `nodes` ("twin,real2sim,...") with `params` as
    {"policy.bundle": path} or ["policy.bundle:=path", ...]; `handoff=False` keeps the control path on DDS
    (`composed --no-handoff`); `realtime_priority` > 0 runs it with SCHED_FIFO; `cpu_affinity` pins it to
    CPUs ("1", "2-3"); `namespace` puts every node of the process in that ROS namespace ("arm1")."""
    items = [f"{k}:={v}" for k, v in params.items()] if isinstance(params, dict) else list(params)
    args = [sys.executable, "-m", "legion_ros.composed", "--nodes", nodes]
    if not handoff:
        args.append("--no-handoff")
    if realtime_priority > 0:
        args += ["--realtime-priority", str(realtime_priority)]
    if cpu_affinity not in ("", "all"):
        args += ["--cpu-affinity", cpu_affinity]
    for it in items:
        args += ["-p", it]
    if namespace:
        args += ["--ros-args", "-r", f"__ns:=/{namespace.strip('/')}"]
    return args


def start_composed(
    nodes: str,
    params: dict[str, object] | list[str],
    log_path=None,
    handoff: bool = True,
    realtime_priority: int = 0,
    cpu_affinity: str = "all",
    namespace: str = "",
    large_frames: bool = False,
):
    """Start `legion_ros.composed` (arguments: `composed_argv`) in a child process with its own process
    group, its output to `log_path` (None: discarded); `large_frames`: with the camera frames' DDS profile
    (use_large_frames_profile). Returns the Popen. A whole sim graph with an observer
    node: legion_core/tools/graph.py."""
    import subprocess

    args = composed_argv(nodes, params, handoff, realtime_priority, cpu_affinity, namespace)
    out = open(log_path, "w") if log_path else subprocess.DEVNULL  # noqa: SIM115 - lives with the process
    env = use_large_frames_profile(child_env()) if large_frames else child_env()
    return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop_process_group(proc, timeout: float = 20.0) -> int:
    """SIGINT to the child's process group (clean node shutdown), SIGKILL if it does not exit in time. The
    exit code (None only if the group vanished under us without a reaped exit)."""
    import signal
    import subprocess

    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        except ProcessLookupError:  # it exited between the poll and the signal
            proc.wait(5)
    return proc.returncode
