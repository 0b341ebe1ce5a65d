"""A single-view depth prior for the cost volume: where matching is ambiguous, the view's own
image says which depth is plausible.

A forward-moving camera has little parallax near the focus of expansion, and a wall of
periodic stripes matches at several depths; the cost volume's first stage then picks a wrong
mode and the cascade refines around it (docs/METHOD.md §14). A single image does not have that
ambiguity (a wall's distance shows in its size, its foot on the floor, the room around it), so
a small head on the pretrained encoder's taps predicts a depth and its uncertainty per pixel,
and the first stage's depth logits are multiplied by that Gaussian (added in log space), as
multi-view systems fuse single-view depth probabilities with matching (Bae et al., MaGNet,
CVPR 2022). Where the matching is sure, its peak outweighs the prior; where it hesitates between
modes, the prior chooses.

The head predicts depth in a *canonical camera* (Metric3D's idea): ``log(z * W / f_x)``, the
depth a camera of focal length ``W`` pixels would need to see the same image, so one head serves
any field of view and image size (:func:`canonical_to_metric`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gsnerf_ros.model.pyramid import depth_level

__all__ = ["MonoDepthHead", "canonical_to_metric", "prior_logits", "prior_nll",
           "DEPTH_PRIOR_STRIDE"]

DEPTH_PRIOR_STRIDE = 4
"""The head's output stride: [B, 2, ceil(H/4), ceil(W/4)] for an [H, W] input (pyramid level 2)."""

_LOG_SIGMA_RANGE = (math.log(0.02), math.log(2.0))
"""Clamp of the predicted log-depth std (2 % to 200 %): a head never claims certainty beyond a
depth camera's, and a bad pixel never drowns the matching entirely."""


class MonoDepthHead(nn.Module):
    """Feature pyramid over the encoder's five taps (strides 2-32, ``tap_channels``), summed
    top-down to stride 4, a 3x3 conv + GroupNorm + ReLU, and a 1x1 conv to two channels: the
    canonical log depth (:func:`canonical_to_metric`) and the log std of the log depth. The
    biases start at a 2.5 m canonical depth and a std of 0.5 (a flat, weak prior)."""

    def __init__(self, tap_channels: tuple[int, ...] | list[int], channels: int = 32) -> None:
        super().__init__()
        self.laterals = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in tap_channels[1:])
        self.smooth = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1),
                                    nn.GroupNorm(math.gcd(8, channels), channels),
                                    nn.ReLU(inplace=True))
        self.out = nn.Conv2d(channels, 2, 1)
        with torch.no_grad():
            self.out.weight.mul_(0.1)
            self.out.bias.copy_(torch.tensor([math.log(2.5), math.log(0.5)]))

    def forward(self, taps: list[Tensor], height: int, width: int) -> Tensor:
        """``taps`` [B, c_i, ...] at strides 2, 4, 8, 16, 32 of a padded [height, width] image ->
        [B, 2, ceil(height/4), ceil(width/4)]: canonical log depth, log std (clamped)."""
        y = self.laterals[-1](taps[-1])
        for tap, lateral in zip(reversed(taps[1:-1]), reversed(list(self.laterals)[:-1])):
            y = F.interpolate(y, size=tap.shape[-2:], mode="bilinear", align_corners=False)
            y = y + lateral(tap)
        out = self.out(self.smooth(y))
        h, w = -(-height // DEPTH_PRIOR_STRIDE), -(-width // DEPTH_PRIOR_STRIDE)
        out = out[..., :h, :w]
        return torch.cat([out[:, :1], out[:, 1:].clamp(*_LOG_SIGMA_RANGE)], 1)


def canonical_to_metric(prior: Tensor, K: Tensor, width: int) -> Tensor:
    """The head's ``prior`` [B, 2, h, w] (canonical log depth, log std) of images ``width``
    pixels wide with intrinsics ``K`` [B, 3, 3] -> [B, 2, h, w] (log depth in metres, log std).
    Only the ratio ``f_x / width`` matters, so ``K`` and ``width`` may be those of any pyramid
    level of the same image."""
    shift = torch.log(K[:, 0, 0].float() / float(width)).view(-1, 1, 1)
    return torch.stack([prior[:, 0] + shift, prior[:, 1]], 1)


def prior_logits(depth_planes: Tensor, prior: Tensor, weight: float) -> Tensor:
    """Log of the prior's Gaussian (in log depth) at each plane, times ``weight``:
    ``depth_planes`` [B, D, h, w] m, ``prior`` [B, 2, h', w'] (log depth m, log std; resampled
    to h x w by area averaging) -> [B, D, h, w], to be added to the cost volume's depth logits.
    ``weight`` 1 is the product of the two distributions; less trusts the prior less."""
    h, w = depth_planes.shape[-2:]
    if prior.shape[-2:] != (h, w):
        prior = F.adaptive_avg_pool2d(prior.float(), (h, w)) if (
            prior.shape[-2] >= h and prior.shape[-1] >= w) else F.interpolate(
            prior.float(), size=(h, w), mode="bilinear", align_corners=False)
    mu, sigma = prior[:, :1], prior[:, 1:].exp()
    z = (depth_planes.float().clamp(min=1e-6).log() - mu) / sigma
    return -0.5 * weight * z * z


def prior_nll(prior: Tensor, depth: Tensor) -> Tensor:
    """Gaussian negative log-likelihood (per valid pixel, mean) of the log of ``depth`` [B, H, W]
    m (0 = unknown) under ``prior`` [B, 2, h, w] (log depth m, log std); the depth is read at the
    prior's pixels (every 4th pixel: :func:`~gsnerf_ros.model.pyramid.depth_level` 2)."""
    d = depth_level(depth, 2)
    if d.shape[-2:] != prior.shape[-2:]:
        raise ValueError(f"prior {tuple(prior.shape[-2:])} is not level 2 of the depth "
                         f"{tuple(depth.shape[-2:])}")
    valid = d > 0
    if not bool(valid.any()):
        return prior.sum() * 0.0
    mu, log_s = prior[:, 0], prior[:, 1]
    z = (d.clamp(min=1e-6).log() - mu) / log_s.exp()
    return (log_s + 0.5 * z * z)[valid].mean()
