"""ros2 launch's substitutions: parsing `$(name arg ...)` out of launch-file strings, splitting command
lines around them, and evaluating one substitution once its arguments are resolved.

Supported: `$(var x)`, `$(env X [default])`, `$(find-pkg-share p)`, `$(find-pkg-prefix p)`,
`$(find-exec name)`, `$(dirname)`, `$(filename)`, `$(eval 'python expr')`, `$(not x)`, `$(and x y)`,
`$(or x y)`; arguments are space separated and may be quoted with '...' or "...". Anything else is a
LaunchError (ros2 launch rejects unknown substitutions too).
"""

from __future__ import annotations

import builtins
import math
import re
import shlex
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from legion_core.tools.launch.environment import find_package_prefix
from legion_core.tools.launch.errors import LaunchError

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


@dataclass(frozen=True)
class Substitution:
    """`$(name arg ...)`; each argument is itself a text (a tuple of str and Substitution parts)."""

    name: str
    args: tuple[tuple[str | Substitution, ...], ...]


Text = tuple[str | Substitution, ...]
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

    def template(self) -> Text:
        parts: list[str | Substitution] = []
        buf: list[str] = []
        while self.i < len(self.s):
            self._consume(buf, parts)
        if buf:
            parts.append("".join(buf))
        return tuple(parts)

    def _consume(self, buf: list[str], parts: list[str | Substitution]) -> None:
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

    def substitution(self) -> Substitution:
        self.i += 2  # "$("
        m = _IDENT.match(self.s, self.i)
        if not m:
            raise self.error("expected a substitution name after '$('")
        name = m.group(0)
        self.i = m.end()
        args: list[Text] = []
        while True:
            if self.i >= len(self.s):
                raise self.error(f"unterminated '$({name}'")
            c = self.s[self.i]
            if c == ")":
                self.i += 1
                return Substitution(name, tuple(args))
            if c != " ":
                raise self.error(f"expected ' ' or ')' after '$({name}'")
            while self.i < len(self.s) and self.s[self.i] == " ":
                self.i += 1
            if self.i < len(self.s) and self.s[self.i] != ")":
                args.append(self.value())

    def value(self) -> Text:
        parts: list[str | Substitution] = []
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


def parse_substitutions(text: str) -> Text:
    """Split a launch-file string into literal text and `$(...)` substitutions (raises LaunchError)."""
    return _SubstParser(text).template() if text else ("",)


def split_cmdline(parts: Text) -> list[Text]:
    """ros2 launch's `_parse_cmdline`: literal text is shlex-split into words, a substitution's result is
    never split (so `$(var args)` stays one argument), and text glued to a substitution joins its word."""
    words: list[list[str | Substitution]] = []
    cur: list[str | Substitution] = []
    for p in parts:
        if isinstance(p, Substitution):
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


def condition_value(text: str) -> bool:
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


def resolve_substitution(
    name: str, args: list[str], configs: Mapping[str, str], env: Mapping[str, str], file: Path
) -> str:
    """The value of `$(name args...)` whose arguments are already resolved: `configs` are the launch
    configurations in scope (`ros_namespace` holds the pushed namespace), `env` the environment `$(env)`
    reads and `$(find-pkg-*)` searches (AMENT_PREFIX_PATH), `file` the launch file being evaluated
    (`$(dirname)`, `$(filename)`). Raises LaunchError without file/entry (the caller adds them)."""

    def nargs(lo: int, hi: int) -> None:
        if not lo <= len(args) <= hi:
            want = str(lo) if lo == hi else f"{lo} to {hi}"
            raise LaunchError(f"$({name}) takes {want} argument(s), got {len(args)}: {args}")

    if name == "var":
        nargs(1, 1)
        if args[0] not in configs:
            known = ", ".join(sorted(k for k in configs if k != "ros_namespace")) or "none"
            raise LaunchError(
                f"$(var {args[0]}): launch configuration '{args[0]}' is not defined here (defined: {known}); "
                f"declare it first with `- arg: {{name: {args[0]}, default: '...'}}` or `- let: ...`"
            )
        return configs[args[0]]
    if name == "env":
        nargs(1, 2)
        if args[0] in env:
            return env[args[0]]
        if len(args) == 2:
            return args[1]
        raise LaunchError(
            f"$(env {args[0]}): environment variable {args[0]} is not set; set it, or give a default: "
            f"$(env {args[0]} 'default')"
        )
    if name in ("find-pkg-share", "find-pkg-prefix"):
        nargs(1, 1)
        prefix = find_package_prefix(args[0], env)
        return str(prefix / "share" / args[0]) if name == "find-pkg-share" else str(prefix)
    if name == "find-exec":
        nargs(1, 1)
        found = shutil.which(args[0], path=env.get("PATH", ""))
        if not found:
            raise LaunchError(f"$(find-exec {args[0]}): no executable {args[0]!r} on the launch PATH")
        return found
    if name == "dirname":
        nargs(0, 0)
        return str(file.parent)
    if name == "filename":
        nargs(0, 0)
        return str(file)
    if name == "eval":
        nargs(1, 1)
        try:
            result = eval(args[0], {"__builtins__": _EVAL_BUILTINS, "math": math}, {})
        except Exception as e:
            raise LaunchError(f"$(eval {args[0]!r}) failed: {type(e).__name__}: {e}") from None
        return str(result)
    if name == "not":
        nargs(1, 1)
        return "false" if condition_value(args[0]) else "true"
    if name in ("and", "or"):
        nargs(2, 2)
        a, b = condition_value(args[0]), condition_value(args[1])
        return str(a and b if name == "and" else a or b).lower()
    raise LaunchError(
        f"unsupported substitution $({name} ...) (supported: {', '.join(SUPPORTED_SUBSTITUTIONS)})"
    )
