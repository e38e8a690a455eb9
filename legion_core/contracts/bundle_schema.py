"""The policy bundle's schema: file names, format version, weight tensor names, the keys of `bundle.yaml` as
typed, frozen sections, and the one function that validates a `bundle.yaml` mapping into them
(`parse_contract`). One home for what `legion export` writes (legion_core/training/export.py), `bundle.load`
checks (legion_core/contracts/bundle.py) and the nodes read (layers: docs/architecture.md); no numpy
model code here, so signing and export import it without the loader.

Sections the runtime reads are typed: `observation` (ObservationSpec), `action` (ActionSpec, with its
WorkspaceBox), `network` (NetworkSpec), `language_model` (LanguageModelSpec), `skills` (BundleSkill) and the
top-level scalars. A dataclass field's name is its key in bundle.yaml and the field order is the key order
`legion export` writes, so `to_dict()` of an exported contract is the mapping that lands in the file.
`inference`, `dpmm`, `provenance` and `evaluation` (and a skill's `evaluation`) are free-form mappings for
people (model card, `legion inspect`) whose inner keys export.py owns; `scene` is scenes.SceneSpec.to_dict()
(the runtime reads its name, `Bundle.scene`). They are carried as they are and not validated, as before.

Keys the schema does not know are ignored on load, as before: a newer exporter may add a descriptive key
without breaking older runtimes; an incompatible change bumps FORMAT_VERSION instead.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from legion_core.contracts.layouts import LAYOUTS, SIM_WORLD, ObservationLayout

FORMAT = "legion-bundle"
FORMAT_VERSION = 1
#: The contract file of a bundle directory.
CONTRACT_FILE = "bundle.yaml"
WEIGHTS_FILE = "weights.safetensors"
#: Generated, human-readable summary (legion_core/training/export.py, `model_card`).
MODEL_CARD_FILE = "MODEL_CARD.md"
#: Optional detached signature (legion_core/contracts/signing.py).
SIGNATURE_FILE = "bundle.sig"
#: First line of every exported bundle.yaml. Kept byte for byte: a re-export of the same run must write the
#: same file, and the shipped bundles (models/) were written with it.
CONTRACT_HEADER = "# LEGION policy bundle contract (issue 4). Loaded and validated by legion_core.contracts.bundle.load().\n"

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

#: The parts of a layout field that decide what the policy sees at which index. A field's `description` is
#: prose: rewording it in layouts.py must not invalidate every shipped bundle, so it is not compared (and
#: with signing, an edited description is refused like any other change of bundle.yaml).
LAYOUT_FIELD_KEYS = ("name", "slice", "unit", "frame", "default")

_REEXPORT = "re-export the bundle with `legion export`"


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


# ---------------------------------------------------------------------------------------------- sections
def _omitted_if_none(default: Any = None) -> Any:
    """A key that bundle.yaml leaves out while it has no value (rather than writing `null`)."""
    return field(default=default, metadata={"omit_if_none": True})


def _plain(v: Any) -> Any:
    """YAML-safe plain data: sections become mappings, tuples lists (yaml.safe_dump refuses tuples)."""
    if isinstance(v, _Section):
        return v.to_dict()
    if isinstance(v, (tuple, list)):
        return [_plain(x) for x in v]
    if isinstance(v, Mapping):
        return {k: _plain(x) for k, x in v.items()}
    return v


class _Section:
    """A part of bundle.yaml: field name = key, field order = the order export writes the keys in."""

    def to_dict(self) -> dict:
        out: dict = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if v is None and f.metadata.get("omit_if_none"):
                continue
            out[f.name] = _plain(v)
        return out

    @classmethod
    def yaml_keys(cls) -> tuple[str, ...]:
        """Every key this section can have in bundle.yaml, in the order export writes them."""
        return tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]


@dataclass(frozen=True, kw_only=True)
class ObservationSpec(_Section):
    """`observation`: the built-in layout the policy reads (legion_core/contracts/layouts.py), by name."""

    name: str | None = _omitted_if_none()
    """The layout's own name, as its to_dict() writes it; must equal `layout` where present."""
    dim: int
    """Length of the observation vector."""
    description: str | None = _omitted_if_none()
    """Prose from the layout (not compared on load)."""
    fields: tuple[dict, ...]
    """Per field: name, slice [start, stop), unit, frame, description, default (LAYOUT_FIELD_KEYS are checked
    against the built-in layout on load)."""
    layout: str
    """Name of the built-in layout in legion_core.contracts.layouts.LAYOUTS."""
    frame: str
    """Frame every position is expressed in (sim_world, docs/kuka-embodiment.md)."""
    frame_description: str | None = _omitted_if_none()
    """Prose definition of the frame for people reading the file."""

    @classmethod
    def from_layout(cls, layout: ObservationLayout, frame_description: str) -> ObservationSpec:
        d = layout.to_dict()
        return cls(
            name=d["name"], dim=d["dim"], description=d["description"], fields=tuple(d["fields"]),
            layout=layout.name, frame=SIM_WORLD, frame_description=frame_description,
        )  # fmt: skip

    @property
    def built_in(self) -> ObservationLayout:
        """The layout the runtime builds observations with (the bundle was checked against it on load)."""
        return LAYOUTS[self.layout]


@dataclass(frozen=True, kw_only=True)
class WorkspaceBox(_Section):
    """`action.workspace_box_sim_m`: the box every skill's hand targets were trained inside [m, sim_world]."""

    low: tuple[float, float, float]
    """Lower corner (x, y, z) [m]."""
    high: tuple[float, float, float]
    """Upper corner (x, y, z) [m]; strictly above `low` on every axis."""


@dataclass(frozen=True, kw_only=True)
class ActionSpec(_Section):
    """`action`: what one policy output means and where it was trained to act."""

    dim: int
    """Number of action components (dx, dy, dz, gripper)."""
    range: tuple[float, float] | None = _omitted_if_none()
    """Range of every component (tanh output)."""
    meaning: tuple[str, ...] | None = _omitted_if_none()
    """One line of prose per component."""
    delta_xyz_scale_m_per_step: float
    """Hand displacement per policy step for a[:3] = 1 [m]."""
    end_effector_orientation_quat_wxyz: tuple[float, float, float, float] | None = _omitted_if_none()
    """The fixed hand orientation the policy was trained with (w, x, y, z)."""
    end_effector_orientation: str | None = _omitted_if_none()
    """The same orientation in words."""
    workspace_box_sim_m: WorkspaceBox
    """Box the hand targets were trained inside [m, sim_world]."""
    policy_step_s: float
    """Duration of one policy step in the simulator [s]."""
    policy_step_note: str | None = _omitted_if_none()
    """How the policy step is made of physics steps (prose)."""


@dataclass(frozen=True, kw_only=True)
class NetworkSpec(_Section):
    """`network`: the sizes that fix every weight tensor's shape (checked against the weights on load)."""

    obs_dim: int
    """Observation inputs of encoder and actor."""
    embed_dim: int
    """Length of a skill's task embedding."""
    latent_dim: int
    """Length of the VAE latent z."""
    encoder_hidden: int
    """Width of the encoder's hidden layers."""
    actor_hidden: int
    """Width of the actor's hidden layers."""
    action_dim: int
    """Action outputs (the actor has 2 x action_dim: means and log-stds)."""


@dataclass(frozen=True, kw_only=True)
class LanguageModelSpec(_Section):
    """`language_model`: the sentence embedder the skills' task embeddings came from."""

    id: str
    """Model id (legion_core.contracts.language.MODEL_ID)."""
    package: str | None = _omitted_if_none()
    """Python package that runs it."""
    embed_dim: int | None = _omitted_if_none()
    """Length of its embeddings."""


@dataclass(frozen=True, kw_only=True)
class BundleSkill(_Section):
    """One entry of `skills`: a skill the bundle can run, and how the runtime judges and bounds it."""

    name: str
    """Skill name (the task registry's, legion_core/contracts/tasks.py)."""
    env_name: str | None = _omitted_if_none()
    """The Meta-World environment it was trained in."""
    descriptions: tuple[str, ...]
    """Operator phrasings the grounding matches (legion_core/runtime/grounding.py)."""
    embedding_text: str | None = _omitted_if_none()
    """The sentence whose embedding the policy is conditioned on."""
    embedding_sha256: str
    """Hash of the stored embedding row (checked on load)."""
    object_label: str
    """Detection label of the object the skill acts on."""
    goal: dict
    """Goal rule (tasks.GoalRule.to_dict())."""
    success: dict | None = None
    """Observable success predicate (tasks.SuccessPredicate.to_dict()), or null when there is none."""
    max_episode_steps: int
    """Step budget of one attempt [policy steps]."""
    hand_init_pos_m: tuple[float, ...] | None = _omitted_if_none()
    """Meta-World's hand start [m, sim_world]."""
    evaluation: dict | None = _omitted_if_none()
    """The export's evaluation of this skill (free-form, written after evaluating)."""


@dataclass(frozen=True, kw_only=True)
class BundleContract(_Section):
    """The whole of bundle.yaml, as `legion export` writes it and `bundle.load` validates it."""

    format: str = FORMAT
    """Always FORMAT: says the directory is a LEGION policy bundle."""
    format_version: int = FORMAT_VERSION
    """Version of this schema; the runtime reads FORMAT_VERSION only."""
    name: str | None = _omitted_if_none()
    """Bundle name (the model directory's name by default)."""
    created_utc: str | None = _omitted_if_none()
    """Export time, ISO 8601 UTC."""
    embodiment: str
    """Robot the policy was trained for (e.g. kuka)."""
    observation: ObservationSpec
    """Observation layout and frame."""
    action: ActionSpec
    """Action semantics and trained workspace."""
    network: NetworkSpec
    """Network sizes."""
    inference: dict | None = _omitted_if_none()
    """How Policy.act computes an action (prose, free-form)."""
    language_model: LanguageModelSpec
    """Sentence embedder of the skills."""
    skills: tuple[BundleSkill, ...]
    """The skills, in the order of the embedding table's rows."""
    scene: dict | None = None
    """Multi-object training scene (scenes.SceneSpec.to_dict()), or null for Meta-World's own placements."""
    dpmm: dict | None = _omitted_if_none()
    """DPMM knowledge-space summary at export (free-form)."""
    provenance: dict | None = _omitted_if_none()
    """How the run was trained (free-form)."""
    evaluation: dict | None = _omitted_if_none()
    """The export's evaluation through the bundle (free-form, written after evaluating)."""
    files: dict[str, str] | None = _omitted_if_none()
    """sha256 of every weight file, by file name; written by the export once the weights are on disk."""
    transitions: dict | None = _omitted_if_none()
    """The skill-to-skill transitions evaluated through the graph (legion_core.contracts.transitions; written
    by `legion bench longhorizon --record-transitions`); absent: plans are not checked for them."""

    @property
    def weights_sha256(self) -> str:
        """sha256 of WEIGHTS_FILE as the contract records it."""
        return (self.files or {})[WEIGHTS_FILE]


# -------------------------------------------------------------------------------------------- validation
def _req(d: Any, key: str, typ, where: str, fix: str = _REEXPORT):
    if not isinstance(d, dict) or key not in d:
        raise BundleError(f"{where}{key}", "missing", fix)
    v = d[key]
    if typ is float and isinstance(v, int) and not isinstance(v, bool):
        v = float(v)
    if not isinstance(v, typ):
        tname = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
        raise BundleError(f"{where}{key}", f"expected {tname}, got {type(v).__name__} ({v!r:.60})", fix)
    return v


def _same(got: Any, want: Any) -> bool:
    if isinstance(got, bool) or isinstance(want, bool):
        return got is want
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(_same(g, w) for g, w in zip(got, want))
    if isinstance(want, (int, float)):
        return isinstance(got, (int, float)) and float(got) == float(want)
    return got == want


def _check_layout(obs: dict, layout: ObservationLayout) -> list:
    """The bundle's observation fields must be the built-in layout of the same name, field by field; returns
    the fields.

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
    return fields


def _parse_observation(c: dict) -> ObservationSpec:
    obs = _req(c, "observation", dict, "")
    lay = _req(obs, "layout", str, "observation.")
    if lay not in LAYOUTS:
        raise BundleError("observation.layout", f"unknown layout {lay!r}", f"use one of {sorted(LAYOUTS)}")
    dim = _req(obs, "dim", int, "observation.")
    if dim != LAYOUTS[lay].dim:
        raise BundleError("observation.dim", f"does not match layout {lay} ({LAYOUTS[lay].dim})", "re-export")
    fields = _check_layout(obs, LAYOUTS[lay])
    return ObservationSpec(
        name=obs.get("name"), dim=dim, description=obs.get("description"), fields=tuple(fields),
        layout=lay, frame=obs["frame"], frame_description=obs.get("frame_description"),
    )  # fmt: skip


def _xyz(values: list) -> tuple[float, float, float] | None:
    """The three coordinates as floats, or None where they are not three numbers."""
    try:
        xyz = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        return None
    return xyz if len(xyz) == 3 else None  # type: ignore[return-value]


def _tuple_or_as_is(v: Any) -> Any:
    """Lists of the descriptive (unvalidated) keys as tuples, so the frozen sections hold no mutable lists;
    anything else as it is (these keys are not checked on load)."""
    return tuple(v) if isinstance(v, list) else v


def _parse_action(c: dict) -> ActionSpec:
    act = _req(c, "action", dict, "")
    dim = _req(act, "dim", int, "action.")
    scale = _req(act, "delta_xyz_scale_m_per_step", float, "action.")
    if not (0 < scale <= 0.05):
        raise BundleError(
            "action.delta_xyz_scale_m_per_step", f"{scale} m is implausible", "expected ~0.01 m"
        )
    box = _req(act, "workspace_box_sim_m", dict, "action.")
    lo = _xyz(_req(box, "low", list, "action.workspace_box_sim_m."))
    hi = _xyz(_req(box, "high", list, "action.workspace_box_sim_m."))
    if lo is None or hi is None or not all(a < b for a, b in zip(lo, hi)):
        raise BundleError("action.workspace_box_sim_m", "needs low < high, 3 values each [m]", "re-export")
    step = _req(act, "policy_step_s", float, "action.")
    return ActionSpec(
        dim=dim, range=_tuple_or_as_is(act.get("range")), meaning=_tuple_or_as_is(act.get("meaning")),
        delta_xyz_scale_m_per_step=scale,
        end_effector_orientation_quat_wxyz=_tuple_or_as_is(act.get("end_effector_orientation_quat_wxyz")),
        end_effector_orientation=act.get("end_effector_orientation"),
        workspace_box_sim_m=WorkspaceBox(low=lo, high=hi), policy_step_s=step,
        policy_step_note=act.get("policy_step_note"),
    )  # fmt: skip


def _parse_skill(s: Any, i: int) -> BundleSkill:
    w = f"skills[{i}]."
    name = _req(s, "name", str, w)
    descriptions = _req(s, "descriptions", list, w)
    sha = _req(s, "embedding_sha256", str, w)
    label = _req(s, "object_label", str, w)
    goal = _req(s, "goal", dict, w)
    steps = _req(s, "max_episode_steps", int, w)
    return BundleSkill(
        name=name, env_name=s.get("env_name"), descriptions=tuple(descriptions),
        embedding_text=s.get("embedding_text"), embedding_sha256=sha, object_label=label, goal=goal,
        success=s.get("success"), max_episode_steps=steps,
        hand_init_pos_m=_tuple_or_as_is(s.get("hand_init_pos_m")), evaluation=s.get("evaluation"),
    )  # fmt: skip


def parse_contract(c: Any) -> BundleContract:
    """Validate a bundle.yaml mapping and return its typed sections. Raises BundleError naming the first
    field that is missing, of the wrong type or implausible, and how to fix it. Keys the schema does not know
    are ignored (module docstring)."""
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
    observation = _parse_observation(c)
    action = _parse_action(c)
    embodiment = _req(c, "embodiment", str, "")
    net = _req(c, "network", dict, "")
    network = NetworkSpec(**{k: _req(net, k, int, "network.") for k in NetworkSpec.yaml_keys()})
    lang = _req(c, "language_model", dict, "")
    language_model = LanguageModelSpec(
        id=_req(lang, "id", str, "language_model."),
        package=lang.get("package"),
        embed_dim=lang.get("embed_dim"),
    )
    skills = _req(c, "skills", list, "")
    if not skills:
        raise BundleError("skills", "is empty", "a bundle needs at least one skill")
    parsed_skills = tuple(_parse_skill(s, i) for i, s in enumerate(skills))
    files = _req(c, "files", dict, "")
    _req(files, WEIGHTS_FILE, str, "files.")
    return BundleContract(
        format=fmt, format_version=ver, name=c.get("name"), created_utc=c.get("created_utc"),
        embodiment=embodiment, observation=observation, action=action, network=network,
        inference=c.get("inference"), language_model=language_model, skills=parsed_skills,
        scene=c.get("scene"), dpmm=c.get("dpmm"), provenance=c.get("provenance"),
        evaluation=c.get("evaluation"), files=files, transitions=c.get("transitions"),
    )  # fmt: skip


def unknown_keys(c: Mapping) -> list[str]:
    """Dotted paths of the keys in a bundle.yaml mapping that the schema has no field for (ignored on load;
    `legion export` writes none: tests/unit/test_bundle_schema.py)."""

    def extra(d: Any, section: type[_Section], where: str) -> list[str]:
        return [f"{where}{k}" for k in d if k not in section.yaml_keys()] if isinstance(d, Mapping) else []

    action = c.get("action")
    out = extra(c, BundleContract, "")
    out += extra(c.get("observation"), ObservationSpec, "observation.")
    out += extra(action, ActionSpec, "action.")
    out += extra(action.get("workspace_box_sim_m") if isinstance(action, Mapping) else None, WorkspaceBox,
                 "action.workspace_box_sim_m.")  # fmt: skip
    out += extra(c.get("network"), NetworkSpec, "network.")
    out += extra(c.get("language_model"), LanguageModelSpec, "language_model.")
    for i, s in enumerate(c.get("skills") or []):
        out += extra(s, BundleSkill, f"skills[{i}].")
    return out
