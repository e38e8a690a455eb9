"""Evaluating policies on registry tasks, and the Sawyer-vs-KUKA parity check (issue 2 §3).

Parity rule (the issue's): on the same seeded episodes, the KUKA variant of a task must succeed with the
scripted expert on at least 90% as many episodes as the Sawyer, and on at least 45 of 50 where the
Sawyer gets 50 of 50 (scaled for other episode counts).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from tqdm import tqdm

from legion_core.contracts.tasks import TaskSpec, get_task
from legion_core.sim.factory import TaskEnv, run_episode, scripted_expert

PolicyFactory = Callable[[TaskSpec], Callable[[np.ndarray], np.ndarray]]


@dataclass
class TaskResult:
    task: str
    embodiment: str
    episodes: int
    successes: int
    mean_first_success_step: float | None
    max_limit_violation_rad: float
    wall_s: float

    @property
    def success_rate(self) -> float:
        return self.successes / max(self.episodes, 1)


def evaluate(
    tasks: list[str | TaskSpec],
    embodiment: str = "kuka",
    policy_factory: PolicyFactory | None = None,
    layout: str = "mw39",
    episodes: int = 10,
    seed: int = 0,
    first_variation: int = 0,
    progress: bool = True,
    control_mode: str = "mocap",
    scene: str | None = None,
) -> list[TaskResult]:
    """Success of a policy (default: Meta-World's scripted experts) over seeded episodes per task.
    Episode i uses task variation first_variation + i of MT1(env, seed), moved into `scene` if given
    (legion_core.contracts.scenes: placement offsets and hand starts)."""
    policy_factory = policy_factory or scripted_expert
    specs = [t if isinstance(t, TaskSpec) else get_task(t) for t in tasks]
    out = []
    bar = tqdm(total=len(specs) * episodes, desc=f"eval {embodiment}", unit="ep", disable=not progress)
    for spec in specs:
        env = TaskEnv(spec, embodiment, seed=seed, control_mode=control_mode, scene=scene)
        policy = policy_factory(spec)
        t0 = time.perf_counter()
        res = []
        for i in range(episodes):
            res.append(run_episode(env, policy, first_variation + i, layout=layout))
            bar.update(1)
            bar.set_postfix(task=spec.name, ok=sum(r.success for r in res))
        firsts = [r.first_success_step for r in res if r.first_success_step]
        out.append(
            TaskResult(
                spec.name,
                embodiment,
                episodes,
                sum(r.success for r in res),
                float(np.mean(firsts)) if firsts else None,
                max(r.max_limit_violation_rad for r in res),
                time.perf_counter() - t0,
            )
        )
        env.close()
    bar.close()
    return out


def parity_ok(sawyer_successes: int, kuka_successes: int, episodes: int) -> bool:
    need = math.ceil(0.9 * sawyer_successes - 1e-9)
    if sawyer_successes == episodes:
        need = max(need, math.ceil(0.9 * episodes - 1e-9))  # 45 of 50
    return kuka_successes >= need


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
                "kuka_over_sawyer_steps_ratio": sps_k / sps_s,
            }
        )
    return {
        "seed": seed,
        "episodes_per_task": episodes,
        "tasks": rows,
        "all_parity_ok": all(r["parity_ok"] for r in rows),
        "mean_kuka_over_sawyer_steps_ratio": float(
            np.mean([r["kuka_over_sawyer_steps_ratio"] for r in rows])
        ),
        "raw": {"sawyer": [asdict(r) for r in sawyer], "kuka": [asdict(r) for r in kuka]},
    }
