"""Analytic scenes for geometry tests: pinhole intrinsics, poses and a textured plane with its
exact z-depth."""

from __future__ import annotations

import torch

from gsnerf_ros.geometry import camera_rays, make_pose, pixel_grid, world_to_pixels

__all__ = ["intrinsics", "translation", "texture", "plane_view"]


def intrinsics(f: float, H: int, W: int) -> torch.Tensor:
    """[3, 3] pinhole with focal ``f`` px and the principal point at the image centre."""
    return torch.tensor([[f, 0.0, (W - 1) / 2], [0.0, f, (H - 1) / 2], [0.0, 0.0, 1.0]])


def translation(x: float, y: float, z: float) -> torch.Tensor:
    """[4, 4] camera-to-world pose at (x, y, z) m with the world's axes."""
    return make_pose(torch.eye(3), torch.tensor([x, y, z]))


def texture(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """A smooth, non-periodic-looking texture on the plane. -> [3, ...]."""
    return torch.stack([0.5 + 0.5 * torch.sin(7.0 * X + 3.0 * Y),
                        0.5 + 0.5 * torch.cos(5.0 * Y - 2.0 * X * Y),
                        0.5 + 0.5 * torch.sin(11.0 * X * X + 4.0 * Y)])


def plane_view(K: torch.Tensor, c2w: torch.Tensor, H: int, W: int, z0: float
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Image [3,H,W] and z-depth [H,W] of the world plane Z = z0 seen by a camera."""
    uv = pixel_grid(H, W).reshape(-1, 2)
    o, d = camera_rays(uv, K, c2w)
    t = (z0 - o[:, 2]) / d[:, 2]
    X = o + t[:, None] * d
    img = texture(X[:, 0], X[:, 1]).reshape(3, H, W)
    z_cam = world_to_pixels(X[None], K[None], c2w[None])[1][0]
    return img, z_cam.reshape(H, W)
