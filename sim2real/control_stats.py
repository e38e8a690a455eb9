"""sim2real_node's bookkeeping of its command stream, without ROS: missed and late command cycles, the control
latency (sensor stamp -> new policy step's command sent), the diagnostics lines and the latency log
(docs/architecture.md, "Data flow, one control step").

- Command cycles run on the stream's own grid of deadlines (it keeps the phase and skips the slots it woke
  too late for): a missed cycle is a slot without a command, a late one ran after its slot.
- Diagnostics summarise the last `recent` samples (bounded memory on a robot that runs for days); the
  latency log, when asked for, keeps every sample for a benchmark and is written once at shutdown.

Percentiles: legion_core.base.stats (one definition of p50/p99 for the runtime and every benchmark).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection

from legion_core.base import stats

#: Samples kept for the diagnostics' summaries (the last 1000: 10 s of command ticks at 100 Hz).
RECENT_SAMPLES = 1000


def latency_summary(lat_s: Collection[float], what: str = "steps") -> str:
    """One diagnostics line of latencies `lat_s` [s]: p50, p99 and max in ms over the samples given."""
    if not lat_s:
        return f"no {what} yet"
    ms = stats.summarize(lat_s, ("p50", "p99", "max"), scale=1e3)
    return f"p50 {ms['p50']:.2f} p99 {ms['p99']:.2f} max {ms['max']:.2f} over the last {len(lat_s)} {what}"


class ControlStats:
    """Cycle and latency bookkeeping of one command stream (see the module docstring).

    `keep_log`: keep every sample for `latency_log()` (benchmarks); off on a robot, where a day at 10 policy
    steps/s would otherwise keep ~1M floats."""

    def __init__(self, keep_log: bool = False, recent: int = RECENT_SAMPLES) -> None:
        self.keep_log = keep_log
        self.cycles_missed = 0
        """Command slots the stream skipped since start (cumulative)."""
        self.commands_sent = 0
        """Joint commands published since start."""
        self.cycles_on_segment = 0
        """Command cycles that followed the current segment while a control step held the node."""
        self.tick_late_recent: deque[float] = deque(maxlen=recent)
        """How late [s] each of the last `recent` command cycles ran after its slot."""
        self.latency_recent: deque[float] = deque(maxlen=recent)
        """Stamp -> command sent [s] of the last `recent` new policy steps."""
        # Latency log only: every sample, and per timer tick when it ran [s], how late [s] and how many
        # periods it skipped.
        self._latency_all: list[float] | None = [] if keep_log else None
        self._latency_t: list[float] = []
        self._command_times: list[float] | None = [] if keep_log else None
        self._ticks: list[tuple[float, float, int]] | None = [] if keep_log else None
        # The first percentile call loads numpy code lazily (6.6 ms measured inside the 1 Hz diagnostics
        # callback, i.e. a stall of the command stream in the first second): pay it here instead.
        latency_summary([0.0])

    def on_cycle(self, t_s: float, late_s: float, skipped: int, on_segment: bool = False) -> None:
        """A command cycle ran at `t_s` [s, node clock], `late_s` [s] after its slot on the stream's grid,
        and `skipped` slots before it passed without a cycle (legion_core.ros.control.DeadlineGrid: each is a
        missed command cycle). `on_segment`: it sent the current segment's point while a control step held
        the node (sim2real_node.on_command_cycle)."""
        self.cycles_missed += int(skipped)
        self.cycles_on_segment += bool(on_segment)
        self.tick_late_recent.append(late_s)
        if self._ticks is not None:
            self._ticks.append((t_s, late_s, int(skipped)))

    def on_command_sent(self, t_s: float) -> None:
        """A joint command was published at `t_s` [s, node clock]."""
        self.commands_sent += 1
        if self._command_times is not None:
            self._command_times.append(t_s)

    def on_new_step(self, sent_s: float, source_stamp_s: float) -> None:
        """A new policy step's command, computed from sensor data stamped `source_stamp_s` [s], was sent at
        `sent_s` [s, same clock]: the control latency as the robot sees it."""
        lat = sent_s - source_stamp_s
        self.latency_recent.append(lat)
        if self._latency_all is not None:
            self._latency_all.append(lat)
            self._latency_t.append(lat + source_stamp_s)  # when it was sent [s, system clock]

    def diagnostics(self) -> dict[str, str | int]:
        """sim2real_node's /diagnostics values of the command stream (strings as shown)."""
        return {
            "stamp_to_command_ms": latency_summary(self.latency_recent),
            "command_cycles_missed": self.cycles_missed,
            "command_tick_late_ms": latency_summary(self.tick_late_recent, "ticks"),
            "command_cycles_on_segment": self.cycles_on_segment,
        }

    def latency_log(self) -> dict:
        """The latency log (JSON object) of a stream kept with `keep_log`: every stamp -> command latency
        [s] and when it was sent [s], every command publish time [s], the cycles missed, and per timer tick
        when it ran [s], how late [s] and the periods it skipped."""
        if not self.keep_log:
            raise ValueError("no latency log: the stats were made with keep_log=False")
        ticks = self._ticks or []
        return {
            "stamp_to_command_s": self._latency_all,
            "stamp_to_command_sent_at_s": self._latency_t,
            "command_times_s": self._command_times,
            "command_cycles_missed": self.cycles_missed,
            "command_cycles_on_segment": self.cycles_on_segment,
            "tick_time_s": [t[0] for t in ticks],
            "tick_late_s": [t[1] for t in ticks],
            "tick_skipped": [t[2] for t in ticks],
        }
