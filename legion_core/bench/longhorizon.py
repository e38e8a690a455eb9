"""`legion bench longhorizon`: success of the operator's long-horizon command over seeded multi-object scenes,
through the whole sim graph (the `ChainRunner` of legion_core/tools/longhorizon.py), with the failing skill
and the sequencer's reason for every failure.
"""

from __future__ import annotations

import math
from pathlib import Path

from legion_core.base.stats import summarize
from legion_core.tools.longhorizon import DEFAULT_COMMAND, ChainResult, ChainRunner


def run_bench(bundle_path: str, scenes: int = 20, command: str | None = None, first_variation: int = 0,
              seed: int | None = None, log_dir: str = "out/bench_longhorizon", progress: bool = True,
              perception: str = "ground_truth", camera=None) -> dict:  # fmt: skip
    """Success of the 3-skill chain over `scenes` seeded scenes through the whole graph, with the failing
    skill and the sequencer's reason for every failure. `seed`: the scenes' placements seed (None: the bundle's
    held-out seed, Bundle.held_out_seed). `perception`/`camera`: where the detections come
    from (tools/graph.py PERCEPTION_MODES, CameraLoop)."""
    from tqdm import tqdm

    command = command or DEFAULT_COMMAND
    Path(log_dir).mkdir(parents=True, exist_ok=True)
    # The chain is what is being evaluated: the sequencer must not refuse it for a pair not verified yet.
    runner = ChainRunner(bundle_path, Path(log_dir) / "graph.log", seed=seed, perception=perception, camera=camera,
                         extra_params={"sequencer.check_transitions": False})  # fmt: skip
    results: list[ChainResult] = []
    try:
        bar = tqdm(range(first_variation, first_variation + scenes), desc=f"long-horizon ({perception})", unit="scene",
                   disable=not progress)  # fmt: skip
        for v in bar:
            if not runner.reset_scene(v):
                results.append(ChainResult(v, command, state="no_result", message="twin reset failed"))
                continue
            results.append(runner.run(command, v))
            bar.set_postfix(ok=sum(r.success for r in results))
    finally:
        code = runner.close()
    return chain_report(results, bundle_path, runner.scene, command, runner.seed, code)


def chain_report(results: list[ChainResult], bundle_path: str, scene: str, command: str, seed: int,
                 graph_exit_code: int) -> dict:  # fmt: skip
    """The bench's JSON from the chains that ran: success rate, chain time of the successes (median and max;
    NaN when none succeeded), failures grouped by the skill that failed (or the state, when none ran)."""
    ok = [r for r in results if r.success]
    per_skill_fail: dict[str, list[str]] = {}
    for r in results:
        if not r.success:
            per_skill_fail.setdefault(r.failed_skill or r.state, []).append(
                f"scene {r.variation}: {r.message}"
            )
    durations = [sum(r.step_durations_s) for r in ok]
    return {
        "bundle": str(bundle_path),
        "scene": scene,
        "command": command,
        "plan": results[0].plan if results else [],
        "scenes": len(results),
        "seed": seed,
        "successes": len(ok),
        "success_rate": len(ok) / len(results) if results else 0.0,
        "chain_time_s": summarize(durations, ("median", "max"), empty=math.nan),
        "failures_by_skill": per_skill_fail,
        "per_scene": [r.to_dict() for r in results],
        "graph_exit_code": graph_exit_code,
    }
