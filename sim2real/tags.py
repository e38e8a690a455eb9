"""Fiducial tags in a camera image -> detections of the scene's objects in the camera frame, without ROS.

The camera pipeline of a robot cell (docs/perception.md): a grey or colour image and its calibration
(sensor_msgs/CameraInfo: K, distortion) -> AprilTag detection with the AprilTag 3 library (the
`pupil-apriltags` binding; quads found on a 2x decimated image, edges refined at full resolution, the
family's error correction: none of it is written here) -> each tag's pose by PnP from its four corners and
printed size with OpenCV (`SOLVEPNP_IPPE_SQUARE`, with the camera's distortion) -> a `TagDetection`
labelled with the object the tag is stuck on, at the tag's centre, in the camera's optical frame (REP-103:
z forward, x right, y down). The offset from the tag to the point the policy observes (a drawer's handle) is
the calibration's `markers` entry for that label (sim2real.calibration), added by real2sim as for any
detection: one home for it.

Tag frame (OpenCV's convention for square markers, docs/perception.md): origin at the centre of the black
square, x to the right of the printed tag, y up it, z out of its face.

Why this library: OpenCV's aruco module decodes the same family, but its sub-pixel corners gave 3-9 mm at
0.6 m on the twin's 6 cm tags and its AprilTag refinement 37 ms a frame; AprilTag 3 gave 1-4 mm in 5 ms
(docs/perception.md, measured).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from legion_core.robot.frames import R_to_quat

TWIN_TAG_MAP_PATH = Path(__file__).resolve().parent / "config" / "tags_twin.yaml"
#: Tag families the map may name (AprilTag 3's names).
FAMILIES = ("tag36h11", "tag25h9", "tag16h5", "tagStandard41h12")


class TagMapError(ValueError):
    """A tag map that cannot be used; the message names the field and the fix."""


@dataclass(frozen=True)
class Tag:
    """One printed tag and the object it is stuck on."""

    tag_id: int
    label: str
    """Detection label of the object (a key of the calibration's markers)."""
    size_m: float
    """Edge length of the tag's black square [m] (measure the print: PnP scales the distance with it)."""


@dataclass(frozen=True)
class TagMap:
    family: str
    tags: dict[int, Tag]

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise TagMapError(f"family must be one of {list(FAMILIES)}, got {self.family!r}")
        for t in self.tags.values():
            if not (math.isfinite(t.size_m) and 0.005 <= t.size_m <= 1.0):
                raise TagMapError(f"tags.{t.tag_id}.size_m must be 0.005-1.0 m (metres), got {t.size_m}")
            if not t.label:
                raise TagMapError(f"tags.{t.tag_id}.label must name the object the tag is stuck on")

    @classmethod
    def from_dict(cls, d: dict, source: str = "<tag map>") -> TagMap:
        if not isinstance(d, dict) or "tags" not in d:
            raise TagMapError(f"{source}: needs 'family' and 'tags: {{<id>: {{label, size_m}}}}'")
        tags = {}
        for k, v in (d.get("tags") or {}).items():
            if not isinstance(v, dict) or set(v) != {"label", "size_m"}:
                raise TagMapError(f"{source}: tags.{k} must be {{label: <object>, size_m: <m>}}, got {v!r}")
            tags[int(k)] = Tag(int(k), str(v["label"]), float(v["size_m"]))
        return cls(str(d.get("family", "tag36h11")), tags)

    @classmethod
    def load(cls, path: str | Path) -> TagMap:
        from sim2real.calibration import read_yaml_file

        data = read_yaml_file(path, "tag map", f"the twin's is {TWIN_TAG_MAP_PATH}", TagMapError)
        return cls.from_dict(data, str(path))


@dataclass(frozen=True)
class CameraModel:
    """Pinhole intrinsics [px] and distortion (sensor_msgs/CameraInfo `k` and `d`, plumb_bob)."""

    K: np.ndarray
    dist: np.ndarray
    width: int
    height: int

    @classmethod
    def from_camera_info(cls, k, d, width: int, height: int) -> CameraModel:
        K = np.asarray(k, float).reshape(3, 3)
        if not (K[0, 0] > 0 and K[1, 1] > 0 and K[2, 2] == 1.0):
            raise ValueError(
                f"CameraInfo.k is not a calibrated pinhole matrix: {K.tolist()} (run the camera's calibration)"
            )
        return cls(K, np.asarray(d if len(d) else np.zeros(5), float), int(width), int(height))

    @classmethod
    def from_fovy(cls, fovy_deg: float, width: int, height: int) -> CameraModel:
        """The ideal pinhole of a vertical field of view (a rendered camera)."""
        f = 0.5 * height / math.tan(math.radians(fovy_deg) / 2)
        K = np.array([[f, 0.0, (width - 1) / 2], [0.0, f, (height - 1) / 2], [0.0, 0.0, 1.0]])
        return cls(K, np.zeros(5), int(width), int(height))


@dataclass
class TagDetection:
    tag_id: int
    label: str
    position_m: np.ndarray
    """Tag centre in the camera optical frame [m]."""
    quat_wxyz: np.ndarray
    """Tag axes in the camera optical frame."""
    reprojection_error_px: float
    corners_px: np.ndarray


@dataclass
class FrameResult:
    detections: list[TagDetection] = field(default_factory=list)
    unknown_ids: list[int] = field(default_factory=list)
    """Tags seen that the map does not list (ignored)."""
    rejected: list[tuple[int, str]] = field(default_factory=list)
    """(tag id, why) for tags found but not used (PnP failed, reprojection error too large)."""
    compute_s: float = 0.0


class TagDetector:
    """Detects the map's tags in images of one camera (keeps the AprilTag detector between frames)."""

    def __init__(
        self,
        tag_map: TagMap,
        camera: CameraModel,
        max_reprojection_px: float = 2.0,
        quad_decimate: float = 2.0,
    ) -> None:
        """`quad_decimate`: the image is shrunk by this factor to find tag outlines (their edges are then
        refined at full resolution): 2 keeps 640x480 frames at a few ms on one core."""
        import cv2
        from pupil_apriltags import Detector

        self.cv2 = cv2
        self.map = tag_map
        self.camera = camera
        self.max_reprojection_px = max_reprojection_px
        # One thread: the detector shares the robot PC with the control path (docs/perception.md).
        self._detector = Detector(
            families=tag_map.family, nthreads=1, quad_decimate=quad_decimate, refine_edges=1
        )

    def detect(self, image: np.ndarray) -> FrameResult:
        """Tags in an image (H x W grey, or H x W x 3 RGB, uint8) of this camera."""
        cv2 = self.cv2
        t0 = time.perf_counter()
        img = np.asarray(image)
        if img.dtype != np.uint8 or img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
            raise ValueError(
                f"image must be uint8 H x W (mono8) or H x W x 3 (rgb8), got {img.dtype} {img.shape}"
            )
        if img.shape[:2] != (self.camera.height, self.camera.width):
            raise ValueError(
                f"image is {img.shape[1]}x{img.shape[0]} px but CameraInfo says {self.camera.width}x{self.camera.height}"
            )
        gray = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        out = FrameResult()
        for found in self._detector.detect(np.ascontiguousarray(gray)):
            tag = self.map.tags.get(int(found.tag_id))
            if tag is None:
                out.unknown_ids.append(int(found.tag_id))
                continue
            # AprilTag 3 lists the corners from the printed tag's bottom-left, counter-clockwise; IPPE_SQUARE
            # wants top-left, top-right, bottom-right, bottom-left: the same corners in reverse.
            h = tag.size_m / 2
            obj = np.array([[-h, h, 0.0], [h, h, 0.0], [h, -h, 0.0], [-h, -h, 0.0]])
            pts = np.asarray(found.corners, np.float64).reshape(4, 2)[::-1].copy()
            ok, rvec, tvec = cv2.solvePnP(
                obj, pts, self.camera.K, self.camera.dist, flags=cv2.SOLVEPNP_IPPE_SQUARE
            )
            if not ok:
                out.rejected.append((tag.tag_id, "PnP failed"))
                continue
            proj, _ = cv2.projectPoints(obj, rvec, tvec, self.camera.K, self.camera.dist)
            err = float(np.sqrt(np.mean(np.sum((proj.reshape(4, 2) - pts) ** 2, axis=1))))
            if err > self.max_reprojection_px:
                out.rejected.append(
                    (tag.tag_id, f"reprojection error {err:.1f} px > {self.max_reprojection_px} px")
                )
                continue
            R, _ = cv2.Rodrigues(rvec)
            out.detections.append(TagDetection(tag.tag_id, tag.label, tvec.ravel(), R_to_quat(R), err, pts))
        out.compute_s = time.perf_counter() - t0
        return out


#: Image encodings the detector takes (sensor_msgs/image_encodings names) -> channels.
ENCODINGS = {"mono8": 1, "rgb8": 3, "bgr8": 3}


def image_array(encoding: str, height: int, width: int, step: int, data) -> np.ndarray:
    """A sensor_msgs/Image's pixels as an H x W (mono8) or H x W x 3 RGB array, without copying where the
    rows are packed. ValueError names what is wrong (an encoding the detector does not take, a short buffer)."""
    ch = ENCODINGS.get(encoding)
    if ch is None:
        raise ValueError(
            f"image encoding {encoding!r} is not one of {sorted(ENCODINGS)}: set the camera driver to rgb8"
        )
    buf = np.frombuffer(data, np.uint8)
    if step < width * ch or buf.size < step * height:
        raise ValueError(
            f"image data holds {buf.size} bytes, {height} rows of step {step} need {step * height}"
        )
    img = buf[: step * height].reshape(height, step)[:, : width * ch]
    img = img.reshape(height, width) if ch == 1 else img.reshape(height, width, 3)
    return img[:, :, ::-1] if encoding == "bgr8" else img
