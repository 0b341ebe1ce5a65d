"""A depth camera's imperfections: holes (a share of a depth map dropped, set to 0, in
elliptical blobs) and noise (relative, per pixel).

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

__all__ = ["depth_holes", "depth_noise"]


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


def depth_noise(depth: Tensor, sigma: float, rng: np.random.Generator) -> Tensor:
    """``depth`` [H, W] m with independent Gaussian noise of ``sigma`` x the depth on every
    valid (> 0) pixel (a depth camera's error grows with distance; stereo cameras' with its
    square, which this does not model). Returns a new tensor; ``sigma`` >= 0."""
    if not (sigma >= 0.0 and np.isfinite(sigma)):
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    out = depth.detach().clone()
    if sigma == 0:
        return out
    n = torch.from_numpy(rng.standard_normal(tuple(out.shape)).astype(np.float32)).to(out.device)
    valid = torch.isfinite(out) & (out > 0)
    noisy = out * (1.0 + sigma * n)
    return torch.where(valid & (noisy > 0), noisy, out)
