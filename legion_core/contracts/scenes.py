"""Multi-object scenes: where each skill's object sits when several skills share one table.

Long-horizon chains need them (docs/architecture.md, "Long-horizon chains in one scene").

Meta-World places every task's object in the same spot in front of the robot (x in [-0.1, 0.1] m, y about
0.8-0.9 m), so a drawer and a button box of two tasks would overlap. A scene moves each task's seeded
placement by a fixed offset so that its objects sit side by side, collision-free and within the iiwa's
flange-down reach, and starts the hand anywhere in a box above the table: a skill of a long-horizon chain
starts where the previous one left the hand, not at Meta-World's home point.

The same scene is used for training (`TrainConfig.scene`: every episode of a skill sees its object where
the scene puts it, from a random hand start), for evaluation, and by the digital twin, which builds one
MuJoCo world with all of the scene's objects (`kuka_model.scene_xml_path`, `legion_core.sim.twin`). A skill trained without a scene
has only seen Meta-World's own placements and would be asked to act out of its training distribution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from legion_core.contracts.tasks import get_task


@dataclass(frozen=True)
class SceneObject:
    """One physical object of a scene and the skills that act on it."""

    name: str
    """Object name in the scene (e.g. "drawer")."""
    tasks: tuple[str, ...]
    """Registry tasks whose Meta-World object this is (they share its placement, e.g. drawer-open/close)."""
    offset_m: tuple[float, float, float]
    """Added to each seeded placement of these tasks (object and, where seeded, goal) [m, sim_world]."""
    end_low_m: tuple[float, float, float]
    """Lower corner of the box the hand is in when a skill on this object ends [m, sim_world]: the next
    skill of a chain starts there, so the other objects' skills are trained from there too."""
    end_high_m: tuple[float, float, float]
    """Upper corner of that box [m, sim_world]."""


@dataclass(frozen=True)
class SceneSpec:
    name: str
    description: str
    objects: tuple[SceneObject, ...]
    hand_start_low_m: tuple[float, float, float]
    """Lower corner of the box the hand starts in at every reset [m, sim_world]."""
    hand_start_high_m: tuple[float, float, float]
    """Upper corner of that box [m, sim_world]."""

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(t for o in self.objects for t in o.tasks)

    def object_of(self, task: str) -> SceneObject:
        for o in self.objects:
            if task in o.tasks:
                return o
        raise KeyError(f"scene {self.name!r} has no object for task {task!r}; its tasks: {list(self.tasks)}")

    def offset_of(self, task: str) -> np.ndarray:
        return np.asarray(self.object_of(task).offset_m, float)

    def start_boxes(self, task: str | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Where `task` may start: the scene's start box, and where skills on the *other* objects end (a
        chain hands over there; never inside the task's own object). None: the scene's start box only."""
        boxes = [(np.asarray(self.hand_start_low_m), np.asarray(self.hand_start_high_m))]
        if task is not None:
            own = self.object_of(task)
            boxes += [
                (np.asarray(o.end_low_m), np.asarray(o.end_high_m)) for o in self.objects if o is not own
            ]
        return boxes

    def hand_start(self, seed: int, variation: int, task: str | None = None) -> np.ndarray:
        """The hand start [m, sim_world] of placement `variation` of `task`: one of `start_boxes(task)`, then a
        point in it, deterministic in (seed, variation), so that training resumes exactly and evaluations
        are repeatable. task=None: the scene's start box (the twin's scene reset)."""
        rng = np.random.default_rng([int(seed), int(variation), 0x5CE7E])
        boxes = self.start_boxes(task)
        lo, hi = boxes[int(rng.integers(len(boxes)))] if len(boxes) > 1 else boxes[0]
        return rng.uniform(lo, hi)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "objects": [
                {
                    "name": o.name,
                    "tasks": list(o.tasks),
                    "offset_m": list(o.offset_m),
                    "end_low_m": list(o.end_low_m),
                    "end_high_m": list(o.end_high_m),
                }
                for o in self.objects
            ],
            "hand_start_low_m": list(self.hand_start_low_m),
            "hand_start_high_m": list(self.hand_start_high_m),
        }


SCENES: dict[str, SceneSpec] = {}


def _register(s: SceneSpec) -> None:
    for t in s.tasks:
        get_task(t)  # fail at import on a typo
    SCENES[s.name] = s


_register(
    SceneSpec(
        name="drawer-button",
        description=(
            "A drawer on the left and a button box on the right of the table: open the drawer, press the "
            "button, close the drawer."
        ),
        objects=(
            # Drawer body x in [-0.34, -0.14] m (outer half-width 0.118 m: right edge <= -0.022 m), y 0.85 m.
            # Skills on it end at the handle: pulled out (y ~0.49-0.53, z ~0.07) or pushed in (y ~0.61-0.63, z ~0.12).
            SceneObject(
                "drawer",
                ("drawer-open", "drawer-close"),
                (-0.24, -0.05, 0.0),
                end_low_m=(-0.36, 0.44, 0.06),
                end_high_m=(-0.12, 0.66, 0.16),
            ),
            # Button box x in [0.14, 0.34] m (half-width 0.12 m: left edge >= 0.02 m), y in [0.70, 0.80] m.
            # Pressing ends with the hand on the button top (z ~0.28 m over its footprint).
            SceneObject(
                "button_box",
                ("button-press-topdown",),
                (0.24, -0.10, 0.0),
                end_low_m=(0.12, 0.66, 0.26),
                end_high_m=(0.36, 0.82, 0.36),
            ),
        ),
        # Above the table between and in front of the objects, clear of both (their tops are below 0.2 m).
        hand_start_low_m=(-0.15, 0.42, 0.20),
        hand_start_high_m=(0.15, 0.55, 0.30),
    )
)


def get_scene(name: str) -> SceneSpec:
    try:
        return SCENES[name]
    except KeyError:
        raise KeyError(f"unknown scene {name!r}; known scenes: {sorted(SCENES)}") from None
