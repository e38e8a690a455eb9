"""The one error of `legion launch`: a launch file outside the supported subset, an unresolvable
substitution or a bad command line, named by file, entry and key."""

from __future__ import annotations

from pathlib import Path


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
