"""The judge: pure functions of recorded sessions (no ROS). `judge_policy_offline` re-runs the policy on
the recorded observations; `compare_live` holds a replayed session against the recording, judgement by
judgement (legion_core/tools/regression/__init__.py says what each judgement can and cannot require).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from legion_core.contracts.interface import StatusLevel
from legion_core.tools.numeric_signature import compare as compare_signatures
from legion_core.tools.numeric_signature import numeric_signature
from legion_core.tools.numeric_signature import summary as signature_summary
from legion_core.tools.regression.scenario import LIVE_JUDGEMENTS, Scenario
from legion_core.tools.regression.session import Act, Obs, Report, Session, Status


@dataclass
class Divergence:
    step: int | None
    """Index of the recorded policy step (PolicyAction, 0-based) this divergence belongs to, if any."""
    t_s: float
    """Bag time since the start of the recording [s]."""
    stamp_ns: int
    detail: str


@dataclass
class Judgement:
    name: str
    passed: bool
    checked: int = 0
    failed: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    first_divergence: Divergence | None = None
    note: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["judgement"] = d.pop("name")
        return d


@dataclass
class CheckResult:
    judgements: list[Judgement]
    bag: str
    replayed_bag: str | None = None
    replay: dict | None = None

    @property
    def passed(self) -> bool:
        return all(j.passed for j in self.judgements)

    @property
    def first_divergence(self) -> dict | None:
        failing = [j for j in self.judgements if not j.passed and j.first_divergence is not None]
        if not failing:
            return None
        j = min(failing, key=lambda j: j.first_divergence.t_s)
        return {"judgement": j.name, **asdict(j.first_divergence)}

    def summary(self) -> dict:
        return {
            "summary": True,
            "passed": self.passed,
            "judgements": len(self.judgements),
            "failed": [j.name for j in self.judgements if not j.passed],
            "first_divergence": self.first_divergence,
            "bag": self.bag,
            "replayed_bag": self.replayed_bag,
        }

    def lines(self) -> list[str]:
        return [json.dumps(j.to_dict(), default=json_default) for j in self.judgements] + [
            json.dumps(self.summary(), default=json_default)
        ]


def json_default(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(type(o))


def fmt_values(v: np.ndarray) -> list[float]:
    return [float(f"{x:.6g}") for x in np.asarray(v, float)]


class _StepIndex:
    """Maps an observation stamp to the recorded policy step that acted on it (for naming divergences)."""

    def __init__(self, rec: Session) -> None:
        self.by_stamp: dict[int, int] = {}
        for k, a in enumerate(rec.actions):
            self.by_stamp.setdefault(a.stamp_ns, k)
        self.t0 = rec.start_ns

    def div(self, t_ns: int, stamp_ns: int, detail: str, step: int | None = None) -> Divergence:
        return Divergence(step if step is not None else self.by_stamp.get(stamp_ns), round((t_ns - self.t0) * 1e-9, 4),
                          stamp_ns, detail)  # fmt: skip


EPS_F32 = float(np.finfo(np.float32).eps)  # 2**-23, the spacing of float32 at 1.0
_DEFAULT_NETWORK = (10, 400)  # LegionAgent with AgentConfig's defaults: 10 weight matrices, fan-in <= 400


def float32_action_atol(
    weights: dict[str, np.ndarray] | None = None, scale: float = 1.0
) -> tuple[float, dict]:
    """Tolerance for actions that two machines of different numeric signatures computed from the same
    observation with the same bundle:

        atol = k * eps_f32 * scale,   k = 2 * D * sqrt(W)

    eps_f32 = 2**-23 (float32 spacing at 1.0); scale = the largest |action| compared, at least 1 (actions are
    tanh outputs in [-1, 1]: 1). Why: the policy is D float32 matrix products of at most W inputs each,
    joined by 1-Lipschitz activations (ReLU, leaky ReLU, tanh). Another BLAS kernel sums each dot product
    in another order; the rounding errors of a length-W sum accumulate like a random walk, sqrt(W) ulps of
    its magnitude; each of the D products adds its own; and both machines carry theirs (the 2). D and W come
    from the bundle's weights (every 2-D encoder/actor matrix; the logvar head that the mean path skips is
    counted too: an upper bound); without weights, LEGION's default network. For LEGION's policy, D = 10 and
    W = 400: k = 400, atol = 4.8e-05, 10x the largest difference measured between OpenBLAS kernels on the
    shipped demo (4.3e-06) and 20x below a 1e-3 change (docs/decisions/portable-regression-check.md)."""
    if weights is None:
        d, w = _DEFAULT_NETWORK
    else:
        mats = [v for k, v in weights.items() if k.startswith(("enc.", "actor.")) and np.ndim(v) == 2]
        d, w = (len(mats), max(int(np.shape(m)[1]) for m in mats)) if mats else _DEFAULT_NETWORK
    k = 2.0 * d * math.sqrt(w)
    scale = max(1.0, float(scale))
    return k * EPS_F32 * scale, {"formula": "2 * D * sqrt(W) * eps_f32 * scale", "matrices": d, "max_fan_in": w,
                                 "k": round(k, 3), "eps_f32": EPS_F32, "scale": scale}  # fmt: skip


def action_comparison_mode(recorded_sig: dict | None, here_sig: dict | None, scenario_atol: float,
                           weights: dict[str, np.ndarray] | None, scale: float) -> tuple[str, float, str, dict | None]:  # fmt: skip
    """(mode, atol, why, tolerance derivation) for comparing actions computed under two numeric signatures:
    'bit_exact' (equal signatures, the scenario's atol 0), 'scenario_atol' (equal signatures, the scenario
    loosened its atol), 'float32_tolerance' (different or unknown signatures: never bit-exact across
    machines; the larger of float32_action_atol and the scenario's atol)."""
    same, why = compare_signatures(recorded_sig, here_sig)
    if same:
        return ("bit_exact" if scenario_atol == 0.0 else "scenario_atol"), scenario_atol, why, None
    tol, how = float32_action_atol(weights, scale)
    return "float32_tolerance", max(tol, scenario_atol), why, how


def _action_scale(actions: Sequence[Act]) -> float:
    return max([1.0] + [float(np.max(np.abs(a.action))) for a in actions if a.action.size])


def judge_policy_offline(rec: Session, bundle, atol: float = 0.0, max_unmatched: int = 2, z_mode: str = "mean",
                         here_signature: dict | None = None) -> Judgement:  # fmt: skip
    """Re-run the pure PolicyRunner on every valid recorded observation and require each recorded action to
    equal the offline action of an observation with its stamp and skill: within `atol` (the scenario's, 0.0 =
    bit-exact) where this process' numeric signature (`here_signature`, default: measured now) equals the
    bag's, within the float32 tolerance otherwise (`action_comparison_mode`)."""
    from legion_core.contracts.bundle import load
    from legion_core.runtime.policy_runner import PolicyRunner

    b = load(bundle) if isinstance(bundle, (str, Path)) else bundle
    here = here_signature if here_signature is not None else numeric_signature()
    mode, atol, why, how = action_comparison_mode(rec.numeric_signature, here, atol, b.weights,
                                                  _action_scale(rec.actions))  # fmt: skip
    runner = PolicyRunner(b, max_obs_age_s=1e9, z_mode=z_mode)  # staleness is a live matter, not the policy's
    offline: dict[tuple[int, str], list[np.ndarray]] = {}
    refused: dict[str, int] = {}
    for o in rec.observations:
        if not o.valid or o.stamp_ns == 0:
            continue
        if runner.skill != o.skill:
            res = runner.set_skill(o.skill)
            if res != "ok":
                refused[res] = refused.get(res, 0) + 1
                continue
        t = o.stamp_ns * 1e-9
        d = runner.step(o.values, True, o.reason, o.skill, t, t)
        if d.action is not None:
            # The node sends [float(v) for v in action]: the same float32 -> float64 conversion here.
            offline.setdefault((o.stamp_ns, o.skill), []).append(np.array([float(v) for v in d.action]))
    idx = _StepIndex(rec)
    j = Judgement("policy_offline", True, note=f"{mode}: {why}")
    j.metrics = {"bundle": b.name, "bundle_weights_sha256": b.weights_sha256,
                 "mode": mode, "mode_reason": why, "atol": atol, "tolerance": how,
                 "signature_recorded": signature_summary(rec.numeric_signature), "signature_here": signature_summary(here),
                 "observations_valid": sum(len(v) for v in offline.values())}  # fmt: skip
    unmatched: list[int] = []
    max_err = 0.0
    exact = 0
    for k, a in enumerate(rec.actions):
        cands = offline.get((a.stamp_ns, a.skill))
        if not cands:
            unmatched.append(k)
            continue
        j.checked += 1
        errs = [float(np.max(np.abs(c - a.action))) if c.shape == a.action.shape else math.inf for c in cands]
        err = min(errs)
        exact += any(np.array_equal(c, a.action) for c in cands)
        max_err = max(max_err, err)
        if err > atol:
            j.failed += 1
            if j.first_divergence is None:
                best = cands[int(np.argmin(errs))]
                j.first_divergence = idx.div(
                    a.t_ns, a.stamp_ns,
                    f"policy step {k} (sequence {a.sequence}, skill {a.skill}): recorded action {fmt_values(a.action)} != "
                    f"offline {fmt_values(best)} (max |diff| {err:.3g} > {atol:.3g}, {mode})", step=k,
                )  # fmt: skip
    j.metrics.update(actions=len(rec.actions), matched=j.checked, bit_exact=exact, max_abs_diff=max_err,
                     unmatched=len(unmatched), refused=refused)  # fmt: skip
    if len(unmatched) > max_unmatched:
        j.failed += len(unmatched)
        if j.first_divergence is None:
            a = rec.actions[unmatched[0]]
            j.first_divergence = idx.div(a.t_ns, a.stamp_ns, f"policy step {unmatched[0]}: no recorded valid observation "
                                         f"with stamp {a.stamp_ns} and skill {a.skill!r}", step=unmatched[0])  # fmt: skip
    if j.checked == 0:
        j.note = "no recorded action could be matched to a recorded observation"
    j.passed = j.failed == 0 and j.checked > 0
    return j


def _window(rec: Session, tol: dict) -> tuple[int, int]:
    a, b = rec.sensor_span_ns if rec.sensor_span_ns != (0, 0) else (rec.start_ns, rec.end_ns)
    return a + int(tol["ignore_first_s"] * 1e9), b - int(tol["ignore_last_s"] * 1e9)


def _match_by_stamp(name: str, rec_items: Sequence, new_items: Sequence, skill: Callable, err: Callable, atol: float,
                    stamp_tol_ns: int, min_coverage: float, idx: _StepIndex, what: Callable) -> Judgement:  # fmt: skip
    """Per recorded item, its replayed counterpart: an item of the same skill with the same stamp, else the one
    with the nearest stamp within stamp_tol_ns (the replayed real2sim may have built its observation from the
    joint state one sample earlier or later). Its error must be within atol, and at least min_coverage of the
    recorded items must have a counterpart. A NaN error marks a pair that is matched but not scored
    (metrics: unscored)."""
    import bisect

    by_skill: dict[str, tuple[list[int], list]] = {}
    for it in sorted(new_items, key=lambda x: x.stamp_ns):
        ks, vs = by_skill.setdefault(skill(it), ([], []))
        ks.append(it.stamp_ns)
        vs.append(it)
    j = Judgement(name, True)
    errs: list[float] = []
    exact = 0
    unscored = 0
    first_unmatched = None
    for it in rec_items:
        ks, vs = by_skill.get(skill(it), ([], []))
        lo = bisect.bisect_left(ks, it.stamp_ns - stamp_tol_ns)
        hi = bisect.bisect_right(ks, it.stamp_ns + stamp_tol_ns)
        if lo >= hi:
            first_unmatched = first_unmatched or it
            continue
        same = [c for c in vs[lo:hi] if c.stamp_ns == it.stamp_ns]
        if same:
            exact += 1
            cands = same
        else:
            dmin = min(abs(c.stamp_ns - it.stamp_ns) for c in vs[lo:hi])
            cands = [c for c in vs[lo:hi] if abs(c.stamp_ns - it.stamp_ns) == dmin]
        scored = [(e, c) for c in cands if not math.isnan(e := err(it, c))]
        j.checked += 1
        if not scored:
            unscored += 1
            continue
        e, best = min(scored, key=lambda ec: ec[0])
        errs.append(e)
        if e > atol:
            j.failed += 1
            if j.first_divergence is None:
                j.first_divergence = idx.div(it.t_ns, it.stamp_ns, what(it, best, e))
    n = len(rec_items)
    cov = j.checked / n if n else 0.0
    j.metrics = {"recorded": n, "replayed": len(new_items), "matched": j.checked, "same_stamp": exact,
                 "coverage": round(cov, 3), "atol": atol, "stamp_tol_s": stamp_tol_ns * 1e-9,
                 "max_err": round(max(errs), 6) if errs else None,
                 "median_err": round(float(np.median(errs)), 6) if errs else None, "unscored": unscored}  # fmt: skip
    if n and cov < min_coverage:
        j.note = (
            f"only {j.checked}/{n} recorded steps have a replayed counterpart (coverage < {min_coverage})"
        )
        if j.first_divergence is None and first_unmatched is not None:
            j.first_divergence = idx.div(first_unmatched.t_ns, first_unmatched.stamp_ns,
                                         f"no replayed counterpart within {stamp_tol_ns * 1e-9:.3f} s of stamp {first_unmatched.stamp_ns}")  # fmt: skip
    j.passed = j.failed == 0 and n > 0 and cov >= min_coverage and bool(errs)
    if n and not errs:
        j.note = "no matched pair could be scored"
    if n == 0:
        j.note = "nothing recorded to compare in the replay window"
    return j


def judge_same_inputs(rec: Session, new: Session, lo: int, hi: int, idx: _StepIndex,
                      weights: dict[str, np.ndarray] | None = None) -> Judgement:  # fmt: skip
    """Determinism on the live path: wherever the replayed runtime built an observation bit-identical to a
    recorded one (same stamp, skill and values), its action must be bit-identical to the recorded action
    when both bags carry the same numeric signature, within the float32 tolerance otherwise (the recording
    machine's runtime computed the one, this machine's the other)."""
    mode, atol, why, how = action_comparison_mode(rec.numeric_signature, new.numeric_signature, 0.0, weights,
                                                  _action_scale(rec.actions))  # fmt: skip
    j = Judgement("same_inputs_same_actions", True)

    def unique(obs: Sequence[Obs]) -> dict[tuple[int, str], np.ndarray]:
        # Keys seen twice (two ticks from the same oldest sample) cannot be paired with their action: skipped.
        seen: dict[tuple[int, str], list[np.ndarray]] = {}
        for o in obs:
            if o.valid and o.stamp_ns:
                seen.setdefault((o.stamp_ns, o.skill), []).append(o.values)
        return {k: v[0] for k, v in seen.items() if len(v) == 1}

    rec_obs, new_obs = unique(rec.observations), unique(new.observations)
    new_act: dict[tuple[int, str], list[np.ndarray]] = {}
    for a in new.actions:
        new_act.setdefault((a.stamp_ns, a.skill), []).append(a.action)
    for k, a in enumerate(rec.actions):
        key = (a.stamp_ns, a.skill)
        if not (lo <= a.t_ns <= hi) or key not in rec_obs or key not in new_obs or key not in new_act:
            continue
        if not np.array_equal(rec_obs[key], new_obs[key]):
            continue
        j.checked += 1
        errs = [
            float(np.max(np.abs(x - a.action))) if x.shape == a.action.shape else math.inf
            for x in new_act[key]
        ]
        if not min(errs) <= atol:
            j.failed += 1
            if j.first_divergence is None:
                j.first_divergence = idx.div(a.t_ns, a.stamp_ns, f"policy step {k}: identical observation but replayed "
                                             f"action {fmt_values(new_act[key][0])} != recorded {fmt_values(a.action)}", step=k)  # fmt: skip
    j.passed = j.failed == 0
    j.metrics = {"identical_observations_with_action": j.checked, "mode": mode, "mode_reason": why, "atol": atol,
                 "tolerance": how}  # fmt: skip
    if j.checked == 0:
        j.note = "no replayed observation was bit-identical to a recorded one (nothing to check)"
    return j


def _tool_steps(reports: Sequence[Report]) -> list[tuple[Report, np.ndarray]]:
    """(report, tool step [m] in the robot base frame) of every non-hold command that has a command before it
    in the same run: FK(q_requested) - FK(previous q_requested), the move sim2real asked for on that step."""
    from legion_core.robot import kinematics
    from sim2real.mapper import MapperConfig

    tool = MapperConfig().tool_point
    out: list[tuple[Report, np.ndarray]] = []
    prev: np.ndarray | None = None
    for c in sorted(reports, key=lambda x: x.t_ns):
        if c.q_requested.shape != (7,) or not np.all(np.isfinite(c.q_requested)):
            prev = None
            continue
        p = kinematics.fk_point(c.q_requested, tool)
        if not c.hold and c.stamp_ns and prev is not None:
            out.append((c, p - prev))
        prev = p
    return out


def policy_period_ns(actions: Sequence[Act]) -> int:
    """The recording's policy step: the median spacing of its consecutive action stamps of one skill (0 if
    it has fewer than two)."""
    by_skill: dict[str, list[int]] = {}
    for a in actions:
        if a.stamp_ns:
            by_skill.setdefault(a.skill, []).append(a.stamp_ns)
    gaps = [d for st in by_skill.values() for d in np.diff(sorted(set(st))).tolist()]
    return int(np.median(gaps)) if gaps else 0


def judge_commands(rec_reports: Sequence[Report], new_reports: Sequence[Report], tol: dict,
                   idx: _StepIndex, lo_ns: int, hi_ns: int, period_ns: int = 0) -> Judgement:  # fmt: skip
    """Per recorded command, the replayed command of the nearest stamp within one policy step (`period_ns`,
    the recording's) plus stamp_tol_s: the same tool step (within command_step_atol_m) and gripper opening
    (within gripper_atol_m). Why a policy step: sim2real's settle gate takes the first action that arrives
    after it opens, so whether the replayed runtime's action for a step arrives just before or just after
    is timing (CPU load), and the command then carries the stamp of the step before or after; matched
    within stamp_tol_s alone (less than one policy step), a loaded machine lost half of the counterparts
    (docs/decisions/portable-regression-check.md). Pairs whose safety layers differ (limits_hit) are
    counted, not scored: the target-lead, box and speed limits act on the chained target, which open loop
    cannot reproduce once the settle gates differ (see DEFAULT_TOLERANCES)."""
    rec_steps = [(c, d) for c, d in _tool_steps(rec_reports) if lo_ns <= c.t_ns <= hi_ns]
    new_steps = _tool_steps(new_reports)
    step_of = {id(c): d for c, d in rec_steps + new_steps}

    def err(a: Report, b: Report) -> float:
        if set(a.limits_hit) != set(b.limits_hit):
            return math.nan  # not scored
        e_step = float(np.linalg.norm(step_of[id(a)] - step_of[id(b)]))
        # One number per command: tool step error [m], the gripper error scaled into the same budget.
        return max(
            e_step, abs(a.gripper_m - b.gripper_m) * tol["command_step_atol_m"] / tol["gripper_atol_m"]
        )

    def what(a: Report, b: Report, e: float) -> str:
        return (f"command for stamp {a.stamp_ns}: recorded tool step {fmt_values(step_of[id(a)] * 1e3)} mm gripper "
                f"{a.gripper_m:.4f} vs replayed {fmt_values(step_of[id(b)] * 1e3)} mm gripper {b.gripper_m:.4f} "
                f"(limits {sorted(a.limits_hit)})")  # fmt: skip

    stol = int(tol["stamp_tol_s"] * 1e9) + max(0, period_ns)
    j = _match_by_stamp("commands", [c for c, _ in rec_steps], [c for c, _ in new_steps], lambda c: "", err,
                        tol["command_step_atol_m"], stol, tol["min_command_coverage"], idx, what)  # fmt: skip
    j.metrics["limits_differ"] = j.metrics.pop("unscored")
    j.metrics["policy_period_s"] = round(period_ns * 1e-9, 6)
    return j


def _status_key(s: Status) -> tuple[str, int, str]:
    """(node, level, message up to its first number): 'holding: no action for 0.312 s' -> 'holding: no action for'."""
    return s.node, s.level, re.split(r"\d", s.message, maxsplit=1)[0].rstrip(" :([=-")


def _level_at(statuses: Sequence[Status], node: str, t_ns: int) -> int:
    """The level `node` was at at time t_ns (its last status at or before t_ns; OK before its first)."""
    before = [s for s in statuses if s.node == node and s.t_ns <= t_ns]
    return max(before, key=lambda s: s.t_ns).level if before else StatusLevel.OK


def _requested_skill(inputs: Sequence[tuple[int, str]], t_ns: int) -> str | None:
    """The skill the newest /legion/active_skill input at or before `t_ns` asked for (None: none yet)."""
    out = None
    for t, skill in sorted(inputs):
        if t > t_ns:
            break
        out = skill
    return out


def _skill_runs(items: Sequence, lo: int, hi: int) -> list[tuple[int, str]]:
    runs: list[tuple[int, str]] = []
    for it in items:
        if lo <= it.t_ns <= hi and (not runs or runs[-1][1] != it.skill):
            runs.append((it.t_ns, it.skill))
    return runs


def compare_live(rec: Session, new: Session, scenario: Scenario, replay_stats: dict | None = None,
                 weights: dict[str, np.ndarray] | None = None) -> list[Judgement]:  # fmt: skip
    """The live judgements of `scenario` on a recorded session and its replay through a fresh runtime (the
    replay's bag logged in sim time = the recording's bag time). `weights`: the bundle's, for the float32
    tolerance of `same_inputs_same_actions` when the two bags' numeric signatures differ."""
    tol = scenario.tolerances
    lo, hi = _window(rec, tol)
    idx = _StepIndex(rec)
    inwin = lambda xs: [x for x in xs if lo <= x.t_ns <= hi]  # noqa: E731
    out: list[Judgement] = []
    want = set(scenario.judgements)
    cov = tol["min_coverage"]
    stol = int(tol["stamp_tol_s"] * 1e9)
    if "observations" in want:
        r = [o for o in inwin(rec.observations) if o.valid and o.stamp_ns]
        n = [o for o in new.observations if o.valid and o.stamp_ns]

        def oerr(a: Obs, b: Obs) -> float:
            return (
                float(np.max(np.abs(a.values - b.values))) if a.values.shape == b.values.shape else math.inf
            )

        out.append(_match_by_stamp("observations", r, n, lambda o: o.skill, oerr, tol["observation_atol_m"], stol, cov, idx,
                                   lambda a, b, e: f"observation {a.skill} stamp {a.stamp_ns}: recorded {fmt_values(a.values)} vs "
                                   f"replayed {fmt_values(b.values)} (max |diff| {e:.3g} m)"))  # fmt: skip
    if "actions" in want:

        def aerr(a: Act, b: Act) -> float:
            return (
                float(np.max(np.abs(a.action - b.action))) if a.action.shape == b.action.shape else math.inf
            )

        j = _match_by_stamp("actions", inwin(rec.actions), new.actions, lambda a: a.skill, aerr, tol["action_atol"], stol, cov, idx,
                            lambda a, b, e: f"policy step {idx.by_stamp.get(a.stamp_ns)} ({a.skill}): recorded {fmt_values(a.action)} vs "
                            f"replayed {fmt_values(b.action)} (max |diff| {e:.3g})")  # fmt: skip
        out.append(j)
    if "same_inputs_same_actions" in want:
        out.append(judge_same_inputs(rec, new, lo, hi, idx, weights))
    if "commands" in want:
        out.append(judge_commands(rec.reports, new.reports, tol, idx, lo, hi, policy_period_ns(rec.actions)))
    if "skill_switches" in want:
        j = Judgement("skill_switches", True)
        # Observations carry the skill also while invalid (a skill the scene cannot serve): the runtime's view.
        src_r = rec.observations or rec.actions
        src_n = new.observations or new.actions
        lo0 = rec.sensor_span_ns[0] if rec.sensor_span_ns != (0, 0) else rec.start_ns
        rr, nn = _skill_runs(src_r, lo0, hi), _skill_runs(src_n, lo0, hi)
        j.metrics = {"recorded": [(round((t - rec.start_ns) * 1e-9, 3), s) for t, s in rr],
                     "replayed": [(round((t - rec.start_ns) * 1e-9, 3), s) for t, s in nn],
                     "tol_s": tol["skill_switch_tol_s"]}  # fmt: skip
        tol_ns, slack_ns = int(tol["skill_switch_tol_s"] * 1e9), int(tol["stamp_tol_s"] * 1e9)
        for k in range(max(len(rr), len(nn))):
            j.checked += 1
            a = rr[k] if k < len(rr) else None
            b = nn[k] if k < len(nn) else None
            # Later than recorded by more than the tolerance: a regression. Sooner: only where the recording
            # itself reacted late (a loaded machine starved it: 0.6 s once in a stressed suite) and the
            # replay switched on the input that asks for this skill (the newest /legion/active_skill before
            # the switch, replayed at its recorded time), never on its own.
            bad = (
                a is None or b is None or a[1] != b[1] or b[0] - a[0] > tol_ns
                or (a[0] - b[0] > tol_ns and _requested_skill(rec.skills, b[0] + slack_ns) != b[1])
            )  # fmt: skip
            if bad:
                j.failed += 1
                if j.first_divergence is None:
                    t = (a or b)[0]
                    j.first_divergence = idx.div(t, 0, f"skill run {k}: recorded {a and (round((a[0] - rec.start_ns) * 1e-9, 3), a[1])} "
                                                 f"vs replayed {b and (round((b[0] - rec.start_ns) * 1e-9, 3), b[1])}")  # fmt: skip
        j.passed = j.failed == 0 and j.checked > 0
        out.append(j)
    if "safety_events" in want:
        j = Judgement("safety_events", True)
        rec_ev = [s for s in rec.statuses if s.level >= StatusLevel.HOLD]
        new_ev = [s for s in new.statuses if s.level >= StatusLevel.HOLD and lo <= s.t_ns <= hi]
        tol_ns = int(tol["safety_time_tol_s"] * 1e9)
        new_only, other_reason = [], []
        for s in new_ev:
            j.checked += 1
            if not any(_status_key(r) == _status_key(s) and abs(r.t_ns - s.t_ns) <= tol_ns for r in rec_ev):
                # The node's statuses are published on change: which of two causes of one hold is reported
                # first is timing (at a skill switch, real2sim's first tick or the first detection). Inside a
                # hold of at least this level that the recording was in at that time, another reason is no new
                # safety state (docs/decisions/portable-regression-check.md).
                if _level_at(rec.statuses, s.node, s.t_ns) >= s.level:
                    other_reason.append(s)
                    continue
                new_only.append(s)
                j.failed += 1
                if j.first_divergence is None:
                    j.first_divergence = idx.div(
                        s.t_ns, 0, f"new safety event: {s.node} level {s.level}: {s.message}"
                    )
        missing = [s for s in rec_ev if lo <= s.t_ns <= hi
                   and not any(_status_key(r) == _status_key(s) and abs(r.t_ns - s.t_ns) <= tol_ns for r in new_ev)]  # fmt: skip
        j.metrics = {"recorded": len(rec_ev), "replayed": len(new_ev), "new": [f"{s.node}: {s.message}" for s in new_only],
                     "reason_differs": [f"{s.node}: {s.message}" for s in other_reason],
                     "not_reproduced": [f"{s.node}: {s.message}" for s in missing]}  # fmt: skip
        j.passed = j.failed == 0
        out.append(j)
    if "replay_timing" in want:
        j = Judgement("replay_timing", True)
        lat = (replay_stats or {}).get("lateness_ms") or {}
        j.metrics = {"lateness_ms": lat, "limit_p99_ms": tol["max_lateness_p99_ms"]}
        if lat:
            j.checked = int(lat.get("n", 0))
            # A late replay (a loaded machine) can only cost the other live judgements counterparts and add
            # holds, never make a changed runtime pass: where they all held, the lateness is reported and did
            # not matter; where one failed, it may be load rather than a regression, and this says so
            # (docs/decisions/portable-regression-check.md). Alone, the limit decides.
            others = [o for o in out if o.name in LIVE_JUDGEMENTS]
            failed = [o.name for o in others if not o.passed]
            late = lat["p99"] > tol["max_lateness_p99_ms"]
            j.metrics["late"] = late
            j.passed = not late or (bool(others) and not failed)
            msg = f"replay publish lateness p99 {lat['p99']} ms > {tol['max_lateness_p99_ms']} ms"
            if not j.passed:
                j.failed = 1
                j.note = (f"{msg}: the live judgements saw distorted timing; {failed} may have failed from load, "
                          "rerun on an idle machine") if failed else f"{msg}: the live judgements saw distorted timing"  # fmt: skip
            elif late:
                j.note = (
                    f"{msg} (a loaded machine), but every live judgement held: the lateness did not matter"
                )
        else:
            j.note = "as-fast-as-possible replay: no schedule to measure against"
        out.append(j)
    return out
