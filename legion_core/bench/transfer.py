"""`legion bench transfer`: per skill, success of a bundle in the training simulator (mocap, direct
numpy inference) versus through the full ROS 2 graph on the digital twin (twin in joint_position mode ->
real2sim -> policy -> sim2real with all its limits), on the same placements. Target: a ratio of at least
0.95 for every shipped skill.

The graph is started once per skill; between episodes the twin is reset to the next placement, the
sim2real node restarts from the measured posture, and the skill is re-activated (which re-anchors
real2sim's offset goal at the new object position). An episode on the twin succeeds when the twin's own
Meta-World success check fires within the skill's step budget, counted as on the simulator side: policy
steps the arm executed (sim2real's non-hold commands; its settle gate takes one action per reached target),
with a wall-time cap of `seconds_per_step` per step as a backstop.
"""

from __future__ import annotations

import time
from pathlib import Path

from legion_core.base.stats import ratio


def run_bench(bundle_path: str, episodes: int = 10, seed: int | None = None, seconds_per_step: float = 0.5,
              log_dir: str = "out/bench_transfer") -> dict:  # fmt: skip
    from legion_core.contracts.bundle import load
    from legion_core.tools.ros_env import (
        ensure_workspace,
        reset_twin_and_runtime,
        start_composed,
        stop_process_group,
    )

    ensure_workspace()
    import rclpy
    from legion_msgs.msg import CommandReport
    from legion_msgs.srv import ResetTask
    from std_msgs.msg import Bool, String
    from std_srvs.srv import Trigger

    from legion_core.contracts.interface import (
        SIM2REAL_RESET_SERVICE,
        TOPIC_ACTIVE_SKILL,
        TOPIC_COMMAND_REPORT,
        TOPIC_TWIN_SUCCESS,
        TWIN_RESET_TASK_SERVICE,
    )
    from legion_core.ros.common import LATCHED_QOS

    b = load(bundle_path)
    seed = b.contract.get("provenance", {}).get("eval_env_seed", 1) if seed is None else seed
    Path(log_dir).mkdir(parents=True, exist_ok=True)
    # Simulator side, per placement (so both sides are scored on exactly the same placements).
    from legion_core.sim.factory import TaskEnv, run_episode

    sim_eps: dict[str, list[bool]] = {}
    for skill in b.skill_names:
        env = TaskEnv(skill, b.embodiment, seed=seed, scene=b.scene)
        pol = b.policy_fn(skill)
        sim_eps[skill] = [run_episode(env, pol, i, layout=b.layout.name).success for i in range(episodes)]
        env.close()
    if not rclpy.ok():
        rclpy.init()
    out = {"bundle": str(bundle_path), "episodes": episodes, "seed": seed, "skills": {}}
    for skill in b.skill_names:
        budget_s = b.skills[skill].max_episode_steps * seconds_per_step
        params = {
            "policy.bundle": bundle_path,
            "sim2real.bundle": bundle_path,
            "real2sim.bundle": bundle_path,
            "twin.task": skill,
            "twin.seed": seed,
            "twin.scene": b.scene or "",  # placed as in the bundle's training scene
        }
        proc = start_composed("twin,real2sim,policy,sim2real", params, Path(log_dir) / f"graph_{skill}.log")
        node = rclpy.create_node(f"bench_transfer_{skill.replace('-', '_')}")
        success = {"v": False}
        node.create_subscription(
            Bool,
            TOPIC_TWIN_SUCCESS,
            lambda m, success=success: success.__setitem__("v", bool(m.data)),
            LATCHED_QOS,
        )
        steps = {"n": 0}
        node.create_subscription(
            CommandReport,
            TOPIC_COMMAND_REPORT,
            lambda m, steps=steps: steps.__setitem__("n", steps["n"] + (0 if m.hold else 1)),
            10,
        )
        skill_pub = node.create_publisher(String, TOPIC_ACTIVE_SKILL, LATCHED_QOS)
        reset_twin = node.create_client(ResetTask, TWIN_RESET_TASK_SERVICE)
        reset_s2r = node.create_client(Trigger, SIM2REAL_RESET_SERVICE)

        results, durations, not_run, episode_steps = [], [], [], []
        for i in range(episodes):
            skill_pub.publish(String(data=""))
            # A placement whose twin cannot be reset is reported as not run (it counts for neither side).
            if not reset_twin_and_runtime(node, reset_twin, reset_s2r, skill, i):
                not_run.append(i)
                results.append(None)
                continue
            success["v"] = False
            steps["n"] = 0
            skill_pub.publish(String(data=skill))
            t0 = time.monotonic()
            max_steps = b.skills[skill].max_episode_steps
            while time.monotonic() - t0 < budget_s and not success["v"] and steps["n"] < max_steps:
                rclpy.spin_once(node, timeout_sec=0.02)
            if not success["v"]:  # the step that reached the budget may still bring success: settle
                rclpy.spin_once(node, timeout_sec=0.2)
            episode_steps.append(steps["n"])
            results.append(success["v"])
            durations.append(time.monotonic() - t0)
        node.destroy_node()
        stop_process_group(proc)
        ran = [i for i, r in enumerate(results) if r is not None]
        g = sum(1 for i in ran if results[i])
        s_ran = sum(1 for i in ran if sim_eps[skill][i])
        out["skills"][skill] = {
            "sim_successes": s_ran,
            "graph_successes": g,
            "episodes_run": len(ran),
            "not_run_reset_failed": not_run,
            "ratio": ratio(g, s_ran),
            "graph_episode_wall_s_mean": float(sum(durations) / max(len(durations), 1)),
            "graph_episode_steps": episode_steps,
            "per_episode": results,
        }
    ratios = [v["ratio"] for v in out["skills"].values() if v["ratio"] is not None]
    out["min_ratio"] = min(ratios) if ratios else None
    out["target_ratio"] = 0.95
    out["meets_target"] = bool(ratios) and min(ratios) >= 0.95
    return out
