"""What a launch file says and what it resolves to: the action tree the parser builds from a YAML launch
file (`Action` and its kinds, evaluated by legion_core/tools/launch/description.py) and the resolved
`LaunchDescription` (its arguments and the `ProcessSpec` of every process to run)."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from legion_core.tools.launch.substitutions import Text

# ros2 launch's output aliases. Here the per-process file <log_dir>/<name>.log stands for both its launch
# log and its own_log: screen (both streams on screen), log (file + stderr on screen), both/full (file +
# screen), own_log (file only).
OUTPUT_MODES = ("screen", "log", "both", "own_log", "full")
# A named `param`'s `type:` -> the Python type its value (each element of a list) is coerced to.
PARAM_TYPES = {
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "list_of_str": str,
    "list_of_int": int,
    "list_of_float": float,
    "list_of_bool": bool,
}


# ------------------------------------------------------------------------------------------ parse tree
@dataclass
class Condition:
    kind: str  # "if" | "unless"
    text: Text


@dataclass
class Action:
    kind: str
    where: str  # "launch[3]/group/children[1]/node" for error messages
    label: str  # a short human hint: the node's exec or the arg's name
    cond: Condition | None


@dataclass
class ArgAction(Action):
    name: str = ""
    default: Text | None = None
    description: str = ""
    choices: list[str] | None = None
    default_raw: str | None = None


@dataclass
class SetAction(Action):  # let, set_env, unset_env
    name: Text = ()
    value: Text | None = None


@dataclass
class PushNamespaceAction(Action):
    namespace: Text = ()


@dataclass
class LogAction(Action):
    message: Text = ()


@dataclass
class GroupAction(Action):
    scoped: bool = True
    actions: list[Action] = field(default_factory=list)


@dataclass
class IncludeAction(Action):
    file: Text = ()
    args: list[tuple[Text, Text]] = field(default_factory=list)


@dataclass
class ParamSpec:
    """One `param` entry: a file (`from`) or a name/value (nested `param` lists flatten to a.b.c)."""

    from_file: Text | None = None
    name: tuple[Text, ...] = ()
    value: Any = None
    type: str | None = None
    key_where: str = ""


@dataclass
class ProcessAction(Action):
    # node: pkg/exec/args; executable: cmd
    package: Text | None = None
    executable: Text | None = None
    cmd: list[Text] = field(default_factory=list)
    args: list[Text] = field(default_factory=list)
    ros_args: list[Text] = field(default_factory=list)
    name: Text | None = None
    namespace: Text | None = None
    exec_name: Text | None = None
    params: list[ParamSpec] = field(default_factory=list)
    remaps: list[tuple[Text, Text]] = field(default_factory=list)
    env: list[tuple[Text, Text]] = field(default_factory=list)
    cwd: Text | None = None
    output: Text | None = None
    respawn: Text | None = None
    respawn_delay: float = 0.0
    respawn_max_retries: int = -1
    required: bool = False
    launch_prefix: Text | None = None
    sigterm_timeout: float | None = None
    sigkill_timeout: float | None = None


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
