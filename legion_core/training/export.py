"""`legion export RUN_DIR -o models/<name>/`: freeze a trained agent into a policy bundle, evaluate every
skill through the bundle's own inference path (what the robot will run), write the model card, and with
`--sign LAB.key` sign the finished directory (legion_core/contracts/signing.py). `legion inspect models/<name>` prints
the contract readably, with its signature status.

bundle.yaml is written through the schema's typed sections (legion_core/contracts/bundle_schema.py), so the keys
the runtime reads have one spelling; the free-form sections (inference, dpmm, provenance, evaluation) are
composed here, for people reading the model card and `legion inspect`."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import shutil
from pathlib import Path

import numpy as np
import torch
import yaml

from legion_core.contracts import bundle as B
from legion_core.contracts.bundle_schema import (
    CONTRACT_FILE,
    CONTRACT_HEADER,
    FORMAT,
    MODEL_CARD_FILE,
    SIGNATURE_FILE,
    WEIGHTS_FILE,
    ActionSpec,
    BundleContract,
    BundleSkill,
    LanguageModelSpec,
    NetworkSpec,
    ObservationSpec,
    WorkspaceBox,
    parse_contract,
    sha256_file,
)
from legion_core.contracts.layouts import get_layout
from legion_core.contracts.scenes import get_scene
from legion_core.contracts.tasks import get_task, get_task_set
from legion_core.robot import iiwa7
from legion_core.training.agent.agent import LegionAgent
from legion_core.training.evaluation import evaluate

SIM_WORLD_DESCRIPTION = (
    "Meta-World's world frame (REP-103, metres): origin on the table top under the Sawyer's base, +x to the "
    "robot's right when it faces the table, +y away from the robot across the table, +z up; table top z = 0. "
    f"The KUKA base sits at {list(iiwa7.BASE_POS_SIM_M)} with yaw +90 deg (T_sim_base)."
)


def build_contract(
    run_dir: Path,
    agent: LegionAgent,
    train_cfg: dict,
    report: dict,
    name: str,
    skills: list[str] | None = None,
) -> tuple[BundleContract, np.ndarray]:
    """The contract of a bundle of `skills` (default: every trained skill) and their task embeddings; the
    export's evaluation and the weight file's sha256 are added later (export_run, write_bundle)."""
    from legion_core.contracts import language

    tasks = train_cfg["tasks"]
    specs = [get_task(t) for t in tasks] if isinstance(tasks, list) else None
    if specs is None:
        from legion_core.contracts.tasks import get_task_set

        specs = get_task_set(tasks)
    if skills:
        # Export a subset of the trained skills (e.g. only those that meet the success bar); the policy
        # is the same network, it simply has fewer task embeddings to choose from.
        unknown = [k for k in skills if k not in [s.name for s in specs]]
        if unknown:
            raise ValueError(f"skills {unknown} were not trained in this run ({[s.name for s in specs]})")
        specs = [s for s in specs if s.name in skills]
    layout = get_layout(train_cfg["layout"])
    emb = language.embed_cached([s.description for s in specs]).astype(np.float32)
    from legion_core.sim.factory import env_class

    boxes = []
    for s in specs:
        cls = env_class(s.env_name, "sawyer")
        env = cls()
        boxes.append((env.mocap_low.copy(), env.mocap_high.copy()))
        env.close()
    lo = np.max([b[0] for b in boxes], axis=0)  # intersection: the box every skill was trained inside
    hi = np.min([b[1] for b in boxes], axis=0)
    cfg = agent.config
    dp = agent.dpmm
    skill_entries = tuple(
        BundleSkill(
            name=s.name,
            env_name=s.env_name,
            descriptions=tuple(s.descriptions),
            embedding_text=s.description,
            embedding_sha256=language.embedding_hash(emb[i]),
            object_label=s.object_label,
            goal=s.goal.to_dict(),
            success=s.success.to_dict() if s.success else None,
            max_episode_steps=s.max_episode_steps,
            hand_init_pos_m=tuple(s.hand_init_pos_m),
        )
        for i, s in enumerate(specs)
    )
    preset = (yaml.safe_load((run_dir / "config.yaml").read_text()) or {}).get("preset")
    contract = BundleContract(
        name=name,
        created_utc=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        embodiment=train_cfg["embodiment"],
        observation=ObservationSpec.from_layout(layout, SIM_WORLD_DESCRIPTION),
        action=ActionSpec(
            dim=4,
            range=(-1.0, 1.0),
            meaning=(
                "dx: hand moves by a[0] * scale metres along sim_world x this step",
                "dy: same along y",
                "dz: same along z",
                "gripper: +1 closes, -1 opens (Meta-World finger position targets [a3, -a3])",
            ),
            delta_xyz_scale_m_per_step=0.01,
            end_effector_orientation_quat_wxyz=tuple(round(float(v), 6) for v in iiwa7.HAND_QUAT_DOWN),
            end_effector_orientation="fixed: hand +x points down (world -z), fingers close along world y",
            workspace_box_sim_m=WorkspaceBox(
                low=tuple(float(v) for v in lo), high=tuple(float(v) for v in hi)
            ),
            policy_step_s=0.0125,
            policy_step_note="80 Hz in the simulator: 5 physics steps of 2.5 ms per action (quasi-static mocap)",
        ),
        network=NetworkSpec(
            obs_dim=cfg.obs_dim,
            embed_dim=cfg.embed_dim,
            latent_dim=cfg.latent_dim,
            encoder_hidden=cfg.vae_hidden,
            actor_hidden=cfg.actor_hidden,
            action_dim=cfg.action_dim,
        ),
        inference={
            "z": "mean of q(z|s,e)",
            "action": "tanh(actor mean)",
            "original_option": "z sampled (z_mode=sample)",
        },
        language_model=LanguageModelSpec(
            id=language.MODEL_ID, package=language.MODEL_PACKAGE, embed_dim=language.EMBED_DIM
        ),
        skills=skill_entries,
        # Where the skills' objects were placed in training (legion_core.contracts.scenes), or null for Meta-World's own
        # placements: the twin builds this scene, and a real cell should match it.
        scene=get_scene(train_cfg["scene"]).to_dict() if train_cfg.get("scene") else None,
        dpmm={
            "K": int(dp.K) if dp.fitted else 0,
            "means": np.asarray(dp.means).round(6).tolist() if dp.fitted else [],
            "variances": np.asarray(dp.variances).tolist() if dp.fitted else [],
        },
        provenance={
            "run": run_dir.name,
            "git_commit": report.get("git_commit", "unknown"),
            "preset": preset,
            "command": f"legion train --preset {preset}",
            "seed": train_cfg["seed"],
            "env_seed": train_cfg["env_seed"],
            "mode": train_cfg["mode"],
            "env_steps": report.get("env_steps"),
            "gradient_updates": report.get("gradient_updates"),
            "wall_time_s": round(float(report.get("wall_time_s", 0.0)), 1),
            "demonstrations": {
                **(report.get("demonstrations") or {}),
                "bc_weight": float((train_cfg.get("agent") or {}).get("bc_weight", 0.0)),
            },  # fmt: skip
            "replay": {k: v for k, v in report.get("replay", {}).items() if k != "per_task"},
            "goal_variation": train_cfg["goal_variation"],
        },
    )
    return contract, emb


def export_run(
    run_dir: str | Path,
    out_dir: str | Path,
    name: str | None = None,
    checkpoint: str = "checkpoint/agent.pt",
    eval_episodes: int = 50,
    eval_seed: int | None = None,
    progress: bool = True,
    skills: list[str] | None = None,
    sign_key: str | Path | None = None,
) -> Path:
    """sign_key: a private key file (`legion keygen`); the bundle is signed as the last step, over every
    file written. The key is read before anything else, so a bad key fails before the export's evaluation
    and leaves no unsigned bundle behind (raises signing.SigningError)."""
    from legion_core.contracts import signing

    if sign_key:
        signing.check_key_outside(out_dir, sign_key)
        signing.load_private_key(sign_key)
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    train_cfg = saved["config"]
    report = json.loads((run_dir / "report.json").read_text()) if (run_dir / "report.json").exists() else {}
    state = torch.load(run_dir / checkpoint, map_location="cpu", weights_only=True)
    agent = LegionAgent.from_state_dict(state, device="cpu")
    name = name or out_dir.name
    contract, emb = build_contract(run_dir, agent, train_cfg, report, name, skills)
    write_bundle(out_dir, contract, agent_weights(agent, emb))
    # Evaluate through the bundle itself (numpy inference), on held-out placements.
    bundle = B.load(out_dir)
    seed = train_cfg.get("eval_env_seed", 1) if eval_seed is None else eval_seed
    results = evaluate(
        bundle.skill_names,
        bundle.embodiment,
        policy_factory=lambda spec: bundle.policy_fn(spec.name),
        layout=bundle.layout.name,
        episodes=eval_episodes,
        seed=seed,
        progress=progress,
        scene=train_cfg.get("scene"),
    )
    success = {r.task: r.success_rate for r in results}
    evaluation = {
        "episodes_per_skill": eval_episodes,
        "seed": seed,
        "placements": f"metaworld.MT1(env, seed={seed}) variations 0..{eval_episodes - 1} (held out from training)"
        + (
            f", moved into scene {train_cfg['scene']!r} with its random hand starts"
            if train_cfg.get("scene")
            else ""
        ),
        "deterministic": True,
        "success": success,
        "mean_first_success_step": {r.task: r.mean_first_success_step for r in results},
    }
    provenance = dict(contract.provenance or {})
    # Skills the run trained but this bundle does not ship, with their last in-training evaluation, so the
    # card says what was left out and why.
    tasks = train_cfg["tasks"]
    trained = tasks if isinstance(tasks, list) else [t.name for t in get_task_set(tasks)]
    left_out = [t for t in trained if t not in success]
    if left_out and (run_dir / "eval.jsonl").exists():
        last = [json.loads(x) for x in (run_dir / "eval.jsonl").read_text().splitlines() if x.strip()][-1]
        provenance["not_shipped"] = {t: {"last_eval_success": last["success"].get(t)} for t in left_out}
    contract = dataclasses.replace(
        contract,
        skills=tuple(
            dataclasses.replace(s, evaluation={"success": success[s.name], "episodes": eval_episodes})
            for s in contract.skills
        ),
        provenance=provenance,
        evaluation=evaluation,
    )
    weights = {k: v for k, v in bundle.weights.items()}
    write_bundle(out_dir, contract, weights)
    # Small run artefacts next to the model: metrics and plots, never checkpoints or buffers.
    art = out_dir / "run"
    art.mkdir(exist_ok=True)
    for f in ("metrics.json", "report.json", "config.yaml", "eval.jsonl"):
        if (run_dir / f).exists():
            shutil.copy2(run_dir / f, art / f)
    if (run_dir / "plots").exists():
        shutil.copytree(run_dir / "plots", art / "plots", dirs_exist_ok=True)
    (out_dir / MODEL_CARD_FILE).write_text(model_card(B.load(out_dir)))
    if sign_key:
        signing.sign_bundle(out_dir, sign_key)  # last: the signature covers every file of the bundle
    return out_dir


def _transitions_card(b: B.Bundle) -> str:
    t = b.transitions
    if t is None:
        return ("No skill-to-skill transition was evaluated through the graph: plans are not checked for them "
                "(`legion bench longhorizon <bundle> --record-transitions` records them).")  # fmt: skip
    ok = t.verified()
    rows = "\n".join(
        f"| {r.from_skill} -> {r.to_skill} | {r.successes}/{r.attempts} | {'yes' if (r.from_skill, r.to_skill) in ok else 'no'} | {r.source} |"
        for r in sorted(t.pooled().records, key=lambda r: (r.from_skill, r.to_skill))
    )
    return (
        f"A plan runs only over transitions evaluated through the whole graph with a success rate >= "
        f"{t.min_success:.0%} (the second skill started where the first ended); the grounder refuses any other "
        "pair, naming it. Every pair not listed was never evaluated.\n\n"
        f"| transition | second skill succeeded | verified | source |\n| --- | --- | --- | --- |\n{rows}"
    )


def model_card(b: B.Bundle) -> str:
    c = b.spec
    p = c.provenance or {}
    ev = c.evaluation or {}
    rows = "\n".join(
        f"| {s.name} | {s.descriptions[0]} | {s.object_label} | {fmt_rate(ev.get('success', {}).get(s.name))} |"
        for s in c.skills
    )
    demos = p.get("demonstrations") or {}
    ns = p.get("not_shipped") or {}
    not_shipped = (
        "- Trained in the same run but NOT shipped (below the 0.9 success bar at the run's last evaluation): "
        + ", ".join(f"{k} ({fmt_rate(v.get('last_eval_success'))})" for k, v in ns.items())
        + ".\n"
        if ns
        else ""
    )
    demo_line = (
        f"**Yes**: {demos.get('episodes_per_task')} scripted-expert episodes per skill in a separate buffer, "
        f"{demos.get('batch_fraction')} of every batch (RLPD-style demonstration seeding)"
        + (
            f", plus a behaviour-cloning term on those rows (agent.bc_weight = {demos['bc_weight']}, TD3+BC form; "
            "not in the original LEGION actor loss)."
            if demos.get("bc_weight")
            else "."
        )
        if demos.get("used")
        else "No."
    )
    sc = c.scene
    scene_line = (
        f"- Scene `{sc['name']}` (legion_core/contracts/scenes.py): {sc['description']} Objects placed as there: "
        + "; ".join(
            f"{o['name']} ({', '.join(o['tasks'])}) moved by {o['offset_m']} m" for o in sc["objects"]
        )
        + ". Hand starts: the scene's start box or where a skill on another object ends (chain hand-over).\n"
        if sc
        else ""
    )
    a, o = c.action, c.observation
    return f"""# Model card: {c.name}

LEGION policy bundle (format {c.format} v{c.format_version}) for the **{c.embodiment}** embodiment.
Generated by `legion export`; the contract is `bundle.yaml`, the weights `weights.safetensors` (no pickles).

## What it can do
| skill | description (embedded) | object | success |
| --- | --- | --- | --- |
{rows}

Success: deterministic policy (z = mean of q(z|s,e), a = tanh(mean)), {ev.get("episodes_per_skill")} episodes per
skill on {ev.get("placements")}, success at any step within the skill's step budget, evaluated through this
bundle's numpy inference path in the MuJoCo KUKA simulation (mocap control).

## How it was trained
- Command: `{p.get("command")}` (resolved config in `run/config.yaml`), mode `{p.get("mode")}`
- Seed {p.get("seed")}, training placements seed {p.get("env_seed")}, goal variation `{p.get("goal_variation")}`
- Env steps {p.get("env_steps")}, gradient updates {p.get("gradient_updates")}, wall time {p.get("wall_time_s")} s
  on a 2-core CPU machine; git commit `{p.get("git_commit")}`
- Demonstrations used: {demo_line}
{scene_line}- Replay: `{p.get("replay", {}).get("policy")}` (capacity {p.get("replay", {}).get("capacity")}). {p.get("replay", {}).get("note", "")}
- DPMM knowledge space at export: K = {(c.dpmm or {}).get("K")} clusters.
- Metrics and plots of the run: `run/metrics.json`, `run/plots/`.

## Contract in one paragraph
Observation `{o.layout}` ({o.dim}-d, metres, frame `{o.frame}`):
{", ".join(f["name"] for f in o.fields)}. Action: Δxyz = a[:3] × {a.delta_xyz_scale_m_per_step} m per
policy step ({a.policy_step_s} s in the simulator), a[3] gripper (+1 close), hand orientation fixed
pointing down; trained inside the box {a.workspace_box_sim_m.to_dict()} (sim_world, m).

## Chaining
{_transitions_card(b)}

## Known limits
{not_shipped}- Trained and evaluated in simulation only; the real robot needs the calibrated sim2real layer
  (`sim2real/`), which bounds speed, workspace and joint motion.
- Objects are perceived as points (legion12 has no orientation); the policy assumes Meta-World's object
  geometry and the fixed downward gripper.
- Success rates are on {ev.get("episodes_per_skill")} held-out placements; other placements outside the training
  distribution (e.g. objects moved beyond Meta-World's ranges) are untested.
"""


def inspect_text(b: B.Bundle) -> str:
    c, o = b.spec, b.observation
    lines = [
        f"{c.name}  ({c.format} v{c.format_version}, embodiment {c.embodiment}, {b.path})",
        f"observation: {o.layout} ({o.dim}-d) in frame {o.frame}",
    ]
    for f in o.fields:
        lines.append(
            f"  [{f['slice'][0]:2d}:{f['slice'][1]:2d}] {f['name']:10s} {f['unit']:3s} {f['description']}"
        )
    a, box = b.action, b.action.workspace_box_sim_m
    lines.append(
        f"action: {a.dim}-d in [-1,1]; dxyz scale {a.delta_xyz_scale_m_per_step} m/step, step {a.policy_step_s} s; "
        f"box low {list(box.low)} high {list(box.high)}"
    )
    for m in a.meaning or ():
        lines.append(f"  {m}")
    lines.append(f"language model: {b.language_model.id} ({b.language_model.embed_dim}-d)")
    lines.append("skills:")
    for s in c.skills:
        ev = (s.evaluation or {}).get("success")
        pred = s.success or {}
        lines.append(
            f"  {s.name:22s} object={s.object_label:14s} goal={s.goal['kind']:13s} "
            f"steps={s.max_episode_steps:4d} success={fmt_rate(ev)}  "
            f"pred=|{pred.get('a')}-{pred.get('b')}|_{pred.get('axes')}<={pred.get('max_dist_m')}"
        )
    p = c.provenance or {}
    lines.append(
        f"provenance: {p.get('command')} | steps {p.get('env_steps')} | wall {p.get('wall_time_s')} s | "
        f"demos {'yes' if (p.get('demonstrations') or {}).get('used') else 'no'} | commit {str(p.get('git_commit'))[:10]}"
    )
    lines.append(f"DPMM: K={(c.dpmm or {}).get('K')}")
    lines.append(f"weights: {WEIGHTS_FILE} sha256 {b.weights_sha256[:16]}…")
    lines.append(f"signature: {b.signature_status}")
    if b.signature.state != "verified":
        # Hashes catch accidents only: without a verified signature nobody vouches for these figures.
        lines.append(
            "  (the success figures above are as written in bundle.yaml, not vouched for by a trusted key)"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- writing
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


def write_bundle(out_dir: Path, contract: BundleContract, weights: dict[str, np.ndarray]) -> Path:
    """Write weights + contract (with the weight file's sha256) atomically enough for a model directory.
    The contract is validated as `bundle.load` will (bundle_schema.parse_contract) before bundle.yaml is
    written, so an export never leaves a bundle that the robot PC refuses."""
    from safetensors.numpy import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # A signature of the bundle that is being overwritten can only be wrong now; sign again after export.
    (out_dir / SIGNATURE_FILE).unlink(missing_ok=True)
    wfile = out_dir / WEIGHTS_FILE
    save_file(
        {k: np.ascontiguousarray(v) for k, v in weights.items()}, str(wfile), metadata={"format": FORMAT}
    )
    data = dataclasses.replace(contract, files={WEIGHTS_FILE: sha256_file(wfile)}).to_dict()
    parse_contract(data)
    (out_dir / CONTRACT_FILE).write_text(CONTRACT_HEADER + yaml.safe_dump(data, sort_keys=False, width=110))
    return out_dir


def record_transitions(bundle_dir: str | Path, records) -> Path:
    """Add transition counts (contracts.transitions.TransitionRecord, from chains run through the graph) to
    a bundle's `transitions` section and regenerate its model card. The weights are untouched; a signature
    is removed (the contract changed: sign again, `legion sign`)."""
    from legion_core.contracts.transitions import Transitions, parse_transitions

    bundle_dir = Path(bundle_dir)
    b = B.load(bundle_dir)
    data = yaml.safe_load((bundle_dir / CONTRACT_FILE).read_text())
    old = (
        parse_transitions(data["transitions"], b.skill_names) if data.get("transitions") else Transitions(())
    )
    data["transitions"] = old.merged(records).to_dict()
    parse_contract(data)
    (bundle_dir / CONTRACT_FILE).write_text(
        CONTRACT_HEADER + yaml.safe_dump(data, sort_keys=False, width=110)
    )
    if (bundle_dir / SIGNATURE_FILE).exists():
        (bundle_dir / SIGNATURE_FILE).unlink()
        print(
            f"{bundle_dir / SIGNATURE_FILE} removed: the contract changed; sign the bundle again (legion sign)"
        )
    (bundle_dir / MODEL_CARD_FILE).write_text(model_card(B.load(bundle_dir)))
    return bundle_dir


def fmt_rate(x: float | None) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"
