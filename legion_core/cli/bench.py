"""`legion bench <bench>`: the benchmarks (one module each in legion_core/bench), each printing a summary
and writing its JSON. Ratios against a baseline measured in the same invocation; never timed assertions in
tests."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from legion_core.cli.common import add_command, seed_option, write_json
from legion_core.contracts.interface import TOPIC_FLOOD_BENCH


# ------------------------------------------------------------------------------ shared argument sets
def _output_option(s: argparse.ArgumentParser, bench: str) -> None:
    """Where the JSON goes: out/bench_<bench>.json unless told."""
    s.add_argument("-o", "--output", default=f"out/bench_{bench}.json")


def _calls_option(s: argparse.ArgumentParser) -> None:
    s.add_argument("--calls", type=int, default=10000)


def _graph_bundle_option(s: argparse.ArgumentParser) -> None:
    """The bundle the runtime graph of the fault and soak benches runs."""
    s.add_argument("--bundle", default="models/legion-kuka", help="bundle directory")


def _js_rate_option(s: argparse.ArgumentParser, default_hz: float) -> None:
    s.add_argument(
        "--js-rate", type=float, default=default_hz, help="joint-state rate of the simulated driver [Hz]"
    )


def _publisher_option(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--publisher",
        choices=("thread", "loop"),
        default="thread",
        help="publish joint states from a thread of their own (default) or from the spin loop",
    )


def _print_help_of(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """`legion bench` without a bench: its help, exit 2 (a usage error)."""

    def run(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    return run


# ------------------------------------------------------------------------------------------- parser
def add_parser(subparsers: argparse._SubParsersAction) -> None:
    b = add_command(
        subparsers,
        "bench",
        help="benchmarks that write JSON (envs, sim2real, train, ...)",
        description="Benchmarks: ratios against a baseline measured in the same invocation,\n"
        "written as JSON. Never timed assertions in tests.",
    )
    bsub = b.add_subparsers(dest="bench", metavar="<bench>")
    b.set_defaults(func=_print_help_of(b))

    s = add_command(
        bsub,
        "envs",
        help="scripted-expert parity Sawyer vs KUKA, limit overshoot, env steps/s",
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
    _output_option(s, "envs")
    s.set_defaults(func=run_bench_envs)

    s = add_command(bsub, "sim2real", help="per-call cost of real2sim + sim2real (incl. IK): median, p99")
    _calls_option(s)
    _output_option(s, "sim2real")
    s.set_defaults(func=run_bench_sim2real)

    s = add_command(bsub, "inference", help="batch-1 latency: original eager-torch graph vs our numpy path")
    s.add_argument("bundle", help="bundle directory, e.g. models/legion-kuka")
    _calls_option(s)
    s.add_argument("--skill", default=None)
    _output_option(s, "inference")
    s.set_defaults(func=run_bench_inference)

    s = add_command(
        bsub, "runtime", help="end-to-end latency joint state -> command, composed vs cross-process"
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
    s.add_argument(
        "--seconds-500hz",
        type=float,
        default=None,
        help="measurement time of the 500 Hz mode [s] (default: --seconds; the target is 10 minutes: 600)",
    )
    s.add_argument(
        "--modes",
        default="composed,composed_dds,cross_process,composed_500hz",
        help="comma-separated modes to run (composed, composed_dds, cross_process, composed_500hz, and with the "
        "lbr_fri_ros2_stack emulator as the driver: lbr_composed, lbr_composed_500hz; composed with the operator "
        "console and a connected page: composed_console, compared with composed in `console_cost`)",
    )
    s.add_argument(
        "--floor",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="measure the compute floor first (three stages in process + one JointState DDS hop) and report "
        "every latency against it (default: on)",
    )
    s.add_argument(
        "--profile",
        action="store_true",
        help="sample each composed runtime process with py-spy during its window: raw stacks in the log "
        "directory, the top functions per thread in the JSON (docs/profiling.md)",
    )
    _output_option(s, "runtime")
    s.set_defaults(func=run_bench_runtime)

    s = add_command(
        bsub,
        "faults",
        help="fault drills: time from fault to hold and the displacement after it, per drill",
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
    _graph_bundle_option(s)
    _js_rate_option(s, 200.0)
    s.add_argument("--repeats", type=int, default=3, help="repeats of each drill")
    s.add_argument("--drills", default="", help="comma-separated subset of the drills (default: all)")
    _publisher_option(s)
    _output_option(s, "faults")
    s.set_defaults(func=run_bench_faults)

    s = add_command(
        bsub,
        "soak",
        help="minutes with a skill active at 1 kHz joint states: RSS growth, missed cycles, holds",
        description="The fault bench's graph with a skill active for --minutes: RSS of each runtime process\n"
        "every 10 s (growth and a linear fit), sim2real's missed command cycles (its /diagnostics), holds\n"
        "and their reasons, the joint-state rate achieved, and a wake-up probe's stalls over the window.\n\n"
        "examples:\n  legion bench soak -o out/bench_soak.json\n  legion bench soak --minutes 1 --js-rate 200",
    )
    _graph_bundle_option(s)
    s.add_argument("--minutes", type=float, default=10.0, help="soak duration [min]")
    _js_rate_option(s, 1000.0)
    _publisher_option(s)
    s.add_argument(
        "--cycle-s",
        type=float,
        default=30.0,
        help="send the arm home and start the skill again every this many seconds, so that it keeps moving "
        "(0 = the skill stays active throughout, the arm still once the button is pressed)",
    )
    _output_option(s, "soak")
    s.set_defaults(func=run_bench_soak)

    s = add_command(
        bsub, "transfer", help="per skill: success in the simulator vs through the ROS graph on the twin"
    )
    s.add_argument("bundle", help="bundle directory")
    s.add_argument("--episodes", type=int, default=10, help="placements per skill")
    seed_option(s)
    _output_option(s, "transfer")
    s.set_defaults(func=run_bench_transfer)

    s = add_command(
        bsub, "grounding", help="language grounding accuracy and refusals on the tune and held-out sets"
    )
    s.add_argument(
        "--path", default=None, help="evaluation set YAML (default tests/data/grounding/commands.yaml)"
    )
    _output_option(s, "grounding")
    s.set_defaults(func=run_bench_grounding)

    s = add_command(
        bsub,
        "longhorizon",
        help="success of a 3-skill command over seeded multi-object scenes through the ROS graph",
        description="One sim graph (twin in the bundle's scene, runtime, task sequencer); per seeded scene the\n"
        "twin is reset, the command is sent on /legion/execute_task, and the result is scored.\n"
        "Failures are listed by the skill that failed, with the sequencer's reason.\n\n"
        "examples:\n  legion bench longhorizon models/legion-kuka --scenes 20\n"
        "  legion bench longhorizon models/legion-kuka --scenes 5 --seed 7   # other placements than the card's\n"
        "  legion bench longhorizon models/legion-kuka --command 'open the drawer, then close the drawer' \\\n"
        "      --record-transitions   # evaluate a pair and record it in the bundle (the grounder runs verified pairs)",
    )
    s.add_argument("bundle", help="bundle directory (trained in a multi-object scene)")
    s.add_argument("--scenes", type=int, default=20, help="seeded scenes (placement indices) to run")
    s.add_argument("--first", type=int, default=0, help="first placement index")
    s.add_argument("--command", default=None, help="operator command (default: the scene's demo command)")
    seed_option(s)
    s.add_argument("--record-transitions", action="store_true",
                   help="write the counts of every consecutive pair of the chains into the bundle's `transitions` "
                        "(the grounder then runs only verified pairs; docs/operator-input.md)")  # fmt: skip
    s.add_argument("--from-json", default=None, metavar="FILE",
                   help="take the chains from this earlier `legion bench longhorizon` JSON instead of running them")  # fmt: skip
    _output_option(s, "longhorizon")
    s.set_defaults(func=run_bench_longhorizon)

    s = add_command(
        bsub,
        "perception",
        help="camera perception: perception_node latency at 30 Hz on one core; the chain's success with images",
        description="Two measurements in one invocation (docs/perception.md):\n"
        "1. perception_node alone on one core, fed pre-rendered 640x480 frames at 30 Hz: image stamp ->\n"
        "   detections published, median/p99/max, and the share of frames dropped (target p99 < 15 ms);\n"
        "2. the bundle's chain on the same seeded scenes with simulator-state detections and with the twin's\n"
        "   rendered camera in the loop: the ratio of their success rates (target >= 0.95).\n\n"
        "examples:\n  legion bench perception --bundle models/legion-kuka --scenes 20\n"
        "  legion bench perception --no-chain --seconds 30   # the latency alone",
    )
    _graph_bundle_option(s)
    s.add_argument("--scenes", type=int, default=20, help="seeded scenes of the chain comparison")
    s.add_argument("--first", type=int, default=0, help="first placement index")
    s.add_argument("--seconds", type=float, default=20.0, help="length of the 30 Hz latency run [s]")
    s.add_argument("--camera-rate", type=float, default=None, help="the twin's camera rate in the chain [Hz]")
    s.add_argument("--no-chain", action="store_true", help="only the latency measurement")
    seed_option(s)
    s.add_argument("--figure", default="out/perception.png",
                   help="also write the twin beside its camera's image with the detected tags ('' = none)")  # fmt: skip
    _output_option(s, "perception")
    s.set_defaults(func=run_bench_perception)

    s = add_command(
        bsub, "train", help="LEGION update rate vs stable-baselines3 SAC, env steps/s, DPMM refit"
    )
    s.add_argument("--device", default="cpu", help="cpu or cuda")
    _output_option(s, "train")
    s.set_defaults(func=run_bench_train)

    s = add_command(
        bsub,
        "record",
        help="bag recording throughput: a JointState flood per rate, reliable and best effort, drops",
        description="A child process publishes JointState messages at each rate (reliable, then best effort)\n"
        "while the recorder of `legion record` writes them here: published, received, written, drops, missing\n"
        "messages and whether they arrived in order. One JSON line per rate and reliability.\n\n"
        "example:\n  legion bench record --rates 2000 5000 10000 --seconds 2",
    )
    s.add_argument("--rates", type=float, nargs="+", default=[2000.0, 5000.0], help="publish rates [msg/s]")
    s.add_argument("--seconds", type=float, default=2.0, help="publishing time per rate [s]")
    s.add_argument("--out", default=None, help="directory for the bags (default: a temp dir)")
    s.set_defaults(func=run_bench_record)

    # The record bench's publisher, run as its child process; not a bench of its own, so not listed.
    s = bsub.add_parser("flood", description="Publish COUNT JointState messages at RATE once subscribed.")
    s.add_argument("--topic", default=TOPIC_FLOOD_BENCH)
    s.add_argument("--rate", type=float, default=2000.0)
    s.add_argument("--count", type=int, default=4000)
    s.add_argument("--best-effort", action="store_true")
    s.set_defaults(func=run_flood)


# ------------------------------------------------------------------------------------------ benches
def run_bench_envs(args: argparse.Namespace) -> int:
    from legion_core.bench.parity import parity_report
    from legion_core.contracts.tasks import get_task_set

    names = [t.name for t in get_task_set(args.tasks)]
    rep = parity_report(names, episodes=args.episodes, seed=args.seed, progress=not args.quiet)
    print(f"\n{'task':24s} sawyer  kuka  parity  overshoot[rad]  steps/s sawyer  kuka  ratio")
    for r in rep["tasks"]:
        print(
            f"{r['task']:24s} {r['sawyer_successes']:3d}/{r['episodes']} {r['kuka_successes']:3d}  "
            f"{'ok' if r['parity_ok'] else 'FAIL':6s}  {r['kuka_max_joint_limit_overshoot_rad']:.3f}          "
            f"{r['sawyer_env_steps_per_s']:6.0f}  {r['kuka_env_steps_per_s']:6.0f}  {r['kuka_over_sawyer_steps_ratio']:.2f}"
        )
    write_json(rep, args.output)
    return 0 if rep["all_parity_ok"] else 1


def run_bench_sim2real(args: argparse.Namespace) -> int:
    from legion_core.bench.sim2real import run_bench

    rep = run_bench(n_calls=args.calls)
    print(json.dumps(rep, indent=2, default=float))
    write_json(rep, args.output)
    return 0


def run_bench_inference(args: argparse.Namespace) -> int:
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
    write_json(rep, args.output)
    return 0


def _modes(text: str) -> tuple[str, ...]:
    from legion_core.bench.runtime import MODES

    modes = tuple(m.strip() for m in text.split(",") if m.strip())
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise SystemExit(f"--modes: unknown mode(s) {bad}; choose from {', '.join(MODES)}")
    return modes


def run_bench_runtime(args: argparse.Namespace) -> int:
    from legion_core.bench.runtime import MODES, run_bench

    rep = run_bench(
        args.bundle,
        seconds=args.seconds,
        realtime_priority=args.realtime_priority,
        subscriber=args.subscriber,
        runtime_cpus=args.runtime_cpus,
        modes=_modes(args.modes),
        floor=args.floor,
        profile=args.profile,
        seconds_500hz=args.seconds_500hz,
    )
    fl = rep.get("floor")
    if fl and fl.get("floor_ms"):
        pc, ht = fl["paced"], fl["hot"]
        print(
            f"floor          {fl['floor_ms']:.2f} ms = real2sim {pc['real2sim_ms']['median']:.3f} + policy "
            f"{pc['policy_ms']['median']:.3f} + sim2real {pc['sim2real_ms']['median']:.3f} (paced, one call per "
            f"{pc['pace_s'] * 1e3:.0f} ms) + JointState DDS hop {fl['joint_state_dds_hop_ms']['median']:.3f} ms "
            f"(medians)\n{'':14s} hot loop: {fl['floor_hot_ms']:.2f} ms (real2sim {ht['real2sim_ms']['median']:.3f}"
            f" + policy {ht['policy_ms']['median']:.3f} + sim2real {ht['sim2real_ms']['median']:.3f} + hop)"
        )
    for mode in MODES:
        r = rep.get(mode)
        if r:
            lm, ls = r["latency_ms"], r["stamp_to_command_sent_ms"]
            if not r["policy_steps"]:
                print(f"{mode:14s} no policy step measured (node logs in {rep['log_dir']})")
                continue
            sent = f"median {ls['median']:.2f} p99 {ls['p99']:.2f} max {ls['max']:.2f} ms"
            if "vs_floor" in r:
                vf = r["vs_floor"]
                sent += f" ({vf['median']:.1f}x / {vf['p99']:.1f}x the floor)"
            got = (f"median {lm['median']:.2f} p99 {lm['p99']:.2f} max {lm['max']:.2f} ms" if lm["n"]
                   else "not measured (--no-subscriber)")  # fmt: skip
            rs, rr = r["sent"], r["received"]
            late = rs["tick_late_ms"]
            print(
                f"{mode:14s} stamp -> command sent: {sent} | -> received by a subscriber: {got} "
                f"({r['policy_steps']} steps)\n{'':14s} {r['command_rate_hz_set']:.0f} Hz command cycles missed "
                f"{rs['missed_cycles']} of {rs['timer_ticks']} ({rs['missed_cycles_outside_machine_stalls']} outside "
                f"machine stalls), cycle late p99 {late['p99'] or 0:.2f} max {late['max'] or 0:.2f} ms; "
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
                    f"{k['near_stall']} of {k['events']} cycles over half a period late "
                    f"({k['near_stall_by_chance']:.1f} by chance)"
                )
    print(f"targets met: {rep['targets_met']}")
    write_json(rep, args.output)
    return 0


def run_bench_faults(args: argparse.Namespace) -> int:
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
    write_json(rep, args.output)
    return 0


def run_bench_soak(args: argparse.Namespace) -> int:
    from legion_core.bench.soak import run_soak

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
    write_json(rep, args.output)
    return 0


def run_bench_transfer(args: argparse.Namespace) -> int:
    from legion_core.bench.transfer import run_bench

    rep = run_bench(args.bundle, episodes=args.episodes, seed=args.seed)
    for k, v in rep["skills"].items():
        print(
            f"{k:24s} simulator {v['sim_successes']:2d}/{v['episodes_run']}  ROS graph on twin "
            f"{v['graph_successes']:2d}/{v['episodes_run']}  ratio {v['ratio']}  (not run: {v['not_run_reset_failed']})"
        )
    print(f"min ratio {rep['min_ratio']} (target >= {rep['target_ratio']})")
    write_json(rep, args.output)
    return 0


def run_bench_longhorizon(args: argparse.Namespace) -> int:
    from legion_core.bench.longhorizon import run_bench

    if args.from_json:
        rep = json.loads(Path(args.from_json).read_text())
    else:
        rep = run_bench(args.bundle, scenes=args.scenes, command=args.command, first_variation=args.first,
                        seed=args.seed)  # fmt: skip
    print(f"command: {rep['command']!r} -> plan {' -> '.join(rep['plan'])} in scene {rep['scene']}")
    print(f"chains succeeded: {rep['successes']}/{rep['scenes']} ({rep['success_rate']:.0%}); "
          f"chain time median {rep['chain_time_s']['median']:.1f} s, max {rep['chain_time_s']['max']:.1f} s")  # fmt: skip
    for skill, reasons in rep["failures_by_skill"].items():
        print(f"  failed at {skill}: {len(reasons)}")
        for r in reasons[:5]:
            print(f"    {r}")
    if not args.from_json:
        write_json(rep, args.output)
    if args.record_transitions:
        from legion_core.contracts.transitions import transitions_from_chains
        from legion_core.training.export import record_transitions

        source = (f"legion bench longhorizon: {rep['command']!r}, {rep['scenes']} scenes, seed {rep['seed']}"
                  + (f" ({args.from_json})" if args.from_json else ""))  # fmt: skip
        records = transitions_from_chains(rep["per_scene"], source)
        record_transitions(args.bundle, records)
        for r in records:
            print(
                f"transition {r.from_skill} -> {r.to_skill}: {r.successes}/{r.attempts} recorded in {args.bundle}"
            )
    return 0


def run_bench_perception(args: argparse.Namespace) -> int:
    from legion_core.bench.perception import run_bench

    rep = run_bench(args.bundle, scenes=args.scenes, first_variation=args.first, latency_seconds=args.seconds,
                    camera_rate_hz=args.camera_rate, chain=not args.no_chain, seed=args.seed)  # fmt: skip
    lat = rep["latency"]
    print(f"perception_node on CPU {lat['cpu_affinity']}, {lat['image']} at {lat['rate_hz']:.0f} Hz: latency median "
          f"{lat['latency_ms']['median']:.2f} ms, p99 {lat['latency_ms']['p99']:.2f} ms, max {lat['latency_ms']['max']:.2f} ms; "
          f"dropped {lat['dropped_share']:.1%} of {lat['frames_sent']} frames")  # fmt: skip
    if "chain" in rep:
        c = rep["chain"]
        print(f"chain: ground truth {c['ground_truth']['successes']}/{c['ground_truth']['scenes']}, camera in the loop "
              f"{c['camera_in_the_loop']['successes']}/{c['camera_in_the_loop']['scenes']}: ratio {c['success_ratio']:.2f}")  # fmt: skip
    print(f"meets targets: {rep['meets_targets']}")
    write_json(rep, args.output)
    if args.figure:
        from legion_core.tools.perception_figure import perception_figure

        print(f"figure: {perception_figure(args.figure)}")
    return 0


def run_bench_grounding(args: argparse.Namespace) -> int:
    from legion_core.bench.grounding import run_bench, summary_lines

    rep = run_bench() if not args.path else run_bench(args.path)
    for line in summary_lines(rep):
        print(line)
    write_json(rep, args.output)
    return 0


def run_bench_train(args: argparse.Namespace) -> int:
    from legion_core.bench.train import run_bench

    rep = run_bench(device=args.device)
    print(json.dumps(rep, indent=2, default=float))
    write_json(rep, args.output)
    return 0


def run_bench_record(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    from legion_core.bench.bags import measure_throughput

    out = Path(args.out or tempfile.mkdtemp(prefix="legion_record_bench_"))
    for r in args.rates:
        for rel in (True, False):
            print(json.dumps(measure_throughput(out, r, args.seconds, rel)), flush=True)
    return 0


def run_flood(args: argparse.Namespace) -> int:
    from legion_core.bench.bags import flood_publish
    from legion_core.tools.ros_env import ensure_workspace

    ensure_workspace()
    return flood_publish(args.topic, args.rate, args.count, not args.best_effort)
