"""The twin's camera: what a camera at the calibration's pose sees of the simulated cell, with fiducial tags
stuck on the scene's objects, as images for the perception pipeline (sim2real.tags; docs/perception.md).

Rendering uses a second, visual-only copy of the twin's MuJoCo world: the same MJCF plus the tags (thin
textured boxes that neither collide nor weigh anything) and a fixed camera at `T_sim_camera`; each frame
copies the physics world's state into it. The physics model itself is never edited, so the twin behaves
exactly as without a camera. Tag images come from OpenCV's generator of the AprilTag 36h11 family (the codes
AprilTag 3 decodes), with the white quiet zone a printed tag has.

Rendering is software OpenGL here (MUJOCO_GL=egl, docs/environment.md): tens of milliseconds a frame at
640x480, so a node renders off the control path.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from legion_core.robot.frames import R_to_quat, Transform
from sim2real.tags import CameraModel, TagMap

#: Quiet zone of a printed tag: one white cell on each side of the 8-cell black-bordered square.
QUIET_CELLS = 1
CAMERA_NAME = "legion_camera"
#: The AprilTag families OpenCV can draw (cv2.aruco's dictionaries hold the same codes as AprilTag 3's).
OPENCV_FAMILIES = {
    "tag36h11": "DICT_APRILTAG_36h11",
    "tag25h9": "DICT_APRILTAG_25h9",
    "tag16h5": "DICT_APRILTAG_16h5",
}


@dataclass(frozen=True)
class TagPlacement:
    """Where a tag is stuck in the twin: on `body`, flat on a face, its printed x/y axes as given."""

    tag_id: int
    body: str
    """MuJoCo body the tag moves with (a drawer's sliding part, a button's cap)."""
    pos_m: tuple[float, float, float]
    """Tag centre in the body frame [m] (on the face, facing out)."""
    euler_rad: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Tag axes in the body frame (MuJoCo euler, xyz): z out of the printed face."""


#: Tags of the shipped scenes' objects, placed as a lab would stick them: flat, facing up, on a part that
#: moves with the point the policy observes (or holds it fixed), where the gripper does not cover them while
#: it works. A tag on the handle bar or on the button's cap is covered exactly when the skill needs it
#: (hooking the handle, pressing the cap): real2sim then reports the object missing and the arm holds, which
#: the chain with the first placements did at every scene (docs/perception.md).
TWIN_TAG_PLACEMENTS = (
    # On a bracket on the drawer's front, 15 cm beside the handle and just above the cabinet's top: it slides
    # with the drawer and stays in view past the hand that pulls or pushes the handle.
    TagPlacement(0, "drawer_link", (0.15, -0.12, 0.085)),
    # On a bracket on the button's cap, 12 cm behind it (away from the robot, towards the camera) and 2.5 cm
    # below its top (the cap's frame: y down, z towards the back): it travels with the cap, which the press
    # skill observes going down (a tag on the box instead held the observation at the unpressed cap, and the
    # policy hovered there), and neither the wrist nor the fingers over the cap hide it (8 cm beside or
    # behind the cap, they did at 8 of 20 placements: docs/perception.md).
    TagPlacement(1, "button", (0.0, -0.17, 0.12), (1.5707963267948966, 0.0, 0.0)),
    TagPlacement(2, "drawercase_link", (0.0, 0.0, 0.0845)),  # on the cabinet's top (the drawer goal's anchor)
)


def twin_tag_map() -> TagMap:
    """The tags of the twin's cell (sim2real/config/tags_twin.yaml)."""
    from sim2real.tags import TWIN_TAG_MAP_PATH

    return TagMap.load(TWIN_TAG_MAP_PATH)


#: The hand-eye calibration tag (docs/calibration.md; its own map, sim2real/config/tags_calibration.yaml):
#: face up on a bracket 11 cm out from the flange's axis along the flange's y (towards a camera across the
#: table when the tool points down at the policy's orientation), 5 mm below the flange face, above the
#: gripper's rail. The flange's z points out of the face (down), so the tag's z (out of its print) is -z.
CALIBRATION_TAG_PLACEMENT = TagPlacement(10, "iiwa_flange", (0.0, 0.11, 0.005), (3.141592653589793, 0.0, 0.0))


def calibration_tag_map() -> TagMap:
    """The hand-eye calibration tag's map (sim2real/config/tags_calibration.yaml)."""
    from sim2real.tags import TWIN_TAG_MAP_PATH

    return TagMap.load(TWIN_TAG_MAP_PATH.parent / "tags_calibration.yaml")


def camera_tags(calibration_tag: bool = False) -> tuple[TagMap, tuple[TagPlacement, ...]]:
    """The tag map and the placements twin_node's camera renders: the cell's tags, and with
    `calibration_tag` also the hand-eye calibration tag on the flange (one map with both maps' tags)."""
    tag_map = twin_tag_map()
    if not calibration_tag:
        return tag_map, TWIN_TAG_PLACEMENTS
    cal = calibration_tag_map()
    if cal.family != tag_map.family:
        raise ValueError(
            f"the calibration tag's family {cal.family!r} differs from the cell's {tag_map.family!r}: the twin "
            "renders one family"
        )
    return TagMap(tag_map.family, {**tag_map.tags, **cal.tags}), (
        *TWIN_TAG_PLACEMENTS,
        CALIBRATION_TAG_PLACEMENT,
    )


def tag_image(family_dict, tag_id: int, px_per_cell: int = 20) -> np.ndarray:
    """The printed tag: OpenCV's marker image with its quiet zone, grey uint8."""
    import cv2

    img = cv2.aruco.generateImageMarker(family_dict, int(tag_id), 8 * px_per_cell, borderBits=1)
    q = QUIET_CELLS * px_per_cell
    return cv2.copyMakeBorder(img, q, q, q, q, cv2.BORDER_CONSTANT, value=255)


@dataclass(frozen=True)
class ImageEffects:
    """What a real camera adds to the rendered image, all off by default (the twin's images are then exact
    renders): exposure, defocus/motion blur and sensor noise, applied in that order, as a camera's pipeline
    does (light -> optics -> sensor). For robustness checks of the perception path."""

    exposure_gain: float = 1.0
    """Multiplies the pixel values (0.5 = half the light, 1.5 = over-exposed and clipped at 255)."""
    blur_sigma_px: float = 0.0
    """Standard deviation [px] of a Gaussian blur (defocus or motion); 0 = sharp."""
    noise_std_dn: float = 0.0
    """Standard deviation [digital numbers of 0-255] of additive Gaussian sensor noise, per pixel and
    channel; 0 = none."""
    seed: int = 0
    """Seed of the noise (the same seed gives the same noise sequence)."""

    def __post_init__(self) -> None:
        for name, v in (("exposure_gain", self.exposure_gain), ("blur_sigma_px", self.blur_sigma_px),
                        ("noise_std_dn", self.noise_std_dn)):  # fmt: skip
            if not (np.isfinite(v) and v >= 0.0):
                raise ValueError(f"camera image effects: {name} must be a finite number >= 0, got {v}")

    @property
    def active(self) -> bool:
        return self.exposure_gain != 1.0 or self.blur_sigma_px > 0.0 or self.noise_std_dn > 0.0

    def make(self):
        """A function rgb (uint8) -> rgb (uint8) with these effects and its own noise generator."""
        import cv2

        rng = np.random.default_rng(self.seed)

        def apply(rgb: np.ndarray) -> np.ndarray:
            if not self.active:
                return rgb
            img = rgb.astype(np.float32)
            if self.exposure_gain != 1.0:
                img *= self.exposure_gain
            if self.blur_sigma_px > 0.0:
                img = cv2.GaussianBlur(img, (0, 0), self.blur_sigma_px)
            if self.noise_std_dn > 0.0:
                img += rng.normal(0.0, self.noise_std_dn, img.shape).astype(np.float32)
            return np.clip(np.rint(img), 0, 255).astype(np.uint8)

        return apply


class SimCamera:
    """Renders the twin's world from a camera with the tags on; ground truth of every tag for tests."""

    def __init__(
        self,
        model_xml: str | Path,
        tag_map: TagMap,
        T_sim_camera: Transform,
        placements: tuple[TagPlacement, ...] = TWIN_TAG_PLACEMENTS,
        width: int = 640,
        height: int = 480,
        fovy_deg: float = 58.0,
        cache_dir: Path | None = None,
        shadows: bool = False,
    ) -> None:
        import cv2
        import mujoco

        from legion_core.sim.kuka_model import cache_root

        self.width, self.height, self.fovy_deg = int(width), int(height), float(fovy_deg)
        self.camera = CameraModel.from_fovy(fovy_deg, width, height)
        spec = mujoco.MjSpec.from_file(str(model_xml))
        if tag_map.family not in OPENCV_FAMILIES:
            raise ValueError(
                f"the twin prints tags of {sorted(OPENCV_FAMILIES)} only, not {tag_map.family!r}"
            )
        family = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, OPENCV_FAMILIES[tag_map.family]))
        folder = cache_dir or cache_root() / "tags"
        folder.mkdir(parents=True, exist_ok=True)
        self.placements = {p.tag_id: p for p in placements}
        self.tag_map = tag_map
        for p in placements:
            tag = tag_map.tags.get(p.tag_id)
            if tag is None:
                raise ValueError(f"tag {p.tag_id} is placed in the twin but not in the tag map")
            img = tag_image(family, p.tag_id)
            f = folder / f"{tag_map.family}_{p.tag_id}_{hashlib.sha1(img.tobytes()).hexdigest()[:8]}.png"
            if not f.exists():
                cv2.imwrite(str(f), img)
            name = f"legion_tag{p.tag_id}"
            spec.add_texture(name=name, type=mujoco.mjtTexture.mjTEXTURE_2D, file=str(f))
            spec.add_material(name=name).textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = name
            half = tag.size_m / 2 * (8 + 2 * QUIET_CELLS) / 8  # the box carries the quiet zone too
            try:
                body = spec.body(p.body)
            except Exception:
                body = None
            if body is None:
                raise ValueError(f"tag {p.tag_id}: the twin's world has no body {p.body!r}")
            body.add_geom(name=name, type=mujoco.mjtGeom.mjGEOM_BOX, size=[half, half, 0.0005], pos=p.pos_m,
                          euler=p.euler_rad, material=name, contype=0, conaffinity=0, group=1, density=0)  # fmt: skip
        # MuJoCo's camera looks along its -z with y up; the optical frame looks along +z with y down.
        R_mj = T_sim_camera.R @ np.diag([1.0, -1.0, -1.0])
        spec.worldbody.add_camera(name=CAMERA_NAME, pos=T_sim_camera.p, quat=R_to_quat(R_mj), fovy=fovy_deg)
        spec.visual.global_.offwidth = max(spec.visual.global_.offwidth, self.width)
        spec.visual.global_.offheight = max(spec.visual.global_.offheight, self.height)
        self.model = spec.compile()
        self.data = mujoco.MjData(self.model)
        self.T_sim_camera = T_sim_camera
        self._mujoco = mujoco
        self._renderer = mujoco.Renderer(self.model, self.height, self.width)
        # Shadows and the table's reflection cost ~4x a frame in software GL (292 vs 68 ms at 640x480 on the
        # dev VM) and change nothing a tag detector needs: off unless asked for (docs/perception.md).
        self._flags_off = (
            () if shadows else (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION)
        )
        self._tag_geoms = {i: self.model.geom(f"legion_tag{i}").id for i in self.placements}

    @staticmethod
    def snapshot(model, data) -> tuple[np.ndarray, ...]:
        """Copies of what a frame needs from the physics world (microseconds: taken in the twin's loop, the
        frame rendered elsewhere): joint positions, mocap, and the bodies a reset placed."""
        return (data.qpos.copy(), data.mocap_pos.copy(), data.mocap_quat.copy(), model.body_pos.copy(),
                model.body_quat.copy())  # fmt: skip

    def sync(self, model, data) -> None:
        """Take the physics world's current state."""
        self.set_state(self.snapshot(model, data))

    def set_state(self, state: tuple[np.ndarray, ...]) -> None:
        """Take a `snapshot`."""
        qpos, mocap_pos, mocap_quat, body_pos, body_quat = state
        self.model.body_pos[:] = body_pos
        self.model.body_quat[:] = body_quat
        self.data.qpos[:] = qpos
        self.data.mocap_pos[:] = mocap_pos
        self.data.mocap_quat[:] = mocap_quat
        self._mujoco.mj_kinematics(self.model, self.data)
        self._mujoco.mj_camlight(self.model, self.data)  # the camera pose (mj_kinematics leaves it out)

    def render(self) -> np.ndarray:
        """RGB image (H x W x 3 uint8) of the synced state."""
        self._renderer.update_scene(self.data, camera=CAMERA_NAME)
        for flag in self._flags_off:
            self._renderer.scene.flags[flag] = 0
        return self._renderer.render()

    def render_depth_mm(self) -> np.ndarray:
        """Depth image (H x W uint16) of the synced state as a depth camera aligned to this one gives it:
        millimetres along the optical axis (MuJoCo's depth buffer is that distance in metres), 0 where
        nothing is within the far clipping plane (a RealSense's "no depth"). A second render pass: the cost
        of a colour frame again."""
        r = self._renderer
        r.enable_depth_rendering()
        try:
            r.update_scene(self.data, camera=CAMERA_NAME)
            z_m = r.render()
        finally:
            r.disable_depth_rendering()
        far_m = self.model.vis.map.zfar * self.model.stat.extent
        mm = np.rint(z_m * 1e3)
        mm[(z_m >= 0.999 * far_m) | (mm > 65535)] = 0
        return mm.astype(np.uint16)

    def tag_pose_sim(self, tag_id: int) -> tuple[np.ndarray, np.ndarray]:
        """Ground truth: the tag's centre [m] and axes in sim_world (synced state)."""
        g = self._tag_geoms[tag_id]
        return self.data.geom_xpos[g].copy(), self.data.geom_xmat[g].reshape(3, 3).copy()

    def tag_pose_camera(self, tag_id: int) -> tuple[np.ndarray, np.ndarray]:
        """Ground truth: the tag's centre [m] and axes in the camera optical frame."""
        p_sim, R_sim = self.tag_pose_sim(tag_id)
        R_sc = self.T_sim_camera.R.T
        return R_sc @ (p_sim - self.T_sim_camera.p), R_sc @ R_sim

    def close(self) -> None:
        self._renderer.close()


# -- the twin's cell seen through its camera (docs/perception.md) ---------------------------------------------
#: Where the twin's perception camera stands [m, sim_world], what it looks at and its vertical field of view
#: [deg]: behind the table, opposite the robot, 0.85 m up, about 0.75 m from the tags, so that the three tags
#: of the drawer-button scene are in view past the cabinet at every placement and the arm works on the far
#: side of them. Chosen by measurement over placements 0-19 (tag centre against the render, 640x480): median
#: 0.9-1.3 mm, max 3.1 mm, every tag seen, against 2.1-4.9 / 9.0 mm from the first pose (1.3 m up, 1.2 m
#: away, 58 degrees); at 45 degrees the button's tag left the image at three placements (docs/perception.md).
PERCEPTION_CAMERA_EYE_M = (0.0, 1.0, 0.85)
PERCEPTION_CAMERA_TARGET_M = (0.03, 0.72, 0.12)
PERCEPTION_CAMERA_FOVY_DEG = 52.0


def twin_marker_offsets(twin, camera: SimCamera) -> dict:
    """Each tag's calibration entry, measured in the twin as a lab measures it on its cell: from the tag's
    centre to the point the policy observes for that label, in sim_world axes (the tagged objects only
    translate: a drawer, a button, a cabinet), e.g. the drawer's tag sits 1 cm behind and 1 cm above the
    handle point. `camera` must be synced to the twin."""
    from sim2real.calibration import MarkerOffset

    points = twin._scene_points()
    out = {}
    for tag_id in camera.placements:
        label = camera.tag_map.tags[tag_id].label
        if label in points:
            offset = points[label] - camera.tag_pose_sim(tag_id)[0]
            out[label] = MarkerOffset(tuple(round(float(v), 6) for v in offset), "sim_world")
    return out


def perception_calibration(twin):
    """The twin's calibration for camera perception: the perception camera's pose (PERCEPTION_CAMERA_*) and
    the tags' marker offsets; everything else as the twin's own calibration."""
    import dataclasses

    from legion_core.robot.frames import look_at_R

    cal = twin.cal
    eye = np.asarray(PERCEPTION_CAMERA_EYE_M, float)
    T_sim_camera = Transform(look_at_R(eye, PERCEPTION_CAMERA_TARGET_M), eye, "sim_world", "camera")
    camera = SimCamera(
        twin.env.env.model_name, twin_tag_map(), T_sim_camera, fovy_deg=PERCEPTION_CAMERA_FOVY_DEG
    )
    try:
        camera.sync(twin.env.env.model, twin.env.env.data)
        markers = {**cal.markers, **twin_marker_offsets(twin, camera)}
    finally:
        camera.close()
    return dataclasses.replace(
        cal,
        T_base_camera=cal.T_sim_base.inverse() @ T_sim_camera,
        markers=markers,
        name=cal.name + ", camera perception (legion_core.sim.camera)",
    )


CAMERA_CALIBRATION_HEADER = """Calibration of the SIMULATED KUKA iiwa 7 twin for CAMERA PERCEPTION (docs/perception.md).
Generated by `python -m legion_core.sim.camera --write` (perception_calibration()): the twin's own calibration
with the perception camera behind the table (PERCEPTION_CAMERA_EYE_M looking at PERCEPTION_CAMERA_TARGET_M;
its field of view, PERCEPTION_CAMERA_FOVY_DEG, is the camera's CameraInfo, not part of this file)
and each tag's marker offset (tag centre -> the point the policy observes) measured in the twin.
tests/integration/test_camera_perception.py checks that it still matches."""


def write_perception_calibration(path=None) -> Path:
    """Regenerate the shipped camera-perception calibration (sim2real/config/calibration_twin_camera.yaml)."""
    from legion_core.sim.twin import DigitalTwin
    from sim2real.calibration import CAMERA_CALIBRATION_PATH, save_calibration, sim_calibration

    twin = DigitalTwin(sim_calibration(), "drawer-button", 0)
    try:
        return save_calibration(perception_calibration(twin), path or CAMERA_CALIBRATION_PATH,
                                CAMERA_CALIBRATION_HEADER)  # fmt: skip
    finally:
        twin.close()


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--write"]:
        print(write_perception_calibration())
    else:
        print(
            "usage: python -m legion_core.sim.camera --write   (regenerates sim2real/config/calibration_twin_camera.yaml)"
        )
