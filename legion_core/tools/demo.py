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

import threading
import time
from pathlib import Path

from legion_core.tools.ros_env import REPO

DEFAULT_MODEL = REPO / "models" / "legion-kuka"


def evaluate_bundle_table(bundle_path: Path, episodes: int, seed: int = 1) -> list:
    from legion_core.contracts.bundle import load
    from legion_core.training.evaluation import evaluate

    b = load(bundle_path)
    return evaluate(
        b.skill_names, b.embodiment, policy_factory=lambda s: b.policy_fn(s.name),
        layout=b.layout.name, episodes=episodes, seed=seed, first_variation=0, progress=False, scene=b.scene,
    )  # fmt: skip


def run_graph_skill(bundle_path: Path, skill: str, variation: int, out_dir: Path, timeout_s: float = 90.0,
                    record: bool = True) -> dict:  # fmt: skip
    """Launch the sim graph, run `skill` until the twin reports success (or timeout)."""
    from legion_core.contracts.bundle import load
    from legion_core.tools.ros_env import ensure_workspace, start_composed, stop_process_group

    ensure_workspace()
    import rclpy
    from legion_msgs.msg import PolicyAction, RuntimeStatus
    from std_msgs.msg import Bool, String

    from legion_core.contracts.interface import (
        TOPIC_ACTION,
        TOPIC_ACTIVE_SKILL,
        TOPIC_STATUS,
        TOPIC_TWIN_SUCCESS,
        StatusLevel,
    )
    from legion_core.ros.common import LATCHED_QOS

    out_dir.mkdir(parents=True, exist_ok=True)
    video = out_dir / f"demo_{skill}.mp4"
    params = {
        "policy.bundle": bundle_path, "sim2real.bundle": bundle_path, "real2sim.bundle": bundle_path,
        "twin.task": skill, "twin.variation": variation, "twin.video_path": video,
        "twin.seed": 1,  # the held-out placements the bundle was evaluated on (training used seed 0)
        "twin.scene": load(bundle_path).scene or "",  # placed as in the bundle's training scene
    }  # fmt: skip
    t0 = time.monotonic()
    proc = start_composed("twin,real2sim,policy,sim2real", params, out_dir / "graph.log")
    if not rclpy.ok():
        rclpy.init()
    node = rclpy.create_node("legion_demo")
    events: dict[str, float] = {}
    state = {"success": False, "actions": 0, "holds": []}

    def on_success(m):
        if m.data and "success" not in events:
            events["success"] = time.monotonic() - t0
            state["success"] = True

    def on_action(_m):
        state["actions"] += 1
        events.setdefault("first action", time.monotonic() - t0)

    def on_status(m):
        if m.level >= StatusLevel.HOLD:
            state["holds"].append(f"{m.node}: {m.message}")

    node.create_subscription(Bool, TOPIC_TWIN_SUCCESS, on_success, LATCHED_QOS)
    node.create_subscription(PolicyAction, TOPIC_ACTION, on_action, 10)
    node.create_subscription(RuntimeStatus, TOPIC_STATUS, on_status, 10)
    skill_pub = node.create_publisher(String, TOPIC_ACTIVE_SKILL, LATCHED_QOS)
    rec_thread, stop_rec, rec_stats = None, threading.Event(), {}
    bag = out_dir / "demo_session"
    if record:
        try:
            from legion_core.tools import bags as recording

            def _rec():
                rec_stats["stats"] = recording.record(bag, stop_event=stop_rec)

            rec_thread = threading.Thread(target=_rec, daemon=True)
            rec_thread.start()
        except ImportError:
            rec_thread = None
    # Wait for the graph (discovery) before activating the skill: the latched topic reaches late joiners too.
    end = time.monotonic() + 60
    while time.monotonic() < end and skill_pub.get_subscription_count() < 2:
        rclpy.spin_once(node, timeout_sec=0.05)
    skill_pub.publish(String(data=skill))
    events["skill activated"] = time.monotonic() - t0
    end = time.monotonic() + timeout_s
    while time.monotonic() < end and not state["success"]:
        rclpy.spin_once(node, timeout_sec=0.05)
    # A moment after success so the video shows it, then shut everything down cleanly.
    linger = time.monotonic() + 1.0
    while time.monotonic() < linger:
        rclpy.spin_once(node, timeout_sec=0.05)
    stop_rec.set()
    if rec_thread is not None:
        rec_thread.join(20)
    node.destroy_node()
    # The twin renders its video at shutdown (software EGL: ~0.1 s a frame idle, several times that on a
    # loaded machine: 30 s was not enough under `stress-ng --cpu 2`). The timeout only catches a hang; the
    # judgement is the exit code.
    code = stop_process_group(proc, 300)
    return {
        "skill": skill,
        "variation": variation,
        "success": state["success"],
        "events_s": events,
        "policy_actions": state["actions"],
        "safety_holds": state["holds"][:10],
        "video": str(video) if video.exists() else None,
        "bag": str(bag) if bag.exists() else None,
        "record": rec_stats.get("stats"),
        "graph_exit_code": code,
        "graph_log": str(out_dir / "graph.log"),
    }


def run_demo(model: Path | None, skill: str | None, episodes: int, out_dir: Path, variation: int = 0) -> int:
    model = Path(model) if model else DEFAULT_MODEL
    if not (model / "bundle.yaml").exists():
        print(f"no shipped model at {model}: falling back to the scripted-expert demo")
        return -1
    from legion_core.contracts.bundle import load

    b = load(model)
    print(f"LEGION demo with {b.name} ({', '.join(b.skill_names)}) on the KUKA iiwa 7\n")
    print(f"[1/2] each skill in simulation, {episodes} held-out placements, deterministic policy:")
    for r in evaluate_bundle_table(model, episodes):
        print(f"    {r.task:24s} {r.successes:2d}/{r.episodes}")
    if b.scene and not skill:
        return _run_demo_chain(model, b.scene, out_dir, variation)
    skill = skill or b.skill_names[0]
    print(f"\n[2/2] sim-in-the-loop ROS 2 graph (twin -> real2sim -> policy -> sim2real): skill {skill}")
    res = run_graph_skill(model, skill, variation, out_dir)
    for k, v in res["events_s"].items():
        print(f"    {v:6.2f} s  {k}")
    print(f"    policy actions: {res['policy_actions']}; safety holds: {len(res['safety_holds'])}")
    if res["bag"]:
        print(f"    MCAP bag: {res['bag']}")
    if res["video"]:
        print(f"    video: {res['video']}")
    print(f"\n{'SUCCESS' if res['success'] else 'FAILED'}: {skill} on the digital twin")
    return 0 if res["success"] else 1


def _run_demo_chain(model: Path, scene: str, out_dir: Path, variation: int) -> int:
    """[2/2] of the demo for a bundle trained in a multi-object scene: a long-horizon command from text to
    success on the twin through the whole graph (with the task sequencer), recorded and filmed."""
    from legion_core.tools import bags as recording
    from legion_core.tools.longhorizon import DEFAULT_COMMAND, ChainRunner

    out_dir.mkdir(parents=True, exist_ok=True)
    video, bag = out_dir / "demo_long_horizon.mp4", out_dir / "demo_session"
    print(
        f"\n[2/2] sim-in-the-loop ROS 2 graph with the task sequencer, scene {scene} (placement {variation}):"
    )
    print(f'    operator: "{DEFAULT_COMMAND}"')
    runner = ChainRunner(model, out_dir / "graph.log", video_path=video)
    stop, stats = threading.Event(), {}
    rec = threading.Thread(target=lambda: stats.update(s=recording.record(bag, stop_event=stop)), daemon=True)
    rec.start()
    try:
        ok = runner.reset_scene(variation)
        res = runner.run(DEFAULT_COMMAND, variation) if ok else None
        runner.spin(1.0)  # a moment after the end, for the video
    finally:
        stop.set()
        rec.join(20)
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
