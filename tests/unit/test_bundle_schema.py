"""The bundle schema (legion_core/contracts/bundle_schema.py): every key `legion export` writes is a schema key,
the shipped bundles parse unchanged, and every validation error names the field and the fix."""

from __future__ import annotations

import copy
import dataclasses
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from legion_core.contracts import bundle as B
from legion_core.contracts.bundle_schema import (
    CONTRACT_FILE,
    CONTRACT_HEADER,
    ActionSpec,
    BundleContract,
    BundleError,
    BundleSkill,
    LanguageModelSpec,
    NetworkSpec,
    ObservationSpec,
    WorkspaceBox,
    parse_contract,
    unknown_keys,
)
from tests.bundle_factory import make_tiny_bundle

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p for p in (REPO / "models").glob("legion-kuka*") if (p / CONTRACT_FILE).exists())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(run_dir, agent, bundle_dir) of a tiny bundle written by the export path."""
    run = tmp_path_factory.mktemp("run")
    agent, _, out = make_tiny_bundle(run, tmp_path_factory.mktemp("bundle") / "t")
    return run, agent, out


@pytest.fixture
def raw(tiny) -> dict:
    """A fresh copy of the tiny bundle's bundle.yaml mapping, to damage."""
    return yaml.safe_load((tiny[2] / CONTRACT_FILE).read_text())


def _raises(c: dict, field: str) -> BundleError:
    with pytest.raises(BundleError) as e:
        parse_contract(c)
    assert e.value.field == field, str(e.value)
    assert f"bundle field '{field}'" in str(e.value) and "Fix: " in str(e.value)
    return e.value


# ----------------------------------------------------------------------------- written keys = schema keys
def _assert_keys_are_the_schema(c: dict) -> None:
    """Every section holds exactly the schema's keys, in the schema's order (keys the schema leaves out while
    they have no value may be absent)."""
    sections = [
        (c, BundleContract),
        (c["observation"], ObservationSpec),
        (c["action"], ActionSpec),
        (c["action"]["workspace_box_sim_m"], WorkspaceBox),
        (c["network"], NetworkSpec),
        (c["language_model"], LanguageModelSpec),
        *[(s, BundleSkill) for s in c["skills"]],
    ]
    for d, section in sections:
        schema = section.yaml_keys()
        assert set(d) <= set(schema), f"{section.__name__}: keys not in the schema {set(d) - set(schema)}"
        assert list(d) == [k for k in schema if k in d], (
            f"{section.__name__}: key order differs from the schema"
        )
    assert unknown_keys(c) == []


def test_export_writes_exactly_the_schema_keys(tiny, raw):
    _assert_keys_are_the_schema(raw)
    # Before the evaluation only the two evaluation sections are absent (and the transitions, which the
    # long-horizon bench records later); every other key is written.
    assert [k for k in BundleContract.yaml_keys() if k not in raw] == ["evaluation", "transitions"]
    for s in raw["skills"]:
        assert [k for k in BundleSkill.yaml_keys() if k not in s] == ["evaluation"]
    assert set(raw["action"]) == set(ActionSpec.yaml_keys())
    assert set(raw["observation"]) == set(ObservationSpec.yaml_keys())
    assert (tiny[2] / CONTRACT_FILE).read_text().startswith(CONTRACT_HEADER)


def test_export_run_round_trips_through_the_schema(tiny, tmp_path, monkeypatch):
    """The full `legion export` path (evaluation replaced by fixed results): every key is a schema key, and
    a re-export of the same run writes the same bundle.yaml, key for key and value for value."""
    import legion_core.training.export as E

    run, agent, _ = tiny
    r = tmp_path / "run"
    shutil.copytree(run, r)
    (r / "checkpoint").mkdir(exist_ok=True)
    agent.save(r / "checkpoint" / "agent.pt")
    monkeypatch.setattr(
        E,
        "evaluate",
        lambda names, *a, **k: [
            SimpleNamespace(task=n, success_rate=0.5, mean_first_success_step=7.0) for n in names
        ],
    )
    texts = []
    for out in (tmp_path / "a" / "m", tmp_path / "b" / "m"):
        E.export_run(r, out, eval_episodes=1, progress=False)
        texts.append(re.sub(r"created_utc: .*", "created_utc: X", (out / CONTRACT_FILE).read_text()))
        c = yaml.safe_load((out / CONTRACT_FILE).read_text())
        _assert_keys_are_the_schema(c)
        assert set(c) == set(BundleContract.yaml_keys()) - {"transitions"}  # recorded later, by the bench
        assert all(set(s) == set(BundleSkill.yaml_keys()) for s in c["skills"])
        assert c["evaluation"]["success"] == {"reach": 0.5, "drawer-close": 0.5}
        assert parse_contract(c).to_dict() == c
    assert texts[0] == texts[1]


# --------------------------------------------------------------------------------------- shipped bundles
@pytest.mark.skipif(not SHIPPED, reason="no shipped bundle in this checkout")
@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_bundles_parse_unchanged(path):
    c = yaml.safe_load((path / CONTRACT_FILE).read_text())
    spec = parse_contract(c)
    assert unknown_keys(c) == []
    # The typed sections hold the whole file: writing them back gives the same mapping.
    assert spec.to_dict() == c
    b = B.load(path, check_hashes=False)
    box = c["action"]["workspace_box_sim_m"]
    assert b.action.workspace_box_sim_m.low == tuple(box["low"])
    assert b.action.workspace_box_sim_m.high == tuple(box["high"])
    assert b.action.delta_xyz_scale_m_per_step == c["action"]["delta_xyz_scale_m_per_step"]
    assert b.action.policy_step_s == c["action"]["policy_step_s"]
    assert b.embodiment == c["embodiment"] and b.name == c["name"]
    assert b.network.obs_dim == c["network"]["obs_dim"] == b.layout.dim
    assert b.weights_sha256 == c["files"]["weights.safetensors"]
    assert [s.name for s in spec.skills] == b.skill_names
    assert b.skills[b.skill_names[0]].max_episode_steps == c["skills"][0]["max_episode_steps"]


def test_typed_sections_are_frozen(tiny):
    b = B.load(tiny[2])
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.action.policy_step_s = 1.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.action.workspace_box_sim_m.low = (0.0, 0.0, 0.0)  # type: ignore[misc]


# -------------------------------------------------------------------------------- unknown and missing keys
def test_unknown_keys_are_ignored_and_listed(raw, tiny, tmp_path):
    raw["exporter_note"] = "added by a newer exporter"
    raw["action"]["max_speed_hint_m_s"] = 0.2
    raw["skills"][1]["color"] = "red"
    spec = parse_contract(raw)
    assert spec.action.dim == 4
    assert unknown_keys(raw) == ["exporter_note", "action.max_speed_hint_m_s", "skills[1].color"]
    # ...and a bundle with them loads as before (unsigned: nothing vouches for the file either way).
    d = tmp_path / "b"
    shutil.copytree(tiny[2], d)
    (d / CONTRACT_FILE).write_text(yaml.safe_dump(raw, sort_keys=False))
    assert B.load(d).action.workspace_box_sim_m == spec.action.workspace_box_sim_m


REQUIRED = [
    ("format",),
    ("format_version",),
    ("observation",),
    ("observation", "layout"),
    ("observation", "dim"),
    ("observation", "frame"),
    ("observation", "fields"),
    ("action",),
    ("action", "dim"),
    ("action", "delta_xyz_scale_m_per_step"),
    ("action", "workspace_box_sim_m"),
    ("action", "workspace_box_sim_m", "low"),
    ("action", "workspace_box_sim_m", "high"),
    ("action", "policy_step_s"),
    ("embodiment",),
    ("network",),
    *[("network", k) for k in NetworkSpec.yaml_keys()],
    ("language_model",),
    ("language_model", "id"),
    ("skills",),
    *[("skills", 1, k) for k in ("name", "descriptions", "embedding_sha256", "object_label", "goal")],
    ("skills", 1, "max_episode_steps"),
    ("files",),
    ("files", "weights.safetensors"),
]


def _dotted(path: tuple) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out


@pytest.mark.parametrize("path", REQUIRED, ids=_dotted)
def test_each_missing_key_is_named(raw, path):
    d = raw
    for p in path[:-1]:
        d = d[p]
    del d[path[-1]]
    e = _raises(raw, _dotted(path))
    assert "missing" in str(e)


WRONG_TYPE = [
    (("format_version",), "1"),
    (("observation",), ["legion12"]),
    (("observation", "dim"), 12.0),
    (("action", "dim"), "4"),
    (("action", "delta_xyz_scale_m_per_step"), "0.01"),
    (("action", "workspace_box_sim_m"), [0, 1]),
    (("action", "workspace_box_sim_m", "low"), "(-0.5, 0.4, 0.05)"),
    (("action", "policy_step_s"), None),
    (("embodiment",), 7),
    (("network", "actor_hidden"), 300.0),
    (("language_model", "id"), None),
    (("skills",), {"reach": {}}),
    (("skills", 0, "descriptions"), "reach the goal"),
    (("skills", 0, "max_episode_steps"), "500"),
    (("skills", 1, "goal"), "anchor_offset"),
    (("files", "weights.safetensors"), 0),
]


@pytest.mark.parametrize(("path", "value"), WRONG_TYPE, ids=[_dotted(p) for p, _ in WRONG_TYPE])
def test_each_wrong_type_is_named(raw, path, value):
    d = raw
    for p in path[:-1]:
        d = d[p]
    d[path[-1]] = value
    e = _raises(raw, _dotted(path))
    assert "expected" in str(e)


def test_integers_are_accepted_where_metres_and_seconds_are_floats(raw):
    raw["action"]["policy_step_s"] = 1
    spec = parse_contract(raw)
    assert spec.action.policy_step_s == 1.0 and isinstance(spec.action.policy_step_s, float)


# ---------------------------------------------------------------------------------- implausible values
@pytest.mark.parametrize(
    ("edit", "field", "says"),
    [
        (lambda c: c.__setitem__("format", "onnx"), "format", "not a LEGION policy bundle"),
        (lambda c: c.__setitem__("format_version", 2), "format_version", "reads version 1"),
        (lambda c: c["observation"].__setitem__("layout", "legion99"), "observation.layout", "unknown layout"),
        (lambda c: c["observation"].__setitem__("dim", 13), "observation.dim", "does not match layout"),
        (lambda c: c["observation"].__setitem__("name", "mw39"), "observation.name", "observation.layout is"),
        (lambda c: c["observation"].__setitem__("frame", "robot_base"), "observation.frame", "sim_world"),
        (lambda c: c["action"].__setitem__("delta_xyz_scale_m_per_step", 0.5), "action.delta_xyz_scale_m_per_step",
         "implausible"),
        (lambda c: c["action"].__setitem__("delta_xyz_scale_m_per_step", 0.0), "action.delta_xyz_scale_m_per_step",
         "implausible"),
        (lambda c: c["action"]["workspace_box_sim_m"].__setitem__("low", [0.0, 2.0, 0.0]),
         "action.workspace_box_sim_m", "low < high"),
        (lambda c: c["action"]["workspace_box_sim_m"].__setitem__("high", [0.5, 1.0]),
         "action.workspace_box_sim_m", "3 values"),
        (lambda c: c["action"]["workspace_box_sim_m"].__setitem__("high", ["far", 1.0, 0.5]),
         "action.workspace_box_sim_m", "3 values"),
        (lambda c: c["action"]["workspace_box_sim_m"].__setitem__("high", [0.5, float("nan"), 0.5]),
         "action.workspace_box_sim_m", "low < high"),
        (lambda c: c.__setitem__("skills", []), "skills", "is empty"),
        (lambda c: c["skills"].__setitem__(0, "reach"), "skills[0].name", "missing"),
    ],
)  # fmt: skip
def test_each_implausible_value_is_named(raw, edit, field, says):
    edit(raw)
    assert says in str(_raises(raw, field))


def test_not_a_mapping():
    for c in (None, [], "format: legion-bundle"):
        _raises(c, "bundle.yaml")


def test_the_first_problem_in_file_order_is_reported(raw):
    """Errors come in the order the old loader checked them, so each message stays the one users know."""
    bad = copy.deepcopy(raw)
    del bad["action"]["policy_step_s"]
    del bad["network"]["obs_dim"]
    _raises(bad, "action.policy_step_s")


def test_write_bundle_refuses_what_load_would_refuse(tiny, tmp_path):
    """An export never leaves a bundle.yaml that the robot PC refuses: the schema checks before writing."""
    from legion_core.training.export import write_bundle

    b = B.load(tiny[2])
    box = WorkspaceBox(low=(0.0, 1.0, 0.0), high=(0.5, 0.5, 0.5))
    bad = dataclasses.replace(b.spec, action=dataclasses.replace(b.spec.action, workspace_box_sim_m=box))
    with pytest.raises(BundleError, match=r"action\.workspace_box_sim_m.*low < high"):
        write_bundle(tmp_path / "x", bad, b.weights)
    assert not (tmp_path / "x" / CONTRACT_FILE).exists()
