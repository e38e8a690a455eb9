"""LEGION runtime ROS 2 nodes: thin wrappers around legion_core and sim2real."""
