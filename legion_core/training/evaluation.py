"""Evaluating policies on registry tasks, and the Sawyer-vs-KUKA parity rule (docs/kuka-embodiment.md; the
report that applies it is `legion bench envs`, legion_core/bench/parity.py).

Parity rule: on the same seeded episodes, the KUKA variant of a task must succeed with the scripted expert on
at least 90% as many episodes as the Sawyer, and on at least 45 of 50 where the Sawyer gets 50 of 50 (scaled
for other episode counts).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

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
