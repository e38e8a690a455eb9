"""The shipped model in models/: its card is honest (the numbers it states come from the bundle's own
evaluation and meet the bar), it still performs in simulation, and it runs a skill to success through the
whole ROS 2 sim graph on the digital twin."""

from __future__ import annotations

import pytest

from legion_core.contracts.bundle import load
from legion_core.tools.demo import DEFAULT_MODEL, evaluate_bundle_table, run_graph_skill

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def bundle():
    return load(DEFAULT_MODEL)


def test_card_is_complete_and_every_shipped_skill_meets_the_bar(bundle):
    card = (DEFAULT_MODEL / "MODEL_CARD.md").read_text()
    p = bundle.contract["provenance"]
    for needle in ("legion train --preset", "Env steps", "wall time", "Demonstrations used", "Seed"):
        assert needle in card, needle
    assert p["env_steps"] > 0 and p["wall_time_s"] > 0
    ev = bundle.contract["evaluation"]
    assert ev["episodes_per_skill"] >= 50
    for skill in bundle.skill_names:
        assert ev["success"][skill] >= 0.9, f"{skill}: {ev['success'][skill]} < 0.9 — do not ship weak skills"
        assert f"| {skill} |" in card


def test_skills_still_succeed_in_simulation(bundle):
    """A quick re-check on 5 of the card's held-out placements (its 50-episode figure is the reference)."""
    for r in evaluate_bundle_table(DEFAULT_MODEL, episodes=5):
        assert r.successes >= 4, f"{r.task}: {r.successes}/5"


@pytest.mark.ros
def test_a_skill_runs_to_success_on_the_twin_through_the_ros_graph(bundle, tmp_path):
    skill = bundle.skill_names[0]
    res = run_graph_skill(DEFAULT_MODEL, skill, variation=1, out_dir=tmp_path, timeout_s=90.0, record=False)
    assert res["success"], res
    assert res["policy_actions"] > 10
    assert res["graph_exit_code"] == 0
