"""Resolving a launch file (and everything it includes) into its `LaunchDescription`: the processes to
run, each with its argv, parameters, remaps and complete environment.

Scoping follows ros2 launch: a `group` is scoped by default (launch configurations, pushed namespaces
and environment changes end with it); an `include` is NOT scoped (its `arg`s and the included file's
`let`s leak into the including file, exactly as in ros2 launch; wrap it in a `group` to scope it).
"""

from __future__ import annotations

import math
import re
import shlex
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from legion_core.tools.launch.environment import (
    DISCOVERY_ENV,
    DISCOVERY_VALUE,
    find_node_executable,
    runtime_env,
)
from legion_core.tools.launch.errors import LaunchError
from legion_core.tools.launch.model import (
    OUTPUT_MODES,
    PARAM_TYPES,
    Action,
    ArgAction,
    GroupAction,
    IncludeAction,
    LaunchArgument,
    LaunchDescription,
    LogAction,
    ParamSpec,
    ProcessAction,
    ProcessSpec,
    PushNamespaceAction,
    SetAction,
)
from legion_core.tools.launch.parser import parse_file
from legion_core.tools.launch.substitutions import Substitution, Text, condition_value, resolve_substitution


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
    def subst(self, text: Text, ctx: _Ctx, fctx: _FileCtx, where: str, key: str) -> str:
        try:
            return "".join(p if isinstance(p, str) else self._sub(p, ctx, fctx, where, key) for p in text)
        except LaunchError as e:
            if e.file:
                raise
            raise LaunchError(e.problem, file=fctx.path, entry=where, key=key) from None

    def _sub(self, s: Substitution, ctx: _Ctx, fctx: _FileCtx, where: str, key: str) -> str:
        args = [self.subst(a, ctx, fctx, where, key) for a in s.args]
        return resolve_substitution(s.name, args, ctx.configs, ctx.env, fctx.path)

    def condition(self, a: Action, ctx: _Ctx, fctx: _FileCtx) -> bool:
        if a.cond is None:
            return True
        text = self.subst(a.cond.text, ctx, fctx, a.where, a.cond.kind)
        try:
            value = condition_value(text)
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
            self.run_actions(parse_file(path), ctx, _FileCtx(path, include_args))
        finally:
            self.include_stack.pop()

    def run_actions(self, actions: list[Action], ctx: _Ctx, fctx: _FileCtx) -> None:
        for a in actions:
            self._declare_names(a)
            if not self.condition(a, ctx, fctx):
                self._declare_skipped(a, ctx, fctx)
                continue
            inner = _FileCtx(fctx.path, fctx.include_args, fctx.conditional or a.cond is not None)
            getattr(self, "_do_" + a.kind.replace("-", "_"))(a, ctx, inner)

    def _declare_names(self, a: Action) -> None:
        if isinstance(a, ArgAction):
            self.declared.add(a.name)

    def _declare_skipped(self, a: Action, ctx: _Ctx, fctx: _FileCtx) -> None:
        """Arguments behind a false condition still count as declared (ros2 launch's --show-args lists
        them), so `name:=value` for them is not an unknown-argument error."""
        if isinstance(a, GroupAction):
            for child in a.actions:
                self._declare_names(child)
                self._declare_skipped(child, ctx, fctx)
        elif isinstance(a, IncludeAction):
            try:
                path = self._include_path(a, ctx, fctx, warn=False)
                if path not in self.include_stack:
                    self.include_stack.append(path)
                    try:
                        for child in parse_file(path):
                            self._declare_names(child)
                            self._declare_skipped(child, ctx, _FileCtx(path, None))
                    finally:
                        self.include_stack.pop()
            except LaunchError:
                pass  # best effort: the include is not taken, so its file may legitimately not resolve

    def _do_arg(self, a: ArgAction, ctx: _Ctx, fctx: _FileCtx) -> None:
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

    def _do_let(self, a: SetAction, ctx: _Ctx, fctx: _FileCtx) -> None:
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

    def _do_set_env(self, a: SetAction, ctx: _Ctx, fctx: _FileCtx) -> None:
        assert a.value is not None
        name = self.subst(a.name, ctx, fctx, a.where, "name")
        self._set_env(ctx, name, self.subst(a.value, ctx, fctx, a.where, "value"), fctx, a.where)

    def _do_unset_env(self, a: SetAction, ctx: _Ctx, fctx: _FileCtx) -> None:
        self._set_env(ctx, self.subst(a.name, ctx, fctx, a.where, "name"), None, fctx, a.where)

    def _do_log(self, a: LogAction, ctx: _Ctx, fctx: _FileCtx) -> None:
        self.messages.append(self.subst(a.message, ctx, fctx, a.where, "message"))

    def _do_push_ros_namespace(self, a: PushNamespaceAction, ctx: _Ctx, fctx: _FileCtx) -> None:
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

    def _do_group(self, a: GroupAction, ctx: _Ctx, fctx: _FileCtx) -> None:
        if a.scoped:
            # Push/pop of launch configurations (incl. the ROS namespace) and of the environment.
            inner = _Ctx(dict(ctx.configs), dict(ctx.env), dict(ctx.env_overrides))
            self.run_actions(a.actions, inner, fctx)
        else:
            self.run_actions(a.actions, ctx, fctx)

    def _include_path(self, a: IncludeAction, ctx: _Ctx, fctx: _FileCtx, *, warn: bool = True) -> Path:
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

    def _do_include(self, a: IncludeAction, ctx: _Ctx, fctx: _FileCtx) -> None:
        path = self._include_path(a, ctx, fctx)
        names = set()
        for n, v in a.args:
            name = self.subst(n, ctx, fctx, a.where, "arg")
            # Not scoped, exactly like ros2 launch: SetLaunchConfiguration in the including context.
            ctx.configs[name] = self.subst(v, ctx, fctx, a.where, "arg")
            names.add(name)
        self.run_file(path, ctx, names)

    def _do_node(self, a: ProcessAction, ctx: _Ctx, fctx: _FileCtx) -> None:
        self._process(a, ctx, fctx)

    def _do_executable(self, a: ProcessAction, ctx: _Ctx, fctx: _FileCtx) -> None:
        self._process(a, ctx, fctx)

    def _process(self, a: ProcessAction, ctx: _Ctx, fctx: _FileCtx) -> None:
        def sub(t: Text | None, key: str) -> str | None:
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
                respawn = condition_value(self.subst(a.respawn, ctx, fctx, a.where, "respawn"))
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
        self, a: ProcessAction, ctx: _Ctx, fctx: _FileCtx, spec: ProcessSpec, prefix: list[str]
    ) -> None:
        def sub(t: Text, key: str) -> str:
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

    def _param_file(self, prm: ParamSpec, ctx: _Ctx, fctx: _FileCtx) -> str:
        assert prm.from_file is not None
        raw = self.subst(prm.from_file, ctx, fctx, prm.key_where, "from")
        return str(self._resolve_file(raw, fctx, prm.key_where, "from", "parameter file", "parameter file"))

    def _param_rule(self, prm: ParamSpec, ctx: _Ctx, fctx: _FileCtx) -> str:
        name = ".".join(self.subst(n, ctx, fctx, prm.key_where, "name") for n in prm.name)

        def typed(v: Any) -> Any:
            if isinstance(v, tuple):  # a string (with or without substitutions)
                s = self.subst(v, ctx, fctx, prm.key_where, "value")
                if prm.type is not None:
                    return _coerce(s, PARAM_TYPES[prm.type])
                # ros2 launch guesses the type of a string with YAML rules ('2' -> 2, 'true' -> True).
                try:
                    guess = yaml.safe_load(s)
                except yaml.YAMLError:
                    return s
                return guess if isinstance(guess, (bool, int, float, str)) else s
            if prm.type is not None:
                return _coerce(v, PARAM_TYPES[prm.type])
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
        return condition_value(str(v))
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
