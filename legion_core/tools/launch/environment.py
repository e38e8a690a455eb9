"""The environment every launched process gets (`source ros2_ws/install/setup.bash` by hand) and the
ament index lookups that `$(find-pkg-share)` and a node's `pkg`/`exec` need.

NETWORK RULE: every child runs with ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST (see `runtime_env`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from legion_core.tools.launch.errors import LaunchError

# legion_core/tools/launch/environment.py: parents[3] is the repository root.
REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_INSTALL_DIR = REPO_ROOT / "ros2_ws" / "install"
DISCOVERY_ENV = "ROS_AUTOMATIC_DISCOVERY_RANGE"
DISCOVERY_VALUE = "LOCALHOST"


def _venv_prefix() -> Path | None:
    if sys.prefix != sys.base_prefix:
        return Path(sys.prefix)
    venv = os.environ.get("VIRTUAL_ENV")
    return Path(venv) if venv else None


def _prepend_paths(env: dict[str, str], key: str, entries: list[Path | str]) -> None:
    """Prepend entries to a PATH-like variable, dropping duplicates but keeping the existing order."""
    new = [str(e) for e in entries]
    old = [p for p in env.get(key, "").split(os.pathsep) if p]
    merged: list[str] = []
    for p in new + old:
        if p not in merged:
            merged.append(p)
    if merged:
        env[key] = os.pathsep.join(merged)


def runtime_env(
    install_dir: Path | str | None = None, *, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment every launched process gets: `source ros2_ws/install/setup.bash` by hand.

    `install_dir` defaults to `<repo>/ros2_ws/install` when it exists (a colcon merge-install prefix: its
    site-packages go on PYTHONPATH, its lib on LD_LIBRARY_PATH). AMENT_PREFIX_PATH = install:venv followed
    by whatever was already there (a sourced /opt/ros/<distro> on a robot PC stays visible). The running
    venv's bin goes first on PATH so that `#!/usr/bin/env python3` scripts get the venv's rclpy.
    NETWORK RULE: ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST is forced and ROS_STATIC_PEERS dropped (static
    peers would reach other hosts even with the localhost range). ROS_DOMAIN_ID is inherited."""
    env = dict(os.environ if base is None else base)
    if install_dir is not None:
        install: Path | None = Path(install_dir).resolve()
        if not install.is_dir():
            raise LaunchError(
                f"install dir {install} does not exist: build the workspace with scripts/build_ws.sh "
                "or pass the right --install-dir"
            )
    else:
        install = DEFAULT_INSTALL_DIR if DEFAULT_INSTALL_DIR.is_dir() else None
    venv = _venv_prefix()
    prefixes: list[Path] = []
    if install is not None:
        prefixes.append(install)
        _prepend_paths(env, "PYTHONPATH", sorted(install.glob("lib/python3*/site-packages")))
        _prepend_paths(env, "LD_LIBRARY_PATH", [install / "lib"])
    if venv is not None:
        prefixes.append(venv)
        _prepend_paths(env, "PATH", [venv / "bin"])
    _prepend_paths(env, "AMENT_PREFIX_PATH", prefixes)
    env[DISCOVERY_ENV] = DISCOVERY_VALUE
    env.pop("ROS_STATIC_PEERS", None)
    # Python children write to pipes: without this their prints arrive in 4 KiB bursts (ros2 launch too
    # sets it).
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def ament_prefixes(env: Mapping[str, str]) -> list[Path]:
    return [Path(p) for p in env.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]


def find_package_prefix(package: str, env: Mapping[str, str]) -> Path:
    """The first AMENT_PREFIX_PATH entry whose ament index registers `package` (what ament_index does)."""
    prefixes = ament_prefixes(env)
    for prefix in prefixes:
        if (prefix / "share" / "ament_index" / "resource_index" / "packages" / package).is_file():
            return prefix
    shown = ", ".join(str(p) for p in prefixes) or "(AMENT_PREFIX_PATH is empty)"
    raise LaunchError(
        f"package '{package}' not found in the ament index of any AMENT_PREFIX_PATH entry [{shown}]: "
        "build the workspace (scripts/build_ws.sh) or pass --install-dir"
    )


def find_node_executable(package: str, executable: str, env: Mapping[str, str]) -> Path:
    """`<prefix>/lib/<package>/<executable>` in the package's own prefix, as ros2 launch looks it up."""
    libdir = find_package_prefix(package, env) / "lib" / package
    path = libdir / executable
    if not path.is_file():
        have = sorted(p.name for p in libdir.iterdir() if p.is_file()) if libdir.is_dir() else []
        raise LaunchError(
            f"executable '{executable}' of package '{package}' not found: no file {path} "
            f"(executables there: {', '.join(have) or 'none'}); check `exec`, or rebuild the workspace"
        )
    return path
