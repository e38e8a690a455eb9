"""Long-horizon chains on the digital twin (issue 7): an operator command -> the task sequencer's plan of
skills -> run one after another in a multi-object scene, through the whole sim graph.

`ChainRunner` starts one graph (twin in the bundle's scene + real2sim + policy + sim2real + task
sequencer, composed in a child process) and acts as the operator: it resets the twin to a seeded scene,
restarts sim2real from the measured posture, sends the command on the ExecuteTask action and collects the
feedback (when each skill started), the result (success, per-skill durations, the sequencer's sentence)
and the runtime's safety statuses. Used by `make demo`, `legion bench longhorizon` and the end-to-end test.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

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
        self.client = ActionClient(self.node, ExecuteTask, "/legion/execute_task")
        self.reset_twin = self.node.create_client(ResetTask, "/twin_node/reset_task")
        self.reset_s2r = self.node.create_client(Trigger, "/sim2real_node/reset")
        self.q: np.ndarray | None = None
        self.q_log: list[tuple[float, np.ndarray]] = []
        self.object_joints: dict[str, float] = {}
        self._actions = 0
        self._holds: list[str] = []
        self.node.create_subscription(JointState, "/joint_states", self._on_js, SENSOR_QOS)
        self.node.create_subscription(PolicyAction, "/legion/action", self._on_action, 10)
        self.node.create_subscription(RuntimeStatus, "/legion/status", self._on_status, 10)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)
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
        if m.level >= 2:
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


# ------------------------------------------------------------------------------------------------ bench
def run_bench(bundle_path: str, scenes: int = 20, command: str | None = None, first_variation: int = 0,
              seed: int = 1, log_dir: str = "out/bench_longhorizon", progress: bool = True) -> dict:  # fmt: skip
    """Success of the 3-skill chain over `scenes` seeded scenes through the whole graph, with the failing
    skill and the sequencer's reason for every failure."""
    from tqdm import tqdm

    command = command or DEFAULT_COMMAND
    Path(log_dir).mkdir(parents=True, exist_ok=True)
    runner = ChainRunner(bundle_path, Path(log_dir) / "graph.log", seed=seed)
    results: list[ChainResult] = []
    try:
        bar = tqdm(range(first_variation, first_variation + scenes), desc="long-horizon", unit="scene",
                   disable=not progress)  # fmt: skip
        for v in bar:
            if not runner.reset_scene(v):
                results.append(ChainResult(v, command, state="no_result", message="twin reset failed"))
                continue
            results.append(runner.run(command, v))
            bar.set_postfix(ok=sum(r.success for r in results))
    finally:
        code = runner.close()
    ok = [r for r in results if r.success]
    per_skill_fail: dict[str, list[str]] = {}
    for r in results:
        if not r.success:
            per_skill_fail.setdefault(r.failed_skill or r.state, []).append(
                f"scene {r.variation}: {r.message}"
            )
    durations = [sum(r.step_durations_s) for r in ok]
    return {
        "bundle": str(bundle_path),
        "scene": runner.scene,
        "command": command,
        "plan": results[0].plan if results else [],
        "scenes": len(results),
        "seed": seed,
        "successes": len(ok),
        "success_rate": len(ok) / len(results) if results else 0.0,
        "chain_time_s": {
            "median": float(np.median(durations)) if durations else math.nan,
            "max": float(np.max(durations)) if durations else math.nan,
        },  # fmt: skip
        "failures_by_skill": per_skill_fail,
        "per_scene": [r.to_dict() for r in results],
        "graph_exit_code": code,
    }
