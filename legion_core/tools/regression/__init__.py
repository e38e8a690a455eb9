"""Regression checks on recorded sessions: `legion replay BAG --check SCENARIO --bundle DIR` and
`legion replay BAG --closed-loop --bundle DIR`.

What can be identical and what cannot
-------------------------------------
The policy is deterministic (z = mean), but a live runtime is not a function of the bag alone: real2sim
builds an observation on its own timer tick from the latest joint state and detection it has *received by
then*. Replaying the same sensor messages into a fresh runtime shifts those ticks against the messages (DDS
delivery, the executor's order of the /clock and sensor callbacks, CPU load), so an observation can be
built from the joint state one 5 ms sample later or earlier than in the recording, its stamp can differ, and
sim2real's settle gate can take the next action one tick earlier or later. Exact equality of a live replay
would only be luck. So the check is split by what is deterministic:

1. `policy_offline` (no ROS): the recorded Observations are the policy's exact inputs. Each valid one is
   fed to the pure `PolicyRunner` with the given bundle; every recorded PolicyAction must equal the offline
   action of an observation with the same stamp (PolicyAction.header.stamp is the observation's stamp) and
   skill: bit-identical where this machine's numeric signature (legion_core/tools/numeric_signature.py: BLAS
   kernel, numpy SIMD targets) equals the one the bag records, within the float32 tolerance of
   `float32_action_atol` otherwise (another kernel sums in another order: last-bit differences). The
   judgement reports the mode it applied and why (docs/decisions/portable-regression-check.md). Same bag +
   same bundle on the same kernels -> identical actions, every time; a different bundle or any change in
   inference fails at the first policy step it touches.
2. Live, open loop with tolerances: the sensor topics are replayed with /clock (the fresh runtime runs on
   sim time = bag time, so recorded stamps are fresh and its timers run on bag time) while its outputs are
   recorded; then per recorded step, matched by the observation stamp that Observation, PolicyAction and
   CommandReport all carry: `observations` (values), `actions`, `commands` (tool steps, gripper; matched
   within one policy step of the recording, as the settle gate may take the next action) within the
   scenario's tolerances and with a minimum coverage of matched steps; `same_inputs_same_actions` (as
   `policy_offline`: bit-exact only between bags of the same numeric signature); `skill_switches` (same
   skills in the same order, at the same bag time within a tolerance); `safety_events` (no status of level
   >= HOLD that the recording does not have at about the same time; another reason inside a hold the
   recording was in is reported, not failed); `replay_timing` (publish lateness of the replay; over its
   limit it fails where another live judgement failed: that failure may be load).

Each judgement is one JSON line; a summary line follows with the first diverging step (the recorded
policy step, by index and observation stamp, where the earliest failure happened).

Closed loop: the twin's scene comes from the recorded detections (camera -> sim through the calibration).
The twin only has Meta-World's 50 seeded placements per task (it cannot put objects at arbitrary poses),
so the closest placement is used and its distance reported; the runtime then runs on the twin and the
simulated outcome (success, time to success) is compared with the recorded one (/twin/success, if the bag
has it: a real-robot bag has no recorded success to compare).

One module per job, each importing only those above it:

- scenario.py     the judgements, tolerances and replay settings of a scenario (`load_scenario`)
- session.py      a bag decoded into a Session (`read_session`)
- judge.py        the judgements: `judge_policy_offline`, `compare_live`, the float32 tolerance
- processes.py    the child processes: the fresh runtime and the recorder
- live.py         the check: `check` (offline + live replay through a fresh runtime, `live_replay`)
- closed_loop.py  the closed loop in the digital twin (`closed_loop`)
"""
