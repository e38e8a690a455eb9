"""MJCF for Meta-World v3 scenes with a KUKA LBR iiwa 7 R800 in place of the Sawyer (docs/kuka-embodiment.md).

The arm is authored here from the datasheet numbers in `legion_core.robot.iiwa7` (no third-party robot
files are copied or downloaded). Meta-World's own parallel gripper subtree (`hand`, rail, claws, pads,
end-effector sites, `r_close`/`l_close`) is taken from the installed metaworld package at generation
time and mounted on the flange through a short adapter, so grasping behaves as on the Sawyer.

What Meta-World's task code needs (docs/kuka-embodiment.md, "The model") and how we satisfy it:
- the robot comes first in the body tree and contributes exactly 9 DoFs (7 arm + 2 fingers), because
  many tasks index qpos[9:], qvel[9:] directly: the arm is included where `xyz_base.xml` was;
- bodies `hand`, `mocap`, `rightclaw`/`leftclaw`, `rightpad`/`leftpad`, sites `rightEndEffector`,
  `leftEndEffector`, `endEffector`, geoms `rightpad_geom`, ... come with the gripper subtree;
- the task XMLs keep their own weld (`mocap`<->`hand`) and the two gripper actuators.

Two control modes on one model (docs/kuka-embodiment.md): 7 position actuators on the arm joints are declared before
the task's gripper actuators. In `mocap` mode their gains are zero and the weld drives the hand (as
Meta-World); in `joint_position` mode the weld is disabled and the actuators track joint targets (what
the digital twin of the real robot uses). See `legion_core.sim.kuka`.

Files are generated into a cache directory (keyed by a hash of this generator and the metaworld version)
that mirrors metaworld's asset tree: `objects/`, `scene/`, `textures/` are symlinks into the installed
package and `kuka_xyz/` holds the generated files, so every relative include of the task XMLs resolves.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from legion_core.robot import iiwa7

#: Joint damping [N m s/rad] and rotor armature [kg m^2] of the simulated arm: enough damping for the
#: weld to settle without oscillation at 80 Hz control (docs/kuka-embodiment.md: damping 2, armature 0.1).
ARM_DAMPING = 2.0
ARM_ARMATURE = 0.1
#: Joint-limit constraint softness: much stiffer than the task's weld (solref 0.02) so that the weld
#: cannot drag a joint far past its limit (the prototype saw up to 0.29 rad with default limits).
LIMIT_SOLREF = "0.002 1"
LIMIT_SOLIMP = "0.98 0.999 0.001"
#: Position-servo gains of the joint_position mode [N m/rad], [N m s/rad] (per joint, scaled by the
#: joint's torque class). Values chosen for tight tracking at 0.0025 s physics steps.
JOINT_KP = (1600.0, 1600.0, 1000.0, 1000.0, 600.0, 300.0, 200.0)
JOINT_KV = (80.0, 80.0, 50.0, 50.0, 30.0, 15.0, 10.0)


def _metaworld_assets() -> Path:
    import metaworld

    return Path(metaworld.__file__).parent / "assets"


def _fmt(v) -> str:
    return " ".join(f"{float(x):.6g}" for x in np.atleast_1d(v))


def _gripper_subtree_xml() -> str:
    """Meta-World's `hand` body (gripper) extracted from the installed xyz_base.xml."""
    src = (_metaworld_assets() / "objects" / "assets" / "xyz_base.xml").read_text()
    root = ET.fromstring(src)
    hand = next((b for b in root.iter("body") if b.get("name") == "hand"), None)
    if hand is None:
        raise RuntimeError("metaworld's xyz_base.xml has no body named 'hand': unsupported metaworld version")
    hand.set("pos", _fmt([0.0, 0.0, iiwa7.FLANGE_TO_HAND_M]))
    hand.set("quat", _fmt(iiwa7.FLANGE_TO_HAND_QUAT))
    # The Sawyer's hand inherits the xyz_base defaults through its ancestors; keep that explicit here.
    hand.set("childclass", "xyz_base")
    return ET.tostring(hand, encoding="unicode")


def arm_body_xml() -> str:
    """The iiwa body tree (base -> 7 links -> flange -> Meta-World gripper) as an MJCF fragment."""
    base_pos, _ = iiwa7.base_pose_sim()
    yaw = iiwa7.BASE_YAW_SIM_RAD
    base_quat = [np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
    lines = [
        f'<body name="iiwa_base" pos="{_fmt(base_pos)}" quat="{_fmt(base_quat)}" childclass="iiwa">',
        '  <site name="iiwa_base_site" pos="0 0 0" size="0.01"/>',
        # Pedestal below the table top level (visual + collision with nothing: contype 0).
        '  <geom name="iiwa_pedestal" type="cylinder" size="0.12 0.45" pos="0 0 -0.45" contype="0"'
        ' conaffinity="0" rgba="0.25 0.25 0.25 1"/>',
        '  <geom name="iiwa_link_0" type="cylinder" size="0.09 0.075" pos="0 0 0.075" rgba="0.6 0.6 0.6 1"/>',
    ]
    depth = 1
    for i in range(iiwa7.N_JOINTS):
        off = iiwa7.JOINT_OFFSETS_Z_M[i]
        nxt = iiwa7.JOINT_OFFSETS_Z_M[i + 1] if i + 1 < iiwa7.N_JOINTS else iiwa7.A7_TO_FLANGE_M
        lo, hi = iiwa7.JOINT_LIMITS_RAD[i]
        r = iiwa7.LINK_RADII_M[i]
        m = iiwa7.LINK_MASSES_KG[i]
        ind = "  " * depth
        color = "1 0.45 0.05 1" if i in (1, 3, 5) else "0.85 0.85 0.85 1"
        lines += [
            f'{ind}<body name="iiwa_link_{i + 1}" pos="0 0 {off:.6g}" gravcomp="1">',
            f'{ind}  <joint name="{iiwa7.JOINT_NAMES[i]}" axis="{_fmt(iiwa7.JOINT_AXES[i])}"'
            f' range="{lo:.6f} {hi:.6f}"/>',
            # Inertia of a solid cylinder of the link's radius and length, about its centre.
            f'{ind}  <inertial pos="0 0 {nxt / 2:.6g}" mass="{m:.4g}" diaginertia="'
            f'{_fmt([m * (3 * r * r + nxt * nxt) / 12] * 2 + [m * r * r / 2])}"/>',
            f'{ind}  <geom name="iiwa_link_{i + 1}_geom" type="capsule" size="{r:.4g}"'
            f' fromto="0 0 0 0 0 {max(nxt - r * 0.5, 0.01):.4g}" rgba="{color}"/>',
        ]
        depth += 1
    ind = "  " * depth
    lines += [
        f'{ind}<body name="iiwa_flange" pos="0 0 {iiwa7.A7_TO_FLANGE_M:.6g}">',
        f'{ind}  <site name="flange" pos="0 0 0" size="0.01" rgba="0 0 1 0"/>',
        # Adapter plate + gripper base between the flange and the Meta-World hand.
        f'{ind}  <geom name="gripper_adapter" type="cylinder" size="0.035 0.0075"'
        f' pos="0 0 0.0075" rgba="0.2 0.2 0.2 1"/>',
        f'{ind}  <body name="tcp_frame" pos="0 0 {iiwa7.FLANGE_TO_HAND_M + iiwa7.HAND_TO_TCP_M:.6g}">',
        f'{ind}    <site name="tcp" pos="0 0 0" size="0.005" rgba="1 0 1 0"/>',
        f"{ind}  </body>",
    ]
    lines += [ind + "  " + ln for ln in _gripper_subtree_xml().splitlines()]
    for d in range(depth, 0, -1):
        lines.append("  " * d + "</body>")
    lines.append("</body>")
    return "\n".join(lines)


def base_include_xml() -> str:
    """Replacement for metaworld's objects/assets/xyz_base.xml (included inside <worldbody>)."""
    sawyer = (_metaworld_assets() / "objects" / "assets" / "xyz_base.xml").read_text()
    cameras = "\n".join(re.findall(r"<camera [^>]*/>", sawyer.split("<body", 1)[0]))
    mocap = (
        '<body mocap="true" name="mocap" pos="0 0 0">\n'
        '  <geom conaffinity="0" contype="0" pos="0 0 0" rgba="0.0 0.5 0.5 0" size="0.01" type="sphere"/>\n'
        '  <site name="mocap" pos="0 0 0" rgba="0.0 0.5 0.5 0" size="0.01" type="sphere"/>\n'
        "</body>"
    )
    return f"<mujocoinclude>\n{cameras}\n{arm_body_xml()}\n{mocap}\n</mujocoinclude>\n"


def dependencies_xml() -> str:
    """Replacement for xyz_base_dependencies.xml (top level): compiler, defaults, arm actuators."""
    acts = []
    for i, name in enumerate(iiwa7.JOINT_NAMES):
        lo, hi = iiwa7.JOINT_LIMITS_RAD[i]
        tau = iiwa7.JOINT_TORQUE_LIMITS_NM[i]
        # kp/kv are zero here (mocap mode); legion_core.sim.kuka sets them for joint_position mode.
        acts.append(
            f'  <position name="act_{name}" joint="{name}" kp="0" kv="0" ctrlrange="{lo:.6f} {hi:.6f}"'
            f' forcerange="{-tau:.6g} {tau:.6g}" forcelimited="true"/>'
        )
    acts_xml = "\n".join(acts)
    return f"""<mujocoinclude>
  <compiler angle="radian" inertiafromgeom="auto" inertiagrouprange="4 5"/>
  <asset>
    <material name="xyz_col" rgba="0.3 0.3 1.0 0.5" shininess="0" specular="0.5"/>
  </asset>
  <default>
    <!-- The gripper subtree is Meta-World's and keeps Meta-World's defaults (class xyz_base). -->
    <default class="xyz_base">
      <joint armature="0.001" damping="2" limited="true"/>
      <geom conaffinity="0" contype="0" group="1" type="mesh"/>
      <position ctrllimited="true" ctrlrange="0 1.57"/>
      <default class="base_viz">
        <geom conaffinity="0" condim="4" contype="0" group="1" margin="0.001" solimp=".8 .9 .01"
              solref=".02 1" type="mesh"/>
      </default>
      <default class="base_col">
        <geom conaffinity="1" condim="4" contype="1" group="4" margin="0.001" material="xyz_col"
              solimp=".8 .9 .01" solref=".02 1"/>
      </default>
    </default>
    <!-- The arm: links collide with the table, walls and objects (contype 1) but not with each other
         (conaffinity 2 matches no arm geom's contype), as docs/kuka-embodiment.md says. -->
    <default class="iiwa">
      <joint damping="{ARM_DAMPING}" armature="{ARM_ARMATURE}" limited="true"
             solreflimit="{LIMIT_SOLREF}" solimplimit="{LIMIT_SOLIMP}"/>
      <geom contype="1" conaffinity="2" group="1" condim="3" type="capsule"/>
    </default>
  </default>
  <actuator>
{acts_xml}
  </actuator>
</mujocoinclude>
"""


_SAWYER_BASE_RE = re.compile(r'file="\.\./objects/assets/xyz_base\.xml"')
_SAWYER_DEPS_RE = re.compile(r'file="\.\./objects/assets/xyz_base_dependencies\.xml"')


def task_xml(sawyer_task_xml: str) -> str:
    """A Meta-World task XML with the Sawyer includes swapped for the KUKA ones."""
    if not _SAWYER_BASE_RE.search(sawyer_task_xml):
        raise ValueError("task XML does not include ../objects/assets/xyz_base.xml; cannot swap the robot")
    out = _SAWYER_BASE_RE.sub('file="kuka_xyz_base.xml"', sawyer_task_xml)
    return _SAWYER_DEPS_RE.sub('file="kuka_xyz_base_dependencies.xml"', out)


def _generator_key() -> str:
    import metaworld

    h = hashlib.sha256()
    h.update(Path(__file__).read_bytes())
    h.update(Path(iiwa7.__file__).read_bytes())
    h.update(getattr(metaworld, "__version__", "3.1.1").encode())
    h.update(str(_metaworld_assets()).encode())
    return h.hexdigest()[:12]


def cache_root() -> Path:
    return Path(os.environ.get("LEGION_CACHE_DIR", Path.home() / ".cache" / "legion"))


def build_assets(force: bool = False) -> Path:
    """Generate (once) the mirrored asset tree; returns its root. Safe under concurrent callers."""
    root = cache_root() / "assets" / f"kuka-{_generator_key()}"
    if root.exists() and not force:
        return root
    mw = _metaworld_assets()
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=root.name + ".", dir=root.parent))
    for sub in ("objects", "scene", "textures"):
        (tmp / sub).symlink_to(mw / sub, target_is_directory=True)
    kdir = tmp / "kuka_xyz"
    kdir.mkdir()
    (kdir / "kuka_xyz_base.xml").write_text(base_include_xml())
    (kdir / "kuka_xyz_base_dependencies.xml").write_text(dependencies_xml())
    for f in sorted((mw / "sawyer_xyz").glob("*.xml")):
        text = f.read_text()
        if _SAWYER_BASE_RE.search(text):
            (kdir / f.name).write_text(task_xml(text))
    if force and root.exists():
        shutil.rmtree(root)
    try:
        tmp.rename(root)
    except OSError:  # another process won the race; use its tree
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def kuka_task_xml_path(sawyer_xml_path: str | Path) -> Path:
    """Path of the KUKA variant of a Meta-World task XML (generating the tree if needed)."""
    p = Path(sawyer_xml_path)
    out = build_assets() / "kuka_xyz" / p.name
    if not out.exists():
        raise FileNotFoundError(f"no KUKA variant of {p.name}: the task XML does not include xyz_base.xml")
    return out


# -------------------------------------------------------------------------------------- multi-object scenes
_SKIP_TOP_INCLUDES = ("../scene/basic_scene.xml", "kuka_xyz_base_dependencies.xml")


def scene_xml_path(name: str, task_xml_names: list[str]) -> tuple[Path, list[str]]:
    """One MJCF world with the objects of several Meta-World task XMLs (KUKA variants) on one table.

    The first XML is the host (its robot, actuators, weld and `goal` site are kept, so its task code runs
    unchanged); of the others, the asset includes and the object bodies of the worldbody are added (not
    their robot include, goal sites, actuators or welds). Returns (path, the top-level object body of each
    XML in order): the caller places those bodies (legion_core.sim.twin). Duplicate names across the merged
    objects make MuJoCo refuse the file, which is the check that the objects can share a world.
    """
    kdir = build_assets() / "kuka_xyz"
    roots = []
    for fn in task_xml_names:
        p = kdir / Path(fn).name
        if not p.exists():
            raise FileNotFoundError(f"no KUKA variant of {fn}")
        roots.append(ET.fromstring(p.read_text()))
    host = roots[0]
    host_wb = host.find("worldbody")
    bodies = [host_wb.find("body").get("name")]
    for root in roots[1:]:
        have = {inc.get("file") for inc in host.findall("include")}
        for inc in root.findall("include"):
            f = inc.get("file")
            if f not in _SKIP_TOP_INCLUDES and f not in have:
                host.insert(list(host).index(host_wb), inc)
                have.add(f)
        first = None
        for child in root.find("worldbody"):
            if child.tag == "include" or (child.tag == "site" and child.get("name") == "goal"):
                continue
            host_wb.append(child)
            if child.tag == "body" and first is None:
                first = child.get("name")
        if first is None:
            raise ValueError("a scene object XML has no body in its worldbody")
        bodies.append(first)
    text = ET.tostring(host, encoding="unicode")
    out = kdir / f"scene_{name}.xml"
    if not out.exists() or out.read_text() != text:
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(out)
    return out, bodies
