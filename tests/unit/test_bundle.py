"""Policy bundles: export -> load -> identical actions, and a clear error for every kind of damage."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import yaml

from legion_core.contracts import bundle as B
from legion_core.contracts.bundle_schema import WEIGHTS_FILE, BundleError
from legion_core.contracts.tasks import get_task
from legion_core.training.export import inspect_text, model_card
from tests.bundle_factory import make_tiny_bundle


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return make_tiny_bundle(tmp_path_factory.mktemp("run"), tmp_path_factory.mktemp("bundle") / "t")


def test_round_trip_same_actions_as_training_agent(exported):
    agent, emb, out = exported
    b = B.load(out)
    assert b.skill_names == ["reach", "drawer-close"]
    rng = np.random.default_rng(1)
    obs = rng.uniform([-0.5, 0.4, 0.0] * 4, [0.5, 1.0, 0.4] * 4, size=(200, 12)).astype(np.float32)
    for k, name in enumerate(b.skill_names):
        ours = b.policy(name).act(obs)
        ref = agent.act(obs, emb[k], deterministic=True)
        np.testing.assert_allclose(ours, ref, atol=1e-5)
        # batch-1 calls and named-field calls agree with the batch
        np.testing.assert_allclose(b.policy(name).act(obs[0]), ours[0], atol=1e-6)
        fields = b.layout.extract(obs[0].astype(np.float64))
        np.testing.assert_allclose(b.policy(name).act(fields), ours[0], atol=1e-5)
    # free-text embedding path: the skill's own embedding reproduces the skill
    np.testing.assert_allclose(
        b.policy(embedding=emb[1]).act(obs), b.policy("drawer-close").act(obs), atol=1e-6
    )


def test_contract_content_and_inspect(exported):
    _, _, out = exported
    b = B.load(out)
    c = b.contract
    assert c["observation"]["frame"] == "sim_world" and c["action"]["delta_xyz_scale_m_per_step"] == 0.01
    assert c["dpmm"]["K"] == 2 and len(c["dpmm"]["means"]) == 2
    assert c["skills"][1]["goal"] == get_task(c["skills"][1]["name"]).goal.to_dict()  # the registry's rule
    text = inspect_text(b)
    assert "drawer-close" in text and "legion12" in text
    assert "Demonstrations used" in model_card(b)
    with pytest.raises(KeyError, match="drawer-close"):
        b.policy("door-open")


def _copy(out, tmp_path):
    d = tmp_path / "b"
    shutil.copytree(out, d)
    return d


def _edit_contract(d, fn):
    c = yaml.safe_load((d / "bundle.yaml").read_text())
    fn(c)
    (d / "bundle.yaml").write_text(yaml.safe_dump(c))


def test_corrupted_weights_fail_on_hash(exported, tmp_path):
    d = _copy(exported[2], tmp_path)
    raw = bytearray((d / WEIGHTS_FILE).read_bytes())
    raw[-100] ^= 0xFF
    (d / WEIGHTS_FILE).write_bytes(bytes(raw))
    with pytest.raises(BundleError, match=r"files\.weights\.safetensors.*sha256 mismatch"):
        B.load(d)


def test_truncated_weights_fail_clearly(exported, tmp_path):
    d = _copy(exported[2], tmp_path)
    raw = (d / WEIGHTS_FILE).read_bytes()
    (d / WEIGHTS_FILE).write_bytes(raw[: len(raw) // 2])
    with pytest.raises(BundleError, match="weights.safetensors"):
        B.load(d)
    # even with hash checks off, a truncated file is refused, not half-loaded
    with pytest.raises(BundleError, match="cannot be read"):
        B.load(d, check_hashes=False)


def test_missing_field(exported, tmp_path):
    d = _copy(exported[2], tmp_path)
    _edit_contract(d, lambda c: c["action"].pop("delta_xyz_scale_m_per_step"))
    with pytest.raises(BundleError, match=r"action\.delta_xyz_scale_m_per_step.*missing.*Fix"):
        B.load(d)


def test_wrong_shape(exported, tmp_path):
    d = _copy(exported[2], tmp_path)
    _edit_contract(d, lambda c: c["network"].__setitem__("actor_hidden", 256))
    with pytest.raises(BundleError, match=r"weights\.actor\.l0\.weight.*shape"):
        B.load(d)


def test_unknown_format_version(exported, tmp_path):
    d = _copy(exported[2], tmp_path)
    _edit_contract(d, lambda c: c.__setitem__("format_version", 99))
    with pytest.raises(BundleError, match="format_version.*99"):
        B.load(d)


def test_missing_weights_and_not_a_bundle(exported, tmp_path):
    d = _copy(exported[2], tmp_path)
    (d / WEIGHTS_FILE).unlink()
    with pytest.raises(BundleError, match="missing"):
        B.load(d)
    with pytest.raises(BundleError, match="bundle.yaml.*not found"):
        B.load(tmp_path)
    with pytest.raises(BundleError, match="not a directory"):
        B.load(tmp_path / "nope")


def test_no_pickle_in_bundle(exported):
    _, _, out = exported
    for f in out.iterdir():
        assert f.suffix in (".yaml", ".safetensors", ".md"), f


# ------------------------------------------------------------------ the contract is the one the runtime runs
def _swap_obj_goal_slices(c):
    f = c["observation"]["fields"]
    f[1]["slice"], f[3]["slice"] = f[3]["slice"], f[1]["slice"]


def test_swapped_layout_slices_are_refused_naming_the_field(exported, tmp_path):
    """Finding 1: a bundle.yaml with obj_pos and goal_pos slices swapped was accepted (and `legion inspect`
    printed the swapped slices) while the nodes build observations with the built-in legion12 layout."""
    d = _copy(exported[2], tmp_path)
    _edit_contract(d, _swap_obj_goal_slices)
    with pytest.raises(BundleError, match=r"observation\.fields\[1\]\.slice.*\[3, 6\].*Fix") as e:
        B.load(d)
    assert e.value.field == "observation.fields[1].slice"
    assert "legion12" in str(e.value)


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda f: f[1].__setitem__("name", "goal_pos"), "observation.fields[1].name"),
        (lambda f: f[0].__setitem__("unit", "mm"), "observation.fields[0].unit"),
        (lambda f: f[3].__setitem__("frame", "robot_base"), "observation.fields[3].frame"),
        (lambda f: f[2].__setitem__("default", 1.0), "observation.fields[2].default"),
        (lambda f: f[1].__setitem__("default", 0.0), "observation.fields[1].default"),
        (lambda f: f.pop(), "observation.fields"),
    ],
)
def test_every_layout_field_is_checked_against_the_builtin(exported, tmp_path, edit, field):
    d = _copy(exported[2], tmp_path)
    _edit_contract(d, lambda c: edit(c["observation"]["fields"]))
    with pytest.raises(BundleError) as e:
        B.load(d)
    assert e.value.field == field, str(e.value)
    assert "built-in" in str(e.value) and "Fix" in str(e.value)


def test_layout_descriptions_are_prose_not_contract(exported, tmp_path):
    """Rewording a field's description changes nothing the runtime does; it is not refused."""
    d = _copy(exported[2], tmp_path)
    _edit_contract(d, lambda c: c["observation"]["fields"][0].__setitem__("description", "the hand"))
    assert B.load(d).layout.name == "legion12"


def test_shipped_bundle_layout_matches_the_builtin():
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[2] / "models" / "legion-kuka"
    if not shipped.exists():
        pytest.skip("no shipped bundle in this checkout")
    assert B.load(shipped, check_hashes=False).layout.name == "legion12"


def test_typed_sections_are_the_file(exported):
    """The nodes read the typed sections (bundle_schema); they carry exactly what bundle.yaml says."""
    b = B.load(exported[2])
    a = b.contract["action"]
    assert b.action.delta_xyz_scale_m_per_step == a["delta_xyz_scale_m_per_step"] == 0.01
    assert list(b.action.workspace_box_sim_m.low) == a["workspace_box_sim_m"]["low"]
    assert list(b.action.workspace_box_sim_m.high) == a["workspace_box_sim_m"]["high"]
    assert b.action.policy_step_s == a["policy_step_s"]
    assert b.network.to_dict() == b.contract["network"]
    assert (b.name, b.embodiment) == (b.contract["name"], b.contract["embodiment"])
    assert b.weights_sha256 == b.contract["files"][WEIGHTS_FILE]
    assert b.spec.to_dict() == b.contract
