"""`legion command "..."`: send an operator command to the task sequencer, show its replies and live feedback
(skill, step i of n, progress bar), exit 0 on success and non-zero with the reason otherwise. Ctrl-C cancels
the command (the robot holds).

The text is checked before anything is sent (legion_core.runtime.operator_text, docs/operator-input.md): a control
character, invalid UTF-8 or an over-long command is refused here with the reason, since some of it would
not even reach the sequencer intact (rclpy cuts a string at a NUL in the sending process). The sequencer's
replies on /legion/command_status (CommandStatus) are printed as they come: accepted with the plan, busy,
refused with the reason, and how the plan ended.

Exit codes: 0 succeeded, 1 failed/cancelled/refused by the sequencer, 2 text refused here (nothing sent),
3 no sequencer, 4 goal rejected (busy), 5 no result in time.
"""

from __future__ import annotations

import signal
import sys
import time

from legion_core.runtime.operator_text import check, for_echo

_OUTCOMES = {0: "accepted", 1: "busy", 2: "refused", 3: "cancelled", 4: "succeeded", 5: "failed"}


def run_command(text: str, timeout_s: float = 600.0, server_wait_s: float = 20.0) -> int:
    why = check(text)
    if why is not None:
        print(f"not sent: {why}", file=sys.stderr)
        return 2
    from legion_core.tools.ros_env import ensure_workspace

    ensure_workspace()
    import rclpy
    from legion_msgs.action import ExecuteTask
    from legion_msgs.msg import CommandStatus
    from rclpy.action import ActionClient
    from rclpy.signals import SignalHandlerOptions

    from legion_core.contracts.interface import ACTION_EXECUTE_TASK, TOPIC_COMMAND_STATUS
    from legion_core.ros.common import OPERATOR_QOS

    # Our own SIGINT handler, not rclpy's: rclpy's handler shuts the context down on Ctrl-C, after which
    # the cancel request could not be sent. It only sets a flag that the spin loops below check: raising
    # KeyboardInterrupt (Python's default) can land inside rclpy's pybind11 code converting a message, which
    # then surfaces as "Unable to convert function return value to a Python type" instead of the interrupt
    # (seen in CI), and the cancel was never sent. Installed explicitly: a process started in the background
    # of a non-interactive shell (a script, `nohup`, CI) inherits SIGINT as ignored.
    interrupted = {"flag": False}

    def on_sigint(signum, frame) -> None:
        interrupted["flag"] = True

    signal.signal(signal.SIGINT, on_sigint)
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node("legion_command")
    client = ActionClient(node, ExecuteTask, ACTION_EXECUTE_TASK)
    # Replies to this command: the sequencer echoes the text as received; replies to other operators'
    # identical commands at the same moment cannot be told apart (CommandStatus carries no sender).
    echo = for_echo(text)
    replies: list = []
    sent = {"t": None}

    def on_reply(m) -> None:
        if sent["t"] is not None and m.command == echo:
            replies.append(m)
            label = _OUTCOMES.get(m.outcome, str(m.outcome))
            if m.outcome in (0, 1, 2):  # the end (3-5) is printed with the result below
                print(f"\r[command {m.command_id}] {label}: {m.message}", flush=True)

    node.create_subscription(CommandStatus, TOPIC_COMMAND_STATUS, on_reply, OPERATOR_QOS)
    try:
        return _follow(
            rclpy,
            node,
            client,
            ExecuteTask.Goal(command=text),
            replies,
            sent,
            interrupted,
            timeout_s,
            server_wait_s,
            TOPIC_COMMAND_STATUS,
        )
    finally:
        node.destroy_node()
        rclpy.shutdown()


def _follow(
    rclpy,
    node,
    client,
    goal,
    replies: list,
    sent: dict,
    interrupted: dict,
    timeout_s: float,
    server_wait_s: float,
    status_topic: str,
) -> int:
    if not client.wait_for_server(timeout_sec=server_wait_s):
        print("no task sequencer on /legion/execute_task: is the runtime launched (with the sequencer)?",
              file=sys.stderr)  # fmt: skip
        return 3
    # The replies come on a topic: give its discovery a moment so the first reply is not missed.
    end = time.monotonic() + 2.0
    while node.count_publishers(status_topic) == 0 and time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.05)
    last = {"line": ""}

    def on_feedback(fb):
        f = fb.feedback
        bar = "#" * int(20 * f.progress) + "-" * (20 - int(20 * f.progress))
        line = f"\r[{f.step_index}/{f.step_count}] {f.active_skill or '(waiting)':24s} {f.state:8s} [{bar}] {f.progress:4.0%}"
        if line != last["line"]:
            sys.stdout.write(line)
            sys.stdout.flush()
            last["line"] = line

    def spin_until(done, timeout: float) -> bool:
        """Spin until done() or the timeout; False where Ctrl-C came first (checked every 0.1 s)."""
        end = time.monotonic() + timeout
        while not done() and time.monotonic() < end:
            if interrupted["flag"]:
                return False
            rclpy.spin_once(node, timeout_sec=0.1)
        return not interrupted["flag"]

    sent["t"] = time.monotonic()
    send = client.send_goal_async(goal, feedback_callback=on_feedback)
    if not spin_until(send.done, 10.0):
        # Interrupted while the goal was on its way: cancel it if it turns out accepted.
        rclpy.spin_until_future_complete(node, send, timeout_sec=5)
        if not send.done() or send.result() is None or not send.result().accepted:
            print("\ninterrupted before the sequencer answered; nothing sent is cancelled", file=sys.stderr)
            return 1
    handle = send.result() if send.done() else None
    if handle is None or not handle.accepted:
        # The sequencer answers a rejected goal with a BUSY reply naming the running command.
        spin_until(lambda: bool(replies), 2.0)
        if not replies:
            print("the sequencer rejected the goal (busy with another command?)", file=sys.stderr)
        return 4
    res_f = handle.get_result_async()
    if not spin_until(res_f.done, timeout_s) and not res_f.done():
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
