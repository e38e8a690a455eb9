"""`legion bench envs`: the Sawyer-vs-KUKA parity of the training environments (docs/kuka-embodiment.md).

On the same seeded episodes, Meta-World's scripted expert runs each task on both embodiments; the KUKA
variant must succeed on at least 90 % as many episodes as the Sawyer, and on at least 45 of 50 where the
Sawyer gets 50 of 50 (the rule is `legion_core.training.evaluation.parity_ok`). Beside it: the largest
joint-limit overshoot of the KUKA under the mocap weld, and the raw env stepping rate of both (uniform random
actions, no policy cost).
"""

from __future__ import annotations

import time
from dataclasses import asdict

import numpy as np

from legion_core.base.stats import mean, ratio
from legion_core.sim.factory import TaskEnv
from legion_core.training.evaluation import evaluate, parity_ok


def env_steps_per_second(task: str, embodiment: str, n_steps: int = 2000, seed: int = 0) -> float:
    """Raw env stepping rate with uniform random actions (no policy cost), resetting at episode ends."""
    env = TaskEnv(task, embodiment, seed=seed)
    rng = np.random.default_rng(seed)
    env.reset(0)
    actions = rng.uniform(-1, 1, size=(n_steps, 4)).astype(np.float32)
    t0 = time.perf_counter()
    for i in range(n_steps):
        if env.steps >= env.max_episode_steps:
            env.reset((i // env.max_episode_steps) % 50)
        env.step(actions[i])
    dt = time.perf_counter() - t0
    env.close()
    return n_steps / dt


def parity_report(tasks: list[str], episodes: int = 50, seed: int = 0, progress: bool = True) -> dict:
    """Scripted-expert success on both embodiments on the same seeded episodes, the largest joint-limit
    overshoot under the mocap weld, and env steps/s (the `legion bench envs` payload)."""
    sawyer = evaluate(tasks, "sawyer", episodes=episodes, seed=seed, progress=progress)
    kuka = evaluate(tasks, "kuka", episodes=episodes, seed=seed, progress=progress)
    rows = []
    for s, k in zip(sawyer, kuka):
        sps_s = env_steps_per_second(s.task, "sawyer", seed=seed)
        sps_k = env_steps_per_second(k.task, "kuka", seed=seed)
        rows.append(
            {
                "task": s.task,
                "episodes": episodes,
                "sawyer_successes": s.successes,
                "kuka_successes": k.successes,
                "parity_ok": parity_ok(s.successes, k.successes, episodes),
                "sawyer_mean_first_success_step": s.mean_first_success_step,
                "kuka_mean_first_success_step": k.mean_first_success_step,
                "kuka_max_joint_limit_overshoot_rad": k.max_limit_violation_rad,
                "sawyer_env_steps_per_s": sps_s,
                "kuka_env_steps_per_s": sps_k,
                "kuka_over_sawyer_steps_ratio": ratio(sps_k, sps_s),
            }
        )
    return {
        "seed": seed,
        "episodes_per_task": episodes,
        "tasks": rows,
        "all_parity_ok": all(r["parity_ok"] for r in rows),
        "mean_kuka_over_sawyer_steps_ratio": mean([r["kuka_over_sawyer_steps_ratio"] for r in rows]),
        "raw": {"sawyer": [asdict(r) for r in sawyer], "kuka": [asdict(r) for r in kuka]},
    }
