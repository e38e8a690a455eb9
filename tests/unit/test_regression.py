"""Regression checks on a recorded session without ROS (legion_core/tools/regression/): the small bag in
tests/data/replay (twin + runtime with the tiny bundle, drawer-close / reach / drawer-close, recorded by
tests/integration/test_record_replay.py --make-fixture) is read with rosbags and mcap, its recorded actions
are re-computed from its recorded observations (bit-exactly on a machine with the numeric signature the bag
records, within the float32 tolerance elsewhere: docs/decisions/portable-regression-check.md), and the
comparison logic of the live judgements is exercised on the session against itself and against perturbed
copies.

The tiny bundle is rebuilt by make_tiny_bundle with the language embeddings the fixture was recorded with
(tests/data/replay/legion_cache, the language module's own cache layout): MiniLM's embeddings differ in the
last bits between CPUs (legion_core/contracts/language.py), which would make another bundle on another machine."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from legion_core.tools.bags.store import read_bag_signature
from legion_core.tools.numeric_signature import compare as compare_signatures
from legion_core.tools.numeric_signature import numeric_signature
from legion_core.tools.regression.judge import compare_live, float32_action_atol, judge_policy_offline
from legion_core.tools.regression.scenario import ALL_JUDGEMENTS, load_scenario
from legion_core.tools.regression.session import Status, read_session

DATA = Path(__file__).resolve().parents[1] / "data" / "replay"
BAG = DATA / "drawer_close_session"
MANIFEST = yaml.safe_load((DATA / "manifest.yaml").read_text())
SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "default.yaml"


@pytest.fixture(scope="module")
def rec():
    return read_session(BAG)


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    from legion_core.contracts.bundle_schema import sha256_file
    from legion_core.contracts.language import CACHE_DIR_ENV
    from tests.bundle_factory import make_tiny_bundle

    cache = tmp_path_factory.mktemp("legion_cache")
    shutil.copytree(DATA / "legion_cache", cache, dirs_exist_ok=True)
    old = os.environ.get(CACHE_DIR_ENV)
    os.environ[CACHE_DIR_ENV] = str(cache)
    try:
        b = make_tiny_bundle(tmp_path_factory.mktemp("run"), tmp_path_factory.mktemp("b") / "tiny")[2]
    finally:
        if old is None:
            os.environ.pop(CACHE_DIR_ENV)
        else:
            os.environ[CACHE_DIR_ENV] = old
    if sha256_file(b / "weights.safetensors") != MANIFEST["bundle_weights_sha256"]:
        import torch

        # torch's initial weights are the same on its AVX2 and AVX-512 CPU paths but not on its scalar one
        # (ATEN_CPU_CAPABILITY=default gave other weights on the Xeon): only there is this no regression.
        cap = torch.backends.cpu.get_cpu_capability()
        if cap not in ("AVX2", "AVX512"):
            pytest.skip(f"torch's {cap} CPU path initialises other weights than the fixture's (AVX2/AVX-512)")
        # A failure, not a skip: a skip here hid the offline check on every machine but the recording one.
        pytest.fail(
            "make_tiny_bundle(seed 3) no longer regenerates the bundle the fixture was recorded with; re-record it: "
            ".venv/bin/python -m tests.integration.test_record_replay --make-fixture tests/data/replay"
        )
    return b


def _expected_mode(here: dict | None = None) -> str:
    same, _ = compare_signatures(MANIFEST["numeric_signature"], here or numeric_signature())
    return "bit_exact" if same else "float32_tolerance"


def test_fixture_is_a_self_describing_rosbag2_mcap_bag():
    from mcap.reader import make_reader
    from rosbags.highlevel import AnyReader

    from legion_core.tools.bags.store import read_recorder_metadata, resolve_bag

    assert resolve_bag(BAG / "metadata.yaml") == resolve_bag(BAG / "drawer_close_session_0.mcap") == BAG
    meta = read_recorder_metadata(BAG)
    assert meta["drops"] == 0 and meta["received"] == meta["written"]
    with AnyReader([BAG]) as r:  # type definitions from the bag only (legion_msgs included), hashes checked
        counts = {c.topic: c.msgcount for c in r.connections}
        assert r.connections[0].msgdef.data
    assert (
        {k: v for k, v in counts.items()} == MANIFEST["counts"] == {k: v for k, v in meta["written"].items()}
    )
    with open(BAG / "drawer_close_session_0.mcap", "rb") as f:
        assert make_reader(f).get_summary().statistics.message_count == sum(counts.values())


def test_fixture_records_the_numeric_signature_it_was_recorded_with(rec):
    assert rec.numeric_signature == read_bag_signature(BAG) == MANIFEST["numeric_signature"]
    assert rec.numeric_signature["blas"]["architecture"] and rec.numeric_signature["numpy"]["version"]


def test_policy_offline_reproduces_every_recorded_action(rec, tiny_bundle):
    """Bit-exactly where this machine's numeric signature is the fixture's, within the float32 tolerance
    elsewhere; the judgement says which it applied."""
    j = judge_policy_offline(rec, tiny_bundle)
    assert j.passed, json.dumps(j.to_dict(), default=str)
    assert j.checked == len(rec.actions) - j.metrics["unmatched"] > 50
    assert j.metrics["mode"] == _expected_mode() and j.note.startswith(j.metrics["mode"])
    if j.metrics["mode"] == "bit_exact":
        assert j.metrics["bit_exact"] == j.checked and j.metrics["max_abs_diff"] == 0.0 == j.metrics["atol"]
    else:
        from legion_core.contracts.bundle import load

        assert (
            j.metrics["max_abs_diff"]
            <= j.metrics["atol"]
            == float32_action_atol(load(tiny_bundle).weights)[0]
        )


def _recomputed_here(rec, bundle_dir):
    """The session with every recorded action replaced by this process' own offline action for its
    observation and this process' signature: a bag this machine reproduces bit-exactly, whatever its kernel."""
    from legion_core.contracts.bundle import load
    from legion_core.runtime.policy_runner import PolicyRunner

    runner = PolicyRunner(load(bundle_dir), max_obs_age_s=1e9)
    mine = {}
    for o in rec.observations:
        if o.valid and o.stamp_ns and (runner.skill == o.skill or runner.set_skill(o.skill) == "ok"):
            d = runner.step(o.values, True, o.reason, o.skill, o.stamp_ns * 1e-9, o.stamp_ns * 1e-9)
            mine.setdefault((o.stamp_ns, o.skill), np.array([float(v) for v in d.action]))
    out = copy.deepcopy(rec)
    out.numeric_signature = numeric_signature()
    for a in out.actions:
        a.action = mine.get((a.stamp_ns, a.skill), a.action)
    return out


def test_a_changed_action_is_named_by_its_policy_step(rec, tiny_bundle):
    """One recorded action off by 1e-12 (far below any tolerance a float comparison would use) fails the
    bit-exact judgement, 1e-3 the float32 tolerance; the failure names that step."""
    k = len(rec.actions) // 2
    for base, delta, mode in (
        (_recomputed_here(rec, tiny_bundle), 1e-12, "bit_exact"),
        (rec, 1e-3, "float32_tolerance"),
    ):
        bad = copy.deepcopy(base)
        bad.actions[k].action = bad.actions[k].action.copy()
        bad.actions[k].action[1] += delta
        if mode == "float32_tolerance":
            bad.numeric_signature = None  # a bag of unknown signature: tolerance mode on any machine
        else:
            assert judge_policy_offline(base, tiny_bundle).passed
        j = judge_policy_offline(bad, tiny_bundle)
        assert j.metrics["mode"] == mode
        assert not j.passed and j.failed == 1
        assert j.first_divergence.step == k and f"policy step {k}" in j.first_divergence.detail


FORCED_KERNEL_SCRIPT = """
import json, sys
from legion_core.tools.numeric_signature import numeric_signature
from legion_core.tools.regression.judge import judge_policy_offline
from legion_core.tools.regression.session import read_session
j = judge_policy_offline(read_session(sys.argv[1]), sys.argv[2])
print(json.dumps({"signature": numeric_signature(), "mode": j.metrics["mode"], "reason": j.metrics["mode_reason"],
                  "passed": j.passed, "checked": j.checked, "max_abs_diff": j.metrics["max_abs_diff"],
                  "atol": j.metrics["atol"]}))
"""


def test_a_forced_blas_kernel_changes_the_signature_and_the_judgement_mode(rec, tiny_bundle):
    """Another OpenBLAS kernel (OPENBLAS_CORETYPE, as on a CPU of another family) is another numeric
    signature: the offline judgement switches to the float32 tolerance, says why, and passes."""
    here = numeric_signature()
    forced = "Sandybridge" if here["blas"]["architecture"] == "Haswell" else "Haswell"
    env = dict(os.environ, OPENBLAS_CORETYPE=forced)
    out = subprocess.run([sys.executable, "-c", FORCED_KERNEL_SCRIPT, str(BAG), str(tiny_bundle)], env=env,
                         cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["signature"]["blas"]["architecture"] == forced != here["blas"]["architecture"]
    assert r["signature"]["blas"]["coretype_env"] == forced
    assert not compare_signatures(r["signature"], here)[0]
    assert r["mode"] == "float32_tolerance" and "blas.architecture" in r["reason"] and forced in r["reason"]
    assert r["passed"] and r["checked"] > 50 and r["max_abs_diff"] <= r["atol"] < 1e-4, r


def test_signature_comparison_needs_every_compared_field_known_and_equal():
    here = numeric_signature()
    assert compare_signatures(here, copy.deepcopy(here)) == (True, compare_signatures(here, here)[1])
    assert (
        compare_signatures(None, here)[0] is False
        and "no numeric signature" in compare_signatures(None, here)[1]
    )
    other = copy.deepcopy(here)
    other["numpy"]["simd"] = ["X86_V3"]
    same, why = compare_signatures(other, here)
    assert not same and "numpy.simd" in why
    blind = copy.deepcopy(here)
    blind["blas"] = None  # numpy's BLAS could not be identified (no threadpoolctl): never bit-exact
    same, why = compare_signatures(blind, blind)
    assert not same and "unknown" in why
    informative = copy.deepcopy(here)
    informative["cpu"]["model_name"] = "another CPU"  # the same kernels on another CPU give the same bits
    informative["blas"]["num_threads"] = 64
    assert compare_signatures(informative, here)[0]


def test_live_comparison_of_a_session_with_itself_passes(rec):
    sc = load_scenario(SCENARIO)
    js = compare_live(rec, rec, sc, {"lateness_ms": {"median": 0.1, "p99": 1.0, "max": 2.0, "n": 10}})
    assert [j.name for j in js] == [j for j in ALL_JUDGEMENTS if j != "policy_offline"]
    assert all(j.passed for j in js), [j.to_dict() for j in js if not j.passed]
    by = {j.name: j for j in js}
    assert by["actions"].metrics["coverage"] == 1.0 and by["actions"].metrics["max_err"] == 0.0
    assert by["same_inputs_same_actions"].metrics["mode"] == "bit_exact"
    assert [s for _, s in by["skill_switches"].metrics["recorded"]] == MANIFEST["skills_published"]


def test_identical_inputs_across_machines_are_judged_within_the_float32_tolerance(rec):
    """same_inputs_same_actions compares the recording machine's actions with this machine's: bit-exact
    only when both bags carry the same signature. A replay bag of another signature with rounding-level
    differences passes; a 1e-3 change fails."""
    sc = load_scenario({"judgements": ["same_inputs_same_actions"]})
    for delta, passes in ((3e-7, True), (1e-3, False)):
        new = copy.deepcopy(rec)
        new.numeric_signature = copy.deepcopy(rec.numeric_signature)
        new.numeric_signature["blas"]["architecture"] = "Prescott"
        k = len(new.actions) // 2
        new.actions[k].action = new.actions[k].action + np.r_[delta, 0.0, 0.0, 0.0]
        (j,) = compare_live(rec, new, sc)
        assert j.metrics["mode"] == "float32_tolerance" and "Prescott" in j.metrics["mode_reason"]
        assert j.checked > 50 and j.passed is passes, j.to_dict()
    new.numeric_signature = rec.numeric_signature  # same machine: 3e-7 is a difference
    new.actions[k].action = rec.actions[k].action + np.r_[3e-7, 0.0, 0.0, 0.0]
    (j,) = compare_live(rec, new, sc)
    assert j.metrics["mode"] == "bit_exact" and not j.passed


def _shifted(rec, after_s: float, delta: float):
    new = copy.deepcopy(rec)
    t_cut = rec.start_ns + int(after_s * 1e9)
    for a in new.actions:
        if a.t_ns >= t_cut:
            a.action = a.action + delta
    return new, next(k for k, a in enumerate(rec.actions) if a.t_ns >= t_cut)


def test_live_divergence_names_the_first_diverging_step(rec):
    sc = load_scenario({"judgements": ["actions"]})
    new, k = _shifted(rec, 2.0, 0.2)
    (j,) = compare_live(rec, new, sc)
    assert not j.passed and j.first_divergence.step == k
    assert abs(j.first_divergence.t_s - (rec.actions[k].t_ns - rec.start_ns) * 1e-9) < 1e-3
    # Within tolerance: passes.
    small, _ = _shifted(rec, 2.0, 0.01)
    assert compare_live(rec, small, sc)[0].passed


def test_commands_are_judged_by_tool_step_not_by_the_chained_target(rec):
    """sim2real chains its targets: a replay whose chain drifted (the same steps from another start) passes;
    a replay whose mapping takes bigger steps fails at the first command after the change."""
    sc = load_scenario({"judgements": ["commands"]})
    moving = [c for c in rec.reports if not c.hold and c.stamp_ns]
    assert len(moving) > 10

    def remap(after_s: float, scale: float, offset_rad: float):
        """Each non-hold target rebuilt from the recorded tool step times `scale`, by Jacobian steps from
        a start offset by offset_rad on joint 1 (a yaw of the whole arm: targets ~4 cm away for 0.05 rad,
        steps rotated by offset_rad only, < 1 mm on a 1 cm step)."""
        new = copy.deepcopy(rec)
        t_cut = rec.start_ns + int(after_s * 1e9)
        for c in new.reports:
            c.q_requested = c.q_requested + np.r_[offset_rad, np.zeros(6)]
        prev = new_prev = None
        for c_new, c_old in zip(new.reports, rec.reports, strict=True):
            if prev is not None and c_old.t_ns >= t_cut and not c_old.hold:
                dq = c_old.q_requested - prev
                c_new.q_requested = new_prev + dq * scale
            prev, new_prev = c_old.q_requested, c_new.q_requested
        return new

    (drift,) = compare_live(rec, remap(0.0, 1.0, 0.05), sc)
    assert drift.passed, drift.to_dict()
    assert drift.metrics["max_err"] < 1e-3
    (big,) = compare_live(rec, remap(2.0, 1.6, 0.0), sc)
    assert not big.passed and big.failed > 0
    assert abs(big.first_divergence.t_s - 2.0) < 0.5
    assert "tool step" in big.first_divergence.detail


def test_commands_taken_one_policy_step_earlier_or_later_are_counterparts(rec):
    """sim2real's settle gate takes the first action that arrives after it opens: on a loaded machine the
    replayed runtime's action can arrive just after instead of just before, and the command is stamped
    with the next policy step (commands coverage 0.467 < 0.5 on a busy Xeon:
    docs/decisions/portable-regression-check.md). A command is matched within one policy step (measured
    from the recording) plus stamp_tol_s; three steps off is no counterpart."""
    sc = load_scenario({"judgements": ["commands"]})
    stamps = sorted({a.stamp_ns for a in rec.actions})

    def shifted(steps: int):
        import bisect

        new = copy.deepcopy(rec)
        for k, c in enumerate(new.reports):
            if c.stamp_ns and not c.hold:
                i = bisect.bisect_left(stamps, c.stamp_ns) + (steps if k % 2 else -steps)
                c.stamp_ns = stamps[min(max(i, 0), len(stamps) - 1)]
        return new

    (one,) = compare_live(rec, shifted(1), sc)
    assert one.passed and one.metrics["coverage"] >= 0.95, one.to_dict()
    period = one.metrics["policy_period_s"]
    assert 0.01 < period < 0.05 and one.metrics["stamp_tol_s"] == pytest.approx(period + 0.02, abs=1e-6)
    (three,) = compare_live(rec, shifted(3), sc)
    assert not three.passed and three.metrics["coverage"] < 0.5, three.to_dict()


def test_a_late_replay_fails_replay_timing_only_where_a_live_judgement_failed(rec):
    """Replay lateness (p99 25 ms under stress-ng on the 2-core VM) can only cost counterparts and add
    holds, never make a changed runtime pass: it fails replay_timing where a live judgement failed (the
    failure may be load, not a regression), and is reported, not failed, where they all held."""
    late = {"lateness_ms": {"median": 0.5, "p99": 25.0, "max": 41.0, "n": 1480}}
    sc = load_scenario({"judgements": ["actions", "commands", "replay_timing"]})
    by = {j.name: j for j in compare_live(rec, rec, sc, late)}
    assert by["replay_timing"].passed and "25.0 ms" in by["replay_timing"].note, by["replay_timing"].to_dict()
    new, _ = _shifted(rec, 2.0, 0.2)
    by = {j.name: j for j in compare_live(rec, new, sc, late)}
    assert not by["actions"].passed and not by["replay_timing"].passed
    assert "actions" in by["replay_timing"].note
    (alone,) = compare_live(rec, rec, load_scenario({"judgements": ["replay_timing"]}), late)
    assert not alone.passed  # nothing else to tell whether the lateness mattered: the limit decides
    (on_time,) = compare_live(
        rec, new, load_scenario({"judgements": ["replay_timing"]}), {"lateness_ms": {"p99": 6.0, "n": 9}}
    )
    assert on_time.passed


def test_another_reason_during_a_recorded_hold_is_not_a_new_safety_event(rec):
    """At a skill switch, whether real2sim's first tick or the first detection comes first is timing: the
    replay reported 'observation invalid: drawer_handle' inside the hold the recording was in (the puck
    of the reach phase) and the recording did not. A hold of another reason while the recording held at
    that level is reported (reason_differs), not failed; a higher level inside it, or any hold while the
    recording did not hold, is a new safety event."""
    sc = load_scenario({"judgements": ["safety_events"]})
    holds = [s for s in rec.statuses if s.node == "sim2real_node" and s.level >= 2 and "puck" in s.message]
    assert holds, "the fixture's reach phase holds the arm"
    t = holds[0].t_ns + int(0.3e9)
    msg = "holding: observation invalid: object 'drawer_handle': not detected since the skill started"
    new = copy.deepcopy(rec)
    new.statuses.append(Status(t, "sim2real_node", 2, msg))
    (j,) = compare_live(rec, new, sc)
    assert j.passed and j.metrics["reason_differs"] == [f"sim2real_node: {msg}"], j.to_dict()
    worse = copy.deepcopy(rec)
    worse.statuses.append(Status(t, "sim2real_node", 3, "e-stop latched: operator"))
    (j,) = compare_live(rec, worse, sc)
    assert not j.passed and "e-stop" in j.first_divergence.detail


def test_new_safety_event_and_moved_skill_switch_fail(rec):
    sc = load_scenario({"judgements": ["safety_events", "skill_switches"]})
    new = copy.deepcopy(rec)
    t = rec.start_ns + int(1.5e9)
    new.statuses.append(Status(t, "sim2real_node", 2, "holding: no joint state for 0.150 s (timeout 0.1 s)"))
    t_reach = next(o.t_ns for o in rec.observations if o.skill == "reach")
    for o in new.observations:  # the reach phase starts 0.5 s later in the "replay"
        if o.skill == "reach" and o.t_ns < t_reach + int(0.5e9):
            o.skill = "drawer-close"
    by = {j.name: j for j in compare_live(rec, new, sc)}
    safety, switches = by["safety_events"], by["skill_switches"]
    assert not safety.passed and "no joint state" in safety.first_divergence.detail
    assert abs(safety.first_divergence.t_s - 1.5) < 1e-6
    assert not switches.passed and "reach" in switches.first_divergence.detail


def test_a_replay_may_switch_sooner_than_a_starved_recording_only_on_the_input(rec):
    """A recording made on a loaded machine may have switched skill late (0.6 s once in a stressed suite): the
    replay switching on time is no regression. Switching sooner than the input that asks for the skill is."""
    sc = load_scenario({"judgements": ["skill_switches"]})
    t_reach = next(o.t_ns for o in rec.observations if o.skill == "reach")
    t_input = next(t for t, s in rec.skills if s == "reach")
    starved = copy.deepcopy(rec)  # the recording reacted 0.5 s late to the "reach" input
    for o in starved.observations:
        if o.skill == "reach" and o.t_ns < t_reach + int(0.5e9):
            o.skill = "drawer-close"
    (j,) = compare_live(starved, rec, sc)
    assert j.passed, j.to_dict()
    early = copy.deepcopy(starved)  # ... and a replay that switches 0.5 s before anyone asked for reach
    for o in early.observations:
        if o.skill == "drawer-close" and t_input - int(0.5e9) <= o.t_ns < t_input:
            o.skill = "reach"
    (j,) = compare_live(starved, early, sc)
    assert not j.passed and "reach" in j.first_divergence.detail


def test_safety_events_start_at_the_interface_hold_level(rec):
    """A safety event is a status of level >= StatusLevel.HOLD (legion_core/contracts/interface.py, the
    values of legion_msgs/RuntimeStatus): a new warning in the replay is no new safety state, a new hold is."""
    from legion_core.contracts.interface import StatusLevel

    sc = load_scenario({"judgements": ["safety_events"]})
    t = rec.start_ns + int(1.5e9)
    warned = copy.deepcopy(rec)
    warned.statuses.append(Status(t, "real2sim_node", int(StatusLevel.WARN), "detection late: 0.2 s"))
    assert compare_live(rec, warned, sc)[0].passed
    held = copy.deepcopy(rec)
    held.statuses.append(Status(t, "real2sim_node", int(StatusLevel.HOLD), "holding: no detection for 0.5 s"))
    j = compare_live(rec, held, sc)[0]
    assert not j.passed and j.metrics["new"] == ["real2sim_node: holding: no detection for 0.5 s"]


def test_scenarios_are_validated():
    sc = load_scenario(SCENARIO)
    assert sc.tolerances["offline_action_atol"] == 0.0 and set(sc.judgements) == set(ALL_JUDGEMENTS)
    assert load_scenario(SCENARIO.parent / "offline.yaml").judgements == ["policy_offline"]
    with pytest.raises(ValueError, match="unknown key"):
        load_scenario({"tolerance": {}})
    with pytest.raises(ValueError, match="unknown tolerance"):
        load_scenario({"tolerances": {"action_tol": 0.1}})
    with pytest.raises(ValueError, match="unknown judgement"):
        load_scenario({"judgements": ["actionz"]})


def test_closed_loop_scene_is_the_recorded_placement(rec):
    """camera -> sim through the calibration, then the closest of the 50 seeded placements: the one the
    session was recorded in."""
    from legion_core.tools.regression.closed_loop import closest_placement, recorded_scene
    from sim2real.calibration import sim_calibration

    cal = sim_calibration()
    scene = recorded_scene(rec, "drawer-close", cal)
    v, d = closest_placement("drawer-close", scene, cal)
    assert v == MANIFEST["twin"]["variation"] and d < 1e-3
    assert np.all(np.isfinite(scene["drawer_handle"]))


def test_copy_topics_makes_a_smaller_bag_with_the_same_decisions(tmp_path, rec):
    from legion_core.tools.bags.store import copy_topics

    keep = ["/legion/observation", "/legion/action", "/legion/active_skill"]
    counts = copy_topics(BAG, tmp_path / "small", keep)
    assert set(counts) == set(keep) and counts["/legion/action"] == MANIFEST["counts"]["/legion/action"]
    small = read_session(tmp_path / "small")
    assert small.numeric_signature == rec.numeric_signature  # the copy keeps the machine it came from
    assert [a.action.tolist() for a in small.actions] == [a.action.tolist() for a in rec.actions]
    assert not small.reports and small.topics.keys() <= set(keep)
