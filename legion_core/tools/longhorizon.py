"""Long-horizon chains on the digital twin: an operator command -> the task sequencer's plan of
skills -> run one after another in a multi-object scene, through the whole sim graph.

`ChainRunner` starts one graph (twin in the bundle's scene + real2sim + policy + sim2real + task
sequencer, composed in a child process) and acts as the operator: it resets the twin to a seeded scene,
restarts sim2real from the measured posture, sends the command on the ExecuteTask action and collects the
feedback (when each skill started), the result (success, per-skill durations, the sequencer's sentence)
and the runtime's safety statuses. Used by `make demo`, `legion bench longhorizon`
(legion_core/bench/longhorizon.py) and the end-to-end test.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from legion_core.contracts.interface import StatusLevel

DEFAULT_COMMAND = "open the drawer, then press the button and close the drawer"


@dataclass
class ChainResult:
    variation: int
    command: str
    success: bool = False
    state: str = ""
    """succeeded | failed | cancelled | refused | no_result."""
    message: str = ""
    plan: list[str] = field(default_factory=list)
    step_durations_s: list[float] = field(default_factory=list)
    skill_starts_s: list[tuple[float, str]] = field(default_factory=list)
    """(seconds after the goal was sent, skill) at every change of the active skill in the feedback."""
    failed_skill: str | None = None
    policy_actions: int = 0
    safety_holds: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


class ChainRunner:
    """One sim graph with the sequencer, driven from this process (see the module docstring)."""

    def __init__(self, bundle_path: str | Path, log_path: str | Path, scene: str | None = None, seed: int = 1,
                 video_path: str | Path | None = None, extra_params: dict | None = None) -> None:  # fmt: skip
        from legion_core.contracts.bundle import load
        from legion_core.tools.ros_env import ensure_workspace, start_composed

        ensure_workspace()
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from legion_msgs.action import ExecuteTask
        from legion_msgs.msg import PolicyAction, RuntimeStatus
        from legion_msgs.srv import ResetTask
        from rclpy.action import ActionClient
        from sensor_msgs.msg import JointState
        from std_srvs.srv import Trigger

        from legion_core.contracts.interface import (
            ACTION_EXECUTE_TASK,
            SIM2REAL_RESET_SERVICE,
            TOPIC_ACTION,
            TOPIC_DIAGNOSTICS,
            TOPIC_JOINT_STATES,
            TOPIC_STATUS,
            TWIN_RESET_TASK_SERVICE,
        )
        from legion_core.ros.common import SENSOR_QOS

        self.bundle = load(bundle_path)
        self.scene = scene or self.bundle.scene
        if not self.scene:
            raise ValueError(
                f"bundle {bundle_path} was not trained in a multi-object scene (contract field 'scene' is null) "
                "and no scene was given: train with a preset that sets `scene:` (presets/kuka-drawer-button.yaml)"
            )
        b = str(Path(bundle_path).resolve())
        params = {"policy.bundle": b, "sim2real.bundle": b, "real2sim.bundle": b, "sequencer.bundle": b, "twin.task": self.scene,
                  "twin.seed": seed, **(extra_params or {})}  # fmt: skip
        self._video = bool(video_path)
        if video_path:
            # Frames are rendered at shutdown from snapshots (software GL, ~50-100 ms each): a minute-long
            # chain at 5 fps renders in well under the shutdown timeout below.
            params["twin.video_path"] = str(video_path)
            params.setdefault("twin.video_fps", 5.0)
        self.proc = start_composed("twin,real2sim,policy,sim2real,sequencer", params, log_path)
        if not rclpy.ok():
            rclpy.init()
        self._rclpy = rclpy
        self._ExecuteTask = ExecuteTask
        self.node = rclpy.create_node(f"legion_operator_{int(time.time() * 1e3) % 100000}")
        self.client = ActionClient(self.node, ExecuteTask, ACTION_EXECUTE_TASK)
        self.reset_twin = self.node.create_client(ResetTask, TWIN_RESET_TASK_SERVICE)
        self.reset_s2r = self.node.create_client(Trigger, SIM2REAL_RESET_SERVICE)
        self.q: np.ndarray | None = None
        self.q_log: list[tuple[float, np.ndarray]] = []
        self.object_joints: dict[str, float] = {}
        self._actions = 0
        self._holds: list[str] = []
        self.node.create_subscription(JointState, TOPIC_JOINT_STATES, self._on_js, SENSOR_QOS)
        self.node.create_subscription(PolicyAction, TOPIC_ACTION, self._on_action, 10)
        self.node.create_subscription(RuntimeStatus, TOPIC_STATUS, self._on_status, 10)
        self.node.create_subscription(DiagnosticArray, TOPIC_DIAGNOSTICS, self._on_diag, 10)
        if not self.client.wait_for_server(timeout_sec=90.0):
            self.close()
            raise RuntimeError(f"the task sequencer did not come up within 90 s (graph log: {log_path})")

    # -- callbacks -------------------------------------------------------------------------------------
    def _on_js(self, m) -> None:
        self.q = np.asarray(m.position[:7], float)
        self.q_log.append((time.monotonic(), self.q))
        if len(self.q_log) > 4000:
            del self.q_log[:2000]

    def _on_action(self, _m) -> None:
        self._actions += 1

    def _on_status(self, m) -> None:
        if m.level >= StatusLevel.HOLD:
            self._holds.append(f"{m.node}: {m.message}")

    def _on_diag(self, m) -> None:
        for st in m.status:
            if "twin" in st.name:
                for kv in st.values:
                    if kv.key.startswith("joint "):
                        self.object_joints[kv.key[6:]] = float(kv.value)

    # -- helpers ---------------------------------------------------------------------------------------
    def spin(self, seconds: float) -> None:
        from legion_core.tools.ros_env import spin_for

        spin_for(self.node, seconds)

    def reset_scene(self, variation: int) -> bool:
        """Twin to seeded scene `variation`, sim2real restarted from the measured posture (ros_env)."""
        from legion_core.tools.ros_env import reset_twin_and_runtime

        return reset_twin_and_runtime(self.node, self.reset_twin, self.reset_s2r, self.scene, variation, 0.3)

    def arm_motion_rad(self, since: float) -> float:
        """Largest joint excursion [rad] of the measured arm since monotonic time `since`."""
        qs = [q for t, q in self.q_log if t >= since]
        return float(np.max(np.ptp(np.stack(qs), axis=0))) if len(qs) > 1 else 0.0

    # -- one command -----------------------------------------------------------------------------------
    def run(self, command: str, variation: int, timeout_s: float = 240.0,
            cancel_after_s: float | None = None) -> ChainResult:  # fmt: skip
        res = ChainResult(variation, command)
        self._actions, self._holds = 0, []
        t0 = time.monotonic()
        last = {"skill": None}

        def on_feedback(fb) -> None:
            s = fb.feedback.active_skill
            if s and s != last["skill"]:
                res.skill_starts_s.append((round(time.monotonic() - t0, 2), s))
                last["skill"] = s

        send = self.client.send_goal_async(
            self._ExecuteTask.Goal(command=command), feedback_callback=on_feedback
        )
        while not send.done() and time.monotonic() - t0 < 15:
            self._rclpy.spin_once(self.node, timeout_sec=0.05)
        handle = send.result() if send.done() else None
        if handle is None or not handle.accepted:
            res.state, res.message = "no_result", "the sequencer did not accept the goal"
            return res
        res_f = handle.get_result_async()
        cancelled = False
        while not res_f.done() and time.monotonic() - t0 < timeout_s:
            self._rclpy.spin_once(self.node, timeout_sec=0.05)
            if cancel_after_s is not None and not cancelled and time.monotonic() - t0 >= cancel_after_s:
                handle.cancel_goal_async()
                cancelled = True
        res.wall_s = round(time.monotonic() - t0, 2)
        res.policy_actions, res.safety_holds = self._actions, self._holds[:20]
        if not res_f.done():
            res.state, res.message = "no_result", f"no result within {timeout_s} s"
            return res
        r = res_f.result()
        out = r.result
        res.success, res.message, res.plan = bool(out.success), out.message, list(out.plan)
        res.step_durations_s = [round(float(v), 2) for v in out.step_durations_s]
        from action_msgs.msg import GoalStatus

        res.state = {GoalStatus.STATUS_SUCCEEDED: "succeeded", GoalStatus.STATUS_CANCELED: "cancelled"}.get(
            r.status, "failed" if out.plan else "refused"
        )
        if not res.success and res.plan:
            done = len(res.step_durations_s)
            res.failed_skill = (
                res.skill_starts_s[-1][1] if res.skill_starts_s else res.plan[min(done, len(res.plan) - 1)]
            )
        return res

    def close(self) -> int:
        from legion_core.tools.ros_env import stop_process_group

        with contextlib.suppress(Exception):  # best effort at shutdown
            self.node.destroy_node()
        # With a video the twin renders it at shutdown (slow on a loaded machine, see demo.run_graph_skill):
        # the timeout only catches a hang.
        return stop_process_group(self.proc, 300 if self._video else 30)
