"""The policy node's decision logic, without ROS: when to act and on what (the logic of policy_node).

The policy never acts on an observation that is invalid, stale, built for another skill, or of the wrong
size, and it says why. `PolicyRunner.step()` is called with plain values so that it is unit-tested here
and the ROS node only converts messages.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from legion_core.contracts.bundle import Bundle


@dataclass
class Decision:
    action: np.ndarray | None
    """[dx, dy, dz, grip] in [-1, 1], or None when the policy must not act."""
    reason: str
    """'ok' or why no action was produced."""


@dataclass
class PolicyRunnerConfig:
    max_obs_age_s: float = 0.2
    """Observations older than this [s] are never acted on."""
    z_mode: str = "mean"
    """Latent for acting: `mean` (deterministic, the same observation gives the same action) or `sample`
    (the original LEGION; docs/method.md)."""


class PolicyRunner:
    def __init__(
        self,
        bundle: Bundle,
        max_obs_age_s: float = PolicyRunnerConfig.max_obs_age_s,
        z_mode: str = PolicyRunnerConfig.z_mode,
    ) -> None:
        if not (np.isfinite(max_obs_age_s) and max_obs_age_s > 0):
            raise ValueError(f"max_obs_age_s must be > 0 s, got {max_obs_age_s}")
        self.bundle = bundle
        self.max_obs_age_s = max_obs_age_s
        self.z_mode = z_mode
        self.skill: str | None = None
        self._policy = None
        self.actions = 0

    def set_skill(self, name: str) -> str:
        """Activate a skill of the bundle; '' deactivates. Returns 'ok' or the refusal reason."""
        if not name:
            self.skill, self._policy = None, None
            return "ok"
        if name not in self.bundle.skills:
            return f"skill {name!r} is not in bundle {self.bundle.name!r} (has {self.bundle.skill_names})"
        self.skill = name
        self._policy = self.bundle.policy(name, z_mode=self.z_mode)
        return "ok"

    def step(
        self, values, valid: bool, reason: str, obs_skill: str, obs_stamp_s: float, now_s: float
    ) -> Decision:
        if self._policy is None:
            return Decision(None, "no active skill")
        if not valid:
            return Decision(None, f"observation invalid: {reason}")
        if obs_skill and obs_skill != self.skill:
            return Decision(None, f"observation is for skill {obs_skill!r}, active skill is {self.skill!r}")
        age = now_s - obs_stamp_s
        if not np.isfinite(age) or age > self.max_obs_age_s:
            return Decision(None, f"observation stale: {age:.3f} s old (limit {self.max_obs_age_s} s)")
        x = np.asarray(values, np.float64)
        if x.shape != (self.bundle.layout.dim,):
            return Decision(
                None,
                f"observation has {x.size} values, layout {self.bundle.layout.name} needs {self.bundle.layout.dim}",
            )
        if not np.all(np.isfinite(x)):
            return Decision(None, "observation contains NaN/inf")
        a = self._policy.act(x)
        self.actions += 1
        return Decision(a, "ok")
