"""legion_core.ros.control: the deadline grid of the command stream (pure) and the node lock's wrapper."""

from __future__ import annotations

import inspect
import threading

import pytest

from legion_core.ros.control import DeadlineGrid, locked

P = 2_000_000  # 500 Hz [ns]


def test_the_grid_runs_each_slot_once_on_time():
    g = DeadlineGrid(P, first_ns=10 * P)
    assert g.due(10 * P - 1) is None
    assert g.due(10 * P + 300_000) == (10 * P, 0)
    assert g.due(10 * P + 400_000) is None, "one cycle per slot"
    assert g.due(11 * P) == (11 * P, 0)


def test_a_late_wake_up_within_a_period_loses_no_slot():
    g = DeadlineGrid(P, first_ns=0)
    assert g.due(P - 1) == (0, 0)  # 1.999 ms late: jitter, not a missed cycle
    assert g.due(P) == (P, 0)


def test_a_wake_up_later_than_a_period_counts_the_lost_slots_and_keeps_the_phase():
    g = DeadlineGrid(P, first_ns=0)
    assert g.due(0) == (0, 0)
    assert g.due(4 * P + 500_000) == (4 * P, 3), "slots P, 2P and 3P passed without a cycle"
    assert g.next_ns == 5 * P, "the grid keeps its phase"


def test_the_grid_refuses_a_period_that_is_not_positive():
    with pytest.raises(ValueError, match="period"):
        DeadlineGrid(0, 0)


def test_locked_callbacks_hold_their_nodes_lock_and_keep_their_signature():
    lock = threading.RLock()
    seen = []

    def on_msg(msg):
        seen.append((msg, lock._is_owned()))

    cb = locked(on_msg, lock)
    cb("m")
    assert seen == [("m", True)]
    assert list(inspect.signature(cb).parameters) == ["msg"], "rclpy inspects the callback's parameters"
    # Another thread waits for a callback of the same node in progress; another node's lock does not.
    order = []
    other = threading.RLock()
    with lock:
        t = threading.Thread(target=locked(lambda: order.append("same node"), lock))
        u = threading.Thread(target=locked(lambda: order.append("other node"), other))
        t.start()
        u.start()
        u.join(5)
        t.join(0.2)
        order.append("holder")
    t.join(5)
    assert order == ["other node", "holder", "same node"]
