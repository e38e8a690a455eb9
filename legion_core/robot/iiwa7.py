"""KUKA LBR iiwa 7 R800: the datasheet numbers, in one place, in SI units.

Both the simulated KUKA embodiment (`legion_core.sim.kuka_model`, MJCF authored from these numbers) and
the real-robot kinematics (`legion_core.robot.kinematics`) read this module, so that sim and "real" share one
kinematic model: a policy that works on the twin then sees the same arm on the robot.

Sources: KUKA LBR iiwa 7 R800 specification (link lengths 0.340 / 0.400 / 0.400 / 0.126 m, axis limits
and maximum axis speeds) and the iiwa_stack / lbr_fri_ros2_stack descriptions for the axis directions
and the intermediate joint heights. Only numpy here: a robot PC imports it without MuJoCo or torch.

Zero configuration (all joints 0): the arm points straight up along the base z axis. Joint axes in that
configuration, in the base frame (REP-103: x forward, y left, z up):
A1 +z, A2 +y, A3 +z, A4 -y, A5 +z, A6 +y, A7 +z.
"""

from __future__ import annotations

import numpy as np

#: Joint names as the lbr_fri_ros2_stack driver publishes them (robot_name "lbr").
JOINT_NAMES: tuple[str, ...] = ("lbr_A1", "lbr_A2", "lbr_A3", "lbr_A4", "lbr_A5", "lbr_A6", "lbr_A7")
N_JOINTS = 7

#: Offset of each joint origin from the previous one along the previous link's z axis [m], zero pose.
#: A1 origin sits 0.15 m above the base plate; A2 at 0.34 m (datasheet), A4 at 0.74 m, A6 at 1.14 m.
JOINT_OFFSETS_Z_M: tuple[float, ...] = (0.150, 0.190, 0.210, 0.190, 0.210, 0.190, 0.081)
#: A7 origin to the media flange face [m] (A6 to flange = 0.126 m in the datasheet).
A7_TO_FLANGE_M = 0.045

#: Joint axis directions in the parent link frame (all parents are aligned at zero pose).
JOINT_AXES: tuple[tuple[float, float, float], ...] = (
    (0.0, 0.0, 1.0),
    (0.0, 1.0, 0.0),
    (0.0, 0.0, 1.0),
    (0.0, -1.0, 0.0),
    (0.0, 0.0, 1.0),
    (0.0, 1.0, 0.0),
    (0.0, 0.0, 1.0),
)

#: Axis position limits [rad] (datasheet: +-170, +-120, +-170, +-120, +-170, +-120, +-175 deg).
JOINT_LIMITS_RAD: np.ndarray = np.deg2rad(
    np.array(
        [[-170, 170], [-120, 120], [-170, 170], [-120, 120], [-170, 170], [-120, 120], [-175, 175]], float
    )
)
#: Maximum axis speeds [rad/s] (datasheet iiwa 7 R800: 98, 98, 100, 130, 140, 180, 180 deg/s).
JOINT_VEL_LIMITS_RAD_S: np.ndarray = np.deg2rad(np.array([98, 98, 100, 130, 140, 180, 180], float))
#: Maximum torques [N m] (datasheet): used for actuator force limits in the joint_position twin.
JOINT_TORQUE_LIMITS_NM: np.ndarray = np.array([176, 176, 110, 110, 110, 40, 40], float)

#: Approximate link masses [kg] (total arm 23.9 kg in the datasheet); link i is moved by joint i.
LINK_MASSES_KG: tuple[float, ...] = (3.45, 3.48, 4.06, 3.40, 3.39, 1.77, 0.32)
#: Collision/visual capsule radius per link [m] (the real links are ~0.06-0.07 m in radius).
LINK_RADII_M: tuple[float, ...] = (0.065, 0.065, 0.060, 0.060, 0.055, 0.055, 0.045)

#: Straight-up height of the flange face above the base plate [m]: 0.34 + 0.40 + 0.40 + 0.126.
FLANGE_HEIGHT_ZERO_POSE_M = 1.266

# --- The tool: Meta-World's parallel two-finger gripper on a short adapter -------------------------
#: Flange face to the Meta-World `hand` body origin, along the flange z axis [m]. The gripper's rail sits
#: 0.05 m behind `hand`, so the adapter must be longer than that for the fingers to clear the flange.
FLANGE_TO_HAND_M = 0.065
#: `hand` to the tool centre point (midpoint of the finger-tip sites, Meta-World's `tcp_center`) [m].
HAND_TO_TCP_M = 0.045
#: Orientation of the `hand` body in the flange frame, quaternion (w, x, y, z): a -90 deg turn about
#: flange y, so that hand +x is flange +z (pointing away from the arm, i.e. down when the flange faces
#: down) and hand y is flange y. With the flange facing down this gives Meta-World's fixed hand
#: orientation, mocap_quat (1, 0, 1, 0) normalised.
FLANGE_TO_HAND_QUAT = (np.sqrt(0.5), 0.0, -np.sqrt(0.5), 0.0)

#: World-frame orientation Meta-World holds the hand at (w, x, y, z): hand +x down, hand y = world y.
HAND_QUAT_DOWN = (np.sqrt(0.5), 0.0, np.sqrt(0.5), 0.0)
#: The flange orientation in the world that gives HAND_QUAT_DOWN: flange z = world -z, flange y = world
#: y, flange x = world -x (a 180 deg turn about world y). Used as the IK orientation target.
R_WORLD_FLANGE_DOWN = np.array([[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]])

# --- Placement of the arm in Meta-World's world frame ---------------------------------------------------
#: Robot base origin in Meta-World's world frame (`sim_world`) [m]. The table top is z = 0 and spans
#: y 0.2..1.0; the Sawyer's base is at the origin. y = 0.10 puts the hand box y 0.40..0.90 inside the
#: iiwa's comfortable reach (wrist 0.40..0.78 m from the shoulder); see docs/kuka-embodiment.md.
BASE_POS_SIM_M = (0.0, 0.10, 0.0)
#: Base yaw in the world [rad]: +90 deg so that the base x axis (the arm's "forward") points along world
#: +y, towards the table.
BASE_YAW_SIM_RAD = np.pi / 2

#: Seed posture for the arm [rad]: elbow up, flange facing down, hand near (0, 0.6, 0.2). The env solves
#: the exact home posture for each task's hand_init_pos by IK from this seed.
HOME_SEED_Q_RAD: tuple[float, ...] = (0.0, 0.486, 0.0, -1.756, 0.0, 0.900, 1.571)


def base_pose_sim() -> tuple[np.ndarray, np.ndarray]:
    """`T_sim_base` of the simulated embodiment as (position [m], rotation matrix)."""
    c, s = np.cos(BASE_YAW_SIM_RAD), np.sin(BASE_YAW_SIM_RAD)
    R = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return np.array(BASE_POS_SIM_M, float), R
