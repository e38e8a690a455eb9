"""Bags on disk: paths, the message type store (legion_msgs registered from the workspace), the writer,
reading messages and the recorder's metadata back (legion_core/tools/bags/)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from legion_core.tools.numeric_signature import METADATA_KEY


class RecordingError(RuntimeError):
    """A bag cannot be written or read (path exists, not a rosbag2 directory, unknown type)."""


# -------------------------------------------------------------------------------------------- bag paths
def bag_dir(path: str | Path) -> Path:
    """The rosbag2 directory for a user path: `session.mcap` -> `session/` (holding `session_0.mcap`, as
    `ros2 bag record -o session -s mcap` names it); a directory stays itself."""
    p = Path(path)
    return p.with_suffix("") if p.suffix == ".mcap" else p


def resolve_bag(path: str | Path) -> Path:
    """An existing bag directory from what a user typed: the directory, its metadata.yaml, its .mcap file,
    or `session.mcap` for the directory `session/` that `legion record -o session.mcap` made."""
    p = Path(path)
    if p.is_file() and (p.name == "metadata.yaml" or p.suffix == ".mcap"):
        p = p.parent
    elif not p.exists() and p.suffix == ".mcap" and (p.with_suffix("") / "metadata.yaml").exists():
        p = p.with_suffix("")
    if not (p / "metadata.yaml").exists():
        raise RecordingError(
            f"{path} is not a rosbag2 directory (no metadata.yaml); record one with `legion record`"
        )
    return p


# ------------------------------------------------------------------------------------------- type store
def read_bag_signature(path: str | Path) -> dict | None:
    """The signature stored in a bag's metadata.yaml (custom_data), or None (a bag recorded before
    signatures were stored, or by another tool)."""
    meta = yaml.safe_load((resolve_bag(path) / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    raw = (meta.get("custom_data") or {}).get(METADATA_KEY)
    return json.loads(raw) if raw else None


def _msg_search_dirs(package: str) -> list[Path]:
    from legion_core.tools.ros_env import INSTALL, REPO

    dirs = [
        Path(p) / "share" / package / "msg"
        for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)
        if p
    ]
    dirs += [INSTALL / "share" / package / "msg", REPO / "ros2_ws" / "src" / package / "msg"]
    return dirs


def legion_typestore():
    """rosbags type store: ROS 2 Kilted's standard types + legion_msgs from the workspace's .msg files (the
    definitions the bag embeds; their RIHS01 hashes equal the ones rosidl generates for the nodes)."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    ts = get_typestore(Stores.ROS2_KILTED)
    for d in _msg_search_dirs("legion_msgs"):
        files = sorted(d.glob("*.msg"))
        if files:
            types: dict = {}
            for f in files:
                types.update(get_types_from_msg(f.read_text(), f"legion_msgs/msg/{f.stem}"))
            ts.register(types)
            break
    else:
        raise RecordingError(
            "legion_msgs .msg files not found (ros2_ws/src/legion_msgs/msg or an AMENT prefix)"
        )
    return ts


def message_class(msgtype: str):
    """The rclpy message class of 'pkg/msg/Name'."""
    import importlib

    pkg, kind, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{pkg}.{kind}"), name)


# ------------------------------------------------------------------------------------------- the writer
#: rosbag2 metadata versions the recorder writes: 9 (Jazzy and newer read it; the default) and 8, which
#: Humble's `ros2 bag` reads too: Humble's metadata parser (rosbag2_storage metadata_io.cpp, humble branch)
#: takes `offered_qos_profiles` as a YAML string with integer policies, as version 8 writes it, while
#: version 9 writes a YAML list there; the fields Humble does not know (custom_data, ros_distro, type
#: hashes) it ignores. Humble reads MCAP with ros-humble-rosbag2-storage-mcap (docs/robot-integration.md).
METADATA_VERSIONS = (8, 9)
DEFAULT_METADATA_VERSION = 9


def open_writer(path: Path, metadata_version: int = DEFAULT_METADATA_VERSION):
    """A rosbags Writer whose mcap file is `<name>_0.mcap`, as rosbag2 names the first split, writing
    rosbag2 metadata `metadata_version` (METADATA_VERSIONS)."""
    if metadata_version not in METADATA_VERSIONS:
        raise RecordingError(
            f"metadata version must be one of {list(METADATA_VERSIONS)} (8 for ROS 2 Humble), got {metadata_version}"
        )
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.rosbag2.storage_mcap import McapWriter

    class _Mcap0(McapWriter):
        def __init__(self, dirpath: Path, compression) -> None:
            # McapWriter opens `<dir>/<dir>.mcap`; hand it a stand-in whose `/` gives rosbag2's split name.
            # Writer takes the file name for metadata.yaml from `self.path`, so the two always agree.
            super().__init__(_RenamedDir(dirpath, dirpath / f"{dirpath.name}_0.mcap"), compression)

    class _Writer(Writer):
        STORAGE_PLUGINS = {**Writer.STORAGE_PLUGINS, StoragePlugin.MCAP: _Mcap0}

    return _Writer(path, version=metadata_version, storage_plugin=StoragePlugin.MCAP)


def copy_topics(src: str | Path, dst: str | Path, topics: Sequence[str]) -> dict[str, int]:
    """Copy the messages of `topics` from bag `src` into a new bag `dst` (same definitions, QoS and stamps,
    and the source's numeric signature; not its recorder counts, which the copy does not match): e.g. a
    regression fixture with only the runtime's decisions. Returns the message count per topic."""
    from rosbags.rosbag2 import Reader

    keep, counts = set(topics), {}
    src = resolve_bag(src)
    signature = read_bag_signature(src)
    with Reader(src) as r:
        w = open_writer(Path(dst))
        w.open()
        try:
            if signature is not None:
                w.set_custom_data(METADATA_KEY, json.dumps(signature, sort_keys=True))
            conns = {}
            for c in r.connections:
                if c.topic in keep:
                    conns[c.id] = w.add_connection(c.topic, c.msgtype, msgdef=c.msgdef.data, rihs01=c.digest,
                                                   serialization_format=c.ext.serialization_format,
                                                   offered_qos_profiles=c.ext.offered_qos_profiles)  # fmt: skip
            for c, t, raw in r.messages([c for c in r.connections if c.id in conns]):
                w.write(conns[c.id], t, raw)
                counts[c.topic] = counts.get(c.topic, 0) + 1
        finally:
            w.close()
    return counts


class _RenamedDir:
    """Stands in for the bag directory in McapWriter.__init__, which only does `path / f'{path.name}.mcap'`:
    returns the rosbag2 split file name instead."""

    def __init__(self, dirpath: Path, target: Path) -> None:
        self.name = dirpath.name
        self._target = target

    def __truediv__(self, _other: str) -> Path:
        return self._target


def read_recorder_metadata(path: str | Path) -> dict:
    """The `legion.recorder` custom data of a bag's metadata.yaml (counts, durations, drops)."""
    import yaml

    meta = yaml.safe_load((resolve_bag(path) / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    custom = meta.get("custom_data") or {}
    return json.loads(custom["legion.recorder"]) if "legion.recorder" in custom else {}


@dataclass
class BagMessage:
    t_ns: int
    topic: str
    raw: bytes


def load_messages(path: str | Path, topics: Iterable[str] | None = None) -> tuple[list[BagMessage], dict]:
    """All messages of `topics` (None = all) in log-time order, raw, plus {topic: (msgtype, [Qos])}."""
    from rosbags.rosbag2 import Reader

    wanted = set(topics) if topics is not None else None
    out: list[BagMessage] = []
    info: dict[str, tuple[str, list]] = {}
    with Reader(resolve_bag(path)) as reader:
        conns = [c for c in reader.connections if wanted is None or c.topic in wanted]
        for c in conns:
            info[c.topic] = (c.msgtype, list(getattr(c.ext, "offered_qos_profiles", []) or []))
        for conn, t, raw in reader.messages(connections=conns):
            out.append(BagMessage(int(t), conn.topic, bytes(raw)))
    out.sort(key=lambda m: m.t_ns)  # stable: equal times keep the file's order
    return out, info
