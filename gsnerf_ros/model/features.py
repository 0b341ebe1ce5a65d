"""Project 3D samples into the source views and gather their features (paper Eq. 9, 13).

For P points and V views: pixel positions and z in each view, the in-image mask, the
occlusion mask (the point lies behind the view's estimated surface), bilinear samples of 2D maps
(features, colour, semantic features on a k x k neighbourhood), trilinear samples of the
cost-volume features at every level, and view-direction features.
All outputs are ``[P, V, ...]``. Pixel positions are always full-resolution ones; each map is
read at its own pyramid level: the features and volumes at the encoding's ``geometry_level``
(plus the cascade level), the semantic maps at ``semantic_level``, the finest depth at
``depth_map_level``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gsnerf_ros.geometry import pixels_to_grid, world_to_pixels
from gsnerf_ros.model.cost_volume import PlaneSpacing
from gsnerf_ros.model.encoding import SourceEncoding

__all__ = ["project_to_views", "sample_maps", "sample_volumes", "occlusion_mask",
           "direction_features", "semantic_neighbourhood"]


def project_to_views(points: Tensor, enc: SourceEncoding) -> tuple[Tensor, Tensor, Tensor]:
    """``points`` [P, 3] world m -> ``uv`` [V, P, 2] px (full resolution), ``z`` [V, P] m,
    ``in_image`` [P, V] bool (in front of the camera and inside the image)."""
    V = len(enc)
    pts = points.float()[None].expand(V, -1, -1)
    uv, z = world_to_pixels(pts, enc.K.float(), enc.c2w.float())
    H, W = enc.height, enc.width
    inside = ((z > 1e-6) & (uv[..., 0] >= 0) & (uv[..., 0] <= W - 1)
              & (uv[..., 1] >= 0) & (uv[..., 1] <= H - 1))
    return uv, z, inside.transpose(0, 1)


def _level_grid(uv: Tensor, level: int, h: int, w: int) -> Tensor:
    """Full-resolution pixels -> grid of pyramid level ``level`` (pixel j at 2^l j)."""
    uv_l = uv / 2 ** level if level else uv
    return pixels_to_grid(uv_l, h, w).clamp(-2.0, 2.0)


def sample_maps(maps: Tensor, uv: Tensor, level: int = 0) -> Tensor:
    """Bilinear samples of per-view maps. ``maps`` [V, C, h, w] (pyramid ``level`` of the
    full-resolution ``uv`` [V, P, 2]) -> [P, V, C]. Border padding outside the image."""
    h, w = maps.shape[-2:]
    grid = _level_grid(uv, level, h, w)[:, None].to(maps.dtype)           # [V, 1, P, 2]
    out = F.grid_sample(maps, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out[:, :, 0].permute(2, 0, 1)


def sample_volumes(enc: SourceEncoding, uv: Tensor, z: Tensor,
                   spacing: PlaneSpacing = PlaneSpacing()) -> Tensor:
    """Trilinear samples of the cost-volume features of all levels, concatenated.

    ``uv`` [V, P, 2], ``z`` [V, P] m -> [P, V, levels * Fv]. Depth is normalised per pixel
    between the first and last plane of each level in the plane coordinate of ``spacing``
    (border padding outside the band).
    """
    out = []
    q = spacing.coord(z.clamp(min=1e-6))
    g0 = enc.geometry_level
    for lvl, vol in enumerate(enc.volumes):
        V, Fv, D, h, w = vol.shape
        g = _level_grid(uv, g0 + lvl, h, w)                                   # [V, P, 2]
        start = sample_maps(enc.plane_start[lvl][:, None], uv, g0 + lvl)[..., 0].transpose(0, 1)
        span = (D - 1) * enc.plane_step[:, lvl]
        span = torch.where(span.abs() < 1e-9, torch.full_like(span, 1e-9), span)[:, None]
        gz = (2.0 * (q - start) / span - 1.0).clamp(-2.0, 2.0)
        grid = torch.cat([g, gz[..., None]], -1)[:, None, None].to(vol.dtype)  # [V,1,1,P,3]
        s = F.grid_sample(vol, grid, mode="bilinear", padding_mode="border", align_corners=True)
        out.append(s[:, :, 0, 0].permute(2, 0, 1))
    return torch.cat(out, -1)


def occlusion_mask(enc: SourceEncoding, uv: Tensor, z: Tensor, threshold: float,
                   min_tolerance: float, spacing: PlaneSpacing = PlaneSpacing()) -> Tensor:
    """True where a point lies behind a view's estimated surface. ``uv`` [V, P, 2],
    ``z`` [V, P] -> [P, V] bool. Tolerance per view and point: max(``threshold`` x the finest
    cost-volume band in metres at the view's depth there, ``min_tolerance`` m)."""
    d_src = sample_maps(enc.depth[:, None].float(), uv, enc.depth_map_level)[..., 0]  # [P, V]
    D0 = enc.volumes[0].shape[2]
    band = ((D0 - 1) * enc.plane_step[:, 0]).abs()[None]                      # [1, V]
    tol = (threshold * spacing.band_metres(d_src, band)).clamp(min=min_tolerance)
    return z.transpose(0, 1).float() > d_src + tol


def direction_features(points: Tensor, ray_dirs: Tensor, enc: SourceEncoding) -> Tensor:
    """Target-ray vs source-ray direction (IBRNet style). ``points`` [P, 3], ``ray_dirs`` [P, 3]
    -> [P, V, 4]: unit target direction minus unit source direction (3), and their dot product."""
    r = F.normalize(ray_dirs.float(), dim=-1)[:, None]                      # [P, 1, 3]
    s = F.normalize(points.float()[:, None] - enc.c2w[None, :, :3, 3].float(), dim=-1)
    return torch.cat([r - s, (r * s).sum(-1, keepdim=True)], -1)


def semantic_neighbourhood(enc: SourceEncoding, uv: Tensor, k: int) -> Tensor:
    """Semantic features on a k x k neighbourhood (offsets of 1 px of the semantic map, at its
    own :attr:`~SourceEncoding.semantic_level` s: 2^s full-resolution pixels) around each
    projection.

    ``uv`` [V, P, 2] full-resolution px -> [P, V, k*k*Cs]."""
    g = enc.semantic_level
    if k == 1:
        return sample_maps(enc.semantic_feature, uv, g)
    r = (torch.arange(k, device=uv.device, dtype=uv.dtype) - (k - 1) / 2) * 2 ** g
    offs = torch.stack(torch.meshgrid(r, r, indexing="xy"), -1).reshape(-1, 2)   # [k*k, 2]
    V, P, _ = uv.shape
    uvk = (uv[:, :, None] + offs[None, None]).reshape(V, P * k * k, 2)
    s = sample_maps(enc.semantic_feature, uvk, g)                            # [P*k*k, V, Cs]
    return s.reshape(P, k * k, V, -1).permute(0, 2, 1, 3).reshape(P, V, -1)
