"""`legion launch`: run ROS 2 YAML launch files (`*.launch.yaml`) without `launch`/`launch_ros`.

`ros2 launch` is not installable from any registry here, so we keep our launch files in ROS 2's YAML launch
format (a robot PC with a full ROS 2 install runs them with `ros2 launch`) and run the very same files with
this stdlib-only runner. It implements a strict subset of the format with ros2 launch's semantics (checked
against ros2/launch and ros2/launch_ros sources); everything outside it is a LaunchError that names the
file, the entry and the key, and says how to fix it. One module per job, each importing only those above:

- errors.py         LaunchError
- environment.py    the children's environment (`runtime_env`) and the ament index lookups
- substitutions.py  `$(...)`: parsing, command-line splitting, evaluating one substitution
- model.py          the action tree of a launch file and the resolved LaunchDescription / ProcessSpec
- parser.py         YAML launch file -> action tree (the supported actions and keys)
- description.py    action tree -> LaunchDescription (`parse_launch_file`: conditions, scoping, includes)
- processes.py      LaunchRunner: start, respawn and shut down the processes
- runner.py         the `legion launch` command line

Portability to Humble's ros2 launch: `on_exit`, `respawn_max_retries` and the `push_ros_namespace`
spelling are newer than Humble (use `push-ros-namespace`); write `respawn: 'true'` (quoted) and leave the
key out for false: Humble takes any non-empty string as true, so switch a respawning node with `if:`
rather than `respawn: $(var x)`. Relative `include`/`param from:` paths resolve against the launch file's
directory here but against the working directory in ros2 launch (a warning says so): use `$(dirname)/...`.

NETWORK RULE: every child runs with ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST (see
`environment.runtime_env`).
"""
