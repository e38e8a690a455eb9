"""`legion --help` lists every subcommand with a purpose; each subcommand's --help teaches."""

from __future__ import annotations

import pytest

from legion_core.cli import build_parser, main


def _subcommands(parser):
    for a in parser._actions:
        if a.__class__.__name__ == "_SubParsersAction":
            return a
    raise AssertionError("no subcommands")


def test_every_subcommand_has_a_purpose_and_help(capsys):
    sub = _subcommands(build_parser())
    helps = {c.dest: c.help for c in sub._choices_actions}
    assert {"tasks", "setup", "render", "demo", "bench"} <= set(helps)
    assert all(h and len(h) > 10 for h in helps.values())
    for name in helps:
        with pytest.raises(SystemExit) as e:
            main([name, "--help"])
        assert e.value.code == 0
        assert "usage: legion " + name in capsys.readouterr().out


def test_tasks_command_lists_a_set(capsys):
    assert main(["tasks", "--set", "legion-mt10"]) == 0
    out = capsys.readouterr().out
    assert "drawer-close" in out and "peg-unplug-side" in out and "drawer-open" not in out
