#!/usr/bin/env bash
# Build the ROS 2 workspace (ros2_ws) with colcon against the PyPI ROS 2 wheels in .venv.
# On a robot PC with a full ROS 2 install, use the distribution's own colcon instead:
#   source /opt/ros/$ROS_DISTRO/setup.bash && cd ros2_ws && colcon build --symlink-install
# Idempotent: skips the build when no file under ros2_ws/src changed since the last one.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${VENV:-$ROOT/.venv}
export VIRTUAL_ENV=$VENV
export PATH=$VENV/bin:$PATH
export AMENT_PREFIX_PATH=$VENV
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
STAMP=$ROOT/ros2_ws/install/.legion-src-hash
HASH=$(cd ros2_ws && find -L src emulated -type f -not -name '*.pyc' -not -path '*/__pycache__/*' | sort | xargs sha256sum | sha256sum | cut -c1-16)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$HASH" ] && [ "${1:-}" != "--force" ]; then
  echo "[build_ws] ros2_ws is up to date"
  exit 0
fi
# The one documented fix (docs/environment.md#building-the-workspace): the wheels' exported CMake files point at the
# build image's Python include dirs; rewrite them to this venv's.
PYINC=$(python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
NPINC=$(python -c 'import numpy; print(numpy.get_include())')
for f in $(grep -rl '/opt/python/cp311-cp311' "$VENV"/share/*/cmake/ 2>/dev/null || true); do
  sed -i -e "s#/opt/python/cp311-cp311/include/python3.11#$PYINC#g" \
         -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$NPINC#g" "$f"
done
cd ros2_ws
echo "[build_ws] colcon build (legion_msgs + the emulated upstream interfaces: rosidl generation, ~60 s; legion_ros: python)"
# The emulated upstream interfaces (ros2_ws/emulated/README.md) are named by path: their folder carries a
# COLCON_IGNORE so that a robot PC's plain `colcon build` never builds them over the upstream packages.
colcon --log-base log build --merge-install --event-handlers console_direct- status- \
  --paths src/* emulated/controller_manager_msgs emulated/lbr_fri_idl emulated/tf2_msgs emulated/vision_msgs \
  --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$VENV/bin/python" 2>&1 | tail -n 5
echo "$HASH" > "$STAMP"
echo "[build_ws] done: source ros2_ws/install/setup.bash (or use \`legion launch\`, which does it for you)"
