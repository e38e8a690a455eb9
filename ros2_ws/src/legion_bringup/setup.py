"""ament_python package holding only data: `ros2 launch legion_bringup sim.launch.yaml` finds the launch files
and `$(find-pkg-share legion_bringup)/config/runtime.yaml` the parameters. Layout like lbr_fri_ros2_stack's
lbr_bringup: launch/ and config/ inside the package, installed by colcon (the repository's top-level
`launch` is a link into this package, for `legion launch launch/sim.launch.yaml`)."""

from glob import glob

from setuptools import setup

PKG = "legion_bringup"

setup(
    name=PKG,
    version="0.1.0",
    packages=[],
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PKG]),
        ("share/" + PKG, ["package.xml"]),
        ("share/" + PKG + "/launch", glob("launch/*.launch.yaml")),
        ("share/" + PKG + "/config", glob("config/*.yaml") + glob("config/*.xml")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="LEGION runtime",
    maintainer_email="legion@example.org",
    description="LEGION runtime bring-up: launch files and parameters",
    license="MIT",
)
