"""Hyper-parameters of the LEGION agent (SAC + VAE task encoder + DPMM knowledge space), CleanRL style.

Every default is the original LEGION value (docs/method.md; the section comments below point to its anchors)
unless a comment says otherwise. Where the original is odd (docs/method.md#differences) the original behaviour
stays available behind a named option, and the default is the choice we think is better, with the reason next
to it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal


def _birth_kwargs() -> dict[str, Any]:
    # docs/method.md#dpmm, "birth": bnpy birth-move options of the original dpmm_cfg, verbatim.
    return dict(
        b_startLap=1,
        b_stopLap=2,
        b_Kfresh=10,
        b_minNumAtomsForNewComp=10,
        b_minNumAtomsForTargetComp=10,
        b_minNumAtomsForRetainComp=10,
        b_minPercChangeInNumAtomsToReactivate=0.03,
        b_debugWriteHTML=0,
    )


def _merge_kwargs() -> dict[str, Any]:
    # docs/method.md#dpmm, "merge": bnpy merge-move options of the original dpmm_cfg, verbatim.
    return dict(
        m_startLap=2,
        m_maxNumPairsContainingComp=50,
        m_nLapToReactivate=1,
        m_pair_ranking_procedure="obsmodel_elbo",
        m_pair_ranking_direction="descending",
    )


@dataclass
class DPMMConfig:
    """Dirichlet-process mixture of diagonal Gaussians over the latent z, fit by bnpy memoized VB
    (docs/method.md#dpmm)."""

    gamma0: float = 5.0
    """DP concentration. Larger values make new clusters more likely."""
    sF: float = 1e-5
    """Scale of the prior expected covariance, E[Σ] = sF·I (`ECovMat='eye'`). 1e-5 strongly favours tight
    clusters (fitted variances in the paper data are 3e-6..1e-4 per dimension:
    docs/method.md#reference-numbers)."""
    n_batch: int = 5
    """Number of data batches of memoized VB (`nBatch`)."""
    n_lap: int = 2
    """Passes through the data per fit (`nLap = num_lap`)."""
    birth_kwargs: dict[str, Any] = field(default_factory=_birth_kwargs)
    """bnpy birth-move options. There is no delete move in the original."""
    merge_kwargs: dict[str, Any] = field(default_factory=_merge_kwargs)
    """bnpy merge-move options."""
    batch_size: int = 3000
    """Number of replay transitions encoded into latents for one fit (`dpmm_batch_size`)."""
    fit_on: Literal["sample", "mean"] = "sample"
    """Which latent the caller should fit the DPMM on: `"sample"` z ~ q(z|s,e) (original) or `"mean"` μ.
    Default = original: a mixture fitted to samples models the *aggregate* posterior E_s[q(z|s,e)], which is the
    prior that makes the KL term of the ELBO tight; fitting on μ ignores the encoder variance and gives clusters
    narrower than the q's they are compared against in the KL (it looks odd, docs/method.md#differences, but
    it is the principled choice). Used by the trainer when it calls `LegionAgent.encode_latents(..., use_mean=...)`."""


@dataclass
class AgentConfig:
    """All hyper-parameters of `LegionAgent`. Shapes as the original's, our sizes (12-d obs, 384-d MiniLM)."""

    # ---- shapes (docs/method.md#vae, docs/method.md#actor-and-critic) ---------------------------------
    obs_dim: int = 12
    """Observation size D_s: hand xyz, object (padded to 6), goal xyz (docs/method.md#tasks)."""
    action_dim: int = 4
    """Action size |A|: Δxyz of the mocap target in 1 cm units, and the gripper, all in [-1, 1]
    (docs/method.md#tasks)."""
    embed_dim: int = 384
    """Task-embedding size. We use 384-d MiniLM sentence embeddings (unit L2 norm); the paper used a frozen
    768-d RoBERTa table (docs/method.md#task-embedding)."""
    latent_dim: int = 10
    """Size d_z of the task latent z."""
    vae_hidden: int = 400
    """Width of the VAE encoder trunk and of both decoders."""
    actor_hidden: int = 300
    """Width of the actor and of each critic (the critic reuses the actor's hidden_dim)."""

    # ---- SAC (docs/method.md#actor-and-critic, docs/method.md#losses) ----------------------------------
    gamma: float = 0.99
    """Discount factor γ per env step."""
    tau: float = 0.005
    """Polyak coefficient of the target critics, applied every update (docs/method.md#update-order)."""
    lr: float = 3e-4
    """Adam learning rate of every optimizer: encoder+decoders, actor, critic, temperature."""
    adam_betas: tuple[float, float] = (0.9, 0.999)
    """Adam (β1, β2) of every optimizer."""
    batch_size: int = 512
    """Replay batch per gradient update (512 lifelong, 1280 in the multitask CLI). The agent takes whatever
    batch it is given; the trainer samples this many."""
    init_temperature: float = 1.0
    """Initial entropy temperature α of every task, i.e. log_alpha starts at log(1.0) = 0."""
    target_entropy: float = -4.0
    """Entropy target H_target = -|A|."""
    max_tasks: int = 16
    """Length of the per-task log_alpha vector (`should_use_disentangled_alpha`): the original has one
    entry per MT10 task (10); we reserve 16 so that tasks can be added without changing checkpoint shapes.
    Every `task_id` must be < max_tasks."""

    # ---- VAE loss (docs/method.md#losses) ----------------------------------------------------------------
    beta_kl: float = 0.001
    """Weight β of the KL term (`beta_kl_z`: 0.001 lifelong, 0.002 multitask)."""
    vae_update_every: int = 50
    """`kl_div_update_freq`: the WHOLE VAE update (encoder and both decoders) runs only when
    (global_step + 1) % vae_update_every == 0 (50 lifelong, 30 multitask). Original value kept, although odd
    (docs/method.md#differences):
    the latent then moves slowly, which keeps the critic's and actor's input distribution nearly stationary."""
    dyn_weight: float = 0.5
    """Weight of the next-state prediction loss L_dyn (mean over B×D_s)."""
    embed_weight: float = 1.0
    """Weight of the embedding reconstruction loss L_embed."""
    embed_loss_reduction: Literal["sum", "mean", "batch_mean"] = "sum"
    """Reduction of L_embed = Σ (tanh(Dec_e(z)) - e)^2. `"sum"` over B×embed_dim (original), `"mean"` over
    B×embed_dim, `"batch_mean"` sum over embed_dim then mean over B (per-sample ELBO convention).
    Default = original `"sum"`, on purpose (docs/method.md#losses):
    * the complaint about a constant ≈100·B floor comes from dim 588 of the RoBERTa table (≈11, out of
      reach of tanh); MiniLM embeddings are unit-norm with |e_i| < 1, so with our embeddings there is no floor;
    * Adam makes each decoder blind to its own loss scale (the decoders only see their own term), so the
      reduction only sets the balance of the three terms in the ENCODER gradient. "sum" is what the β=0.001 and
      0.5 weights were tuned against: the embedding term dominates and makes z encode task identity, which is
      what yields one DPMM cluster per task (docs/method.md#reference-numbers). "mean" would shrink that term
      by B·embed_dim (~2e5) and hand the encoder to the KL and dynamics terms: a different method that would
      need β and dyn_weight re-tuned;
    * the remaining oddity, scaling with B, does not bite at a fixed batch size; use "batch_mean" with
      embed_weight=batch_size to keep the balance while changing batch size."""
    logvar_clamp: tuple[float, float] | None = (-20.0, 5.0)
    """Clamp of the encoder's log σ² before use, or None for the original unclamped head (docs/method.md#vae).
    Default: a wide clamp, a NaN guard only. Fitted DPMM variances are ~1e-6..1e-4 (log ≈ -14..-9) and the KL
    pushes σ² towards them, so the bounds never bind in healthy training, but exp(0.5·logvar) of a diverging head
    overflows float32 and poisons every network through the replay-sampled latents."""
    kl_to_dpmm: bool = True
    """KL against the DPMM once it has been fitted (`should_use_dpmm`); False = the "LEGION (Gauss)" ablation,
    standard-normal KL always. Before the first fit the standard-normal KL is used either way
    (docs/method.md#dpmm)."""

    # ---- acting (docs/method.md#evaluation, docs/method.md#deployment) ----------------------------------
    z_mode: Literal["mean", "sample"] = "mean"
    """Latent used by `act()`: `"mean"` z = μ(s, e) (default) or `"sample"` z ~ q(z|s,e) (original: z is sampled
    even at evaluation and deployment). Default "mean": deterministic evaluation and deployment (the same
    observation gives the same action, which the ROS runtime and replay tests rely on); the actor is trained on
    samples whose σ is pulled towards the DPMM cluster width (≤1e-2), so μ is inside the training distribution.
    Training-time exploration (`deterministic=False`) always samples z, as the original."""

    # ---- DPMM knowledge space (docs/method.md#dpmm) ------------------------------------------------------
    dpmm: DPMMConfig = field(default_factory=DPMMConfig)
    """Settings of the DPMM prior."""

    # ---- demonstration seeding (not in the original) ------------------------------------------------------------
    bc_weight: float = 0.0
    """Weight of a behaviour-cloning term on demonstration rows of the batch (rows flagged by the optional batch
    key "demo_mask"): the actor loss becomes L_π + bc_weight·mean|Q|·mean_demo ‖tanh(μ_a(s,z)) - a_demo‖² (the
    TD3+BC form, Fujimoto & Gu 2021, with the Q scale so that the weight is dimensionless; 0.4 = their α 2.5).
    0 = the original LEGION actor loss. Used only with demonstration seeding, on CPU budgets where RLPD-style
    seeding alone leaves skills short (docs/decisions/demonstration-seeding.md); the model card says so."""

    # ---- runtime ----------------------------------------------------------------------------------------------
    seed: int = 0
    """Seed of the initial weights and of the agent's private torch.Generator (latent ε, policy ξ)."""
    device: str = "cpu"
    """torch device of all networks (bnpy always runs on the CPU)."""
    num_threads: int | None = None
    """torch intra-op threads set by `LegionAgent` (None = leave torch's setting alone). On the 2-core dev machine
    the default (= physical cores) is best for batch-512 updates; set 1 when several agents share a machine."""
    fast_cpu_matmul: bool = True
    """On CPU, run the agent's fp32 matmuls through oneDNN (torch float32 matmul precision "medium", scoped to
    the agent's calls) when a one-time probe shows it is as accurate as IEEE fp32; ~2.2× faster matmuls on the
    AMD EPYC dev machines, where MKL's sgemm is slow. See `agent.fast_fp32_matmul_is_exact`."""
    compile: bool = False
    """Wrap the critic, target and actor forwards with torch.compile. Off: on the CPU dev machine the compiled
    update was 1.6× SLOWER than eager (59.7 vs 37.4 ms, 35 s warm-up; bench_train.py docstring)."""

    def __post_init__(self) -> None:
        if isinstance(self.dpmm, dict):  # from a YAML / checkpoint dict
            self.dpmm = DPMMConfig(**self.dpmm)
        if self.embed_loss_reduction not in ("sum", "mean", "batch_mean"):
            raise ValueError(
                f"embed_loss_reduction must be sum|mean|batch_mean, got {self.embed_loss_reduction!r}"
            )
        if self.z_mode not in ("mean", "sample"):
            raise ValueError(f"z_mode must be mean|sample, got {self.z_mode!r}")
        if self.dpmm.fit_on not in ("mean", "sample"):
            raise ValueError(f"dpmm.fit_on must be mean|sample, got {self.dpmm.fit_on!r}")
        if self.vae_update_every < 1:
            raise ValueError("vae_update_every must be >= 1")
        self.adam_betas = tuple(self.adam_betas)  # type: ignore[assignment]
        if self.logvar_clamp is not None:
            self.logvar_clamp = tuple(self.logvar_clamp)  # type: ignore[assignment]

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python dict (YAML/JSON/checkpoint friendly); `AgentConfig(**d)` rebuilds it."""
        return asdict(self)

    @classmethod
    def original(cls, **overrides: Any) -> AgentConfig:
        """The original LEGION behaviour at its odd points (docs/method.md#differences; for ablations and
        fidelity checks)."""
        kw: dict[str, Any] = dict(embed_loss_reduction="sum", logvar_clamp=None, z_mode="sample")
        kw.update(overrides)
        return cls(**kw)
