"""Multi-object scenes: the training placements of a scene, and the twin's one-world version of it.

Real MuJoCo, real Meta-World task code: each skill's object sits where the scene puts it, the scripted
experts still solve every skill there from the random hand starts, the composite world holds all objects
without overlap, and the twin's detections give each skill the point its training observation used.
"""

from __future__ import annotations

import numpy as np
import pytest

from legion_core.contracts.scenes import SCENES, get_scene
from legion_core.contracts.tasks import get_task
from legion_core.sim.factory import TaskEnv, run_episode, scripted_expert, seeded_placement

SCENE = "drawer-button"


def test_unknown_scene_names_the_known_ones():
    with pytest.raises(KeyError, match="drawer-button"):
        get_scene("kitchen")


def test_scene_moves_placements_and_randomizes_the_hand_start():
    sc = get_scene(SCENE)
    for task in sc.tasks:
        plain, moved = TaskEnv(task, "kuka", seed=1), TaskEnv(task, "kuka", seed=1, scene=SCENE)
        for v in range(3):
            o_plain, o_moved = plain.reset(v), moved.reset(v)
            np.testing.assert_allclose(moved.env.obj_init_pos[:2] - plain.env.obj_init_pos[:2],
                                       sc.offset_of(task)[:2], atol=1e-6)  # fmt: skip
            hand = sc.hand_start(1, v, task)
            assert any(np.all(hand >= lo) and np.all(hand <= hi) for lo, hi in sc.start_boxes(task))
            np.testing.assert_allclose(moved.env.hand_init_pos, hand)
            assert np.linalg.norm(o_moved[:3] - o_plain[:3]) > 1e-3  # the hand starts elsewhere too
        # Deterministic per (seed, variation): a resumed run or a re-evaluation sees the same start.
        np.testing.assert_allclose(sc.hand_start(1, 2, task), sc.hand_start(1, 2, task))
    # A skill never starts inside its own object's hand-over box, and every other object's box is used.
    for task in sc.tasks:
        own = sc.object_of(task)
        starts = np.array([sc.hand_start(0, v, task) for v in range(200)])
        inside_own = np.all((starts >= own.end_low_m) & (starts <= own.end_high_m), axis=1)
        assert not inside_own.any()
        for o in sc.objects:
            if o is not own:
                assert np.all((starts >= o.end_low_m) & (starts <= o.end_high_m), axis=1).sum() > 50
        plain.close()
        moved.close()


@pytest.mark.slow
@pytest.mark.parametrize("task", SCENES[SCENE].tasks)
def test_scripted_experts_solve_every_skill_where_the_scene_puts_it(task):
    env = TaskEnv(task, "kuka", seed=1, scene=SCENE)
    ok = sum(run_episode(env, scripted_expert(task), v).success for v in range(10))
    env.close()
    assert ok >= 9, f"{task}: expert {ok}/10 in scene {SCENE}"


@pytest.fixture(scope="module")
def twin():
    from legion_core.sim.twin import DigitalTwin, TwinConfig
    from sim2real.calibration import sim_calibration

    t = DigitalTwin(sim_calibration(), SCENE, 0, TwinConfig(seed=1))
    yield t
    t.close()


def test_twin_builds_one_world_with_every_object_apart(twin):
    import mujoco

    sc = get_scene(SCENE)
    m, d = twin.env.env.model, twin.env.env.data
    for v in range(5):
        twin.reset(SCENE, v)
        pts = twin._scene_points()
        anchors = {
            get_task(t).goal.marker_label for t in sc.tasks if get_task(t).goal.kind == "anchor_offset"
        }
        assert set(pts) == {get_task(t).object_label for t in sc.tasks} | anchors  # drawer_cabinet too
        for o, body in zip(sc.objects, twin._scene_bodies, strict=True):
            want = seeded_placement(get_task(o.tasks[0]).env_name, 1, v)[:2] + np.asarray(o.offset_m[:2])
            np.testing.assert_allclose(m.body(body).pos[:2], want, atol=1e-6)
        # No contact between two scene objects' bodies (the table and the arm aside).
        mujoco.mj_forward(m, d)
        roots = {m.body(b).id for b in twin._scene_bodies}
        for c in d.contact[: d.ncon]:
            r1, r2 = m.body_rootid[m.geom_bodyid[c.geom1]], m.body_rootid[m.geom_bodyid[c.geom2]]
            assert not (r1 in roots and r2 in roots and r1 != r2), f"objects touch in placement {v}"
        np.testing.assert_allclose(twin.hand_pos_sim(), sc.hand_start(1, v), atol=0.02)
    assert set(twin.object_joints()) == {"goal_slidey", "btnbox_joint"}


def test_twin_detections_give_each_skill_its_training_observation(twin):
    """Every skill's object point, rebuilt the way real2sim does it (label point + the task's offset), is the
    point that skill's own Meta-World env observes for the same placement in the same scene."""
    for task in get_scene(SCENE).tasks:
        spec = get_task(task)
        twin.reset(SCENE, 2)
        twin.advance(0.05)
        label_pt = twin._scene_points()[spec.object_label]
        env = TaskEnv(task, "kuka", seed=1, scene=SCENE, control_mode="joint_position")
        env.reset(2)
        obs, *_ = env.step(np.zeros(4))
        if task == "drawer-close":  # starts with the drawer pulled out; the twin's scene starts it closed
            want = env.env.get_body_com("drawer_link") + np.array([0.0, -0.16, 0.05])
            shift = np.array([0.0, -env.env.maxDist, 0.0])
            np.testing.assert_allclose(spec.object_point(label_pt) + shift, want, atol=0.01)
        else:
            np.testing.assert_allclose(spec.object_point(label_pt), obs[4:7], atol=0.01)
        env.close()
