"""One way to build a task environment, for every embodiment and control mode.

`TaskEnv` wraps a Meta-World v3 task env (Sawyer or KUKA) with the registry's episode length, the 50
seeded task variations of `metaworld.MT1(env_name, seed)` (object/goal placements; the same seed gives the
same placements on both embodiments, which is what makes the parity comparison fair), and observations
in any named layout.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from legion_core.contracts.layouts import MW39, ObservationLayout, convert, get_layout
from legion_core.contracts.tasks import TaskSpec, get_task

EMBODIMENTS = ("kuka", "sawyer")
N_VARIATIONS = 50  # Meta-World's _N_GOALS per task


@lru_cache(maxsize=64)
def _variations(env_name: str, seed: int) -> tuple:
    import metaworld

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tuple(metaworld.MT1(env_name, seed=seed).train_tasks)


def seeded_placement(env_name: str, seed: int, variation: int) -> np.ndarray:
    """The seeded placement vector (`rand_vec`: object, and goal where seeded) of a task's variation."""
    import pickle

    task = _variations(env_name, seed)[int(variation) % N_VARIATIONS]
    return np.asarray(pickle.loads(task.data)["rand_vec"], float)


def env_class(env_name: str, embodiment: str) -> type:
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    if embodiment not in EMBODIMENTS:
        raise ValueError(f"embodiment must be one of {EMBODIMENTS}, got {embodiment!r}")
    cls = ALL_V3_ENVIRONMENTS[env_name]
    if embodiment == "kuka":
        from legion_core.sim.kuka import kuka_env_class

        cls = kuka_env_class(cls)
    return cls


class TaskEnv:
    """A registry task on an embodiment. `reset(variation)` picks one of the 50 seeded placements."""

    def __init__(
        self,
        task: str | TaskSpec,
        embodiment: str = "kuka",
        seed: int = 0,
        control_mode: str = "mocap",
        render_mode: str | None = None,
        camera_name: str | None = "corner",
        width: int = 480,
        height: int = 480,
        scene: str | None = None,
        model_xml: str | None = None,
    ) -> None:
        self.spec = task if isinstance(task, TaskSpec) else get_task(task)
        # A multi-object scene (legion_core.contracts.scenes) moves this task's placements and randomizes the hand start.
        self.scene = None
        if scene:
            from legion_core.contracts.scenes import get_scene

            self.scene = get_scene(scene)
            self._placement_offset = self.scene.offset_of(self.spec.name)
        #: Hand starts of a scene: the task's own start boxes (training, evaluation), or False for the
        #: scene's start box only (the twin's whole-scene reset, where a chain begins).
        self.task_hand_starts = True
        self.embodiment = embodiment
        self.seed = seed
        cls = env_class(self.spec.env_name, embodiment)
        if model_xml is not None:
            # Another MJCF for this task's code (a multi-object scene built around this task's XML).
            cls = type(
                cls.__name__ + "InScene", (cls,), {"model_name": property(lambda _self: str(model_xml))}
            )
        kwargs = dict(render_mode=render_mode, camera_name=camera_name, width=width, height=height)
        if embodiment == "kuka":
            kwargs["control_mode"] = control_mode
        elif control_mode != "mocap":
            raise ValueError("the Sawyer embodiment only has the mocap control mode")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.env = cls(**kwargs)
        self._variations = _variations(self.spec.env_name, seed)
        self.max_episode_steps = self.spec.max_episode_steps
        self.variation = 0
        self.steps = 0
        self._obs39: np.ndarray | None = None

    # The fully observable goal: MT1 tasks carry partially_observable=False.
    def reset(self, variation: int | None = None) -> np.ndarray:
        if variation is not None:
            self.variation = int(variation) % N_VARIATIONS
        self.env.set_task(self._variations[self.variation])
        if self.scene is not None:
            rv = np.asarray(self.env._last_rand_vec, float)
            # Every 3-block of the seeded vector is a position (object, and goal where the task seeds one).
            self.env._last_rand_vec = rv + np.tile(self._placement_offset, rv.size // 3)
            task = self.spec.name if self.task_hand_starts else None
            self.env.hand_init_pos = self.scene.hand_start(self.seed, self.variation, task)
        obs, _ = self.env.reset()
        self.steps = 0
        self._obs39 = obs
        return obs

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, dict]:
        """Returns (obs39, reward, success, info); the episode length is the caller's (registry's) limit."""
        obs, reward, _term, _trunc, info = self.env.step(np.asarray(action, np.float32))
        self.steps += 1
        self._obs39 = obs
        return obs, float(reward), bool(info.get("success", 0.0) >= 1.0), info

    def observe(self, layout: str | ObservationLayout = "legion12") -> np.ndarray:
        lay = get_layout(layout) if isinstance(layout, str) else layout
        assert self._obs39 is not None, "reset() first"
        return self._obs39.copy() if lay is MW39 else convert(self._obs39, MW39, lay)

    def render(self) -> np.ndarray:
        """An upright RGB frame (Meta-World's offscreen cameras come out upside down)."""
        frame = self.env.render()
        return np.ascontiguousarray(frame[::-1]) if frame is not None else frame

    def close(self) -> None:
        # Free the GL context explicitly: letting the EGL context die in __del__ at interpreter exit
        # prints spurious EGLError tracebacks.
        renderer = getattr(self.env, "mujoco_renderer", None)
        if renderer is not None:
            renderer.close()
        self.env.close()


def scripted_expert(task: str | TaskSpec) -> Callable[[np.ndarray], np.ndarray]:
    """Meta-World's scripted expert for a task, as a function of the 39-d observation."""
    from metaworld.policies import ENV_POLICY_MAP

    spec = task if isinstance(task, TaskSpec) else get_task(task)
    policy = ENV_POLICY_MAP[spec.env_name]()
    return lambda obs39: np.clip(policy.get_action(obs39), -1.0, 1.0)


@dataclass
class EpisodeResult:
    success: bool
    first_success_step: int | None
    steps: int
    max_limit_violation_rad: float = 0.0
    frames: list = field(default_factory=list)


def run_episode(
    env: TaskEnv,
    policy: Callable[[np.ndarray], np.ndarray],
    variation: int,
    max_steps: int | None = None,
    layout: str = "mw39",
    render: bool = False,
    stop_on_success: bool = False,
) -> EpisodeResult:
    """One episode; success = success at any step (docs/method.md#tasks)."""
    env.reset(variation)
    first = None
    frames = []
    max_steps = max_steps or env.max_episode_steps
    t = 0
    for t in range(1, max_steps + 1):
        _, _, success, _ = env.step(policy(env.observe(layout)))
        if render:
            frames.append(env.render())
        if success and first is None:
            first = t
            if stop_on_success:
                break
    viol = float(getattr(env.env, "max_limit_violation_rad", 0.0))
    return EpisodeResult(first is not None, first, t, viol, frames)
