"""The one sim-graph harness: the runtime graph on the digital twin (twin + real2sim + policy + sim2real, with
the task sequencer for long-horizon commands) started as `legion_ros.composed` child processes, and an
observer node in this process that watches it, resets it and waits on it.

Used by `legion demo` (tools/demo.py), the chain runner (tools/longhorizon.py), the closed-loop replay
(tools/regression/closed_loop.py) and the graph benchmarks (bench/transfer.py, bench/runtime.py).

    params = sim_graph_params(bundle, "drawer-close", seed=1)
    with SimGraph(GraphProcess(SIM_GRAPH_NODES, params, "graph.log"), watch=("twin_success",)) as g:
        g.reset("drawer-close", 3)
        g.activate_skill("drawer-close")
        g.spin_until(lambda: g.seen.twin_success, 60.0)
    exit_code = g.exit_code

rclpy: the harness initialises rclpy in this process when it is not yet initialised and never shuts it down,
so that one process can run several graphs one after another (a benchmark per skill or per mode, the tests of
a module); each graph's observer node is destroyed when the graph stops. The processes are stopped with
SIGINT to their process group (clean node shutdown: the twin writes its video then, which may take minutes on
a loaded machine: `stop_timeout_s`), SIGKILL only after the timeout.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from legion_core.contracts.interface import StatusLevel
from legion_core.sim.camera import PERCEPTION_CAMERA_FOVY_DEG

SIM_GRAPH_NODES = "twin,real2sim,policy,sim2real"
"""The nodes of the sim graph, hosted by one composed process."""
CHAIN_GRAPH_NODES = SIM_GRAPH_NODES + ",sequencer"
"""The sim graph with the task sequencer (long-horizon commands on the ExecuteTask action)."""
RUNTIME_NODES = ("policy", "sim2real", "real2sim")
"""The runtime nodes that load the bundle."""
VIDEO_STOP_TIMEOUT_S = 300.0
"""Shutdown wait when the twin films the run: it renders its video at shutdown (software EGL: ~0.1 s a frame
idle, several times that on a loaded machine: 30 s was not enough under `stress-ng --cpu 2`). The timeout only
catches a hang; the judgement is the exit code."""

# The observer's standard subscriptions (SimGraph `watch`).
WATCH_JOINT_STATES = "joint_states"
WATCH_ACTIONS = "actions"
WATCH_STATUS = "status"
WATCH_DIAGNOSTICS = "diagnostics"
WATCH_COMMAND_REPORTS = "command_reports"
WATCH_TWIN_SUCCESS = "twin_success"
WATCHABLE = (WATCH_JOINT_STATES, WATCH_ACTIONS, WATCH_STATUS, WATCH_DIAGNOSTICS, WATCH_COMMAND_REPORTS,
             WATCH_TWIN_SUCCESS)  # fmt: skip


# ----------------------------------------------------------------------------------- parameter assembly
def sim_graph_params(bundle: str | Path, task: str, *, variation: int | None = None, seed: int | None = None,
                     scene: str | None = None, skill: str | None = None, sequencer: bool = False,
                     extra: dict[str, Any] | None = None, video_path: str | Path | None = None,
                     video_fps: float | None = None) -> dict[str, Any]:  # fmt: skip
    """The parameters (`node.name` -> value) of a sim graph for `bundle` with the twin on `task` (a task or
    a multi-object scene). None leaves a parameter at the node's default: `variation` (the twin's placement),
    `seed` (the twin's placement seed), `scene` (the twin's scene: "" = the task alone), `skill` (a fixed
    skill for policy and real2sim instead of the active-skill topic). `sequencer` adds the sequencer's bundle.
    `extra` is applied after these; then `video_path` (the twin films the run) and `video_fps` (the frame
    rate, unless `extra` sets one)."""
    params: dict[str, Any] = {f"{n}.bundle": bundle for n in RUNTIME_NODES}
    if sequencer:
        params["sequencer.bundle"] = bundle
    params["twin.task"] = task
    if variation is not None:
        params["twin.variation"] = variation
    if seed is not None:
        params["twin.seed"] = seed
    if scene is not None:
        params["twin.scene"] = scene
    if skill is not None:
        params["policy.skill"] = skill
        params["real2sim.skill"] = skill
    params.update(extra or {})
    if video_path:
        params["twin.video_path"] = video_path
        if video_fps is not None:
            params.setdefault("twin.video_fps", video_fps)
    return params


def params_for(params: dict[str, Any], nodes: str) -> dict[str, Any]:
    """The parameters of `params` that belong to the nodes of one process ("twin" or "real2sim,policy")."""
    names = nodes.split(",")
    return {k: v for k, v in params.items() if k.split(".")[0] in names}


@dataclass
class GraphProcess:
    """One `legion_ros.composed` child process of a sim graph (ros_env.start_composed)."""

    nodes: str
    """The nodes it hosts, comma-separated ("twin,real2sim,policy,sim2real")."""
    params: dict[str, Any] = field(default_factory=dict)
    """Its parameters, `node.name` -> value (passed as `-p node.name:=value`)."""
    log_path: str | Path | None = None
    """Where its stdout and stderr go (None: discarded)."""
    handoff: bool = True
    """Hand the control path over in process between co-hosted nodes (False: `composed --no-handoff`)."""
    realtime_priority: int = 0
    """> 0: run it with SCHED_FIFO at this priority."""
    cpu_affinity: str = "all"
    """CPUs to pin it to ("1", "2-3"; "all": not pinned)."""
    large_frames: bool = False
    """With the DDS profile for camera frames between processes (ros_env.use_large_frames_profile)."""

    def argv(self) -> list[str]:
        from legion_core.tools.ros_env import composed_argv

        return composed_argv(self.nodes, self.params, self.handoff, self.realtime_priority, self.cpu_affinity)

    def start(self):
        from legion_core.tools.ros_env import start_composed

        return start_composed(self.nodes, self.params, self.log_path, handoff=self.handoff,
                              realtime_priority=self.realtime_priority, cpu_affinity=self.cpu_affinity,
                              large_frames=self.large_frames)  # fmt: skip


# ------------------------------------------------------------------------------ camera perception in the loop
PERCEPTION_GROUND_TRUTH = "ground_truth"
PERCEPTION_CAMERA = "camera"
PERCEPTION_MODES = (PERCEPTION_GROUND_TRUTH, PERCEPTION_CAMERA)
"""Where the graph's detections come from: the twin's simulator state (`ground_truth`, plus its noise model)
or its rendered camera images through perception_node (`camera`; docs/perception.md)."""


@dataclass
class CameraLoop:
    """The twin's camera when perception is in the loop (twin_node camera_* parameters)."""

    rate_hz: float = 10.0
    """Rendered frames per second [Hz]: software GL costs ~0.1 s a 640x480 frame here, so ~10 Hz is what a
    frame thread keeps up with while the twin, policy and safety layer share two cores."""
    width: int = 640
    """Image width [px]."""
    height: int = 480
    """Image height [px]."""
    fovy_deg: float = PERCEPTION_CAMERA_FOVY_DEG
    """Vertical field of view [deg] (the calibration's camera; a RealSense D435's colour camera at 4:3 has
    ~42)."""


def perception_processes(nodes: str, params: dict[str, Any], mode: str, log_path: str | Path,
                         camera: CameraLoop | None = None) -> list[GraphProcess]:  # fmt: skip
    """The graph's processes for perception `mode` (PERCEPTION_MODES), logging to `log_path` (the first) and
    `<log_path stem>.<nodes>.log`. `ground_truth`: the one process as given. `camera`: the twin renders its
    camera instead of publishing simulator-state detections, every node gets the camera-perception
    calibration (sim2real/config/calibration_twin_camera.yaml: the camera pose and the tags' marker
    offsets), and perception_node runs in a process of its own, as beside a camera driver on a robot PC (in
    the graph's process it would share one interpreter lock with the twin's physics, its renderer and the
    control path); both carry the large-frames DDS profile. ValueError names an unknown mode."""
    if mode not in PERCEPTION_MODES:
        raise ValueError(f"perception must be one of {PERCEPTION_MODES}, got {mode!r}")
    if mode == PERCEPTION_GROUND_TRUTH:
        return [GraphProcess(nodes, dict(params), log_path)]
    from sim2real.calibration import CAMERA_CALIBRATION_PATH

    camera = camera or CameraLoop()
    out = dict(params)
    for n in ("twin", *RUNTIME_NODES):
        out[f"{n}.calibration"] = str(CAMERA_CALIBRATION_PATH)
    out.update({"twin.camera_rate_hz": float(camera.rate_hz), "twin.camera_width": int(camera.width),
                "twin.camera_height": int(camera.height), "twin.camera_fovy_deg": float(camera.fovy_deg),
                "twin.ground_truth_detections": False})  # fmt: skip
    mine = {k: v for k, v in out.items() if k.startswith("perception.")}
    log = Path(log_path)
    return [GraphProcess(nodes, {k: v for k, v in out.items() if k not in mine}, log, large_frames=True),
            GraphProcess("perception", mine, log.with_suffix(".perception.log"), large_frames=True)]  # fmt: skip


# ---------------------------------------------------------------------------------------- observations
@dataclass
class Observations:
    """What the observer node has seen of the graph: counters and latest values of the standard
    subscriptions (each filled only when watched). Times are `time.monotonic()` [s]."""

    twin_success: bool = False
    """The twin's latest /twin/success."""
    twin_success_at: float | None = None
    """When /twin/success first read True since the last `clear()`."""
    actions: int = 0
    """Policy actions received since the last `clear()`."""
    first_action_at: float | None = None
    """When the first policy action since the last `clear()` arrived."""
    holds: list[str] = field(default_factory=list)
    """"node: message" of every runtime status at HOLD or above since the last `clear()`."""
    steps: int = 0
    """Policy steps the arm executed since the last `clear()`: sim2real's command reports that are not holds."""
    q: np.ndarray | None = None
    """The latest measured arm posture [rad] (7 joints)."""
    q_log: list[tuple[float, np.ndarray]] = field(default_factory=list)
    """(time, posture) of the recent joint states (the last 2000-4000)."""
    object_joints: dict[str, float] = field(default_factory=dict)
    """The twin's object joints from its diagnostics (name -> position, m or rad)."""

    Q_LOG_MAX = 4000  # trimmed to the newest half when longer: minutes of joint states at the twin's rate

    def clear(self) -> None:
        """Restart the per-run counters (success, actions, holds, steps); the latest values stay."""
        self.twin_success_at = None
        self.actions, self.first_action_at, self.holds, self.steps = 0, None, [], 0

    # Subscription callbacks (plain message objects: unit-tested without ROS).
    def on_twin_success(self, m) -> None:
        self.twin_success = bool(m.data)
        if self.twin_success and self.twin_success_at is None:
            self.twin_success_at = time.monotonic()

    def on_action(self, _m) -> None:
        self.actions += 1
        if self.first_action_at is None:
            self.first_action_at = time.monotonic()

    def on_status(self, m) -> None:
        if m.level >= StatusLevel.HOLD:
            self.holds.append(f"{m.node}: {m.message}")

    def on_command_report(self, m) -> None:
        self.steps += 0 if m.hold else 1

    def on_joint_state(self, m) -> None:
        self.q = np.asarray(m.position[:7], float)
        self.q_log.append((time.monotonic(), self.q))
        if len(self.q_log) > self.Q_LOG_MAX:
            del self.q_log[: self.Q_LOG_MAX // 2]

    def on_diagnostics(self, m) -> None:
        for st in m.status:
            if "twin" in st.name:
                for kv in st.values:
                    if kv.key.startswith("joint "):
                        self.object_joints[kv.key[6:]] = float(kv.value)

    def arm_motion_rad(self, since: float) -> float:
        """Largest joint excursion [rad] of the measured arm since monotonic time `since`."""
        qs = [q for t, q in self.q_log if t >= since]
        return float(np.max(np.ptp(np.stack(qs), axis=0))) if len(qs) > 1 else 0.0


# ------------------------------------------------------------------------------ driving a graph by rclpy
def spin_for(node, seconds: float, step_s: float = 0.02) -> None:
    """Spin `node` for `seconds` of wall time."""
    import rclpy

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=step_s)


def spin_until(node, predicate: Callable[[], bool], timeout_s: float, step_s: float = 0.05) -> bool:
    """Spin `node` until `predicate()` holds or `timeout_s` passed; whether it holds."""
    import rclpy

    end = time.monotonic() + timeout_s
    while time.monotonic() < end and not predicate():
        rclpy.spin_once(node, timeout_sec=step_s)
    return predicate()


def call_service(node, client, request, timeout_s: float = 20.0):
    """Call a service from `node`, waiting for it to appear; the response, or None after timeout_s."""
    import rclpy

    end = time.monotonic() + timeout_s
    while not client.service_is_ready() and time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.05)
    fut = client.call_async(request)
    while not fut.done() and time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.05)
    return fut.result() if fut.done() else None


def reset_twin_and_runtime(node, twin_client, s2r_client, task: str, variation: int, settle_s: float = 0.2,
                           attempts: int = 3) -> bool:  # fmt: skip
    """Twin to `task` (a task or scene) placement `variation` (retried: a lost service response must not
    count as a policy failure), then let sim2real see joint states of the reset posture (meanwhile the
    twin ignores the old command stream) and restart it from the measured posture, which ends the twin's
    reset guard. False if the twin could not be reset."""
    from legion_msgs.srv import ResetTask
    from std_srvs.srv import Trigger

    for _ in range(attempts):
        r = call_service(node, twin_client, ResetTask.Request(task=task, variation=int(variation)))
        if r is not None and r.success:
            break
    else:
        return False
    spin_for(node, settle_s)
    call_service(node, s2r_client, Trigger.Request())
    spin_for(node, settle_s)
    return True


class SimGraph:
    """A sim graph: its composed child processes and an observer node in this process (see the module
    docstring). `processes`: one GraphProcess or several (started in order, stopped in order);
    `node_name`: the observer node (None: none, the caller observes by other means, e.g. a bag recorder);
    `watch`: the standard subscriptions of the observer (WATCHABLE), filling `seen`; `stop_timeout_s`: the
    wait for each process at shutdown before SIGKILL."""

    def __init__(self, processes: GraphProcess | Iterable[GraphProcess], *, node_name: str | None = "legion_sim_graph",
                 watch: Iterable[str] = (), stop_timeout_s: float = 20.0) -> None:  # fmt: skip
        self.processes = [processes] if isinstance(processes, GraphProcess) else list(processes)
        self.node_name = node_name
        self.watch = tuple(watch)
        unknown = set(self.watch) - set(WATCHABLE)
        if unknown:
            raise ValueError(f"cannot watch {sorted(unknown)}: one of {WATCHABLE}")
        self.stop_timeout_s = stop_timeout_s
        self.seen = Observations()
        self.procs: list = []
        self.node = None
        self.started_at: float | None = None
        self.exit_codes: list[int | None] = []
        self._skill_pub = None
        self._reset_clients = None
        self._closed = False

    # -- life cycle ------------------------------------------------------------------------------------
    def start(self) -> SimGraph:
        """Start the processes, then (with a node name) rclpy if needed and the observer node."""
        from legion_core.tools.ros_env import ensure_workspace

        ensure_workspace()
        self.started_at = time.monotonic()
        try:
            for p in self.processes:
                self.procs.append(p.start())
            if self.node_name is not None:
                self._create_node()
        except BaseException:
            self.close()
            raise
        return self

    def _create_node(self) -> None:
        import rclpy

        if not rclpy.ok():
            rclpy.init()
        self.node = rclpy.create_node(self.node_name)
        if not self.watch:
            return
        from diagnostic_msgs.msg import DiagnosticArray
        from legion_msgs.msg import CommandReport, PolicyAction, RuntimeStatus
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Bool

        from legion_core.contracts.interface import (
            TOPIC_ACTION,
            TOPIC_COMMAND_REPORT,
            TOPIC_DIAGNOSTICS,
            TOPIC_JOINT_STATES,
            TOPIC_STATUS,
            TOPIC_TWIN_SUCCESS,
        )
        from legion_core.ros.common import LATCHED_QOS, SENSOR_QOS

        s = self.seen
        table = {
            WATCH_TWIN_SUCCESS: (Bool, TOPIC_TWIN_SUCCESS, s.on_twin_success, LATCHED_QOS),
            WATCH_ACTIONS: (PolicyAction, TOPIC_ACTION, s.on_action, 10),
            WATCH_STATUS: (RuntimeStatus, TOPIC_STATUS, s.on_status, 10),
            WATCH_COMMAND_REPORTS: (CommandReport, TOPIC_COMMAND_REPORT, s.on_command_report, 10),
            WATCH_JOINT_STATES: (JointState, TOPIC_JOINT_STATES, s.on_joint_state, SENSOR_QOS),
            WATCH_DIAGNOSTICS: (DiagnosticArray, TOPIC_DIAGNOSTICS, s.on_diagnostics, 10),
        }
        for w in self.watch:
            self.node.create_subscription(*table[w])

    def close(self) -> int | None:
        """Destroy the observer node, stop the processes (SIGINT to each group, SIGKILL after
        `stop_timeout_s`); the exit code of the graph (the first non-zero one of its processes). rclpy stays
        initialised (module docstring). Idempotent."""
        from legion_core.tools.ros_env import stop_process_group

        if self.node is not None:
            with contextlib.suppress(Exception):  # best effort at shutdown
                self.node.destroy_node()
            self.node = None
        if not self._closed:
            self._closed = True
            self.exit_codes = [stop_process_group(p, self.stop_timeout_s) for p in self.procs]
        return self.exit_code

    @property
    def exit_code(self) -> int | None:
        return next((c for c in self.exit_codes if c != 0), 0 if self.exit_codes else None)

    @property
    def running(self) -> bool:
        return any(p.poll() is None for p in self.procs)

    def __enter__(self) -> SimGraph:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- driving ---------------------------------------------------------------------------------------
    def spin_once(self, timeout_s: float = 0.05) -> None:
        """Handle one ready callback, waiting up to `timeout_s` for one."""
        import rclpy

        rclpy.spin_once(self.node, timeout_sec=timeout_s)

    def spin(self, seconds: float, step_s: float = 0.02) -> None:
        spin_for(self.node, seconds, step_s)

    def spin_until(self, predicate: Callable[[], bool], timeout_s: float, step_s: float = 0.05) -> bool:
        return spin_until(self.node, predicate, timeout_s, step_s)

    def reset(self, task: str, variation: int, settle_s: float = 0.2) -> bool:
        """Twin to `task` placement `variation`, sim2real restarted from the measured posture
        (reset_twin_and_runtime). False if the twin could not be reset."""
        if self._reset_clients is None:
            from legion_msgs.srv import ResetTask
            from std_srvs.srv import Trigger

            from legion_core.contracts.interface import SIM2REAL_RESET_SERVICE, TWIN_RESET_TASK_SERVICE

            self._reset_clients = (self.node.create_client(ResetTask, TWIN_RESET_TASK_SERVICE),
                                   self.node.create_client(Trigger, SIM2REAL_RESET_SERVICE))  # fmt: skip
        return reset_twin_and_runtime(self.node, *self._reset_clients, task, variation, settle_s)

    def _skill_publisher(self):
        if self._skill_pub is None:
            from std_msgs.msg import String

            from legion_core.contracts.interface import TOPIC_ACTIVE_SKILL
            from legion_core.ros.common import LATCHED_QOS

            self._skill_pub = self.node.create_publisher(String, TOPIC_ACTIVE_SKILL, LATCHED_QOS)
        return self._skill_pub

    def wait_for_skill_subscribers(self, count: int, timeout_s: float) -> bool:
        """Wait until `count` nodes subscribe to the active skill (discovery of the graph); the topic is
        latched, so late joiners get the skill too: this only avoids running the clock before the graph is up."""
        pub = self._skill_publisher()
        return self.spin_until(lambda: pub.get_subscription_count() >= count, timeout_s)

    def activate_skill(self, skill: str) -> None:
        """Publish the active skill ("" = none: the policy stops acting)."""
        from std_msgs.msg import String

        self._skill_publisher().publish(String(data=skill))

    def arm_motion_rad(self, since: float) -> float:
        return self.seen.arm_motion_rad(since)
