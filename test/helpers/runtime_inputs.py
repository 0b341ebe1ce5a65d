"""Small inputs for the node's ROS-free runtime tests: a camera pose along x turned about the
camera's y axis, a random image and the intrinsics both are used with."""

from __future__ import annotations

import math

import torch

from gsnerf_ros.geometry import make_pose

__all__ = ["K", "pose_x", "random_image"]

K = torch.tensor([[40.0, 0, 15.5], [0, 40.0, 11.5], [0, 0, 1]])
"""[3, 3] intrinsics of a 32x24 image."""


def pose_x(x: float, yaw_deg: float = 0.0) -> torch.Tensor:
    """[4, 4] camera-to-world pose at (x, 0, 0) m turned by ``yaw_deg`` about its y axis."""
    a = math.radians(yaw_deg)
    R = torch.tensor([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    return make_pose(R, torch.tensor([x, 0.0, 0.0]))


def random_image() -> torch.Tensor:
    """[3, 24, 32] RGB in [0, 1)."""
    return torch.rand(3, 24, 32)
