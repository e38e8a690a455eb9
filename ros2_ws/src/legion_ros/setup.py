"""ament_python package of the LEGION runtime nodes (thin ROS 2 wrappers over legion_core / sim2real); the
launch files and parameters are in legion_bringup."""

from setuptools import setup

PKG = "legion_ros"
NODES = [
    "real2sim_node",
    "policy_node",
    "sim2real_node",
    "twin_node",
    "task_sequencer_node",
    "perception_node",
    "console_node",
]

setup(
    name=PKG,
    version="0.1.0",
    packages=[PKG],
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PKG]),
        ("share/" + PKG, ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="LEGION runtime",
    maintainer_email="legion@example.org",
    description="LEGION runtime nodes",
    license="MIT",
    entry_points={
        "console_scripts": [f"{n} = {PKG}.{n}:main" for n in NODES] + [f"composed = {PKG}.composed:main"]
    },
)
