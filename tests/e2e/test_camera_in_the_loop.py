"""Camera perception in the loop, end to end (docs/perception.md): the twin renders its camera, perception_node
(a process of its own) turns the frames into detections, real2sim and the rest of the graph act on them; no
simulator-state detection exists in this graph.

- a skill runs to success on detections from rendered images alone;
- a camera that stops delivering (the perception process frozen, as a hung driver or detector) makes the
  object stale within real2sim's `max_object_age_s`, the arm holds with that reason, and it moves again
  when frames come back.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

from legion_core.contracts.bundle import load
from legion_core.tools.demo import DEFAULT_MODEL
from legion_core.tools.graph import PERCEPTION_CAMERA
from legion_core.tools.longhorizon import ChainRunner

pytestmark = [pytest.mark.e2e, pytest.mark.ros]

PLACEMENT = 3  # a held-out scene (eval seed 1), as in test_long_horizon.py


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    if not load(DEFAULT_MODEL).scene:
        pytest.skip(f"{DEFAULT_MODEL} was not trained in a multi-object scene")
    r = ChainRunner(
        DEFAULT_MODEL, tmp_path_factory.mktemp("camera_loop") / "graph.log", perception=PERCEPTION_CAMERA
    )
    yield r
    assert r.close() == 0, "the graph did not shut down cleanly"


def _motion_rad(q_log, t0: float, t1: float) -> float:
    qs = [q for t, q in q_log if t0 <= t <= t1]
    return float(np.max(np.ptp(np.stack(qs), axis=0))) if len(qs) > 1 else 0.0


def test_a_skill_succeeds_on_detections_from_rendered_images(runner):
    assert runner.reset_scene(PLACEMENT)
    res = runner.run("open the drawer", PLACEMENT, timeout_s=120.0)
    assert res.success, res.to_dict()
    assert res.plan == ["drawer-open"] and res.policy_actions > 30
    runner.spin(0.5)
    assert runner.object_joints["goal_slidey"] < -0.05, runner.object_joints  # physically pulled out


def test_a_frozen_camera_holds_the_arm_until_frames_come_back(runner):
    """The perception process is stopped (SIGSTOP) 4 s into the skill for 4 s: from 1.5 s after the freeze
    (real2sim's 0.5 s age bound, the last frame's own age and the hold) to its end the arm is still, the
    hold names the stale object, and the skill still succeeds once frames come back."""
    perception = runner.graph.procs[1]
    assert runner.reset_scene(PLACEMENT)
    window: dict[str, float] = {}

    def freeze() -> None:
        time.sleep(4.0)
        window["stop"] = time.monotonic()
        os.killpg(perception.pid, signal.SIGSTOP)
        time.sleep(4.0)
        window["cont"] = time.monotonic()
        os.killpg(perception.pid, signal.SIGCONT)

    t = threading.Thread(target=freeze, daemon=True)
    t.start()
    try:
        res = runner.run("open the drawer", PLACEMENT, timeout_s=120.0)
    finally:
        t.join(10.0)
        os.killpg(perception.pid, signal.SIGCONT)  # never leave it stopped
    assert "cont" in window, "the skill ended before the camera was frozen"
    moved = _motion_rad(runner.q_log, window["stop"] + 1.5, window["cont"])
    assert moved < 0.005, f"the arm moved {moved:.4f} rad while no frame arrived"
    assert any("stale" in h for h in runner.seen.holds), runner.seen.holds[-10:]
    assert res.success, res.to_dict()
