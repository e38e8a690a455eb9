"""Observation layouts: named fields, slices, units, building from named values."""

from __future__ import annotations

import numpy as np
import pytest

from legion_core.contracts.layouts import LEGION12, MW39, LayoutError, convert, get_layout


def test_legion12_contract():
    assert LEGION12.dim == 12
    assert LEGION12.slice("hand_pos") == slice(0, 3)
    assert LEGION12.slice("obj_pos") == slice(3, 6)
    assert LEGION12.slice("goal_pos") == slice(9, 12)
    d = LEGION12.to_dict()
    assert d["fields"][0]["unit"] == "m" and d["fields"][0]["frame"] == "sim_world"


def test_mw39_matches_metaworld_indices():
    assert MW39.dim == 39
    assert MW39.slice("hand_pos") == slice(0, 3)
    assert MW39.slice("gripper_open") == slice(3, 4)
    assert MW39.slice("obj_pos") == slice(4, 7)
    assert MW39.slice("prev_hand_pos") == slice(18, 21)
    assert MW39.slice("goal_pos") == slice(36, 39)


def test_build_from_named_fields_and_errors():
    v = LEGION12.build({"hand_pos": [0, 0.6, 0.2], "obj_pos": [0.1, 0.7, 0.02], "goal_pos": [0, 0.8, 0.1]})
    np.testing.assert_allclose(v, [0, 0.6, 0.2, 0.1, 0.7, 0.02, 0, 0, 0, 0, 0.8, 0.1])
    with pytest.raises(LayoutError, match="goal_pos"):
        LEGION12.build({"hand_pos": [0, 0, 0], "obj_pos": [0, 0, 0]})
    with pytest.raises(LayoutError, match="hand_pos.*3"):
        LEGION12.build({"hand_pos": [0, 0], "obj_pos": [0, 0, 0], "goal_pos": [0, 0, 0]})
    with pytest.raises(LayoutError, match="not finite"):
        LEGION12.build({"hand_pos": [np.nan, 0, 0], "obj_pos": [0, 0, 0], "goal_pos": [0, 0, 0]})
    with pytest.raises(LayoutError, match="unknown"):
        LEGION12.build({"hand": [0, 0, 0]})
    with pytest.raises(LayoutError, match="legion12"):
        get_layout("legion13")


def test_convert_mw39_to_legion12_from_a_real_observation():
    from legion_core.sim.factory import TaskEnv

    env = TaskEnv("drawer-close", "sawyer")
    obs = env.reset(0)
    v = convert(obs, MW39, LEGION12)
    np.testing.assert_array_equal(v[0:3], obs[0:3])
    np.testing.assert_array_equal(v[3:6], obs[4:7])
    np.testing.assert_array_equal(v[9:12], obs[36:39])
    np.testing.assert_array_equal(env.observe("legion12"), v)
    env.close()
