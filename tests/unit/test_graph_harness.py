"""The sim-graph harness (legion_core/tools/graph.py) without a graph: the parameters and command lines each
caller assembles, the observer's bookkeeping from plain messages, and the process life cycle with stand-in
processes. The harness on a running graph: tests/e2e/test_shipped_model.py (demo), tests/e2e/test_long_horizon.py
(chain runner), tests/integration/test_record_replay.py (closed-loop replay)."""

from __future__ import annotations

import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

import legion_core.tools.ros_env as ros_env
from legion_core.contracts.interface import StatusLevel
from legion_core.tools.graph import (
    CHAIN_GRAPH_NODES,
    SIM_GRAPH_NODES,
    CameraLoop,
    GraphProcess,
    Observations,
    SimGraph,
    params_for,
    perception_processes,
    sim_graph_params,
)
from legion_core.tools.ros_env import composed_argv, stop_process_group


# ------------------------------------------------------------------------------------------ parameters
def test_demo_parameters():
    p = sim_graph_params("/b", "drawer-open", variation=2, seed=1, scene="", video_path="/o/demo.mp4")
    assert p == {"policy.bundle": "/b", "sim2real.bundle": "/b", "real2sim.bundle": "/b", "twin.task": "drawer-open",
                 "twin.variation": 2, "twin.seed": 1, "twin.scene": "", "twin.video_path": "/o/demo.mp4"}  # fmt: skip


def test_camera_perception_graph_renders_and_detects_in_a_process_of_its_own(tmp_path):
    """`camera`: the twin renders instead of publishing simulator-state detections, every node reads the
    camera-perception calibration, perception_node runs apart; both with the large-frames DDS profile."""
    from sim2real.calibration import CAMERA_CALIBRATION_PATH

    params = sim_graph_params("/b", "drawer-button", sequencer=True, extra={"perception.quad_decimate": 1.0})
    main, perception = perception_processes(CHAIN_GRAPH_NODES, params, "camera", tmp_path / "g.log",
                                            CameraLoop(rate_hz=7.0, width=800, height=600))  # fmt: skip
    assert main.nodes == CHAIN_GRAPH_NODES and perception.nodes == "perception"
    assert main.params["twin.ground_truth_detections"] is False
    assert (
        main.params["twin.camera_rate_hz"],
        main.params["twin.camera_width"],
        main.params["twin.camera_height"],
    ) == (7.0, 800, 600)
    for node in ("twin", "policy", "sim2real", "real2sim"):
        assert main.params[f"{node}.calibration"] == str(CAMERA_CALIBRATION_PATH)
    assert (
        perception.params == {"perception.quad_decimate": 1.0}
        and "perception.quad_decimate" not in main.params
    )
    assert main.large_frames and perception.large_frames
    assert perception.log_path == tmp_path / "g.perception.log"
    # ground truth: the graph as given, one process, the default DDS set-up.
    (only,) = perception_processes(CHAIN_GRAPH_NODES, params, "ground_truth", tmp_path / "g.log")
    assert only.params == params and not only.large_frames
    with pytest.raises(ValueError, match="perception must be one of"):
        perception_processes(CHAIN_GRAPH_NODES, params, "lidar", tmp_path / "g.log")


def test_large_frames_profile_never_overrides_a_labs_own(monkeypatch):
    env = ros_env.use_large_frames_profile({})
    assert env == {"FASTDDS_DEFAULT_PROFILES_FILE": str(ros_env.LARGE_FRAMES_DDS_PROFILE)}
    assert ros_env.LARGE_FRAMES_DDS_PROFILE.exists()
    humble = ros_env.use_large_frames_profile({"ROS_DISTRO": "humble"})  # Fast DDS 2 reads the old name
    assert humble["FASTRTPS_DEFAULT_PROFILES_FILE"] == str(ros_env.LARGE_FRAMES_DDS_PROFILE)
    mine = {"FASTRTPS_DEFAULT_PROFILES_FILE": "/lab/profile.xml"}
    assert ros_env.use_large_frames_profile(dict(mine)) == mine


def test_chain_parameters_video_after_extra_and_fps_only_as_default():
    p = sim_graph_params("/b", "drawer_button", seed=1, sequencer=True, video_path="/v.mp4", video_fps=5.0)
    assert p == {"policy.bundle": "/b", "sim2real.bundle": "/b", "real2sim.bundle": "/b", "sequencer.bundle": "/b",
                 "twin.task": "drawer_button", "twin.seed": 1, "twin.video_path": "/v.mp4", "twin.video_fps": 5.0}  # fmt: skip
    assert "twin.scene" not in p and "twin.variation" not in p  # left at the node's defaults
    q = sim_graph_params("/b", "s", sequencer=True, extra={"twin.video_fps": 2.0, "twin.video_path": "/x"},
                         video_path="/v.mp4", video_fps=5.0)  # fmt: skip
    assert q["twin.video_fps"] == 2.0 and q["twin.video_path"] == "/v.mp4"
    # No video: no frame rate either.
    assert "twin.video_fps" not in sim_graph_params("/b", "s", video_path=None, video_fps=5.0)


def test_closed_loop_and_runtime_parameters_fix_the_skill():
    p = sim_graph_params("/b", "drawer-close", variation=7, scene="", skill="drawer-close",
                         extra={"policy.z_mode": "zero", "twin.scene": "override"})  # fmt: skip
    assert p["policy.skill"] == p["real2sim.skill"] == "drawer-close"
    assert p["twin.variation"] == 7 and p["policy.z_mode"] == "zero"
    assert p["twin.scene"] == "override"  # extra (scenario runtime params) wins, as before
    assert "twin.seed" not in p and "sequencer.bundle" not in p


def test_params_for_one_process_of_a_layout():
    p = sim_graph_params("/b", "t", scene="", skill="t")
    assert params_for(p, "twin") == {"twin.task": "t", "twin.scene": ""}
    assert params_for(p, "real2sim,policy") == {"policy.bundle": "/b", "real2sim.bundle": "/b",
                                                "policy.skill": "t", "real2sim.skill": "t"}  # fmt: skip
    assert set(params_for(p, SIM_GRAPH_NODES)) == set(p)


def test_composed_command_line():
    argv = composed_argv("twin,policy", {"twin.task": "t", "policy.bundle": "/b"})
    assert argv == [sys.executable, "-m", "legion_ros.composed", "--nodes", "twin,policy",
                    "-p", "twin.task:=t", "-p", "policy.bundle:=/b"]  # fmt: skip
    argv = composed_argv("sim2real", ["a.b:=1"], handoff=False, realtime_priority=80, cpu_affinity="2-3")
    assert argv[5:] == ["--no-handoff", "--realtime-priority", "80", "--cpu-affinity", "2-3", "-p", "a.b:=1"]
    assert "--cpu-affinity" not in composed_argv("x", {}, cpu_affinity="all")
    assert "--cpu-affinity" not in composed_argv("x", {}, cpu_affinity="")
    assert "--realtime-priority" not in composed_argv("x", {}, realtime_priority=0)
    gp = GraphProcess(CHAIN_GRAPH_NODES, {"twin.seed": 1}, handoff=False)
    assert gp.argv() == composed_argv(CHAIN_GRAPH_NODES, {"twin.seed": 1}, handoff=False)
    # The regression check's runtime is the same command line.
    from legion_core.tools.regression.processes import runtime_command

    assert runtime_command("real2sim", {"a.b": 2}) == composed_argv("real2sim", {"a.b": 2})


# ---------------------------------------------------------------------------------------- observations
def test_twin_success_latest_value_and_first_time():
    s = Observations()
    s.on_twin_success(SimpleNamespace(data=False))
    assert not s.twin_success and s.twin_success_at is None
    s.on_twin_success(SimpleNamespace(data=True))
    t = s.twin_success_at
    assert s.twin_success and t is not None
    s.on_twin_success(SimpleNamespace(data=False))
    s.on_twin_success(SimpleNamespace(data=True))
    assert s.twin_success and s.twin_success_at == t  # the first success time is kept
    s.clear()
    assert s.twin_success_at is None


def test_actions_holds_and_steps_counted_until_clear():
    s = Observations()
    for _ in range(3):
        s.on_action(None)
    assert s.actions == 3 and s.first_action_at is not None
    s.on_status(SimpleNamespace(level=StatusLevel.WARN, node="sim2real", message="slow"))
    s.on_status(SimpleNamespace(level=StatusLevel.HOLD, node="sim2real", message="stale observation"))
    s.on_status(SimpleNamespace(level=StatusLevel.ESTOP, node="sim2real", message="e-stop"))
    assert s.holds == ["sim2real: stale observation", "sim2real: e-stop"]
    for hold in (False, True, False):
        s.on_command_report(SimpleNamespace(hold=hold))
    assert s.steps == 2
    s.clear()
    assert (s.actions, s.first_action_at, s.holds, s.steps) == (0, None, [], 0)


def test_joint_states_log_is_bounded_and_arm_motion_measured():
    s = Observations()
    t0 = time.monotonic()
    for k in range(Observations.Q_LOG_MAX + 1):
        s.on_joint_state(SimpleNamespace(position=[0.001 * k] * 7 + [0.04, 0.04]))  # gripper fingers ignored
    assert len(s.q_log) == Observations.Q_LOG_MAX + 1 - Observations.Q_LOG_MAX // 2
    assert s.q.shape == (7,) and s.q[0] == pytest.approx(0.001 * Observations.Q_LOG_MAX)
    span = 0.001 * (Observations.Q_LOG_MAX - Observations.Q_LOG_MAX // 2)
    assert s.arm_motion_rad(t0) == pytest.approx(span)
    assert s.arm_motion_rad(time.monotonic() + 1.0) == 0.0


def test_object_joints_from_the_twins_diagnostics():
    kv = lambda k, v: SimpleNamespace(key=k, value=v)  # noqa: E731
    m = SimpleNamespace(status=[
        SimpleNamespace(name="sim2real: runtime", values=[kv("joint goal_slidey", "9")]),
        SimpleNamespace(name="twin: scene", values=[kv("joint goal_slidey", "-0.12"), kv("task", "drawer")]),
    ])  # fmt: skip
    s = Observations()
    s.on_diagnostics(m)
    assert s.object_joints == {"goal_slidey": pytest.approx(-0.12)}


# ------------------------------------------------------------------------------------------- life cycle
class _Exited:
    """A process that has already exited with `code` (stop_process_group only reads it)."""

    def __init__(self, code: int) -> None:
        self.returncode, self.pid = code, -1

    def poll(self):
        return self.returncode


class _FakeProcess(GraphProcess):
    def __init__(self, code: int = 0, fail: bool = False, started: list | None = None) -> None:
        super().__init__("twin", {})
        self.code, self.fail, self.started = code, fail, started if started is not None else []

    def start(self):
        if self.fail:
            raise OSError("cannot start")
        self.started.append(self)
        return _Exited(self.code)


@pytest.fixture
def no_workspace(monkeypatch):
    monkeypatch.setattr(ros_env, "ensure_workspace", lambda *a, **k: None)


def test_exit_code_is_the_first_failing_process_and_close_is_idempotent(no_workspace):
    g = SimGraph([_FakeProcess(0), _FakeProcess(3), _FakeProcess(5)], node_name=None)
    assert g.exit_code is None
    with g:
        assert g.node is None and g.started_at is not None
    assert g.exit_codes == [0, 3, 5] and g.exit_code == 3
    assert g.close() == 3 and g.exit_codes == [0, 3, 5]
    assert SimGraph(_FakeProcess(0), node_name=None).start().close() == 0


def test_a_failed_start_stops_the_processes_already_started(no_workspace):
    started: list = []
    g = SimGraph([_FakeProcess(0, started=started), _FakeProcess(fail=True)], node_name=None)
    with pytest.raises(OSError):
        g.start()
    assert len(started) == 1 and g.exit_codes == [0]


def test_unknown_watch_is_refused():
    with pytest.raises(ValueError, match="cannot watch"):
        SimGraph(_FakeProcess(), watch=("joint_states", "camera"))


def test_stop_process_group_interrupts_a_real_child_group():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    time.sleep(0.2)
    assert stop_process_group(proc, 10) != 0  # KeyboardInterrupt: a non-zero exit, well before 60 s
    assert stop_process_group(proc, 10) == proc.returncode  # already stopped: just the code
