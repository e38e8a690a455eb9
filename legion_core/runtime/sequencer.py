"""The task sequencer's state machine, without ROS: run a grounded plan of skills one after
another, judge each skill's success from the observation (the bundle's success predicate), enforce a
per-skill step and time budget, retry, cancel, and report feedback and a human result sentence.

Driven by plain calls from the node: `on_observation(...)`, `on_action(skill)`, `tick(now)`; every output
is in the returned `SeqOutput` (which skill must be active — '' means none, i.e. the robot holds — the
feedback, and the result once finished).

Preconditions: a skill starts only once real2sim reports a valid observation for it (its object, and its
goal marker if it has one, are detected and fresh); otherwise it waits up to `precondition_timeout_s` and
fails with real2sim's reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from legion_core.contracts.interface import READY_SKILL, reason_kind
from legion_core.contracts.layouts import get_layout
from legion_core.contracts.tasks import SuccessPredicate


@dataclass
class SequencerConfig:
    precondition_timeout_s: float = 5.0
    """How long a skill waits for its object (and goal) to be detected before it fails [s]."""
    seconds_per_step: float = 0.25
    """Time budget per policy step of the skill's step budget [s] (time budget = steps x this)."""
    step_budget_factor: float = 1.0
    """Multiplier on the bundle's step budget (max_episode_steps) per attempt."""
    retries: int = 1
    """Extra attempts per skill after its budget ran out (the attempt continues from where the arm is)."""
    success_hold_steps: int = 3
    """Consecutive observations satisfying the predicate needed to call a skill done (noise robustness)."""
    ready_timeout_s: float = 90.0
    """Time budget of the ready move step [s] (sim2real plans it at 10 % of the datasheet speeds: a 180
    degree turn of A7 takes ~11 s)."""


@dataclass
class SkillSpec:
    name: str
    success: SuccessPredicate | None
    """None only for the ready move, whose end sim2real reports (SafetyState.ready_move)."""
    max_steps: int

    @classmethod
    def ready(cls) -> SkillSpec:
        """The ready move as a plan step (legion_core.contracts.interface.READY_SKILL)."""
        return cls(READY_SKILL, None, 0)

    @classmethod
    def from_bundle(cls, bundle, name: str) -> SkillSpec:
        info = bundle.skills[name]
        if not info.success:
            raise ValueError(
                f"skill {name} has no observable success predicate; the sequencer cannot judge it"
            )
        d = dict(info.success)
        d["a_offset_m"] = tuple(d.get("a_offset_m", (0.0, 0.0, 0.0)))
        return cls(name, SuccessPredicate(**d), info.max_episode_steps)


@dataclass
class SeqOutput:
    active_skill: str
    state: str
    step_index: int
    step_count: int
    progress: float
    done: bool = False
    success: bool = False
    message: str = ""
    step_durations_s: list[float] = field(default_factory=list)
    hold_reason: str = ""
    """The safety layer's newest hold or refusal of the running skill, within `HOLD_NEWS_S` ('' = none)."""


#: A hold reported longer ago than this [s] is no longer shown as the running skill's current hold.
HOLD_NEWS_S = 0.5


class Sequencer:
    def __init__(
        self, plan: list[SkillSpec], layout: str = "legion12", config: SequencerConfig | None = None
    ) -> None:
        if not plan:
            raise ValueError("empty plan")
        self.plan = plan
        self.layout = get_layout(layout)
        self.config = config or SequencerConfig()
        self.i = 0
        self.state = "idle"
        self.message = ""
        self.durations: list[float] = []
        self._t_state = 0.0
        self._t_skill = 0.0
        self._steps = 0
        self._attempt = 0
        self._hits = 0
        self._d0: float | None = None
        self._progress = 0.0
        self._last_reason = "no observation yet"
        self._cancelled = False
        self._cancel_reason = ""
        self._holds: dict[str, tuple[int, str]] = {}  # reason kind -> (count, newest text), this skill
        self._last_hold = ("", -1e18)
        self._ready_state = ""  # sim2real's ready move state during a READY_SKILL step

    @property
    def current(self) -> SkillSpec:
        return self.plan[min(self.i, len(self.plan) - 1)]

    def start(self, now: float) -> None:
        self.state = "waiting"
        self._t_state = self._t_skill = now
        self._reset_skill_counters()

    def _reset_skill_counters(self) -> None:
        self._steps, self._attempt, self._hits, self._d0, self._progress = 0, 0, 0, None, 0.0
        self._holds = {}
        self._ready_state = ""

    def cancel(self, now: float, reason: str = "") -> None:
        """End the plan at the next tick, the robot holding. `reason` (e.g. "e-stop latched (e-stop
        topic)") goes into the result sentence; the first cancel's reason is kept."""
        if not self._cancelled:
            self._cancel_reason = reason
        self._cancelled = True

    # -- inputs ----------------------------------------------------------------------------------------
    def on_observation(self, skill: str, valid: bool, reason: str, values, now: float) -> None:
        if self.state not in ("waiting", "running") or skill != self.current.name:
            return
        if not valid:
            self._last_reason = reason
            return
        fields = self.layout.extract(np.asarray(values, float))
        d = self.current.success.distance(fields)
        if self.state == "waiting":
            self.state = "running"
            self._t_state = now
            self._d0 = max(d, 1e-6)
        self._progress = float(np.clip(1.0 - d / self._d0, 0.0, 1.0)) if self._d0 else 0.0
        self._hits = self._hits + 1 if d <= self.current.success.max_dist_m else 0

    def on_ready(self, state: str) -> None:
        """sim2real's ready move state ('moving' | 'reached' | 'refused: why'), reported for the ready move
        this step started."""
        if self.state in ("waiting", "running") and self.current.name == READY_SKILL:
            self._ready_state = state

    def on_hold(self, reason: str, now: float) -> None:
        """The safety layer held or refused a command of the running skill (sim2real's command report or
        safety state: IK residual, a limit, stale data, a missing detection, the driver). A skill that then
        fails says which hold kept it from moving, instead of only "progress 0%"."""
        if self.state not in ("waiting", "running") or not reason:
            return
        key = reason_kind(reason)
        self._holds[key] = (self._holds.get(key, (0, ""))[0] + 1, reason)
        self._last_hold = (reason, now)

    def _held_by(self) -> str:
        """' The safety layer held it N times, most often: <reason>.' ('' when it never held)."""
        if not self._holds:
            return ""
        n, text = max(self._holds.values(), key=lambda v: v[0])
        total = sum(v[0] for v in self._holds.values())
        return f" The safety layer held it {total} time(s), most often: {text}."

    def on_action(self, skill: str) -> None:
        if self.state == "running" and skill == self.current.name:
            self._steps += 1

    # -- the state machine -----------------------------------------------------------------------------
    def _out(self, active: str, done=False, success=False, now: float = -1e18) -> SeqOutput:
        reason, t = self._last_hold
        return SeqOutput(
            active, self.state, min(self.i + 1, len(self.plan)), len(self.plan), self._progress, done, success,
            self.message, list(self.durations), reason if now - t <= HOLD_NEWS_S else "",
        )  # fmt: skip

    def _ready_tick(self, now: float) -> SeqOutput:
        """The ready move step: sim2real moves; done when it reports 'reached', failed when it refuses."""
        where = f"{READY_SKILL} (step {self.i + 1} of {len(self.plan)})"
        self.state = "running"
        if self._ready_state == "reached":
            self._progress = 1.0
            return self._next_step(now)
        if self._ready_state.startswith("refused"):
            return self._finish(False, f"{where}: {self._ready_state.removeprefix('refused: ')}.")
        if now - self._t_state > self.config.ready_timeout_s:
            return self._finish(
                False, f"{where} did not arrive within {self.config.ready_timeout_s:.0f} s.{self._held_by()}"
            )
        return self._out(READY_SKILL, now=now)

    def _next_step(self, now: float) -> SeqOutput:
        """The current step succeeded: the next one, or the plan's success."""
        self.durations.append(now - self._t_skill)
        self.i += 1
        if self.i >= len(self.plan):
            steps = ", ".join(f"{s.name} ({t:.1f} s)" for s, t in zip(self.plan, self.durations))
            return self._finish(True, f"Done: {steps}.")
        self.state = "waiting"
        self._t_state = self._t_skill = now
        self._reset_skill_counters()
        return self._out(self.current.name)

    def _finish(self, success: bool, message: str) -> SeqOutput:
        self.state = "succeeded" if success else "failed"
        self.message = message
        return self._out("", done=True, success=success)

    def tick(self, now: float) -> SeqOutput:
        cfg = self.config
        if self.state in ("succeeded", "failed", "cancelled"):
            return self._out("", done=True, success=self.state == "succeeded")
        if self._cancelled:
            self.state = "cancelled"
            done = ", ".join(s.name for s in self.plan[: self.i]) or "nothing"
            why = f" because {self._cancel_reason}" if self._cancel_reason else ""
            self.message = (
                f"Cancelled during {self.current.name} (step {self.i + 1} of {len(self.plan)}){why}; "
                f"completed: {done}. The robot holds."
            )
            return self._out("", done=True, success=False)
        if self.state == "idle":
            self.start(now)
        sk = self.current
        if sk.name == READY_SKILL:
            return self._ready_tick(now)
        if self.state == "waiting":
            if now - self._t_state > cfg.precondition_timeout_s:
                return self._finish(
                    False,
                    f"{sk.name} (step {self.i + 1} of {len(self.plan)}) could not start within "
                    f"{cfg.precondition_timeout_s:.0f} s: {self._last_reason}.{self._held_by()}",
                )
            return self._out(sk.name, now=now)
        # running
        if self._hits >= cfg.success_hold_steps:
            return self._next_step(now)
        budget_steps = int(sk.max_steps * cfg.step_budget_factor)
        over_steps = self._steps >= budget_steps
        over_time = now - self._t_state > budget_steps * cfg.seconds_per_step
        if over_steps or over_time:
            if self._attempt < cfg.retries:
                self._attempt += 1
                self._steps = 0
                self._t_state = now
                return self._out(sk.name)
            why = f"{self._steps} policy steps" if over_steps else f"{now - self._t_state:.1f} s"
            return self._finish(
                False,
                f"{sk.name} (step {self.i + 1} of {len(self.plan)}) did not succeed within its budget "
                f"({why}, {self._attempt + 1} attempt(s)); progress {self._progress:.0%}.{self._held_by()}",
            )
        return self._out(sk.name, now=now)


def safety_refusal(
    estop_latched: bool, estop_reason: str = "", dead_nodes=(), driver_fault: str = ""
) -> str | None:
    """Why no plan may run under sim2real_node's SafetyState (legion_msgs/SafetyState), or None.

    A latched e-stop: a command accepted now would start moving the arm the moment it is re-armed, which the
    operator who pressed the e-stop did not ask for; so it is refused, and re-arming starts nothing by
    itself. A dead node: sim2real has cleared the skill and will not move the arm until a new command, and
    that command could not run without the node. A driver that is not ready (sim2real.preflight): sim2real
    refuses every skill until the driver's checks pass, so the plan could not move. docs/operator-input.md, "Safety state"; docs/architecture.md,
    "Safety layer"."""
    if estop_latched:
        return f"e-stop latched ({estop_reason or 'reason not given'}); re-arm sim2real_node (~/rearm) first"
    dead = [n for n in dead_nodes if n]
    if dead:
        verb = "is" if len(dead) == 1 else "are"
        return f"{', '.join(dead)} {verb} not alive; the robot holds until it is back"
    if driver_fault:
        return driver_fault  # "driver not ready: <what>; fix: <one sentence>" (sim2real.preflight)
    return None
