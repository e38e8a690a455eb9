"""`legion command "..."`: send an operator command to the task sequencer, show live feedback (skill, step
i of n, progress bar), exit 0 on success and non-zero with the reason otherwise."""

from __future__ import annotations

import sys
import time


def run_command(text: str, timeout_s: float = 600.0, server_wait_s: float = 20.0) -> int:
    from legion_core.ros_env import ensure_workspace

    ensure_workspace()
    import rclpy
    from legion_msgs.action import ExecuteTask
    from rclpy.action import ActionClient

    rclpy.init()
    node = rclpy.create_node("legion_command")
    client = ActionClient(node, ExecuteTask, "/legion/execute_task")
    try:
        if not client.wait_for_server(timeout_sec=server_wait_s):
            print("no task sequencer on /legion/execute_task: is the runtime launched (with the sequencer)?",
                  file=sys.stderr)  # fmt: skip
            return 3
        last = {"line": ""}

        def on_feedback(fb):
            f = fb.feedback
            bar = "#" * int(20 * f.progress) + "-" * (20 - int(20 * f.progress))
            line = f"\r[{f.step_index}/{f.step_count}] {f.active_skill or '(waiting)':24s} {f.state:8s} [{bar}] {f.progress:4.0%}"
            if line != last["line"]:
                sys.stdout.write(line)
                sys.stdout.flush()
                last["line"] = line

        send = client.send_goal_async(ExecuteTask.Goal(command=text), feedback_callback=on_feedback)
        rclpy.spin_until_future_complete(node, send, timeout_sec=10)
        handle = send.result()
        if handle is None or not handle.accepted:
            print("the sequencer rejected the goal (busy with another command?)", file=sys.stderr)
            return 4
        res_f = handle.get_result_async()
        t0 = time.monotonic()
        try:
            while not res_f.done() and time.monotonic() - t0 < timeout_s:
                rclpy.spin_once(node, timeout_sec=0.1)
        except KeyboardInterrupt:
            print("\ncancelling (the robot holds)...")
            cancel = handle.cancel_goal_async()
            rclpy.spin_until_future_complete(node, cancel, timeout_sec=5)
            rclpy.spin_until_future_complete(node, res_f, timeout_sec=10)
        if last["line"]:
            print()
        if not res_f.done():
            print(f"no result within {timeout_s} s", file=sys.stderr)
            return 5
        r = res_f.result().result
        if r.plan:
            print("plan: " + " -> ".join(r.plan))
        for skill, t in zip(r.plan, r.step_durations_s):
            print(f"  {skill:24s} {t:6.1f} s")
        print(r.message)
        return 0 if r.success else 1
    finally:
        node.destroy_node()
        rclpy.shutdown()
