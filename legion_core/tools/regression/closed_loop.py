"""The closed-loop check, `legion replay BAG --closed-loop --bundle DIR`: the recorded scene re-run in the
digital twin with the runtime, and the simulated outcome compared with the recorded one.

The twin only has Meta-World's 50 seeded placements per task (it cannot put objects at arbitrary poses),
so the closest placement is used and its distance reported; the simulated outcome (success, time to
success) is compared with the recorded one (/twin/success, if the bag has it: a real-robot bag has no
recorded success to compare)."""

from __future__ import annotations

import json
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from legion_core.contracts.interface import TOPIC_ACTION, TOPIC_ACTIVE_SKILL, TOPIC_STATUS, TOPIC_TWIN_SUCCESS
from legion_core.tools.bags.store import resolve_bag
from legion_core.tools.graph import SIM_GRAPH_NODES, GraphProcess, SimGraph, sim_graph_params
from legion_core.tools.regression.judge import Divergence, Judgement, fmt_values, json_default
from legion_core.tools.regression.scenario import Scenario, load_scenario
from legion_core.tools.regression.session import Session, read_session, skill_of


@dataclass
class ClosedLoopResult:
    judgements: list[Judgement]
    variation: int
    placement_distance_m: float
    recorded: dict
    simulated: dict

    @property
    def passed(self) -> bool:
        return all(j.passed for j in self.judgements)


def recorded_scene(rec: Session, skill: str, calibration) -> dict[str, np.ndarray]:
    """Object (and goal marker) positions in sim_world from the first detections after the skill started:
    camera -> sim through the calibration (marker origins, the twin's convention)."""
    from legion_core.contracts.tasks import get_task

    spec = get_task(skill)
    # Required: the object, and a marker goal. A static anchor (drawer_cabinet) is used when the bag has it
    # (bags recorded before anchor goals do not).
    labels = [spec.object_label] + ([spec.goal.marker_label] if spec.goal.kind == "marker" else [])
    optional = [spec.goal.marker_label] if spec.goal.kind == "anchor_offset" else []
    t_skill = next((t for t, s in rec.skills if s == skill), rec.start_ns)
    T = calibration.T_sim_camera
    found: dict[str, np.ndarray] = {}
    for t, dets in rec.detections:
        if t < t_skill:
            continue
        for label, p_cam, conf in dets:
            if label in labels + optional and label not in found and conf >= 0.5:
                found[label] = T.R @ p_cam + T.p
        if len(found) == len(labels) + len(optional):
            break
    if not set(labels) <= set(found):
        raise ValueError(
            f"the bag has no detection of {sorted(set(labels) - set(found))} after skill {skill!r} started"
        )
    return found


def closest_placement(
    skill: str, scene: dict[str, np.ndarray], calibration, seed: int = 0, train_scene: str | None = None
) -> tuple[int, float]:
    """The seeded Meta-World placement (0-49) whose object/goal positions are closest to `scene` (placed as
    in the multi-object scene `train_scene` when the bundle was trained in one)."""
    from legion_core.sim.factory import N_VARIATIONS
    from legion_core.sim.twin import DigitalTwin, TwinConfig

    twin = DigitalTwin(calibration, skill, 0, TwinConfig(seed=seed, scene=train_scene))
    best, best_d = 0, math.inf
    try:
        for v in range(N_VARIATIONS):
            twin.reset(skill, v)
            pts = twin._scene_points()
            d = math.sqrt(sum(float(np.sum((pts[k] - p) ** 2)) for k, p in scene.items() if k in pts))
            if d < best_d:
                best, best_d = v, d
    finally:
        twin.env.close()
    return best, best_d


def _outcome(s: Session, skill: str) -> dict:
    acts = [a for a in s.actions if a.skill == skill]
    t_first = acts[0].t_ns if acts else None
    succ = next((t for t, v in s.success if v), None)
    return {
        "has_success_topic": bool(s.success) or TOPIC_TWIN_SUCCESS in s.topics,
        "success": succ is not None,
        "time_to_success_s": round((succ - t_first) * 1e-9, 3)
        if succ is not None and t_first is not None
        else None,
        "actions": len(acts),
        "span_s": round((s.end_ns - (t_first or s.start_ns)) * 1e-9, 3) if s.end_ns else 0.0,
    }


def closed_loop(bag: str | Path, bundle: str | Path, *, calibration: str = "", scenario: str | Path | dict | Scenario | None = None,
                out_dir: str | Path | None = None, emit: Callable[[str], None] = print) -> ClosedLoopResult:  # fmt: skip
    """Re-run the recorded scene in the digital twin with the runtime and compare the outcome."""
    from legion_core.tools.bags.record import Recorder
    from legion_core.tools.ros_env import ensure_workspace
    from sim2real.calibration import load_calibration, sim_calibration

    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    cl = sc.closed_loop
    ensure_workspace()
    bag = resolve_bag(bag)
    out = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="legion_closed_loop_"))
    out.mkdir(parents=True, exist_ok=True)
    rec = read_session(bag)
    skill = skill_of(rec)
    if not skill:
        raise ValueError(f"{bag}: no active skill and no observation: cannot tell which task to simulate")
    cal = load_calibration(calibration) if calibration else sim_calibration()
    from legion_core.contracts.bundle import load as load_bundle

    train_scene = load_bundle(bundle).scene  # a bundle trained in a multi-object scene: place as there
    scene = recorded_scene(rec, skill, cal)
    variation, dist = closest_placement(skill, scene, cal, train_scene=train_scene)
    recorded = _outcome(rec, skill)
    run_s = float(cl["timeout_s"])
    if recorded["success"] and recorded["time_to_success_s"] is not None:
        run_s = min(
            run_s, recorded["time_to_success_s"] + float(cl["duration_tol_s"]) + float(cl["margin_s"])
        )
    elif recorded["span_s"]:
        run_s = min(run_s, recorded["span_s"] + float(cl["margin_s"]))
    extra: dict[str, Any] = {"policy.z_mode": sc.z_mode}
    if calibration:
        extra.update({f"{n}.calibration": calibration for n in ("twin", "real2sim", "sim2real")})
    extra.update({k: v for k, v in sc.runtime_params.items() if not k.endswith("use_sim_time")})
    params = sim_graph_params(str(Path(bundle).resolve()), skill, variation=variation, scene=train_scene or "",
                              skill=skill, extra=extra)  # fmt: skip
    sim_bag = out / f"closed-loop-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    # No observer node: the recorder below is this process's view of the graph (its bag is the output).
    graph = SimGraph(GraphProcess(SIM_GRAPH_NODES, params, out / f"{sim_bag.name}.log"), node_name=None,
                     stop_timeout_s=10.0).start()  # fmt: skip
    try:
        r = Recorder(sim_bag, [TOPIC_TWIN_SUCCESS, TOPIC_ACTION, TOPIC_STATUS, TOPIC_ACTIVE_SKILL],
                     require_topics=[TOPIC_ACTION], discovery_s=2.0)  # fmt: skip
        r.start()
        stop = threading.Event()
        t_first: list[float] = []

        def watch() -> None:
            # Run for run_s after the policy's first action, or until the twin reports success: /twin/success
            # is published on change only (False at start), so a second message means it became True.
            while not stop.is_set():
                st = r.stats.topics
                if not t_first and st.get(TOPIC_ACTION) and st[TOPIC_ACTION].received:
                    t_first.append(time.monotonic())
                if t_first and time.monotonic() - t_first[0] >= run_s:
                    break
                if st.get(TOPIC_TWIN_SUCCESS) and st[TOPIC_TWIN_SUCCESS].received >= 2:
                    time.sleep(0.2)
                    break
                if not graph.running or (not t_first and time.monotonic() - r.t_start > sc.startup_timeout_s):
                    break
                time.sleep(0.05)
            stop.set()

        threading.Thread(target=watch, daemon=True).start()
        r.run(stop_event=stop, ready_timeout_s=sc.startup_timeout_s)
    finally:
        graph.close()
    sim = _outcome(read_session(sim_bag), skill)
    j_scene = Judgement("closed_loop_scene", dist <= float(cl["placement_tol_m"]), checked=1,
                        metrics={"skill": skill, "variation": variation, "distance_m": round(dist, 4),
                                 "recorded_scene_sim_m": {k: fmt_values(v) for k, v in scene.items()},
                                 "placement_tol_m": float(cl["placement_tol_m"])},
                        note="the twin cannot place objects at arbitrary poses: the closest of the 50 seeded "
                             f"placements (variation {variation}, {dist * 1000:.1f} mm from the recorded scene) is used")  # fmt: skip
    j_scene.failed = int(not j_scene.passed)
    j_out = Judgement("closed_loop_outcome", True, checked=1, metrics={"recorded": recorded, "simulated": sim,
                                                                       "duration_tol_s": float(cl["duration_tol_s"])})  # fmt: skip
    if sim["actions"] == 0:
        j_out.passed, j_out.note = False, "the runtime never acted in the twin"
    elif not recorded["has_success_topic"]:
        j_out.note = (
            "the bag has no /twin/success (a real-robot session): simulated outcome reported, not compared"
        )
    elif recorded["success"] != sim["success"]:
        j_out.passed = False
        j_out.note = f"recorded success {recorded['success']} but simulated {sim['success']}"
    elif recorded["success"] and abs(recorded["time_to_success_s"] - sim["time_to_success_s"]) > float(
        cl["duration_tol_s"]
    ):
        j_out.passed = False
        j_out.note = (
            f"time to success {sim['time_to_success_s']} s vs recorded {recorded['time_to_success_s']} s"
        )
    j_out.failed = int(not j_out.passed)
    if not j_out.passed:
        j_out.first_divergence = Divergence(None, 0.0, 0, j_out.note)
    res = ClosedLoopResult([j_scene, j_out], variation, dist, recorded, sim)
    lines = [json.dumps(j.to_dict(), default=json_default) for j in res.judgements]
    lines.append(json.dumps({"summary": True, "closed_loop": True, "passed": res.passed, "sim_bag": str(sim_bag),
                             "failed": [j.name for j in res.judgements if not j.passed]}))  # fmt: skip
    (out / "closed_loop.jsonl").write_text("\n".join(lines) + "\n")
    for ln in lines:
        emit(ln)
    return res
