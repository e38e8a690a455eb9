"""What the command groups of the `legion` CLI share: one way to declare a command (its help keeps the line
breaks of the examples) and one way to write a result as JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

FORMATTER = argparse.RawDescriptionHelpFormatter
"""Help formatter of every command: descriptions keep their line breaks, so that examples read as typed."""


def add_command(
    subparsers: argparse._SubParsersAction, name: str, help: str, description: str | None = None
) -> argparse.ArgumentParser:
    """Declare one (sub)command: `help` is its line in the parent's list, `description` (with examples)
    heads its own `--help`."""
    return subparsers.add_parser(name, help=help, formatter_class=FORMATTER, description=description)


def seed_option(s: argparse.ArgumentParser) -> None:
    """`--seed`: the placements an evaluation or benchmark runs on, so that a user can re-check a figure on
    placements of their choosing (default: the bundle's held-out seed, the one its card was measured on)."""
    s.add_argument("--seed", type=int, default=None, metavar="N",
                   help="placements seed (default: the bundle's held-out seed, as on its card; training used 0)")  # fmt: skip


def write_json(payload: dict, path: str | None) -> None:
    """Write `payload` as indented JSON to `path` (parents created) and say so; nothing when `path` is
    empty. Values JSON does not know (numpy scalars) are written as floats."""
    text = json.dumps(payload, indent=2, default=float)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + "\n")
        print(f"wrote {path}")
