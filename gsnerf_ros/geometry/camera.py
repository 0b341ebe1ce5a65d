"""Pinhole camera math, written once for the model, the data readers and the node.

Conventions:
- OpenCV / ROS optical frame: x right, y down, z forward.
- Pixel centres sit at integer coordinates: pixel (u=0, v=0) is centred at (0, 0).
- ``K`` is 3x3 in pixels for the image size it belongs to; ``c2w`` is a 4x4 camera-to-world
  transform in metres; depth is z-depth (along the optical axis) in metres, 0 = invalid.

Every function is batched over arbitrary leading dimensions ``*B`` and differentiable.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "invert_pose",
    "transform_points",
    "pixel_grid",
    "unproject_pixels",
    "unproject_depth",
    "project_points",
    "world_to_pixels",
    "camera_rays",
    "floor_depth",
    "bound_by_floor",
    "scale_intrinsics",
    "level_intrinsics",
    "pixels_to_grid",
]


def invert_pose(T: Tensor) -> Tensor:
    """Invert rigid transforms.

    Shape: ``T`` (*B, 4, 4) -> (*B, 4, 4). Uses R^T rather than a general inverse.
    """
    R = T[..., :3, :3]
    t = T[..., :3, 3:]
    Rt = R.transpose(-1, -2)
    out = torch.zeros_like(T)
    out[..., :3, :3] = Rt
    out[..., :3, 3:] = -Rt @ t
    out[..., 3, 3] = 1.0
    return out


def transform_points(T: Tensor, points: Tensor) -> Tensor:
    """Apply a 4x4 transform to points.

    Shape: ``T`` (*B, 4, 4), ``points`` (*B, N, 3) -> (*B, N, 3).
    """
    return points @ T[..., :3, :3].transpose(-1, -2) + T[..., None, :3, 3]


def pixel_grid(height: int, width: int, device: torch.device | str | None = None,
               dtype: torch.dtype = torch.float32) -> Tensor:
    """Pixel-centre coordinates of an image.

    Shape: (H, W, 2) with ``[..., 0] = u`` (column) and ``[..., 1] = v`` (row), integers as floats.
    """
    v, u = torch.meshgrid(torch.arange(height, device=device, dtype=dtype),
                          torch.arange(width, device=device, dtype=dtype), indexing="ij")
    return torch.stack([u, v], dim=-1)


def unproject_pixels(uv: Tensor, depth: Tensor, K: Tensor) -> Tensor:
    """Lift pixels with z-depth to camera-frame points.

    Shape: ``uv`` (*B, N, 2) px, ``depth`` (*B, N) m, ``K`` (*B, 3, 3) -> (*B, N, 3) m.
    """
    fx = K[..., 0, 0, None]
    fy = K[..., 1, 1, None]
    cx = K[..., 0, 2, None]
    cy = K[..., 1, 2, None]
    x = (uv[..., 0] - cx) / fx * depth
    y = (uv[..., 1] - cy) / fy * depth
    return torch.stack([x, y, depth], dim=-1)


def unproject_depth(depth: Tensor, K: Tensor, c2w: Tensor | None = None) -> Tensor:
    """Back-project a z-depth map to 3D points (world frame when ``c2w`` is given).

    Shape: ``depth`` (*B, H, W) m, ``K`` (*B, 3, 3), ``c2w`` (*B, 4, 4) -> (*B, H, W, 3) m.
    """
    H, W = depth.shape[-2:]
    uv = pixel_grid(H, W, depth.device, depth.dtype).reshape(-1, 2)
    uv = uv.expand(*depth.shape[:-2], H * W, 2)
    pts = unproject_pixels(uv, depth.reshape(*depth.shape[:-2], H * W), K)
    if c2w is not None:
        pts = transform_points(c2w, pts)
    return pts.reshape(*depth.shape, 3)


def project_points(points_cam: Tensor, K: Tensor, eps: float = 1e-6) -> tuple[Tensor, Tensor]:
    """Project camera-frame points to pixels.

    Shape: ``points_cam`` (*B, N, 3) m, ``K`` (*B, 3, 3) -> ``uv`` (*B, N, 2) px, ``z`` (*B, N) m.
    Points with ``z <= eps`` get their divisor clamped to ``eps``; test ``z > 0`` for validity.
    """
    z = points_cam[..., 2]
    zc = z.clamp(min=eps)
    u = K[..., 0, 0, None] * points_cam[..., 0] / zc + K[..., 0, 2, None]
    v = K[..., 1, 1, None] * points_cam[..., 1] / zc + K[..., 1, 2, None]
    return torch.stack([u, v], dim=-1), z


def world_to_pixels(points_world: Tensor, K: Tensor, c2w: Tensor) -> tuple[Tensor, Tensor]:
    """Project world points into a camera given its camera-to-world pose.

    Shape: ``points_world`` (*B, N, 3), ``K`` (*B, 3, 3), ``c2w`` (*B, 4, 4)
    -> ``uv`` (*B, N, 2) px, ``z`` (*B, N) m (z-depth in that camera).
    """
    return project_points(transform_points(invert_pose(c2w), points_world), K)


def camera_rays(uv: Tensor, K: Tensor, c2w: Tensor) -> tuple[Tensor, Tensor]:
    """Rays through pixels, scaled so the ray parameter ``t`` equals camera z-depth.

    Shape: ``uv`` (*B, N, 2), ``K`` (*B, 3, 3), ``c2w`` (*B, 4, 4)
    -> ``origins`` (*B, N, 3), ``directions`` (*B, N, 3) (not unit length: z-component 1 in camera).
    A point at depth ``t`` is ``origins + t * directions``.
    """
    ones = torch.ones_like(uv[..., 0])
    d_cam = unproject_pixels(uv, ones, K)
    d_world = d_cam @ c2w[..., :3, :3].transpose(-1, -2)
    origins = c2w[..., None, :3, 3].expand_as(d_world)
    return origins, d_world


def floor_depth(K: Tensor, c2w: Tensor, height: int, width: int, floor_z: float) -> Tensor:
    """Z-depth at which each pixel's ray meets the floor, the horizontal plane ``z = floor_z``
    of a z-up world frame (REP 103), in front of a camera above it; ``inf`` where the ray does
    not go down or the camera is not above the floor. No surface lies below the floor, so this
    bounds the depth of every pixel.

    Shape: ``K`` (*B, 3, 3) for ``height`` x ``width``, ``c2w`` (*B, 4, 4) -> (*B, H, W) m.
    """
    uv = pixel_grid(height, width, K.device, K.dtype).reshape(-1, 2)
    uv = uv.expand(*K.shape[:-2], height * width, 2)
    origins, dirs = camera_rays(uv, K, c2w)
    dz, above = dirs[..., 2], origins[..., 2] - floor_z
    down = (dz < -1e-9) & (above > 0)
    t = above / (-dz).clamp(min=1e-9)
    t = torch.where(down, t, torch.full_like(t, float("inf")))
    return t.reshape(*K.shape[:-2], height, width)


def bound_by_floor(depth: Tensor, K: Tensor, c2w: Tensor, floor_z: float) -> Tensor:
    """``depth`` bounded by :func:`floor_depth` at its own size: the rays in fp32 on its device,
    the result in its dtype.

    Shape: ``depth`` (*B, H, W) m, ``K`` (*B, 3, 3) for H x W, ``c2w`` (*B, 4, 4) -> (*B, H, W).
    """
    H, W = depth.shape[-2:]
    bound = floor_depth(K.to(depth.device).float(), c2w.to(depth.device).float(), int(H), int(W),
                        floor_z)
    return torch.minimum(depth, bound.to(depth.dtype))


def scale_intrinsics(K: Tensor, scale_x: float, scale_y: float) -> Tensor:
    """Intrinsics for an image resized by ``(scale_x, scale_y)`` (new size / old size).

    With integer pixel centres, ``u' = (u + 0.5) * s - 0.5``: focal lengths scale by ``s`` and
    the principal point by the same map. Shape: (*B, 3, 3) -> (*B, 3, 3).
    """
    K = K.clone()
    K[..., 0, 0] = K[..., 0, 0] * scale_x
    K[..., 0, 1] = K[..., 0, 1] * scale_x
    K[..., 0, 2] = (K[..., 0, 2] + 0.5) * scale_x - 0.5
    K[..., 1, 1] = K[..., 1, 1] * scale_y
    K[..., 1, 2] = (K[..., 1, 2] + 0.5) * scale_y - 0.5
    return K


def level_intrinsics(K: Tensor, level: int) -> Tensor:
    """Intrinsics of pyramid level ``level`` of a stride-2 network (or of ``x[..., ::2**l, ::2**l]``).

    A 3x3 stride-2 convolution with padding 1 centres its output pixel ``j`` on input pixel
    ``2j``, so level ``l`` pixel ``j`` sits at full-resolution pixel ``2^l j``: ``u_l = u / 2^l``.
    Focal lengths and the principal point both scale by ``2^-l`` (no half-pixel term, unlike
    :func:`scale_intrinsics`, which is for resized images). Shape: (*B, 3, 3) -> (*B, 3, 3).
    """
    if level < 0:
        raise ValueError(f"pyramid level must be >= 0, got {level}")
    s = 1.0 / 2 ** level
    K = K.clone()
    K[..., :2, :] = K[..., :2, :] * s
    return K


def pixels_to_grid(uv: Tensor, height: int, width: int) -> Tensor:
    """Pixel coordinates to ``grid_sample`` coordinates in [-1, 1] for ``align_corners=True``.

    Shape: (*B, 2) -> (*B, 2). Pixel 0 maps to -1 and pixel ``W-1`` to +1.
    """
    scale = uv.new_tensor([2.0 / max(width - 1, 1), 2.0 / max(height - 1, 1)])
    return uv * scale - 1.0
