"""A depth camera's holes: a share of a depth map dropped (set to 0) in elliptical blobs.

Real depth cameras lose whole regions, not single pixels: dark, shiny or transparent surfaces,
surfaces out of range or seen at a grazing angle, the shadow beside an edge a stereo or
structured-light camera cannot see from both of its viewpoints. ``gsnerf-eval --sensor-depth
--sensor-holes F`` evaluates the RGB-D setting with such holes, where the model's own estimate
stands in for the missing measurement (:func:`gsnerf_ros.model.encoding.with_sensor_depth`).
Seeded: the same seed and input give the same output.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from gsnerf_ros.data.label_corruption import ellipse_mask

__all__ = ["depth_holes"]


def depth_holes(depth: Tensor, fraction: float, rng: np.random.Generator,
                min_axis: float = 0.02, max_axis: float = 0.08) -> Tensor:
    """``depth`` [H, W] m with at least ``fraction`` of its valid (> 0) pixels set to 0 in
    elliptical blobs (semi-axes in [``min_axis``, ``max_axis``] x the larger side; the last blob
    may overshoot by its own size). Returns a new tensor; 0 <= ``fraction`` < 1."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must lie in [0, 1), got {fraction}")
    if depth.dim() != 2:
        raise ValueError(f"depth must be [H, W], got {tuple(depth.shape)}")
    out = depth.detach().clone()
    valid = (torch.isfinite(out) & (out > 0)).cpu().numpy()
    n_valid = int(valid.sum())
    if fraction == 0 or n_valid == 0:
        return out
    h, w = valid.shape
    side = max(h, w)
    hole = np.zeros_like(valid)
    for _ in range(100000):
        if int((hole & valid).sum()) >= fraction * n_valid:
            break
        a = rng.uniform(min_axis, max_axis) * side
        hole |= ellipse_mask(h, w, (rng.uniform(0, w), rng.uniform(0, h)),
                             (a, a * rng.uniform(0.3, 1.0)), float(rng.uniform(0, 180)))
    out[torch.from_numpy(hole).to(out.device)] = 0.0
    return out
