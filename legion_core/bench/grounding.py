"""`legion bench grounding`: accuracy, refusals and latency of the command grounder on the evaluation set.

The set (tests/data/grounding/commands.yaml) has two splits, reported separately: `tune` (what the lexicon and
thresholds were developed on) and `heldout` (written first and frozen, never tuned on). For each split:
- in-scope commands (those with an expected `plan`): exact-plan accuracy (same skills, same order), false
  refusals, and wrong plans (a plan that is not the expected one: the dangerous error);
- out-of-scope commands (`refuse: true`): refused / total, and how often the refusal class matches the
  expected `reason` where one is given;
- a per-category breakdown, every failure listed, and latency per command.

Latency: by default the steps are embedded by the model on every call (`language.embed`, no disk cache; the
model is loaded and warmed up before timing), which is what an operator's new sentence costs. With
`cached=True` the on-disk cache is used (what the tests do; a hit never loads the model).

A cosine-only baseline (best phrasing by MiniLM cosine, no slots, no refusals) is reported on the
single-step in-scope commands, to show what the slot model adds (it refuses nothing, so it would also run
every out-of-scope command).

Typo stress: the hand-written typos are few, so each in-scope command is also perturbed at random (seeded:
one edit — swap, drop, double or replace a letter — in one word of 4+ letters, first letter kept) and
grounded again. A perturbed command may be refused (safe); a *different* plan is the failure that matters.
Out-of-scope commands are perturbed the same way and must stay refused (a typo must not hide "slowly" or
"don't" from the safety checks).
"""

from __future__ import annotations

import random
import re
import string
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from legion_core.base.stats import ratio, summarize
from legion_core.runtime import grounding as G

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "tests" / "data" / "grounding" / "commands.yaml"
TARGETS = {"in_scope_exact": 0.95, "out_of_scope_refused": 1.0}
SPLITS = ("tune", "heldout")


def load_eval_set(path: str | Path = DEFAULT_PATH) -> dict[str, Any]:
    """The evaluation YAML, checked: every item has id/text/category and exactly one of plan / refuse."""
    data = yaml.safe_load(Path(path).read_text())
    for split in SPLITS:
        for item in data[split]:
            if not {"id", "text", "category"} <= set(item):
                raise ValueError(f"{path}: item {item} needs id, text and category")
            if ("plan" in item) == bool(item.get("refuse")):
                raise ValueError(f"{path}: item {item['id']} needs exactly one of `plan` or `refuse: true`")
    return data


def evaluate_split(grounder: G.Grounder, items: list[dict]) -> dict[str, Any]:
    """Score one split (see the module docstring for the figures)."""
    in_n = in_ok = false_ref = wrong_plan = 0
    out_n = out_ref = reason_n = reason_ok = 0
    per_cat: dict[str, dict[str, int]] = {}
    failures: list[dict[str, Any]] = []
    latencies: list[float] = []
    for item in items:
        res, dt = G.timed_ground(grounder, item["text"])
        latencies.append(dt)
        cat = per_cat.setdefault(item["category"], {"n": 0, "correct": 0})
        cat["n"] += 1
        if "plan" in item:
            in_n += 1
            good = res.ok and res.skills == list(item["plan"])
            in_ok += good
            false_ref += not res.ok
            wrong_plan += res.ok and not good
            expected: Any = list(item["plan"])
        else:
            out_n += 1
            good = not res.ok
            out_ref += good
            expected = {"refuse": True, "reason": item.get("reason")}
            if item.get("reason") and not res.ok:
                reason_n += 1
                reason_ok += res.reason == item["reason"]
        cat["correct"] += good
        if not good:
            failures.append(
                {
                    "id": item["id"],
                    "category": item["category"],
                    "text": item["text"],
                    "expected": expected,
                    "got": res.skills if res.ok else {"refused": res.reason, "refusal": res.refusal},
                }
            )
    in_acc, out_rate = ratio(in_ok, in_n), ratio(out_ref, out_n)
    return {
        "n": len(items),
        "in_scope": {"n": in_n, "exact": in_ok, "accuracy": in_acc},
        "false_refusals": {"n": false_ref, "rate": ratio(false_ref, in_n)},
        "wrong_plans": {"n": wrong_plan, "rate": ratio(wrong_plan, in_n)},
        "out_of_scope": {"n": out_n, "refused": out_ref, "rate": out_rate},
        "refusal_reason_match": {"n": reason_n, "match": reason_ok, "rate": ratio(reason_ok, reason_n)},
        "per_category": {
            k: {**v, "accuracy": v["correct"] / v["n"]}
            for k, v in sorted(per_cat.items(), key=lambda kv: kv[0])
        },
        "failures": failures,
        "latency_ms": summarize(latencies, ("median", "p95", "max", "mean"), scale=1000.0),
        "meets_targets": bool(
            in_acc is not None
            and in_acc >= TARGETS["in_scope_exact"]
            and out_rate is not None
            and out_rate >= TARGETS["out_of_scope_refused"]
        ),
    }


def cosine_only_baseline(grounder: G.Grounder, items: list[dict]) -> dict[str, Any]:
    """Accuracy of 'best phrasing by cosine' on the single-step in-scope items (no slots, no refusals)."""
    single = [it for it in items if "plan" in it and len(it["plan"]) == 1]
    if not single:
        return {"n": 0, "accuracy": None}
    vecs = grounder._embed([G.normalize_text(it["text"]) for it in single])
    sims = vecs @ grounder._phrase_vecs.T
    names = grounder.skill_names
    correct = 0
    for row, it in zip(sims, single):
        best = np.full(len(names), -1.0)
        np.maximum.at(best, grounder._owner, row)
        correct += names[int(best.argmax())] == it["plan"][0]
    return {"n": len(single), "correct": correct, "accuracy": correct / len(single)}


def _typo(text: str, rng: random.Random) -> str:
    """One random edit in one word of 4+ letters (first letter kept): swap, drop, double or replace."""
    words = list(re.finditer(r"[A-Za-z]{4,}", text))
    if not words:
        return text
    m = rng.choice(words)
    w = m.group(0)
    i = rng.randrange(1, len(w) - 1)
    op = rng.choice(("swap", "drop", "double", "replace"))
    if op == "swap":
        w2 = w[:i] + w[i + 1] + w[i] + w[i + 2 :]
    elif op == "drop":
        w2 = w[:i] + w[i + 1 :]
    elif op == "double":
        w2 = w[:i] + w[i] + w[i:]
    else:
        w2 = w[:i] + rng.choice(string.ascii_lowercase.replace(w[i].lower(), "")) + w[i + 1 :]
    return text[: m.start()] + w2 + text[m.end() :]


def typo_stress(grounder: G.Grounder, items: list[dict], variants: int = 3, seed: int = 0) -> dict[str, Any]:
    """Ground `variants` randomly mistyped copies of every item (see the module docstring)."""
    rng = random.Random(seed)
    n = exact = refused = out_n = out_refused = 0
    wrong: list[dict[str, Any]] = []
    accepted: list[dict[str, Any]] = []
    for item in items:
        for _ in range(variants):
            text = _typo(item["text"], rng)
            res = grounder.ground(text)
            if "plan" not in item:  # a typo must never turn a refused command into a plan
                out_n += 1
                out_refused += not res.ok
                if res.ok:
                    accepted.append({"id": item["id"], "text": text, "got": res.skills})
                continue
            n += 1
            if not res.ok:
                refused += 1
            elif res.skills == list(item["plan"]):
                exact += 1
            else:
                wrong.append({"id": item["id"], "text": text, "expected": item["plan"], "got": res.skills})
    return {
        "n": n,
        "exact": exact,
        "accuracy": ratio(exact, n),
        "refused": refused,
        "wrong_plans": len(wrong),
        "wrong": wrong,
        "out_of_scope_n": out_n,
        "out_of_scope_refused": out_refused,
        "out_of_scope_rate": ratio(out_refused, out_n),
        "out_of_scope_accepted": accepted,
        "seed": seed,
    }


def run_bench(
    path: str | Path = DEFAULT_PATH, *, cached: bool = False, embed_fn: G.EmbedFn | None = None
) -> dict:
    """Evaluate the grounder on both splits of `path`; returns a JSON-able report (see module docstring)."""
    from legion_core.contracts import language

    data = load_eval_set(path)
    if embed_fn is None:
        embed_fn = language.embed_cached if cached else language.embed
        embedding = (
            "on-disk cache (language.embed_cached)" if cached else "model on every call (language.embed)"
        )
    else:
        embedding = getattr(embed_fn, "__name__", "custom")
    cards = G.skill_cards_from_registry(data["closed_world"])
    t0 = time.perf_counter()
    grounder = G.Grounder(cards, embed_fn=embed_fn)
    build_s = time.perf_counter() - t0
    grounder.ground("close the drawer")  # warm-up: model load, first-call allocations
    report: dict[str, Any] = {
        "path": str(path),
        "model": language.MODEL_ID,
        "embedding": embedding,
        "closed_world": list(data["closed_world"]),
        "config": asdict(grounder.config),
        "targets": TARGETS,
        "grounder_build_s": build_s,
        "grounder_warnings": grounder.warnings,
        "splits": {},
    }
    for split in SPLITS:
        rep = evaluate_split(grounder, data[split])
        rep["cosine_only_baseline_single_step"] = cosine_only_baseline(grounder, data[split])
        rep["typo_stress"] = typo_stress(grounder, data[split])
        report["splits"][split] = rep
    report["meets_targets"] = {s: report["splits"][s]["meets_targets"] for s in SPLITS}
    return report


def summary_lines(report: dict) -> list[str]:
    """A short human summary of `run_bench`'s report (for the CLI)."""
    lines = [f"grounding bench: {report['path']} ({report['embedding']})"]
    for split, r in report["splits"].items():
        ins, out, lat = r["in_scope"], r["out_of_scope"], r["latency_ms"]
        base = r["cosine_only_baseline_single_step"]
        lines.append(
            f"  {split:8s} in-scope exact {ins['exact']}/{ins['n']} ({ins['accuracy']:.1%}), "
            f"false refusals {r['false_refusals']['n']}, wrong plans {r['wrong_plans']['n']}; "
            f"out-of-scope refused {out['refused']}/{out['n']} ({out['rate']:.1%}); "
            f"latency median {lat['median']:.1f} ms p95 {lat['p95']:.1f} ms; "
            f"cosine-only baseline (single step) {base['accuracy']:.1%}; targets met: {r['meets_targets']}"
        )
        ts = r["typo_stress"]
        lines.append(
            f"           typo stress (1 random edit, {ts['n']} commands): exact {ts['accuracy']:.1%}, "
            f"refused {ts['refused']}, wrong plans {ts['wrong_plans']}; out-of-scope still refused "
            f"{ts['out_of_scope_refused']}/{ts['out_of_scope_n']}"
        )
        for w in ts["wrong"]:
            lines.append(f"    TYPO-WRONG {w['id']} {w['text']!r}: expected {w['expected']}, got {w['got']}")
        for w in ts["out_of_scope_accepted"]:
            lines.append(f"    TYPO-ACCEPTED {w['id']} {w['text']!r}: got {w['got']}")
        for f in r["failures"]:
            lines.append(
                f"    FAIL {f['id']} [{f['category']}] {f['text']!r}: expected {f['expected']}, got {f['got']}"
            )
    return lines


if __name__ == "__main__":  # pragma: no cover - manual run
    import json
    import sys

    rep = run_bench(cached="--cached" in sys.argv)
    print("\n".join(summary_lines(rep)))
    if "--json" in sys.argv:
        print(json.dumps(rep, indent=2))
