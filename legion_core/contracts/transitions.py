"""Which skill-to-skill transitions a bundle was verified on (bundle.yaml `transitions`; docs/operator-input.md,
"Plans over transitions the bundle was not verified on").

A skill is trained from its own hand starts; chained, it starts where the previous one ended, which its
training may never have covered (the shipped model: "open the drawer, then close the drawer" 0/5, drawer-close
never progressing from where drawer-open leaves the hand). So a plan is run only over transitions the bundle
was evaluated on through the whole graph: `legion bench longhorizon` counts, for every consecutive pair of a
chain, how often the second skill succeeded once the first had, and `--record-transitions` writes the counts
into the bundle. The grounder refuses a plan with a pair that is missing or below `min_success`, naming it.

    transitions:
      min_success: 0.9          # success rate a transition needs to be run [0-1]
      evaluated:
        - {from: drawer-open, to: button-press-topdown, attempts: 19, successes: 19, source: "..."}

A bundle without the section is not checked (bundles exported before it existed; the grounder says nothing
about transitions then)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from legion_core.contracts.bundle_schema import BundleError
from legion_core.contracts.interface import READY_SKILL

MIN_SUCCESS = 0.9
"""Success rate a transition needs: the bar a shipped skill meets on its own held-out placements."""


@dataclass(frozen=True)
class TransitionRecord:
    """How often `to_skill` succeeded when started where `from_skill` had just succeeded."""

    from_skill: str
    to_skill: str
    attempts: int
    """Chains in which `from_skill` succeeded and `to_skill` was started."""
    successes: int
    """Of those, the chains in which `to_skill` succeeded too."""
    source: str = ""
    """Where the counts come from (the bench command and its JSON)."""

    @property
    def success_rate(self) -> float:
        return self.successes / self.attempts if self.attempts else 0.0

    def to_dict(self) -> dict:
        return {"from": self.from_skill, "to": self.to_skill, "attempts": self.attempts,
                "successes": self.successes, "source": self.source}  # fmt: skip


@dataclass(frozen=True)
class Transitions:
    """The bundle's `transitions` section."""

    records: tuple[TransitionRecord, ...]
    min_success: float = MIN_SUCCESS

    def verified(self) -> frozenset[tuple[str, str]]:
        """The pairs whose pooled counts reach `min_success`."""
        return frozenset((r.from_skill, r.to_skill) for r in self.pooled().records
                         if r.attempts and r.success_rate >= self.min_success)  # fmt: skip

    def unverified_step(self, plan: Sequence[str]) -> tuple[int, str] | None:
        """(index of the first step whose transition into it is not verified, why), or None."""
        ok = self.verified()
        by_pair = {(r.from_skill, r.to_skill): r for r in self.pooled().records}
        for i in range(1, len(plan)):
            pair = (plan[i - 1], plan[i])
            if pair in ok:
                continue
            r = by_pair.get(pair)
            seen = (f"it succeeded {r.successes} of {r.attempts} times, below {self.min_success:.0%}" if r
                    else "it was never evaluated")  # fmt: skip
            known = ", ".join(f"{a} -> {b}" for a, b in sorted(ok)) or "none"
            return i, (
                f"{pair[0]} -> {pair[1]} is not a verified transition of this bundle ({seen}; verified: {known}); "
                "send the steps as separate commands, checking the scene in between, or evaluate the pair with "
                f'`legion bench longhorizon <bundle> --command "..." --record-transitions`'
            )
        return None

    def merged(self, new: Iterable[TransitionRecord]) -> Transitions:
        """These records with `new` ones added: counts of the same pair and source are replaced (a re-run of
        the same bench), other sources add up."""
        out = {(r.from_skill, r.to_skill, r.source): r for r in self.records}
        for r in new:
            out[(r.from_skill, r.to_skill, r.source)] = r
        return Transitions(tuple(out.values()), self.min_success)

    def pooled(self) -> Transitions:
        """One record per pair, the sources' counts summed (what `verified` judges on)."""
        acc: dict[tuple[str, str], list] = {}
        for r in self.records:
            a = acc.setdefault((r.from_skill, r.to_skill), [0, 0, []])
            a[0] += r.attempts
            a[1] += r.successes
            a[2].append(r.source)
        recs = tuple(TransitionRecord(f, t, n, k, "; ".join(s)) for (f, t), (n, k, s) in acc.items())
        return Transitions(recs, self.min_success)

    def to_dict(self) -> dict:
        return {"min_success": self.min_success, "evaluated": [r.to_dict() for r in self.records]}


def parse_transitions(d: object, skill_names: Sequence[str]) -> Transitions:
    """The `transitions` section, validated (BundleError names the field and the fix)."""
    fix = "write it with `legion bench longhorizon <bundle> --record-transitions`"
    if not isinstance(d, Mapping):
        raise BundleError("transitions", "is not a mapping", fix)
    ms = d.get("min_success", MIN_SUCCESS)
    if not isinstance(ms, int | float) or not 0.0 < float(ms) <= 1.0:
        raise BundleError("transitions.min_success", f"is {ms!r}, not a rate in (0, 1]", fix)
    ev = d.get("evaluated", [])
    if not isinstance(ev, list):
        raise BundleError("transitions.evaluated", "is not a list", fix)
    records = []
    for i, e in enumerate(ev):
        where = f"transitions.evaluated[{i}]"
        if not isinstance(e, Mapping):
            raise BundleError(where, "is not a mapping", fix)
        for k in ("from", "to"):
            if e.get(k) not in skill_names:
                raise BundleError(
                    f"{where}.{k}", f"is {e.get(k)!r}, not a skill of this bundle {list(skill_names)}", fix
                )
        n, s = e.get("attempts"), e.get("successes")
        if not (isinstance(n, int) and isinstance(s, int) and 0 <= s <= n):
            raise BundleError(
                where, f"attempts {n!r} / successes {s!r} are not counts with successes <= attempts", fix
            )
        records.append(TransitionRecord(e["from"], e["to"], n, s, str(e.get("source", ""))))
    return Transitions(tuple(records), float(ms))


def transitions_from_chains(chains: Iterable[Mapping], source: str) -> list[TransitionRecord]:
    """Transition counts from chains run through the graph (`legion bench longhorizon`'s `per_scene`: each
    chain's `plan` and `step_durations_s`, one per step that succeeded, in order): a pair is attempted when its
    first skill succeeded, and succeeded when its second did too."""
    acc: dict[tuple[str, str], list[int]] = {}
    for c in chains:
        plan, done = list(c["plan"]), len(c.get("step_durations_s") or [])
        started = len(c.get("skill_starts_s") or [])
        for i in range(1, len(plan)):
            if READY_SKILL in (plan[i - 1], plan[i]):
                continue  # the ready move is the sequencer's, never grounded from text
            if done >= i or started > i:  # step i-1 succeeded: step i was started from where it ended
                a = acc.setdefault((plan[i - 1], plan[i]), [0, 0])
                a[0] += 1
                a[1] += int(done > i)
    return [TransitionRecord(f, t, n, k, source) for (f, t), (n, k) in acc.items()]
