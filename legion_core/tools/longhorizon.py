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

    def __init__(self, bundle_path: str | Path, log_path: str | Path, scene: str | None = None, seed: int | None = None,
                 video_path: str | Path | None = None, extra_params: dict | None = None,
                 perception: str = "ground_truth", camera=None) -> None:  # fmt: skip
        from legion_core.contracts.bundle import load
        from legion_core.tools.graph import (
            CHAIN_GRAPH_NODES,
            VIDEO_STOP_TIMEOUT_S,
            WATCH_ACTIONS,
            WATCH_DIAGNOSTICS,
            WATCH_JOINT_STATES,
            WATCH_STATUS,
            SimGraph,
            perception_processes,
            sim_graph_params,
        )

        self.bundle = load(bundle_path)
        #: Placements seed of the scenes (None: the bundle's held-out one, as its card was measured on).
        self.seed = seed = self.bundle.held_out_seed if seed is None else seed
        self.scene = scene or self.bundle.scene
        if not self.scene:
            raise ValueError(
                f"bundle {bundle_path} was not trained in a multi-object scene (contract field 'scene' is null) "
                "and no scene was given: train with a preset that sets `scene:` (presets/kuka-drawer-button.yaml)"
            )
        # Frames are rendered at shutdown from snapshots (software GL, ~50-100 ms each): a minute-long chain at
        # 5 fps renders in well under the shutdown timeout.
        params = sim_graph_params(str(Path(bundle_path).resolve()), self.scene, seed=seed, sequencer=True,
                                  extra=extra_params, video_path=str(video_path) if video_path else None,
                                  video_fps=5.0)  # fmt: skip
        # perception "camera": rendered images -> perception_node -> detections (tools/graph.py CameraLoop).
        self.perception = perception
        self.graph = SimGraph(
            perception_processes(CHAIN_GRAPH_NODES, params, perception, log_path, camera),
            node_name=f"legion_operator_{int(time.time() * 1e3) % 100000}",
            watch=(WATCH_JOINT_STATES, WATCH_ACTIONS, WATCH_STATUS, WATCH_DIAGNOSTICS),
            # With a video the twin renders it at shutdown: the timeout only catches a hang.
            stop_timeout_s=VIDEO_STOP_TIMEOUT_S if video_path else 30.0,
        ).start()
        self.seen = self.graph.seen
        self.node = self.graph.node
        from legion_msgs.action import ExecuteTask
        from rclpy.action import ActionClient

        from legion_core.contracts.interface import ACTION_EXECUTE_TASK

        self._ExecuteTask = ExecuteTask
        self.client = ActionClient(self.node, ExecuteTask, ACTION_EXECUTE_TASK)
        if not self.client.wait_for_server(timeout_sec=90.0):
            self.close()
            raise RuntimeError(f"the task sequencer did not come up within 90 s (graph log: {log_path})")

    # -- what the observer saw (legion_core/tools/graph.py, Observations) --------------------------------
    @property
    def q(self) -> np.ndarray | None:
        return self.seen.q

    @property
    def q_log(self) -> list[tuple[float, np.ndarray]]:
        return self.seen.q_log

    @property
    def object_joints(self) -> dict[str, float]:
        return self.seen.object_joints

    # -- helpers ---------------------------------------------------------------------------------------
    def spin(self, seconds: float) -> None:
        self.graph.spin(seconds)

    def reset_scene(self, variation: int) -> bool:
        """Twin to seeded scene `variation`, sim2real restarted from the measured posture (SimGraph.reset)."""
        return self.graph.reset(self.scene, variation, 0.3)

    def arm_motion_rad(self, since: float) -> float:
        """Largest joint excursion [rad] of the measured arm since monotonic time `since`."""
        return self.seen.arm_motion_rad(since)

    # -- one command -----------------------------------------------------------------------------------
    def run(self, command: str, variation: int, timeout_s: float = 240.0,
            cancel_after_s: float | None = None) -> ChainResult:  # fmt: skip
        res = ChainResult(variation, command)
        self.seen.clear()
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
            self.graph.spin_once(0.05)
        handle = send.result() if send.done() else None
        if handle is None or not handle.accepted:
            res.state, res.message = "no_result", "the sequencer did not accept the goal"
            return res
        res_f = handle.get_result_async()
        cancelled = False
        while not res_f.done() and time.monotonic() - t0 < timeout_s:
            self.graph.spin_once(0.05)
            if cancel_after_s is not None and not cancelled and time.monotonic() - t0 >= cancel_after_s:
                handle.cancel_goal_async()
                cancelled = True
        res.wall_s = round(time.monotonic() - t0, 2)
        res.policy_actions, res.safety_holds = self.seen.actions, self.seen.holds[:20]
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
        """Stop the graph (with a video: after the twin rendered it); its exit code."""
        return self.graph.close()
