"""Fixtures shared by the ROS integration tests. rclpy and the workspace are imported inside the fixtures,
not here: the non-ROS integration tests (and `make test-fast`) must collect without a built workspace."""

from __future__ import annotations

import os
import time

import pytest


@pytest.fixture
def probe():
    """A node in the test process that records topics and waits on conditions (rosutil.Probe)."""
    from tests.integration.rosutil import Probe

    p = Probe(f"probe_{os.getpid()}_{time.monotonic_ns() % 100000}")
    yield p
    p.close()


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    """An untrained bundle of the real format (tests/bundle_factory.py), made once per module."""
    from tests.bundle_factory import make_tiny_bundle

    return make_tiny_bundle(tmp_path_factory.mktemp("run"), tmp_path_factory.mktemp("b") / "tiny")[2]


@pytest.fixture
def s2r(probe, tmp_path):
    """sim2real_node alone in a child process; the test plays the arm and the policy."""
    from tests.integration.rosutil import Sim2RealHarness, stop

    h = Sim2RealHarness(probe, tmp_path / "sim2real.log")
    yield h
    stop(h.proc)
