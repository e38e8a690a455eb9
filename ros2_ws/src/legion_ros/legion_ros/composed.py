"""Several LEGION nodes in one process on one SingleThreadedExecutor, for the lowest latency: the control
path real2sim -> policy -> sim2real is handed over in process (a direct call per control step instead of
two DDS loopback hops; rclpy has no intra-process transport), while /legion/observation and
/legion/action are still published for recorders and observers. `--no-handoff` keeps every hop on DDS
(for comparison, `legion bench runtime`). `legion run` and the `composed` executable use it.

    composed --nodes twin,real2sim,policy,sim2real -p policy.bundle:=models/x -p twin.task:=drawer-close

ROS arguments after `--ros-args` (a params file keyed by node name, `-p name:=value`, remaps) apply to every
node in the process, as `ros2 launch` passes them (runtime.launch.yaml with `composed:=true`).
"""

from __future__ import annotations

import argparse
import sys

from legion_core.ros.common import parse_cpu_list, spin_nodes

NODE_CLASSES = {
    "twin": ("legion_ros.twin_node", "TwinNode"),
    "real2sim": ("legion_ros.real2sim_node", "Real2SimNode"),
    "policy": ("legion_ros.policy_node", "PolicyNode"),
    "sim2real": ("legion_ros.sim2real_node", "Sim2RealNode"),
    "sequencer": ("legion_ros.task_sequencer_node", "TaskSequencerNode"),
    "perception": ("legion_ros.perception_node", "PerceptionNode"),
    "console": ("legion_ros.console_node", "ConsoleNode"),
}


def _value(text: str):
    """`name:=value` as YAML (numbers, booleans, lists), except that an empty value is the empty string, as
    in `ros2 run ... -p name:=` (YAML would make it null, which leaves a ROS parameter unset)."""
    import yaml

    return "" if text == "" else yaml.safe_load(text)


def parse_params(items: list[str]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for it in items:
        if ":=" not in it or "." not in it.split(":=", 1)[0]:
            raise SystemExit(
                f"parameter {it!r} must look like node.name:=value (e.g. policy.bundle:=models/x)"
            )
        key, val = it.split(":=", 1)
        node, name = key.split(".", 1)
        if node not in NODE_CLASSES:
            raise SystemExit(f"unknown node {node!r} in {it!r}; nodes: {sorted(NODE_CLASSES)}")
        out.setdefault(node, {})[name] = _value(val)
    return out


def factories(nodes: list[str], params: dict[str, dict]):
    import importlib

    from rclpy.parameter import Parameter

    out = []
    for n in nodes:
        if n not in NODE_CLASSES:
            raise SystemExit(f"unknown node {n!r}; nodes: {sorted(NODE_CLASSES)}")
        mod, cls = NODE_CLASSES[n]
        klass = getattr(importlib.import_module(mod), cls)
        overrides = [Parameter(k, value=v) for k, v in params.get(n, {}).items()]
        made: list = []

        def make(klass=klass, overrides=overrides, made=made):
            made.append(klass(parameter_overrides=overrides))
            return made[0]

        out.append(make)
        if n == "twin":  # driver:=lbr: the emulated stack's controller_manager node (None for the plain twin)
            out.append(lambda made=made: made[0].make_controller_manager())
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="composed", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--nodes", default="twin,real2sim,policy,sim2real", help="comma-separated nodes to host")
    p.add_argument("-p", "--param", action="append", default=[], help="node.name:=value (repeatable)")
    p.add_argument(
        "--handoff",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="hand observations and actions to the composed consumers in process (default: on)",
    )
    p.add_argument(
        "--realtime-priority",
        type=int,
        default=0,
        metavar="N",
        help="run the process with SCHED_FIFO priority N (1-99; needs rtprio permission; 0 = normal)",
    )
    p.add_argument(
        "--cpu-affinity",
        default="all",
        metavar="CPUS",
        help="pin the process to these CPUs, e.g. 1, 2-3 or 0,2 (keeps the control path off the cores of the "
        "driver or a simulator; default: all)",
    )
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything from `--ros-args` on is rclpy's (ros2 launch appends params files, `-p` and remaps there;
    # they apply to every node of this process), the rest is ours.
    cut = argv.index("--ros-args") if "--ros-args" in argv else len(argv)
    args, extra = p.parse_known_args(argv[:cut])
    ros_args = [*extra, *argv[cut:]]
    nodes = [n.strip() for n in args.nodes.split(",") if n.strip()]
    try:
        parse_cpu_list(args.cpu_affinity)
    except ValueError as e:
        p.error(str(e))
    return spin_nodes(
        factories(nodes, parse_params(args.param)),
        [sys.argv[0], *ros_args],
        handoff=args.handoff,
        realtime_priority=args.realtime_priority,
        cpu_affinity=args.cpu_affinity,
    )


if __name__ == "__main__":
    raise SystemExit(main())
