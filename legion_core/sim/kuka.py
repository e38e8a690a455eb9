"""Meta-World v3 task envs on the KUKA iiwa 7 R800 (docs/kuka-embodiment.md).

`kuka_env_class(SawyerCls)` returns a subclass of a Meta-World task class that loads the KUKA variant of
the task scene (`kuka_model`) and keeps everything else of Meta-World: action semantics (mocap-driven
hand, Δxyz = action·0.01 m per step, fixed downward hand orientation, gripper), observations, reward and
success code. It adds:

- a home posture for the arm, solved by IK for the task's `hand_init_pos` before Meta-World's own hand
  reset (the weld alone would drag a straight-up arm through the table);
- `control_mode`: "mocap" (training, as Meta-World) or "joint_position" (weld off, 7 position servos
  track `set_joint_targets(q)`; what the digital twin of the real robot uses);
- joint-limit bookkeeping: the largest excursion past a limit since the last reset
  (`max_limit_violation_rad`), because the soft mocap weld can push a joint past its limit
  (docs/kuka-embodiment.md). The limits are also made much stiffer than the weld in the MJCF.
"""

from __future__ import annotations

from functools import lru_cache

import mujoco
import numpy as np

from legion_core.robot import iiwa7, kinematics
from legion_core.sim import kuka_model

CONTROL_MODES = ("mocap", "joint_position")
N_ARM = iiwa7.N_JOINTS


@lru_cache(maxsize=64)
def home_posture(hand_init_pos: tuple[float, float, float]) -> tuple[np.ndarray, float]:
    """Arm posture [rad] with the flange facing down and the hand as close as the arm can get to
    `hand_init_pos` (sim_world). Returns (q, residual distance [m]). Where Meta-World's start point is
    out of the iiwa's reach with a vertical wrist (hand_init y = 0.40 with our base at y = 0.10), the
    orientation is kept exact and the hand starts at the closest reachable point instead."""
    p_base, R_sim_base = iiwa7.base_pose_sim()
    res = kinematics.start_posture(
        kinematics.sim_to_base(np.asarray(hand_init_pos, float), p_base, R_sim_base),
        kinematics.R_base_flange_down(R_sim_base),
    )
    return res.q, res.position_error_m


class KukaMixin:
    """Mixed in before a Meta-World task class (see `kuka_env_class`)."""

    embodiment = "kuka"

    def __init__(self, *args, control_mode: str = "mocap", **kwargs) -> None:
        if control_mode not in CONTROL_MODES:
            raise ValueError(f"control_mode must be one of {CONTROL_MODES}, got {control_mode!r}")
        self._control_mode = control_mode
        self._arm_ctrl = np.zeros(N_ARM)
        self.max_limit_violation_rad = 0.0
        super().__init__(*args, **kwargs)
        self._q_low = self.model.jnt_range[:N_ARM, 0].copy()
        self._q_high = self.model.jnt_range[:N_ARM, 1].copy()
        self._kp = np.array(kuka_model.JOINT_KP)
        self._kv = np.array(kuka_model.JOINT_KV)
        self.init_qpos[:N_ARM] = np.asarray(iiwa7.HOME_SEED_Q_RAD)
        self.set_control_mode(control_mode)

    # -- model ---------------------------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        return str(kuka_model.kuka_task_xml_path(super().model_name))

    @property
    def control_mode(self) -> str:
        return self._control_mode

    def set_control_mode(self, mode: str) -> None:
        """Switch between the weld-driven hand and joint position servos on the same model."""
        if mode not in CONTROL_MODES:
            raise ValueError(f"control_mode must be one of {CONTROL_MODES}, got {mode!r}")
        self._control_mode = mode
        servo = mode == "joint_position"
        for i in range(N_ARM):
            kp, kv = (self._kp[i], self._kv[i]) if servo else (0.0, 0.0)
            self.model.actuator_gainprm[i, 0] = kp
            self.model.actuator_biasprm[i, 1] = -kp
            self.model.actuator_biasprm[i, 2] = -kv
        self.model.eq_active0[:] = 0 if servo else 1
        self.data.eq_active[:] = 0 if servo else 1
        self._arm_ctrl = self.data.qpos[:N_ARM].copy()

    def set_joint_targets(self, q_target: np.ndarray) -> None:
        """Joint position targets [rad] for the 7 servos (joint_position mode); clipped to the limits."""
        if self._control_mode != "joint_position":
            raise RuntimeError("set_joint_targets needs control_mode='joint_position'")
        q = np.asarray(q_target, float)
        if q.shape != (N_ARM,) or not np.all(np.isfinite(q)):
            raise ValueError(f"joint targets must be {N_ARM} finite angles [rad], got {q!r}")
        self._arm_ctrl = np.clip(q, self._q_low, self._q_high)

    @property
    def arm_qpos(self) -> np.ndarray:
        return self.data.qpos[:N_ARM].copy()

    @property
    def arm_qvel(self) -> np.ndarray:
        return self.data.qvel[:N_ARM].copy()

    # -- simulation ----------------------------------------------------------------------------------
    def do_simulation(self, ctrl, n_frames) -> None:
        """Meta-World sends the two gripper controls; the 7 arm actuators come first in the model."""
        ctrl = np.asarray(ctrl, float)
        if ctrl.shape != (2,):
            raise ValueError(f"expected the 2 gripper controls, got shape {ctrl.shape}")
        full = np.empty(self.model.nu)
        full[:N_ARM] = self._arm_ctrl
        full[N_ARM:] = ctrl
        self._step_mujoco_simulation(full, n_frames)
        q = self.data.qpos[:N_ARM]
        over = np.maximum(q - self._q_high, self._q_low - q).max()
        if over > self.max_limit_violation_rad:
            self.max_limit_violation_rad = float(over)

    def _reset_hand(self, steps: int = 50) -> None:
        q_home, _ = home_posture(tuple(float(v) for v in self.hand_init_pos))
        qpos = self.data.qpos.copy()
        qvel = self.data.qvel.copy()
        qpos[:N_ARM] = q_home
        qvel[:N_ARM] = 0.0
        self.set_state(qpos, qvel)
        self._arm_ctrl = q_home.copy()
        # Start the mocap at the hand so the weld does not yank the arm on the first step.
        mujoco.mj_forward(self.model, self.data)
        if self._control_mode == "mocap":
            self.data.mocap_pos[0] = self.data.body("hand").xpos
            super()._reset_hand(steps)
        else:
            for _ in range(steps):
                self.do_simulation([-1.0, 1.0], self.frame_skip)
            self.init_tcp = self.tcp_center
        self.max_limit_violation_rad = 0.0


_CLASS_CACHE: dict[type, type] = {}


def kuka_env_class(sawyer_cls: type) -> type:
    """The KUKA variant of a Meta-World v3 task class (cached, so isinstance checks stay stable)."""
    if sawyer_cls not in _CLASS_CACHE:
        name = sawyer_cls.__name__.replace("Sawyer", "Kuka")
        _CLASS_CACHE[sawyer_cls] = type(name, (KukaMixin, sawyer_cls), {"__module__": __name__})
    return _CLASS_CACHE[sawyer_cls]
