"""Gathers what sim2real.preflight judges, on a live graph: the driver's joint states (rate, age, names), the
subscribers of the command topic, the controller manager's controllers and update rate, and the lbr stack's
robot state. Shared by sim2real_node (continuous pre-flight) and `legion doctor` (one report).

The controller manager is asked with controller_manager_msgs/ListControllers and its `update_rate` read
through the standard parameter service; the robot state comes from lbr_fri_idl/LBRState. Both message
packages are optional: on a robot PC they are the upstream ones; here the emulated copies in ros2_ws/emulated
(built from the upstream definitions, docs/robot-integration.md). Absent ones skip their checks. Only the
fields Humble and Jazzy share are read (ControllerState.name/state, ListControllers' empty request).
"""

from __future__ import annotations

import collections
import threading

from legion_core.contracts.drivers import UPDATE_RATE_PARAMETER, DriverProfile
from sim2real.preflight import DriverFacts, PreflightConfig, PreflightResult, evaluate


class DriverMonitor:
    """Facts about one driver profile for `node` (an rclpy Node). The owner feeds joint states
    (`on_joint_state`, from any thread) or lets the monitor subscribe (`subscribe_joint_states=True`),
    and calls `poll(now)` periodically from its executor; `result(now)` judges the facts."""

    def __init__(
        self,
        node,
        profile: DriverProfile,
        expected_joint_names: tuple[str, ...],
        config: PreflightConfig | None = None,
        subscribe_joint_states: bool = False,
        joint_state_qos=None,
    ) -> None:
        self.node, self.profile, self.config = node, profile, config or PreflightConfig()
        self.expected_joint_names = tuple(expected_joint_names)
        self._lock = threading.Lock()
        self._arrivals: collections.deque[float] = collections.deque(maxlen=4096)
        self._first_arrival: float | None = None
        self._names: tuple[str, ...] | None = None
        self._names_seen = None
        self.last_stamp_offset_s: float | None = None  # local clock - the joint state's stamp [s]
        self._controllers: dict[str, str] | None = None
        self._controllers_note = "controller manager not asked yet"
        self._update_rate: float | None = None
        self._pending: dict[str, float] = {}  # request kind -> when it was sent [s]
        self._answered: set[str] = set()
        self._timed_out: set[str] = set()
        self._last_poll = -1e18
        self._session: int | None = None
        self._safety: int | None = None
        self._robot_state_note = ""
        self._started = node.get_clock().now().nanoseconds * 1e-9
        self._list_client = self._param_client = None
        self._robot_state = None
        if profile.controller_manager:
            try:
                from controller_manager_msgs.srv import ListControllers
            except ImportError:
                self._controllers_note = "controller_manager_msgs is not installed on this PC"
            else:
                from rcl_interfaces.srv import GetParameters

                self._list_client = node.create_client(ListControllers, profile.list_controllers_service)
                self._param_client = node.create_client(
                    GetParameters, profile.controller_manager_service("get_parameters")
                )
        if profile.robot_state_topic:
            try:
                from lbr_fri_idl.msg import LBRState
            except ImportError:
                self._robot_state_note = "lbr_fri_idl is not installed on this PC"
            else:
                from legion_core.ros.common import SENSOR_QOS
                from legion_core.ros.control import CONTROL_LOOP

                # Sampled at the check's rate, not taken at the stack's update rate (up to 500 Hz).
                self._robot_state = CONTROL_LOOP.sampled(LBRState, profile.robot_state_topic, SENSOR_QOS)
        if subscribe_joint_states:
            from sensor_msgs.msg import JointState

            from legion_core.ros.common import SENSOR_QOS, stamp_to_s

            def on_js(msg) -> None:
                now = self._now()
                self.last_stamp_offset_s = now - stamp_to_s(msg.header.stamp)
                self.on_joint_state(tuple(msg.name), now)

            node.create_subscription(
                JointState, profile.joint_states_topic, on_js, joint_state_qos or SENSOR_QOS
            )

    def _now(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    # -- inputs ----------------------------------------------------------------------------------------
    def on_joint_state(self, names: tuple[str, ...], now: float) -> None:
        """A joint state arrived at `now` [s] (any thread: the control thread feeds it)."""
        with self._lock:
            self._arrivals.append(now)
            if self._first_arrival is None:
                self._first_arrival = now
            # The message's own name list, compared as it comes (7 strings): a tuple is made only when the
            # names change, not at every joint state on the control path.
            if names != self._names_seen:
                self._names_seen, self._names = names, tuple(names)

    def poll(self, now: float) -> None:
        """Sample the robot state; ask the controller manager again when due; time out requests that got
        no answer."""
        if self._robot_state is not None:
            msg = self._robot_state.latest()
            if msg is not None:
                self._session, self._safety = int(msg.session_state), int(msg.safety_state)
        for kind, sent in list(self._pending.items()):
            if now - sent > self.config.answer_timeout_s:
                del self._pending[kind]
                self._timed_out.add(kind)
                if kind == "controllers":
                    self._controllers = None
                    self._controllers_note = f"no answer from {self.profile.list_controllers_service}"
        if self._list_client is None or now - self._last_poll < self.config.controller_poll_period_s:
            return
        self._last_poll = now
        if "controllers" not in self._pending:
            if self._list_client.service_is_ready():
                from controller_manager_msgs.srv import ListControllers

                self._pending["controllers"] = now
                self._list_client.call_async(ListControllers.Request()).add_done_callback(
                    self._on_controllers
                )
            else:
                self._controllers = None
                self._controllers_note = f"{self.profile.list_controllers_service} is not offered"
                if now - self._started > self.config.answer_timeout_s:
                    self._timed_out.add("controllers")
        if "update_rate" not in self._pending and self._param_client.service_is_ready():
            from rcl_interfaces.srv import GetParameters

            self._pending["update_rate"] = now
            req = GetParameters.Request(names=[UPDATE_RATE_PARAMETER])
            self._param_client.call_async(req).add_done_callback(self._on_update_rate)

    def awaiting_answers(self) -> bool:
        """Whether the controller manager this profile expects has not answered yet (its service not yet
        discovered, or the call in flight): `legion doctor` waits for it within its discovery grace instead
        of skipping the controller checks of a driver that is still being discovered."""
        return self._list_client is not None and "controllers" not in self._answered

    def _on_controllers(self, future) -> None:
        self._pending.pop("controllers", None)
        self._answered.add("controllers")
        try:
            resp = future.result()
        except Exception as e:  # noqa: BLE001 - a broken service is a skipped check, named
            self._controllers, self._controllers_note = None, f"list_controllers failed: {e}"
            return
        self._controllers = {str(c.name): str(c.state) for c in resp.controller}

    def _on_update_rate(self, future) -> None:
        self._pending.pop("update_rate", None)
        self._answered.add("update_rate")
        try:
            values = future.result().values
        except Exception:  # noqa: BLE001 - unreadable: the check is skipped
            return
        if values:
            v = values[0]
            # ros2_control declares update_rate as an integer; accept a double from other managers.
            rate = v.integer_value if v.type == 2 else v.double_value if v.type == 3 else None
            self._update_rate = float(rate) if rate else None

    # -- outputs ---------------------------------------------------------------------------------------
    def facts(self, now: float) -> DriverFacts:
        cfg = self.config
        with self._lock:
            arrivals = list(self._arrivals)
            first, names = self._first_arrival, self._names
        age = now - arrivals[-1] if arrivals else None
        rate = None
        if first is not None and now - first >= cfg.rate_window_s:
            rate = sum(1 for t in arrivals if t > now - cfg.rate_window_s) / cfg.rate_window_s
        subs = self.node.count_subscribers(self.profile.command_topic)
        return DriverFacts(
            now_s=now, joint_state_names=names, joint_state_age_s=age, joint_state_rate_hz=rate,
            command_subscribers=subs, controllers=self._controllers, controllers_note=self._controllers_note,
            update_rate_hz=self._update_rate, session_state=self._session, safety_state=self._safety,
            robot_state_note=self._robot_state_note,
        )  # fmt: skip

    def first_round_done(self, now: float) -> bool:
        """True once every interface this profile has was heard from or given up on: before it, the
        runtime does not command (an answer that would refuse may still be on its way)."""
        if self._names is None:
            return False
        if self._list_client is not None and not ({"controllers"} & (self._answered | self._timed_out)):
            return False
        waiting_for_state = (
            self.profile.robot_state_topic
            and not self._robot_state_note
            and self._session is None
            and now - self._started < self.config.answer_timeout_s
        )
        return not waiting_for_state

    def result(self, now: float) -> PreflightResult:
        return evaluate(self.profile, self.expected_joint_names, self.facts(now), self.config)
