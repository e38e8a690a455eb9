"""Frozen policy bundles: the one artefact a trained LEGION agent leaves the lab as (docs/architecture.md).

A bundle is a directory:
- `bundle.yaml` — the contract: format version, observation layout (fields, slices, units, frame),
  action semantics, embodiment, skills (descriptions, language model id, embedding hashes, object, goal
  rule, success predicate, step budget), DPMM summary, training provenance, per-skill evaluation, and the
  sha256 of every weight file.
- `weights.safetensors` — VAE encoder (trunk + μ head), actor, and the skills' task embeddings. No pickles
  anywhere: a model file can never run code.
- `MODEL_CARD.md` — generated, human-readable.
- `bundle.sig` (optional) — an Ed25519 signature over the sha256 of every file (legion_core/contracts/signing.py,
  docs/bundle-signing.md).

The keys of `bundle.yaml`, their types and the checks on them live in one schema
(legion_core/contracts/bundle_schema.py), which `legion export` writes through and `load` validates through;
`Bundle` exposes the typed sections (e.g. `bundle.action.workspace_box_sim_m`) for the nodes to read.

Contract for loading (`load(path, trusted_keys=...)`): every field is validated (schema, types, shapes,
hashes, versions), the observation layout is checked field by field against the built-in layout the runtime
runs, and any problem raises `BundleError` naming the field and the fix. The sha256 values catch accidents
only; a robot PC that configures trusted public keys also refuses bundles that are unsigned, signed by
another key, or changed since signing. Inference needs numpy only.

Inference path (`Policy.act`), deterministic by default: z = μ(s, e) of the VAE encoder, a = tanh(μ_a(s, z))
(the original's sampled z is available with `z_mode="sample"`). Why it is fast on a
2-core robot PC: the encoder's first layer sees [s; e], and W_e·e + b is constant per skill, so it is
precomputed once per skill; what is left is a 12→400 layer, two 400×400 layers, 10 outputs, and the actor
with only the 4 mean rows of its last layer — in float32 numpy with preallocated buffers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import yaml

from legion_core.contracts.bundle_schema import (
    CONTRACT_FILE,
    LEAKY_SLOPE,
    LN_EPS,
    WEIGHTS_FILE,
    ActionSpec,
    BundleContract,
    BundleError,
    LanguageModelSpec,
    NetworkSpec,
    ObservationSpec,
    parse_contract,
    sha256_file,
)
from legion_core.contracts.layouts import LayoutError, ObservationLayout

if TYPE_CHECKING:
    from legion_core.contracts.signing import SignatureCheck


# --------------------------------------------------------------------------------------------- inference
def _layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + LN_EPS) * g + b


@dataclass
class SkillInfo:
    """A skill of a loaded bundle: its `skills` entry of bundle.yaml (bundle_schema.BundleSkill) and its row in
    the embedding table."""

    name: str
    """Skill name."""
    index: int
    """Row of the skill's task embedding in `skills.embeddings`."""
    descriptions: list[str]
    """Operator phrasings the grounding matches."""
    object_label: str
    """Detection label of the object the skill acts on."""
    goal: dict
    """Goal rule (tasks.GoalRule.to_dict())."""
    success: dict | None
    """Observable success predicate (tasks.SuccessPredicate.to_dict()), or None."""
    max_episode_steps: int
    """Step budget of one attempt [policy steps]."""
    evaluation: dict | None
    """The export's evaluation of this skill (free-form), or None."""


class Policy:
    """Deterministic numpy inference for one skill (or a free-text embedding). Thread-compatible, not
    thread-safe (preallocated buffers): one Policy per thread."""

    def __init__(self, bundle: Bundle, embedding: np.ndarray, skill: SkillInfo | None, z_mode: str = "mean"):
        if z_mode not in ("mean", "sample"):
            raise ValueError("z_mode must be 'mean' (deterministic) or 'sample' (the original's sampled z)")
        w = bundle.weights
        n_obs = bundle.network.obs_dim
        e = np.asarray(embedding, np.float32).reshape(-1)
        if e.shape != (bundle.network.embed_dim,):
            raise ValueError(f"embedding must have {bundle.network.embed_dim} values, got {e.shape}")
        self.skill = skill
        self.bundle = bundle
        self.layout = bundle.layout
        self.z_mode = z_mode
        W0 = w["enc.l0.weight"]
        # Precomputed per skill: the embedding's share of the first encoder layer (see module docstring).
        self._enc_c0 = (W0[:, n_obs:] @ e + w["enc.l0.bias"]).astype(np.float32)
        self._enc_W0s = np.ascontiguousarray(W0[:, :n_obs].T)  # [obs, H]: row-vector x @ W
        self._enc = [(np.ascontiguousarray(w[f"enc.l{i}.weight"].T), w[f"enc.l{i}.bias"]) for i in (1, 2)]
        self._mu = (np.ascontiguousarray(w["enc.mu.weight"].T), w["enc.mu.bias"])
        self._lv = (
            (np.ascontiguousarray(w["enc.logvar.weight"].T), w["enc.logvar.bias"])
            if z_mode == "sample"
            else None
        )
        A0 = w["actor.l0.weight"]
        self._act_W0s = np.ascontiguousarray(A0[:, :n_obs].T)
        self._act_W0z = np.ascontiguousarray(A0[:, n_obs:].T)
        self._act_b0 = w["actor.l0.bias"]
        self._ln = (w["actor.ln.weight"], w["actor.ln.bias"])
        self._act = [
            (np.ascontiguousarray(w[f"actor.l{i}.weight"].T), w[f"actor.l{i}.bias"]) for i in (1, 2, 3)
        ]
        a = bundle.network.action_dim
        self._out = (
            np.ascontiguousarray(w["actor.out.weight"][:a].T),
            w["actor.out.bias"][:a],
        )  # mean rows only
        self._rng = np.random.default_rng(0)

        # Preallocated buffers for the batch-1 hot path (one Policy per thread).
        H, Ha = self._enc_c0.shape[0], self._act_b0.shape[0]
        self._h1, self._h2 = np.empty(H, np.float32), np.empty(H, np.float32)
        self._g1, self._g2 = np.empty(Ha, np.float32), np.empty(Ha, np.float32)
        self._z = np.empty(self._mu[1].shape[0], np.float32)

    def latent(self, obs: np.ndarray) -> np.ndarray:
        """μ (or a sample, z_mode='sample') of q(z|s,e) for obs [dim] or [N, dim]."""
        x = np.asarray(obs, np.float32)
        h = x @ self._enc_W0s
        h += self._enc_c0
        np.maximum(h, 0.0, out=h)
        for W, b in self._enc:
            h = h @ W
            h += b
            np.maximum(h, 0.0, out=h)
        z = h @ self._mu[0] + self._mu[1]
        if self._lv is not None:
            lv = h @ self._lv[0] + self._lv[1]
            z = z + np.exp(0.5 * lv) * self._rng.standard_normal(z.shape).astype(np.float32)
        return z

    def _act_one(self, x: np.ndarray) -> np.ndarray:
        """Batch-1 path: same function as the batch path, with out= buffers (no per-call allocations
        on the 400/300-wide layers; ~25 numpy calls in all)."""
        h1, h2, g1, g2, z = self._h1, self._h2, self._g1, self._g2, self._z
        np.matmul(x, self._enc_W0s, out=h1)
        h1 += self._enc_c0
        np.maximum(h1, 0.0, out=h1)
        (W1, b1), (W2, b2) = self._enc
        np.matmul(h1, W1, out=h2)
        h2 += b1
        np.maximum(h2, 0.0, out=h2)
        np.matmul(h2, W2, out=h1)
        h1 += b2
        np.maximum(h1, 0.0, out=h1)
        np.matmul(h1, self._mu[0], out=z)
        z += self._mu[1]
        if self._lv is not None:
            z += np.exp(0.5 * (h1 @ self._lv[0] + self._lv[1])) * self._rng.standard_normal(z.shape).astype(
                np.float32
            )
        np.matmul(x, self._act_W0s, out=g1)
        g1 += np.matmul(z, self._act_W0z, out=g2)
        g1 += self._act_b0
        g1 -= g1.mean()
        g1 /= np.sqrt(np.dot(g1, g1) / g1.shape[0] + LN_EPS)
        g1 *= self._ln[0]
        g1 += self._ln[1]
        np.tanh(g1, out=g1)
        a, b = g1, g2
        for W, bias in self._act:
            np.matmul(a, W, out=b)
            b += bias
            np.maximum(b, LEAKY_SLOPE * b, out=b)  # leaky ReLU with slope < 1
            a, b = b, a
        mean = a @ self._out[0]
        mean += self._out[1]
        return np.clip(np.tanh(mean), -1.0, 1.0)

    def act(self, obs: np.ndarray | dict) -> np.ndarray:
        """Action in [-1, 1]^4 for one observation (vector in the bundle's layout, or a dict of named
        fields that the layout builds — the same code real2sim uses) or a batch [N, dim]."""
        if isinstance(obs, dict):
            obs = self.layout.build(obs)
        x = np.asarray(obs, np.float32)
        if x.shape[-1] != self.layout.dim:
            raise LayoutError(
                f"observation must be {self.layout.dim}-d ({self.layout.name}), got shape {x.shape}"
            )
        if x.ndim == 1:
            return self._act_one(x)
        z = self.latent(x)
        h = x @ self._act_W0s
        h += z @ self._act_W0z
        h += self._act_b0
        h = np.tanh(_layer_norm(h, *self._ln))
        for W, b in self._act:
            h = h @ W
            h += b
            h = np.maximum(h, LEAKY_SLOPE * h)
        mean = h @ self._out[0] + self._out[1]
        return np.clip(np.tanh(mean), -1.0, 1.0)


HELD_OUT_SEED = 1
"""legion_core.training.trainer.TrainConfig.eval_env_seed's default (training placements use env_seed 0)."""


class Bundle:
    """A loaded, validated bundle: the typed sections of its contract (bundle_schema.BundleContract), the raw
    bundle.yaml mapping for its free-form parts, and the weights."""

    def __init__(
        self,
        path: Path,
        contract: dict,
        weights: dict[str, np.ndarray],
        signature: SignatureCheck | None = None,
        spec: BundleContract | None = None,
    ) -> None:
        from legion_core.contracts.signing import UNSIGNED

        self.path = path
        #: bundle.yaml as read (plain data). Read the typed sections below for what the schema covers; the
        #: free-form sections (provenance, evaluation, dpmm, inference, scene) are only here and in `spec`.
        self.contract = contract
        #: The typed contract (parsed and validated by bundle_schema.parse_contract).
        self.spec: BundleContract = spec if spec is not None else parse_contract(contract)
        self.weights = weights
        #: What load() established about bundle.sig (legion_core.contracts.signing.SignatureCheck): state "unsigned",
        #: "signed" (not verified: no trusted keys configured), "verified" or "unreadable", and the key id.
        self.signature = signature if signature is not None else UNSIGNED
        self.layout: ObservationLayout = self.spec.observation.built_in
        self.skills = {
            s.name: SkillInfo(
                s.name, i, list(s.descriptions), s.object_label, s.goal, s.success, int(s.max_episode_steps),
                s.evaluation,
            )
            for i, s in enumerate(self.spec.skills)
        }  # fmt: skip
        self._policies: dict[str, Policy] = {}
        self.transitions  # noqa: B018 - validated at load: a bad section fails here, naming its field

    @property
    def name(self) -> str | None:
        """The bundle's name (bundle.yaml `name`)."""
        return self.spec.name

    @property
    def embodiment(self) -> str:
        """The robot the policy was trained for (e.g. "kuka")."""
        return self.spec.embodiment

    @property
    def transitions(self):
        """The verified skill-to-skill transitions (contracts.transitions.Transitions), or None where the
        bundle records none (then plans are not checked for them)."""
        from legion_core.contracts.transitions import parse_transitions

        if self.spec.transitions is None:
            return None
        return parse_transitions(self.spec.transitions, self.skill_names)

    @property
    def held_out_seed(self) -> int:
        """The placements seed the model card's figures were measured on (the export's evaluation `seed`;
        bundles from before it was recorded: the trainer's default held-out seed, 1; training used 0). The
        evaluation and benchmark commands default to it; their `--seed` picks other placements."""
        ev = self.contract.get("evaluation") or {}
        return int(
            ev.get("seed", (self.contract.get("provenance") or {}).get("eval_env_seed", HELD_OUT_SEED))
        )

    @property
    def observation(self) -> ObservationSpec:
        """Observation layout and frame; `layout` is the built-in layout itself."""
        return self.spec.observation

    @property
    def action(self) -> ActionSpec:
        """Action semantics: dim, delta_xyz_scale_m_per_step [m], workspace_box_sim_m (low/high [m]),
        policy_step_s [s]."""
        return self.spec.action

    @property
    def network(self) -> NetworkSpec:
        """Network sizes (obs_dim, embed_dim, latent_dim, encoder_hidden, actor_hidden, action_dim)."""
        return self.spec.network

    @property
    def language_model(self) -> LanguageModelSpec:
        """The sentence embedder the skills' task embeddings came from."""
        return self.spec.language_model

    @property
    def weights_sha256(self) -> str:
        """sha256 of the weight file as the contract records it."""
        return self.spec.weights_sha256

    @property
    def skill_names(self) -> list[str]:
        return list(self.skills)

    @property
    def signature_status(self) -> str:
        """One line: "unsigned", "signed by key ab12… (not verified: no trusted keys configured)" or
        "verified: key ab12… (lab), N files unchanged since signing"."""
        return self.signature.status

    @property
    def scene(self) -> str | None:
        """The multi-object scene the skills were trained in (legion_core.contracts.scenes), or None for Meta-World's
        own placements. Evaluations and the twin must place objects the same way."""
        return (self.spec.scene or {}).get("name")

    def embedding(self, skill: str) -> np.ndarray:
        return self.weights["skills.embeddings"][self._skill(skill).index]

    def _skill(self, name: str) -> SkillInfo:
        if name not in self.skills:
            raise KeyError(f"skill {name!r} is not in this bundle; it has {self.skill_names}")
        return self.skills[name]

    def policy(
        self, skill: str | None = None, embedding: np.ndarray | None = None, z_mode: str = "mean"
    ) -> Policy:
        """The inference object for a skill of the bundle (by name) or for a free-text embedding."""
        if (skill is None) == (embedding is None):
            raise ValueError("give exactly one of skill (a name) or embedding (a free-text embedding)")
        if embedding is not None:
            return Policy(self, embedding, None, z_mode)
        key = f"{skill}/{z_mode}"
        if key not in self._policies:
            info = self._skill(skill)
            self._policies[key] = Policy(self, self.embedding(skill), info, z_mode)
        return self._policies[key]

    def policy_fn(self, skill: str):
        """A function obs -> action for the evaluation helpers."""
        return self.policy(skill).act


def load(path: str | Path, check_hashes: bool = True, trusted_keys: str | Path | None = None) -> Bundle:
    """Load and validate a bundle directory. Raises BundleError (field + fix) on any problem.

    trusted_keys: a public-key file or a directory of *.pub files (docs/bundle-signing.md). Given, the bundle
    must be signed by one of those keys and every file must be as signed, else BundleError naming why
    (checked first, before anything else is parsed, and regardless of check_hashes). None or '' (the ROS
    parameter default): signatures are reported in `Bundle.signature_status` but not required.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    from legion_core.contracts import signing

    path = Path(path)
    if not path.is_dir():
        raise BundleError(
            "path", f"{path} is not a directory", "give the bundle directory, e.g. models/<name>"
        )
    cfile = path / CONTRACT_FILE
    if not cfile.exists():
        raise BundleError(
            CONTRACT_FILE, f"not found in {path}", "export the run with `legion export RUN_DIR -o DIR`"
        )
    signature = signing.check(path, trusted_keys)
    try:
        contract = yaml.safe_load(cfile.read_text())
    except yaml.YAMLError as e:
        raise BundleError(
            CONTRACT_FILE, f"is not valid YAML ({e})", "restore the file from the export"
        ) from None
    spec = parse_contract(contract)
    wfile = path / WEIGHTS_FILE
    if not wfile.exists():
        raise BundleError(f"files.{WEIGHTS_FILE}", f"{wfile} is missing", "copy the whole bundle directory")
    if check_hashes:
        want = spec.weights_sha256
        got = sha256_file(wfile)
        if got != want:
            raise BundleError(
                f"files.{WEIGHTS_FILE}",
                f"sha256 mismatch (file {got[:12]}…, contract {want[:12]}…): the weights are corrupted or were "
                "replaced",
                "re-copy the bundle; never edit weights by hand",
            )
    try:
        weights = load_file(str(wfile))
    except (SafetensorError, OSError, ValueError) as e:
        raise BundleError(f"files.{WEIGHTS_FILE}", f"cannot be read ({e})", "re-export the bundle") from None
    _check_shapes(spec, weights)
    b = Bundle(
        path, contract, {k: v.astype(np.float32, copy=False) for k, v in weights.items()}, signature, spec
    )
    if check_hashes:
        from legion_core.contracts.language import embedding_hash

        for s in spec.skills:
            got = embedding_hash(b.embedding(s.name))
            if got != s.embedding_sha256:
                raise BundleError(
                    f"skills[{s.name}].embedding_sha256",
                    "does not match the stored embedding",
                    "re-export the bundle; the embedding table was altered",
                )
    return b


def _check_shapes(c: BundleContract, w: dict[str, np.ndarray]) -> None:
    n = c.network
    o, e, d, H, Ha, A = n.obs_dim, n.embed_dim, n.latent_dim, n.encoder_hidden, n.actor_hidden, n.action_dim
    S = len(c.skills)
    expect = {
        "enc.l0.weight": (H, o + e), "enc.l0.bias": (H,), "enc.l1.weight": (H, H), "enc.l1.bias": (H,),
        "enc.l2.weight": (H, H), "enc.l2.bias": (H,), "enc.mu.weight": (d, H), "enc.mu.bias": (d,),
        "enc.logvar.weight": (d, H), "enc.logvar.bias": (d,),
        "actor.l0.weight": (Ha, o + d), "actor.l0.bias": (Ha,), "actor.ln.weight": (Ha,), "actor.ln.bias": (Ha,),
        "actor.l1.weight": (Ha, Ha), "actor.l1.bias": (Ha,), "actor.l2.weight": (Ha, Ha), "actor.l2.bias": (Ha,),
        "actor.l3.weight": (Ha, Ha), "actor.l3.bias": (Ha,), "actor.out.weight": (2 * A, Ha),
        "actor.out.bias": (2 * A,), "skills.embeddings": (S, e),
    }  # fmt: skip
    for k, shp in expect.items():
        if k not in w:
            raise BundleError(f"weights.{k}", "tensor missing", "re-export the bundle")
        if tuple(w[k].shape) != shp:
            raise BundleError(
                f"weights.{k}", f"shape {tuple(w[k].shape)}, contract implies {shp}", "re-export the bundle"
            )
        if not np.all(np.isfinite(w[k])):
            raise BundleError(
                f"weights.{k}", "contains NaN/inf", "the run diverged; export an earlier checkpoint"
            )
