"""LEGION networks (legion_core/training/agent/networks.py): the original's shapes (docs/method.md#vae), init,
the fused twin critic, the actor."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from legion_core.training.agent.networks import (
    Actor,
    ContextDecoder,
    DynamicsDecoder,
    TwinCritic,
    VAEEncoder,
    fast_tanh,
)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_parameter_counts_match_the_paper_with_its_768d_embedding():
    """The original's parameter counts for e ∈ R^768 (docs/method.md#vae); with that size every network must
    match exactly."""
    assert n_params(VAEEncoder(12, 768, 10, 400)) == 641_220
    assert n_params(ContextDecoder(10, 768, 400)) == 633_168
    assert n_params(DynamicsDecoder(12, 4, 10, 400)) == 336_412
    assert n_params(Actor(12, 10, 4, 300)) == 280_808
    assert n_params(TwinCritic(12, 10, 4, 300)) == 559_802


def test_actor_layout_matches_the_released_checkpoint():
    """The released actor checkpoint: model.0 [300,22], model.1 LN [300], model.3/5/7 [300,300], model.9 [8,300]."""
    sd = Actor(12, 10, 4, 300).state_dict()
    assert sd["model.0.weight"].shape == (300, 22)
    assert sd["model.1.weight"].shape == (300,)
    for i in (3, 5, 7):
        assert sd[f"model.{i}.weight"].shape == (300, 300)
    assert sd["model.9.weight"].shape == (8, 300)


def test_xavier_uniform_weights_and_zero_biases():
    torch.manual_seed(0)
    for module in (VAEEncoder(12, 384, 10), ContextDecoder(10, 384), Actor(12, 10, 4)):
        for m in module.modules():
            if isinstance(m, nn.Linear):
                fan_out, fan_in = m.weight.shape
                bound = math.sqrt(6.0 / (fan_in + fan_out))
                assert m.weight.abs().max() <= bound
                assert m.weight.abs().max() > 0.9 * bound  # really uniform on the full range
                assert torch.all(m.bias == 0)
    critic = TwinCritic(12, 10, 4)
    for i in range(2):
        for lin in (x for x in critic.to_sequential(i) if isinstance(x, nn.Linear)):
            fan_out, fan_in = lin.weight.shape
            assert lin.weight.abs().max() <= math.sqrt(6.0 / (fan_in + fan_out))
            assert torch.all(lin.bias == 0)
    assert not torch.equal(critic.w_in[0], critic.w_in[1])  # independently initialised twins


def test_encoder_shapes_and_single_trunk_pass():
    enc = VAEEncoder(12, 384, 10)
    calls = []
    enc.trunk.register_forward_hook(lambda *_: calls.append(1))
    mu, logvar = enc(torch.randn(5, 12), torch.randn(5, 384))
    assert mu.shape == logvar.shape == (5, 10)
    assert len(calls) == 1  # the original ran the trunk once per head (docs/method.md#vae)


def test_encoder_shared_embedding_equals_plain_forward():
    torch.manual_seed(0)
    enc = VAEEncoder(12, 384, 10).double()
    obs, emb = torch.randn(2, 6, 12, dtype=torch.float64), torch.randn(6, 384, dtype=torch.float64)
    mu, logvar = enc.forward_shared_embedding(obs, emb)
    for i in range(2):
        mu_i, logvar_i = enc(obs[i], emb)
        torch.testing.assert_close(mu[i], mu_i, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(logvar[i], logvar_i, rtol=1e-12, atol=1e-12)


def test_decoders_shapes_and_tanh_output():
    z = torch.randn(4, 10) * 100
    e = ContextDecoder(10, 384)(z)
    assert e.shape == (4, 384) and e.abs().max() <= 1.0
    s = DynamicsDecoder(12, 4, 10)(torch.randn(4, 12), torch.randn(4, 4), torch.randn(4, 10))
    assert s.shape == (4, 12)


# ---- twin critic ---------------------------------------------------------------------------------------------
def _separate_twins(critic: TwinCritic) -> tuple[nn.Sequential, nn.Sequential]:
    return critic.to_sequential(0), critic.to_sequential(1)


@pytest.mark.parametrize("mode", ["batched", "grouped"])
def test_fused_twin_critic_equals_two_independent_nets(mode):
    torch.manual_seed(1)
    critic = TwinCritic(12, 10, 4, mode=mode).double()
    with torch.no_grad():  # non-trivial LayerNorm affine and biases
        for p in critic.parameters():
            p.add_(0.1 * torch.randn_like(p))
    q1_net, q2_net = _separate_twins(critic)
    obs, z, a = torch.randn(33, 12).double(), torch.randn(33, 10).double(), torch.rand(33, 4).double()
    x = torch.cat([obs, z, a], -1)
    q1, q2 = critic(obs, z, a)
    torch.testing.assert_close(q1, q1_net(x), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(q2, q2_net(x), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(
        critic.min_q(obs, z, a), torch.min(q1_net(x), q2_net(x)), rtol=1e-12, atol=1e-12
    )

    # gradients too: same loss on the fused module and on the two nets
    (q1.square().mean() + 2 * q2.mean()).backward()
    (q1_net(x).square().mean() + 2 * q2_net(x).mean()).backward()
    for i, net in enumerate((q1_net, q2_net)):
        lins = [m for m in net if isinstance(m, nn.Linear)]
        ws = [critic.w_in, *critic.w_hidden, critic.w_out]
        for lin, w in zip(lins, ws):
            torch.testing.assert_close(w.grad[i], lin.weight.grad.T, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(critic.ln_weight.grad[i, 0], net[1].weight.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", ["batched", "grouped"])
def test_fused_twin_critic_float32_close_to_separate_nets(mode):
    torch.manual_seed(2)
    critic = TwinCritic(12, 10, 4, mode=mode)
    q1_net, q2_net = _separate_twins(critic)
    x = torch.randn(512, 26)
    q = critic.forward_stacked(x)
    torch.testing.assert_close(q[0], q1_net(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(q[1], q2_net(x), rtol=1e-5, atol=1e-5)


def test_twin_critic_modes_agree_and_auto_is_grouped_on_cpu():
    torch.manual_seed(4)
    critic = TwinCritic(12, 10, 4).double()
    x = torch.randn(16, 26, dtype=torch.float64)
    torch.testing.assert_close(critic._forward_batched(x), critic._forward_grouped(x), rtol=1e-12, atol=1e-12)
    assert critic.mode == "auto"
    with pytest.raises(ValueError):
        TwinCritic(12, 10, 4, mode="vmap")


def test_fast_tanh_matches_tanh():
    x = torch.linspace(-30, 30, 20001, requires_grad=True)
    y = fast_tanh(x)
    torch.testing.assert_close(y, torch.tanh(x), rtol=0, atol=3e-7)
    (g,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(g, 1 - torch.tanh(x.detach()) ** 2, rtol=0, atol=1e-6)


def test_twin_critic_from_sequential_round_trip():
    a, b = TwinCritic(12, 10, 4), TwinCritic(12, 10, 4)
    b.from_sequential(*_separate_twins(a))
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


# ---- actor ---------------------------------------------------------------------------------------------------
def test_actor_log_std_squash():
    actor = Actor(12, 10, 4)
    with torch.no_grad():
        actor.model[-1].weight.zero_()
        actor.model[-1].bias.copy_(torch.tensor([0.0, 0, 0, 0, 0.0, 100.0, -100.0, 0.3]))
    mean, log_std = actor(torch.randn(3, 12), torch.randn(3, 10))
    expected = torch.tensor([-9.0, 2.0, -20.0, -20 + 11 * (math.tanh(0.3) + 1)])  # -20 + 11·(tanh(raw)+1)
    torch.testing.assert_close(log_std, expected.expand(3, 4))
    assert torch.all(mean == 0)


def test_actor_sample_log_prob_matches_direct_computation():
    torch.manual_seed(3)
    actor = Actor(12, 10, 4).double()
    with torch.no_grad():  # moderate σ so that the tanh correction matters
        actor.model[-1].bias[4:].fill_(-1.0)
    obs, z = torch.randn(64, 12).double(), torch.randn(64, 10).double()
    torch.manual_seed(7)
    a, log_pi, det = actor.sample(obs, z)
    mean, log_std = actor(obs, z)
    torch.manual_seed(7)
    noise = torch.randn_like(mean)
    u = mean + log_std.exp() * noise
    # log N(u; μ, σ) - Σ log(1 - tanh(u)² + 1e-6), computed independently with torch.distributions
    ref = torch.distributions.Normal(mean, log_std.exp()).log_prob(u).sum(-1, keepdim=True)
    ref = ref - torch.log(1 - torch.tanh(u) ** 2 + 1e-6).sum(-1, keepdim=True)
    torch.testing.assert_close(log_pi, ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(a, torch.tanh(u))
    torch.testing.assert_close(det, torch.tanh(mean))
    torch.testing.assert_close(actor.deterministic(obs, z), torch.tanh(mean))
    assert log_pi.shape == (64, 1) and a.abs().max() <= 1


def test_squashed_log_prob_formula_by_hand():
    noise, log_std, u = (
        torch.tensor([[0.5, -1.0]]),
        torch.tensor([[0.0, math.log(2.0)]]),
        torch.tensor([[0.0, 1.0]]),
    )
    expected = (-0.5 * 0.25 - 0) + (-0.5 * 1.0 - math.log(2.0)) - 0.5 * 2 * math.log(2 * math.pi)
    expected -= math.log(1 - 0 + 1e-6) + math.log(1 - math.tanh(1.0) ** 2 + 1e-6)
    got = Actor.squashed_log_prob(noise, log_std, u)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    np.testing.assert_equal(got.shape, (1, 1))
