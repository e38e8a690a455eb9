"""Observation contracts as named layouts, not magic indices (the paper's layout: docs/method.md#tasks).

A layout knows each field's name, slice, unit and frame, and builds the flat vector the policy sees from a
dict of named fields. The same code builds it in simulation (from Meta-World's 39-d vector) and on the
robot (from joint states + camera detections, `sim2real.real2sim`), so the two can never disagree about
what index 9 means.

Frames: `sim_world` is Meta-World's world frame (REP-103 right-handed, metres): origin on the table top
under the Sawyer's base, +x to the robot's right when it faces the table, +y away from the robot across
the table, +z up. The table top is z = 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

SIM_WORLD = "sim_world"


class LayoutError(ValueError):
    """A field is missing, has the wrong size or is not finite."""


@dataclass(frozen=True)
class Field:
    name: str
    size: int
    unit: str
    frame: str | None
    description: str
    #: Value used when the field is not given (padding). None = the field is required.
    default: float | None = None


@dataclass(frozen=True)
class ObservationLayout:
    name: str
    fields: tuple[Field, ...]
    description: str = ""
    _slices: dict[str, slice] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        slices, start = {}, 0
        for f in self.fields:
            if f.name in slices:
                raise ValueError(f"layout {self.name}: duplicate field {f.name!r}")
            slices[f.name] = slice(start, start + f.size)
            start += f.size
        object.__setattr__(self, "_slices", slices)

    @property
    def dim(self) -> int:
        return sum(f.size for f in self.fields)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def slice(self, name: str) -> slice:
        try:
            return self._slices[name]
        except KeyError:
            raise LayoutError(
                f"layout {self.name!r} has no field {name!r}; its fields are {list(self._slices)}"
            ) from None

    def build(self, values: Mapping[str, np.ndarray | list[float] | float]) -> np.ndarray:
        """Flat float64 vector from named fields. Unknown names, wrong sizes and non-finite values raise a
        LayoutError that names the field; fields with a default may be omitted."""
        unknown = set(values) - set(self._slices)
        if unknown:
            raise LayoutError(
                f"layout {self.name!r}: unknown field(s) {sorted(unknown)}; expected {list(self._slices)}"
            )
        out = np.empty(self.dim, dtype=np.float64)
        for f in self.fields:
            sl = self._slices[f.name]
            if f.name in values:
                v = np.asarray(values[f.name], dtype=np.float64).reshape(-1)
                if v.size != f.size:
                    raise LayoutError(
                        f"layout {self.name!r}: field {f.name!r} needs {f.size} value(s) [{f.unit}], "
                        f"got {v.size}"
                    )
                if not np.all(np.isfinite(v)):
                    raise LayoutError(f"layout {self.name!r}: field {f.name!r} is not finite: {v.tolist()}")
                out[sl] = v
            elif f.default is not None:
                out[sl] = f.default
            else:
                raise LayoutError(
                    f"layout {self.name!r}: required field {f.name!r} ({f.description}) missing"
                )
        return out

    def extract(self, vec: np.ndarray) -> dict[str, np.ndarray]:
        vec = np.asarray(vec)
        if vec.shape[-1] != self.dim:
            raise LayoutError(f"layout {self.name!r} is {self.dim}-d, got a vector of shape {vec.shape}")
        return {f.name: vec[..., self._slices[f.name]].copy() for f in self.fields}

    def to_dict(self) -> dict:
        """The contract as plain data (bundle.yaml, `legion inspect`)."""
        return {
            "name": self.name,
            "dim": self.dim,
            "description": self.description,
            "fields": [
                {
                    "name": f.name,
                    "slice": [self._slices[f.name].start, self._slices[f.name].stop],
                    "unit": f.unit,
                    "frame": f.frame,
                    "description": f.description,
                    **({"default": f.default} if f.default is not None else {}),
                }
                for f in self.fields
            ],
        }


def _xyz(name: str, what: str, default: float | None = None) -> Field:
    return Field(name, 3, "m", SIM_WORLD, what, default)


LEGION12 = ObservationLayout(
    "legion12",
    (
        _xyz("hand_pos", "position of the gripper's `hand` body (Meta-World's end-effector)"),
        _xyz("obj_pos", "position of the task object's reference point (task-specific site)"),
        _xyz("obj2_pos", "second object slot; always zero padding in our tasks", default=0.0),
        _xyz("goal_pos", "goal position of the task"),
    ),
    "The paper's 12-d state (method notes §1.2): [hand xyz | object xyz padded to 6 | goal xyz].",
)

_MW_BLOCK = (
    ("hand_pos", 3, "m", SIM_WORLD, "hand body position"),
    ("gripper_open", 1, "1", None, "finger distance / 0.1 m, clipped to [0, 1]"),
    ("obj_pos", 3, "m", SIM_WORLD, "object 1 position"),
    ("obj_quat", 4, "1", SIM_WORLD, "object 1 orientation quaternion (w, x, y, z)"),
    ("obj2_pos", 3, "m", SIM_WORLD, "object 2 position (zero padding when absent)"),
    ("obj2_quat", 4, "1", SIM_WORLD, "object 2 orientation (zero padding when absent)"),
)

MW39 = ObservationLayout(
    "mw39",
    tuple(Field(n, s, u, fr, d, 0.0 if "obj2" in n else None) for n, s, u, fr, d in _MW_BLOCK)
    + tuple(Field("prev_" + n, s, u, fr, "previous step: " + d, 0.0) for n, s, u, fr, d in _MW_BLOCK)
    + (_xyz("goal_pos", "goal position (visible: MT benchmarks are fully observable)"),),
    "Meta-World v3's 39-d vector: current 18-d block, previous-step 18-d block, goal.",
)

LAYOUTS: dict[str, ObservationLayout] = {LEGION12.name: LEGION12, MW39.name: MW39}


def get_layout(name: str) -> ObservationLayout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise LayoutError(f"unknown observation layout {name!r}; known: {sorted(LAYOUTS)}") from None


def convert(vec: np.ndarray, src: ObservationLayout, dst: ObservationLayout) -> np.ndarray:
    """Re-express an observation in another layout by field name (fields of dst missing in src must have
    defaults). Works on a single vector."""
    values = src.extract(vec)
    return dst.build({k: v for k, v in values.items() if k in dst.field_names})
