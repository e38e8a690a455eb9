"""The control threads of a LEGION process: the control loop, which waits on the subscriptions a control step
starts from, and the stream thread, which runs the command streams and heartbeats on fixed deadline grids
(docs/decisions/control-path.md).

Why not the node's executor: rclpy's SingleThreadedExecutor rebuilds its wait set in Python on every
wake-up, over every entity of every node in the process (parameter services, QoS event handlers, timers),
and dispatches each callback through a task: 0.2-0.3 ms per wake-up on the 2-core dev VM even for a bare
node. Profiled under `legion bench runtime --profile` (docs/profiling.md), that bookkeeping took 37 % of a
core in the composed runtime at 100 Hz, more than all LEGION callbacks together (21 %), and a joint state
that arrived during it waited. The control loop instead keeps one rcl wait set of the control subscriptions
(on a hidden helper node that no executor spins), takes each ready message and calls its callback
directly, the way `rclpy.wait_for_message` does in Humble, Jazzy and Kilted alike (the same
`_rclpy.WaitSet` calls). rclpy's EventsExecutor would remove the rebuild too, but only Kilted has it (not
Humble or Jazzy, which robot PCs run), and here its `spin()` stopped the twin's timers.

Why the command stream has a thread of its own: at 500 Hz a slot comes every 2 ms, and one control step
(real2sim, policy, sim2real with IK) took 1.5-2.5 ms of Python on the dev VM; behind it, in the same thread,
a slot would be lost at every policy step. The stream thread sleeps to the next deadline of a fixed grid
(`DeadlineGrid`), commands that slot, and gets the interpreter within `SWITCH_INTERVAL_S` of waking while a
control step runs; only a wake-up later than a whole period loses a slot, and it is counted.

Locks: every callback of a LegionNode (node executor, control loop, stream thread, in-process hand-off)
runs under that node's own lock, so each node's logic stays single-threaded. A control step holds
real2sim's, then the policy's, then sim2real's lock (always in that order, so no deadlock), and sim2real's
command cycle needs only sim2real's: it runs while real2sim and the policy compute.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

#: The interpreter's thread switch interval in a LEGION process [s]. Python's default (5 ms) lets a thread
#: that holds the GIL in pure-Python work (a control step, the node executor's wait-set rebuild) keep it for
#: up to 5 ms before a woken thread gets it: longer than a 500 Hz period. 0.2 ms bounds that wait; the cost
#: (more frequent hand-overs) is paid only while two threads want the GIL at once.
SWITCH_INTERVAL_S = 2e-4

#: Exceptions that ended a control thread: `spin_nodes` stops the process and exits non-zero when one is here.
THREAD_ERRORS: list[BaseException] = []


def _fail(what: str, e: BaseException) -> None:
    """A control thread died: print why, record it and stop the process (SIGTERM to itself: `spin_nodes`
    shuts the nodes down and exits non-zero). A node whose control path is gone must not keep running
    as if it were alive; its silence is what the driver and the other nodes' watchdogs see."""
    print(f"[legion] {what} failed, stopping the process:", file=sys.stderr, flush=True)
    traceback.print_exception(e)
    THREAD_ERRORS.append(e)
    os.kill(os.getpid(), signal.SIGTERM)


def raise_realtime_priority(by: int) -> None:
    """Under SCHED_FIFO (`realtime_priority`), run the calling thread `by` priority levels above the process
    (the stream thread 2, the control loop 1, the node executor and DDS threads at the process's level), so
    that a command cycle preempts a control step's wake-up and both preempt the executor's bookkeeping.
    Nothing to do under normal scheduling (ordinary users cannot raise a thread's priority there)."""
    try:
        if os.sched_getscheduler(0) != os.SCHED_FIFO:
            return
        prio = min(99, os.sched_getparam(0).sched_priority + by)
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(prio))  # 0: this thread (Linux)
    except (AttributeError, OSError):
        pass


def locked(callback: Callable[..., Any], lock) -> Callable[..., Any]:
    """`callback` run under `lock` (a node's callback lock). functools.wraps keeps its signature visible to
    rclpy, which inspects it (a timer callback that takes a TimerInfo, a subscription that takes MessageInfo)."""

    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return callback(*args, **kwargs)

    return run


class DeadlineGrid:
    """A fixed grid of deadlines with period `period_ns` [ns]: which slot is due at a wake-up, and how many
    slots passed without a cycle (pure; the stream thread's command streams). The grid keeps its phase: a
    late cycle does not shift the next deadline."""

    def __init__(self, period_ns: int, first_ns: int) -> None:
        if period_ns <= 0:
            raise ValueError(f"period must be > 0 ns, got {period_ns}")
        self.period_ns = int(period_ns)
        self.next_ns = int(first_ns)
        """The deadline of the next slot [ns]."""

    def due(self, now_ns: int) -> tuple[int, int] | None:
        """At `now_ns`: None before the next deadline; else (the newest due slot's deadline [ns], the slots
        before it that passed without a cycle), and the grid moves on to the slot after it."""
        if now_ns < self.next_ns:
            return None
        skipped = (now_ns - self.next_ns) // self.period_ns
        slot = self.next_ns + skipped * self.period_ns
        self.next_ns = slot + self.period_ns
        return slot, int(skipped)


class _StreamThread:
    """Runs every stream's `cycle(slot_ns, now_ns, skipped)` on its deadline grid (CLOCK_MONOTONIC) under the
    stream's lock, from one daemon thread."""

    def __init__(self, streams: list[tuple[int, Callable[[int, int, int], None], Any]]) -> None:
        self._streams = streams
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="legion-stream", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)

    def _run(self) -> None:
        raise_realtime_priority(2)
        now = time.monotonic_ns()
        grids = [(DeadlineGrid(period, now + period), cycle, lock) for period, cycle, lock in self._streams]
        while not self._stop.is_set():
            wait_ns = min(g.next_ns for g, _, _ in grids) - time.monotonic_ns()
            if wait_ns > 0 and self._stop.wait(wait_ns * 1e-9):
                return
            for grid, cycle, lock in grids:
                now = time.monotonic_ns()
                due = grid.due(now)
                if due is None:
                    continue
                try:
                    with lock:
                        if self._stop.is_set():
                            return
                        cycle(due[0], now, due[1])
                except Exception as e:  # noqa: BLE001 - a failing command cycle stops the process
                    import rclpy

                    self._stop.set()
                    if rclpy.ok():  # after a shutdown request, a publish into the closed context is the stop
                        _fail("command stream", e)
                    return


class Sampled:
    """A subscription read by sampling (ControlLoop.sampled)."""

    def __init__(self, sub) -> None:
        self.sub = sub

    def latest(self):
        """The newest message received since the last call (older ones are dropped), or None."""
        newest = None
        while True:
            with self.sub.handle:
                info = self.sub.handle.take_message(self.sub.msg_type, self.sub.raw)
            if info is None:
                return newest
            newest = info[0]


class ControlLoop:
    """The process's control threads (module docstring): control subscriptions on a hidden helper node,
    served by the control loop thread; command streams and heartbeats on deadline grids, served by the stream
    thread. Created on first use, started by `spin_nodes` once every node is built, stopped before the nodes
    are destroyed.

    The helper node is hidden (its name starts with '_': `ros2 node list` leaves it out unless
    `--include-hidden-nodes`) and has no parameter services; its topic names resolve as for every other node
    of the process (global remaps apply; a node-specific `node:old:=new` remap of the owning node does not:
    use the global form for control topics)."""

    def __init__(self) -> None:
        self.node = None
        self._subs: list[tuple[Any, Callable[[Any], None]]] = []
        self._streams: list[tuple[int, Callable[[int, int, int], None], Any]] = []
        self._thread: threading.Thread | None = None
        self._stream_thread: _StreamThread | None = None
        self._stop = False
        self._wake = None

    def _helper(self):
        if self.node is None:
            import rclpy

            self.node = rclpy.create_node(
                f"_legion_control_{os.getpid()}", start_parameter_services=False, enable_rosout=False
            )
        return self.node

    def subscription(self, msg_type, topic: str, callback, qos, lock, **kwargs):
        """A subscription whose messages the loop takes and hands to `callback` under `lock`."""
        sub = self._helper().create_subscription(msg_type, topic, callback, qos, **kwargs)
        self._subs.append((sub, locked(callback, lock)))
        return sub

    def sampled(self, msg_type, topic: str, qos) -> Sampled:
        """A subscription nobody waits on: its owner takes the newest message when it wants one
        (`Sampled.latest`). For a stream far faster than it is needed (lbr_fri_ros2_stack's LBRState at the
        controller's update rate, 100-500 Hz, read by a 5 Hz check): no executor wake-up and no conversion
        per message, only per sample."""
        return Sampled(self._helper().create_subscription(msg_type, topic, lambda _m: None, qos))

    def destroy_subscription(self, sub) -> None:
        """Drop `sub` (before `start`: composed mode replaces it by a direct call)."""
        self._subs = [(s, cb) for s, cb in self._subs if s is not sub]
        if self.node is not None:
            self.node.destroy_subscription(sub)

    def stream(self, period_s: float, cycle: Callable[[int, int, int], None], lock) -> None:
        """Call `cycle(slot_ns, now_ns, skipped)` once per `period_s` on a deadline grid (CLOCK_MONOTONIC
        [ns]; `skipped`: slots before this one that passed without a cycle), under `lock`."""
        if not (period_s > 0):
            raise ValueError(f"period_s must be > 0 s, got {period_s}")
        self._streams.append((int(round(period_s * 1e9)), cycle, lock))

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the control loop (when there are subscriptions) and the stream thread (when there are
        streams)."""
        if self._streams and self._stream_thread is None:
            self._stream_thread = _StreamThread(list(self._streams))
            self._stream_thread.start()
        if self.running or not self._subs:
            return
        from rclpy.guard_condition import GuardCondition

        self._stop = False
        self._wake = GuardCondition(None, None)
        self._thread = threading.Thread(target=self._run, name="legion-control", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        raise_realtime_priority(1)
        try:
            self._loop()
        except Exception as e:  # noqa: BLE001 - a dying control loop stops the process
            import rclpy

            if rclpy.ok() and not self._stop:
                _fail("control loop", e)

    def _loop(self) -> None:
        import rclpy
        from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy

        subs = list(self._subs)
        context = rclpy.get_default_context()
        wait_set = _rclpy.WaitSet(len(subs), 1, 0, 0, 0, 0, context.handle)
        while not self._stop:
            wait_set.clear_entities()
            for sub, _ in subs:
                wait_set.add_subscription(sub.handle)
            wait_set.add_guard_condition(self._wake.handle)
            wait_set.wait(-1)
            if self._stop:
                return
            ready = wait_set.get_ready_entities("subscription")
            for sub, callback in subs:
                if sub.handle.pointer in ready:
                    with sub.handle:
                        msg_info = sub.handle.take_message(sub.msg_type, sub.raw)
                    if msg_info is not None:
                        callback(msg_info[0])

    def stop(self) -> None:
        """Stop both threads and destroy the helper node (idempotent)."""
        self._stop = True
        if self._stream_thread is not None:
            self._stream_thread.stop()
            self._stream_thread = None
        if self._wake is not None:
            self._wake.trigger()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        if self._wake is not None:
            self._wake.destroy()
            self._wake = None
        if self.node is not None:
            self.node.destroy_node()
            self.node = None
        self._subs, self._streams = [], []


#: The control threads of this process (one control loop, one stream thread, one helper node).
CONTROL_LOOP = ControlLoop()
