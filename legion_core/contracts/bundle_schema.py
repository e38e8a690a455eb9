"""The policy bundle's schema: file names, format version, weight tensor names and the error every bundle
check raises. One home for what `legion export` writes, `bundle.load` checks and the nodes read
(docs/architecture.md, "Contracts"); no numpy model code here, so signing and export import it without the
loader."""

from __future__ import annotations

import hashlib
from pathlib import Path

FORMAT = "legion-bundle"
FORMAT_VERSION = 1
WEIGHTS_FILE = "weights.safetensors"
#: Optional detached signature (legion_core/contracts/signing.py).
SIGNATURE_FILE = "bundle.sig"

#: Weight tensors a bundle must hold, with their shapes as functions of (obs_dim, embed_dim, latent, hidden
#: sizes, n_skills). Checked on load.
ENC = ("enc.l0.weight", "enc.l0.bias", "enc.l1.weight", "enc.l1.bias", "enc.l2.weight", "enc.l2.bias")
ACT = (
    "actor.l0.weight", "actor.l0.bias", "actor.ln.weight", "actor.ln.bias",
    "actor.l1.weight", "actor.l1.bias", "actor.l2.weight", "actor.l2.bias",
    "actor.l3.weight", "actor.l3.bias", "actor.out.weight", "actor.out.bias",
)  # fmt: skip
LEAKY_SLOPE = 0.01
LN_EPS = 1e-5


class BundleError(ValueError):
    """A bundle is malformed. The message names the field and says how to fix it."""

    def __init__(self, field: str, problem: str, fix: str) -> None:
        self.field = field
        super().__init__(f"bundle field '{field}': {problem}. Fix: {fix}")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
