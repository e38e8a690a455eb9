"""LEGION losses (legion_core/training/agent/losses.py) against values computed by hand on tiny tensors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from legion_core.training.agent import losses


def t(x) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float64)


# ---- KL terms (docs/method.md#dpmm) -------------------------------------------------------------------
def test_kl_standard_normal_by_hand():
    mu = t([[0.0, 1.0], [2.0, 0.0]])
    logvar = t([[0.0, 0.0], [math.log(2.0), 0.0]])
    # sample 0: -½[(1+0-0-1) + (1+0-1-1)] = 0.5 ; sample 1: -½[(1+ln2-4-2) + (1+0-0-1)] = ½(5 - ln2)
    expected = (0.5 + 0.5 * (5.0 - math.log(2.0))) / 2
    assert losses.kl_standard_normal(mu, logvar).item() == pytest.approx(expected, abs=1e-12)


def test_kl_standard_normal_is_zero_at_prior():
    assert losses.kl_standard_normal(torch.zeros(3, 10), torch.zeros(3, 10)).item() == 0.0


def test_kl_to_components_by_hand_2x2():
    # 2 latents (B=2), 2 components (K=2), D=2.
    mu = t([[0.0, 0.0], [1.0, -1.0]])
    logvar = t([[0.0, math.log(0.5)], [0.0, 0.0]])
    means = t([[0.0, 0.0], [1.0, 1.0]])
    variances = t([[1.0, 1.0], [2.0, 0.5]])
    # KL = ½ Σ_d [ln(v/σ²) + (σ² + (μ-m)²)/v - 1]
    k00 = 0.5 * ((math.log(1.0 / 1.0) + 1 - 1) + (math.log(1.0 / 0.5) + 0.5 - 1))
    k01 = 0.5 * ((math.log(2.0 / 1.0) + (1 + 1) / 2 - 1) + (math.log(0.5 / 0.5) + (0.5 + 1) / 0.5 - 1))
    k10 = 0.5 * ((math.log(1.0 / 1.0) + (1 + 1) / 1 - 1) + (math.log(1.0 / 1.0) + (1 + 1) / 1 - 1))
    k11 = 0.5 * ((math.log(2.0 / 1.0) + (1 + 0) / 2 - 1) + (math.log(0.5 / 1.0) + (1 + 4) / 0.5 - 1))
    got = losses.kl_diag_gaussian_to_components(mu, logvar, means, variances)
    np.testing.assert_allclose(got.numpy(), [[k00, k01], [k10, k11]], rtol=0, atol=1e-12)

    resp = t([[0.25, 0.75], [1.0, 0.0]])
    expected = ((0.25 * k00 + 0.75 * k01) + k10) / 2
    assert losses.kl_to_mixture(mu, logvar, resp, means, variances).item() == pytest.approx(
        expected, abs=1e-12
    )


def test_kl_to_components_matches_torch_distributions():
    """The original builds K MultivariateNormal objects in a loop; the batched closed form must agree."""
    g = torch.Generator().manual_seed(0)
    B, K, D = 7, 4, 10
    mu, logvar = torch.randn(B, D, generator=g, dtype=torch.float64), torch.randn(B, D, generator=g).double()
    means = torch.randn(K, D, generator=g, dtype=torch.float64)
    variances = torch.rand(K, D, generator=g, dtype=torch.float64) * 1e-2 + 1e-5
    got = losses.kl_diag_gaussian_to_components(mu, logvar, means, variances)
    q = torch.distributions.MultivariateNormal(mu, torch.diag_embed(logvar.exp()))
    for k in range(K):
        p = torch.distributions.MultivariateNormal(means[k], torch.diag_embed(variances[k]))
        ref = torch.distributions.kl_divergence(q, p.expand(q.batch_shape))
        np.testing.assert_allclose(got[:, k].numpy(), ref.numpy(), rtol=1e-9)


def test_kl_to_mixture_has_no_gradient_through_responsibilities():
    mu = torch.zeros(2, 2, requires_grad=True)
    resp = torch.full((2, 1), 1.0, requires_grad=True)
    losses.kl_to_mixture(mu, torch.zeros(2, 2), resp, torch.ones(1, 2), torch.ones(1, 2)).backward()
    assert resp.grad is None and mu.grad is not None


# ---- VAE (docs/method.md#losses) ----------------------------------------------------------------------
def test_dynamics_loss_is_mean_over_batch_and_dims():
    pred, target = t([[1.0, 2.0], [0.0, 0.0]]), t([[0.0, 0.0], [0.0, 3.0]])
    assert losses.dynamics_loss(pred, target).item() == pytest.approx((1 + 4 + 0 + 9) / 4)


@pytest.mark.parametrize(
    "reduction, expected", [("sum", 1 + 4 + 9 + 16), ("mean", 30 / 4), ("batch_mean", 30 / 2)]
)
def test_embedding_loss_reductions(reduction, expected):
    pred, target = t([[1.0, 2.0], [3.0, 4.0]]), torch.zeros(2, 2, dtype=torch.float64)
    assert losses.embedding_loss(pred, target, reduction).item() == pytest.approx(expected)


def test_embedding_loss_rejects_unknown_reduction():
    with pytest.raises(ValueError):
        losses.embedding_loss(torch.zeros(1, 1), torch.zeros(1, 1), "max")


def test_vae_loss_weights():
    got = losses.vae_loss(t(2.0), t(3.0), t(100.0))  # defaults 0.5, 1, 0.001
    assert got.item() == pytest.approx(0.5 * 2 + 3 + 0.001 * 100)
    assert losses.vae_loss(t(2.0), t(3.0), t(100.0), 1.0, 2.0, 0.01).item() == pytest.approx(2 + 6 + 1)


# ---- SAC (docs/method.md#losses) ----------------------------------------------------------------------
def test_critic_target_by_hand():
    reward, not_done = t([[1.0], [2.0]]), t([[1.0], [0.0]])
    q1, q2 = t([[10.0], [5.0]]), t([[8.0], [7.0]])
    log_pi, alpha = t([[-1.0], [3.0]]), t([[0.5], [2.0]])
    y = losses.critic_target(reward, not_done, 0.99, q1, q2, log_pi, alpha)
    # y0 = 1 + 0.99·(min(10,8) - 0.5·(-1)) = 1 + 0.99·8.5 ; y1 = 2 (terminal)
    np.testing.assert_allclose(y.numpy(), [[1 + 0.99 * 8.5], [2.0]])
    assert not y.requires_grad


def test_critic_loss_is_sum_of_two_mses():
    q1, q2, y = t([[1.0], [2.0]]), t([[0.0], [0.0]]), t([[0.0], [1.0]])
    assert losses.critic_loss(q1, q2, y).item() == pytest.approx((1 + 1) / 2 + (0 + 1) / 2)


def test_actor_loss_by_hand_and_alpha_is_detached():
    log_pi, min_q = t([[1.0], [-2.0]]), t([[3.0], [1.0]])
    alpha = t([[0.5], [2.0]]).requires_grad_(True)
    loss = losses.actor_loss(log_pi, min_q, alpha)
    assert loss.item() == pytest.approx(((0.5 * 1 - 3) + (2 * -2 - 1)) / 2)
    assert not loss.requires_grad  # nothing here carries a gradient except alpha, which is detached


def test_temperature_loss_alpha_multiplies_and_log_pi_is_detached():
    log_alpha = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    task = torch.tensor([0, 2])
    alpha = log_alpha.exp()[task].unsqueeze(-1)
    log_pi = t([[1.0], [-5.0]]).requires_grad_(True)
    loss = losses.temperature_loss(alpha, log_pi, target_entropy=-4.0)
    # mean(α·(-logπ - H)) = ((-1 + 4) + (5 + 4)) / 2 with α = 1
    assert loss.item() == pytest.approx(6.0)
    loss.backward()
    # d/dlogα_k of mean(α_k·c) = α_k·c/B (MTRL convention: α, not log α, multiplies)
    np.testing.assert_allclose(log_alpha.grad.numpy(), [3 / 2, 0.0, 9 / 2])
    assert log_pi.grad is None
