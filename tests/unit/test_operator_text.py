"""Operator text at the edge (legion_core.runtime.operator_text): what is refused and why, and how operator text is
shown in logs and echoed in replies (capped). docs/operator-input.md."""

from __future__ import annotations

import pytest

from legion_core.runtime.operator_text import LOG_CHARS, MAX_CHARS, check, for_echo, for_log


@pytest.mark.parametrize(
    "text",
    [
        "press the button",
        "open the drawer, then press the button and close the drawer",
        "1. open the drawer\n2. press the button",  # newlines separate list steps (grounding)
        "open the drawer\tthen close it",
        "ouvre le tiroir, s'il te plaît",  # non-ASCII letters are text
        "",  # empty is the grounder's refusal ("say which skill"), not a text fault
        "x" * MAX_CHARS,
    ],
)
def test_plain_text_passes(text):
    assert check(text) is None


@pytest.mark.parametrize(
    ("text", "position", "named"),
    [
        ("press the button\0open the drawer", 17, "U+0000 NUL"),
        ("\x1b[2Jpress the button", 1, "U+001B ESC"),
        ("press the button\rclose the drawer", 17, "U+000D CR"),
        ("press\x07 the button", 6, "U+0007 BEL"),
        ("press the button\x7f", 17, "U+007F DEL"),
        ("press the \x85button", 11, "U+0085"),  # C1 control
    ],
)
def test_control_characters_are_refused_naming_the_character(text, position, named):
    why = check(text)
    assert why is not None and "control character" in why
    assert f"character {position} " in why and named in why


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("press the \u202ebutton", "RIGHT-TO-LEFT OVERRIDE"),  # displays reversed: not what runs
        ("press the\u200b button", "ZERO WIDTH SPACE"),
        ("\ufeffpress the button", "ZERO WIDTH NO-BREAK SPACE"),
        ("press the button\u2028close the drawer", "LINE SEPARATOR"),
    ],
)
def test_invisible_and_separator_characters_are_refused(text, named):
    why = check(text)
    assert why is not None and named in why


def test_replacement_character_means_invalid_utf8_and_is_refused():
    received = b"press the \xff\xfe button".decode("utf-8", "replace")  # what rclpy hands a subscriber
    why = check(received)
    assert why is not None and "U+FFFD" in why and "UTF-8" in why and "character 11 " in why


def test_lone_surrogates_are_refused():
    argv_text = b"press the \xff button".decode("utf-8", "surrogateescape")  # how Python reads argv bytes
    why = check(argv_text)
    assert why is not None and "surrogate" in why and "U+DCFF" in why


def test_over_long_text_is_refused_with_its_length():
    why = check("press the button " * 6000)
    assert why is not None and "102000 characters" in why and str(MAX_CHARS) in why
    assert len(why) < 200  # the reason never carries the text


def test_non_text_is_refused():
    assert "not text" in check(b"press the button")


def test_for_log_escapes_and_caps():
    assert for_log("press\x1b[2J the button") == repr("press\x1b[2J the button")
    big = "a" * 100_000
    line = for_log(big)
    assert line == repr("a" * LOG_CHARS) + "... (100000 characters)"
    assert "\r" not in for_log("x\ry") and "\n" not in for_log("x\ny")


def test_for_echo_is_the_text_as_received_capped():
    assert for_echo("press the \x1b button") == "press the \x1b button"  # unchanged: a tool compares it
    assert for_echo("b" * (MAX_CHARS + 5)) == "b" * MAX_CHARS + f"... ({MAX_CHARS + 5} characters)"
    echo = for_echo("press \udcff")
    assert echo == "press \ufffd"
    echo.encode("utf-8")  # a ROS string must encode


@pytest.mark.parametrize("text", ["press the button\0open the drawer", "press\x1b[A the button", "x" * 501])
def test_command_client_refuses_before_sending(text, capsys, monkeypatch):
    """`legion command` checks the text before it starts ROS: a NUL would be cut off by rclpy in this very
    process, so the sequencer could not refuse it."""
    import legion_core.tools.ros_env as ros_env
    from legion_core.tools.command_client import run_command

    def no_ros(*_a, **_k):
        raise AssertionError("ROS was started for a text that must not be sent")

    monkeypatch.setattr(ros_env, "ensure_workspace", no_ros)
    assert run_command(text) == 2
    err = capsys.readouterr().err
    assert err.startswith("not sent: ") and ("character" in err) and len(err) < 300
