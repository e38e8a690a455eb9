"""The DPMM knowledge space of LEGION (docs/method.md#dpmm).

A Dirichlet-process mixture of diagonal Gaussians over the 10-d task latent z, fit with bnpy memoized VB
(`DPMixtureModel` / `DiagGauss` / `memoVB`, moves birth+merge, no delete), exactly the original's `BNPModel`:

* first fit: `initname='randexamples'`, K=1;
* later fits warm-start from the previous fit's output directory with K = K_history[-1]; outputs alternate
  between `<work_dir>/0` and `<work_dir>/1` (bnpy appends the task id, so the model lives in `<work_dir>/i/1`);
* after a fit it caches, per component k, the posterior mean m_k and the diagonal of the expected covariance
  E[Σ_k] = β_k / (ν_k - 2) (`comp_mu`, `comp_var` of the original).

Responsibilities r_nk (the soft assignments of the KL term) are computed here, vectorised, from the
cached posterior instead of bnpy's `calc_local_params`. It is the same formula bnpy evaluates (DPMixtureModel +
DiagGaussObsModel.calcLogSoftEvMatrix_FromPost, tests/unit/test_dpmm.py checks equality):

    log r_nk = E[log w_k] + ½ Σ_d E[log λ_kd] - ½ Σ_d E[λ_kd] (z_nd - m_kd)² - ½ D/κ_k + const,
    E[log λ_kd] = log 2 - log β_kd + ψ(ν_k/2),   E[λ_kd] = ν_k / β_kd,

with E[log w_k] the stick-breaking expectation (`allocModel.Elogbeta`). Why not bnpy's call: it loops over K
in Python, needs a float64 numpy copy wrapped in `XData` and a device round trip on every VAE update, and it
needs the live bnpy model, which a checkpoint cannot carry. Ours is one broadcast op on z's device and only
needs three small arrays, so it works right after `load_state_dict` without bnpy or its output directory.

bnpy is loud (it logs every lap, writes .mat snapshots and, worse, clears the root logger's handlers on every
run). `fit` runs it with `doWriteStdOut=False`, restores the root logger, closes bnpy's file handlers and
filters its one harmless warning; exceptions propagate unchanged.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from legion_core.training.agent.bnpy_compat import import_bnpy

__all__ = ["DPMMKnowledgeSpace"]

_BNPY_LOGGERS = ("bnpy", "birthmove", "mergemove", "deletemove", "shufflemove", "elapsedtime")
_TASK_ID = 1  # bnpy's default taskid: the model is written to <output_path>/1
_STATE_VERSION = 1


@contextmanager
def _quiet_bnpy() -> Iterator[None]:
    """Keep bnpy from touching the application's logging and silence its harmless scipy warning."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    try:
        with warnings.catch_warnings():
            # scipy.io.savemat: "Starting field name with a underscore (_FieldDims) is ignored", once per save.
            warnings.filterwarnings("ignore", message="Starting field name with a underscore")
            yield
    finally:
        # bnpy's Runner does `logging.getLogger().handlers = []`: put the application's handlers back.
        root.handlers = saved_handlers
        root.setLevel(saved_level)
        # bnpy drops its FileHandlers without closing them (one leaked fd per transcript per fit): close them.
        for name in list(logging.Logger.manager.loggerDict):
            if name.split(".")[0] in _BNPY_LOGGERS:
                logger = logging.getLogger(name)
                for h in list(logger.handlers):
                    h.close()
                    logger.removeHandler(h)


class DPMMKnowledgeSpace:
    """DP mixture of diagonal Gaussians over latents, with warm-started refits (docs/method.md#dpmm).

    Args:
        work_dir: directory for bnpy's two alternating output directories (created on demand). None: a fresh
            temporary directory, created at the first fit.
        gamma0, sF, n_batch, n_lap, birth_kwargs, merge_kwargs: the original's hyper-parameters (see `DPMMConfig`).

    After the first `fit`: `K`, `means` [K,D], `variances` [K,D], `weights` [K], `K_history`, and
    `responsibilities(z)`.
    """

    def __init__(
        self,
        work_dir: str | os.PathLike | None,
        gamma0: float = 5.0,
        sF: float = 1e-5,
        n_batch: int = 5,
        n_lap: int = 2,
        birth_kwargs: Mapping[str, Any] | None = None,
        merge_kwargs: Mapping[str, Any] | None = None,
    ):
        from legion_core.training.agent.config import DPMMConfig

        defaults = DPMMConfig()
        self.work_dir = Path(work_dir) if work_dir is not None else None
        self.gamma0 = float(gamma0)
        self.sF = float(sF)
        self.n_batch = int(n_batch)
        self.n_lap = int(n_lap)
        self.birth_kwargs = dict(defaults.birth_kwargs if birth_kwargs is None else birth_kwargs)
        self.merge_kwargs = dict(defaults.merge_kwargs if merge_kwargs is None else merge_kwargs)
        self._reset_posterior()

    @classmethod
    def from_config(cls, cfg: Any, work_dir: str | os.PathLike | None) -> DPMMKnowledgeSpace:
        """Build from a `DPMMConfig`."""
        return cls(
            work_dir,
            gamma0=cfg.gamma0,
            sF=cfg.sF,
            n_batch=cfg.n_batch,
            n_lap=cfg.n_lap,
            birth_kwargs=cfg.birth_kwargs,
            merge_kwargs=cfg.merge_kwargs,
        )

    def _reset_posterior(self) -> None:
        self.means = np.zeros((0, 0))  # [K, D] posterior means m_k
        self.variances = np.zeros((0, 0))  # [K, D] diag of E[Σ_k] = β_k/(ν_k-2)
        self.weights = np.zeros(0)  # [K] E[w_k] (stick-breaking)
        self._precision = np.zeros((0, 0))  # [K, D] E[λ_kd] = ν_k/β_kd
        self._log_norm = np.zeros(0)  # [K] E[log w_k] + ½ΣE[log λ_kd] - ½D/κ_k
        self.K_history: list[int] = []  # K after each fit
        self.n_fits = 0
        self._next_dir = 0  # which of work_dir/{0,1} the next fit writes
        self._last_output_path: str | None = None  # bnpy task_output_path of the last fit (warm start source)
        self.last_fit: dict[str, Any] = {}
        self._torch_cache: dict[tuple, tuple[torch.Tensor, ...]] = {}

    # ---- properties -----------------------------------------------------------------------------------------
    @property
    def fitted(self) -> bool:
        return self.means.shape[0] > 0

    @property
    def K(self) -> int:
        """Number of mixture components of the last fit (0 before the first fit)."""
        return int(self.means.shape[0])

    def can_warm_start(self) -> bool:
        """True when the previous fit's bnpy output (Best*.mat) is on disk."""
        p = self._last_output_path
        return bool(
            self.fitted
            and p
            and os.path.isfile(os.path.join(p, "BestObsModel.mat"))
            and os.path.isfile(os.path.join(p, "BestAllocModel.mat"))
        )

    # ---- fitting --------------------------------------------------------------------------------------------
    def fit(self, Z: np.ndarray | torch.Tensor) -> dict[str, Any]:
        """Fit (or refit, warm-started) the DPMM on latents Z [N, D]. Returns a summary dict:
        K, laps (passes done), seconds, warm_start, converged, output_path."""
        bnpy = import_bnpy()
        from bnpy.data import XData

        if isinstance(Z, torch.Tensor):
            Z = Z.detach().cpu().numpy()
        Z = np.ascontiguousarray(Z, dtype=np.float64)
        if Z.ndim != 2 or not np.all(np.isfinite(Z)):
            raise ValueError(f"Z must be a finite [N, D] array, got shape {Z.shape}")

        warm = self.can_warm_start()
        if warm:
            init = dict(initname=self._last_output_path, K=self.K_history[-1])
        else:  # first fit, or the previous output dir is gone (e.g. checkpoint moved): restart cleanly
            init = dict(initname="randexamples", K=1)
        if self.work_dir is None:
            self.work_dir = Path(tempfile.mkdtemp(prefix="legion_dpmm_"))
        output_path = self.work_dir / str(self._next_dir)
        # Pre-create <output_path>/<taskid> so that bnpy's distutils.mkpath has nothing to create (it logs
        # "creating ..." on the root logger otherwise). bnpy empties the directory itself before writing.
        (output_path / str(_TASK_ID)).mkdir(parents=True, exist_ok=True)

        t0 = time.perf_counter()
        with _quiet_bnpy():
            model, info = bnpy.run(
                XData(Z),
                "DPMixtureModel",
                "DiagGauss",
                "memoVB",
                output_path=str(output_path),
                doSaveToDisk=True,  # birth moves and warm starts need the output on disk
                doWriteStdOut=False,
                gamma0=self.gamma0,
                sF=self.sF,
                ECovMat="eye",
                moves="birth,merge",
                nBatch=self.n_batch,
                nLap=self.n_lap,
                **init,
                **self.birth_kwargs,
                **self.merge_kwargs,
            )
        seconds = time.perf_counter() - t0

        self._set_posterior_from_bnpy(model)
        self.K_history.append(self.K)
        self.n_fits += 1
        self._last_output_path = str(info["task_output_path"])
        self._next_dir = 1 - self._next_dir
        self.last_fit = dict(
            K=self.K,
            laps=float(np.asarray(info["lap_history"])[-1]),
            seconds=seconds,
            warm_start=warm,
            converged="not converged" not in str(info.get("status", "")),
            output_path=self._last_output_path,
        )
        return dict(self.last_fit)

    def _set_posterior_from_bnpy(self, model: Any) -> None:
        from scipy.special import digamma

        post = model.obsModel.Post
        nu = np.asarray(post.nu, dtype=np.float64)  # [K]
        beta = np.asarray(post.beta, dtype=np.float64).reshape(nu.size, -1)  # [K, D]
        m = np.asarray(post.m, dtype=np.float64).reshape(nu.size, -1)  # [K, D]
        kappa = np.asarray(post.kappa, dtype=np.float64)  # [K]
        elog_w = np.asarray(model.allocModel.Elogbeta, dtype=np.float64)  # [K]
        D = m.shape[1]
        e_log_lambda = np.log(2.0) - np.log(beta) + digamma(0.5 * nu)[:, None]  # [K, D]
        self.means = m.copy()
        self.variances = beta / (nu[:, None] - 2.0)  # = obsModel.get_covar_mat_for_comp(k) diagonal
        self.weights = np.asarray(model.allocModel.get_active_comp_probs(), dtype=np.float64)
        self._precision = nu[:, None] / beta
        self._log_norm = elog_w + 0.5 * e_log_lambda.sum(axis=1) - 0.5 * D / kappa
        self._torch_cache.clear()

    # ---- responsibilities -----------------------------------------------------------------------------------
    def log_responsibilities(self, z: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """log r [N, K] (see the module docstring), same array type and device as z; float64 for numpy."""
        if not self.fitted:
            raise RuntimeError("DPMM not fitted yet: call fit() (or load_state_dict) first")
        if isinstance(z, torch.Tensor):
            m, prec, log_norm = self._torch_params(z.device)
            zz = z.detach().to(torch.float64)
            maha = ((zz.unsqueeze(1) - m).pow(2) * prec).sum(-1)  # [N, K]
            return torch.log_softmax(log_norm - 0.5 * maha, dim=-1).to(z.dtype)
        zz = np.asarray(z, dtype=np.float64)
        maha = (np.square(zz[:, None, :] - self.means[None]) * self._precision[None]).sum(-1)
        logits = self._log_norm[None] - 0.5 * maha
        logits -= logits.max(axis=1, keepdims=True)
        return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))

    def responsibilities(self, z: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """r [N, K], rows sum to 1: the posterior probability that z_n belongs to component k (no gradient)."""
        lr = self.log_responsibilities(z)
        return lr.exp() if isinstance(lr, torch.Tensor) else np.exp(lr)

    def assign(self, z: np.ndarray | torch.Tensor) -> np.ndarray:
        """Hard assignment argmax_k r_nk [N] (the original's `cluster_assignments`, for logging)."""
        lr = self.log_responsibilities(z)
        if isinstance(lr, torch.Tensor):
            return lr.argmax(-1).cpu().numpy()
        return lr.argmax(-1)

    def torch_components(self, device: torch.device | str, dtype: torch.dtype = torch.float32):
        """(means [K,D], variances [K,D]) as tensors on `device` (cached), for the KL term."""
        key = ("components", torch.device(device), dtype)
        if key not in self._torch_cache:
            self._torch_cache[key] = (
                torch.as_tensor(self.means, dtype=dtype, device=device),
                torch.as_tensor(self.variances, dtype=dtype, device=device),
            )
        return self._torch_cache[key]

    def _torch_params(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        key = ("resp", torch.device(device))
        if key not in self._torch_cache:
            self._torch_cache[key] = tuple(
                torch.as_tensor(a, dtype=torch.float64, device=device)
                for a in (self.means, self._precision, self._log_norm)
            )
        return self._torch_cache[key]  # type: ignore[return-value]

    # ---- checkpointing --------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """numpy arrays + small metadata. Enough to compute responsibilities and the KL without bnpy; the next
        `fit` warm-starts from `last_output_path` if that directory still exists, else restarts cleanly."""
        return dict(
            version=_STATE_VERSION,
            means=self.means.copy(),
            variances=self.variances.copy(),
            weights=self.weights.copy(),
            precision=self._precision.copy(),
            log_norm=self._log_norm.copy(),
            K_history=np.asarray(self.K_history, dtype=np.int64),
            n_fits=int(self.n_fits),
            next_dir=int(self._next_dir),
            last_output_path=self._last_output_path or "",
        )

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Inverse of `state_dict` (accepts numpy arrays or CPU tensors)."""
        if int(state.get("version", _STATE_VERSION)) != _STATE_VERSION:
            raise ValueError(f"unsupported DPMM state version {state.get('version')}")

        def arr(key: str) -> np.ndarray:
            v = state[key]
            v = v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else v
            return np.array(v, dtype=np.float64)

        self._reset_posterior()
        self.means = arr("means")
        self.variances = arr("variances")
        self.weights = arr("weights")
        self._precision = arr("precision")
        self._log_norm = arr("log_norm")
        kh = state["K_history"]
        self.K_history = [int(k) for k in (kh.tolist() if hasattr(kh, "tolist") else kh)]
        self.n_fits = int(state["n_fits"])
        self._next_dir = int(state["next_dir"])
        self._last_output_path = str(state["last_output_path"]) or None
