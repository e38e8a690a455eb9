"""The regression check, `legion replay BAG --check SCENARIO --bundle DIR`: the offline policy re-run and
the live replay of the bag's sensor topics through a fresh runtime on sim time, judged by
legion_core/tools/regression/judge.py."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from legion_core.contracts.interface import (
    TOPIC_ACTION,
    TOPIC_ACTIVE_SKILL,
    TOPIC_CLOCK,
    TOPIC_COMMAND_REPORT,
    TOPIC_DETECTIONS,
    TOPIC_GRIPPER_STATE,
    TOPIC_JOINT_STATES,
    TOPIC_OBSERVATION,
)
from legion_core.tools.bags.store import resolve_bag
from legion_core.tools.bags.topics import OUTPUT_TOPICS
from legion_core.tools.regression.judge import CheckResult, Judgement, compare_live, judge_policy_offline
from legion_core.tools.regression.processes import LineReader, runtime_command, spawn_child, stop_child
from legion_core.tools.regression.scenario import LIVE_JUDGEMENTS, Scenario, load_scenario
from legion_core.tools.regression.session import read_session, skill_of


def live_replay(bag: str | Path, bundle: str | Path, scenario: Scenario, out_dir: Path, rate: float | None = 1.0,
                calibration: str = "", log: Callable[[str], None] = print) -> tuple[Path, dict]:  # fmt: skip
    """Replay the bag's sensor topics with /clock into a fresh real2sim + policy + sim2real (one child process
    on sim time) while a child recorder (sim time) records what the runtime produces. Returns (replayed bag,
    replay statistics)."""
    from legion_core.tools.bags.play import replay
    from legion_core.tools.ros_env import ensure_workspace

    ensure_workspace()
    rec = read_session(bag, max_joint_states=0)
    params: dict[str, Any] = {
        "policy.bundle": str(Path(bundle).resolve()), "sim2real.bundle": str(Path(bundle).resolve()),
        "real2sim.bundle": str(Path(bundle).resolve()),
        "real2sim.use_sim_time": True, "policy.use_sim_time": True, "sim2real.use_sim_time": True,
        "policy.z_mode": scenario.z_mode,
    }  # fmt: skip
    if calibration:
        params.update({"real2sim.calibration": calibration, "sim2real.calibration": calibration})
    if TOPIC_ACTIVE_SKILL not in rec.topics or TOPIC_ACTIVE_SKILL not in scenario.topics:
        skill = skill_of(rec)  # a graph started with skill parameters: start the fresh one the same way
        if skill:
            params.update({"real2sim.skill": skill, "policy.skill": skill})
    params.update(scenario.runtime_params)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    replayed = out_dir / f"replayed-{stamp}-{os.getpid()}-{threading.get_ident() % 10000}"
    runtime = spawn_child(
        runtime_command("real2sim,policy,sim2real", params), out_dir / f"{replayed.name}.runtime.log"
    )
    recorder = spawn_child(
        [sys.executable, "-m", "legion_core.cli", "record", "-o", str(replayed), "--use-sim-time", "--json",
         "--require", TOPIC_OBSERVATION, "--require", TOPIC_ACTION, "--require", TOPIC_COMMAND_REPORT,
         *OUTPUT_TOPICS],
        out_dir / f"{replayed.name}.recorder.log", pipe_stdout=True,
    )  # fmt: skip
    lines = LineReader(recorder)
    try:
        if lines.wait_for(lambda ln: "ready" in ln, scenario.startup_timeout_s) is None:
            if runtime.poll() is not None:
                raise RuntimeError(
                    f"the runtime exited with {runtime.returncode}; see {out_dir}/{replayed.name}.runtime.log"
                )
            raise RuntimeError(
                f"the recorder did not see the runtime's outputs within {scenario.startup_timeout_s} s"
            )
        topics = [t for t in scenario.topics if t in rec.topics]
        need = {
            TOPIC_JOINT_STATES: 2,
            TOPIC_ACTIVE_SKILL: 2,
            TOPIC_DETECTIONS: 1,
            TOPIC_GRIPPER_STATE: 1,
            TOPIC_CLOCK: 4,
        }
        log(f"[legion check] replaying {', '.join(topics)} at rate {rate} into a fresh runtime (sim time)")
        st = replay(bag, rate=rate, topics=topics, sim_clock=True, min_subscribers=need,
                    wait_subscribers_s=scenario.startup_timeout_s, start_delay_s=0.5)  # fmt: skip
        time.sleep(scenario.drain_s)
    finally:
        stop_child(recorder)
        stop_child(runtime)
    stats_line = lines.wait_for(lambda ln: ln.startswith("{"), 5.0)
    stats = st.to_dict()
    if stats_line:
        stats["recorder"] = json.loads(stats_line)
    return replayed, stats


def check(bag: str | Path, scenario: str | Path | dict | Scenario | None, bundle: str | Path, *,
          out_dir: str | Path | None = None, rate: float | None | str = "scenario", calibration: str = "",
          emit: Callable[[str], None] = print) -> CheckResult:  # fmt: skip
    """Regression check of a recorded session against a bundle: the offline policy re-run (bit-exact on the
    recording's numeric signature, float32 tolerance elsewhere) and the live replay through a fresh runtime
    (tolerances), as the scenario selects. Emits one JSON line per judgement and a summary line (also
    written to OUT/judgements.jsonl)."""
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    if rate == "scenario":
        rate = sc.rate
    bag = resolve_bag(bag)
    out = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="legion_check_"))
    rec = read_session(bag, max_joint_states=0)
    from legion_core.contracts.bundle import load

    b = load(bundle)
    judgements: list[Judgement] = []
    if "policy_offline" in sc.judgements:
        t = sc.tolerances
        judgements.append(
            judge_policy_offline(rec, b, t["offline_action_atol"], int(t["offline_max_unmatched"]), sc.z_mode)
        )
    result = CheckResult(judgements, str(bag))
    if any(j in LIVE_JUDGEMENTS for j in sc.judgements):
        log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731 - progress on stderr, judgements on stdout
        replayed, stats = live_replay(bag, bundle, sc, out, rate, calibration, log=log)
        result.replayed_bag, result.replay = str(replayed), stats
        judgements += compare_live(rec, read_session(replayed, max_joint_states=0), sc, stats, b.weights)
    out.mkdir(parents=True, exist_ok=True)
    lines = result.lines()
    (out / "judgements.jsonl").write_text("\n".join(lines) + "\n")
    for ln in lines:
        emit(ln)
    return result
