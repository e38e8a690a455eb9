"""Reading a ROS 2 YAML launch file (`*.launch.yaml`) into the action tree of
legion_core/tools/launch/model.py, with ros2 launch_yaml's checks. The supported subset:

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
* string values may hold substitutions (legion_core/tools/launch/substitutions.py).

Everything else (an unknown action or key, a wrongly typed value) is an error that names the file, the
entry and the key: ros2 launch rejects unknown keys too, so a file that runs here stays within what both
runners understand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from legion_core.tools.launch.errors import LaunchError
from legion_core.tools.launch.model import (
    PARAM_TYPES,
    Action,
    ArgAction,
    Condition,
    GroupAction,
    IncludeAction,
    LogAction,
    ParamSpec,
    ProcessAction,
    PushNamespaceAction,
    SetAction,
)
from legion_core.tools.launch.substitutions import Text, parse_substitutions, split_cmdline

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

    def text(self, key: str, *, required: bool = False) -> Text | None:
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


def parse_file(path: Path) -> list[Action]:
    doc = _load_yaml(path)
    if not isinstance(doc, dict) or list(doc) != ["launch"] or not isinstance(doc["launch"], list):
        raise LaunchError(
            "a YAML launch file is a map with the single key `launch:` holding a list of actions "
            "(`launch: [{arg: {...}}, {node: {...}}]`)",
            file=path,
        )
    return _parse_actions(path, doc["launch"], "launch")


def _parse_actions(path: Path, items: list, where: str) -> list[Action]:
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


def _parse_condition(e: _Entity) -> Condition | None:
    conds = [k for k in ("if", "unless") if isinstance(e.body, dict) and k in e.body]
    if len(conds) > 1:
        raise e.fail("unless", "`if` and `unless` are mutually exclusive")
    if not conds:
        return None
    return Condition(conds[0], e.text(conds[0]) or ("",))


def _parse_action(e: _Entity) -> Action:
    kind = e.kind
    if kind == "group" and isinstance(e.body, list):
        # `- group: [child, ...]`: the list form, with no attributes.
        return GroupAction(kind, e.where, "", None, True, _parse_actions(e.file, e.body, e.where))
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
        return ArgAction(kind, e.where, name, cond, name, default, description, choices, e.string("default"))
    if kind in ("let", "set_env", "unset_env"):
        name = e.text("name", required=True)
        value = e.text("value", required=kind != "unset_env")
        return SetAction(kind, e.where, e.raw("name"), cond, name, value)
    if kind in ("push-ros-namespace", "push_ros_namespace"):
        return PushNamespaceAction(kind, e.where, "", cond, e.text("namespace", required=True))
    if kind == "log":
        return LogAction(kind, e.where, "", cond, e.text("message", required=True))
    if kind == "group":
        scoped = e.raw("scoped", True)
        if not isinstance(scoped, bool):
            raise e.fail("scoped", f"expected a YAML boolean (true/false), got {scoped!r}")
        children = e.raw("children")
        if not isinstance(children, list):
            raise e.fail("children", "a group with keys needs `children:`, a list of actions")
        return GroupAction(
            kind, e.where, "", cond, scoped, _parse_actions(e.file, children, e.where + "/children")
        )
    if kind == "include":
        inc = IncludeAction(kind, e.where, e.raw("file", ""), cond, e.text("file", required=True))
        for a in e.entity_list("arg"):
            a.check_keys(("name", "value"))
            inc.args.append((a.text("name", required=True), a.text("value", required=True)))
        return inc
    return _parse_process(e, cond)


def _parse_cmdline_key(e: _Entity, key: str, *, required: bool = False) -> list[Text]:
    parts = e.text(key, required=required)
    if parts is None:
        return []
    try:
        return split_cmdline(parts)
    except LaunchError as err:
        raise e.fail(key, err.problem) from None


def _parse_process(e: _Entity, cond: Condition | None) -> ProcessAction:
    p = ProcessAction(e.kind, e.where, "", cond)
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


def _parse_param(e: _Entity, prefix: tuple[Text, ...], where: str) -> list[ParamSpec]:
    e.check_keys(("from", "name", "value", "type", "param"))
    if e.has("from"):
        if any(e.has(k) for k in ("name", "value", "type", "param")):
            raise e.fail("from", "a `from:` (parameter file) entry takes no name/value/type/param")
        if prefix:
            raise e.fail("from", "a parameter file (`from:`) cannot be nested under a named `param`")
        return [ParamSpec(from_file=e.text("from"), key_where=e.where)]
    name = e.text("name", required=True)
    if e.has("param"):
        if e.has("value") or e.has("type"):
            raise e.fail("param", "nested `param:` and `value`/`type` are mutually exclusive")
        out: list[ParamSpec] = []
        for i, sub in enumerate(e.entity_list("param")):
            out.extend(_parse_param(sub, (*prefix, name), f"{where}/param[{i}]"))
        return out
    if not e.has("value"):
        raise e.fail("value", "a named `param` needs `value:` (or a nested `param:` list)")
    ptype = e.string("type")
    if ptype is not None and ptype not in PARAM_TYPES:
        raise e.fail("type", f"unknown parameter type {ptype!r} (supported: {', '.join(PARAM_TYPES)})")
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
    return [ParamSpec(name=(*prefix, name), value=value, type=ptype, key_where=e.where)]
