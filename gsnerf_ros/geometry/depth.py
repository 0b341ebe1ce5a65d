"""Depth maps moved between cameras (pure PyTorch).

:func:`register_depth` is the depth registration of ``depth_image_proc/register``: every valid
pixel of a depth camera is lifted with its intrinsics, moved into another camera and projected
there; where several land on one pixel the nearest wins (z-buffer). Pixels that no depth pixel
reaches stay 0 (invalid), as with ``depth_image_proc`` without hole filling.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gsnerf_ros.geometry.camera import project_points, transform_points, unproject_depth

__all__ = ["register_depth"]


def register_depth(depth: Tensor, K_src: Tensor, dst_from_src: Tensor, K_dst: Tensor,
                   height: int, width: int) -> Tensor:
    """The z-depth a destination camera sees, from a source camera's depth map.

    Shape: ``depth`` (H_s, W_s) m (0 or non-finite = invalid), ``K_src`` (3, 3) px,
    ``dst_from_src`` (4, 4) (a source-frame point -> destination frame, metres), ``K_dst``
    (3, 3) px -> (``height``, ``width``) m, 0 where no source pixel lands. Each source pixel
    goes to the destination pixel its point projects into (nearest pixel centre); the smallest
    depth of those that land on a pixel is kept.
    """
    if depth.dim() != 2:
        raise ValueError(f"depth must be (H, W), got shape {tuple(depth.shape)}")
    d = depth.double()
    pts = unproject_depth(d, K_src.double()).reshape(-1, 3)
    valid = torch.isfinite(d).reshape(-1) & (d.reshape(-1) > 0)
    pts = transform_points(dst_from_src.double(), pts[valid])
    uv, z = project_points(pts, K_dst.double())
    u, v = torch.round(uv[:, 0]), torch.round(uv[:, 1])
    inside = (z > 0) & (u >= 0) & (u <= width - 1) & (v >= 0) & (v <= height - 1)
    idx = (v[inside] * width + u[inside]).long()
    out = torch.full((height * width,), float("inf"), dtype=torch.float64, device=depth.device)
    out.scatter_reduce_(0, idx, z[inside], reduce="amin", include_self=True)
    out[~torch.isfinite(out)] = 0.0
    return out.reshape(height, width).to(depth.dtype)
