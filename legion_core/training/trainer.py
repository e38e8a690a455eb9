"""The lifelong trainer: LEGION over a task stream (docs/method.md#training-stream), with presets, exact
resume, scheduled evaluation, continual-learning metrics and plots.

Read top to bottom: `TrainConfig` (every knob, one docstring each) -> `Trainer.run()` (the lifelong loop:
for each task of the stream, warm-up with random actions, then one update per env step, DPMM refits on a
schedule, evaluation on all tasks every `eval_every` steps and at the end of each task, checkpoints at
episode boundaries) -> `resume()`.

Exact resume: checkpoints are written only at episode boundaries, with every RNG stream (numpy for
actions/sampling/variations, the agent's torch generator), the transition buffer, optimizer states, the DPMM
posterior and the reward normaliser. A resumed run therefore produces the same parameters as an
uninterrupted one (`tests/e2e/test_trainer.py` checks this bit for bit).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm import tqdm

from legion_core.contracts.layouts import get_layout
from legion_core.contracts.tasks import TaskSpec, get_task_set
from legion_core.sim.factory import N_VARIATIONS, TaskEnv, scripted_expert
from legion_core.training.agent.agent import LegionAgent
from legion_core.training.agent.config import AgentConfig
from legion_core.training.metrics import SuccessMatrix, tensorboard_writer, write_metrics_json
from legion_core.training.rl_buffer import POLICIES, DemoBuffer, TransitionBuffer

log = logging.getLogger("legion.train")

CKPT_FORMAT = "legion-run-checkpoint/1"


@dataclass
class TrainConfig:
    """One training run. Presets (presets/*.yaml) set these; `key=value` overrides on the command line."""

    name: str = "run"
    """Run name (the run directory is <runs_dir>/<name>-<timestamp> unless --run-dir is given)."""
    tasks: str | list[str] = "legion-mt10"
    """Task set name (legion-mt10, mt10, cw10), a YAML task-set file, or a list of registry task names."""
    mode: str = "crl_queue"
    """`crl_queue`: one task at a time in the given order (the paper's lifelong setting);
    `multitask`: all tasks at once, one transition per task per step (reference)."""
    embodiment: str = "kuka"
    """`kuka` (default; the robot we deploy on) or `sawyer`."""
    layout: str = "legion12"
    """Observation layout the agent sees (`legion12`, the paper's 12-d state; `mw39` for Meta-World's 39-d)."""
    seed: int = 0
    """Seed of the agent and of the trainer's RNG streams."""
    env_seed: int = 0
    """Seed of the 50 training placements per task (metaworld.MT1 seed)."""
    eval_env_seed: int = 1
    """Seed of the evaluation placements: a different seed than training = held-out object/goal placements."""
    scene: str | None = None
    """Multi-object scene (legion_core.contracts.scenes) whose placements the tasks are trained on: each task's object
    moved to where the scene puts it, the hand starting anywhere in the scene's start box. None = Meta-World's
    own placements and home point (the paper)."""
    goal_variation: str = "random"
    """`random`: a new placement (of 50) per episode — what a robot that meets moved objects needs.
    `fixed`: the original MTRL protocol, one frozen placement per task for the whole run
    (docs/method.md#tasks)."""
    steps_per_task: int = 1_000_000
    """Env steps per task (original: 1M)."""
    init_steps: int = 1500
    """Random-action warm-up steps at the start of every task, with no updates (original)."""
    warmup_burst: bool = True
    """Original: when warm-up ends, run init_steps updates back to back."""
    updates_per_step: int = 1
    """Gradient updates per env step (original: 1). RLPD-style runs use more."""
    normalize_reward: bool = True
    """Original reward scaling: divide by sqrt of an EMA variance (α=0.001, v0=1), mean not subtracted
    (docs/method.md#tasks)."""
    buffer_policy: str = "keep_all"
    """`keep_all` (original: 10M, nothing evicted = full rehearsal, docs/method.md#rehearsal), `fifo`, or
    `reservoir`."""
    buffer_capacity: int = 10_000_000
    """Replay capacity in transitions."""
    demo_episodes_per_task: int = 0
    """Demonstration seeding (off by default): scripted-expert episodes per task put in a separate buffer."""
    demo_ratio: float = 0.5
    """Fraction of every batch drawn from the demonstration buffer when it is not empty (RLPD: 0.5)."""
    demo_action_noise: float = 0.0
    """Gaussian noise (std) added to expert actions when recording demos (broader state coverage)."""
    eval_every: int = 10_000
    """Evaluate all tasks of the stream every this many local steps (and at the end of each task)."""
    eval_episodes: int = 10
    """Deterministic episodes per task per evaluation (original: 10)."""
    dpmm_start: int = 10_000
    """Local step of the first DPMM fit in each task (lifelong CLI: 10,000)."""
    dpmm_every: int = 100_000
    """Refit the DPMM every this many local steps (lifelong CLI: 100,000)."""
    latent_snapshot_size: int = 1000
    """Latents saved per DPMM fit for the latent-space plot."""
    reset_optimizers: bool = True
    """New Adam moments at every task switch (original: True)."""
    reset_critics: bool = False
    """Re-initialise the critics at a task switch (original option, off)."""
    reset_vae: bool = False
    """Re-initialise the VAE encoder at a task switch (original option, off)."""
    checkpoint_every: int = 10_000
    """Write a resumable checkpoint at the first episode boundary after this many env steps."""
    max_env_steps: int | None = None
    """Stop (resumably) after this many env steps in this invocation: for working sessions and tests."""
    agent: dict = field(default_factory=dict)
    """Overrides of AgentConfig (legion_core/training/agent/config.py), e.g. {batch_size: 256, beta_kl: 0.001}."""

    def __post_init__(self) -> None:
        if self.mode not in ("crl_queue", "multitask"):
            raise ValueError(f"mode must be crl_queue or multitask, got {self.mode!r}")
        if self.goal_variation not in ("random", "fixed"):
            raise ValueError(f"goal_variation must be random or fixed, got {self.goal_variation!r}")
        if self.buffer_policy not in POLICIES:
            raise ValueError(f"buffer_policy must be one of {POLICIES}, got {self.buffer_policy!r}")
        if not 0.0 <= self.demo_ratio < 1.0:
            raise ValueError("demo_ratio must be in [0, 1)")

    def task_specs(self) -> list[TaskSpec]:
        if isinstance(self.tasks, list | tuple):
            from legion_core.contracts.tasks import get_task

            return [get_task(t) for t in self.tasks]
        return get_task_set(self.tasks)


def _parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise ValueError(f"override {text!r} must look like key=value (e.g. steps_per_task=20000)")
    key, val = text.split("=", 1)
    return key.split("."), yaml.safe_load(val)


def load_config(preset: str | Path | None, overrides: list[str] = ()) -> TrainConfig:
    data: dict = {}
    if preset:
        p = Path(preset)
        if not p.exists():
            raise FileNotFoundError(f"preset {p} not found; presets live in presets/*.yaml")
        data = yaml.safe_load(p.read_text()) or {}
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    for ov in overrides:
        path, val = _parse_override(ov)
        if path[0] not in known:
            raise ValueError(f"unknown config key {path[0]!r}; known: {sorted(known)}")
        d = data
        for k in path[:-1]:
            d = d.setdefault(k, {})
        d[path[-1]] = val
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown config key(s) {sorted(unknown)} in {preset}; known: {sorted(known)}")
    cfg = TrainConfig(**data)
    AgentConfig(**cfg.agent)  # validate agent overrides early, with AgentConfig's own error messages
    return cfg


class RewardNormalizer:
    """Original NormalizedEnvWrapper reward scaling, one instance per task env."""

    def __init__(self, alpha: float = 0.001) -> None:
        self.alpha, self.mean, self.var = alpha, 0.0, 1.0

    def __call__(self, r: float) -> float:
        self.mean = (1 - self.alpha) * self.mean + self.alpha * r
        self.var = (1 - self.alpha) * self.var + self.alpha * (r - self.mean) ** 2
        return r / (math.sqrt(self.var) + 1e-8)


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"  # unlike the original: never fail outside a git checkout


class Trainer:
    def __init__(self, cfg: TrainConfig, run_dir: Path, progress: bool = True) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.progress = progress
        self.specs = cfg.task_specs()
        self.task_names = [s.name for s in self.specs]
        self.layout = get_layout(cfg.layout)
        from legion_core.contracts import language

        self.embeddings = language.embed_cached([s.description for s in self.specs]).astype(np.float32)
        agent_kw = dict(cfg.agent)
        agent_kw.setdefault("seed", cfg.seed)
        agent_kw["obs_dim"] = self.layout.dim
        agent_kw["max_tasks"] = max(agent_kw.get("max_tasks", 16), len(self.specs))
        self.agent = LegionAgent(AgentConfig(**agent_kw), dpmm_dir=self.run_dir / "dpmm")
        self.rng = np.random.default_rng(cfg.seed)
        self.buffer = TransitionBuffer(cfg.buffer_capacity, self.layout.dim, 4, cfg.buffer_policy)
        self.demos = DemoBuffer(self.layout.dim, 4)
        self.normalizers = [RewardNormalizer() for _ in self.specs]
        # Progress state (all of it goes into checkpoints).
        self.task_index = 0
        self.local_step = 0
        self.global_step = 0
        self.updates = 0
        self.demos_recorded: list[int] = []
        self.matrix = SuccessMatrix(self.task_names, None if cfg.mode == "crl_queue" else [None])
        self.eval_history: list[dict] = []
        self.k_history: list[list[int]] = []
        self.fixed_variation = [int(v) for v in self.rng.integers(0, N_VARIATIONS, len(self.specs))]
        self.next_eval = 0  # local step of the next scheduled evaluation
        self.current_variation: dict[int, int] = {}  # placement of each active env's current episode
        self.wall_s = 0.0
        self._envs: dict[tuple[str, int], TaskEnv] = {}
        self._tb = None

    # -- environments -----------------------------------------------------------------------------------
    def _env(self, k: int, eval_env: bool = False) -> TaskEnv:
        seed = self.cfg.eval_env_seed if eval_env else self.cfg.env_seed
        key = (self.specs[k].name, seed)
        if key not in self._envs:
            self._envs[key] = TaskEnv(self.specs[k], self.cfg.embodiment, seed=seed, scene=self.cfg.scene)
        return self._envs[key]

    def _next_variation(self, k: int) -> int:
        if self.cfg.goal_variation == "fixed":
            return self.fixed_variation[k]
        return int(self.rng.integers(0, N_VARIATIONS))

    def _obs(self, env: TaskEnv) -> np.ndarray:
        return env.observe(self.layout).astype(np.float32)

    # -- evaluation ----------------------------------------------------------------------------------------
    def evaluate(self, episodes: int | None = None) -> dict[str, float]:
        """Deterministic success (any step) on every task of the stream, seen and unseen
        (docs/method.md#evaluation), on held-out placements (eval_env_seed). Episode i of a task uses placement i."""
        n = episodes or self.cfg.eval_episodes
        out = {}
        for k, spec in enumerate(self.specs):
            env = self._env(k, eval_env=True)
            succ = 0
            for i in range(n):
                env.reset(i)
                for _ in range(spec.max_episode_steps):
                    a = self.agent.act(self._obs(env), self.embeddings[k], deterministic=True)
                    _, _, s, _ = env.step(a)
                    if s:
                        succ += 1
                        break
            out[spec.name] = succ / n
        return out

    def _record_eval(self, phase: int, res: dict[str, float]) -> None:
        for name, s in res.items():
            self.matrix.add(phase, name, s, self.global_step)
        self.eval_history.append(
            {"global_step": self.global_step, "phase": phase, "local_step": self.local_step, "success": res}
        )
        if self._tb is not None:
            for name, s in res.items():
                self._tb.add_scalar(f"eval/success/{name}", s, self.global_step)
            self._tb.add_scalar("eval/success", float(np.mean(list(res.values()))), self.global_step)
        with open(self.run_dir / "eval.jsonl", "a") as f:
            f.write(json.dumps(self.eval_history[-1]) + "\n")

    # -- demonstrations ----------------------------------------------------------------------------------
    def _record_demos(self, k: int) -> None:
        n = self.cfg.demo_episodes_per_task
        if n <= 0 or k in self.demos_recorded:
            return
        spec, env = self.specs[k], self._env(k)
        expert = scripted_expert(spec)
        ok = 0
        for _ in range(n):
            env.reset(self._next_variation(k))
            obs = self._obs(env)
            success = False
            for _ in range(spec.max_episode_steps):
                a = expert(env.observe("mw39"))
                if self.cfg.demo_action_noise > 0:
                    a = np.clip(a + self.rng.normal(0, self.cfg.demo_action_noise, 4), -1, 1)
                _, r, s, _ = env.step(a)
                nxt = self._obs(env)
                self.demos.add(obs, a, self.normalizers[k](r), nxt, 1.0, k, self.rng)
                obs = nxt
                success |= s
            ok += success
        self.demos_recorded.append(k)
        log.info("recorded %d scripted-expert episodes for %s (%d successful)", n, spec.name, ok)

    # -- one gradient update --------------------------------------------------------------------------------
    def _update(self) -> dict[str, float]:
        B = self.agent.config.batch_size
        n_demo = int(round(B * self.cfg.demo_ratio)) if self.demos.size else 0
        parts = [self.buffer.gather(self.buffer.sample_idx(B - n_demo, self.rng))]
        if n_demo:
            parts.append(self.demos.gather(self.demos.sample_idx(n_demo, self.rng)))
        batch = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        t = {k: torch.from_numpy(v) for k, v in batch.items()}
        t["embedding"] = torch.from_numpy(self.embeddings[batch["task_id"]])
        if n_demo:
            mask = np.zeros((B, 1), np.float32)
            mask[B - n_demo :] = 1.0
            t["demo_mask"] = torch.from_numpy(mask)
        self.updates += 1
        return self.agent.update(t, self.global_step)

    def _maybe_fit_dpmm(self) -> None:
        s = self.local_step + 1  # as the original: fits at local_step+1 == start, then every `every`
        if s != self.cfg.dpmm_start and s % self.cfg.dpmm_every != 0:
            return
        n = min(self.agent.config.dpmm.batch_size, self.buffer.size)
        idx = self.buffer.sample_idx(n, self.rng)
        d = self.buffer.gather(idx)
        Z = self.agent.encode_latents(
            d["obs"], self.embeddings[d["task_id"]], use_mean=self.agent.config.dpmm.fit_on == "mean"
        )
        info = self.agent.fit_dpmm(Z)
        self.k_history.append([self.global_step, int(info["K"])])
        m = min(self.cfg.latent_snapshot_size, n)
        np.savez_compressed(
            self.run_dir / "latents" / f"latents_step{self.global_step:09d}.npz",
            z=Z[:m],
            task_id=d["task_id"][:m],
            cluster=self.agent.dpmm.assign(Z[:m]),
            task_names=np.array(self.task_names),
        )
        if self._tb is not None:
            self._tb.add_scalar("train/K_comps", info["K"], self.global_step)
        log.info(
            "DPMM refit at step %d: K=%d clusters (%.1f s)",
            self.global_step,
            info["K"],
            info.get("seconds", 0),
        )

    # -- checkpoints ----------------------------------------------------------------------------------------
    def _ckpt_dir(self) -> Path:
        return self.run_dir / "checkpoint"

    def save_checkpoint(self, tag: str = "latest") -> None:
        tmp = self.run_dir / f".checkpoint.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        self.agent.save(tmp / "agent.pt")
        self.buffer.save(tmp / "buffer.npz")
        self.demos.save(tmp / "demos.npz")
        state = {
            "format": CKPT_FORMAT,
            "tag": tag,
            "task_index": self.task_index,
            "local_step": self.local_step,
            "global_step": self.global_step,
            "updates": self.updates,
            "demos_recorded": self.demos_recorded,
            "rng": self.rng.bit_generator.state,
            "normalizers": [[n.mean, n.var] for n in self.normalizers],
            "matrix": self.matrix.to_dict(),
            "eval_history": self.eval_history,
            "k_history": self.k_history,
            "fixed_variation": self.fixed_variation,
            "wall_s": self.wall_s,
            "next_eval": self.next_eval,
            "current_variation": {str(k): v for k, v in self.current_variation.items()},
        }
        (tmp / "trainer_state.json").write_text(json.dumps(state))
        final = self._ckpt_dir()
        old = self.run_dir / ".checkpoint.old"
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
        if tag.startswith("task"):
            self.agent.save(self.run_dir / f"agent_{tag}.pt")  # the agent after each phase, for export

    def load_checkpoint(self) -> None:
        d = self._ckpt_dir()
        st = json.loads((d / "trainer_state.json").read_text())
        if st.get("format") != CKPT_FORMAT:
            raise ValueError(f"{d}: not a LEGION run checkpoint (format {st.get('format')!r})")
        state = torch.load(d / "agent.pt", map_location=self.agent.device, weights_only=True)
        self.agent.load_state_dict(state)
        self.buffer.load(d / "buffer.npz")
        self.demos.load(d / "demos.npz")
        self.task_index, self.local_step = st["task_index"], st["local_step"]
        self.global_step, self.updates = st["global_step"], st["updates"]
        self.demos_recorded = st["demos_recorded"]
        self.rng.bit_generator.state = st["rng"]
        for n, (m, v) in zip(self.normalizers, st["normalizers"]):
            n.mean, n.var = m, v
        self.matrix = SuccessMatrix.from_dict(st["matrix"])
        self.eval_history, self.k_history = st["eval_history"], st["k_history"]
        self.fixed_variation, self.wall_s = st["fixed_variation"], st["wall_s"]
        self.next_eval = st["next_eval"]
        self.current_variation = {int(k): v for k, v in st["current_variation"].items()}

    # -- the loop ----------------------------------------------------------------------------------------------
    def _start_task(self, k: int) -> None:
        cfg = self.cfg
        if k > 0 and self.local_step == 0:
            if cfg.reset_critics:
                self.agent.critic.reset_parameters()
                self.agent.critic_target.load_state_dict(self.agent.critic.state_dict())
            if cfg.reset_vae:
                for m in self.agent.encoder.modules():
                    if isinstance(m, torch.nn.Linear):
                        torch.nn.init.xavier_uniform_(m.weight)
                        torch.nn.init.zeros_(m.bias)
            if cfg.reset_optimizers:
                self.agent.reset_optimizers()

    def run(self) -> dict:
        cfg = self.cfg
        (self.run_dir / "latents").mkdir(exist_ok=True)
        self._tb = tensorboard_writer(str(self.run_dir / "tb"))
        phases = self.specs if cfg.mode == "crl_queue" else [None]
        total = cfg.steps_per_task * len(phases)
        done_before = self.task_index * cfg.steps_per_task + self.local_step
        budget = cfg.max_env_steps if cfg.max_env_steps is not None else total
        stop_at = min(total, done_before + budget)
        bar = tqdm(total=total, initial=done_before, unit="step", disable=not self.progress, desc="train")
        t_start = time.perf_counter() - self.wall_s
        last_ckpt = self.global_step
        last_success = float("nan")
        stopped_early = False
        while self.task_index < len(phases):
            k = self.task_index
            active = list(range(len(self.specs))) if cfg.mode == "multitask" else [k]
            self._start_task(k)
            for j in active:
                self._record_demos(j)
            name = "all tasks" if cfg.mode == "multitask" else self.specs[k].name
            log.info("phase %d/%d: %s (%d steps)", k + 1, len(phases), name, cfg.steps_per_task)
            envs = {j: self._env(j) for j in active}
            obs = {}
            for j in active:
                # A resumed run re-enters the episode placement it checkpointed (no new RNG draw).
                if self.local_step == 0 or j not in self.current_variation:
                    self.current_variation[j] = self._next_variation(j)
                envs[j].reset(self.current_variation[j])
                obs[j] = self._obs(envs[j])
            while self.local_step < cfg.steps_per_task:
                # Scheduled evaluation at the first episode boundary at or after the scheduled step.
                if self.local_step >= self.next_eval and all(envs[j].steps == 0 for j in active):
                    res = self.evaluate()
                    self._record_eval(k, res)
                    last_success = float(np.mean(list(res.values())))
                    while self.next_eval <= self.local_step:
                        self.next_eval += cfg.eval_every
                for j in active:
                    if self.local_step < cfg.init_steps:
                        a = self.rng.uniform(-1.0, 1.0, 4).astype(np.float32)
                    else:
                        a = self.agent.act(obs[j], self.embeddings[j], deterministic=False)
                    _, r, _, _ = envs[j].step(a)
                    nxt = self._obs(envs[j])
                    r = self.normalizers[j](r) if cfg.normalize_reward else r
                    # Time-limit ends are not terminal: always bootstrap (not_done = 1), as the original.
                    self.buffer.add(obs[j], a, r, nxt, 1.0, j, self.rng)
                    obs[j] = nxt
                if self.local_step >= cfg.init_steps:
                    n_up = cfg.init_steps if (cfg.warmup_burst and self.local_step == cfg.init_steps) else 1
                    for _ in range(n_up * cfg.updates_per_step):
                        m = self._update()
                    if self._tb is not None and self.local_step % 1000 == 0:
                        for key, v in m.items():
                            self._tb.add_scalar(f"train/{key}", v, self.global_step)
                    self._maybe_fit_dpmm()
                self.local_step += 1
                self.global_step += 1
                bar.update(1)
                for j in active:
                    if envs[j].steps >= envs[j].max_episode_steps:
                        self.current_variation[j] = self._next_variation(j)
                        envs[j].reset(self.current_variation[j])
                        obs[j] = self._obs(envs[j])
                if all(envs[j].steps == 0 for j in active):
                    self.wall_s = time.perf_counter() - t_start
                    if self.global_step - last_ckpt >= cfg.checkpoint_every:
                        self.save_checkpoint()
                        last_ckpt = self.global_step
                    if self.global_step >= stop_at and self.local_step < cfg.steps_per_task:
                        stopped_early = True
                        break
                if not self.progress and self.local_step % 2500 == 0:
                    elapsed = max(time.perf_counter() - t_start, 1e-9)
                    log.info(
                        "%s: step %d/%d (global %d), %.1f updates/s, last eval success %.2f",
                        name,
                        self.local_step,
                        cfg.steps_per_task,
                        self.global_step,
                        self.updates / elapsed,
                        last_success,
                    )
                if self.progress and self.global_step % 200 == 0:
                    elapsed = max(time.perf_counter() - t_start, 1e-9)
                    bar.set_postfix(
                        task=name, success=f"{last_success:.2f}", ups=f"{self.updates / elapsed:.0f}"
                    )
            if stopped_early:
                break
            # End of the phase: final evaluation (stored into the success matrix) and a checkpoint.
            res = self.evaluate()
            self._record_eval(k, res)
            log.info("end of phase %d (%s): success %s", k + 1, name, json.dumps(res))
            self.task_index += 1
            self.local_step = 0
            self.next_eval = 0
            self.wall_s = time.perf_counter() - t_start
            self.save_checkpoint(tag=f"task{k}")
            last_ckpt = self.global_step
        bar.close()
        self.wall_s = time.perf_counter() - t_start
        if stopped_early:
            self.save_checkpoint()
            log.info(
                "stopped after %d env steps (resumable): legion train --resume %s",
                self.global_step,
                self.run_dir,
            )
        return self.write_report(finished=not stopped_early)

    def write_report(self, finished: bool) -> dict:
        cfg = self.cfg
        report = {
            "finished": finished,
            "run_dir": str(self.run_dir),
            "git_commit": _git_commit(),
            "tasks": self.task_names,
            "mode": cfg.mode,
            "embodiment": cfg.embodiment,
            "seed": cfg.seed,
            "env_steps": self.global_step,
            "gradient_updates": self.updates,
            "wall_time_s": self.wall_s,
            "replay": {
                "policy": cfg.buffer_policy,
                "capacity": cfg.buffer_capacity,
                "size": self.buffer.size,
                "evicted": self.buffer.evicted,
                "per_task": self.buffer.task_counts(),
                "note": "keep_all = full rehearsal of every past task (method notes §13.5)"
                if cfg.buffer_policy == "keep_all"
                else "",
            },
            "demonstrations": {
                "used": cfg.demo_episodes_per_task > 0,
                "episodes_per_task": cfg.demo_episodes_per_task,
                "batch_fraction": cfg.demo_ratio if cfg.demo_episodes_per_task > 0 else 0.0,
            },
            "k_history": self.k_history,
        }
        config = {"train": dataclasses.asdict(cfg), "agent": self.agent.config.to_dict(), "report": report}
        metrics = write_metrics_json(self.run_dir / "metrics.json", self.matrix, config=config)
        (self.run_dir / "report.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
        if self._tb is not None:
            self._tb.flush()
        return {**report, "metrics": metrics}


def new_run_dir(cfg: TrainConfig, runs_dir: str | Path = "runs") -> Path:
    return Path(runs_dir) / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"


def save_resolved_config(cfg: TrainConfig, run_dir: Path, preset: str | None, overrides: list[str]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    data = {"preset": preset, "overrides": list(overrides), "config": dataclasses.asdict(cfg)}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def resume(run_dir: str | Path, progress: bool = True, max_env_steps: int | None = None) -> dict:
    """Continue a run from its last checkpoint with the config it was started with."""
    run_dir = Path(run_dir)
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    cfg = TrainConfig(**saved["config"])
    cfg.max_env_steps = max_env_steps
    trainer = Trainer(cfg, run_dir, progress=progress)
    trainer.load_checkpoint()
    return trainer.run()
