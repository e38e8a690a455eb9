"""Operator text at the edge of the runtime: is a typed command plain text we may parse, and how is it shown
in logs and replies. Pure, no ROS; used by task_sequencer_node (every command that arrives, topic or action)
and by `legion command` (before anything is sent). docs/operator-input.md says why each rule exists.

Refused, with a reason that names the character and its position:
- control characters (Unicode category Cc) except newline and tab, which are layout the grounder reads
  (a newline separates list steps, legion_core/runtime/grounding.py). An ESC starts a terminal escape sequence, a
  CR rewrites the line a log viewer shows, a BEL rings, and a NUL cuts the text in every C layer below us
  (rclpy truncates a std_msgs/String at the first NUL in the publishing process, so the sequencer never
  sees what followed it);
- invisible format characters (Cf: bidirectional overrides, zero-width spaces, BOM) and line/paragraph
  separators (Zl, Zp): the text a person reads would not be the text that runs;
- U+FFFD REPLACEMENT CHARACTER: the sender's bytes were not valid UTF-8 and a decoder replaced them
  (rclpy decodes received strings with errors='replace'); what the operator typed is unknown;
- lone surrogates (U+D800-U+DFFF): not Unicode text; Python makes them from undecodable bytes of a command
  line (surrogateescape), and they cannot be encoded to UTF-8 for a ROS message;
- more than MAX_CHARS characters.

Every copy of operator text that leaves this process in a log line is `for_log(text)` (quoted, escaped,
capped at LOG_CHARS), and in a reply `for_echo(text)` (as received, capped at MAX_CHARS).
"""

from __future__ import annotations

import re
import unicodedata

#: Longest command accepted [characters]. The grounder refuses more than 300 after stripping
#: (legion_core/runtime/grounding.py, GroundingConfig.max_chars); this bound is the transport's, so that no
#: unbounded text is parsed, logged or echoed.
MAX_CHARS = 500
#: Characters of operator text shown in one log line.
LOG_CHARS = 120

_ALLOWED_CONTROL = {"\n", "\t"}
_SURROGATE = re.compile("[\ud800-\udfff]")
_KIND = {
    "Cc": "a control character",
    "Cf": "an invisible format character",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
    "Cs": "a lone surrogate (not Unicode text: undecodable bytes)",
}
_CONTROL_NAMES = {0: "NUL", 7: "BEL", 8: "BS", 9: "TAB", 10: "LF", 13: "CR", 27: "ESC", 127: "DEL"}


def _describe(ch: str) -> str:
    code = ord(ch)
    name = _CONTROL_NAMES.get(code) or unicodedata.name(ch, "")
    return f"U+{code:04X}" + (f" {name}" if name else "")


def check(text: object) -> str | None:
    """None if `text` may be parsed as an operator command, otherwise the reason it is refused (one
    sentence, naming the first offending character and its 1-based position)."""
    if not isinstance(text, str):
        return f"the command is not text ({type(text).__name__})"
    if len(text) > MAX_CHARS:
        return f"the command has {len(text)} characters, more than the {MAX_CHARS} accepted"
    for i, ch in enumerate(text, 1):
        if ch == "\ufffd":
            return (
                f"character {i} is U+FFFD REPLACEMENT CHARACTER: the command was not valid UTF-8 and its "
                "bytes were replaced on decoding; send UTF-8 text"
            )
        if ch in _ALLOWED_CONTROL:
            continue
        kind = _KIND.get(unicodedata.category(ch))
        if kind is not None:
            return f"character {i} is {kind} ({_describe(ch)}); send plain text"
    return None


def _cap(text: str, limit: int) -> tuple[str, str]:
    if len(text) <= limit:
        return text, ""
    return text[:limit], f"... ({len(text)} characters)"


def for_log(text: object, limit: int = LOG_CHARS) -> str:
    """`text` for one log line: quoted with every control character escaped (repr), at most `limit`
    characters of it, then '... (N characters)' when it was longer."""
    if not isinstance(text, str):
        text = str(text)
    head, tail = _cap(text, limit)
    return repr(head) + tail


def for_echo(text: object, limit: int = MAX_CHARS) -> str:
    """`text` as received, for a reply (CommandStatus.command): unchanged up to `limit` characters, so an
    operator tool can compare it with what it sent (a NUL-cut command shows as a shorter echo); longer
    text is cut there and '... (N characters)' appended. Lone surrogates become U+FFFD, the only change,
    because a ROS string must encode to UTF-8."""
    if not isinstance(text, str):
        text = str(text)
    head, tail = _cap(text, limit)
    return _SURROGATE.sub("\ufffd", head) + tail
