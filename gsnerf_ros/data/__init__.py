"""Scenes and datasets: procedural rooms, Replica, ScanNet and ROS 2 bag readers, view selection
and the training :class:`~gsnerf_ros.data.dataset.GSNeRFDataset`.

Everything here is plain PyTorch / NumPy / OpenCV; bags are read with ``rosbags`` (no ROS needed).
Submodules are imported lazily by their users, so ``import gsnerf_ros.data`` stays cheap.
"""

from gsnerf_ros.data.classes import IGNORE_INDEX
from gsnerf_ros.data.scene import Frame, InMemoryScene, Scene

__all__ = ["IGNORE_INDEX", "Frame", "Scene", "InMemoryScene"]
