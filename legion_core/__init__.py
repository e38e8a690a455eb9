"""LEGION training stack: task world (Meta-World v3 on Sawyer and KUKA iiwa), language embeddings,
the SAC + VAE + DPMM agent, the lifelong trainer, metrics and frozen policy bundles. Imports without ROS."""

__version__ = "0.1.0"
