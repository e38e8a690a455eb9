"""ament_python package of the LEGION runtime nodes. `ros2 launch legion_ros sim.launch.yaml` finds the
launch files installed here (the launch/ folder of the repository, linked into the package)."""

from glob import glob

from setuptools import setup

PKG = "legion_ros"
NODES = ["real2sim_node", "policy_node", "sim2real_node", "twin_node", "task_sequencer_node"]

setup(
    name=PKG,
    version="0.1.0",
    packages=[PKG],
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PKG]),
        ("share/" + PKG, ["package.xml"]),
        ("share/" + PKG + "/launch", glob("launch/*.launch.yaml")),
        ("share/" + PKG + "/config", glob("launch/config/*.yaml")),
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
