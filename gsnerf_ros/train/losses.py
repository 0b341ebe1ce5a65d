"""Training losses of GSNeRF (paper Eq. 6, 7, 16, 17 and supplementary A.1).

- :func:`rgb_loss`: MSE between rendered and ground-truth colours.
- :func:`semantic_ce`: cross-entropy on rendered semantic logits (ignore index, class weights).
- :func:`semantic_2d_ce`: the same on the source views' 2D logits of the geo-reasoner.
- :func:`multilevel_depth_loss` + :func:`ray_depth_loss`: depth-supervised variant (Eq. 6):
  smooth-L1 on every level of the source depth pyramid plus the rendered target depth.
- :func:`self_supervised_depth_loss`: the variant for data without depth (Eq. 7 / A.1, after
  RC-MVSNet): per-pixel cross-view photometric reconstruction, SSIM and edge-aware smoothness.

All functions return a 0-dim tensor that is differentiable w.r.t. the predictions; when a loss
has no valid pixel it returns an exact zero that still carries the graph (``pred.sum() * 0``).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from gsnerf_ros.geometry import (invert_pose, level_intrinsics, nearest_views, pixels_to_grid,
                                 project_points, scale_intrinsics, transform_points, unproject_depth)
from gsnerf_ros.data.classes import IGNORE_INDEX
from gsnerf_ros.model.pyramid import depth_level, image_level, level_of_size

__all__ = [
    "IGNORE_INDEX", "class_weights_for", "rgb_loss", "semantic_ce", "semantic_2d_ce", "depth_pyramid",
    "multilevel_depth_loss", "ray_depth_loss", "ssim_map", "inverse_warp",
    "edge_aware_smoothness", "photometric_reconstruction", "self_supervised_depth_loss",
    "class_weights_from_background",
]


def _zero(t: Tensor) -> Tensor:
    return t.sum() * 0.0


def rgb_loss(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean squared error over rays and channels.

    Shape: ``pred``, ``target`` (N, 3) in [0, 1]; ``mask`` (N,) bool, rays to keep (optional).
    """
    if pred.shape != target.shape:
        raise ValueError(f"rgb_loss: pred {tuple(pred.shape)} != target {tuple(target.shape)}")
    if mask is not None:
        if not bool(mask.any()):
            return _zero(pred)
        pred, target = pred[mask], target[mask]
    return F.mse_loss(pred.float(), target.float())


def semantic_ce(logits: Tensor, labels: Tensor, ignore_index: int = IGNORE_INDEX,
                class_weights: Tensor | None = None) -> Tensor:
    """Weighted cross-entropy of per-ray class scores.

    Shape: ``logits`` (N, C), ``labels`` (N,) int64 with ``ignore_index`` for unlabelled rays;
    ``class_weights`` (C,). Weighted mean over the labelled rays (PyTorch's convention);
    zero if no ray is labelled.
    """
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"semantic_ce: expected logits (N,C) and labels (N,), got "
                         f"{tuple(logits.shape)} and {tuple(labels.shape)}")
    valid = labels != ignore_index
    if not bool(valid.any()):
        return _zero(logits)
    C = logits.shape[1]
    if bool((labels[valid] >= C).any()) or bool((labels[valid] < 0).any()):
        raise ValueError(f"semantic_ce: labels outside [0, {C}) that are not ignore_index="
                         f"{ignore_index}; remap the dataset's classes")
    w = None if class_weights is None else class_weights.to(logits.device, torch.float32)
    return F.cross_entropy(logits[valid].float(), labels[valid], weight=w)


def semantic_2d_ce(logits: Tensor, labels: Tensor, ignore_index: int = IGNORE_INDEX,
                   class_weights: Tensor | None = None) -> Tensor:
    """Cross-entropy of the source views' 2D logits against their label maps.

    Shape: ``logits`` (V, C, H, W), ``labels`` (V, H', W') int64. If the label maps have another
    size they are resized with nearest neighbour (which keeps ``ignore_index``).
    """
    if logits.ndim != 4 or labels.ndim != 3 or labels.shape[0] != logits.shape[0]:
        raise ValueError(f"semantic_2d_ce: expected logits (V,C,H,W), labels (V,H,W); got "
                         f"{tuple(logits.shape)} and {tuple(labels.shape)}")
    if labels.shape[-2:] != logits.shape[-2:]:
        labels = F.interpolate(labels[:, None].float(), size=logits.shape[-2:],
                               mode="nearest")[:, 0].long()
    C = logits.shape[1]
    return semantic_ce(logits.permute(0, 2, 3, 1).reshape(-1, C), labels.reshape(-1),
                       ignore_index, class_weights)


def class_weights_from_background(num_classes: int, background_classes: Sequence[int],
                                  background_weight: float) -> Tensor:
    """Class weights ``[1, ..., 1]`` with ``background_weight`` at ``background_classes``. (C,)"""
    w = torch.ones(num_classes)
    for c in background_classes:
        if not 0 <= c < num_classes:
            raise ValueError(f"background class {c} outside [0, {num_classes})")
        w[c] = background_weight
    return w


def class_weights_for(class_weights: Sequence[float], background_classes: Sequence[int],
                      background_weight: float, num_classes: int) -> Tensor | None:
    """The cross-entropy class weights a run's loss config asks for (``loss.class_weights``,
    else ``loss.background_classes`` at ``loss.background_weight``), or None (unweighted). (C,)"""
    if class_weights:
        if len(class_weights) != num_classes:
            raise ValueError(f"loss.class_weights has {len(class_weights)} entries; the "
                             f"model has {num_classes} classes")
        return torch.tensor(class_weights, dtype=torch.float32)
    if background_classes:
        return class_weights_from_background(num_classes, background_classes, background_weight)
    return None


def depth_pyramid(depth: Tensor, sizes: Sequence[tuple[int, int]]) -> list[Tensor]:
    """GT depth on the network's pyramid grids (zeros stay invalid).

    Shape: ``depth`` (V, H, W) m -> list of (V, h_l, w_l). A size that is a pyramid level of
    (H, W) (ceil(H/2^l), ceil(W/2^l)) takes every 2^l-th pixel (:func:`model.pyramid.depth_level`),
    the same place the cost volume's level-l pixel looks at; any other size is nearest-neighbour.
    """
    H, W = depth.shape[-2:]
    out = []
    for (h, w) in sizes:
        lvl = level_of_size(H, W, (h, w))
        out.append(depth_level(depth, lvl) if lvl is not None else
                   F.interpolate(depth[:, None], size=(h, w), mode="nearest")[:, 0])
    return out


def multilevel_depth_loss(depth_levels: Sequence[Tensor], gt_depth: Tensor,
                          level_weights: Sequence[float] = (2.0, 1.0, 0.5),
                          beta: float = 1.0) -> Tensor:
    """Depth-supervised source loss (paper Eq. 6): sum_l w_l * SmoothL1(D_i^l, D_i^{GT,l}).

    Shape: ``depth_levels`` list of (V, h_l, w_l) m in any order (they are sorted finest
    first, so ``level_weights[0]`` is the full-resolution weight); ``gt_depth`` (V, H, W) m,
    0 = invalid. Each level averages over its valid pixels.
    """
    levels = sorted(depth_levels, key=lambda d: -d.shape[-1] * d.shape[-2])
    if len(level_weights) < len(levels):
        raise ValueError(f"multilevel_depth_loss: {len(levels)} levels but only "
                         f"{len(level_weights)} level_weights")
    total = _zero(levels[0])
    for w, d in zip(level_weights, levels):
        gt = depth_pyramid(gt_depth, [tuple(d.shape[-2:])])[0].to(d.device)
        valid = gt > 0
        if bool(valid.any()):
            total = total + w * F.smooth_l1_loss(d[valid].float(), gt[valid].float(), beta=beta)
    return total


def ray_depth_loss(pred: Tensor, gt: Tensor, beta: float = 1.0) -> Tensor:
    """SmoothL1 between rendered and GT target depth over rays with GT > 0.

    Shape: ``pred``, ``gt`` (N,) m. Mean over valid rays (the released code divides by all
    rays, which silently down-weights scenes with holes; we do not).
    """
    valid = gt > 0
    if not bool(valid.any()):
        return _zero(pred)
    return F.smooth_l1_loss(pred[valid].float(), gt[valid].float(), beta=beta)


def ssim_map(x: Tensor, y: Tensor, c1: float = 0.01 ** 2, c2: float = 0.03 ** 2) -> Tensor:
    """Local SSIM with 3x3 average pooling (RC-MVSNet / Monodepth style), reflect padding.

    Shape: ``x``, ``y`` (B, 3, H, W) in [0, 1] -> (B, 3, H, W) SSIM in [-1, 1] (1 = identical).
    """
    xp = F.pad(x, (1, 1, 1, 1), mode="reflect")
    yp = F.pad(y, (1, 1, 1, 1), mode="reflect")
    mu_x = F.avg_pool2d(xp, 3, 1)
    mu_y = F.avg_pool2d(yp, 3, 1)
    sxx = F.avg_pool2d(xp * xp, 3, 1) - mu_x ** 2
    syy = F.avg_pool2d(yp * yp, 3, 1) - mu_y ** 2
    sxy = F.avg_pool2d(xp * yp, 3, 1) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x ** 2 + mu_y ** 2 + c1) * (sxx + syy + c2)
    return num / den


def inverse_warp(src_image: Tensor, ref_depth: Tensor, K_ref: Tensor, c2w_ref: Tensor,
                 K_src: Tensor, c2w_src: Tensor) -> tuple[Tensor, Tensor]:
    """Reconstruct the reference view from a source image using the reference depth.

    Every reference pixel is lifted with its z-depth, projected into the source camera and the
    source colour is sampled bilinearly. Shape: ``src_image`` (3, Hs, Ws); ``ref_depth``
    (H, W) m; ``K_*`` (3, 3) for their own image sizes; ``c2w_*`` (4, 4)
    -> ``warped`` (3, H, W), ``valid`` (H, W) bool (positive depth, in front of the source
    camera, inside the source image).
    """
    H, W = ref_depth.shape
    Hs, Ws = src_image.shape[-2:]
    pts = unproject_depth(ref_depth, K_ref, c2w_ref).reshape(-1, 3)
    uv, z = project_points(transform_points(invert_pose(c2w_src), pts), K_src)
    inside = (uv[:, 0] >= 0) & (uv[:, 0] <= Ws - 1) & (uv[:, 1] >= 0) & (uv[:, 1] <= Hs - 1)
    valid = (ref_depth.reshape(-1) > 0) & (z > 1e-6) & inside
    grid = pixels_to_grid(uv, Hs, Ws).reshape(1, H, W, 2).to(src_image.dtype)
    warped = F.grid_sample(src_image[None], grid, mode="bilinear", padding_mode="zeros",
                           align_corners=True)[0]
    return warped, valid.reshape(H, W)


def edge_aware_smoothness(depth: Tensor, image: Tensor, lam: float = 1.0) -> Tensor:
    """First-order edge-aware smoothness of mean-normalised depth.

    Shape: ``depth`` (V, H, W) m, ``image`` (V, 3, H, W). Loss = mean |dD/dx| exp(-lam |dI/dx|)
    + the same along y, where D = depth / mean(depth) per view (scale invariant, so a constant
    or a scaled copy of a depth map costs the same).
    """
    d = depth / depth.mean(dim=(-1, -2), keepdim=True).clamp(min=1e-6)
    dx = (d[:, :, 1:] - d[:, :, :-1]).abs()
    dy = (d[:, 1:, :] - d[:, :-1, :]).abs()
    ix = (image[..., :, 1:] - image[..., :, :-1]).abs().mean(1)
    iy = (image[..., 1:, :] - image[..., :-1, :]).abs().mean(1)
    return (dx * torch.exp(-lam * ix)).mean() + (dy * torch.exp(-lam * iy)).mean()


def _images_at(images: Tensor, K: Tensor, h: int, w: int) -> tuple[Tensor, Tensor]:
    """Images (V, 3, H, W) and their K (V, 3, 3) on the grid of a depth map of size (h, w):
    the network's pyramid grid when (h, w) is a pyramid level (pixel j at 2^l j), else a
    bilinear resize."""
    H, W = images.shape[-2:]
    lvl = level_of_size(H, W, (h, w))
    if lvl is not None:
        return image_level(images, lvl), level_intrinsics(K, lvl)
    return (F.interpolate(images, size=(h, w), mode="bilinear", align_corners=False),
            scale_intrinsics(K, w / W, h / H))


def photometric_reconstruction(images: Tensor, depth: Tensor, K: Tensor, c2w: Tensor,
                               num_neighbours: int = 3) -> tuple[Tensor, Tensor]:
    """Per-pixel cross-view reconstruction error (MSE) and SSIM dissimilarity.

    For every reference view i, its nearest ``num_neighbours`` source views are inverse-warped
    into it with its predicted depth; per pixel the best (lowest-error) valid warp is kept
    (handles occlusions, as in RC-MVSNet's top-1). Shape: ``images`` (V, 3, H, W) in [0, 1],
    ``depth`` (V, h, w) m (any level: images and K are resized to it), ``K`` (V, 3, 3) for
    (H, W), ``c2w`` (V, 4, 4) -> (recon, ssim) two scalars, each the mean over pixels that have
    at least one valid warp; zeros when none has.
    """
    V, _, H, W = images.shape
    h, w = depth.shape[-2:]
    if V < 2:
        raise ValueError("photometric_reconstruction needs at least 2 views")
    imgs, Ks = _images_at(images, K, h, w)
    recon_terms, ssim_terms, counts = [], [], []
    for i in range(V):
        nbrs = nearest_views(c2w[i], c2w, min(num_neighbours, V - 1), exclude=[i]).tolist()
        errs, dss, valids = [], [], []
        for j in nbrs:
            warped, valid = inverse_warp(imgs[j], depth[i], Ks[i], c2w[i], Ks[j], c2w[j])
            errs.append(((warped - imgs[i]) ** 2).mean(0))
            # invalid pixels take the reference colour so they cannot corrupt SSIM windows
            filled = torch.where(valid[None], warped, imgs[i])
            dss.append(((1 - ssim_map(filled[None], imgs[i][None])[0]) / 2).clamp(0, 1).mean(0))
            valids.append(valid)
        err = torch.stack(errs)                      # (M, h, w)
        ds = torch.stack(dss)
        val = torch.stack(valids)
        best = torch.where(val, err, torch.full_like(err, 1e4)).argmin(0, keepdim=True)
        any_valid = val.any(0)
        recon_terms.append((err.gather(0, best)[0] * any_valid).sum())
        ssim_terms.append((ds.gather(0, best)[0] * any_valid).sum())
        counts.append(any_valid.sum())
    n = torch.stack(counts).sum()
    if int(n) == 0:
        return _zero(depth), _zero(depth)
    return torch.stack(recon_terms).sum() / n, torch.stack(ssim_terms).sum() / n


def self_supervised_depth_loss(images: Tensor, depth_levels: Sequence[Tensor], K: Tensor,
                               c2w: Tensor, level_weights: Sequence[float] = (2.0, 1.0, 0.5),
                               w_recon: float = 12.0, w_ssim: float = 6.0,
                               w_smooth: float = 0.18, num_neighbours: int = 3,
                               smooth_lambda: float = 1.0) -> tuple[Tensor, dict[str, Tensor]]:
    """Self-supervised source-depth loss (paper Eq. 7 / A.1, weights from RC-MVSNet).

    sum_l w_l (w_recon * L_recon + w_ssim * L_ssim + w_smooth * L_smooth) over the depth
    pyramid. Shape: ``images`` (V, 3, H, W), ``depth_levels`` list of (V, h_l, w_l) m,
    ``K`` (V, 3, 3) for (H, W), ``c2w`` (V, 4, 4). Returns (total, {"recon", "ssim", "smooth"}).
    """
    levels = sorted(depth_levels, key=lambda d: -d.shape[-1] * d.shape[-2])
    total = _zero(levels[0])
    parts = {"recon": _zero(levels[0]), "ssim": _zero(levels[0]), "smooth": _zero(levels[0])}
    for wl, d in zip(level_weights, levels):
        recon, ssim = photometric_reconstruction(images, d, K, c2w, num_neighbours)
        imgs, _ = _images_at(images, K, *d.shape[-2:])
        smooth = edge_aware_smoothness(d, imgs, smooth_lambda)
        total = total + wl * (w_recon * recon + w_ssim * ssim + w_smooth * smooth)
        parts["recon"] = parts["recon"] + wl * recon
        parts["ssim"] = parts["ssim"] + wl * ssim
        parts["smooth"] = parts["smooth"] + wl * smooth
    return total, parts
