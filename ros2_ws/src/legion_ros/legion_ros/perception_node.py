"""perception_node: camera images -> detections of the scene's objects (docs/perception.md). Subscribes to
the camera driver's sensor_msgs/Image and CameraInfo, finds the tag map's AprilTags and publishes their poses
as legion_msgs/ObjectDetectionArray on /detections, stamped with the image's stamp and frame, for
real2sim_node. Frames it cannot use (no CameraInfo yet, another size, an encoding it does not take) are
counted and named in /diagnostics, with the latency from the image stamp to the published detections.
Logic: sim2real.tags (pure, unit-tested)."""

from __future__ import annotations

from collections import deque

from legion_core.contracts.interface import NODE_PERCEPTION, TOPIC_DETECTIONS, DiagnosticLevel
from legion_core.ros.common import SENSOR_QOS, LegionNode, NodeStartupError, spin_nodes, stamp_to_s


class PerceptionNode(LegionNode):
    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_PERCEPTION, **kwargs)
        from legion_msgs.msg import ObjectDetection, ObjectDetectionArray
        from sensor_msgs.msg import CameraInfo, Image

        from legion_core.base.params import pick
        from sim2real.node_params import PerceptionNodeParams, perception_node_parameters
        from sim2real.tags import TWIN_TAG_MAP_PATH, TagMap, TagMapError

        values = self.declare_parameters_from(perception_node_parameters())
        self.p = p = PerceptionNodeParams(**pick(PerceptionNodeParams, values))
        self.log_parameters()
        try:
            self.tag_map = TagMap.load(p.tag_map or TWIN_TAG_MAP_PATH)
        except (TagMapError, OSError) as e:
            raise NodeStartupError(f"tag_map: {e}") from None
        self._msgs = (ObjectDetection, ObjectDetectionArray)
        self.detector = None  # made with the first CameraInfo
        self._camera_key = None
        self.pub = self.create_publisher(ObjectDetectionArray, TOPIC_DETECTIONS, SENSOR_QOS)
        # Best effort matches a camera driver that publishes reliable or best effort.
        self.create_subscription(CameraInfo, p.camera_info_topic, self.on_camera_info, SENSOR_QOS)
        self.create_subscription(Image, p.image_topic, self.on_image, SENSOR_QOS)
        self.frames = self.detections = self.rejected = 0
        self.last_rejection = ""
        self.unknown_ids: set[int] = set()
        self.latency_s: deque = deque(maxlen=300)
        self.latency_log: list[tuple[float, float]] | None = [] if p.latency_log else None
        self.create_timer(p.diagnostics_period_s, self._diagnostics)

    def on_camera_info(self, msg) -> None:
        from sim2real.tags import CameraModel, TagDetector

        key = (tuple(msg.k), tuple(msg.d), msg.width, msg.height)
        if key == self._camera_key:
            return
        try:
            camera = CameraModel.from_camera_info(msg.k, msg.d, msg.width, msg.height)
        except ValueError as e:
            self._reject(f"CameraInfo on {self.p.camera_info_topic}: {e}")
            return
        self.detector = TagDetector(self.tag_map, camera, self.p.max_reprojection_px, self.p.quad_decimate)
        self._camera_key = key
        self.get_logger().info(
            f"camera {msg.width}x{msg.height}, fx {msg.k[0]:.1f} px: detecting {len(self.tag_map.tags)} tag(s)"
        )

    def _reject(self, why: str) -> None:
        self.rejected += 1
        if why != self.last_rejection:
            self.get_logger().warn(f"frame not used: {why}")
        self.last_rejection = why

    def on_image(self, msg) -> None:
        from sim2real.tags import image_array

        self.frames += 1
        if self.detector is None:
            self._reject(f"no CameraInfo on {self.p.camera_info_topic} yet")
            return
        try:
            img = image_array(msg.encoding, msg.height, msg.width, msg.step, msg.data)
            frame = self.detector.detect(img)
        except ValueError as e:
            self._reject(str(e))
            return
        ObjectDetection, ObjectDetectionArray = self._msgs
        out = ObjectDetectionArray()
        out.header = msg.header  # the capture time and the camera's frame: real2sim transforms from it
        for d in frame.detections:
            o = ObjectDetection()
            o.header = msg.header
            o.label = d.label
            pos, q = o.pose.position, o.pose.orientation
            pos.x, pos.y, pos.z = (float(v) for v in d.position_m)
            q.w, q.x, q.y, q.z = (float(v) for v in d.quat_wxyz)
            o.confidence = (
                1.0  # decoded with the family's error correction and a pose within the reprojection bound
            )
            out.detections.append(o)
        self.pub.publish(out)
        self.detections += len(frame.detections)
        self.unknown_ids.update(frame.unknown_ids)
        latency = self.now_s() - stamp_to_s(msg.header.stamp)
        self.latency_s.append(latency)
        if self.latency_log is not None:
            self.latency_log.append((stamp_to_s(msg.header.stamp), latency))
        for tag_id, why in frame.rejected:
            self._reject(f"tag {tag_id}: {why}")

    def _diagnostics(self) -> None:
        import numpy as np

        lat = np.asarray(self.latency_s) * 1e3
        values = {
            "frames": self.frames,
            "detections": self.detections,
            "rejected": self.rejected,
            "last_rejection": self.last_rejection,
            "unknown_tag_ids": sorted(self.unknown_ids),
            "latency_median_ms": round(float(np.median(lat)), 2) if lat.size else "",
            "latency_p99_ms": round(float(np.percentile(lat, 99)), 2) if lat.size else "",
        }
        ok = self.detector is not None and self.frames > 0
        level = DiagnosticLevel.OK if ok and not self.last_rejection else DiagnosticLevel.WARN
        self.publish_diagnostics(
            level, self.last_rejection or ("detecting" if ok else "waiting for images"), values
        )
        self.last_rejection = ""  # each summary names the latest reason of its own period

    def on_shutdown(self) -> None:
        if self.latency_log is not None:
            import json

            with open(self.p.latency_log, "w") as f:
                json.dump({"stamp_latency_s": self.latency_log, "frames": self.frames, "detections": self.detections,
                           "rejected": self.rejected}, f)  # fmt: skip


def main(args=None) -> int:
    return spin_nodes([PerceptionNode], args)


if __name__ == "__main__":
    raise SystemExit(main())
