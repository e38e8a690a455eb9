"""Node parameters declared from dataclass fields: the field's default is the parameter's one default, its
docstring the parameter's description (docs/architecture.md, "Where the logic lives (nodes are thin)").

A config dataclass of the runtime (e.g. sim2real.supervisor.SupervisorConfig) is the home of each default;
a node declares its ROS parameters from `parameters(Config)` (or a subset of its fields) instead of
repeating the value, and the parameter file of a deployment only sets what differs. Stdlib only: this is
read by the ROS layer, by tests and by tools that check a parameter file without starting a node.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

#: The types a ROS parameter's default may have here (ROS infers the parameter type from the default).
PARAMETER_TYPES = (bool, int, float, str)


@dataclasses.dataclass(frozen=True)
class Parameter:
    """One declared node parameter."""

    name: str
    """Parameter name (the field's name)."""
    default: bool | int | float | str
    """Default value: the field's default in its dataclass."""
    description: str
    """What it sets, with its unit (the field's docstring, on one line)."""
    home: str
    """Qualified name of the dataclass that holds the default (where to change it)."""


@functools.cache
def field_docs(config: type) -> dict[str, str]:
    """The docstrings of the fields of dataclass `config` (the string literal right after a field), each
    on one line; a field without one is absent. Empty when the class's source cannot be read."""
    out: dict[str, str] = {}
    for klass in reversed(config.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, nxt in zip(body, body[1:]):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                out[node.target.id] = " ".join(nxt.value.value.split())
    return out


def parameters(config: type, names: Sequence[str] | None = None) -> list[Parameter]:
    """The fields `names` (all fields when None, in their order) of dataclass `config` as parameters.
    ValueError for a name that is not a field, a field without a default, or a default that a ROS
    parameter cannot have (None, a tuple...): such a field is not a parameter."""
    fields = {f.name: f for f in dataclasses.fields(config)}
    docs = field_docs(config)
    home = f"{config.__module__}.{config.__qualname__}"
    out = []
    for name in fields if names is None else names:
        f = fields.get(name)
        if f is None:
            raise ValueError(f"{home} has no field {name!r}")
        if f.default is dataclasses.MISSING or not isinstance(f.default, PARAMETER_TYPES):
            raise ValueError(f"{home}.{name} has no default a ROS parameter can take ({f.default!r})")
        out.append(Parameter(name, f.default, docs.get(name, ""), home))
    return out


def check_unique(params: Iterable[Parameter]) -> list[Parameter]:
    """`params` as a list; ValueError when two of them have the same name (two homes for one parameter)."""
    seen: dict[str, Parameter] = {}
    for p in params:
        if p.name in seen:
            raise ValueError(f"parameter {p.name!r} is declared by {seen[p.name].home} and by {p.home}")
        seen[p.name] = p
    return list(seen.values())


def pick(config: type, values: Mapping[str, Any], names: Sequence[str] | None = None) -> dict[str, Any]:
    """The entries of `values` that are fields of dataclass `config` (its keyword arguments), only those in
    `names` when given (a node that declares a subset of a config's fields: another config may have a field
    of the same name, e.g. both the supervisor and the mapper have max_tracking_error_rad)."""
    fields = {f.name for f in dataclasses.fields(config)}
    if names is not None:
        fields &= set(names)
    return {k: v for k, v in values.items() if k in fields}
