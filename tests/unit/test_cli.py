"""`legion --help` lists every subcommand with a purpose; each subcommand's --help teaches."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from legion_core.cli import build_parser, main

REPO = Path(__file__).resolve().parents[2]
SESSION_BAG = REPO / "tests" / "data" / "replay" / "drawer_close_session"


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


def test_every_command_of_every_group_is_listed():
    names = set(_subcommands(build_parser()).choices)
    assert names == {"tasks", "setup", "render", "demo", "launch", "command", "run", "doctor", "train", "report",
                     "export", "inspect", "keygen", "sign", "record", "replay", "bench", "calibrate",
                     "console"}  # fmt: skip


def test_every_bench_has_a_purpose_and_help(capsys):
    bench = _subcommands(build_parser()).choices["bench"]
    helps = {c.dest: c.help for c in _subcommands(bench)._choices_actions}
    assert {"envs", "sim2real", "inference", "runtime", "faults", "soak", "transfer", "grounding",
            "longhorizon", "perception", "train", "record"} == set(helps)  # fmt: skip
    assert all(h and len(h) > 10 for h in helps.values())
    for name in helps:
        with pytest.raises(SystemExit) as e:
            main(["bench", name, "--help"])
        assert e.value.code == 0
        assert "usage: legion bench " + name in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [["tasks"], ["render"], ["train"], ["report"], ["export"], ["inspect"], ["keygen"], ["sign"],
     ["launch"], ["command"], ["run"], ["record"], ["replay"], ["bench", "envs"], ["bench", "faults"],
     ["bench", "soak"], ["bench", "longhorizon"], ["bench", "perception"], ["bench", "record"], ["calibrate"],
     ["demo"], ["console"]],
)  # fmt: skip
def test_help_teaches_with_examples(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main([*argv, "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0
    assert "example" in out and f"  legion {' '.join(argv)}" in out, out


def test_no_command_or_no_bench_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "<command>" in capsys.readouterr().out
    assert main(["bench"]) == 2
    assert "usage: legion bench" in capsys.readouterr().out


def test_every_bench_writes_its_json_to_out_bench_name_by_default():
    p = build_parser()
    positional = {"inference": ["models/x"], "transfer": ["models/x"], "longhorizon": ["models/x"]}
    for name in ("envs", "sim2real", "inference", "runtime", "faults", "soak", "transfer", "grounding",
                 "longhorizon", "perception", "train"):  # fmt: skip
        args = p.parse_args(["bench", name, *positional.get(name, [])])
        assert args.output == f"out/bench_{name}.json"
        assert args.func.__name__ == f"run_bench_{name}"


def test_fault_and_soak_benches_share_their_driver_options():
    p = build_parser()
    faults, soak = p.parse_args(["bench", "faults"]), p.parse_args(["bench", "soak"])
    assert faults.bundle == soak.bundle == "models/legion-kuka"
    assert faults.publisher == soak.publisher == "thread"
    assert (faults.js_rate, soak.js_rate) == (200.0, 1000.0)  # each bench keeps its own rate
    assert p.parse_args(["bench", "soak", "--publisher", "loop"]).publisher == "loop"
    with pytest.raises(SystemExit):
        p.parse_args(["bench", "faults", "--publisher", "bogus"])
    calls = [p.parse_args(["bench", "sim2real"]).calls, p.parse_args(["bench", "inference", "b"]).calls]
    assert calls == [10000, 10000]


def test_record_bench_publisher_is_reachable_but_not_listed():
    p = build_parser()
    args = p.parse_args(["bench", "flood", "--count", "5", "--best-effort"])
    assert (args.topic, args.rate, args.count, args.best_effort) == ("/legion_flood", 2000.0, 5, True)
    assert args.func.__name__ == "run_flood"
    bench = _subcommands(p).choices["bench"]
    assert "flood" not in {c.dest for c in _subcommands(bench)._choices_actions}


def test_record_and_replay_options_and_defaults():
    p = build_parser()
    r = p.parse_args(["record", "-o", "out/s.mcap"])
    assert (r.topics, r.duration, r.use_sim_time, r.require, r.json) == ([], None, False, [], False)
    r = p.parse_args(["record", "/a", "/b", "-o", "s", "--require", "/a", "--require", "/b", "--json"])
    assert (r.topics, r.require, r.json) == (["/a", "/b"], ["/a", "/b"], True)
    with pytest.raises(SystemExit):
        p.parse_args(["record"])  # -o is required
    a = p.parse_args(["replay", "bag"])
    assert (a.rate, a.fast, a.topics, a.sim_clock, a.check, a.closed_loop, a.bundle, a.calibration,
            a.wait_subscribers, a.out) == (None, False, None, False, None, False, None, "", 3.0, None)  # fmt: skip
    with pytest.raises(SystemExit):
        p.parse_args(["replay", "bag", "--rate", "2", "--fast"])  # one timing only


def test_replay_refuses_a_missing_bag_and_a_check_without_bundle(tmp_path, capsys):
    assert main(["replay", str(tmp_path / "nothing")]) == 2
    assert "[legion replay]" in capsys.readouterr().err
    assert main(["replay", str(SESSION_BAG), "--check", "scenarios/default.yaml"]) == 2
    assert "need --bundle" in capsys.readouterr().err


def test_train_without_preset_or_resume_exits_2(capsys):
    assert main(["train"]) == 2
    assert "give --preset" in capsys.readouterr().err


def test_help_imports_neither_torch_nor_mujoco_nor_rclpy():
    """`legion --help` stays instant: the groups import their heavy dependencies inside `run_*` only."""
    code = (
        "import sys\nfrom legion_core.cli import build_parser, main\n"
        "for argv in (['--help'], ['bench', '--help'], ['replay', '--help']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "heavy = {'torch', 'mujoco', 'rclpy', 'sentence_transformers', 'metaworld'} & set(sys.modules)\n"
        "print('HEAVY', sorted(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert "HEAVY []" in out.stdout, out.stdout[-500:]


def test_python_dash_m_runs_legion():
    """The regression check's recorder and the record bench's publisher run as `python -m legion_core.cli`."""
    out = subprocess.run([sys.executable, "-m", "legion_core.cli", "record", "--help"], capture_output=True,
                         text=True, cwd=REPO)  # fmt: skip
    assert out.returncode == 0 and "usage: legion record" in out.stdout
    assert (
        subprocess.run([sys.executable, "-m", "legion_core.cli"], capture_output=True, cwd=REPO).returncode
        == 2
    )


@pytest.mark.parametrize(
    "argv",
    [["demo"], ["bench", "longhorizon", "models/legion-kuka"], ["bench", "transfer", "models/legion-kuka"],
     ["bench", "perception"], ["export", "runs/x", "-o", "models/y"]],
)  # fmt: skip
def test_every_evaluation_and_benchmark_takes_a_seed(argv):
    """Issue 18: a user re-checks any figure on placements of their choosing; without --seed, the card's."""
    args = build_parser().parse_args([*argv, "--seed", "7"])
    assert args.seed == 7
    assert build_parser().parse_args(argv).seed is None


def test_the_held_out_seed_is_the_cards():
    from legion_core.contracts.bundle import HELD_OUT_SEED, load
    from legion_core.tools.demo import DEFAULT_MODEL

    b = load(DEFAULT_MODEL)
    assert b.held_out_seed == HELD_OUT_SEED == 1  # the shipped card: "metaworld.MT1(env, seed=1)"
    assert f"seed={b.held_out_seed}" in b.contract["evaluation"]["placements"]
