"""`legion bench runtime`: end-to-end latency of the runtime graph on the digital twin
(docs/decisions/runtime-latency.md) in three modes: `composed` (real2sim, policy and sim2real in one process,
control path handed over in process: what `legion run` does), `composed_dds` (same process, every hop on DDS: `composed --no-handoff`)
and `cross_process` (one process per node). The twin always runs in its own process: it stands in for the
robot's driver, which is never composed into the runtime, and its 200 Hz physics on the runtime's executor
would add its step time to every control step.

Latency of a control step starts at the header stamp of the joint state that triggered the observation
the action was computed from (real2sim -> policy -> sim2real carry it through) and is measured twice:
- `stamp_to_command_sent_ms`: until sim2real has published the joint command of that new policy step
  (recorded by sim2real itself, `latency_log`): what the runtime controls; the targets are judged on it.
- `latency_ms`: until the step's CommandReport is received by a Python subscriber in this process: one
  more DDS hop plus a Python executor's wake-up (a C++ ros2_control driver receives faster): conservative.
The command stream is checked both as sent (`sent`, sim2real's own record) and as received here (`received`):
- `missed_cycles`: slots of sim2real's command stream (100 Hz, or 500 Hz in `composed_500hz`) that passed
  without a command: the stream thread keeps a fixed grid of deadlines and counts the slots it woke too late
  for (`command_cycles_missed` in its diagnostics); `missed_cycles_outside_machine_stalls` (the target) leaves
  out those within 50 ms of a stall of the whole machine seen by the wake-up probe. `tick_late_ms`: how late
  each cycle ran in its period (command jitter). `cycles_on_segment`: cycles that sent the current segment's
  point while a control step held sim2real (docs/decisions/control-path.md).
- `longest_gap_ms` and `gaps_over_1.5_periods`: intervals between consecutive /joint_command messages. A
  gap of 1.5-2 periods is a late command, not a missing one.
The compute floor (legion_core.bench.floor) is measured first, in the same invocation, and every mode's
stamp -> command latency is also given as a ratio to it (`vs_floor`, `vs_floor_hot`).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from legion_core.base.stats import summarize
from legion_core.contracts.drivers import FORWARD_POSITION_CONTROLLER, resolve_driver
from legion_core.contracts.interface import TOPIC_COMMAND_REPORT, TOPIC_JOINT_COMMAND

#: mode -> (process groups beside the twin's, hand-off in process, command rate [Hz]). The twin always runs
#: in its own process (it stands in for the robot's driver) and publishes joint states at its 200 Hz in every
#: mode: at 500 Hz its Python physics timer starved its 30 Hz camera on the 2-core dev VM (no detection ever
#: reached the runtime); lbr_fri_ros2_stack's C++ controller manager publishes at its update rate.
MODE_SPECS = {
    "composed": (["real2sim,policy,sim2real"], True, 100.0),
    "composed_dds": (["real2sim,policy,sim2real"], False, 100.0),
    "cross_process": (["real2sim", "policy", "sim2real"], True, 100.0),
    "composed_500hz": (["real2sim,policy,sim2real"], True, 500.0),
    # The lbr_fri_ros2_stack emulator as the driver (twin_node driver:=lbr, docs/robot-integration.md): the
    # stack's names, forward position controller, controller manager at the command rate, reliable joint
    # states; judged against the twin profile's mode of the same layout and rate, in the same run.
    "lbr_composed": (["real2sim,policy,sim2real"], True, 100.0),
    "lbr_composed_500hz": (["real2sim,policy,sim2real"], True, 500.0),
    # `composed` with the operator console beside it (console_node in its own process, as the launch files
    # start it) and a page connected to it: its cost on the control path, judged against `composed` in the
    # same run (docs/console.md). The page's browser runs on the operator's machine; here a websocket client
    # in this process takes every state the server pushes, as the page does.
    "composed_console": (["real2sim,policy,sim2real", "console"], True, 100.0),
}
MODES = tuple(MODE_SPECS)
#: Modes with the lbr emulator as the driver, and the twin-profile mode each is compared with.
LBR_MODES = {"lbr_composed": "composed", "lbr_composed_500hz": "composed_500hz"}
PERIOD_S = 0.01  # the 100 Hz command stream's period (the wake-up probe's grid in the 100 Hz modes)
#: Targets (docs/decisions/control-path.md): composed median within 2x the compute floor and p99 within the
#: 2 ms FRI send period; one process per node p99 within 4 ms; no command cycle lost outside the machine's
#: own stalls, at 100 and at 500 Hz.
TARGETS = {"composed_median_vs_floor": 2.0, "composed_p99_ms": 2.0, "cross_process_p99_ms": 4.0,
           "missed_cycles_outside_machine_stalls": 0}  # fmt: skip
LOG_KEYS = ("stamp_to_command_s", "stamp_to_command_sent_at_s", "command_times_s", "tick_time_s", "tick_late_s",
            "tick_skipped")  # fmt: skip


def run_bench(
    bundle: str | None = None,
    seconds: float = 60.0,
    modes=MODES,
    realtime_priority: int = 0,
    subscriber: bool = True,
    runtime_cpus: str = "all",
    floor: bool = True,
    profile: bool = False,
    seconds_500hz: float | None = None,
) -> dict:
    """Run the sim graph in each mode for `seconds` and return the latency/gap figures. `realtime_priority`
    > 0 runs the runtime processes (not the twin: it stands in for the driver) with SCHED_FIFO.
    `subscriber=False`: this process unsubscribes after the warm-up and sleeps through the measurement
    (only the runtime's own figures; the subscriber is a third busy Python process on the cores).
    `runtime_cpus` ("1", "2-3"): pin the runtime processes there and the twin and this process to the other
    CPUs, as a robot PC keeps its control cores apart (`composed --cpu-affinity`).
    `floor`: measure the compute floor first (legion_core.bench.floor) and report every latency against it.
    `seconds_500hz`: the measurement time of the 500 Hz mode (default: `seconds`; the target is judged
    over 10 minutes).
    `profile`: sample the runtime process of each composed mode with py-spy during its window (raw stacks in
    the log directory, the top functions in the result; docs/profiling.md)."""

    from legion_core.tools.graph import GraphProcess, SimGraph, params_for, sim_graph_params
    from legion_core.tools.ros_env import ensure_workspace, stop_process_group

    ensure_workspace()
    from legion_core.ros.common import parse_cpu_list

    pinned = parse_cpu_list(runtime_cpus)
    all_cpus = os.sched_getaffinity(0)
    others = "all"
    if pinned is not None:
        rest = sorted(all_cpus - pinned)
        if not rest or not pinned <= all_cpus:
            raise ValueError(
                f"runtime_cpus {runtime_cpus!r} must be a proper subset of this machine's CPUs {sorted(all_cpus)}"
            )
        others = ",".join(map(str, rest))
    from legion_msgs.msg import CommandReport
    from std_msgs.msg import Float64MultiArray

    tmp = Path(tempfile.mkdtemp(prefix="legion_bench_runtime_"))
    if bundle is None:
        import sys as _sys

        from legion_core.tools.ros_env import REPO

        _sys.path.insert(0, str(REPO))  # the untrained bundle factory lives with the tests
        from tests.bundle_factory import make_tiny_bundle

        bundle = str(make_tiny_bundle(tmp / "run", tmp / "tiny-bundle", tasks=("drawer-close",))[2])
    from legion_core.contracts.bundle import load

    b = load(bundle)
    skill = b.skill_names[0]
    # placed as in the bundle's training scene
    params = sim_graph_params(bundle, skill, scene=b.scene or "", skill=skill)
    results: dict = {"bundle": bundle, "skill": skill, "seconds_per_mode": seconds, "log_dir": str(tmp),
                     "subscriber_during_measurement": subscriber,
                     "runtime_scheduling": f"SCHED_FIFO {realtime_priority}" if realtime_priority > 0 else "normal",
                     "runtime_cpus": runtime_cpus if pinned is not None else "all",
                     "twin_and_probe_cpus": others}  # fmt: skip
    if pinned is not None:
        os.sched_setaffinity(0, parse_cpu_list(others))  # the probe stays off the runtime's CPUs
    if floor:
        from legion_core.bench.floor import measure_floor

        results["floor"] = measure_floor(bundle, skill)
    for mode in modes:
        runtime_groups, handoff, rate_hz = MODE_SPECS[mode]
        period_s = 1.0 / rate_hz
        mode_s = seconds_500hz if (seconds_500hz and rate_hz >= 500.0) else seconds
        probe = _start_wakeup_probe(tmp / f"{mode}-wakeup.json", period_s)
        procs = []
        lbr = mode in LBR_MODES
        for g in ["twin", *runtime_groups]:
            mine = params_for(params, g)
            if "sim2real" in g.split(","):
                mine["sim2real.latency_log"] = str(tmp / f"{mode}-latency.json")
                mine["sim2real.command_rate_hz"] = rate_hz
            if lbr:
                for n in g.split(","):
                    if n in ("twin", "real2sim", "sim2real"):
                        mine[f"{n}.driver"] = "lbr"
                if g == "twin":
                    mine.update(
                        {"twin.ctrl": FORWARD_POSITION_CONTROLLER, "twin.update_rate_hz": int(rate_hz)}
                    )

            if g == "console":
                mine = {"console.port": 0, "console.bundle": bundle, "console.scene": skill}
            procs.append(GraphProcess(
                g, mine, tmp / f"{mode}-{g.replace(',', '_')}.log", handoff=handoff,
                realtime_priority=realtime_priority if g not in ("twin", "console") else 0,
                cpu_affinity=(runtime_cpus if g not in ("twin", "console") else others) if pinned is not None
                else "all",
            ))  # fmt: skip
        lat: list[float] = []
        cmd_t: list[float] = []
        with SimGraph(procs, node_name=f"bench_runtime_{mode}", stop_timeout_s=10.0) as graph:
            node = graph.node

            def on_report(m, lat=lat, node=node):
                if not m.hold and (m.header.stamp.sec or m.header.stamp.nanosec):
                    now = node.get_clock().now().nanoseconds * 1e-9
                    lat.append(now - (m.header.stamp.sec + m.header.stamp.nanosec * 1e-9))

            # Deeper queues than the harness's standard subscriptions: every report and command is timed.
            node.create_subscription(CommandReport, TOPIC_COMMAND_REPORT, on_report, 100)
            node.create_subscription(
                Float64MultiArray,
                resolve_driver("lbr").command_topic if lbr else TOPIC_JOINT_COMMAND,
                lambda _m, c=cmd_t, n=node: c.append(n.get_clock().now().nanoseconds * 1e-9),
                100,
            )
            # Warm-up: discovery + the first policy steps, not measured.
            graph.spin_until(lambda lat=lat: len(lat) >= 5, 60.0)
            lat.clear()
            cmd_t.clear()
            page = None
            if "console" in runtime_groups:
                console_pid = graph.procs[1 + runtime_groups.index("console")].pid
                page = _ConsolePage(tmp / f"{mode}-console.log", console_pid)
            window = [node.get_clock().now().nanoseconds * 1e-9, 0.0]
            steal0 = _steal_s()
            spy = _start_profile(graph.procs[-1].pid, tmp / f"{mode}-profile.txt", mode_s) if (
                profile and len(runtime_groups) == 1) else None  # fmt: skip
            if subscriber:
                graph.spin(mode_s, step_s=0.05)
            else:
                for sub in list(node.subscriptions):
                    node.destroy_subscription(sub)
                time.sleep(mode_s)
            window[1] = node.get_clock().now().nanoseconds * 1e-9
            steal1 = _steal_s()
            page_stats = page.close() if page is not None else None
            if spy is not None:
                spy.wait(mode_s + 60)
        stop_process_group(probe, 10)
        wake = _read_wakeup_probe(tmp / f"{mode}-wakeup.json", window)
        log = _read_latency_log(tmp / f"{mode}-latency.json")
        on_segment = _read_latency_count(tmp / f"{mode}-latency.json", "command_cycles_on_segment")
        # The runtime's own record covers its whole life: keep the measured window (its clock is the same
        # system clock as the probe's stamps).
        sent_t = [t for t in log["command_times_s"] if window[0] <= t <= window[1]]
        ticks = [(t, late, skip) for t, late, skip in zip(log["tick_time_s"], log["tick_late_s"], log["tick_skipped"])
                 if window[0] <= t <= window[1]]  # fmt: skip
        sent = [(x, t) for x, t in zip(log["stamp_to_command_s"], log["stamp_to_command_sent_at_s"])
                if window[0] <= t <= window[1]]  # fmt: skip
        sent_lat, sent_at = [x for x, _ in sent], [t for _, t in sent]
        results[mode] = {
            "command_rate_hz_set": rate_hz,
            "window_s": window,  # the measured window [system clock s]: re-analyse the logs in log_dir with it
            "policy_steps": len(sent_lat),
            "stamp_to_command_sent_ms": _stats_ms(sent_lat),
            "latency_ms": _stats_ms(lat),
            "seconds": mode_s,
            "command_rate_hz": float(len(sent_t) / mode_s),
            "sent": {
                **_cycle_stats(ticks),
                **_gap_stats(sent_t, period_s),
                "missed_cycles_outside_machine_stalls": _missed_outside_stalls(ticks, wake),
                "cycles_on_segment": on_segment,
            },  # fmt: skip
            # At this process's subscriber; empty with subscriber=False.
            "received": _gap_stats(cmd_t, period_s),
            "machine_wakeup_late_ms": _stats_ms([late for _, late in wake]),
            # Time the host took the virtual CPUs away during the window (0 on bare metal).
            "machine_steal_ms": (steal1 - steal0) * 1e3
            if steal0 is not None and steal1 is not None
            else None,
            # Slow steps (over the composed target) and late or skipping timer ticks (over half a period)
            # next to the probe's stalls: time the whole machine lost, not the runtime's code.
            **_stall_matches(sent_lat, sent_at, ticks, wake, window[1] - window[0], period_s),
        }
        if page_stats is not None:
            results[mode]["console_page"] = page_stats
        fl = (results.get("floor") or {}).get("floor_ms")
        st = results[mode]["stamp_to_command_sent_ms"]
        if fl and st["n"]:
            results[mode]["vs_floor"] = {k: st[k] / fl for k in ("median", "p99", "max")}
            results[mode]["vs_floor_hot"] = {
                k: st[k] / results["floor"]["floor_hot_ms"] for k in ("median", "p99")
            }
        if profile and (tmp / f"{mode}-profile.txt").exists():
            results[mode]["profile"] = profile_summary(tmp / f"{mode}-profile.txt", mode_s)
    for mode, twin_mode in LBR_MODES.items():
        a, b = results.get(mode), results.get(twin_mode)
        if a and b and a["stamp_to_command_sent_ms"]["n"] and b["stamp_to_command_sent_ms"]["n"]:
            # The driver's interface costs nothing on the control path if these are ~1 (same run, same layout).
            a["vs_twin_profile"] = {
                k: a["stamp_to_command_sent_ms"][k] / b["stamp_to_command_sent_ms"][k]
                for k in ("median", "p99")
            }
    a, b = results.get("composed"), results.get("composed_console")
    if a and b and a["stamp_to_command_sent_ms"]["n"] and b["stamp_to_command_sent_ms"]["n"]:
        sa, sb = a["stamp_to_command_sent_ms"], b["stamp_to_command_sent_ms"]
        results["console_cost"] = {
            "stamp_to_command_p99_ms": {
                "without": sa["p99"],
                "with": sb["p99"],
                "ratio": sb["p99"] / sa["p99"],
            },
            "stamp_to_command_median_ms": {
                "without": sa["median"],
                "with": sb["median"],
                "ratio": sb["median"] / sa["median"],
            },  # fmt: skip
            "missed_cycles_outside_machine_stalls": {
                "without": a["sent"]["missed_cycles_outside_machine_stalls"],
                "with": b["sent"]["missed_cycles_outside_machine_stalls"],
            },
            "page": b.get("console_page"),
        }
    results["targets"] = TARGETS
    met = _targets_met(results)
    results["targets_met"] = met
    results["meets_targets"] = bool(met) and all(met.values()) and not profile
    if profile:
        results["profiled"] = (
            "py-spy sampled the runtime during the windows: timings perturbed, targets not judged"
        )
    os.sched_setaffinity(0, all_cpus)
    return results


class _ConsolePage:
    """A page connected to the console under the bench: a websocket client on a thread that takes every state
    the server pushes (the browser's load on the server; its rendering runs on the operator's machine)."""

    def __init__(self, console_log: Path, console_pid: int, timeout_s: float = 60.0) -> None:
        import threading

        import psutil

        from legion_core.tools.console_graph import console_url

        url = console_url(console_log, timeout_s=timeout_s)
        self._console = psutil.Process(console_pid)
        self._cpu0 = sum(self._console.cpu_times()[:2])
        self.states, self.t0, self._stop = 0, time.monotonic(), threading.Event()
        ws_url = url.replace("http://", "ws://") + "/ws"
        self._thread = threading.Thread(target=self._run, args=(ws_url,), daemon=True)
        self._thread.start()

    def _run(self, url: str) -> None:
        from websockets.sync.client import connect

        with connect(url, open_timeout=10) as ws:
            while not self._stop.is_set():
                try:
                    ws.recv(timeout=0.5)
                except TimeoutError:
                    continue
                self.states += 1

    def close(self) -> dict:
        seconds = time.monotonic() - self.t0
        cpu_s = sum(self._console.cpu_times()[:2]) - self._cpu0
        self._stop.set()
        self._thread.join(5.0)
        return {
            "states_received": self.states,
            "state_rate_hz": self.states / seconds if seconds > 0 else 0.0,
            # console_node's own CPU time (user + system) over the window, in % of one core
            "console_cpu_percent_of_one_core": 100.0 * cpu_s / seconds if seconds > 0 else 0.0,
        }


def _targets_met(results: dict) -> dict:
    """Each target of TARGETS on the modes measured (a mode not run is not judged)."""
    met = {}
    r = results.get("composed")
    if r and r["stamp_to_command_sent_ms"]["n"]:
        met["composed_p99"] = r["stamp_to_command_sent_ms"]["p99"] <= TARGETS["composed_p99_ms"]
        if "vs_floor" in r:
            met["composed_median_vs_floor"] = r["vs_floor"]["median"] <= TARGETS["composed_median_vs_floor"]
    r = results.get("cross_process")
    if r and r["stamp_to_command_sent_ms"]["n"]:
        met["cross_process_p99"] = r["stamp_to_command_sent_ms"]["p99"] <= TARGETS["cross_process_p99_ms"]
    for mode in MODES:
        r = results.get(mode)
        if r and r["sent"]["timer_ticks"]:
            met[f"{mode}_no_missed_cycle"] = (
                r["sent"]["missed_cycles_outside_machine_stalls"]
                <= TARGETS["missed_cycles_outside_machine_stalls"]
            )
    return met


def _missed_outside_stalls(ticks, wake) -> int:
    """Command slots lost (skipped before a cycle) where the wake-up probe saw no machine stall within
    NEAR_S of the cycle's first lost slot: the runtime's own misses, not the machine's."""
    stalls = np.sort(np.array([t for t, late in wake if late > STALL_S], float))
    out = 0
    for t, late, skip in ticks:
        if not skip:
            continue
        start = t - late  # when the cycle's slot was due; the lost slots came just before it
        if stalls.size:
            j = int(np.searchsorted(stalls, start))
            near = min(abs(start - stalls[max(j - 1, 0)]), abs(stalls[min(j, stalls.size - 1)] - start))
            if near <= NEAR_S:
                continue
        out += int(skip)
    return out


PROFILE_RATE_HZ = 250  # py-spy samples per second (1000 Hz took enough CPU to stall the 2-core VM)


def _start_profile(pid: int, out: Path, seconds: float):
    """py-spy sampling `pid` for `seconds` into `out` (raw collapsed stacks of the threads on the CPU, one
    line per distinct stack), or None when py-spy is not installed (requirements/dev.txt has it)."""
    import shutil
    import subprocess
    import sys

    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(exe).exists():
        print("[bench runtime] py-spy not found: no profile (pip install py-spy)", flush=True)
        return None
    return subprocess.Popen(
        [exe, "record", "--pid", str(pid), "--rate", str(PROFILE_RATE_HZ), "--duration", str(int(seconds)),
         "--format", "raw", "--nonblocking", "--threads", "-o", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def profile_summary(path: Path, seconds: float, top: int = 15) -> dict:
    """From py-spy's raw stacks (threads on the CPU only): per thread, the share of the window it ran
    [% of wall time] and the functions with the largest inclusive share [% of wall time]."""
    import re
    from collections import Counter, defaultdict

    per_thread: dict[str, Counter] = defaultdict(Counter)
    totals: Counter = Counter()
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        frames = stack.split(";")
        thread = re.sub(r"^thread \(0x[0-9a-fA-F]+\): |^thread \(\d+\): ", "", frames[0])
        totals[thread] += int(n)
        for f in dict.fromkeys(re.sub(r":\d+\)$", ")", f) for f in frames[1:]):
            per_thread[thread][f] += int(n)
    possible = PROFILE_RATE_HZ * seconds
    return {
        th: {"busy_percent": round(100.0 * tot / possible, 2),
             "top_percent": {f: round(100.0 * c / possible, 2) for f, c in per_thread[th].most_common(top)}}
        for th, tot in totals.most_common()
    }  # fmt: skip


def _read_latency_log(path: Path) -> dict:
    """sim2real_node's `latency_log` (written at shutdown): stamp -> command-sent latencies and the publish
    times of all commands [s]; empty lists when the file is missing."""
    import json

    try:
        d = json.loads(path.read_text())
        return {k: list(d.get(k) or []) for k in LOG_KEYS}
    except (OSError, ValueError):
        return {k: [] for k in LOG_KEYS}


def _read_latency_count(path: Path, key: str) -> int | None:
    """One counter of sim2real's latency log (its whole life), or None when the file or key is missing."""
    import json

    try:
        v = json.loads(path.read_text()).get(key)
    except (OSError, ValueError):
        return None
    return int(v) if v is not None else None


# The machine's own wake-up latency, measured beside the runtime (what cyclictest measures on an RT system):
# a plain process that sleeps to a 100 Hz grid and records how late it woke. Where the runtime's slow steps
# coincide with the probe's late wake-ups, the time went to the machine (other tenants of the host, the
# twin), not to the runtime's code.
WAKEUP_PROBE = """
import json, signal, sys, time
period, out, rec = float(sys.argv[2]), sys.argv[1], []
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
t_next = time.time() + period
try:
    while True:
        time.sleep(max(0.0, t_next - time.time()))
        now = time.time()
        rec.append((t_next, now - t_next))
        t_next += period * max(1, int((now - t_next) // period) + 1)
except (KeyboardInterrupt, SystemExit):
    pass
finally:
    with open(out, "w") as f:
        json.dump(rec, f)
"""
STALL_S = 1e-3  # a probe wake-up this late [s] marks a machine stall
NEAR_S = 0.05  # an event "near" a stall: within this time of it [s]
SLOW_STEP_S = 2e-3  # a control step slower than the composed target [s]


def _steal_s() -> float | None:
    """CPU time the hypervisor took from this virtual machine so far [s, summed over CPUs] (/proc/stat
    'steal'); None where the kernel does not report it."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _start_wakeup_probe(path: Path, period_s: float = PERIOD_S):
    import subprocess
    import sys

    return subprocess.Popen(
        [sys.executable, "-c", WAKEUP_PROBE, str(path), str(period_s)], start_new_session=True
    )


def _read_wakeup_probe(path: Path, window) -> list[tuple[float, float]]:
    import json

    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return [(t, late) for t, late in rec if window[0] <= t <= window[1]]


def _stall_matches(sent_lat, sent_at, ticks, wake, window_s: float, period_s: float = PERIOD_S) -> dict:
    """Slow steps (over the composed target) and late or skipping timer ticks (over half a period) next to
    the probe's stalls: time the whole machine lost, not the runtime's code. Every event is placed where it
    should have started (a step at its sensor stamp, a tick at its scheduled time), as the probe's are."""
    slow = [t - x for x, t in zip(sent_lat, sent_at) if x > SLOW_STEP_S]
    late = [t - lt for t, lt, skip in ticks if lt > period_s / 2 or skip]
    return {"slow_steps_near_machine_stall": _near_stalls(slow, wake, window_s),
            "late_ticks_near_machine_stall": _near_stalls(late, wake, window_s)}  # fmt: skip


def _near_stalls(event_times_s, wake, window_s: float) -> dict:
    """How many events (slow control steps, late timer ticks) happened within NEAR_S of a machine stall seen
    by the wake-up probe, and how many would by chance (the share of the window within NEAR_S of a stall,
    times the events)."""
    stalls = np.sort(np.array([t for t, late in wake if late > STALL_S], float))
    events = np.asarray(event_times_s, float)
    near, covered_s = 0, 0.0
    if stalls.size:
        covered_s = 2 * NEAR_S + float(np.sum(np.minimum(np.diff(stalls), 2 * NEAR_S)))
    if stalls.size and events.size:
        j = np.searchsorted(stalls, events)
        before = np.abs(events - stalls[np.maximum(j - 1, 0)])
        after = np.abs(stalls[np.minimum(j, stalls.size - 1)] - events)
        near = int(np.sum(np.minimum(before, after) <= NEAR_S))
    return {"events": int(events.size), "near_stall": near, "machine_stalls": int(stalls.size),
            "near_stall_by_chance": float(events.size * min(1.0, covered_s / window_s)) if window_s > 0 else None}  # fmt: skip


def _gap_stats(times_s, period_s: float) -> dict:
    """Longest interval between consecutive commands, and how many intervals exceed 1.5 periods."""
    if len(times_s) < 2:
        return {"commands": len(times_s), "longest_gap_ms": None, "gaps_over_1.5_periods": None}
    gaps = np.diff(np.asarray(times_s, float))
    return {"commands": len(times_s), "longest_gap_ms": float(gaps.max() * 1e3),
            "gaps_over_1.5_periods": int(np.sum(gaps > 1.5 * period_s))}  # fmt: skip


def _cycle_stats(ticks: list[tuple[float, float, int]]) -> dict:
    """From sim2real's timer record [(time [s], lateness [s], periods skipped before it)]: the command
    cycles that did not run (None without a record) and the lateness of those that did."""
    if not ticks:
        return {"timer_ticks": 0, "missed_cycles": None, "tick_late_ms": _stats_ms([])}
    return {"timer_ticks": len(ticks), "missed_cycles": int(sum(k for _, _, k in ticks)),
            "tick_late_ms": _stats_ms([late for _, late, _ in ticks])}  # fmt: skip


def _stats_ms(lat_s: list[float]) -> dict:
    """n, median, p99 and max [ms] of latencies in seconds (nulls when there are none)."""
    return summarize(lat_s, ("n", "median", "p99", "max"), scale=1e3)
