"""The LEGION agent: SAC with per-task temperature over [s, z], a VAE task encoder q(z|s,e) trained only by its
own loss, and a DPMM prior over z (the method: docs/method.md).

`LegionAgent.update` is the algorithm, readable top to bottom, in the exact order of
docs/method.md#update-order:

    1. VAE step, only when (global_step + 1) % vae_update_every == 0  (encoder + both decoders)
    2. critic step, with z from the just-updated encoder
    3. actor step, then temperature step
    4. Polyak update of the twin target critics

The losses are in docs/method.md#losses. The DPMM refit is scheduled by the trainer, which owns the replay
buffer: it calls
`encode_latents(obs, emb, use_mean=cfg.dpmm.fit_on == "mean")` on `cfg.dpmm.batch_size` transitions and then
`fit_dpmm(Z)`.

Latent noise. The original calls the encoder anew for every use of z (critic s, critic s', actor s), each call
drawing a fresh ε. Between those calls the encoder does not change, so we run it ONCE on [s; s'] and draw the
three independent ε from the same (μ, σ): the same distribution of z for every term, one forward pass instead
of three. z is detached for the RL losses: RL gradients never reach the encoder (docs/method.md#vae).

Randomness. All sampling (ε of z, ξ of the policy) uses the agent's own `torch.Generator` (seeded by
`config.seed`, saved in `state_dict`), so that a saved and reloaded agent makes exactly the same next update
and actions, independently of whatever else uses torch's global RNG in the process.
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from legion_core.training.agent import losses
from legion_core.training.agent.config import AgentConfig
from legion_core.training.agent.dpmm import DPMMKnowledgeSpace
from legion_core.training.agent.networks import Actor, ContextDecoder, DynamicsDecoder, TwinCritic, VAEEncoder

__all__ = ["LegionAgent", "BATCH_KEYS"]

#: Keys (and shapes) of the batch dict `update` expects; all torch tensors on `config.device`.
BATCH_KEYS = {
    "obs": "[B, obs_dim] float32",
    "action": "[B, action_dim] float32 in [-1, 1]",
    "reward": "[B, 1] float32",
    "next_obs": "[B, obs_dim] float32",
    "not_done": "[B, 1] float32 (1 = bootstrap; always 1 at the 150-step time limit, docs/method.md#tasks)",
    "task_id": "[B] int64 < max_tasks",
    "embedding": "[B, embed_dim] float32, the embedding of each transition's task",
}
#: Optional batch keys: "demo_mask" [B, 1] float32, 1 on demonstration rows (the BC term, config.bc_weight).

_STATE_FORMAT = "legion-agent/1"


@functools.cache
def fast_fp32_matmul_is_exact() -> bool:
    """Whether torch's float32 matmul precision "medium" keeps IEEE-fp32 accuracy on this CPU (probed once).

    With "medium", torch routes fp32 CPU matmuls to oneDNN and *allows* it bf16 internals. On AVX-512 CPUs
    without AMX (e.g. the AMD EPYC dev machines) oneDNN still runs its plain f32 brgemm kernel
    (ONEDNN_VERBOSE: `brg_matmul:avx512_core`, f32 src/wei/dst), which is ~2.2× faster than MKL's sgemm there,
    with the same accuracy (median relative error 2.5e-7 vs 1.9e-7 for MKL; a bf16 matmul is ~3e-3). Where
    oneDNN would really compute in bf16, the probe sees a ~1e-3 error and we keep "highest".
    """
    prev = torch.get_float32_matmul_precision()
    g = torch.Generator().manual_seed(0)
    a = torch.randn(256, 300, generator=g)
    w = torch.randn(2, 300, 300, generator=g) / 17.0
    ref = (a.double() @ w[0].double(), torch.bmm(a.double().expand(2, -1, -1), w.double()))

    def rel_err() -> float:
        out = (a @ w[0], torch.bmm(a.expand(2, -1, -1), w))
        return max(
            float(((o.double() - r).abs() / r.abs().clamp_min(1e-6)).median()) for o, r in zip(out, ref)
        )

    try:
        torch.set_float32_matmul_precision("highest")
        ieee = rel_err()
        torch.set_float32_matmul_precision("medium")
        medium = rel_err()
    finally:
        torch.set_float32_matmul_precision(prev)
    return medium <= 4.0 * ieee + 1e-7


class LegionAgent:
    """LEGION agent. See the module docstring for the update order and the conventions.

    Args:
        config: hyper-parameters (`AgentConfig`).
        dpmm_dir: work directory for bnpy's output (two alternating sub-directories). None: a fresh temporary
            directory (fine for tests and benchmarks; a trainer should pass its run directory so that the
            DPMM can warm-start after a resume).
    """

    def __init__(self, config: AgentConfig | None = None, dpmm_dir: str | os.PathLike | None = None):
        self.config = cfg = config if config is not None else AgentConfig()
        self.device = torch.device(cfg.device)
        if cfg.num_threads is not None:
            # Intra-op threads are process-wide in torch. On the 2-core dev machine torch's default (all cores)
            # is the fastest for batch-512 updates (bench_train.py); 1 thread is right when several learners or
            # env workers share the cores.
            torch.set_num_threads(cfg.num_threads)

        # Networks are built under a forked RNG seeded by config.seed: the same config gives the same
        # initial weights, and building an agent does not disturb the caller's global RNG stream.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.encoder = VAEEncoder(cfg.obs_dim, cfg.embed_dim, cfg.latent_dim, cfg.vae_hidden)
            self.context_decoder = ContextDecoder(cfg.latent_dim, cfg.embed_dim, cfg.vae_hidden)
            self.dynamics_decoder = DynamicsDecoder(
                cfg.obs_dim, cfg.action_dim, cfg.latent_dim, cfg.vae_hidden
            )
            self.actor = Actor(cfg.obs_dim, cfg.latent_dim, cfg.action_dim, cfg.actor_hidden)
            self.critic = TwinCritic(cfg.obs_dim, cfg.latent_dim, cfg.action_dim, cfg.actor_hidden)
        for m in self._modules().values():
            m.to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        # Disentangled temperature (docs/method.md#actor-and-critic): one log α per task id, initialised at
        # log(init_temperature).
        self.log_alpha = torch.nn.Parameter(
            torch.full((cfg.max_tasks,), float(np.log(cfg.init_temperature)), device=self.device)
        )

        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(cfg.seed)
        # Scoped float32 matmul precision of update/act/encode (see `fast_fp32_matmul_is_exact`). Only CPU:
        # on CUDA "medium" really means bf16.
        self._matmul_precision: str | None = None
        if cfg.fast_cpu_matmul and self.device.type == "cpu" and fast_fp32_matmul_is_exact():
            self._matmul_precision = "medium"

        self.dpmm = DPMMKnowledgeSpace.from_config(cfg.dpmm, dpmm_dir)

        # Forward functions actually called in `update`/`act`; optionally compiled (config.compile).
        self._critic_fwd = self.critic.forward_stacked
        self._target_fwd = self.critic_target.forward_stacked
        self._actor_fwd = self.actor.forward
        if cfg.compile:
            self._critic_fwd = torch.compile(self.critic.forward_stacked, dynamic=False)
            self._target_fwd = torch.compile(self.critic_target.forward_stacked, dynamic=False)
            self._actor_fwd = torch.compile(self.actor.forward, dynamic=False)

        self.reset_optimizers()

    # ------------------------------------------------------------------------------------------------------
    # Optimizers
    # ------------------------------------------------------------------------------------------------------
    def reset_optimizers(self) -> None:
        """(Re)create the four Adam optimizers, discarding their moments (`should_reset_optimizer`, done at
        every task switch in the lifelong setting). Networks, temperatures and the DPMM are untouched."""
        cfg = self.config
        # fused=True: one kernel per parameter group instead of ~10 elementwise passes per tensor (measured
        # 0.17 ms instead of 1.0 ms per critic step on CPU); same Adam update up to float rounding.
        kw = dict(lr=cfg.lr, betas=cfg.adam_betas, fused=self.device.type in ("cpu", "cuda"))
        vae_params = [
            *self.encoder.parameters(),
            *self.context_decoder.parameters(),
            *self.dynamics_decoder.parameters(),
        ]
        self.vae_optimizer = torch.optim.Adam(vae_params, **kw)
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), **kw)
        self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), **kw)
        self.alpha_optimizer = torch.optim.Adam([self.log_alpha], **kw)

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return dict(
            vae=self.vae_optimizer,
            actor=self.actor_optimizer,
            critic=self.critic_optimizer,
            alpha=self.alpha_optimizer,
        )

    def _modules(self) -> dict[str, torch.nn.Module]:
        mods = dict(
            encoder=self.encoder,
            context_decoder=self.context_decoder,
            dynamics_decoder=self.dynamics_decoder,
            actor=self.actor,
            critic=self.critic,
        )
        if hasattr(self, "critic_target"):
            mods["critic_target"] = self.critic_target
        return mods

    # ------------------------------------------------------------------------------------------------------
    # Latents
    # ------------------------------------------------------------------------------------------------------
    def _randn(self, *shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=self.generator, device=self.device)

    @contextmanager
    def _precision(self) -> Iterator[None]:
        """Apply the agent's float32 matmul precision for the duration of a call, then restore the caller's."""
        if self._matmul_precision is None:
            yield
            return
        prev = torch.get_float32_matmul_precision()
        torch.set_float32_matmul_precision(self._matmul_precision)
        try:
            yield
        finally:
            torch.set_float32_matmul_precision(prev)

    def _clamp(self, logvar: torch.Tensor) -> torch.Tensor:
        """The configured log σ² clamp (None = original, unclamped)."""
        return logvar if self.config.logvar_clamp is None else logvar.clamp(*self.config.logvar_clamp)

    def _latent_params(self, obs: torch.Tensor, embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """μ, log σ² of q(z|s,e)."""
        mu, logvar = self.encoder(obs, embedding)
        return mu, self._clamp(logvar)

    def alpha(self, task_id: torch.Tensor) -> torch.Tensor:
        """α_k = exp(log_alpha[k]) of each transition's task, [B, 1] (with gradient to log_alpha)."""
        return self.log_alpha.exp()[task_id].unsqueeze(-1)

    # ------------------------------------------------------------------------------------------------------
    # The update (docs/method.md#update-order)
    # ------------------------------------------------------------------------------------------------------
    def update(self, batch: dict[str, torch.Tensor], global_step: int) -> dict[str, float]:
        """One LEGION gradient update on a replay batch (keys: `BATCH_KEYS`). Returns scalar metrics.

        `global_step` is the env step counter across tasks; it gates the VAE step (docs/method.md#losses).
        """
        with self._precision():
            return self._update(batch, global_step)

    def _update(self, batch: dict[str, torch.Tensor], global_step: int) -> dict[str, float]:
        cfg = self.config
        obs, action, reward = batch["obs"], batch["action"], batch["reward"]
        next_obs, not_done = batch["next_obs"], batch["not_done"]
        task_id, embedding = batch["task_id"], batch["embedding"]
        B = obs.shape[0]
        # [B] instead of [B, 1] would silently broadcast the TD target to [B, B]: refuse it.
        if reward.shape != (B, 1) or not_done.shape != (B, 1) or task_id.shape != (B,):
            raise ValueError(
                f"batch shapes: reward {tuple(reward.shape)} and not_done {tuple(not_done.shape)} must be "
                f"[{B}, 1], task_id {tuple(task_id.shape)} must be [{B}] (see BATCH_KEYS)"
            )
        metrics: dict[str, float] = {}

        # ---- 1. VAE step (encoder + decoders), gated: the whole VAE update runs every vae_update_every steps
        vae_step = (global_step + 1) % cfg.vae_update_every == 0
        if vae_step:
            metrics.update(self._update_vae(obs, action, next_obs, embedding))
        metrics["vae_updated"] = float(vae_step)

        # ---- z for the RL losses: ONE encoder pass over [s; s'], three independent samples, no gradient
        with torch.no_grad():
            mu, logvar = self.encoder.forward_shared_embedding(torch.stack([obs, next_obs]), embedding)
            std = (0.5 * self._clamp(logvar)).exp()
            eps = self._randn(3, B, cfg.latent_dim)
            z = mu[0] + std[0] * eps[0]  # critic, at s
            z_next = mu[1] + std[1] * eps[1]  # target, at s'
            z_pi = mu[0] + std[0] * eps[2]  # actor and temperature, at s

        # ---- 2. critic step
        with torch.no_grad():
            next_action, next_log_pi = self._sample_action(next_obs, z_next)
            target_q = self._target_fwd(torch.cat([next_obs, z_next, next_action], -1))
            y = losses.critic_target(
                reward, not_done, cfg.gamma, target_q[0], target_q[1], next_log_pi, self.alpha(task_id)
            )
        q = self._critic_fwd(torch.cat([obs, z, action], -1))
        critic_loss = losses.critic_loss(q[0], q[1], y)
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()

        # ---- 3. actor step, then temperature step
        mean_a, log_std_a = self._actor_fwd(obs, z_pi)
        pi_action, log_pi = self._squashed_sample(mean_a, log_std_a)
        # The critic only passes the gradient through to the action: freezing its parameters skips their
        # (unused) weight gradients. The original lets them accumulate and clears them at the next critic step.
        self.critic.requires_grad_(False)
        min_q_pi = self._critic_fwd(torch.cat([obs, z_pi, pi_action], -1)).amin(dim=0)
        self.critic.requires_grad_(True)
        alpha = self.alpha(task_id)
        actor_loss = losses.actor_loss(log_pi, min_q_pi, alpha)
        demo_mask = batch.get("demo_mask")
        if cfg.bc_weight > 0 and demo_mask is not None and bool(demo_mask.any()):
            l_bc = losses.bc_loss(torch.tanh(mean_a), action, demo_mask)
            actor_loss = actor_loss + cfg.bc_weight * min_q_pi.abs().mean().detach() * l_bc
            metrics["bc_loss"] = l_bc.item()
        self.actor_optimizer.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_optimizer.step()

        alpha_loss = losses.temperature_loss(alpha, log_pi, cfg.target_entropy)
        self.alpha_optimizer.zero_grad(set_to_none=True)
        alpha_loss.backward()
        self.alpha_optimizer.step()

        # ---- 4. Polyak update of the target twins, every step
        with torch.no_grad():
            torch._foreach_lerp_(
                list(self.critic_target.parameters()), list(self.critic.parameters()), cfg.tau
            )

        metrics.update(
            critic_loss=critic_loss.item(),
            q_mean=q.mean().item(),
            actor_loss=actor_loss.item(),
            alpha_loss=alpha_loss.item(),
            alpha_mean=alpha.mean().item(),
            entropy=-log_pi.mean().item(),
        )
        return metrics

    def _sample_action(self, obs: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """a = tanh(μ + σξ) and log π(a) [B,1], ξ from the agent's generator."""
        return self._squashed_sample(*self._actor_fwd(obs, z))

    def _squashed_sample(
        self, mean: torch.Tensor, log_std: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        noise = torch.randn(mean.shape, generator=self.generator, device=mean.device, dtype=mean.dtype)
        u = mean + log_std.exp() * noise
        return torch.tanh(u), Actor.squashed_log_prob(noise, log_std, u)

    def _update_vae(
        self, obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor, embedding: torch.Tensor
    ) -> dict[str, float]:
        """One Adam step on encoder + both decoders: L_VAE = 0.5·L_dyn + L_embed + β·L_KL
        (docs/method.md#losses)."""
        cfg = self.config
        mu, logvar = self._latent_params(obs, embedding)
        z = mu + (0.5 * logvar).exp() * self._randn(*mu.shape)

        l_dyn = losses.dynamics_loss(self.dynamics_decoder(obs, action, z), next_obs)
        l_embed = losses.embedding_loss(self.context_decoder(z), embedding, cfg.embed_loss_reduction)
        if cfg.kl_to_dpmm and self.dpmm.fitted:
            # Soft KL to the DPMM components (docs/method.md#dpmm), responsibilities of the SAMPLED z (no
            # gradient through them).
            resp = self.dpmm.responsibilities(z.detach())
            means, variances = self.dpmm.torch_components(z.device, z.dtype)
            l_kl = losses.kl_to_mixture(mu, logvar, resp, means, variances)
        else:  # before the first fit, or the Gaussian ablation
            l_kl = losses.kl_standard_normal(mu, logvar)
        loss = losses.vae_loss(l_dyn, l_embed, l_kl, cfg.dyn_weight, cfg.embed_weight, cfg.beta_kl)

        self.vae_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.vae_optimizer.step()
        return dict(
            vae_loss=loss.item(), dyn_loss=l_dyn.item(), embed_loss=l_embed.item(), kl_loss=l_kl.item()
        )

    # ------------------------------------------------------------------------------------------------------
    # Acting
    # ------------------------------------------------------------------------------------------------------
    def _as_tensor(self, x: Any, dim: int) -> tuple[torch.Tensor, bool]:
        t = torch.as_tensor(x, dtype=torch.float32, device=self.device)
        single = t.ndim == 1
        if single:
            t = t.unsqueeze(0)
        if t.shape[-1] != dim:
            raise ValueError(f"expected last dimension {dim}, got shape {tuple(t.shape)}")
        return t, single

    def act(
        self,
        obs: np.ndarray,
        embedding: np.ndarray,
        task_id: int | np.ndarray | None = None,
        deterministic: bool = True,
    ) -> np.ndarray:
        """Action(s) in [-1, 1]^A for obs [obs_dim] or [N, obs_dim] and the task embedding [embed_dim] or
        [N, embed_dim] (one embedding is broadcast over N observations).

        deterministic=True (evaluation / deployment): z per `config.z_mode` ("mean": z = μ(s,e); "sample": the
        original's sampled z), a = tanh(μ_a) (docs/method.md#evaluation). deterministic=False (exploration): z
        and a sampled.
        `task_id` is accepted for the caller's bookkeeping only: the policy sees the task through the
        embedding (the temperature is the only per-id parameter and is not used for acting).
        """
        del task_id
        with torch.no_grad(), self._precision():
            return self._act(obs, embedding, deterministic)

    def _act(self, obs: Any, embedding: Any, deterministic: bool) -> np.ndarray:
        o, single = self._as_tensor(obs, self.config.obs_dim)
        e, _ = self._as_tensor(embedding, self.config.embed_dim)
        if e.shape[0] != o.shape[0]:
            e = e.expand(o.shape[0], -1)
        mu, logvar = self._latent_params(o, e)
        if deterministic and self.config.z_mode == "mean":
            z = mu
        else:
            z = mu + (0.5 * logvar).exp() * self._randn(*mu.shape)
        if deterministic:
            a = torch.tanh(self._actor_fwd(o, z)[0])
        else:
            a, _ = self._sample_action(o, z)
        a = a.clamp(-1.0, 1.0).cpu().numpy()  # the original agent clamps actions to [-1, 1] too
        return a[0] if single else a

    # ------------------------------------------------------------------------------------------------------
    # DPMM
    # ------------------------------------------------------------------------------------------------------
    def encode_latents(
        self, obs: np.ndarray | torch.Tensor, embedding: np.ndarray | torch.Tensor, use_mean: bool = False
    ) -> np.ndarray:
        """Latents of N transitions for a DPMM fit, [N, latent_dim] float64 numpy (docs/method.md#dpmm).

        use_mean=False: sampled z (original); True: μ. The trainer passes `config.dpmm.fit_on == "mean"`.
        """
        o, _ = self._as_tensor(obs, self.config.obs_dim)
        e, _ = self._as_tensor(embedding, self.config.embed_dim)
        with torch.no_grad(), self._precision():
            mu, logvar = self._latent_params(o, e)
            z = mu if use_mean else mu + (0.5 * logvar).exp() * self._randn(*mu.shape)
        return z.cpu().double().numpy()

    def fit_dpmm(self, Z: np.ndarray) -> dict[str, Any]:
        """(Re)fit the DPMM prior on latents Z [N, latent_dim] (warm-started after the first fit).
        Returns the fit summary (K, laps, seconds, warm_start, converged, output_path)."""
        return self.dpmm.fit(Z)

    # ------------------------------------------------------------------------------------------------------
    # Checkpoints (explicit contract, Stable-Baselines3 style)
    # ------------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed for an exact resume, as tensors and plain Python values (safe for
        `torch.load(..., weights_only=True)`):

        format, config (dict), one state dict per network (incl. critic_target), log_alpha, the four
        optimizers' states, the DPMM posterior (numpy arrays stored as tensors) and the agent's RNG state.
        The bnpy output directory is NOT inside: after loading, the DPMM is fully usable for the KL, and the
        next fit warm-starts only if the directory named in the state still exists.
        """
        dpmm_state = {
            k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v
            for k, v in self.dpmm.state_dict().items()
        }
        return dict(
            format=_STATE_FORMAT,
            config=self.config.to_dict(),
            networks={name: m.state_dict() for name, m in self._modules().items()},
            log_alpha=self.log_alpha.detach().clone(),
            optimizers={name: opt.state_dict() for name, opt in self._optimizers().items()},
            dpmm=dpmm_state,
            rng=self.generator.get_state(),
        )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a `state_dict()` into this agent (same shapes required; the config is not replaced, use
        `LegionAgent.from_state_dict` to rebuild from the saved config)."""
        if state.get("format") != _STATE_FORMAT:
            raise ValueError(f"not a LEGION agent state (format={state.get('format')!r})")
        for name, m in self._modules().items():
            m.load_state_dict(state["networks"][name])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        for name, opt in self._optimizers().items():
            opt.load_state_dict(state["optimizers"][name])
        self.dpmm.load_state_dict(state["dpmm"])
        self.generator.set_state(state["rng"].cpu())

    @classmethod
    def from_state_dict(
        cls, state: dict[str, Any], dpmm_dir: str | os.PathLike | None = None, **config_overrides: Any
    ) -> LegionAgent:
        """Build an agent from the config saved in `state` (optionally overriding e.g. device) and load it."""
        cfg_dict = dict(state["config"])
        cfg_dict.update(config_overrides)
        agent = cls(AgentConfig(**cfg_dict), dpmm_dir=dpmm_dir)
        agent.load_state_dict(state)
        return agent

    def save(self, path: str | os.PathLike) -> None:
        """`torch.save(self.state_dict(), path)` (atomic: written to a temp file, then renamed)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        torch.save(self.state_dict(), tmp)
        os.replace(tmp, path)

    @classmethod
    def load(
        cls, path: str | os.PathLike, dpmm_dir: str | os.PathLike | None = None, **config_overrides: Any
    ) -> LegionAgent:
        """Inverse of `save` (weights_only load: no code is unpickled)."""
        state = torch.load(path, map_location=config_overrides.get("device", "cpu"), weights_only=True)
        return cls.from_state_dict(state, dpmm_dir=dpmm_dir, **config_overrides)
