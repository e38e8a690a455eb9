"""Frozen policy bundles: the one artefact a trained LEGION agent leaves the lab as (issue 4).

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

Contract for loading (`load(path, trusted_keys=...)`): every field is validated (schema, types, shapes,
hashes, versions), the observation layout is checked field by field against the built-in layout the runtime
runs, and any problem raises `BundleError` naming the field and the fix. The sha256 values catch accidents
only; a robot PC that configures trusted public keys also refuses bundles that are unsigned, signed by
another key, or changed since signing. Inference needs numpy only.

Inference path (`Policy.act`), deterministic by default: z = μ(s, e) of the VAE encoder, a = tanh(μ_a(s, z))
(method notes §2.4; the original's sampled z is available with `z_mode="sample"`). Why it is fast on a
2-core robot PC: the encoder's first layer sees [s; e], and W_e·e + b is constant per skill, so it is
precomputed once per skill; what is left is a 12→400 layer, two 400×400 layers, 10 outputs, and the actor
with only the 4 mean rows of its last layer — in float32 numpy with preallocated buffers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from legion_core.contracts.bundle_schema import (
    FORMAT,
    FORMAT_VERSION,
    LEAKY_SLOPE,
    LN_EPS,
    SIGNATURE_FILE,
    WEIGHTS_FILE,
    BundleError,
    sha256_file,
)
from legion_core.contracts.layouts import LAYOUTS, SIM_WORLD, LayoutError, ObservationLayout

if TYPE_CHECKING:
    from legion_core.contracts.signing import SignatureCheck


# ------------------------------------------------------------------------------------------- validation
def _req(d: dict, key: str, typ, where: str, fix: str = "re-export the bundle with `legion export`"):
    if not isinstance(d, dict) or key not in d:
        raise BundleError(f"{where}{key}", "missing", fix)
    v = d[key]
    if typ is float and isinstance(v, int) and not isinstance(v, bool):
        v = float(v)
    if not isinstance(v, typ):
        tname = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
        raise BundleError(f"{where}{key}", f"expected {tname}, got {type(v).__name__} ({v!r:.60})", fix)
    return v


def _validate_contract(c: Any) -> None:
    if not isinstance(c, dict):
        raise BundleError("bundle.yaml", "is not a YAML mapping", "re-export the bundle")
    fmt = _req(c, "format", str, "")
    if fmt != FORMAT:
        raise BundleError(
            "format", f"is {fmt!r}, not {FORMAT!r}", "this directory is not a LEGION policy bundle"
        )
    ver = _req(c, "format_version", int, "")
    if ver != FORMAT_VERSION:
        raise BundleError(
            "format_version",
            f"is {ver}, this runtime reads version {FORMAT_VERSION}",
            "re-export the run with this version of `legion export`, or use the matching runtime",
        )
    obs = _req(c, "observation", dict, "")
    lay = _req(obs, "layout", str, "observation.")
    if lay not in LAYOUTS:
        raise BundleError("observation.layout", f"unknown layout {lay!r}", f"use one of {sorted(LAYOUTS)}")
    if _req(obs, "dim", int, "observation.") != LAYOUTS[lay].dim:
        raise BundleError("observation.dim", f"does not match layout {lay} ({LAYOUTS[lay].dim})", "re-export")
    _check_layout(obs, LAYOUTS[lay])
    act = _req(c, "action", dict, "")
    _req(act, "dim", int, "action.")
    scale = _req(act, "delta_xyz_scale_m_per_step", float, "action.")
    if not (0 < scale <= 0.05):
        raise BundleError(
            "action.delta_xyz_scale_m_per_step", f"{scale} m is implausible", "expected ~0.01 m"
        )
    box = _req(act, "workspace_box_sim_m", dict, "action.")
    lo = np.asarray(_req(box, "low", list, "action.workspace_box_sim_m."), float)
    hi = np.asarray(_req(box, "high", list, "action.workspace_box_sim_m."), float)
    if lo.shape != (3,) or hi.shape != (3,) or not np.all(lo < hi):
        raise BundleError("action.workspace_box_sim_m", "needs low < high, 3 values each [m]", "re-export")
    _req(act, "policy_step_s", float, "action.")
    _req(c, "embodiment", str, "")
    net = _req(c, "network", dict, "")
    for k in ("obs_dim", "embed_dim", "latent_dim", "encoder_hidden", "actor_hidden", "action_dim"):
        _req(net, k, int, "network.")
    lang = _req(c, "language_model", dict, "")
    _req(lang, "id", str, "language_model.")
    skills = _req(c, "skills", list, "")
    if not skills:
        raise BundleError("skills", "is empty", "a bundle needs at least one skill")
    for i, s in enumerate(skills):
        w = f"skills[{i}]."
        _req(s, "name", str, w)
        _req(s, "descriptions", list, w)
        _req(s, "embedding_sha256", str, w)
        _req(s, "object_label", str, w)
        _req(s, "goal", dict, w)
        _req(s, "max_episode_steps", int, w)
    files = _req(c, "files", dict, "")
    _req(files, WEIGHTS_FILE, str, "files.")


#: The parts of a layout field that decide what the policy sees at which index. A field's `description` is
#: prose: rewording it in layouts.py must not invalidate every shipped bundle, so it is not compared (and
#: with signing, an edited description is refused like any other change of bundle.yaml).
LAYOUT_FIELD_KEYS = ("name", "slice", "unit", "frame", "default")


def _same(got: Any, want: Any) -> bool:
    if isinstance(got, bool) or isinstance(want, bool):
        return got is want
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(_same(g, w) for g, w in zip(got, want))
    if isinstance(want, (int, float)):
        return isinstance(got, (int, float)) and float(got) == float(want)
    return got == want


def _check_layout(obs: dict, layout: ObservationLayout) -> None:
    """The bundle's observation fields must be the built-in layout of the same name, field by field.

    Why check against the built-in instead of building the layout from bundle.yaml: the layout is code, not
    data. Training built the policy's inputs with `legion_core.contracts.layouts` by name, and the runtime does the
    same (real2sim_node and policy_node look the layout up by name and build the vector from named fields).
    A bundle.yaml whose fields differ (e.g. obj_pos and goal_pos slices swapped) therefore describes a
    vector that nothing produces: either the file was damaged or edited, or the policy was trained on a
    different layout, which needs its own name and code in layouts.py. Building the layout from the bundle
    would let the contract and the nodes disagree; refusing keeps one source of truth.
    """
    fix = (
        f"the runtime builds observations with the built-in layout {layout.name!r} (legion_core/contracts/layouts.py); "
        "restore bundle.yaml from the export or re-export the run with `legion export`. A policy trained on a "
        "different layout needs that layout added to legion_core/contracts/layouts.py under its own name"
    )
    want = layout.to_dict()
    if "name" in obs and obs["name"] != layout.name:
        raise BundleError(
            "observation.name", f"is {obs['name']!r}, observation.layout is {layout.name!r}", fix
        )
    frame = _req(obs, "frame", str, "observation.")
    if frame != SIM_WORLD:
        raise BundleError(
            "observation.frame", f"is {frame!r}, the built-in {layout.name} layout is in {SIM_WORLD!r}", fix
        )
    fields = _req(obs, "fields", list, "observation.")
    ref_fields = want["fields"]
    if len(fields) != len(ref_fields):
        raise BundleError(
            "observation.fields",
            f"has {len(fields)} fields, the built-in {layout.name} layout has {len(ref_fields)} "
            f"({', '.join(f['name'] for f in ref_fields)})",
            fix,
        )
    for i, (got, ref) in enumerate(zip(fields, ref_fields)):
        where = f"observation.fields[{i}]"
        if not isinstance(got, dict):
            raise BundleError(where, f"is not a mapping ({got!r:.60})", fix)
        for key in LAYOUT_FIELD_KEYS:
            g, r = got.get(key), ref.get(key)
            if not _same(g, r):
                have = "missing" if key not in got else f"is {g!r}"
                raise BundleError(
                    f"{where}.{key}",
                    f"{have}, the built-in {layout.name} layout the runtime runs has {r!r} "
                    f"(field {ref['name']!r})",
                    fix,
                )


# --------------------------------------------------------------------------------------------- inference
def _layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + LN_EPS) * g + b


@dataclass
class SkillInfo:
    name: str
    index: int
    descriptions: list[str]
    object_label: str
    goal: dict
    success: dict | None
    max_episode_steps: int
    evaluation: dict | None


class Policy:
    """Deterministic numpy inference for one skill (or a free-text embedding). Thread-compatible, not
    thread-safe (preallocated buffers): one Policy per thread."""

    def __init__(self, bundle: Bundle, embedding: np.ndarray, skill: SkillInfo | None, z_mode: str = "mean"):
        if z_mode not in ("mean", "sample"):
            raise ValueError("z_mode must be 'mean' (deterministic) or 'sample' (the original's sampled z)")
        w = bundle.weights
        n_obs = bundle.network["obs_dim"]
        e = np.asarray(embedding, np.float32).reshape(-1)
        if e.shape != (bundle.network["embed_dim"],):
            raise ValueError(f"embedding must have {bundle.network['embed_dim']} values, got {e.shape}")
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
        a = bundle.network["action_dim"]
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


class Bundle:
    def __init__(
        self,
        path: Path,
        contract: dict,
        weights: dict[str, np.ndarray],
        signature: SignatureCheck | None = None,
    ) -> None:
        from legion_core.contracts.signing import UNSIGNED

        self.path = path
        self.contract = contract
        self.weights = weights
        #: What load() established about bundle.sig (legion_core.contracts.signing.SignatureCheck): state "unsigned",
        #: "signed" (not verified: no trusted keys configured), "verified" or "unreadable", and the key id.
        self.signature = signature if signature is not None else UNSIGNED
        self.network = contract["network"]
        self.layout: ObservationLayout = LAYOUTS[contract["observation"]["layout"]]
        self.skills = {
            s["name"]: SkillInfo(
                s["name"], i, list(s["descriptions"]), s["object_label"], s["goal"], s.get("success"),
                int(s["max_episode_steps"]), s.get("evaluation"),
            )
            for i, s in enumerate(contract["skills"])
        }  # fmt: skip
        self._policies: dict[str, Policy] = {}

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
        return (self.contract.get("scene") or {}).get("name")

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
    cfile = path / "bundle.yaml"
    if not cfile.exists():
        raise BundleError(
            "bundle.yaml", f"not found in {path}", "export the run with `legion export RUN_DIR -o DIR`"
        )
    signature = signing.check(path, trusted_keys)
    try:
        contract = yaml.safe_load(cfile.read_text())
    except yaml.YAMLError as e:
        raise BundleError(
            "bundle.yaml", f"is not valid YAML ({e})", "restore the file from the export"
        ) from None
    _validate_contract(contract)
    wfile = path / WEIGHTS_FILE
    if not wfile.exists():
        raise BundleError(f"files.{WEIGHTS_FILE}", f"{wfile} is missing", "copy the whole bundle directory")
    if check_hashes:
        want = contract["files"][WEIGHTS_FILE]
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
    _check_shapes(contract, weights)
    b = Bundle(path, contract, {k: v.astype(np.float32, copy=False) for k, v in weights.items()}, signature)
    if check_hashes:
        from legion_core.contracts.language import embedding_hash

        for s in contract["skills"]:
            got = embedding_hash(b.embedding(s["name"]))
            if got != s["embedding_sha256"]:
                raise BundleError(
                    f"skills[{s['name']}].embedding_sha256",
                    "does not match the stored embedding",
                    "re-export the bundle; the embedding table was altered",
                )
    return b


def _check_shapes(c: dict, w: dict[str, np.ndarray]) -> None:
    n = c["network"]
    o, e, d, H, Ha, A = (
        n[k] for k in ("obs_dim", "embed_dim", "latent_dim", "encoder_hidden", "actor_hidden", "action_dim")
    )
    S = len(c["skills"])
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


# ---------------------------------------------------------------------------------------------- export
def agent_weights(agent, embeddings: np.ndarray) -> dict[str, np.ndarray]:
    """The inference weights of a LegionAgent as named float32 arrays."""
    enc, act = agent.encoder, agent.actor.model

    def t(x) -> np.ndarray:
        return x.detach().cpu().numpy().astype(np.float32)

    w = {
        "enc.mu.weight": t(enc.mu.weight), "enc.mu.bias": t(enc.mu.bias),
        "enc.logvar.weight": t(enc.logvar.weight), "enc.logvar.bias": t(enc.logvar.bias),
        "actor.ln.weight": t(act[1].weight), "actor.ln.bias": t(act[1].bias),
        "actor.out.weight": t(act[9].weight), "actor.out.bias": t(act[9].bias),
        "skills.embeddings": np.asarray(embeddings, np.float32),
    }  # fmt: skip
    for i, idx in enumerate((0, 2, 4)):
        w[f"enc.l{i}.weight"], w[f"enc.l{i}.bias"] = t(enc.trunk[idx].weight), t(enc.trunk[idx].bias)
    for i, idx in enumerate((0, 3, 5, 7)):
        w[f"actor.l{i}.weight"], w[f"actor.l{i}.bias"] = t(act[idx].weight), t(act[idx].bias)
    return w


def write_bundle(out_dir: Path, contract: dict, weights: dict[str, np.ndarray]) -> Path:
    """Write weights + contract (with the weight file's sha256) atomically enough for a model directory."""
    from safetensors.numpy import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # A signature of the bundle that is being overwritten can only be wrong now; sign again after export.
    (out_dir / SIGNATURE_FILE).unlink(missing_ok=True)
    wfile = out_dir / WEIGHTS_FILE
    save_file(
        {k: np.ascontiguousarray(v) for k, v in weights.items()}, str(wfile), metadata={"format": FORMAT}
    )
    contract = dict(contract)
    contract["files"] = {WEIGHTS_FILE: sha256_file(wfile)}
    _validate_contract(contract)
    (out_dir / "bundle.yaml").write_text(
        "# LEGION policy bundle contract (issue 4). Loaded and validated by legion_core.contracts.bundle.load().\n"
        + yaml.safe_dump(contract, sort_keys=False, width=110)
    )
    return out_dir


def fmt_rate(x: float | None) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"
