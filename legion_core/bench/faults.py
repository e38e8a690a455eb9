"""`legion bench faults`: how fast and how far the runtime graph stops under each fault it is built to
catch (the rig: legion_core/bench/fault_rig.py).

Per drill (docs/architecture.md, "Safety layers"; sim2real/supervisor.py): the fault time t_f is taken just
before the fault is published (or the node killed), at a moment the arm is moving; the commands received
after it are judged:
- `time_to_hold_ms`: receive time of the first command from which every later command is identical (to
  1e-12), minus t_f. Holding = repeating the last command sent, so this is when the commanded posture
  stopped changing. Measured at this process, so it includes one DDS hop and this process's wake-up.
- `cause_status_ms` / `cause_decided_ms`: the first /legion/status of sim2real_node naming the cause (and
  its text), as received here and as stamped by sim2real (when it decided, without the delivery). The
  decision is judged against the same target: the commands can stop before the runtime decides anything
  (a segment that ends while a dead policy sends no new action).
- `max_displacement_rad`: max over post-fault commands of max|q - q_before| (q_before: the last command
  received before t_f).
- `beyond_in_flight_rad`: max over post-fault commands of max|q - q_first| (q_first: the first command
  received after t_f, the one that may have been in flight at the fault). For dead nodes, which the runtime
  can only notice after two of their periods, the segment being executed continues until then:
  `beyond_in_flight_segments_rad` measures motion outside the segments the runtime had planned from data
  before the fault (no new motion after the fault), and is the one judged for them (see `targets`).
- tracking_error steps the command to the measured posture instead of keeping it (a blocked arm must not
  be pushed): its largest per-period step is reported and judged against the per-period joint step limit.
"""

from __future__ import annotations

import math
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from legion_core.base.stats import percentile
from legion_core.bench.fault_rig import (
    COMMAND_PERIOD_S,
    DETECTION_RATE_HZ,
    HEARTBEAT_PERIOD_S,
    IMPLAUSIBLE_SIM_M,
    LIVENESS_PERIODS,
    OBJECT_SIM_M,
    POLICY_FQN,
    REAL2SIM_FQN,
    SKILL,
    STALE_STAMP_S,
    TOL,
    TRACKING_OFFSET_RAD,
    Rig,
    analyse_commands,
    dq_max_per_period,
    machine_info,
    reason_key,
    runq_wait_s,
    stalls_near,
    summarise,
    switch_interval,
)
from legion_core.bench.runtime import (
    STALL_S,
    _read_latency_log,
    _read_wakeup_probe,
    _start_wakeup_probe,
    _stats_ms,
    _steal_s,
)


@dataclass(frozen=True)
class Drill:
    name: str
    causes: tuple[str, ...]  # words of sim2real's status naming the cause (any of them)
    target_ms: float | None  # time_to_hold target [ms]; None: judged on its steps (tracking error)
    displacement: str  # which displacement figure is judged == 0: first | segments | steps
    observe_s: float  # how long the commands are recorded after the fault [s]
    what: str


ONE_PERIOD_MS = COMMAND_PERIOD_S * 1e3
DEAD_MS = (LIVENESS_PERIODS * HEARTBEAT_PERIOD_S + COMMAND_PERIOD_S) * 1e3
DRILLS: dict[str, Drill] = {
    d.name: d
    for d in (
        Drill("estop_topic", ("e-stop topic",), ONE_PERIOD_MS, "first", 0.5, "std_msgs/Bool True on /legion/estop"),
        Drill("estop_service", ("e-stop service",), ONE_PERIOD_MS, "first", 0.5, "/sim2real_node/estop (Trigger)"),
        Drill("hw_estop", ("hardware e-stop input",), ONE_PERIOD_MS, "first", 0.5,
              "True on /legion/estop_hw (released before re-arm)"),
        Drill("dead_policy", (POLICY_FQN,), DEAD_MS, "segments", 0.7, "SIGKILL to policy_node's process"),
        Drill("dead_real2sim", (REAL2SIM_FQN,), DEAD_MS, "segments", 0.7, "SIGKILL to real2sim_node's process"),
        # sim2real's own stamp check, or real2sim's (an invalid observation), whichever reaches it first
        Drill("stale_stamps", ("stamped", "joints: stale"), ONE_PERIOD_MS, "first", 0.5,
              f"the driver stamps joint states {STALE_STAMP_S} s in the past"),
        Drill("implausible_detection", ("outside the skill's workspace",), ONE_PERIOD_MS, "first", 0.5,
              f"the object detected at {list(IMPLAUSIBLE_SIM_M)} m (sim_world)"),
        Drill("nan_detection", ("non-finite position",), ONE_PERIOD_MS, "first", 0.5, "the object detected at NaN"),
        Drill("tracking_error", ("tracking error",), None, "steps", 1.2,
              f"the driver reports A2 {TRACKING_OFFSET_RAD} rad from the command (a blocked arm)"),
    )
}  # fmt: skip


def judge_drill(drill: Drill, runs: list[dict], dq_tol: float = 1e-9) -> dict:
    """Targets of one drill over its repeats: every repeat held within the target time (or, for the
    tracking error, no step above the per-period limit) and moved nothing beyond the command in flight."""
    ok: dict[str, bool] = {}
    if drill.target_ms is not None:
        hold = [r["time_to_hold_ms"] for r in runs]
        ok["time_to_hold"] = bool(runs) and all(h is not None and h <= drill.target_ms for h in hold)
        # The commands can stop before the runtime decides (a segment that ends while a dead policy sends
        # nothing): sim2real must also have decided the hold, naming its cause, within the target (its
        # status's own stamp: the delivery to the driver is in time_to_hold).
        decided = [r.get("cause_decided_ms") for r in runs]
        ok["cause_decided_within_target"] = bool(runs) and all(
            x is not None and x <= drill.target_ms for x in decided
        )
    if drill.displacement == "first":
        ok["nothing_beyond_in_flight"] = bool(runs) and all(
            r["beyond_in_flight_rad"] is not None and r["beyond_in_flight_rad"] <= TOL for r in runs
        )
    elif drill.displacement == "segments":
        ok["nothing_beyond_in_flight_segments"] = bool(runs) and all(
            r["beyond_in_flight_segments_rad"] is not None and r["beyond_in_flight_segments_rad"] <= TOL
            for r in runs
        )
    else:
        ok["no_step_over_limit"] = bool(runs) and all(
            r["step_over_limit_rad"] is not None and r["step_over_limit_rad"] <= dq_tol for r in runs
        )
        ok["reached_measured_posture"] = bool(runs) and all(r.get("reached_measured") for r in runs)
    ok["cause_named"] = bool(runs) and all(
        r.get("cause_status_ms") is not None or r.get("cause_report_ms") is not None for r in runs
    )
    return ok


# -------------------------------------------------------------------------------------------- faults
def _inject(rig: Rig, drill: str) -> None:
    with rig.lock:  # the publisher thread sends nothing between the change and the first faulty message
        _inject_locked(rig, drill, time.time())


def _inject_locked(rig: Rig, drill: str, now: float) -> None:
    if drill == "estop_topic":
        rig.estop_pub.publish(rig._Bool(data=True))
    elif drill == "estop_service":
        rig._estop_future = rig.estop_cli.call_async(rig._Trigger.Request())
    elif drill == "hw_estop":
        rig.hw_pub.publish(rig._Bool(data=True))
    elif drill == "dead_policy":
        rig.kill("policy")
    elif drill == "dead_real2sim":
        rig.kill("real2sim")
    elif drill == "stale_stamps":
        rig.stamp_age = STALE_STAMP_S
        rig.publish_js(now)  # the first stale message goes out at the fault, not at the next slot
    elif drill in ("implausible_detection", "nan_detection"):
        rig.obj = np.array(IMPLAUSIBLE_SIM_M if drill == "implausible_detection" else (math.nan,) * 3)
        rig.publish_det(now)
    elif drill == "tracking_error":
        q = rig.cmds[-1][1].copy()
        q[1] += TRACKING_OFFSET_RAD
        rig.fixed_q = q
        rig.publish_js(now)
    else:
        raise ValueError(f"unknown drill {drill!r}; drills: {list(DRILLS)}")


def _recover(rig: Rig, drill: str) -> None:
    """Clear the fault and bring the graph back to motion (re-arm, restart a killed node, the skill again)."""
    rig.stamp_age = 0.0
    rig.obj = np.array(OBJECT_SIM_M, float)
    del rig.reports[:-200]  # a drill looks 2 s back at most
    if drill in ("dead_policy", "dead_real2sim"):
        name = drill.split("_", 1)[1]
        rig.procs[name].wait(10)
        rig.start(name)
        rig.wait_alive()
    if drill == "hw_estop":
        rig.hw_pub.publish(rig._Bool(data=False))
        rig.spin(0.05)
    rig.call_until_ok(rig.rearm_cli, 10, 0.2, f"the re-arm after {drill}")
    rig.rehome()


def _run_drill(rig: Rig, drill: Drill, dq_max, rng) -> dict:
    # Fault at a random moment of the motion (not always at the same phase of a segment), right after a
    # command that moved: the arm is moving at t_f.
    rig.spin(float(rng.uniform(0.15, 0.6)))

    # Within 50 ms of the start of a policy step (segments last ~100 ms here): the arm would go on moving
    # for several periods if nothing stopped it, so a late hold shows in the commands.
    def moving_now():
        now = time.time()
        step = next((t for t, m in reversed(rig.reports) if not m.hold), -math.inf)
        return rig.moving(2) and now - rig.cmds[-1][0] < 0.005 and now - step < 0.05

    rig.spin(until=moving_now, timeout=10, what="a moving command early in a policy step")
    from legion_core.ros.common import stamp_to_s

    hb_node = {"dead_policy": POLICY_FQN, "dead_real2sim": REAL2SIM_FQN}.get(drill.name)
    hb_name = {"dead_policy": "policy", "dead_real2sim": "real2sim"}.get(drill.name)  # killed at t_f
    n_before = len(rig.cmds)
    q_before = rig.cmds[-1][1].copy()
    t_f = time.time()
    _inject(rig, drill.name)
    # Run-queue wait of each runtime process's main thread (its executor) over the first 60 ms: time it
    # was ready to run but had no CPU, what a busy 2-core machine costs a hold (the sleeping wake-up probe
    # rarely waits: the scheduler favours a task that slept).
    pids = {n: p.pid for n, p in rig.procs.items() if p.poll() is None and n != hb_name}
    pids["bench"] = os.getpid()
    w0 = {n: runq_wait_s(pid) for n, pid in pids.items()}
    rig.spin(0.06)
    w1 = {n: runq_wait_s(pid) for n, pid in pids.items()}
    rig.spin(max(0.0, drill.observe_s - 0.06))
    cmds = rig.cmds[n_before:]
    times = [t for t, _ in cmds]
    qs = [q for _, q in cmds]
    # Segments planned from data before the fault: the one executing at t_f and any started after it from
    # pre-fault sensor data (CommandReport stamps carry the joint-state stamp behind the step).
    steps = [(t, m) for t, m in rig.reports if not m.hold and t >= t_f - 2.0]
    before = [m for t, m in steps if t < t_f]
    after_pre = [m for t, m in steps if t >= t_f and stamp_to_s(m.header.stamp) < t_f]
    after_post = [m for t, m in steps if t >= t_f and stamp_to_s(m.header.stamp) >= t_f]
    targets = [np.array(m.q_requested) for m in ([before[-1]] if before else []) + after_pre]
    res = analyse_commands(times, qs, t_f, q_before, dq_max, targets)

    def names(text: str) -> bool:
        return any(c in text for c in drill.causes)

    named = [(t, m) for t, m in rig.s2r_status_since(t_f) if names(m.message)]
    res["cause_status_ms"] = (named[0][0] - t_f) * 1e3 if named else None
    # When sim2real decided: the header stamp of that status (its clock, the same system clock as t_f), i.e.
    # without the delivery to this process.
    res["cause_decided_ms"] = (stamp_to_s(named[0][1].header.stamp) - t_f) * 1e3 if named else None
    res["cause_status"] = named[0][1].message if named else None
    res["statuses_after"] = [m.message for _, m in rig.s2r_status_since(t_f)][:4]
    held = [(t, m.reason) for t, m in rig.reports if t >= t_f and m.hold]
    seen: list = []
    for t, why in held:
        if reason_key(why) not in [reason_key(w) for _, w in seen]:
            seen.append(((t - t_f) * 1e3, why))
    res["hold_reasons_after"] = seen[:5]  # each distinct hold reason of sim2real's reports, first time [ms]
    rep = [t for t, why in held if names(why)]
    res["cause_report_ms"] = (rep[0] - t_f) * 1e3 if rep else None
    sf = [t for t, m in rig.safety if t >= t_f and names(" ".join([m.reason, m.estop_reason, *m.silent_nodes,
                                                                   *m.dead_nodes]))]  # fmt: skip
    res["cause_safety_state_ms"] = (sf[0] - t_f) * 1e3 if sf else None
    firsts = [
        x
        for x in (res["cause_status_ms"], res["cause_safety_state_ms"], res["cause_report_ms"])
        if x is not None
    ]
    res["cause_named_ms"] = min(firsts) if firsts else None  # the first of the three to name the cause
    res["runqueue_wait_first_60ms_ms"] = {
        n: round((w1[n] - w0[n]) * 1e3, 2) for n in w0 if w0[n] is not None and w1.get(n) is not None
    }
    res["new_policy_steps_from_post_fault_data"] = len(after_post)
    res["t_fault"] = t_f
    res["q_before"] = q_before.tolist()
    if hb_node:
        # sim2real's bound: two heartbeat periods after the last one, then its next tick.
        res["last_heartbeat_sent_before_fault_ms"] = (rig.last_hb_sent_before(hb_node, t_f) - t_f) * 1e3
    if drill.name == "tracking_error":
        target = q_before.copy()
        target[1] += TRACKING_OFFSET_RAD
        res["reached_measured"] = bool(qs) and float(np.max(np.abs(qs[-1] - target))) < 1e-9
        res["max_step_over_dq_max_ratio"] = (
            float(np.max(np.abs(np.diff(np.vstack([q_before, *qs]), axis=0)) / dq_max)) if qs else None
        )
    if drill.name == "estop_service":
        fut = getattr(rig, "_estop_future", None)
        res["service_reply"] = fut.result().message if fut is not None and fut.done() else None
    return res


def run_bench(
    bundle: str = "models/legion-kuka",
    js_rate_hz: float = 200.0,
    repeats: int = 3,
    drills=tuple(DRILLS),
    skill: str = SKILL,
    seed: int = 0,
    progress: bool = True,
    publisher: str = "thread",
) -> dict:
    """Run every drill `repeats` times on the graph (three processes) and judge them (module docstring).
    `publisher`: how joint states are published, from a thread of their own or from the spin loop."""
    with switch_interval():
        return _run_bench(bundle, js_rate_hz, repeats, drills, skill, seed, progress, publisher)


def _run_bench(bundle, js_rate_hz, repeats, drills, skill, seed, progress, publisher) -> dict:
    from tqdm import tqdm

    unknown = [d for d in drills if d not in DRILLS]
    if unknown:
        raise ValueError(f"unknown drill(s) {unknown}; drills: {list(DRILLS)}")
    tmp = Path(tempfile.mkdtemp(prefix="legion_bench_faults_"))
    rng = np.random.default_rng(seed)
    dq_max = dq_max_per_period()
    probe = _start_wakeup_probe(tmp / "wakeup.json")
    rig = Rig(bundle, skill, js_rate_hz, tmp, latency_log=True, publisher=publisher)
    t_start = time.time()
    steal0 = _steal_s()
    machine0 = machine_info()
    per: dict[str, list[dict]] = {d: [] for d in drills}
    errors: list[str] = []
    try:
        for name in ("sim2real", "real2sim", "policy"):
            rig.start(name)
        rig.spin(until=lambda: rig.js_pub.get_subscription_count() >= 2 and rig.estop_pub.get_subscription_count() >= 1
                 and rig.hw_pub.get_subscription_count() >= 1, timeout=60, what="the graph's subscriptions")  # fmt: skip
        rig.wait_alive(timeout=90)
        rig.rehome(timeout=60)
        order = [d for _ in range(repeats) for d in drills]
        bar = tqdm(order, desc="fault drills", unit="drill", disable=not progress)
        for name in bar:
            bar.set_postfix_str(name)
            try:
                per[name].append(_run_drill(rig, DRILLS[name], dq_max, rng))
            except (TimeoutError, RuntimeError) as e:
                errors.append(f"{name}: {e}")
                per[name].append({"error": str(e)})
            try:
                _recover(rig, name)
            except (TimeoutError, RuntimeError, subprocess.TimeoutExpired) as e:
                errors.append(f"{name}: recovery failed ({e}); the graph was restarted")
                rig.restart_graph()
    finally:
        t_end = time.time()
        steal1 = _steal_s()
        rig.stop_all()
        rig.stop_publisher()
        from legion_core.tools.ros_env import stop_process_group

        stop_process_group(probe, 10)
        rig.node.destroy_node()
    wake = _read_wakeup_probe(tmp / "wakeup.json", (t_start, t_end))
    ticks = []
    for k in range(rig.starts.get("sim2real", 0)):
        log = _read_latency_log(tmp / f"sim2real-latency-{k}.json")
        ticks += list(zip(log["tick_time_s"], log["tick_late_s"], log["tick_skipped"]))
    drills_out: dict = {}
    met_all = True
    for name in drills:
        d = DRILLS[name]
        runs = [r for r in per[name] if "error" not in r]
        for r in runs:
            t_f = r["t_fault"]
            # The window a late hold would show in: until the hold and the cause were both seen (for the
            # tracking error, whose commands move on purpose, until the cause was named).
            ends = [r["cause_named_ms"]] + ([r["time_to_hold_ms"]] if d.target_ms is not None else [])
            t_end_w = t_f + max([x for x in ends if x is not None] or [0.0]) * 1e-3
            r["probe_stalls_near"] = stalls_near(wake, t_f, t_end_w)
            # sim2real's timer ticks from the fault to one period after the hold: (when [ms after t_f], how
            # late [ms], periods skipped).
            r["sim2real_ticks_in_window"] = [
                (round((t - t_f) * 1e3, 2), round(late * 1e3, 2), k) for t, late, k in ticks if t_f <= t <= t_end_w + 0.011
            ][:12]  # fmt: skip
            late_hold = d.target_ms is not None and not (
                r["time_to_hold_ms"] is not None and r["time_to_hold_ms"] <= d.target_ms
                and r["cause_decided_ms"] is not None and r["cause_decided_ms"] <= d.target_ms
            )  # fmt: skip
            # A late hold beside machine contention: the probe woke > 1 ms late near it, or a process of the
            # path (the graph's, or this one: the driver) waited a whole command period for a CPU in the
            # first 60 ms. Where neither holds, the time went to the runtime itself.
            waits = r.get("runqueue_wait_first_60ms_ms") or {}
            r["late_hold_with_machine_contention"] = (
                {"probe_stall": any(late > 1.0 for _, late in r["probe_stalls_near"]),
                 "cpu_wait": any(w >= ONE_PERIOD_MS for w in waits.values())}
                if late_hold else None
            )  # fmt: skip
        ok = judge_drill(d, runs) if len(runs) == len(per[name]) else {"all_repeats_ran": False}
        met = bool(ok) and all(ok.values())
        met_all &= met
        drills_out[name] = {
            "fault": d.what,
            "target_time_to_hold_ms": d.target_ms,
            "judged_displacement": {"first": "beyond_in_flight_rad == 0", "segments":
                                    "beyond_in_flight_segments_rad == 0 (the segment executing at the fault "
                                    "may finish until the node is noticed silent)",
                                    "steps": "every per-period step <= the joint step limit"}[d.displacement],
            "time_to_hold_ms": summarise([r.get("time_to_hold_ms") for r in per[name]]),
            "cause_decided_ms": summarise([r.get("cause_decided_ms") for r in per[name]]),
            "cause_named_ms": summarise([r.get("cause_named_ms") for r in per[name]]),
            "cause_status_ms": summarise([r.get("cause_status_ms") for r in per[name]]),
            "max_displacement_rad": summarise([r.get("max_displacement_rad") for r in per[name]]),
            "beyond_in_flight_rad": summarise([r.get("beyond_in_flight_rad") for r in per[name]]),
            "beyond_in_flight_segments_rad": summarise([r.get("beyond_in_flight_segments_rad") for r in per[name]]),
            "max_step_rad": summarise([r.get("max_step_rad") for r in per[name]]),
            "checks": ok,
            "meets_targets": met,
            "repeats": per[name],
        }  # fmt: skip
    js_rate = len([t for t in rig.js_sent if t_start <= t <= t_end]) / max(1e-9, t_end - t_start)
    gaps = np.diff(np.asarray(rig.js_sent, float)) if len(rig.js_sent) > 1 else np.zeros(0)
    return {
        "bench": "faults",
        "bundle": bundle,
        "skill": skill,
        "graph": "real2sim_node, policy_node, sim2real_node: one process each, DDS between them (loopback)",
        "repeats": repeats,
        "log_dir": str(tmp),
        "window_s": [t_start, t_end],
        "machine": {**machine0, "load_average_1_5_15_end": list(os.getloadavg())},
        "joint_states": {
            "publisher": publisher,
            "rate_hz_asked": js_rate_hz,
            "rate_hz_achieved": js_rate,
            "longest_gap_ms": float(gaps.max() * 1e3) if gaps.size else None,
            "gap_p99_ms": percentile(gaps, 99) * 1e3 if gaps.size else None,
            "slots_skipped": rig.js_late_skipped,
        },  # fmt: skip
        "detections_hz": DETECTION_RATE_HZ,
        "object_sim_m": list(OBJECT_SIM_M),
        "command_period_ms": ONE_PERIOD_MS,
        "heartbeat_period_ms": HEARTBEAT_PERIOD_S * 1e3,
        "joint_step_limit_rad": dq_max.tolist(),
        "sim2real_missed_cycles": int(sum(k for _, _, k in ticks)) if ticks else None,
        "sim2real_tick_late_ms": _stats_ms([late for _, late, _ in ticks]),
        "machine_wakeup_late_ms": _stats_ms([late for _, late in wake]),
        "machine_stalls_over_1ms": int(sum(1 for _, late in wake if late > STALL_S)),
        "machine_steal_ms": (steal1 - steal0) * 1e3 if steal0 is not None and steal1 is not None else None,
        "targets": {
            "estop_ms": ONE_PERIOD_MS,
            "dead_node_ms": DEAD_MS,
            "first_bad_message_ms": ONE_PERIOD_MS,
            "displacement": "0 beyond the command in flight (tracking error: no step above the per-period limit)",
        },
        "drills": drills_out,
        "errors": errors,
        "meets_targets": bool(met_all and not errors),
        # A condition of the run, not a target of the runtime: did the driver publish at the asked rate?
        "ran_at_asked_rate": js_rate >= 0.95 * js_rate_hz,
    }
