"""Pure (ROS-free) mappings between the real KUKA iiwa and the policy's simulator frame:
kinematics, calibration and frames, real2sim observations and safe sim2real commands."""
