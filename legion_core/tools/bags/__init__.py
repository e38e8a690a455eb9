"""Record and replay LEGION sessions as ROS 2 bags: `legion record` / `legion replay`.

Format: the standard rosbag2 layout that `ros2 bag record -s mcap` writes (a directory with
`metadata.yaml` and `<name>_0.mcap`, metadata version 9, or 8 for ROS 2 Humble: `--metadata-version 8`), written with the pure-Python `rosbags` library, so
that `ros2 bag info/play` on a ROS machine, Foxglove and `mcap` readers open it without this package. The bag
is self-describing: every channel carries its full message definition (legion_msgs too, registered from the
workspace's .msg files) and its RIHS01 type hash, and the topic's offered QoS profiles, so that `ros2 bag
play` re-publishes latched topics (the active skill) as latched.

Recording never re-serialises: subscriptions are `raw=True` (the CDR bytes as they arrived). The rclpy
executor runs on its own thread and only appends `(topic, time, bytes)` to a queue; the calling thread
writes. Counts of received and written messages per topic, the recording duration and the largest queue
backlog go into `metadata.yaml` (`custom_data: legion.recorder`) and into the returned `RecordStats`; a
message that was received but not written is a drop, and there must be none. The recording machine's numeric
signature goes beside them (`custom_data: legion.numeric_signature`, legion_core/tools/numeric_signature.py): the
regression check compares actions bit-exactly only on a machine with the same one.

Replay publishes the recorded CDR bytes at the recorded timing (or a rate factor, or as fast as possible)
into the live graph, open loop, optionally with /clock (rosgraph_msgs/Clock) so that nodes running with
`use_sim_time:=true` see the recorded time and the recorded stamps are fresh to them. It measures how late
each publish was against its schedule (median / p99 / max). Replay does not re-stamp: a runtime on wall time
sees the recorded header stamps as old and (rightly) refuses them as stale, so replaying into the runtime
needs its nodes on `use_sim_time:=true` and `--sim-clock` (what `legion_core.tools.regression` does).

API: `record(path, topics=None, duration_s=None, stop_event=None) -> RecordStats`,
`replay(path, rate=1.0 | None, topics=SENSOR_TOPICS, sim_clock=False) -> ReplayStats`, `load_messages()`,
`read_recorder_metadata()`. The command lines `legion record` and `legion replay` live in
legion_core/cli/bags.py; the recorder's throughput under a synthetic flood is measured by
legion_core/bench/bags.py (`legion bench record`).

Measured on the 2-core development VM: 2000 and 5000 JointState msg/s recorded without a drop or a gap,
reliable and best effort; 10000 msg/s best effort too (the writer never lags: the largest backlog was ~950
messages); reliable at 10000 msg/s the rclpy executor takes ~7500 msg/s and DDS holds the rest.

rclpy is imported inside functions only: `legion_core` keeps importing on machines without ROS (reading and
checking bags works there; `legion_core.tools.regression` uses only the reader side for its offline checks).

Modules: `topics` (topic table, QoS mapping), `store` (paths, type store, writer, reading), `record`
(the recorder), `play` (playback).
"""

import os

# NETWORK RULE: any rclpy this module starts stays on loopback DDS.
if os.environ.get("LEGION_ALLOW_NETWORK") != "1":
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
