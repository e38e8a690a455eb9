"""LEGION losses as pure functions (docs/method.md#losses; the KL terms: docs/method.md#dpmm). No module state,
no optimizer.

Shapes: B batch, D latent size, K mixture components, A action size. Every scalar loss is a 0-d tensor.
"""

from __future__ import annotations

import torch


# ------------------------------------------------------------------------------------------------------------
# KL terms (docs/method.md#dpmm)
# ------------------------------------------------------------------------------------------------------------
def kl_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of KL(N(μ, diag σ²) ‖ N(0, I)) = -½ Σ_d (1 + log σ² - μ² - σ²).

    Used before the first DPMM fit and in the "LEGION (Gauss)" ablation. mu, logvar: [B, D] → scalar.
    """
    return (-0.5 * (1.0 + logvar - mu.pow(2) - logvar.exp()).sum(dim=-1)).mean()


def kl_diag_gaussian_to_components(
    mu: torch.Tensor, logvar: torch.Tensor, comp_means: torch.Tensor, comp_vars: torch.Tensor
) -> torch.Tensor:
    """KL(N(μ_n, diag σ²_n) ‖ N(m_k, diag v_k)) for every sample n and component k, as one [B, K] tensor:

        KL_nk = ½ Σ_d [ log(v_kd / σ²_nd) + (σ²_nd + (μ_nd - m_kd)²) / v_kd - 1 ].

    mu, logvar: [B, D]; comp_means, comp_vars: [K, D] → [B, K]. Broadcast over [B, K, D] (no loop over K;
    K ≤ a few tens, so the [B,K,D] intermediate is small). The original builds K torch MultivariateNormal
    objects in a Python loop; this is the same closed form.
    """
    var = logvar.exp().unsqueeze(1)  # [B,1,D]
    diff2 = (mu.unsqueeze(1) - comp_means.unsqueeze(0)).pow(2)  # [B,K,D]
    log_v = comp_vars.log().unsqueeze(0)  # [1,K,D]
    inv_v = comp_vars.reciprocal().unsqueeze(0)  # [1,K,D]
    return 0.5 * (log_v - logvar.unsqueeze(1) + (var + diff2) * inv_v - 1.0).sum(dim=-1)


def kl_to_mixture(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    resp: torch.Tensor,
    comp_means: torch.Tensor,
    comp_vars: torch.Tensor,
) -> torch.Tensor:
    """Responsibility-weighted ("soft") KL to the DPMM: mean_n Σ_k r_nk · KL_nk  (`kl_method='soft'`).

    resp [B, K] are the DPMM responsibilities of the sampled z (no gradient flows through them: the original
    computes them in numpy). Returns a scalar.
    """
    kl = kl_diag_gaussian_to_components(mu, logvar, comp_means, comp_vars)
    return (resp.detach() * kl).sum(dim=-1).mean()


# ------------------------------------------------------------------------------------------------------------
# VAE (docs/method.md#losses)
# ------------------------------------------------------------------------------------------------------------
def dynamics_loss(pred_next_obs: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    """L_dyn = mean over B×D_s of (s' - Dec_s([s,a,z]))²."""
    return (next_obs - pred_next_obs).pow(2).mean()


def embedding_loss(
    pred_embedding: torch.Tensor, embedding: torch.Tensor, reduction: str = "sum"
) -> torch.Tensor:
    """L_embed = (tanh(Dec_e(z)) - e)², reduced by `reduction` (why "sum": `AgentConfig.embed_loss_reduction`).

    "sum": over B×embed_dim (original `MSELoss(reduction='sum')`); "mean": over B×embed_dim;
    "batch_mean": sum over embed_dim, mean over B. `pred_embedding` is already tanh-squashed.
    """
    sq = (pred_embedding - embedding).pow(2)
    if reduction == "sum":
        return sq.sum()
    if reduction == "mean":
        return sq.mean()
    if reduction == "batch_mean":
        return sq.sum(dim=-1).mean()
    raise ValueError(f"unknown reduction {reduction!r}")


def vae_loss(
    l_dyn: torch.Tensor,
    l_embed: torch.Tensor,
    l_kl: torch.Tensor,
    dyn_weight: float = 0.5,
    embed_weight: float = 1.0,
    beta_kl: float = 0.001,
) -> torch.Tensor:
    """L_VAE = 0.5·L_dyn + 1·L_embed + β·L_KL  (weights are the original defaults)."""
    return dyn_weight * l_dyn + embed_weight * l_embed + beta_kl * l_kl


# ------------------------------------------------------------------------------------------------------------
# SAC (docs/method.md#losses)
# ------------------------------------------------------------------------------------------------------------
def critic_target(
    reward: torch.Tensor,
    not_done: torch.Tensor,
    gamma: float,
    target_q1: torch.Tensor,
    target_q2: torch.Tensor,
    next_log_pi: torch.Tensor,
    alpha: torch.Tensor,
) -> torch.Tensor:
    """y = r + not_done·γ·(min(Q̄1, Q̄2)(s', z', a') - α_k·log π(a'|s',z')), all [B, 1], no gradient.

    alpha [B, 1] is α of each transition's task (detached by the caller or here).
    """
    with torch.no_grad():
        target_v = torch.min(target_q1, target_q2) - alpha.detach() * next_log_pi
        return reward + not_done * gamma * target_v


def critic_loss(q1: torch.Tensor, q2: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L_Q = MSE(Q1, y) + MSE(Q2, y), mean reduction. q1, q2, target: [B, 1]."""
    target = target.detach()
    return (q1 - target).pow(2).mean() + (q2 - target).pow(2).mean()


def actor_loss(log_pi: torch.Tensor, min_q: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """L_π = mean(α_k.detach()·log π(ã) - min(Q1, Q2)(s, z, ã)). All [B, 1]."""
    return (alpha.detach() * log_pi - min_q).mean()


def temperature_loss(alpha: torch.Tensor, log_pi: torch.Tensor, target_entropy: float) -> torch.Tensor:
    """L_α = mean(α_k · (-log π(ã) - H_target).detach()).

    α itself (not log α) multiplies the term: the MTRL convention of the original. alpha = exp(log_alpha[k]),
    [B, 1], carries the gradient to log_alpha.
    """
    return (alpha * (-log_pi - target_entropy).detach()).mean()


def bc_loss(pred_action: torch.Tensor, demo_action: torch.Tensor, demo_mask: torch.Tensor) -> torch.Tensor:
    """Behaviour cloning on demonstration rows: Σ_n m_n ‖a_pred,n - clip(a_demo,n)‖² / Σ_n m_n (not in the
    original; config.bc_weight). pred_action, demo_action [B, A]; demo_mask [B, 1] (1 = demonstration).

    Demo actions are clipped to ±0.97 because the scripted experts saturate at ±1, which tanh only reaches
    with an unbounded pre-activation (the squashed mean would be pulled without end).
    """
    target = demo_action.clamp(-0.97, 0.97)
    sq = (pred_action - target).pow(2).sum(dim=-1, keepdim=True)
    return (demo_mask * sq).sum() / demo_mask.sum().clamp_min(1.0)
