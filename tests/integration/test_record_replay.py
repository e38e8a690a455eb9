"""Record and replay on the real sim graph: a session of twin + runtime with the tiny bundle is
recorded as a rosbag2/MCAP bag (opened with rosbags' and mcap's readers, counts against what was sent),
replayed through a fresh runtime that must pass the regression check, checked against another bundle that
must fail at a named step, re-run closed loop in the twin, and a synthetic 2000 msg/s flood must be recorded
without a single drop.

Regenerate the offline fixture of tests/unit/test_regression.py with
    .venv/bin/python -m tests.integration.test_record_replay --make-fixture tests/data/replay
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from legion_core.tools.ros_env import child_env, ensure_workspace

ensure_workspace()

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "scenarios" / "default.yaml"
VARIATION = 7  # not the twin's default placement, so that the closed loop has to find it


@dataclass
class RecordedSession:
    bag: Path
    bundle: Path
    other_bundle: Path | None
    stats: object
    published_skills: list[str]


def record_sim_session(
    out: Path, bundle: Path, seconds: float = 6.0, topics=None, name: str = "session"
) -> RecordedSession:
    """Twin + real2sim + policy + sim2real with `bundle` in a child process; this process records and plays
    the operator: drawer-close, then reach (the drawer scene has no puck: invalid observations, the policy
    stops, sim2real holds — a safety event on record), then drawer-close again. The plan and the recording's
    `seconds` run from the moment the graph is ready (its topics are published), not from the recorder's
    start: on a loaded machine discovery takes longer, and a recording timed from its start ended before
    the last skill was published."""
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from std_msgs.msg import String

    from legion_core.tools.bags.record import record
    from tests.integration.rosutil import Probe

    params = {
        "policy.bundle": bundle,
        "sim2real.bundle": bundle,
        "real2sim.bundle": bundle,
        "twin.task": "drawer-close",
        "twin.variation": VARIATION,
    }
    cmd = [sys.executable, "-m", "legion_ros.composed", "--nodes", "twin,real2sim,policy,sim2real"]
    for k, v in params.items():
        cmd += ["-p", f"{k}:={v}"]
    with open(out / f"{name}.graph.log", "w") as log:
        proc = subprocess.Popen(
            cmd, env=child_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    probe = Probe(f"operator_{os.getpid()}")
    latched = QoSProfile(
        depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
    )
    skill_pub = probe.node.create_publisher(String, "/legion/active_skill", latched)
    ready = threading.Event()
    stop = threading.Event()
    result: dict = {}

    def run() -> None:
        result["stats"] = record(out / f"{name}.mcap", topics, stop_event=stop,
                                 require_topics=["/joint_states", "/legion/observation", "/legion/action"],
                                 on_ready=lambda _r: ready.set())  # fmt: skip

    th = threading.Thread(target=run)
    th.start()
    try:
        probe.wait_for(ready.is_set, 60, "the graph's topics")
        # The first skill a while after the recorder is up: its reliable subscriptions must have matched the
        # runtime's publishers (discovery is slower on a loaded machine) before the first observation.
        plan = [(0.8, "drawer-close"), (3.0, "reach"), (4.0, "drawer-close")]
        assert plan[-1][0] < seconds
        t0 = time.monotonic()
        sent: list[str] = []
        while th.is_alive():
            while plan and time.monotonic() - t0 >= plan[0][0]:
                skill_pub.publish(String(data=plan[0][1]))
                sent.append(plan.pop(0)[1])
            if time.monotonic() - t0 >= seconds:
                stop.set()
            probe.spin_for(0.02)
    finally:
        stop.set()
        th.join()
        probe.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(15)
    return RecordedSession(out / name, bundle, None, result["stats"], sent)


# ------------------------------------------------------------------------------------------------ tests
pytestmark = pytest.mark.ros


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> RecordedSession:
    from tests.bundle_factory import make_tiny_bundle

    root = tmp_path_factory.mktemp("record_replay")
    bundle = make_tiny_bundle(root / "run3", root / "tiny")[2]
    s = record_sim_session(root, bundle)
    s.other_bundle = make_tiny_bundle(root / "run4", root / "tiny_seed4", seed=4)[2]
    return s


def test_recording_is_a_complete_rosbag2_mcap_bag(session):
    import yaml
    from mcap.reader import make_reader
    from rosbags.highlevel import AnyReader

    from legion_core.tools.bags.store import read_recorder_metadata
    from legion_core.tools.bags.topics import RUNTIME_TOPICS

    st = session.stats
    assert st.drops == 0 and st.received == st.written > 500, st.to_dict()
    # rosbag2 layout, as `ros2 bag record -s mcap -o session` writes it.
    assert sorted(p.name for p in session.bag.iterdir()) == ["metadata.yaml", "session_0.mcap"]
    info = yaml.safe_load((session.bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert info["version"] == 9 and info["storage_identifier"] == "mcap"
    assert info["relative_file_paths"] == ["session_0.mcap"]
    meta_counts = {t["topic_metadata"]["name"]: t["message_count"] for t in info["topics_with_message_count"]}
    custom = read_recorder_metadata(session.bag)
    assert custom["drops"] == 0 and custom["duration_s"] > 5.0 and custom["bag_span_s"] > 4.0
    assert custom["received"] == custom["written"] == {k: v for k, v in meta_counts.items()}
    assert set(RUNTIME_TOPICS) - set(meta_counts) == set()  # every runtime topic has a connection
    # The recording machine's numeric signature: what the offline check may compare bit-exactly against.
    from legion_core.tools.bags.store import read_bag_signature
    from legion_core.tools.numeric_signature import compare, numeric_signature

    sig = read_bag_signature(session.bag)
    assert sig is not None and compare(sig, numeric_signature())[0], sig
    # rosbags: type definitions embedded (legion_msgs too), RIHS01 hashes verified on open.
    with AnyReader([session.bag]) as r:
        counts: dict[str, int] = {}
        seqs = []
        diag = []
        cmd_t = []
        for c, t, raw in r.messages():
            counts[c.topic] = counts.get(c.topic, 0) + 1
            if c.topic == "/legion/action":
                seqs.append(r.deserialize(raw, c.msgtype).sequence)
            elif c.topic == "/joint_command":
                cmd_t.append(t)
            elif c.topic == "/diagnostics":
                m = r.deserialize(raw, c.msgtype)
                if m.status[0].name == "legion/sim2real_node":
                    kv = {k.key: k.value for k in m.status[0].values}
                    diag.append((t, int(kv["commands_sent"])))
    assert counts == {k: v for k, v in meta_counts.items() if v}
    for topic in ("/joint_states", "/detections", "/legion/observation", "/legion/action", "/joint_command"):
        assert counts[topic] > 20, (topic, counts)
    # Nothing the runtime published was lost: policy actions are numbered, and sim2real counts its commands.
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "gap in PolicyAction.sequence"
    assert len(diag) >= 3
    (ta, ca), (tb, cb) = diag[0], diag[-1]
    in_bag = sum(1 for t in cmd_t if ta < t <= tb)
    assert abs(in_bag - (cb - ca)) <= 2, f"{in_bag} joint commands recorded, sim2real sent {cb - ca}"
    # mcap's own reader: the ros2 profile, ros2msg schemas, the counts.
    with open(session.bag / "session_0.mcap", "rb") as f:
        reader = make_reader(f)
        summary = reader.get_summary()
        assert reader.get_header().profile == "ros2"
        assert summary.statistics.message_count == sum(counts.values())
        schemas = {s.name: s for s in summary.schemas.values()}
        assert schemas["legion_msgs/msg/Observation"].encoding == "ros2msg"
        assert b"float64[] values" in schemas["legion_msgs/msg/Observation"].data
        latched = [c for c in summary.channels.values() if c.topic == "/legion/active_skill"][0]
        assert "transient_local" in latched.metadata["offered_qos_profiles"]
        assert sum(1 for _ in reader.iter_messages()) == sum(counts.values())


def test_record_flood_2000_msgs_per_s_without_drops(tmp_path):
    from legion_core.bench.bags import measure_throughput

    for reliable in (True, False):
        r = measure_throughput(tmp_path, rate_hz=2000.0, seconds=1.5, reliable=reliable)
        print(json.dumps(r))
        assert r["published"] == 3000 and r["publish_rate_hz"] > 1500, r
        assert r["drops"] == 0 and r["missing"] == 0 and r["in_bag"] == 3000 and r["in_order"], r


def _humble_reads(meta_text: str) -> dict:
    """What ROS 2 Humble's rosbag2 does with a metadata.yaml, in Python: rosbag2_storage metadata_io.cpp
    (humble branch) decodes each field with yaml-cpp's `as<T>()`, which throws on a wrong type, and the
    player parses `offered_qos_profiles` as a YAML string of Rosbag2QoS (rosbag2_transport qos.cpp: integer
    policies, sec/nsec durations). Returns {topic: [qos dicts]}; AssertionError says what Humble rejects."""
    import yaml

    info = yaml.safe_load(meta_text)["rosbag2_bagfile_information"]
    version = info["version"]
    assert isinstance(version, int)

    def u64(v, what):
        assert isinstance(v, int) and not isinstance(v, bool) and v >= 0, f"{what}: {v!r} is not a uint64"

    assert isinstance(info["storage_identifier"], str)
    u64(info["duration"]["nanoseconds"], "duration")
    u64(info["starting_time"]["nanoseconds_since_epoch"], "starting_time")
    u64(info["message_count"], "message_count")
    qos = {}
    for t in info["topics_with_message_count"]:
        m = t["topic_metadata"]
        assert all(isinstance(m[k], str) for k in ("name", "type", "serialization_format")), m
        u64(t["message_count"], "topic message_count")
        if version >= 4:
            raw = m["offered_qos_profiles"]
            assert isinstance(raw, str), (
                f"{m['name']}: offered_qos_profiles is {type(raw).__name__}, Humble needs a string"
            )
            profiles = yaml.safe_load(raw) if raw else []
            for p in profiles:
                for k in ("history", "reliability", "durability", "liveliness", "depth"):
                    assert isinstance(p[k], int), (m["name"], k, p[k])
                for k in ("deadline", "lifespan", "liveliness_lease_duration"):
                    u64(p[k]["sec"], f"{k}.sec")
                    u64(p[k]["nsec"], f"{k}.nsec")
                assert isinstance(p["avoid_ros_namespace_conventions"], bool)
            qos[m["name"]] = profiles
    assert all(isinstance(f, str) for f in info["relative_file_paths"])
    if version >= 3:
        assert isinstance(info["compression_format"], str) and isinstance(info["compression_mode"], str)
    if version >= 5:
        for f in info["files"]:
            assert isinstance(f["path"], str)
            u64(f["starting_time"]["nanoseconds_since_epoch"], "file starting_time")
            u64(f["duration"]["nanoseconds"], "file duration")
            u64(f["message_count"], "file message_count")
    return qos


def test_metadata_version_8_is_what_humble_reads(tmp_path):
    """`legion record --metadata-version 8`: a bag ROS 2 Humble's `ros2 bag info/play` reads (its metadata
    parser, reproduced above), with the reliable QoS recorded as integers; version 9 (the default) is not
    (its QoS is a YAML list). Both read back with rosbags."""
    import yaml
    from rosbags.highlevel import AnyReader

    from legion_core.tools.bags.record import Recorder
    from legion_core.tools.bags.store import RecordingError, open_writer

    topic, count = "/legion_test/humble_bag", 200
    proc = subprocess.Popen(
        [sys.executable, "-m", "legion_core.cli", "bench", "flood", "--topic", topic, "--rate", "400",
         "--count", str(count)],
        env=child_env(), stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    rec = Recorder(tmp_path / "humble", [topic], discovery_s=10.0, metadata_version=8)
    rec.start()
    stop = threading.Event()

    def _until_all_received() -> None:
        end = time.monotonic() + 120
        while rec.stats.received < count and time.monotonic() < end:
            time.sleep(0.05)
        stop.set()

    threading.Thread(target=_until_all_received, daemon=True).start()
    stats = rec.run(stop_event=stop)
    proc.wait(timeout=60)
    assert stats.written == count and stats.drops == 0, stats.to_dict()
    meta = (tmp_path / "humble" / "metadata.yaml").read_text()
    assert yaml.safe_load(meta)["rosbag2_bagfile_information"]["version"] == 8
    qos = _humble_reads(meta)
    # RELIABLE; history is UNKNOWN (3) as in bags recorded by ros2 bag itself (the graph does not report it).
    assert qos[topic][0]["reliability"] == 1 and qos[topic][0]["history"] == 3
    with AnyReader([tmp_path / "humble"]) as r:
        assert sum(1 for _ in r.messages()) == count
    # The default (9) is not Humble-readable: that is why the option exists.
    w = open_writer(tmp_path / "jazzy")
    w.open()
    from legion_core.tools.bags.store import legion_typestore

    w.add_connection(topic, "sensor_msgs/msg/JointState", typestore=legion_typestore())
    w.close()
    with pytest.raises(AssertionError, match="Humble needs a string"):
        _humble_reads((tmp_path / "jazzy" / "metadata.yaml").read_text())
    with pytest.raises(RecordingError, match="8 for ROS 2 Humble"):
        open_writer(tmp_path / "v7", 7)


def test_replay_publishes_recorded_messages_with_clock(session):
    """Open-loop replay into a probe, 4x faster, with /clock: every recorded message of the replayed topics
    arrives in order, the clock is bag time and never runs backwards, and the schedule lateness is measured.
    (Reliable topics, so that exact counts do not depend on best-effort delivery on a loaded machine.)"""
    from legion_msgs.msg import Observation
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from rosgraph_msgs.msg import Clock
    from std_msgs.msg import String

    from legion_core.tools.bags.play import replay
    from legion_core.tools.bags.store import load_messages
    from tests.integration.rosutil import Probe

    rel = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
    latched = QoSProfile(
        depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
    )
    topics = ["/legion/observation", "/legion/active_skill"]
    probe = Probe(f"replay_probe_{os.getpid()}")
    try:
        clock = probe.record("/clock", Clock, rel)
        skills = probe.record("/legion/active_skill", String, latched)
        obs = probe.record("/legion/observation", Observation, rel)
        out: dict = {}

        def run() -> None:
            out["st"] = replay(
                session.bag, 4.0, topics, sim_clock=True, wait_subscribers_s=20, start_delay_s=0.5
            )

        th = threading.Thread(target=run)
        th.start()
        while th.is_alive():
            probe.spin_for(0.05)
        probe.spin_for(0.5)
    finally:
        probe.close()
    st = out["st"]
    msgs, _ = load_messages(session.bag, topics)
    n_obs = sum(1 for m in msgs if m.topic == "/legion/observation")
    assert st.messages["/legion/observation"] == n_obs and len(obs) == n_obs
    assert [m.data for _, m in skills] == session.published_skills
    t_clock = [m.clock.sec * 10**9 + m.clock.nanosec for _, m in clock]
    assert t_clock == sorted(t_clock) and t_clock[0] == st.start_time_ns
    assert st.clock_messages == len(t_clock) and t_clock[-1] == msgs[-1].t_ns
    assert st.wall_duration_s < st.bag_duration_s / 4 + 1.0
    lat = st.lateness_ms
    print("replay lateness [ms]:", lat)
    assert lat["n"] == sum(st.messages.values()) and lat["median"] < 5.0


def test_replay_through_fresh_runtime_passes_the_regression_check(session, tmp_path):
    from legion_core.tools.regression.live import check

    res = check(session.bag, SCENARIO, session.bundle, out_dir=tmp_path)
    by = {j.name: j for j in res.judgements}
    assert res.passed, "\n".join(res.lines())
    off = by["policy_offline"]
    # Recorded and checked on this machine in this run: the same numeric signature, so bit-exact.
    assert off.metrics["mode"] == "bit_exact" and off.metrics["atol"] == 0.0, off.to_dict()
    assert (
        off.metrics["bit_exact"] == off.checked == len(read_actions(session.bag)) - off.metrics["unmatched"]
    )
    assert by["same_inputs_same_actions"].checked > 10  # identical live inputs did give identical actions
    assert [s for _, s in by["skill_switches"].metrics["recorded"]] == [
        "drawer-close",
        "reach",
        "drawer-close",
    ]
    assert by["safety_events"].metrics["recorded"] >= 1  # the reach phase held the arm, in both runs
    lines = (tmp_path / "judgements.jsonl").read_text().splitlines()
    assert len(lines) == len(res.judgements) + 1 and json.loads(lines[-1])["passed"] is True
    print("replay lateness [ms]:", res.replay["lateness_ms"])


def read_actions(bag: Path) -> list:
    from legion_core.tools.regression.session import read_session

    return read_session(bag, max_joint_states=0).actions


def test_check_with_another_bundle_fails_at_the_first_step(session, tmp_path, capsys):
    """Through the CLI (exit code): a bundle of another seed diverges at the very first policy step, offline
    and live."""
    from legion_core.cli import main

    code = main(["replay", str(session.bag), "--check", str(SCENARIO), "--bundle", str(session.other_bundle),
                 "--out", str(tmp_path)])  # fmt: skip
    out = capsys.readouterr().out
    lines = [json.loads(ln) for ln in out.splitlines() if ln.startswith("{")]
    assert code == 1, out
    summary = lines[-1]
    assert summary["summary"] and not summary["passed"]
    assert {"policy_offline", "actions"} <= set(summary["failed"]), out
    first = summary["first_divergence"]
    # Step 0 unless the recorder missed the observation of the very first action (then that action is
    # "unmatched", within the allowance, and the first checkable step is named).
    from legion_core.tools.regression.session import read_session

    rec = read_session(session.bag, max_joint_states=0)
    observed = {(o.stamp_ns, o.skill) for o in rec.observations if o.valid}
    k0 = next(k for k, a in enumerate(rec.actions) if (a.stamp_ns, a.skill) in observed)
    assert k0 <= 2
    assert first["judgement"] == "policy_offline" and first["step"] == k0, out
    assert "recorded action" in first["detail"]
    live = next(ln for ln in lines if ln.get("judgement") == "actions")
    assert live["first_divergence"]["step"] is not None and live["failed"] > 0, out


def test_closed_loop_in_the_twin_finds_the_recorded_placement(session, tmp_path):
    from legion_core.tools.regression.closed_loop import closed_loop

    res = closed_loop(
        session.bag, session.bundle, out_dir=tmp_path, scenario={"closed_loop": {"timeout_s": 8.0}}
    )
    assert res.variation == VARIATION and res.placement_distance_m < 1e-3
    assert res.simulated["actions"] > 10
    assert res.recorded["has_success_topic"]
    assert res.passed == (res.recorded["success"] == res.simulated["success"]), res.judgements


# ------------------------------------------------------------------------------------- fixture generator
def make_fixture(out_dir: Path) -> None:
    """Record the small offline fixture of tests/unit/test_regression.py (run by hand, see the docstring).
    The tiny bundle is built with the language embeddings in OUT/legion_cache (computed here on the first
    run, reused after): MiniLM's embeddings differ in the last bits between CPUs (legion_core/contracts/language.py),
    and the unit tests rebuild the bundle from the same cache, so that it is the same bundle everywhere. The
    bag's metadata and the manifest record this machine's numeric signature (what the offline check
    compares bit-exactly against: docs/decisions/portable-regression-check.md)."""
    import shutil
    import tempfile

    import yaml

    from legion_core.contracts.bundle_schema import sha256_file
    from legion_core.contracts.language import CACHE_DIR_ENV
    from legion_core.tools.bags.store import read_bag_signature
    from legion_core.tools.numeric_signature import numeric_signature
    from tests.bundle_factory import make_tiny_bundle

    tmp = Path(tempfile.mkdtemp(prefix="replay_fixture_"))
    old_cache = os.environ.get(CACHE_DIR_ENV)
    os.environ[CACHE_DIR_ENV] = str((out_dir / "legion_cache").resolve())
    try:
        bundle = make_tiny_bundle(tmp / "run", tmp / "tiny")[2]
    finally:  # only the embeddings go into the fixture's cache, not the twin's generated scene files
        if old_cache is None:
            os.environ.pop(CACHE_DIR_ENV)
        else:
            os.environ[CACHE_DIR_ENV] = old_cache
    from legion_core.tools.bags.topics import RUNTIME_TOPICS

    topics = [t for t in RUNTIME_TOPICS if t != "/diagnostics"]
    s = record_sim_session(tmp, bundle, seconds=5.0, topics=topics, name="drawer_close_session")
    assert s.stats.drops == 0
    dst = out_dir / "drawer_close_session"
    if dst.exists():
        shutil.rmtree(dst)
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(s.bag, dst)
    signature = read_bag_signature(dst)
    assert signature is not None and signature["blas"] == numeric_signature()["blas"]
    manifest = {
        "bag": dst.name,
        "bundle": "tests.bundle_factory.make_tiny_bundle(run_dir, out_dir) (seed 3, tasks reach + drawer-close)",
        "bundle_weights_sha256": sha256_file(bundle / "weights.safetensors"),
        "twin": {"task": "drawer-close", "variation": VARIATION},
        "skills_published": s.published_skills,
        "numeric_signature": signature,
        "counts": s.stats.counts(),
    }
    (out_dir / "manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    print(json.dumps(manifest, indent=1))


if __name__ == "__main__":
    import argparse

    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    p = argparse.ArgumentParser()
    p.add_argument("--make-fixture", type=Path, required=True)
    make_fixture(p.parse_args().make_fixture)
