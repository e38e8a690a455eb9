"""legion_core.runtime.policy_runner.PolicyRunner: the policy node's decision without ROS. It acts only on a
valid, fresh observation of the active skill with the layout's size and finite values, says why otherwise,
and its action is the bundle policy's action for that observation (deterministic with z_mode='mean')."""

from __future__ import annotations

import numpy as np
import pytest

from legion_core.contracts.bundle import load
from legion_core.runtime.policy_runner import PolicyRunner, PolicyRunnerConfig
from tests.bundle_factory import make_tiny_bundle

NOW = 2000.0  # node clock [s]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("policy_runner")
    return load(make_tiny_bundle(root / "run", root / "tiny")[2])


@pytest.fixture
def runner(bundle) -> PolicyRunner:
    r = PolicyRunner(bundle)
    assert r.set_skill("reach") == "ok"
    return r


def obs(bundle, seed: int = 0) -> list[float]:
    return list(np.random.default_rng(seed).uniform(-0.5, 0.5, bundle.layout.dim))


def step(r: PolicyRunner, values, valid=True, reason="ok", skill="reach", age_s=0.01):
    return r.step(values, valid, reason, skill, NOW - age_s, NOW)


def test_defaults_come_from_the_config():
    cfg = PolicyRunnerConfig()
    assert (cfg.max_obs_age_s, cfg.z_mode) == (0.2, "mean")


def test_acts_on_a_fresh_valid_observation_with_the_bundles_policy(bundle, runner):
    x = obs(bundle)
    d = step(runner, x)
    assert d.reason == "ok" and d.action is not None
    assert d.action.shape == (4,) and np.all(np.abs(d.action) <= 1.0)
    expected = bundle.policy("reach", z_mode="mean").act(np.asarray(x))
    assert np.array_equal(d.action, expected)
    assert np.array_equal(step(runner, x).action, d.action), "z_mode=mean: same observation, same action"
    assert runner.actions == 2


def test_no_action_without_an_active_skill(bundle):
    r = PolicyRunner(bundle)
    d = step(r, obs(bundle))
    assert d.action is None and d.reason == "no active skill" and r.actions == 0


def test_refuses_an_invalid_observation_with_its_reason(bundle, runner):
    d = step(runner, obs(bundle), valid=False, reason="object 'puck' not seen for 0.8 s")
    assert d.action is None and d.reason == "observation invalid: object 'puck' not seen for 0.8 s"


def test_refuses_a_stale_observation_at_the_limit(bundle):
    r = PolicyRunner(bundle, max_obs_age_s=0.05)
    r.set_skill("reach")
    assert step(r, obs(bundle), age_s=0.049).action is not None
    d = step(r, obs(bundle), age_s=0.051)
    assert d.action is None and d.reason.startswith("observation stale: 0.051 s old (limit 0.05 s)")


def test_refuses_an_unstamped_observation(bundle, runner):
    d = runner.step(obs(bundle), True, "ok", "reach", float("nan"), NOW)
    assert d.action is None and "stale" in d.reason


def test_refuses_an_observation_of_another_skill(bundle, runner):
    d = step(runner, obs(bundle), skill="drawer-close")
    assert d.action is None and "for skill 'drawer-close', active skill is 'reach'" in d.reason
    assert step(runner, obs(bundle), skill="").action is not None, "an observation without skill is accepted"


def test_refuses_the_wrong_size_and_non_finite_values(bundle, runner):
    d = step(runner, obs(bundle)[:-1])
    assert d.action is None and f"needs {bundle.layout.dim}" in d.reason
    bad = obs(bundle)
    bad[3] = float("nan")
    d = step(runner, bad)
    assert d.action is None and d.reason == "observation contains NaN/inf"
    bad[3] = float("inf")
    assert step(runner, bad).action is None
    assert runner.actions == 0


def test_skill_switching(bundle, runner):
    x = obs(bundle, 1)
    a_reach = step(runner, x).action
    assert runner.set_skill("drawer-close") == "ok" and runner.skill == "drawer-close"
    assert step(runner, x, skill="reach").action is None, "an observation built for the previous skill"
    a_drawer = step(runner, x, skill="drawer-close").action
    assert np.array_equal(a_drawer, bundle.policy("drawer-close").act(np.asarray(x)))
    assert not np.array_equal(a_drawer, a_reach), "each skill acts with its own embedding"
    assert runner.set_skill("") == "ok" and runner.skill is None
    assert step(runner, x, skill="").reason == "no active skill"


def test_an_unknown_skill_is_refused_and_the_active_one_kept(bundle, runner):
    res = runner.set_skill("fly-to-the-moon")
    assert res.startswith("skill 'fly-to-the-moon' is not in bundle") and "reach" in res
    assert runner.skill == "reach" and step(runner, obs(bundle)).action is not None


def test_sample_mode_draws_the_latent(bundle):
    r = PolicyRunner(bundle, z_mode="sample")
    r.set_skill("reach")
    x = obs(bundle, 2)
    a, b = step(r, x).action, step(r, x).action
    assert a is not None and not np.array_equal(a, b), "z_mode=sample: a new latent per step"


@pytest.mark.parametrize("age", [0.0, -1.0, float("nan"), float("inf")])
def test_a_nonsense_age_limit_is_refused(bundle, age):
    with pytest.raises(ValueError, match="max_obs_age_s"):
        PolicyRunner(bundle, max_obs_age_s=age)
