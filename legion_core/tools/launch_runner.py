"""`legion launch`: run ROS 2 YAML launch files (`*.launch.yaml`) without `launch`/`launch_ros`.

`ros2 launch` is not installable from any registry here, so we keep our launch files in ROS 2's YAML launch
format (a robot PC with a full ROS 2 install runs them with `ros2 launch`) and run the very same files with
this stdlib-only runner. It implements a strict subset of the format with ros2 launch's semantics
(checked against ros2/launch and ros2/launch_ros sources):

* top level: `launch:` list of one-key maps; every action may carry `if:` / `unless:` (a string that
  evaluates to true/false/1/0, case-insensitive);
* `arg` {name, default, description, choice: [{value}]}; `let` {name, value};
  `set_env` / `unset_env` {name[, value]}; `log` {message};
* `node` {pkg, exec, name, namespace, exec_name, args, ros_args, param: [{from} | {name, value[, type]}
  | {name, param: [...]}], remap: [{from, to}], env: [{name, value}], cwd, output, respawn,
  respawn_delay, respawn_max_retries, on_exit: shutdown, launch-prefix, sigterm_timeout, sigkill_timeout};
* `executable` {cmd, name, cwd, env, output, respawn, respawn_delay, respawn_max_retries, on_exit,
  launch-prefix, sigterm_timeout, sigkill_timeout} (ros2 launch has no `args` here: put them in `cmd`);
* `include` {file, arg: [{name, value}]}; `group` [children...] or {scoped, children};
  `push-ros-namespace` / `push_ros_namespace` {namespace} as a child action (it is not a group key);
* substitutions `$(var x)`, `$(env X [default])`, `$(find-pkg-share p)`, `$(find-pkg-prefix p)`,
  `$(find-exec name)`, `$(dirname)`, `$(filename)`, `$(eval 'python expr')`, `$(not x)`, `$(and x y)`,
  `$(or x y)`; arguments are space separated and may be quoted with '...' or "...".

Everything else (an unknown action, key or substitution, a wrongly typed value) is an error that names the
file, the entry and the key: ros2 launch rejects unknown keys too, so a file that runs here stays within
what both runners understand. Scoping follows ros2 launch: a `group` is scoped by default (launch
configurations, pushed namespaces and environment changes end with it); an `include` is NOT scoped (its
`arg`s and the included file's `let`s leak into the including file, exactly as in ros2 launch; wrap it in a
`group` to scope it).

Process lifecycle (`LaunchRunner`) also follows ros2 launch: every process starts at once, a process that
exits does not stop the others (the launch ends when none is left running), unless it carries
`on_exit: shutdown` (ROS 1's `required="true"`; the YAML key exists in ros2 launch from Jazzy on). On
SIGINT/SIGTERM every child's process group gets SIGINT, then SIGTERM after `sigint_timeout` (5 s), then
SIGKILL after `sigterm_timeout` (5 s); a second Ctrl-C skips to the next step. Respawning is bounded: a
process that keeps dying within `rapid_exit_s` of its start is given up after `max_rapid_respawns` tries
(ros2 launch would respawn it forever). `output` is ros2 launch's: screen, log (default: stdout and stderr
to `<log_dir>/<name>.log`, stderr also on screen), both, own_log, full. The exit code is 0 unless a process
failed (non-zero exit outside a shutdown, could not start, or was given up). A `kill -9` of the runner
leaves its children running, as with ros2 launch (they are in their own process groups).

Portability to Humble's ros2 launch: `on_exit`, `respawn_max_retries` and the `push_ros_namespace`
spelling are newer than Humble (use `push-ros-namespace`); write `respawn: 'true'` (quoted) and leave the
key out for false: Humble takes any non-empty string as true, so switch a respawning node with `if:`
rather than `respawn: $(var x)`. Relative `include`/`param from:` paths resolve against the launch file's
directory here but against the working directory in ros2 launch (a warning says so): use `$(dirname)/...`.

NETWORK RULE: every child runs with ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST (see `runtime_env`).
"""

from __future__ import annotations

import argparse
import builtins
import contextlib
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_INSTALL_DIR = REPO_ROOT / "ros2_ws" / "install"
DISCOVERY_ENV = "ROS_AUTOMATIC_DISCOVERY_RANGE"
DISCOVERY_VALUE = "LOCALHOST"
# ros2 launch's output aliases. Here the per-process file <log_dir>/<name>.log stands for both its launch
# log and its own_log: screen (both streams on screen), log (file + stderr on screen), both/full (file +
# screen), own_log (file only).
OUTPUT_MODES = ("screen", "log", "both", "own_log", "full")
SUPPORTED_SUBSTITUTIONS = (
    "var",
    "env",
    "find-pkg-share",
    "find-pkg-prefix",
    "find-exec",
    "dirname",
    "filename",
    "eval",
    "not",
    "and",
    "or",
)


class LaunchError(Exception):
    """A launch file outside the supported subset, an unresolvable substitution or a bad command line.
    The message names the file, the entry and the key, and says how to fix it."""

    def __init__(self, message: str, *, file: str | Path | None = None, entry: str = "", key: str = ""):
        self.file = str(file) if file is not None else None
        self.entry = entry
        self.key = key
        self.problem = message
        where = []
        if self.file:
            where.append(self.file)
        if entry:
            where.append(f"entry {entry}")
        if key:
            where.append(f"key '{key}'")
        super().__init__(": ".join([*where, message]) if where else message)


# ------------------------------------------------------------------------------------------ environment
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


# --------------------------------------------------------------------------------------- substitutions
@dataclass(frozen=True)
class _Sub:
    """`$(name arg ...)`; each argument is itself a text (a tuple of str and _Sub parts)."""

    name: str
    args: tuple[tuple[str | _Sub, ...], ...]


_Text = tuple[str | _Sub, ...]
_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


class _SubstParser:
    """Parses ros2 launch's substitution grammar (launch/frontend/grammar.lark): outside `$()` quotes are
    literal and `\\x` escapes x; inside, arguments are separated by spaces and may be '...' or "..."
    quoted; substitutions nest."""

    def __init__(self, text: str):
        self.s = text
        self.i = 0

    def error(self, msg: str) -> LaunchError:
        return LaunchError(f"{msg} in {self.s!r} (at character {self.i})")

    def template(self) -> _Text:
        parts: list[str | _Sub] = []
        buf: list[str] = []
        while self.i < len(self.s):
            self._consume(buf, parts)
        if buf:
            parts.append("".join(buf))
        return tuple(parts)

    def _consume(self, buf: list[str], parts: list[str | _Sub]) -> None:
        """One unit of text at the cursor: an escaped character, a nested substitution, or a literal."""
        c = self.s[self.i]
        if c == "\\" and self.i + 1 < len(self.s):
            buf.append(self.s[self.i + 1])
            self.i += 2
        elif self.s.startswith("$(", self.i):
            if buf:
                parts.append("".join(buf))
                buf.clear()
            parts.append(self.substitution())
        else:
            buf.append(c)
            self.i += 1

    def substitution(self) -> _Sub:
        self.i += 2  # "$("
        m = _IDENT.match(self.s, self.i)
        if not m:
            raise self.error("expected a substitution name after '$('")
        name = m.group(0)
        self.i = m.end()
        args: list[_Text] = []
        while True:
            if self.i >= len(self.s):
                raise self.error(f"unterminated '$({name}'")
            c = self.s[self.i]
            if c == ")":
                self.i += 1
                return _Sub(name, tuple(args))
            if c != " ":
                raise self.error(f"expected ' ' or ')' after '$({name}'")
            while self.i < len(self.s) and self.s[self.i] == " ":
                self.i += 1
            if self.i < len(self.s) and self.s[self.i] != ")":
                args.append(self.value())

    def value(self) -> _Text:
        parts: list[str | _Sub] = []
        buf: list[str] = []
        quote = self.s[self.i] if self.s[self.i] in "'\"" else None
        if quote:
            self.i += 1
        while True:
            if self.i >= len(self.s):
                raise self.error("unterminated quote" if quote else "unterminated substitution")
            c = self.s[self.i]
            if quote and c == quote:
                self.i += 1
                break
            if not quote and c in " )":
                break
            if not quote and c == "(":
                raise self.error("unescaped '(' in a substitution argument (write \\( or quote it)")
            self._consume(buf, parts)
        if buf:
            parts.append("".join(buf))
        return tuple(parts) if parts else ("",)


def parse_substitutions(text: str) -> _Text:
    """Split a launch-file string into literal text and `$(...)` substitutions (raises LaunchError)."""
    return _SubstParser(text).template() if text else ("",)


def _split_cmdline(parts: _Text) -> list[_Text]:
    """ros2 launch's `_parse_cmdline`: literal text is shlex-split into words, a substitution's result is
    never split (so `$(var args)` stays one argument), and text glued to a substitution joins its word."""
    words: list[list[str | _Sub]] = []
    cur: list[str | _Sub] = []
    for p in parts:
        if isinstance(p, _Sub):
            cur.append(p)
            continue
        try:
            tokens = shlex.split(p)
        except ValueError as e:
            raise LaunchError(f"cannot split {p!r} into arguments ({e})") from e
        if not tokens:
            if cur:
                words.append(cur)
                cur = []
            continue
        if p[0].isspace() and cur:
            words.append(cur)
            cur = []
        cur.append(tokens[0])
        if len(tokens) > 1:
            words.append(cur)
            words.extend([t] for t in tokens[1:-1])
            cur = [tokens[-1]]
        if p[-1].isspace():
            words.append(cur)
            cur = []
    if cur:
        words.append(cur)
    return [tuple(w) for w in words]


def _condition_value(text: str) -> bool:
    """ros2 launch's evaluate_condition_expression: true/1 and false/0, case-insensitive."""
    v = text.strip().lower()
    if v in ("true", "1"):
        return True
    if v in ("false", "0"):
        return False
    raise LaunchError(f"expected true, false, 1 or 0 (case-insensitive), got {text!r}")


# $(eval) sees `math` (as in ros2 launch) and a few harmless builtins; launch files are trusted input,
# this only keeps typos from reaching open() or __import__.
_EVAL_BUILTINS = {
    n: getattr(builtins, n)
    for n in ("abs", "all", "any", "bool", "float", "int", "len", "max", "min", "round", "str", "sum")
}


# ------------------------------------------------------------------------------------------ parse tree
@dataclass
class _Cond:
    kind: str  # "if" | "unless"
    text: _Text


@dataclass
class _Action:
    kind: str
    where: str  # "launch[3]/group/children[1]/node" for error messages
    label: str  # a short human hint: the node's exec or the arg's name
    cond: _Cond | None


@dataclass
class _ArgAction(_Action):
    name: str = ""
    default: _Text | None = None
    description: str = ""
    choices: list[str] | None = None
    default_raw: str | None = None


@dataclass
class _SetAction(_Action):  # let, set_env, unset_env
    name: _Text = ()
    value: _Text | None = None


@dataclass
class _PushNsAction(_Action):
    namespace: _Text = ()


@dataclass
class _LogAction(_Action):
    message: _Text = ()


@dataclass
class _GroupAction(_Action):
    scoped: bool = True
    actions: list[_Action] = field(default_factory=list)


@dataclass
class _IncludeAction(_Action):
    file: _Text = ()
    args: list[tuple[_Text, _Text]] = field(default_factory=list)


@dataclass
class _ParamSpec:
    """One `param` entry: a file (`from`) or a name/value (nested `param` lists flatten to a.b.c)."""

    from_file: _Text | None = None
    name: tuple[_Text, ...] = ()
    value: Any = None
    type: str | None = None
    key_where: str = ""


@dataclass
class _ProcessAction(_Action):
    # node: pkg/exec/args; executable: cmd
    package: _Text | None = None
    executable: _Text | None = None
    cmd: list[_Text] = field(default_factory=list)
    args: list[_Text] = field(default_factory=list)
    ros_args: list[_Text] = field(default_factory=list)
    name: _Text | None = None
    namespace: _Text | None = None
    exec_name: _Text | None = None
    params: list[_ParamSpec] = field(default_factory=list)
    remaps: list[tuple[_Text, _Text]] = field(default_factory=list)
    env: list[tuple[_Text, _Text]] = field(default_factory=list)
    cwd: _Text | None = None
    output: _Text | None = None
    respawn: _Text | None = None
    respawn_delay: float = 0.0
    respawn_max_retries: int = -1
    required: bool = False
    launch_prefix: _Text | None = None
    sigterm_timeout: float | None = None
    sigkill_timeout: float | None = None


_COMMON_PROCESS_KEYS = (
    "name",
    "cwd",
    "env",
    "output",
    "respawn",
    "respawn_delay",
    "respawn_max_retries",
    "on_exit",
    "launch-prefix",
    "sigterm_timeout",
    "sigkill_timeout",
)
_ACTION_KEYS: dict[str, tuple[str, ...]] = {
    "arg": ("name", "default", "description", "choice"),
    "let": ("name", "value"),
    "set_env": ("name", "value"),
    "unset_env": ("name",),
    "log": ("message",),
    "push-ros-namespace": ("namespace",),
    "push_ros_namespace": ("namespace",),
    "include": ("file", "arg"),
    "group": ("scoped", "children"),
    "node": (
        "pkg",
        "exec",
        "exec_name",
        "namespace",
        "args",
        "ros_args",
        "param",
        "remap",
        *_COMMON_PROCESS_KEYS,
    ),
    "executable": ("cmd", *_COMMON_PROCESS_KEYS),
}
# Keys that exist in ros2 launch but that this runner deliberately does not implement: say so, and how.
_UNSUPPORTED_KEY_HINTS = {
    ("executable", "args"): "ros2 launch's `executable` has no `args`: append the arguments to `cmd`",
    ("group", "forwarding"): "group `forwarding` is not supported (and not in Humble): leave it out",
    ("group", "keep"): "group `keep` is not supported (and not in Humble): use `let` inside the group",
    ("group", "push-ros-namespace"): (
        "`push-ros-namespace` is an action, not a group key: make it the first child, "
        "`children: [{push-ros-namespace: {namespace: ns}}, ...]`"
    ),
    ("group", "push_ros_namespace"): (
        "`push_ros_namespace` is an action, not a group key: make it the first child, "
        "`children: [{push-ros-namespace: {namespace: ns}}, ...]`"
    ),
    ("node", "shell"): "`shell` is not supported: run a script instead",
    ("executable", "shell"): "`shell: true` is not supported: run `bash -c '...'` as the cmd instead",
    ("node", "emulate_tty"): "`emulate_tty` is not supported: leave it out",
    ("executable", "emulate_tty"): "`emulate_tty` is not supported: leave it out",
    ("node", "node-name"): "`node-name` is deprecated in ros2 launch: use `name`",
}
_PARAM_TYPES = {
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "list_of_str": str,
    "list_of_int": int,
    "list_of_float": float,
    "list_of_bool": bool,
}


class _Entity:
    """One YAML map under its action type, with ros2 launch_yaml's checks: typed attribute access and
    'every key must be understood'."""

    def __init__(self, file: Path, where: str, kind: str, body: Any):
        self.file = file
        self.where = where
        self.kind = kind
        self.body = body

    def fail(self, key: str, msg: str) -> LaunchError:
        return LaunchError(msg, file=self.file, entry=self.where, key=key)

    def check_keys(self, allowed: tuple[str, ...]) -> None:
        if not isinstance(self.body, dict):
            raise LaunchError(
                f"`{self.kind}` must be a map of keys ({', '.join(allowed)}), got {type(self.body).__name__}",
                file=self.file,
                entry=self.where,
            )
        for key in self.body:
            if key in ("if", "unless") or key in allowed:
                continue
            hint = _UNSUPPORTED_KEY_HINTS.get((self.kind, key))
            raise self.fail(
                str(key),
                hint
                or f"unknown key for `{self.kind}` (allowed: {', '.join(allowed)}, if, unless); ros2 launch "
                "rejects unknown keys too",
            )

    def has(self, key: str) -> bool:
        return key in self.body

    def raw(self, key: str, default: Any = None) -> Any:
        return self.body.get(key, default)

    def string(self, key: str, *, required: bool = False) -> str | None:
        if key not in self.body:
            if required:
                raise self.fail(key, f"`{self.kind}` needs `{key}`")
            return None
        v = self.body[key]
        if not isinstance(v, str):
            # ros2 launch_yaml type-checks string attributes and does not coerce: `default: 5` fails there.
            raise self.fail(
                key,
                f"expected a string, got {type(v).__name__} {v!r}: quote it ({key}: '{v}') - "
                "ros2 launch rejects unquoted numbers/booleans here",
            )
        return v

    def text(self, key: str, *, required: bool = False) -> _Text | None:
        s = self.string(key, required=required)
        if s is None:
            return None
        try:
            return parse_substitutions(s)
        except LaunchError as e:
            raise self.fail(key, e.problem) from None

    def number(self, key: str, kind: type) -> Any:
        if key not in self.body:
            return None
        v = self.body[key]
        ok = isinstance(v, float) if kind is float else isinstance(v, int) and not isinstance(v, bool)
        if not ok:
            hint = (
                f" (write {v}.0)" if kind is float and isinstance(v, int) and not isinstance(v, bool) else ""
            )
            raise self.fail(key, f"expected a YAML {kind.__name__}, got {type(v).__name__} {v!r}{hint}")
        if kind is float and v < 0.0:
            raise self.fail(key, f"expected a non-negative value, got {v}")
        return v

    def entity_list(self, key: str) -> list[_Entity]:
        if key not in self.body:
            return []
        v = self.body[key]
        if not isinstance(v, list) or not v or not all(isinstance(x, dict) for x in v):
            raise self.fail(key, f"expected a non-empty list of maps, e.g. `{key}: [{{name: a, value: b}}]`")
        return [_Entity(self.file, f"{self.where}/{key}[{i}]", key, x) for i, x in enumerate(v)]


def _load_yaml(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except FileNotFoundError:
        raise LaunchError(f"launch file not found: {path}") from None
    except yaml.YAMLError as e:
        raise LaunchError(f"not valid YAML: {e}", file=path) from None


def _parse_file(path: Path) -> list[_Action]:
    doc = _load_yaml(path)
    if not isinstance(doc, dict) or list(doc) != ["launch"] or not isinstance(doc["launch"], list):
        raise LaunchError(
            "a YAML launch file is a map with the single key `launch:` holding a list of actions "
            "(`launch: [{arg: {...}}, {node: {...}}]`)",
            file=path,
        )
    return _parse_actions(path, doc["launch"], "launch")


def _parse_actions(path: Path, items: list, where: str) -> list[_Action]:
    actions = []
    for i, item in enumerate(items):
        w = f"{where}[{i}]"
        if not isinstance(item, dict) or len(item) != 1:
            raise LaunchError(
                "each action is a map with exactly one key, its type (e.g. `- node: {pkg: ..., exec: ...}`)",
                file=path,
                entry=w,
            )
        kind, body = next(iter(item.items()))
        if kind not in _ACTION_KEYS:
            raise LaunchError(
                f"unsupported action `{kind}` (supported: {', '.join(_ACTION_KEYS)})", file=path, entry=w
            )
        actions.append(_parse_action(_Entity(path, f"{w}/{kind}", str(kind), body)))
    return actions


def _parse_condition(e: _Entity) -> _Cond | None:
    conds = [k for k in ("if", "unless") if isinstance(e.body, dict) and k in e.body]
    if len(conds) > 1:
        raise e.fail("unless", "`if` and `unless` are mutually exclusive")
    if not conds:
        return None
    return _Cond(conds[0], e.text(conds[0]) or ("",))


def _parse_action(e: _Entity) -> _Action:
    kind = e.kind
    if kind == "group" and isinstance(e.body, list):
        # `- group: [child, ...]`: the list form, with no attributes.
        return _GroupAction(kind, e.where, "", None, True, _parse_actions(e.file, e.body, e.where))
    e.check_keys(_ACTION_KEYS[kind])
    cond = _parse_condition(e)
    if kind == "arg":
        name = e.string("name", required=True)
        choices = None
        if e.has("choice"):
            choices = []
            for c in e.entity_list("choice"):
                c.check_keys(("value",))
                choices.append(c.string("value", required=True))
        default = e.text("default")
        description = e.string("description") or ""
        return _ArgAction(kind, e.where, name, cond, name, default, description, choices, e.string("default"))
    if kind in ("let", "set_env", "unset_env"):
        name = e.text("name", required=True)
        value = e.text("value", required=kind != "unset_env")
        return _SetAction(kind, e.where, e.raw("name"), cond, name, value)
    if kind in ("push-ros-namespace", "push_ros_namespace"):
        return _PushNsAction(kind, e.where, "", cond, e.text("namespace", required=True))
    if kind == "log":
        return _LogAction(kind, e.where, "", cond, e.text("message", required=True))
    if kind == "group":
        scoped = e.raw("scoped", True)
        if not isinstance(scoped, bool):
            raise e.fail("scoped", f"expected a YAML boolean (true/false), got {scoped!r}")
        children = e.raw("children")
        if not isinstance(children, list):
            raise e.fail("children", "a group with keys needs `children:`, a list of actions")
        return _GroupAction(
            kind, e.where, "", cond, scoped, _parse_actions(e.file, children, e.where + "/children")
        )
    if kind == "include":
        inc = _IncludeAction(kind, e.where, e.raw("file", ""), cond, e.text("file", required=True))
        for a in e.entity_list("arg"):
            a.check_keys(("name", "value"))
            inc.args.append((a.text("name", required=True), a.text("value", required=True)))
        return inc
    return _parse_process(e, cond)


def _parse_cmdline_key(e: _Entity, key: str, *, required: bool = False) -> list[_Text]:
    parts = e.text(key, required=required)
    if parts is None:
        return []
    try:
        return _split_cmdline(parts)
    except LaunchError as err:
        raise e.fail(key, err.problem) from None


def _parse_process(e: _Entity, cond: _Cond | None) -> _ProcessAction:
    p = _ProcessAction(e.kind, e.where, "", cond)
    if e.kind == "node":
        p.package = e.text("pkg")
        p.executable = e.text("exec", required=True)
        p.label = f"{e.raw('pkg', '')}/{e.raw('exec')}"
        p.args = _parse_cmdline_key(e, "args")
        p.ros_args = _parse_cmdline_key(e, "ros_args")
        p.namespace = e.text("namespace")
        p.exec_name = e.text("exec_name")
        for r in e.entity_list("remap"):
            r.check_keys(("from", "to"))
            p.remaps.append((r.text("from", required=True), r.text("to", required=True)))
        for i, prm in enumerate(e.entity_list("param")):
            p.params.extend(_parse_param(prm, (), f"param[{i}]"))
    else:
        p.cmd = _parse_cmdline_key(e, "cmd", required=True)
        if not p.cmd:
            raise e.fail("cmd", "`cmd` is empty")
        p.label = str(e.raw("cmd"))
    p.name = e.text("name")
    p.cwd = e.text("cwd")
    p.output = e.text("output")
    p.launch_prefix = e.text("launch-prefix")
    for env in e.entity_list("env"):
        env.check_keys(("name", "value"))
        p.env.append((env.text("name", required=True), env.text("value", required=True)))
    if e.has("respawn"):
        # Newer ros2 launch reads `respawn` as a substitution string and rejects a YAML boolean; Humble
        # accepts the string too (but treats any non-empty one, even 'false', as true: see the docstring).
        if not isinstance(e.raw("respawn"), str):
            raise e.fail("respawn", f"write respawn: '{str(e.raw('respawn')).lower()}' (a quoted string)")
        p.respawn = e.text("respawn") or ("",)
    p.respawn_delay = e.number("respawn_delay", float) or 0.0
    retries = e.number("respawn_max_retries", int)
    p.respawn_max_retries = -1 if retries is None else retries
    on_exit = e.string("on_exit")
    if on_exit is not None:
        if on_exit != "shutdown":
            raise e.fail("on_exit", f"only `on_exit: shutdown` exists in ros2 launch, got {on_exit!r}")
        p.required = True
    p.sigterm_timeout = e.number("sigterm_timeout", float)
    p.sigkill_timeout = e.number("sigkill_timeout", float)
    return p


def _parse_param(e: _Entity, prefix: tuple[_Text, ...], where: str) -> list[_ParamSpec]:
    e.check_keys(("from", "name", "value", "type", "param"))
    if e.has("from"):
        if any(e.has(k) for k in ("name", "value", "type", "param")):
            raise e.fail("from", "a `from:` (parameter file) entry takes no name/value/type/param")
        if prefix:
            raise e.fail("from", "a parameter file (`from:`) cannot be nested under a named `param`")
        return [_ParamSpec(from_file=e.text("from"), key_where=e.where)]
    name = e.text("name", required=True)
    if e.has("param"):
        if e.has("value") or e.has("type"):
            raise e.fail("param", "nested `param:` and `value`/`type` are mutually exclusive")
        out: list[_ParamSpec] = []
        for i, sub in enumerate(e.entity_list("param")):
            out.extend(_parse_param(sub, (*prefix, name), f"{where}/param[{i}]"))
        return out
    if not e.has("value"):
        raise e.fail("value", "a named `param` needs `value:` (or a nested `param:` list)")
    ptype = e.string("type")
    if ptype is not None and ptype not in _PARAM_TYPES:
        raise e.fail("type", f"unknown parameter type {ptype!r} (supported: {', '.join(_PARAM_TYPES)})")
    value = e.raw("value")
    if isinstance(value, list):
        if not value:
            raise e.fail("value", "empty list: rclpy cannot infer its type; leave the parameter out")
        if not all(isinstance(v, (str, int, float, bool)) for v in value):
            raise e.fail("value", "a list parameter holds scalars only (str, int, float, bool)")
        value = [parse_substitutions(v) if isinstance(v, str) else v for v in value]
    elif isinstance(value, str):
        value = parse_substitutions(value)
    elif not isinstance(value, (int, float, bool)):
        raise e.fail(
            "value", f"a parameter value is a scalar or a list of scalars, got {type(value).__name__}"
        )
    return [_ParamSpec(name=(*prefix, name), value=value, type=ptype, key_where=e.where)]


# ------------------------------------------------------------------------------------ the description
@dataclass
class LaunchArgument:
    name: str
    default: str | None  # as written (unsubstituted); None: required
    description: str
    file: str
    value: str | None = None  # resolved value when the declaration was reached
    choices: list[str] | None = None
    source: str = "default"  # default | command line | set before (an include's arg, a let)


@dataclass
class ProcessSpec:
    """One process to run, fully resolved: what `ros2 launch` would exec for this node/executable."""

    name: str  # unique label: the `[name]` output prefix and the log file name
    argv: list[str]
    env: dict[str, str]  # the complete environment
    output: str = "log"  # screen | log | both | own_log | full (ros2 launch's default is log)
    respawn: bool = False
    respawn_delay: float = 0.0
    respawn_max_retries: int = -1  # negative: no limit from the file (the runner's rapid-crash guard holds)
    required: bool = False  # on_exit: shutdown: its exit ends the launch
    cwd: str | None = None
    sigterm_timeout: float | None = None  # per-process override of LaunchRunner.sigint_timeout
    sigkill_timeout: float | None = None  # per-process override of LaunchRunner.sigterm_timeout
    kind: str = "node"  # node | executable
    package: str | None = None
    executable: str = ""
    node_name: str | None = None
    namespace: str | None = None
    params: list[str] = field(default_factory=list)  # "--params-file <path>" / "name:=value", in order
    remaps: list[tuple[str, str]] = field(default_factory=list)
    env_overrides: dict[str, str | None] = field(default_factory=dict)  # set by the launch file (None: unset)
    source: str = ""  # file and entry, for messages

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "package": self.package,
            "executable": self.executable,
            "node_name": self.node_name,
            "namespace": self.namespace,
            "argv": list(self.argv),
            "cwd": self.cwd,
            "output": self.output,
            "respawn": self.respawn,
            "respawn_delay": self.respawn_delay,
            "respawn_max_retries": self.respawn_max_retries,
            "required": self.required,
            "params": list(self.params),
            "remaps": [list(r) for r in self.remaps],
            "env_overrides": dict(self.env_overrides),
            "source": self.source,
        }


@dataclass
class LaunchDescription:
    file: Path
    processes: list[ProcessSpec]
    arguments: dict[str, LaunchArgument]  # every `arg` declared in the file and what it includes
    launch_args: dict[str, str]  # given on the command line
    base_env: dict[str, str]
    warnings: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)  # `log` actions, in order

    def process(self, name: str) -> ProcessSpec:
        for p in self.processes:
            if p.name == name:
                return p
        raise KeyError(f"no process named {name!r} (have: {', '.join(p.name for p in self.processes)})")

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": str(self.file),
            "arguments": {
                k: {
                    "value": a.value,
                    "source": a.source,
                    "default": a.default,
                    "description": a.description,
                    "file": a.file,
                }
                for k, a in self.arguments.items()
            },
            "processes": [p.to_dict() for p in self.processes],
            "warnings": list(self.warnings),
            "messages": list(self.messages),
        }

    def describe(self, reference_env: Mapping[str, str] | None = None) -> str:
        """Human-readable resolved launch: arguments, then each process's argv, params, remaps and its
        environment as a diff against `reference_env` (default: this shell's environment)."""
        ref = dict(os.environ if reference_env is None else reference_env)
        lines = [f"launch file: {self.file}"]
        if self.arguments:
            lines.append("arguments:")
            width = max(len(k) for k in self.arguments)
            for k, a in sorted(self.arguments.items()):
                src = a.source
                desc = f"  # {a.description}" if a.description else ""
                lines.append(f"  {k:<{width}} = {a.value!r} ({src}){desc}")
        for m in self.messages:
            lines.append(f"log: {m}")
        for w in self.warnings:
            lines.append(f"warning: {w}")
        lines.append(f"processes ({len(self.processes)}):")
        for p in self.processes:
            what = f"node {p.package or ''}/{p.executable}" if p.kind == "node" else "executable"
            flags = [f"output={p.output}"]
            if p.respawn:
                retries = "" if p.respawn_max_retries < 0 else f", max {p.respawn_max_retries} retries"
                flags.append(f"respawn (delay {p.respawn_delay:g} s{retries})")
            if p.required:
                flags.append("on_exit=shutdown")
            lines.append(f"  [{p.name}] {what}  {' '.join(flags)}")
            if p.node_name or p.namespace:
                lines.append(f"    node: {(p.namespace or '').rstrip('/')}/{p.node_name or '<default name>'}")
            lines.append(f"    argv: {shlex.join(p.argv)}")
            if p.cwd:
                lines.append(f"    cwd: {p.cwd}")
            for prm in p.params:
                lines.append(f"    param: {prm}")
            for a, b in p.remaps:
                lines.append(f"    remap: {a} -> {b}")
            for line in _env_diff(ref, p.env):
                lines.append(f"    env: {line}")
            lines.append(f"    from: {p.source}")
        return "\n".join(lines)


def _env_diff(ref: Mapping[str, str], env: Mapping[str, str]) -> list[str]:
    out = []
    for k in sorted(set(ref) | set(env)):
        old, new = ref.get(k), env.get(k)
        if old == new:
            continue
        if new is None:
            out.append(f"-{k}")
        elif old is None:
            out.append(f"+{k}={new}")
        elif k.endswith("PATH") and old and set(old.split(os.pathsep)) <= set(new.split(os.pathsep)):
            added = [e for e in new.split(os.pathsep) if e not in old.split(os.pathsep)]
            front = new.split(os.pathsep)[: max(1, len(added))]
            shown = os.pathsep.join(added) if added else os.pathsep.join(front) + " (moved to the front)"
            out.append(f"~{k}: +{shown}")
        else:
            out.append(f"~{k}={new}")
    return out


# ---------------------------------------------------------------------------------------- evaluation
@dataclass
class _FileCtx:
    path: Path
    include_args: set[str] | None  # names the include passed (None for the top-level file)
    conditional: bool = False  # inside an if/unless within this file (ros2 skips the include arg check)


@dataclass
class _Ctx:
    configs: dict[str, str]  # launch configurations; 'ros_namespace' holds the pushed namespace
    env: dict[str, str]
    env_overrides: dict[str, str | None]


_NODE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAMESPACE = re.compile(r"^/$|^(/[A-Za-z_][A-Za-z0-9_]*)+$")


def _prefix_namespace(base: str | None, ns: str | None) -> str | None:
    """launch_ros.utilities.prefix_namespace + make_namespace_absolute."""
    if base and ns is not None and not ns.startswith("/"):
        ns = base.rstrip("/") + "/" + ns if ns else base
    elif ns is None:
        ns = base
    if ns is not None and not ns.startswith("/"):
        ns = "/" + ns
    if ns is not None and len(ns) > 1:
        ns = ns.rstrip("/")
    return ns


def _format_param_value(v: Any) -> str:
    """A `-p name:=value` value that rcl's YAML parser reads back with the intended type."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v):
            return ".nan"
        if math.isinf(v):
            return ".inf" if v > 0 else "-.inf"
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(_format_param_value(x) for x in v) + "]"
    s = str(v)
    try:
        plain = s and yaml.safe_load(s) == s and "," not in s and "[" not in s and "]" not in s
    except yaml.YAMLError:
        plain = False
    return s if plain else yaml.safe_dump(s, default_style='"', width=1 << 30).strip()


class _Evaluator:
    def __init__(
        self, top: Path, launch_args: dict[str, str], base_env: dict[str, str], check_executables: bool
    ):
        self.top = top
        self.launch_args = launch_args
        self.base_env = base_env
        self.check_executables = check_executables
        self.processes: list[ProcessSpec] = []
        self.arguments: dict[str, LaunchArgument] = {}
        self.declared: set[str] = set()
        self.warnings: list[str] = []
        self.messages: list[str] = []
        self.include_stack: list[Path] = []

    # -- substitutions
    def subst(self, text: _Text, ctx: _Ctx, fctx: _FileCtx, where: str, key: str) -> str:
        try:
            return "".join(p if isinstance(p, str) else self._sub(p, ctx, fctx, where, key) for p in text)
        except LaunchError as e:
            if e.file:
                raise
            raise LaunchError(e.problem, file=fctx.path, entry=where, key=key) from None

    def _sub(self, s: _Sub, ctx: _Ctx, fctx: _FileCtx, where: str, key: str) -> str:
        args = [self.subst(a, ctx, fctx, where, key) for a in s.args]

        def nargs(lo: int, hi: int) -> None:
            if not lo <= len(args) <= hi:
                want = str(lo) if lo == hi else f"{lo} to {hi}"
                raise LaunchError(f"$({s.name}) takes {want} argument(s), got {len(args)}: {args}")

        if s.name == "var":
            nargs(1, 1)
            if args[0] not in ctx.configs:
                known = ", ".join(sorted(k for k in ctx.configs if k != "ros_namespace")) or "none"
                raise LaunchError(
                    f"$(var {args[0]}): launch configuration '{args[0]}' is not defined here (defined: {known}); "
                    f"declare it first with `- arg: {{name: {args[0]}, default: '...'}}` or `- let: ...`"
                )
            return ctx.configs[args[0]]
        if s.name == "env":
            nargs(1, 2)
            if args[0] in ctx.env:
                return ctx.env[args[0]]
            if len(args) == 2:
                return args[1]
            raise LaunchError(
                f"$(env {args[0]}): environment variable {args[0]} is not set; set it, or give a default: "
                f"$(env {args[0]} 'default')"
            )
        if s.name in ("find-pkg-share", "find-pkg-prefix"):
            nargs(1, 1)
            prefix = find_package_prefix(args[0], ctx.env)
            return str(prefix / "share" / args[0]) if s.name == "find-pkg-share" else str(prefix)
        if s.name == "find-exec":
            nargs(1, 1)
            found = shutil.which(args[0], path=ctx.env.get("PATH", ""))
            if not found:
                raise LaunchError(f"$(find-exec {args[0]}): no executable {args[0]!r} on the launch PATH")
            return found
        if s.name == "dirname":
            nargs(0, 0)
            return str(fctx.path.parent)
        if s.name == "filename":
            nargs(0, 0)
            return str(fctx.path)
        if s.name == "eval":
            nargs(1, 1)
            try:
                result = eval(args[0], {"__builtins__": _EVAL_BUILTINS, "math": math}, {})
            except Exception as e:
                raise LaunchError(f"$(eval {args[0]!r}) failed: {type(e).__name__}: {e}") from None
            return str(result)
        if s.name == "not":
            nargs(1, 1)
            return "false" if _condition_value(args[0]) else "true"
        if s.name in ("and", "or"):
            nargs(2, 2)
            a, b = _condition_value(args[0]), _condition_value(args[1])
            return str(a and b if s.name == "and" else a or b).lower()
        raise LaunchError(
            f"unsupported substitution $({s.name} ...) (supported: {', '.join(SUPPORTED_SUBSTITUTIONS)})"
        )

    def condition(self, a: _Action, ctx: _Ctx, fctx: _FileCtx) -> bool:
        if a.cond is None:
            return True
        text = self.subst(a.cond.text, ctx, fctx, a.where, a.cond.kind)
        try:
            value = _condition_value(text)
        except LaunchError as e:
            raise LaunchError(e.problem, file=fctx.path, entry=a.where, key=a.cond.kind) from None
        return value if a.cond.kind == "if" else not value

    # -- actions
    def run_file(self, path: Path, ctx: _Ctx, include_args: set[str] | None) -> None:
        path = path.resolve()
        if path in self.include_stack:
            chain = " -> ".join(str(p) for p in [*self.include_stack, path])
            raise LaunchError(f"include cycle: {chain}")
        self.include_stack.append(path)
        try:
            self.run_actions(_parse_file(path), ctx, _FileCtx(path, include_args))
        finally:
            self.include_stack.pop()

    def run_actions(self, actions: list[_Action], ctx: _Ctx, fctx: _FileCtx) -> None:
        for a in actions:
            self._declare_names(a)
            if not self.condition(a, ctx, fctx):
                self._declare_skipped(a, ctx, fctx)
                continue
            inner = _FileCtx(fctx.path, fctx.include_args, fctx.conditional or a.cond is not None)
            getattr(self, "_do_" + a.kind.replace("-", "_"))(a, ctx, inner)

    def _declare_names(self, a: _Action) -> None:
        if isinstance(a, _ArgAction):
            self.declared.add(a.name)

    def _declare_skipped(self, a: _Action, ctx: _Ctx, fctx: _FileCtx) -> None:
        """Arguments behind a false condition still count as declared (ros2 launch's --show-args lists
        them), so `name:=value` for them is not an unknown-argument error."""
        if isinstance(a, _GroupAction):
            for child in a.actions:
                self._declare_names(child)
                self._declare_skipped(child, ctx, fctx)
        elif isinstance(a, _IncludeAction):
            try:
                path = self._include_path(a, ctx, fctx, warn=False)
                if path not in self.include_stack:
                    self.include_stack.append(path)
                    try:
                        for child in _parse_file(path):
                            self._declare_names(child)
                            self._declare_skipped(child, ctx, _FileCtx(path, None))
                    finally:
                        self.include_stack.pop()
            except LaunchError:
                pass  # best effort: the include is not taken, so its file may legitimately not resolve

    def _do_arg(self, a: _ArgAction, ctx: _Ctx, fctx: _FileCtx) -> None:
        if (
            fctx.include_args is not None
            and a.default is None
            and not fctx.conditional
            and a.name not in fctx.include_args
        ):
            # ros2 launch's IncludeLaunchDescription checks this before running the included file.
            given = ", ".join(sorted(fctx.include_args)) or "none"
            raise LaunchError(
                f"the included file requires argument '{a.name}' (no default; given: {given}): add "
                f"`- {{name: {a.name}, value: '...'}}` to the including file's `include: arg:` list",
                file=fctx.path,
                entry=a.where,
                key="name",
            )
        source = "default"
        if a.name in ctx.configs:
            given = self.launch_args.get(a.name)
            source = "command line" if given is not None and given == ctx.configs[a.name] else "set before"
        else:
            if a.default is None:
                raise LaunchError(
                    f"argument '{a.name}' is required (it has no default): pass it as `{a.name}:=<value>`"
                    + (f" ({a.description})" if a.description else ""),
                    file=fctx.path,
                    entry=a.where,
                    key="name",
                )
            ctx.configs[a.name] = self.subst(a.default, ctx, fctx, a.where, "default")
        value = ctx.configs[a.name]
        if a.choices is not None and value not in a.choices:
            raise LaunchError(
                f"argument '{a.name}' is {value!r}, not one of {a.choices}: pass `{a.name}:=<choice>`",
                file=fctx.path,
                entry=a.where,
                key="choice",
            )
        if a.name not in self.arguments:
            self.arguments[a.name] = LaunchArgument(
                a.name, a.default_raw, a.description, str(fctx.path), value, a.choices, source
            )

    def _do_let(self, a: _SetAction, ctx: _Ctx, fctx: _FileCtx) -> None:
        assert a.value is not None
        ctx.configs[self.subst(a.name, ctx, fctx, a.where, "name")] = self.subst(
            a.value, ctx, fctx, a.where, "value"
        )

    def _set_env(self, ctx: _Ctx, name: str, value: str | None, fctx: _FileCtx, where: str) -> None:
        if name == DISCOVERY_ENV and value != DISCOVERY_VALUE:
            raise LaunchError(
                f"NETWORK RULE: {DISCOVERY_ENV} is forced to {DISCOVERY_VALUE} for every process; remove this",
                file=fctx.path,
                entry=where,
                key="name",
            )
        if name == "ROS_STATIC_PEERS" and value:
            raise LaunchError(
                "NETWORK RULE: ROS_STATIC_PEERS would reach other hosts; remove this",
                file=fctx.path,
                entry=where,
                key="name",
            )
        if value is None:
            ctx.env.pop(name, None)
        else:
            ctx.env[name] = value
        ctx.env_overrides[name] = value

    def _do_set_env(self, a: _SetAction, ctx: _Ctx, fctx: _FileCtx) -> None:
        assert a.value is not None
        name = self.subst(a.name, ctx, fctx, a.where, "name")
        self._set_env(ctx, name, self.subst(a.value, ctx, fctx, a.where, "value"), fctx, a.where)

    def _do_unset_env(self, a: _SetAction, ctx: _Ctx, fctx: _FileCtx) -> None:
        self._set_env(ctx, self.subst(a.name, ctx, fctx, a.where, "name"), None, fctx, a.where)

    def _do_log(self, a: _LogAction, ctx: _Ctx, fctx: _FileCtx) -> None:
        self.messages.append(self.subst(a.message, ctx, fctx, a.where, "message"))

    def _do_push_ros_namespace(self, a: _PushNsAction, ctx: _Ctx, fctx: _FileCtx) -> None:
        pushed = self.subst(a.namespace, ctx, fctx, a.where, "namespace")
        ns = _prefix_namespace(ctx.configs.get("ros_namespace"), pushed)
        if ns is not None and not _NAMESPACE.match(ns):
            raise LaunchError(
                f"invalid ROS namespace {ns!r} (tokens: letters, digits, _; not starting with a digit)",
                file=fctx.path,
                entry=a.where,
                key="namespace",
            )
        if ns is not None:
            ctx.configs["ros_namespace"] = ns

    def _do_group(self, a: _GroupAction, ctx: _Ctx, fctx: _FileCtx) -> None:
        if a.scoped:
            # Push/pop of launch configurations (incl. the ROS namespace) and of the environment.
            inner = _Ctx(dict(ctx.configs), dict(ctx.env), dict(ctx.env_overrides))
            self.run_actions(a.actions, inner, fctx)
        else:
            self.run_actions(a.actions, ctx, fctx)

    def _include_path(self, a: _IncludeAction, ctx: _Ctx, fctx: _FileCtx, *, warn: bool = True) -> Path:
        raw = self.subst(a.file, ctx, fctx, a.where, "file")
        return self._resolve_file(raw, fctx, a.where, "file", "include file", "included file", warn)

    def _resolve_file(self, raw: str, fctx: _FileCtx, where: str, key: str, what: str, missing: str,
                      warn: bool = True) -> Path:  # fmt: skip
        """A file named in a launch file. ros2 launch resolves a relative path against its working
        directory; we use the launch file's directory (what the author meant) and say how to make it
        portable."""
        path = Path(raw).expanduser()
        if not path.is_absolute():
            if warn:
                self.warnings.append(
                    f"{fctx.path}: {where}: {what} {raw!r} is relative: resolved against the launch file's "
                    f"directory, but ros2 launch resolves it against the working directory; write "
                    f"'$(dirname)/{raw}' or '$(find-pkg-share <pkg>)/...'"
                )
            path = fctx.path.parent / path
        if not path.is_file():
            raise LaunchError(f"{missing} {path} does not exist", file=fctx.path, entry=where, key=key)
        return path.resolve()

    def _do_include(self, a: _IncludeAction, ctx: _Ctx, fctx: _FileCtx) -> None:
        path = self._include_path(a, ctx, fctx)
        names = set()
        for n, v in a.args:
            name = self.subst(n, ctx, fctx, a.where, "arg")
            # Not scoped, exactly like ros2 launch: SetLaunchConfiguration in the including context.
            ctx.configs[name] = self.subst(v, ctx, fctx, a.where, "arg")
            names.add(name)
        self.run_file(path, ctx, names)

    def _do_node(self, a: _ProcessAction, ctx: _Ctx, fctx: _FileCtx) -> None:
        self._process(a, ctx, fctx)

    def _do_executable(self, a: _ProcessAction, ctx: _Ctx, fctx: _FileCtx) -> None:
        self._process(a, ctx, fctx)

    def _process(self, a: _ProcessAction, ctx: _Ctx, fctx: _FileCtx) -> None:
        def sub(t: _Text | None, key: str) -> str | None:
            return None if t is None else self.subst(t, ctx, fctx, a.where, key)

        def fail(key: str, msg: str) -> LaunchError:
            return LaunchError(msg, file=fctx.path, entry=a.where, key=key)

        env = dict(ctx.env)
        overrides = dict(ctx.env_overrides)
        for n, v in a.env:
            name = self.subst(n, ctx, fctx, a.where, "env")
            value = self.subst(v, ctx, fctx, a.where, "env")
            tmp = _Ctx(ctx.configs, env, overrides)
            self._set_env(tmp, name, value, fctx, a.where)
        env[DISCOVERY_ENV] = DISCOVERY_VALUE
        cwd = sub(a.cwd, "cwd")
        if cwd is not None and not Path(cwd).is_dir():
            raise fail("cwd", f"working directory {cwd} does not exist")
        output = sub(a.output, "output") or "log"
        if output not in OUTPUT_MODES:
            raise fail("output", f"output must be one of {', '.join(OUTPUT_MODES)}, got {output!r}")
        respawn = False
        if a.respawn is not None:
            try:
                respawn = _condition_value(self.subst(a.respawn, ctx, fctx, a.where, "respawn"))
            except LaunchError as e:
                raise fail("respawn", e.problem) from None
        prefix_words: list[str] = []
        if a.launch_prefix is not None:
            prefix_words = shlex.split(self.subst(a.launch_prefix, ctx, fctx, a.where, "launch-prefix"))
        spec = ProcessSpec(
            name="",
            argv=[],
            env=env,
            output=output,
            respawn=respawn,
            respawn_delay=a.respawn_delay,
            respawn_max_retries=a.respawn_max_retries,
            required=a.required,
            cwd=cwd,
            sigterm_timeout=a.sigterm_timeout,
            sigkill_timeout=a.sigkill_timeout,
            kind=a.kind,
            env_overrides={k: v for k, v in overrides.items()},
            source=f"{fctx.path}: {a.where}",
        )
        if a.kind == "executable":
            argv = [self.subst(w, ctx, fctx, a.where, "cmd") for w in a.cmd]
            program = argv[0]
            if self.check_executables and not (
                ("/" in program and Path(cwd or ".", program).is_file())
                or shutil.which(program, path=env.get("PATH", ""))
            ):
                raise fail("cmd", f"program {program!r} not found (not a file, not on the launch PATH)")
            spec.executable = program
            spec.argv = prefix_words + argv
            label = sub(a.name, "name") or Path(program).name
        else:
            self._node_argv(a, ctx, fctx, spec, prefix_words)
            label = sub(a.exec_name, "exec_name") or spec.node_name or Path(spec.executable).name
        spec.name = self._unique_label(label, spec.namespace)
        self.processes.append(spec)

    def _node_argv(
        self, a: _ProcessAction, ctx: _Ctx, fctx: _FileCtx, spec: ProcessSpec, prefix: list[str]
    ) -> None:
        def sub(t: _Text, key: str) -> str:
            return self.subst(t, ctx, fctx, a.where, key)

        def fail(key: str, msg: str) -> LaunchError:
            return LaunchError(msg, file=fctx.path, entry=a.where, key=key)

        assert a.executable is not None
        exe = sub(a.executable, "exec")
        spec.executable = exe
        if a.package is not None:
            spec.package = sub(a.package, "pkg")
            if self.check_executables:
                try:
                    program = str(find_node_executable(spec.package, exe, spec.env))
                except LaunchError as e:
                    raise fail("exec" if "executable" in e.problem else "pkg", e.problem) from None
            else:
                program = f"<{spec.package}/lib/{exe}>"
        else:
            program = exe
            if self.check_executables and not (
                ("/" in program and Path(spec.cwd or ".", program).is_file())
                or shutil.which(program, path=spec.env.get("PATH", ""))
            ):
                raise fail(
                    "exec", f"program {program!r} not found (no `pkg`: a path or a name on the launch PATH)"
                )
        argv = [*prefix, program, *(sub(w, "args") for w in a.args)]
        if a.ros_args:
            argv += ["--ros-args", *(sub(w, "ros_args") for w in a.ros_args)]
        # ros2 launch always appends its own `--ros-args` block: name, namespace, params, remaps.
        argv.append("--ros-args")
        if a.name is not None:
            spec.node_name = sub(a.name, "name")
            if not _NODE_NAME.match(spec.node_name):
                raise fail(
                    "name",
                    f"invalid node name {spec.node_name!r} (letters, digits, _; not starting with a digit)",
                )
            argv += ["-r", f"__node:={spec.node_name}"]
        ns = _prefix_namespace(
            ctx.configs.get("ros_namespace"), None if a.namespace is None else sub(a.namespace, "namespace")
        )
        if ns is not None:
            if not _NAMESPACE.match(ns):
                raise fail("namespace", f"invalid ROS namespace {ns!r} (tokens: letters, digits, _)")
            spec.namespace = ns
            argv += ["-r", f"__ns:={ns}"]
        for prm in a.params:
            if prm.from_file is not None:
                path = self._param_file(prm, ctx, fctx)
                argv += ["--params-file", path]
                spec.params.append(f"--params-file {path}")
            else:
                rule = self._param_rule(prm, ctx, fctx)
                argv += ["-p", rule]
                spec.params.append(rule)
        for f, t in a.remaps:
            pair = (sub(f, "remap"), sub(t, "remap"))
            spec.remaps.append(pair)
            argv += ["-r", f"{pair[0]}:={pair[1]}"]
        spec.argv = argv

    def _param_file(self, prm: _ParamSpec, ctx: _Ctx, fctx: _FileCtx) -> str:
        assert prm.from_file is not None
        raw = self.subst(prm.from_file, ctx, fctx, prm.key_where, "from")
        return str(self._resolve_file(raw, fctx, prm.key_where, "from", "parameter file", "parameter file"))

    def _param_rule(self, prm: _ParamSpec, ctx: _Ctx, fctx: _FileCtx) -> str:
        name = ".".join(self.subst(n, ctx, fctx, prm.key_where, "name") for n in prm.name)

        def typed(v: Any) -> Any:
            if isinstance(v, tuple):  # a string (with or without substitutions)
                s = self.subst(v, ctx, fctx, prm.key_where, "value")
                if prm.type is not None:
                    return _coerce(s, _PARAM_TYPES[prm.type])
                # ros2 launch guesses the type of a string with YAML rules ('2' -> 2, 'true' -> True).
                try:
                    guess = yaml.safe_load(s)
                except yaml.YAMLError:
                    return s
                return guess if isinstance(guess, (bool, int, float, str)) else s
            if prm.type is not None:
                return _coerce(v, _PARAM_TYPES[prm.type])
            return v

        try:
            value = [typed(x) for x in prm.value] if isinstance(prm.value, list) else typed(prm.value)
        except (TypeError, ValueError) as e:
            raise LaunchError(str(e), file=fctx.path, entry=prm.key_where, key="value") from None
        if isinstance(value, list) and len({type(x) for x in value}) > 1:
            raise LaunchError(
                f"list parameter {name!r} mixes types {value!r}: ROS parameters are uniform arrays",
                file=fctx.path,
                entry=prm.key_where,
                key="value",
            )
        return f"{name}:={_format_param_value(value)}"

    def _unique_label(self, label: str, namespace: str | None) -> str:
        taken = {p.name for p in self.processes}
        if label not in taken:
            return label
        if namespace and namespace != "/":
            qualified = namespace.strip("/") + "/" + label
            if qualified not in taken:
                return qualified
        n = 2
        while f"{label}-{n}" in taken:
            n += 1
        return f"{label}-{n}"


def _coerce(v: Any, kind: type) -> Any:
    if kind is bool:
        if isinstance(v, bool):
            return v
        return _condition_value(str(v))
    if kind is str:
        return str(v)
    if kind is int and isinstance(v, float):
        raise ValueError(f"{v!r} is not an int")
    return kind(v)


def parse_launch_args(tokens: list[str]) -> dict[str, str]:
    """`name:=value` tokens from the command line (ros2 launch's syntax) into a dict."""
    out: dict[str, str] = {}
    for t in tokens:
        name, sep, value = t.partition(":=")
        if not sep or not name:
            raise LaunchError(f"launch arguments are written name:=value, got {t!r}")
        out[name] = value
    return out


def parse_launch_file(
    path: str | Path,
    launch_args: Mapping[str, str] | None = None,
    *,
    install_dir: str | Path | None = None,
    base_env: Mapping[str, str] | None = None,
    check_executables: bool = True,
) -> LaunchDescription:
    """Resolve a YAML launch file (and everything it includes) into the processes to run.

    `launch_args` are the command line's `name:=value` pairs; each must be declared by an `arg` somewhere
    in the tree. `base_env` defaults to `runtime_env(install_dir)`; it is the environment `$(env X)` reads
    and `$(find-pkg-share p)` searches (AMENT_PREFIX_PATH). `check_executables=False` skips the lookup of
    node executables (for describing a tree whose workspace is not built yet). Raises LaunchError."""
    top = Path(path).expanduser().resolve()
    args = {str(k): str(v) for k, v in (launch_args or {}).items()}
    env = runtime_env(install_dir) if base_env is None else dict(base_env)
    env[DISCOVERY_ENV] = DISCOVERY_VALUE
    ev = _Evaluator(top, args, env, check_executables)
    ctx = _Ctx(dict(args), dict(env), {})
    ev.run_file(top, ctx, None)
    unknown = sorted(set(args) - ev.declared)
    if unknown:
        declared = ", ".join(sorted(ev.declared)) or "none"
        raise LaunchError(
            f"unknown launch argument(s) {', '.join(unknown)} given on the command line; "
            f"declared arguments: {declared}",
            file=top,
        )
    return LaunchDescription(top, ev.processes, ev.arguments, args, env, ev.warnings, ev.messages)


# -------------------------------------------------------------------------------------------- running
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


# ------------------------------------------------------------------------------------------------ CLI
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
