"""`legion demo` / `make demo`: the main job.

With a shipped model in models/:
1. evaluate each skill of the bundle on the KUKA embodiment in simulation (numpy inference path), print
   the success table;
2. launch the sim-in-the-loop ROS 2 graph (twin + real2sim + policy + sim2real) with the bundle, run one
   skill from start to success on the digital twin, print what happened (timeline), record an MCAP bag
   of the run and write a video; exit 0 on success. For a bundle trained in a multi-object scene
   the graph also runs the task sequencer and the job is a long-horizon command from text to success
   ("open the drawer, then press the button and close the drawer"), with the plan and each step's timing.
Without a model, it falls back to evaluating Meta-World's scripted experts on the KUKA embodiment.
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

from legion_core.tools.ros_env import REPO

DEFAULT_MODEL = REPO / "models" / "legion-kuka"


def evaluate_bundle_table(bundle_path: Path, episodes: int, seed: int | None = None) -> list:
    """The model card's evaluation, on placements `seed` (None: the bundle's held-out seed, the card's)."""
    from legion_core.contracts.bundle import load
    from legion_core.training.evaluation import evaluate

    b = load(bundle_path)
    seed = b.held_out_seed if seed is None else seed
    return evaluate(
        b.skill_names, b.embodiment, policy_factory=lambda s: b.policy_fn(s.name),
        layout=b.layout.name, episodes=episodes, seed=seed, first_variation=0, progress=False, scene=b.scene,
    )  # fmt: skip


def run_graph_skill(bundle_path: Path, skill: str, variation: int, out_dir: Path, timeout_s: float = 90.0,
                    record: bool = True, seed: int | None = None) -> dict:  # fmt: skip
    """Launch the sim graph, run `skill` until the twin reports success (or timeout)."""
    from legion_core.contracts.bundle import load
    from legion_core.tools.graph import (
        SIM_GRAPH_NODES,
        VIDEO_STOP_TIMEOUT_S,
        WATCH_ACTIONS,
        WATCH_STATUS,
        WATCH_TWIN_SUCCESS,
        GraphProcess,
        SimGraph,
        sim_graph_params,
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    video = out_dir / f"demo_{skill}.mp4"
    b = load(bundle_path)
    params = sim_graph_params(
        bundle_path, skill, variation=variation,
        seed=b.held_out_seed if seed is None else seed,  # default: the held-out placements of the card
        scene=b.scene or "",  # placed as in the bundle's training scene
        video_path=video,
    )  # fmt: skip
    graph = SimGraph(GraphProcess(SIM_GRAPH_NODES, params, out_dir / "graph.log"), node_name="legion_demo",
                     watch=(WATCH_TWIN_SUCCESS, WATCH_ACTIONS, WATCH_STATUS),
                     stop_timeout_s=VIDEO_STOP_TIMEOUT_S)  # fmt: skip
    bag = out_dir / "demo_session"
    with graph:
        t0, seen = graph.started_at, graph.seen
        activated = 0.0
        with _recording(bag if record else None) as rec_stats:
            # Wait for the graph (discovery) before activating the skill: the latched topic reaches late
            # joiners too.
            graph.wait_for_skill_subscribers(2, 60.0)
            graph.activate_skill(skill)
            activated = time.monotonic() - t0
            graph.spin_until(lambda: seen.twin_success_at is not None, timeout_s)
            # A moment after success so the video shows it, then shut everything down cleanly.
            graph.spin(1.0, step_s=0.05)
    # In the order they happened.
    events = {"skill activated": activated}
    if seen.first_action_at is not None:
        events["first action"] = seen.first_action_at - t0
    if seen.twin_success_at is not None:
        events["success"] = seen.twin_success_at - t0
    events = dict(sorted(events.items(), key=lambda kv: kv[1]))
    return {
        "skill": skill,
        "variation": variation,
        "success": seen.twin_success_at is not None,
        "events_s": events,
        "policy_actions": seen.actions,
        "safety_holds": seen.holds[:10],
        "video": str(video) if video.exists() else None,
        "bag": str(bag) if bag.exists() else None,
        "record": rec_stats.get("stats"),
        "graph_exit_code": graph.exit_code,
        "graph_log": str(out_dir / "graph.log"),
    }


@contextlib.contextmanager
def _recording(bag: Path | None):
    """Record the graph's topics to the MCAP bag `bag` (None: not recorded) on a thread while the block
    runs; yields the dict that receives the recorder's statistics ("stats") when it stops."""
    stats: dict = {}
    try:
        from legion_core.tools.bags.record import record
    except ImportError:  # the demo runs without its bag where the recorder's libraries are missing
        bag = None
    if bag is None:
        yield stats
        return

    stop = threading.Event()
    thread = threading.Thread(target=lambda: stats.update(stats=record(bag, stop_event=stop)), daemon=True)
    thread.start()
    try:
        yield stats
    finally:
        stop.set()
        thread.join(20)


def run_demo(model: Path | None, skill: str | None, episodes: int, out_dir: Path, variation: int = 0,
             perception: str = "ground_truth", seed: int | None = None) -> int:  # fmt: skip
    model = Path(model) if model else DEFAULT_MODEL
    if not (model / "bundle.yaml").exists():
        print(f"no shipped model at {model}: falling back to the scripted-expert demo")
        return -1
    from legion_core.contracts.bundle import load

    b = load(model)
    print(f"LEGION demo with {b.name} ({', '.join(b.skill_names)}) on the KUKA iiwa 7\n")
    seed = b.held_out_seed if seed is None else seed
    which = "held-out placements (the card's)" if seed == b.held_out_seed else f"placements of seed {seed}"
    print(f"[1/2] each skill in simulation, {episodes} {which}, deterministic policy:")
    for r in evaluate_bundle_table(model, episodes, seed):
        print(f"    {r.task:24s} {r.successes:2d}/{r.episodes}")
    if b.scene and not skill:
        return _run_demo_chain(model, b.scene, out_dir, variation, perception, seed)
    if perception != "ground_truth":
        print(f"camera perception runs with the long-horizon chain of a scene bundle; {b.name} has no scene")
        return 2
    skill = skill or b.skill_names[0]
    print(f"\n[2/2] sim-in-the-loop ROS 2 graph (twin -> real2sim -> policy -> sim2real): skill {skill}")
    res = run_graph_skill(model, skill, variation, out_dir, seed=seed)
    for k, v in res["events_s"].items():
        print(f"    {v:6.2f} s  {k}")
    print(f"    policy actions: {res['policy_actions']}; safety holds: {len(res['safety_holds'])}")
    if res["bag"]:
        print(f"    MCAP bag: {res['bag']}")
    if res["video"]:
        print(f"    video: {res['video']}")
    print(f"\n{'SUCCESS' if res['success'] else 'FAILED'}: {skill} on the digital twin")
    return 0 if res["success"] else 1


def _run_demo_chain(
    model: Path,
    scene: str,
    out_dir: Path,
    variation: int,
    perception: str = "ground_truth",
    seed: int | None = None,
) -> int:
    """[2/2] of the demo for a bundle trained in a multi-object scene: a long-horizon command from text to
    success on the twin through the whole graph (with the task sequencer), recorded and filmed. `perception`
    "camera": the detections come from the twin's rendered images through perception_node."""
    from legion_core.tools.longhorizon import DEFAULT_COMMAND, ChainRunner

    out_dir.mkdir(parents=True, exist_ok=True)
    video, bag = out_dir / "demo_long_horizon.mp4", out_dir / "demo_session"
    print(
        f"\n[2/2] sim-in-the-loop ROS 2 graph with the task sequencer, scene {scene} (placement {variation}):"
    )
    if perception == "camera":
        print("    detections: the twin's camera images -> AprilTags (perception_node) -> real2sim")
    print(f'    operator: "{DEFAULT_COMMAND}"')
    runner = ChainRunner(model, out_dir / "graph.log", video_path=video, perception=perception, seed=seed)
    try:
        with _recording(bag):
            ok = runner.reset_scene(variation)
            res = runner.run(DEFAULT_COMMAND, variation) if ok else None
            runner.spin(1.0)  # a moment after the end, for the video
    finally:
        code = runner.close()
    if res is None:
        print("FAILED: the twin could not be reset to the scene")
        return 1
    print(f"    plan: {' -> '.join(res.plan) or '(none)'}")
    for k, (skill, dur) in enumerate(zip(res.plan, res.step_durations_s)):
        t_start = next((t for t, s in res.skill_starts_s if s == skill), float("nan"))
        print(f"    step {k + 1}/{len(res.plan)}  {skill:24s} started {t_start:6.2f} s  took {dur:5.1f} s")
    print(
        f"    policy actions: {res.policy_actions}; safety holds: {len(res.safety_holds)}; graph exit code {code}"
    )
    if bag.exists():
        print(f"    MCAP bag: {bag}")
    if video.exists():
        print(f"    video: {video}")
    print(f"\n{'SUCCESS' if res.success else 'FAILED'}: {res.message}")
    return 0 if res.success else 1
