"""LegionAgent (legion_core/training/agent/agent.py): the update (docs/method.md#update-order), acting, DPMM
plumbing, exact save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from legion_core.training.agent.agent import LegionAgent
from legion_core.training.agent.config import AgentConfig

B = 64
N_TASKS = 3


def make_agent(tmp_path, **kw) -> LegionAgent:
    return LegionAgent(AgentConfig(batch_size=B, **kw), dpmm_dir=tmp_path / "dpmm")


def make_batch(cfg: AgentConfig, seed: int = 0, tasks=(0, 1, 2)) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    emb_table = torch.nn.functional.normalize(torch.randn(cfg.max_tasks, cfg.embed_dim, generator=g), dim=1)
    task_id = torch.tensor(tasks)[torch.randint(0, len(tasks), (B,), generator=g)]
    return dict(
        obs=torch.randn(B, cfg.obs_dim, generator=g),
        action=torch.rand(B, cfg.action_dim, generator=g) * 2 - 1,
        reward=torch.randn(B, 1, generator=g),
        next_obs=torch.randn(B, cfg.obs_dim, generator=g),
        not_done=torch.ones(B, 1),
        task_id=task_id,
        embedding=emb_table[task_id],
    )


def snapshot(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def changed(before: list[torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(before, module.parameters()))


def all_params(agent: LegionAgent) -> list[torch.Tensor]:
    out = [agent.log_alpha]
    for m in agent._modules().values():
        out += list(m.parameters())
    return out


def test_non_gated_update_trains_rl_parts_only(tmp_path):
    agent = make_agent(tmp_path)
    batch = make_batch(agent.config)
    before = {name: snapshot(m) for name, m in agent._modules().items()}
    log_alpha = agent.log_alpha.detach().clone()
    target_before = snapshot(agent.critic_target)

    metrics = agent.update(batch, global_step=0)  # (0+1) % 50 != 0: no VAE step

    assert metrics["vae_updated"] == 0.0 and "vae_loss" not in metrics
    assert all(np.isfinite(v) for v in metrics.values())
    for name in ("encoder", "context_decoder", "dynamics_decoder"):
        assert not changed(before[name], agent._modules()[name]), name
    for name in ("actor", "critic", "critic_target"):
        assert changed(before[name], agent._modules()[name]), name
    # per-task temperature: only the tasks in the batch move
    moved = ~torch.isclose(agent.log_alpha.detach(), log_alpha, rtol=0, atol=0)
    assert moved[:N_TASKS].all() and not moved[N_TASKS:].any()
    # Polyak: θ̄ ← (1-τ)θ̄ + τθ with the just-updated critic
    tau = agent.config.tau
    for old, new_t, new_c in zip(target_before, agent.critic_target.parameters(), agent.critic.parameters()):
        torch.testing.assert_close(new_t, (1 - tau) * old + tau * new_c, rtol=1e-6, atol=1e-7)


def test_gated_update_also_trains_the_vae(tmp_path):
    agent = make_agent(tmp_path, vae_update_every=50)
    batch = make_batch(agent.config)
    before = {name: snapshot(m) for name, m in agent._modules().items()}
    metrics = agent.update(batch, global_step=49)  # (49+1) % 50 == 0
    assert metrics["vae_updated"] == 1.0
    for key in ("vae_loss", "dyn_loss", "embed_loss", "kl_loss", "critic_loss", "actor_loss", "alpha_loss"):
        assert np.isfinite(metrics[key]), key
    for name in ("encoder", "context_decoder", "dynamics_decoder", "actor", "critic"):
        assert changed(before[name], agent._modules()[name]), name


def test_vae_loss_uses_the_dpmm_once_fitted(tmp_path):
    agent = make_agent(tmp_path, vae_update_every=1)
    cfg = agent.config
    # latents of 3 tasks, well separated: fit the DPMM on them, then the KL of the VAE step is against it
    rng = np.random.default_rng(0)
    Z = np.concatenate(
        [c + 0.01 * rng.standard_normal((400, cfg.latent_dim)) for c in np.eye(3, cfg.latent_dim)]
    )
    info = agent.fit_dpmm(Z)
    assert info["K"] == 3 and agent.dpmm.fitted
    m = agent.update(make_batch(cfg), global_step=0)
    assert m["vae_updated"] == 1.0 and np.isfinite(m["kl_loss"])
    # standard-normal KL of a fresh encoder is O(1); the KL to 1e-4-wide clusters is orders larger
    assert m["kl_loss"] > 100.0

    gauss = make_agent(tmp_path / "g", vae_update_every=1, kl_to_dpmm=False)
    gauss.fit_dpmm(Z)
    assert gauss.update(make_batch(cfg), global_step=0)["kl_loss"] < 100.0


def test_encode_latents_and_act_shapes(tmp_path):
    agent = make_agent(tmp_path)
    cfg = agent.config
    obs, emb = np.random.randn(7, cfg.obs_dim), np.random.randn(cfg.embed_dim)
    Z = agent.encode_latents(obs, np.repeat(emb[None], 7, 0), use_mean=True)
    assert Z.shape == (7, cfg.latent_dim) and Z.dtype == np.float64
    a = agent.act(obs, emb, task_id=0)
    assert a.shape == (7, cfg.action_dim) and np.all(np.abs(a) <= 1)
    a1 = agent.act(obs[0], emb, task_id=0)
    assert a1.shape == (cfg.action_dim,)
    np.testing.assert_allclose(a1, a[0], rtol=1e-5, atol=1e-6)
    # deterministic acting with z = μ is repeatable; exploration is not
    np.testing.assert_array_equal(agent.act(obs, emb), agent.act(obs, emb))
    assert not np.array_equal(
        agent.act(obs, emb, deterministic=False), agent.act(obs, emb, deterministic=False)
    )
    # the original's sampled z at evaluation time (docs/method.md#evaluation) makes even deterministic actions vary
    orig = LegionAgent(AgentConfig.original(batch_size=B), dpmm_dir=tmp_path / "orig")
    orig.load_state_dict(agent.state_dict())
    with torch.no_grad():  # widen q(z|s,e) so that the z noise is visible
        orig.encoder.logvar.bias.fill_(2.0)
    assert not np.array_equal(orig.act(obs, emb), orig.act(obs, emb))


def test_reset_optimizers_discards_moments(tmp_path):
    agent = make_agent(tmp_path)
    agent.update(make_batch(agent.config), global_step=0)
    assert agent.critic_optimizer.state
    agent.reset_optimizers()
    for opt in agent._optimizers().values():
        assert not opt.state


def test_same_seed_same_agent(tmp_path):
    a, b = make_agent(tmp_path / "a", seed=3), make_agent(tmp_path / "b", seed=3)
    for pa, pb in zip(all_params(a), all_params(b)):
        assert torch.equal(pa, pb)
    c = make_agent(tmp_path / "c", seed=4)
    assert not torch.equal(a.actor.model[0].weight, c.actor.model[0].weight)


def test_save_load_gives_identical_actions_and_next_update(tmp_path):
    """Exact resume: after save/load, the same next update (gated VAE step with the DPMM KL included) and the
    same actions, because optimizer moments, the DPMM posterior and the agent's RNG state are all restored."""
    agent = make_agent(tmp_path / "a", vae_update_every=2)
    cfg = agent.config
    rng = np.random.default_rng(1)
    agent.fit_dpmm(np.concatenate([c + 0.01 * rng.standard_normal((300, 10)) for c in np.eye(3, 10)]))
    for step in range(3):
        agent.update(make_batch(cfg, seed=step), global_step=step)
    agent.save(tmp_path / "agent.pt")

    loaded = LegionAgent.load(tmp_path / "agent.pt", dpmm_dir=tmp_path / "b")
    assert loaded.config == agent.config
    for pa, pb in zip(all_params(agent), all_params(loaded)):
        assert torch.equal(pa, pb)

    obs, emb = rng.standard_normal((5, cfg.obs_dim)), rng.standard_normal(cfg.embed_dim)
    np.testing.assert_array_equal(agent.act(obs, emb), loaded.act(obs, emb))
    np.testing.assert_array_equal(
        agent.act(obs, emb, deterministic=False), loaded.act(obs, emb, deterministic=False)
    )

    batch = make_batch(cfg, seed=10)
    m1 = agent.update(batch, global_step=3)  # (3+1) % 2 == 0: gated VAE step, KL against the DPMM
    m2 = loaded.update(batch, global_step=3)
    assert m1["vae_updated"] == 1.0
    assert m1 == m2
    for pa, pb in zip(all_params(agent), all_params(loaded)):
        assert torch.equal(pa, pb)


def test_load_state_dict_rejects_foreign_state(tmp_path):
    with pytest.raises(ValueError):
        make_agent(tmp_path).load_state_dict({"format": "something else"})


def test_config_validation_and_round_trip():
    cfg = AgentConfig(max_tasks=12)
    assert AgentConfig(**cfg.to_dict()) == cfg
    with pytest.raises(ValueError):
        AgentConfig(embed_loss_reduction="max")
    with pytest.raises(ValueError):
        AgentConfig(z_mode="mode")
    orig = AgentConfig.original()
    assert orig.z_mode == "sample" and orig.logvar_clamp is None and orig.embed_loss_reduction == "sum"


@pytest.mark.slow
def test_bench_train_smoke():
    """bench_train runs end to end (tiny settings; SB3 and bnpy parts included)."""
    from legion_core.bench.train import run_bench

    rep = run_bench(n_updates=10, rounds=1, vae_update_every=5)
    assert rep["updates_per_s"]["legion_gated"] > 0 and rep["updates_per_s"]["sb3_sac"] > 0
    assert rep["dpmm_fit_K"] == 5
