"""DPMM knowledge space (legion_core/training/agent/dpmm.py) and the bnpy shim (legion_core/training/agent/bnpy_compat.py)."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
import torch

from legion_core.training.agent.bnpy_compat import apply_shim, import_bnpy
from legion_core.training.agent.dpmm import DPMMKnowledgeSpace

N_CLUSTERS, D = 5, 10


def five_clusters(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-1.0, 1.0, (N_CLUSTERS, D))  # pairwise distances ≫ the 0.01 spread
    labels = rng.integers(0, N_CLUSTERS, n)
    return centers[labels] + 0.01 * rng.standard_normal((n, D)), labels


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """True when the two labelings are equal up to a renaming of the labels (ARI = 1)."""
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """One cold fit and one warm refit, shared by the tests of this module (each fit is ~0.5 s)."""
    Z, labels = five_clusters()
    dp = DPMMKnowledgeSpace(tmp_path_factory.mktemp("dpmm"))
    cold = dp.fit(Z)
    warm = dp.fit(Z + 0.001 * np.random.default_rng(1).standard_normal(Z.shape))
    return dp, Z, labels, cold, warm


def test_shim_is_idempotent():
    apply_shim()
    apply_shim()
    assert np.float is float
    assert import_bnpy() is import_bnpy()


def test_finds_five_well_separated_clusters(fitted):
    dp, Z, labels, cold, _ = fitted
    assert cold["K"] == 5 and cold["warm_start"] is False
    assert dp.means.shape == dp.variances.shape == (5, D)
    assert np.all(dp.variances > 0) and np.all(dp.variances < 1e-3)  # tight, as the 1e-5 prior favours
    assert same_partition(dp.assign(Z), labels)
    np.testing.assert_allclose(dp.weights.sum(), 1.0, atol=0.05)


def test_warm_started_refit_keeps_K_in_no_more_laps(fitted):
    dp, _, _, cold, warm = fitted
    assert warm["warm_start"] is True and warm["K"] == cold["K"] == dp.K
    assert warm["laps"] <= cold["laps"]
    assert dp.K_history == [5, 5] and dp.n_fits == 2
    assert warm["output_path"] != cold["output_path"]  # the two output directories alternate


def test_responsibilities_sum_to_one_and_match_bnpy(fitted):
    dp, Z, _, _, _ = fitted
    bnpy = import_bnpy()
    from bnpy.data import XData

    model, _ = bnpy.load_model_at_lap(dp.last_fit["output_path"], None)
    rng = np.random.default_rng(2)
    # cluster members plus points between clusters (soft assignments)
    between = 0.5 * (dp.means[0] + dp.means[1]) + 0.02 * rng.standard_normal((50, D))
    X = np.concatenate([Z[:200], between])
    ref = model.calc_local_params(XData(X))["resp"]
    r = dp.responsibilities(X)
    np.testing.assert_allclose(r, ref, atol=1e-9)
    np.testing.assert_allclose(r.sum(1), 1.0, atol=1e-12)

    rt = dp.responsibilities(torch.tensor(X, dtype=torch.float32))
    assert isinstance(rt, torch.Tensor) and rt.dtype == torch.float32 and rt.shape == (250, dp.K)
    torch.testing.assert_close(rt.sum(1), torch.ones(250), atol=1e-5, rtol=0)
    np.testing.assert_allclose(rt.numpy(), ref, atol=1e-4)


def test_torch_components_are_the_cached_posterior(fitted):
    dp = fitted[0]
    means, variances = dp.torch_components("cpu", torch.float64)
    np.testing.assert_array_equal(means.numpy(), dp.means)
    np.testing.assert_array_equal(variances.numpy(), dp.variances)


def test_state_dict_round_trip_without_bnpy_output(fitted, tmp_path):
    dp, Z, _, _, _ = fitted
    state = dp.state_dict()
    assert all(isinstance(v, (np.ndarray, int, str)) for v in state.values())
    other = DPMMKnowledgeSpace(tmp_path / "elsewhere")
    other.load_state_dict(state)
    assert other.K == dp.K and other.K_history == dp.K_history
    np.testing.assert_array_equal(other.responsibilities(Z[:100]), dp.responsibilities(Z[:100]))
    np.testing.assert_array_equal(other.means, dp.means)
    # tensors (as stored inside an agent checkpoint) load too
    third = DPMMKnowledgeSpace(tmp_path / "third")
    third.load_state_dict(
        {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in state.items()}
    )
    np.testing.assert_array_equal(third.variances, dp.variances)


def test_fit_after_load_warm_starts_if_the_output_dir_exists_else_restarts(tmp_path):
    Z, _ = five_clusters(1500, seed=3)
    dp = DPMMKnowledgeSpace(tmp_path / "a")
    dp.fit(Z)
    state = dp.state_dict()

    resumed = DPMMKnowledgeSpace(tmp_path / "a")
    resumed.load_state_dict(state)
    assert resumed.can_warm_start()
    info = resumed.fit(Z)
    assert info["warm_start"] is True and info["K"] == 5

    shutil.rmtree(tmp_path / "a")  # e.g. the checkpoint was copied to another machine
    moved = DPMMKnowledgeSpace(tmp_path / "b")
    moved.load_state_dict(state)
    assert not moved.can_warm_start()
    info = moved.fit(Z)
    assert info["warm_start"] is False and info["K"] == 5
    assert moved.K_history == [5, 5]


def test_bnpy_stays_quiet_and_leaves_root_logging_alone(tmp_path, capfd):
    root = logging.getLogger()
    handler = logging.NullHandler()
    root.addHandler(handler)
    try:
        Z, _ = five_clusters(600, seed=4)
        DPMMKnowledgeSpace(tmp_path).fit(Z)
        assert handler in root.handlers  # bnpy's Runner clears the root handlers; fit() restores them
    finally:
        root.removeHandler(handler)
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    for name in ("bnpy", "birthmove", "mergemove"):
        assert not logging.getLogger(name).handlers  # its file handlers are closed, no fd leak


def test_unfitted_model_refuses_responsibilities(tmp_path):
    dp = DPMMKnowledgeSpace(tmp_path)
    assert not dp.fitted and dp.K == 0
    with pytest.raises(RuntimeError):
        dp.responsibilities(np.zeros((2, D)))
    with pytest.raises(ValueError):
        dp.fit(np.full((10, D), np.nan))
