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
    from legion_core.tools.graph import (
        SIM_GRAPH_NODES,
        WATCH_COMMAND_REPORTS,
        WATCH_TWIN_SUCCESS,
        GraphProcess,
        SimGraph,
        sim_graph_params,
    )

    b = load(bundle_path)
    seed = b.held_out_seed if seed is None else seed
    Path(log_dir).mkdir(parents=True, exist_ok=True)
    # Simulator side, per placement (so both sides are scored on exactly the same placements).
    from legion_core.sim.factory import TaskEnv, run_episode

    sim_eps: dict[str, list[bool]] = {}
    for skill in b.skill_names:
        env = TaskEnv(skill, b.embodiment, seed=seed, scene=b.scene)
        pol = b.policy_fn(skill)
        sim_eps[skill] = [run_episode(env, pol, i, layout=b.layout.name).success for i in range(episodes)]
        env.close()
    out = {"bundle": str(bundle_path), "episodes": episodes, "seed": seed, "skills": {}}
    for skill in b.skill_names:
        max_steps = b.skills[skill].max_episode_steps
        budget_s = max_steps * seconds_per_step
        # placed as in the bundle's training scene
        params = sim_graph_params(bundle_path, skill, seed=seed, scene=b.scene or "")
        graph = SimGraph(GraphProcess(SIM_GRAPH_NODES, params, Path(log_dir) / f"graph_{skill}.log"),
                         node_name=f"bench_transfer_{skill.replace('-', '_')}",
                         watch=(WATCH_TWIN_SUCCESS, WATCH_COMMAND_REPORTS))  # fmt: skip
        results, durations, not_run, episode_steps = [], [], [], []
        with graph:
            seen = graph.seen
            for i in range(episodes):
                graph.activate_skill("")
                # A placement whose twin cannot be reset is reported as not run (it counts for neither side).
                if not graph.reset(skill, i):
                    not_run.append(i)
                    results.append(None)
                    continue
                seen.twin_success = False
                seen.steps = 0
                graph.activate_skill(skill)
                t0 = time.monotonic()
                done = lambda s=seen, n=max_steps: s.twin_success or s.steps >= n  # noqa: E731
                graph.spin_until(done, budget_s, step_s=0.02)
                if not seen.twin_success:  # the step that reached the budget may still bring success: settle
                    graph.spin_once(0.2)
                episode_steps.append(seen.steps)
                results.append(seen.twin_success)
                durations.append(time.monotonic() - t0)
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
