"""Reprojection baseline: novel views with no learned renderer.

Every target pixel is lifted with the estimated target depth D_T (the z-buffered reprojection
of the source depths, paper Algorithm 1), projected into each source view, and takes
- the colour: a weighted mean of the source colours of the views that see that point
  (projected z not behind the source's own depth by more than a tolerance), weights
  1 / (pose distance of the source to the target + 0.05);
- the class: a weighted vote of the sources' 2D-predicted labels at the same places.
Pixels that no source sees fall back to the views whose image they land in, ignoring the
visibility test; pixels with no depth or outside every source get black and no class (the
metrics count them as misses).

This isolates what the learned renderers add on top of the geometry and the 2D segmenter.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from gsnerf_ros.geometry import (pixels_to_grid, proximity_weights, unproject_depth,
                                 world_to_pixels)

__all__ = ["BaselineResult", "reproject_to_target"]


@dataclass
class BaselineResult:
    """Baseline rendering of one target view."""

    rgb: Tensor        # (H, W, 3) in [0, 1]
    labels: Tensor     # (H, W) int64, ``num_classes`` where no source sees the pixel
    coverage: Tensor   # (H, W) number of source views used for the pixel


@torch.no_grad()
def reproject_to_target(images: Tensor, src_labels: Tensor, src_depth: Tensor, K: Tensor,
                        c2w: Tensor, K_t: Tensor, c2w_t: Tensor, target_depth: Tensor,
                        num_classes: int, rel_tol: float = 0.03, abs_tol: float = 0.05
                        ) -> BaselineResult:
    """Warp source colours and 2D-predicted labels into the target view with its depth.

    Shape: ``images`` (V,3,H,W) in [0,1]; ``src_labels`` (V,H,W) int64 (the 2D segmenter's
    argmax); ``src_depth`` (V,H,W) m (predicted source depths, used for visibility);
    ``K`` (V,3,3); ``c2w`` (V,4,4); ``K_t`` (3,3) and ``c2w_t`` (4,4) of the target;
    ``target_depth`` (Ht,Wt) m (0 = unknown). A point is visible in view i when its z there is
    at most ``src_depth * (1 + rel_tol) + abs_tol``.
    """
    V, _, H, W = images.shape
    if src_labels.shape != (V, H, W) or src_depth.shape != (V, H, W):
        raise ValueError(f"reproject_to_target: src_labels {tuple(src_labels.shape)} and "
                         f"src_depth {tuple(src_depth.shape)} must both be {(V, H, W)}")
    Ht, Wt = target_depth.shape
    dev = images.device
    pts = unproject_depth(target_depth, K_t, c2w_t).reshape(1, -1, 3).expand(V, -1, 3)
    uv, z = world_to_pixels(pts, K, c2w)                                  # (V,N,2), (V,N)
    inside = ((uv[..., 0] >= 0) & (uv[..., 0] <= W - 1) & (uv[..., 1] >= 0)
              & (uv[..., 1] <= H - 1) & (z > 1e-6))
    inside &= (target_depth.reshape(1, -1) > 0)
    grid = pixels_to_grid(uv, H, W)[:, :, None, :].to(images.dtype)     # (V,N,1,2)
    col = F.grid_sample(images, grid, mode="bilinear", align_corners=True)[..., 0]  # (V,3,N)
    d_src = F.grid_sample(src_depth[:, None].float(), grid, mode="nearest",
                          align_corners=True)[:, 0, :, 0]                 # (V,N)
    lab = F.grid_sample(src_labels[:, None].float(), grid, mode="nearest",
                        align_corners=True)[:, 0, :, 0].round().long()    # (V,N)
    visible = inside & (d_src > 0) & (z <= d_src * (1 + rel_tol) + abs_tol)
    use = torch.where(visible.any(0, keepdim=True), visible, inside)      # (V,N)
    w_view = proximity_weights(c2w, c2w_t)                                # (V,)
    w = use.float() * w_view[:, None]
    wsum = w.sum(0)
    rgb = (col * w[:, None]).sum(0) / wsum.clamp(min=1e-12)              # (3,N)
    lab = lab.clamp(0, num_classes - 1)
    votes = torch.zeros(num_classes, lab.shape[1], device=dev)
    votes.scatter_add_(0, lab, w)
    labels = votes.argmax(0)
    labels[wsum <= 0] = num_classes
    rgb[:, wsum <= 0] = 0.0
    return BaselineResult(rgb=rgb.T.reshape(Ht, Wt, 3).clamp(0, 1),
                          labels=labels.reshape(Ht, Wt),
                          coverage=use.sum(0).reshape(Ht, Wt))
