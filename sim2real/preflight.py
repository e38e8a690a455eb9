"""Pre-flight checks of the robot driver, before the first motion and continuously after it, without ROS.

What the runtime must know before it may command (docs/robot-integration.md): the driver's joint states
arrive, fresh, at a plausible rate, with the joint names the calibration maps; something subscribes to the
command topic; where the controller manager answers, the profile's command controller is the active one and
the manager's update rate equals the command rate; where the lbr stack's robot state arrives, FRI is in
COMMANDING_ACTIVE and the controller's safety state is normal. A failing check refuses to command and says
the fix in one sentence; sim2real_node publishes every check in /diagnostics, the first failure in its
status and as the supervisor's hold reason, and `legion doctor` prints the same list.

A check whose interface is absent (no controller_manager_msgs or lbr_fri_idl on this PC, or a driver
without a controller manager) is skipped, not failed: the other checks and the supervisor's watchdogs still
hold the arm. `evaluate` is pure: the node (legion_core.ros.driver_monitor) gathers the facts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from legion_core.contracts.drivers import DriverProfile

PASS, FAIL, SKIP = "pass", "fail", "skip"

# lbr_fri_idl/LBRState enumerations (KUKA FRI client SDK, docs/robot-integration.md): the arm follows
# commands only in COMMANDING_ACTIVE, and only while no safety stop is active.
SESSION_STATES = {
    0: "IDLE",
    1: "MONITORING_WAIT",
    2: "MONITORING_READY",
    3: "COMMANDING_WAIT",
    4: "COMMANDING_ACTIVE",
}
COMMANDING_ACTIVE = 4
SAFETY_STATES = {
    0: "NORMAL_OPERATION",
    1: "SAFETY_STOP_LEVEL_0",
    2: "SAFETY_STOP_LEVEL_1",
    3: "SAFETY_STOP_LEVEL_2",
}
NORMAL_OPERATION = 0
#: The checks, in the order they are evaluated and printed.
CHECKS = ("joint_states", "joint_names", "command_subscriber", "controller", "update_rate", "robot_state")


@dataclass
class PreflightConfig:
    """How strict the driver checks are."""

    min_joint_state_rate_hz: float = 20.0
    """Joint states arriving slower than this [Hz], measured over `rate_window_s`, fail the check. The lbr
    stack publishes them at its update rate (100-500 Hz), the twin at 200 Hz; 20 Hz stays clear of a loaded
    machine's dips and still catches a driver that is not streaming."""
    rate_window_s: float = 1.0
    """Window over which the joint-state rate is measured [s]."""
    max_joint_state_age_s: float = 0.5
    """The newest joint state arrived longer ago than this [s]: the driver is not streaming (the
    supervisor's own, tighter watchdog holds a running arm long before)."""
    controller_poll_period_s: float = 1.0
    """How often the controller manager is asked for its controllers and update rate [s]."""
    answer_timeout_s: float = 2.0
    """A controller manager silent this long [s] after a request is treated as absent (check skipped)."""
    rate_tolerance: float = 0.01
    """Relative difference between the command rate and the controller manager's update rate allowed [-]."""

    def __post_init__(self) -> None:
        for nm in ("min_joint_state_rate_hz", "rate_window_s", "max_joint_state_age_s", "controller_poll_period_s",
                   "answer_timeout_s", "rate_tolerance"):  # fmt: skip
            v = getattr(self, nm)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{nm} must be a finite number > 0, got {v}")


@dataclass
class DriverFacts:
    """What was observed of the driver at one moment (None: not observed / interface absent)."""

    now_s: float
    joint_state_names: tuple[str, ...] | None = None
    """Names in the newest joint state."""
    joint_state_age_s: float | None = None
    """Time since the newest joint state arrived [s]."""
    joint_state_rate_hz: float | None = None
    """Arrival rate over the last window [Hz] (None: the window is not full yet)."""
    command_subscribers: int | None = None
    """Subscriptions matched on the command topic."""
    controllers: dict[str, str] | None = None
    """Controller name -> state ('active', 'inactive', ...) from list_controllers."""
    controllers_note: str = ""
    """Why `controllers` is None (no controller_manager_msgs, no answer)."""
    update_rate_hz: float | None = None
    """The controller manager's update_rate parameter [Hz]."""
    session_state: int | None = None
    """lbr_fri_idl/LBRState.session_state."""
    safety_state: int | None = None
    """lbr_fri_idl/LBRState.safety_state."""
    robot_state_note: str = ""
    """Why the robot state is None."""


@dataclass(frozen=True)
class Check:
    """One check's outcome."""

    name: str
    """One of CHECKS."""
    status: str
    """pass | fail | skip."""
    detail: str
    """What was seen."""
    fix: str = ""
    """One sentence: what to do (failures only)."""

    def line(self) -> str:
        """'name: detail' (+ ' -> fix')."""
        return f"{self.name}: {self.detail}" + (f" -> {self.fix}" if self.fix else "")


@dataclass
class PreflightResult:
    checks: list[Check] = field(default_factory=list)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    @property
    def ok(self) -> bool:
        return not self.failures

    def reason(self) -> str:
        """The operator's line for the first failure ('' when all pass)."""
        f = self.failures
        return f"driver not ready: {f[0].detail}; fix: {f[0].fix}" if f else ""


def evaluate(
    profile: DriverProfile,
    expected_joint_names: tuple[str, ...],
    facts: DriverFacts,
    config: PreflightConfig | None = None,
) -> PreflightResult:
    """Every check of CHECKS for `profile`, whose joints the calibration maps as `expected_joint_names`
    (driver names, base to flange)."""
    cfg = config or PreflightConfig()
    out = PreflightResult()
    add = out.checks.append
    topic = profile.joint_states_topic
    # Joint states: arriving, fresh, fast enough.
    if facts.joint_state_age_s is None:
        add(Check("joint_states", FAIL, f"no joint state on {topic}",
                  f"start the driver, or set joint_states_topic to the topic it publishes ({_driver_hint(profile)})"))  # fmt: skip
    elif facts.joint_state_age_s > cfg.max_joint_state_age_s:
        add(Check("joint_states", FAIL, f"the newest joint state on {topic} arrived {facts.joint_state_age_s:.2f} s ago",
                  "the driver stopped publishing: check its terminal and the network to its PC"))  # fmt: skip
    elif facts.joint_state_rate_hz is not None and facts.joint_state_rate_hz < cfg.min_joint_state_rate_hz:
        add(Check("joint_states", FAIL,
                  f"joint states at {facts.joint_state_rate_hz:.1f} Hz on {topic} (< {cfg.min_joint_state_rate_hz:g} Hz)",
                  "check the driver's joint_state_broadcaster and the network (QoS, bandwidth)"))  # fmt: skip
    else:
        rate = "" if facts.joint_state_rate_hz is None else f" at {facts.joint_state_rate_hz:.0f} Hz"
        add(Check("joint_states", PASS, f"fresh on {topic}{rate}"))
    # Joint names: the calibration's map covers what the driver publishes.
    if facts.joint_state_names is None:
        add(Check("joint_names", SKIP, "no joint state yet"))
    else:
        got = tuple(facts.joint_state_names)
        missing = [n for n in expected_joint_names if n not in got]
        if missing:
            add(Check("joint_names", FAIL, f"the driver publishes {list(got)}, the calibration maps {list(expected_joint_names)}",
                      "set the calibration's joint_names to the driver's names (robot_name sets the lbr stack's prefix)"))  # fmt: skip
        else:
            add(
                Check("joint_names", PASS, f"{len(expected_joint_names)} joints as the calibration maps them")
            )
    # Something listens to the command topic.
    ctopic = profile.command_topic
    if facts.command_subscribers is None:
        add(Check("command_subscriber", SKIP, "not counted"))
    elif facts.command_subscribers < 1:
        fix = profile.switch_hint() if profile.controller else f"start the driver that subscribes to {ctopic}"
        add(
            Check("command_subscriber", FAIL, f"nothing subscribes to {ctopic} ({profile.command_type})", fix)
        )
    else:
        add(Check("command_subscriber", PASS, f"{facts.command_subscribers} subscriber(s) on {ctopic}"))
    # The controller manager: the profile's controller is the active one, at the command rate.
    if not profile.controller_manager:
        add(Check("controller", SKIP, "this driver has no controller manager"))
        add(Check("update_rate", SKIP, "this driver has no controller manager"))
    elif facts.controllers is None:
        add(Check("controller", SKIP, facts.controllers_note or "controller manager not asked yet"))
        add(Check("update_rate", SKIP, facts.controllers_note or "controller manager not asked yet"))
    else:
        state = facts.controllers.get(profile.controller)
        active_cmd = sorted(n for n, s in facts.controllers.items() if s == "active" and n != profile.controller
                            and not n.endswith("broadcaster"))  # fmt: skip
        if state == "active":
            add(Check("controller", PASS, f"{profile.controller} is active"))
        else:
            seen = f"{profile.controller} is {state}" if state else f"{profile.controller} is not loaded"
            if active_cmd:
                seen += f" ({', '.join(active_cmd)} is active)"
            add(Check("controller", FAIL, seen, profile.switch_hint(active_cmd[0] if active_cmd else "")))
        rate = facts.update_rate_hz
        if rate is None:
            add(Check("update_rate", SKIP, f"{profile.controller_manager} has no readable update_rate"))
        elif abs(rate - profile.command_rate_hz) > cfg.rate_tolerance * rate:
            add(Check("update_rate", FAIL,
                      f"command_rate_hz {profile.command_rate_hz:g} != the controller manager's update_rate {rate:g} Hz",
                      f"launch the runtime with command_rate_hz:={rate:.1f} (the driver's send period "
                      f"{1000.0 / rate:g} ms), or change the driver's update_rate"))  # fmt: skip
        else:
            add(Check("update_rate", PASS, f"{rate:g} Hz = the command rate"))
    # The lbr stack's robot state.
    if not profile.robot_state_topic:
        add(Check("robot_state", SKIP, "this driver publishes no robot state"))
    elif facts.session_state is None:
        add(
            Check(
                "robot_state",
                SKIP,
                facts.robot_state_note or f"no robot state on {profile.robot_state_topic} yet",
            )
        )
    else:
        session = SESSION_STATES.get(facts.session_state, str(facts.session_state))
        safety = SAFETY_STATES.get(facts.safety_state, str(facts.safety_state))
        if facts.safety_state != NORMAL_OPERATION:
            add(Check("robot_state", FAIL, f"safety state {safety}",
                      "clear the safety stop on the smartPAD, then restart the FRI application"))  # fmt: skip
        elif facts.session_state != COMMANDING_ACTIVE:
            add(Check("robot_state", FAIL, f"FRI session {session} (the arm follows commands only in COMMANDING_ACTIVE)",
                      "start the LBRServer application on the smartPAD in position control and wait for COMMANDING_ACTIVE"))  # fmt: skip
        else:
            add(Check("robot_state", PASS, f"FRI session {session}, {safety}"))
    return out


def _driver_hint(profile: DriverProfile) -> str:
    if profile.driver == "lbr":
        return f"lbr_fri_ros2_stack with robot_name {profile.namespace.rsplit('/', 1)[-1]} publishes {profile.joint_states_topic}"
    return f"driver profile {profile.driver}"


# -- the robot description (legion doctor) -------------------------------------------------------------
#: Largest flange position difference [m] between the driver's description and the calibration's arm that
#: counts as the same arm (the shipped iiwa 7 URDF and the datasheet agree to 1e-12 m).
DESCRIPTION_TOLERANCE_M = 1e-3
DESCRIPTION_LIMIT_TOLERANCE_RAD = 1e-3


def robot_description_check(calibration, urdf_text: str | None, topic: str) -> Check:
    """Does the driver's robot_description (None = none received on `topic`) give the arm the calibration
    says? With `arm: description: topic` it is the arm, so it must build (chain, joint names); with any other
    source the two must agree (flange within DESCRIPTION_TOLERANCE_M over sample postures, the same limits):
    a calibration for an iiwa 7 on an iiwa 14 is refused here, before the arm moves."""
    from dataclasses import replace

    import numpy as np

    from legion_core.robot import kinematics
    from legion_core.robot.description import TOPIC

    name, src = "robot_description", calibration.arm.description
    use_topic = "set arm.description: topic in the calibration (the driver's description is the arm)"
    if urdf_text is None:
        if calibration.arm.needs_topic:
            return Check(name, FAIL, f"no robot description on {topic or '(the driver has none)'}",
                         "start the driver's robot_state_publisher, or set arm.description in the calibration "
                         "to iiwa7, iiwa14 or a URDF file")  # fmt: skip
        return Check(
            name,
            SKIP,
            f"no robot description on {topic or '(the driver has none)'}; the calibration's arm is {src}",
        )
    try:
        driver_arm = replace(calibration, arm=replace(calibration.arm, description=TOPIC)).arm_model(
            urdf_text
        )
    except ValueError as e:
        return Check(name, FAIL, str(e), "make the calibration's arm links and joint_names match the driver")
    if calibration.arm.needs_topic:
        return Check(
            name,
            PASS,
            f"{driver_arm.name} from {topic}: {len(driver_arm.joints)} joints as joint_names maps them",
        )
    ours = calibration.arm_model()
    dq = np.max(np.abs(np.r_[driver_arm.q_low - ours.q_low, driver_arm.q_high - ours.q_high,
                             driver_arm.velocity_limits_rad_s - ours.velocity_limits_rad_s]))  # fmt: skip
    if dq > DESCRIPTION_LIMIT_TOLERANCE_RAD:
        return Check(name, FAIL, f"the driver's {driver_arm.name} has other joint limits than the calibration's arm "
                     f"({src}; position or speed limits up to {dq:.3f} rad (/s) apart)", use_topic)  # fmt: skip
    rng = np.random.default_rng(0)  # fixed sample postures: the same verdict every run
    worst = 0.0
    for q in rng.uniform(ours.q_low, ours.q_high, size=(50, len(ours.joints))):
        d = kinematics.forward(q, driver_arm).p_flange - kinematics.forward(q, ours).p_flange
        worst = max(worst, float(np.linalg.norm(d)))
    if worst > DESCRIPTION_TOLERANCE_M:
        return Check(name, FAIL, f"the driver's {driver_arm.name} is not the calibration's arm ({src}): the flange "
                     f"lands up to {worst * 1e3:.0f} mm apart", use_topic)  # fmt: skip
    return Check(
        name,
        PASS,
        f"the driver's {driver_arm.name} matches the calibration's arm ({src}) to {worst * 1e3:.3f} mm",
    )
