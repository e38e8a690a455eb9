"""The operator console (docs/console.md): a web page served beside the runtime to command, watch and stop
the robot. Pure parts here (state, access, the web app); the ROS side is legion_ros.console_node."""
