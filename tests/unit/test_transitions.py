"""Verified skill-to-skill transitions (legion_core/contracts/transitions.py, issue 18 item 5): counted from
chains run through the graph, recorded in the bundle, and a plan over any other pair refused by the
grounder with the pair named."""

from __future__ import annotations

import shutil

import pytest

from legion_core.contracts.bundle import BundleError, load
from legion_core.contracts.transitions import (
    TransitionRecord,
    Transitions,
    parse_transitions,
    transitions_from_chains,
)
from legion_core.runtime import grounding as G
from legion_core.tools.demo import DEFAULT_MODEL

SKILLS = ["drawer-open", "button-press-topdown", "drawer-close"]
PLAN = ["drawer-open", "button-press-topdown", "drawer-close"]


def test_counts_from_chains_attempts_once_the_first_skill_succeeded():
    chains = [
        {"plan": PLAN, "step_durations_s": [12.0, 24.0, 15.0], "skill_starts_s": []},  # all three
        {
            "plan": PLAN,
            "step_durations_s": [12.0],
            "skill_starts_s": [[0, PLAN[0]], [12, PLAN[1]]],
        },  # 2nd failed
        {"plan": PLAN, "step_durations_s": [], "skill_starts_s": [[0, PLAN[0]]]},  # 1st failed: no transition
        {
            "plan": ["ready", *PLAN[:2]],
            "step_durations_s": [3.0, 12.0, 24.0],
        },  # the ready move is not counted
    ]
    recs = {
        (r.from_skill, r.to_skill): (r.attempts, r.successes) for r in transitions_from_chains(chains, "t")
    }
    assert recs == {
        ("drawer-open", "button-press-topdown"): (3, 2),
        ("button-press-topdown", "drawer-close"): (1, 1),
    }


def test_verified_needs_the_rate_over_pooled_sources():
    t = Transitions((TransitionRecord("a", "b", 10, 9, "run 1"), TransitionRecord("a", "b", 10, 8, "run 2"),
                     TransitionRecord("b", "c", 5, 5, "run 1")))  # fmt: skip
    assert t.verified() == {("b", "c")}  # a -> b: 17/20 = 0.85 < 0.9 pooled
    k, why = t.unverified_step(["a", "b", "c"])
    assert k == 1 and "a -> b" in why and "17 of 20" in why and "b -> c" in why
    assert t.unverified_step(["b", "c"]) is None and t.unverified_step(["a"]) is None
    again = t.merged([TransitionRecord("a", "b", 10, 10, "run 2")])  # re-run of the same source replaces it
    assert again.verified() == {("a", "b"), ("b", "c")}


@pytest.mark.parametrize(
    "section, field",
    [
        ([], "transitions"),
        ({"min_success": 1.5}, "transitions.min_success"),
        ({"evaluated": [{"from": "drawer-open", "to": "fly", "attempts": 1, "successes": 1}]},
         "transitions.evaluated[0].to"),
        ({"evaluated": [{"from": "drawer-open", "to": "drawer-close", "attempts": 2, "successes": 3}]},
         "transitions.evaluated[0]"),
    ],
)  # fmt: skip
def test_a_bad_section_is_refused_naming_the_field(section, field):
    with pytest.raises(BundleError) as e:
        parse_transitions(section, SKILLS)
    assert e.value.args[0].startswith(field) or field in str(e.value)
    assert "--record-transitions" in str(e.value)


def test_the_shipped_bundle_runs_only_its_verified_pairs():
    b = load(DEFAULT_MODEL)
    assert b.transitions.verified() == {
        ("drawer-open", "button-press-topdown"),
        ("button-press-topdown", "drawer-close"),
    }
    g = G.Grounder(G.skill_cards_from_bundle(b), transitions=b.transitions)
    assert g.ground("open the drawer, then press the button and close the drawer").skills == PLAN
    res = g.ground("open the drawer, then close the drawer")  # issue 18: 0/5 through the graph
    assert not res.ok and res.reason == "unverified" and res.failed_step == 2 and res.plan == []
    assert "drawer-open -> drawer-close" in res.refusal and "never evaluated" in res.refusal
    assert (
        G.Grounder(G.skill_cards_from_bundle(b)).ground("open the drawer, then close the drawer").ok
    )  # unchecked


def test_recording_adds_to_the_bundle_and_its_card(tmp_path):
    from legion_core.training.export import record_transitions

    d = tmp_path / "bundle"
    shutil.copytree(DEFAULT_MODEL, d)
    record_transitions(d, [TransitionRecord("drawer-open", "drawer-close", 5, 0, "issue 18 live graph")])
    b = load(d)
    assert ("drawer-open", "drawer-close") not in b.transitions.verified()
    k, why = b.transitions.unverified_step(["drawer-open", "drawer-close"])
    assert "0 of 5" in why
    card = (d / "MODEL_CARD.md").read_text()
    assert "| drawer-open -> drawer-close | 0/5 | no | issue 18 live graph |" in card
    assert b.weights_sha256 == load(DEFAULT_MODEL).weights_sha256  # weights untouched
