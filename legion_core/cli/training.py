"""`legion train`, `legion report`, `legion export`: a training run, from preset to policy bundle."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from legion_core.cli.common import add_command


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    s = add_command(
        subparsers,
        "train",
        help="train LEGION over a task stream from a preset (resumable)",
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
    s.set_defaults(func=run_train)

    s = add_command(
        subparsers,
        "report",
        help="render a run's plots: success curves, success matrix, latent space",
        description="Render PNG plots of a training run into RUN_DIR/plots/.\n\nexample:\n  legion report runs/smoke-...",
    )
    s.add_argument("run_dir")
    s.set_defaults(func=run_report)

    s = add_command(
        subparsers,
        "export",
        help="freeze a trained run into a policy bundle (bundle.yaml + safetensors + model card)",
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
    s.add_argument("--seed", type=int, default=None, metavar="N",
                   help="placements seed of the evaluation (default: the run's held-out eval_env_seed, 1)")  # fmt: skip
    s.add_argument("--skills", default=None, help="comma-separated subset of the run's skills to export")
    s.add_argument(
        "--sign",
        metavar="KEYFILE",
        default=None,
        help="sign the bundle with this private key (legion keygen)",
    )
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=run_export)


def _setup_logging(run_dir: Path | None) -> None:
    """Log to stderr and, for a run, also to RUN_DIR/train.log (kept with the run's checkpoints)."""
    import logging

    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(run_dir / "train.log"))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", handlers=handlers, force=True
    )


def run_train(args: argparse.Namespace) -> int:
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


def run_report(args: argparse.Namespace) -> int:
    from legion_core.training.report import render_report

    for p in render_report(args.run_dir):
        print(f"wrote {p}")
    return 0


def run_export(args: argparse.Namespace) -> int:
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
            eval_seed=args.seed,
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
