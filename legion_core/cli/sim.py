"""`legion tasks`, `legion setup`, `legion render`: the task registry and the simulator."""

from __future__ import annotations

import argparse
import time

from legion_core.cli.common import add_command


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    s = add_command(
        subparsers,
        "tasks",
        help="list the task/skill registry and task sets",
        description="List registered tasks (env, object, goal rule, success predicate, episode\n"
        "length).\n\nexamples:\n  legion tasks\n  legion tasks --set legion-mt10\n"
        "  legion tasks --set my_tasks.yaml",
    )
    s.add_argument("--set", help="a task set name (legion-mt10, mt10, cw10) or a YAML file")
    s.set_defaults(func=run_tasks)

    s = add_command(
        subparsers,
        "setup",
        help="generate the KUKA scene files and cache language embeddings",
        description="One-time generation of everything derived at install time:\n"
        "the KUKA iiwa 7 variants of every Meta-World v3 scene (in ~/.cache/legion or\n"
        "$LEGION_CACHE_DIR) and the MiniLM embeddings of every task description.",
    )
    s.add_argument("--force", action="store_true", help="regenerate even if the cache is current")
    s.set_defaults(func=run_setup)

    s = add_command(
        subparsers,
        "render",
        help="write a video of one episode (scripted expert or a bundle)",
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
    s.set_defaults(func=run_render)


def run_tasks(args: argparse.Namespace) -> int:
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


def run_setup(args: argparse.Namespace) -> int:
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


def run_render(args: argparse.Namespace) -> int:
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
