"""Cascade MVS cost volume of one reference view against its neighbour views.

Three stages, coarse to fine, at pyramid levels 2, 1, 0 (scales 1/4, 1/2, 1). Stage 0 places
fronto-parallel planes evenly over [near, far] in the *plane coordinate* (inverse depth by
default, so one plane step moves a match by about the same number of pixels at any distance and
no planes are wasted beyond the walls; or metric depth); later stages place a narrower band of
planes per pixel around the upsampled depth of the previous stage. Each stage: homography
warping of the neighbours' features (and colours) onto the planes, a matching cost averaged over
the neighbours that see the pixel (group-wise correlation of the learned features, plus a
parameter-free photometric term), a 3D U-Net, and a soft-argmin in the plane coordinate.

Pixel convention: level ``l`` pixel ``j`` sits at full-resolution pixel ``2^l j``
(:func:`gsnerf_ros.geometry.level_intrinsics`, :mod:`gsnerf_ros.model.pyramid`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gsnerf_ros.geometry import (
    invert_pose,
    level_intrinsics,
    pixel_grid,
    pixels_to_grid,
    project_points,
    unproject_pixels,
)
from gsnerf_ros.model.config import CostVolumeConfig
from gsnerf_ros.model.depth_prior import prior_logits
from gsnerf_ros.model.encoder import ConvBlock, FastConv3d, make_norm
from gsnerf_ros.model.pyramid import image_pyramid

__all__ = ["PlaneSpacing", "homography_warp", "group_correlation", "photometric_cost",
           "plane_sweep_planes", "CostRegNet", "CascadeCostVolume", "CascadeInput", "CascadeOutput"]


@dataclass(frozen=True)
class PlaneSpacing:
    """The coordinate in which depth planes are evenly spaced.

    ``inverse=True``: q = 1/z (1/m, disparity-like; q decreases with depth, so plane steps
    are negative); ``inverse=False``: q = z (m). Planes are always listed nearest first.
    """

    inverse: bool = True

    def coord(self, z: Tensor | float) -> Tensor | float:
        """Depth (m) -> plane coordinate."""
        return 1.0 / z if self.inverse else z

    def depth(self, q: Tensor) -> Tensor:
        """Plane coordinate -> depth (m)."""
        return 1.0 / q.clamp(min=1e-6) if self.inverse else q

    def band_metres(self, z: Tensor, band: Tensor | float) -> Tensor:
        """Width in metres of a band of ``band`` plane-coordinate units centred at depth ``z``
        (first order: |dz/dq| = z^2 for inverse depth)."""
        b = band.abs() if isinstance(band, Tensor) else abs(band)
        return z * z * b if self.inverse else torch.as_tensor(b, device=z.device).expand_as(z)

    @classmethod
    def named(cls, name: str) -> "PlaneSpacing":
        if name not in ("inverse", "linear"):
            raise ValueError(f"plane spacing must be inverse | linear, got {name!r}")
        return cls(inverse=name == "inverse")


def plane_sweep_planes(spacing: PlaneSpacing, near: float, far: float,
                       num_planes: int) -> tuple[float, float]:
    """First plane coordinate and the (signed) step of ``num_planes`` planes spanning
    [near, far] m evenly in ``spacing``; plane k is at ``start + k * step``."""
    if not far > near > 0:
        raise ValueError(f"need far > near > 0, got near={near}, far={far}")
    if num_planes < 2:
        raise ValueError(f"need at least 2 planes, got {num_planes}")
    q0, q1 = float(spacing.coord(near)), float(spacing.coord(far))
    return q0, (q1 - q0) / (num_planes - 1)


def homography_warp(src_feat: Tensor, src_K: Tensor, src_from_ref: Tensor, ref_K: Tensor,
                    planes: Tensor, eps: float = 1e-4) -> tuple[Tensor, Tensor]:
    """Warp source features onto the reference view's depth hypotheses.

    Shapes: ``src_feat`` [M, C, h, w]; ``src_K`` [M, 3, 3] and ``ref_K`` [3, 3] for this level's
    grid; ``src_from_ref`` [M, 4, 4] (= w2c_src @ c2w_ref); ``planes`` [D, h, w] z-depths (m) in
    the reference camera.  Returns ``warped`` [M, C, D, h, w] (zeros outside the source image) and
    ``valid`` [M, D, h, w] bool (in front of the source camera and inside its image).
    """
    M, C, hs, ws = src_feat.shape
    D, h, w = planes.shape
    # A reference pixel's point on plane z is z * ray (ray at unit depth), so in the source
    # camera it is z * (R ray) + t: rotate the h*w rays once, not the D*h*w points.
    uv = pixel_grid(h, w, planes.device, planes.dtype).reshape(h * w, 2)
    rays = unproject_pixels(uv, uv.new_ones(h * w), ref_K)                    # [hw, 3]
    rot = rays @ src_from_ref[:, :3, :3].transpose(-1, -2)                    # [M, hw, 3]
    pts_src = planes.reshape(1, D, h * w, 1) * rot[:, None] + src_from_ref[:, None, None, :3, 3]
    uv_src, z = project_points(pts_src.reshape(M, D * h * w, 3), src_K)      # [M, P, 2]
    grid = pixels_to_grid(uv_src, hs, ws)
    valid = (z > eps) & (grid.abs() <= 1.0).all(-1)
    grid = torch.where(valid[..., None], grid, grid.new_full((), 2.0)).clamp(-2.0, 2.0)
    warped = F.grid_sample(src_feat, grid.reshape(M, D * h, w, 2).to(src_feat.dtype),
                           mode="bilinear", padding_mode="zeros", align_corners=True)
    return warped.reshape(M, C, D, h, w), valid.reshape(M, D, h, w)


def _mean_over_valid(per_view: Tensor, valid: Tensor) -> Tensor:
    """[M, G, D, h, w] values and [M, D, h, w] mask -> [G, D, h, w] mean over valid views."""
    vm = valid.to(per_view.dtype).unsqueeze(1)
    return (per_view * vm).sum(0) / vm.sum(0).clamp(min=1.0)


def group_correlation(ref_feat: Tensor, warped: Tensor, valid: Tensor, groups: int,
                      normalize: bool = False) -> Tensor:
    """Group-wise correlation averaged over the neighbours that see each (plane, pixel).

    Shapes: ``ref_feat`` [C, h, w], ``warped`` [M, C, D, h, w], ``valid`` [M, D, h, w]
    -> [G, D, h, w]. ``normalize=False``: mean product over each group's channels (the
    paper's group correlation). ``normalize=True``: both features are first scaled to unit
    length over all C channels and each group's sum is multiplied by G, so the groups sum to
    G x the cosine similarity: the cost no longer follows brightness or feature magnitude.
    (The released code divided by the total view count minus one instead of the neighbour
    count; we average over the valid neighbours.)
    """
    M, C, D, h, w = warped.shape
    if M == 0:
        return ref_feat.new_zeros(groups, D, h, w)
    if normalize:
        # Same as F.normalize on both (eps 1e-6), but the warped features' norm [M, D, h, w]
        # scales the group sums instead of a normalised copy of the [M, C, D, h, w] volume:
        # about 3x less time and memory forward and backward on the CPU.
        ref_n = ref_feat * torch.rsqrt((ref_feat * ref_feat).sum(0, keepdim=True).clamp(min=1e-12))
        dots = (warped.reshape(M, groups, C // groups, D, h, w)
                * ref_n.reshape(1, groups, C // groups, 1, h, w)).sum(2)
        inv_norm = torch.rsqrt((warped * warped).sum(1).clamp(min=1e-12))
        corr = dots * (inv_norm * groups).unsqueeze(1)
    else:
        corr = (warped.reshape(M, groups, C // groups, D, h, w)
                * ref_feat.reshape(1, groups, C // groups, 1, h, w)).mean(2)
    return _mean_over_valid(corr, valid)


def photometric_cost(ref_img: Tensor, warped: Tensor, valid: Tensor, patch: int = 3) -> Tensor:
    """Parameter-free matching cost: negative sum of absolute colour differences over a
    ``patch x patch`` window (SAD), averaged over the neighbours that see the pixel.

    Shapes: ``ref_img`` [3, h, w], ``warped`` [M, 3, D, h, w] colours in [0, 1], ``valid``
    [M, D, h, w] -> [1, D, h, w]; higher = better match (0 = identical patches). A plane no
    neighbour sees at a pixel gets that pixel's mean cost over the planes that are seen
    (neutral: neither a perfect match nor a penalty); a pixel never seen gets 0 throughout.
    """
    M, _, D, h, w = warped.shape
    if M == 0:
        return ref_img.new_zeros(1, D, h, w)
    ad = (warped - ref_img[None, :, None]).abs().mean(1)                    # [M, D, h, w]
    if patch > 1:
        ad = F.avg_pool2d(ad.reshape(M * D, 1, h, w), patch, stride=1, padding=patch // 2,
                          count_include_pad=False).reshape(M, D, h, w)
    cost = -_mean_over_valid(ad[:, None], valid)[0]                          # [D, h, w]
    seen = valid.any(0)
    n_seen = seen.sum(0, keepdim=True).clamp(min=1)
    neutral = (cost * seen).sum(0, keepdim=True) / n_seen
    return torch.where(seen, cost, neutral)[None]


class CostRegNet(nn.Module):
    """3D U-Net regularising a cost volume into depth logits and a volume feature.

    Input [B, G, D, h, w] (any size; padded to a multiple of 2^levels, then cropped)
    -> logits [B, D, h, w], volume feature [B, F, D, h, w].
    """

    def __init__(self, in_ch: int, chans: list[int], out_ch: int, norm: str, groups: int) -> None:
        super().__init__()
        self.levels = len(chans) - 1
        self.inc = nn.Sequential(ConvBlock(in_ch, chans[0], norm, groups, dims=3),
                                 ConvBlock(chans[0], chans[0], norm, groups, dims=3))
        self.downs = nn.ModuleList(
            nn.Sequential(ConvBlock(chans[i], chans[i + 1], norm, groups, stride=2, dims=3),
                          ConvBlock(chans[i + 1], chans[i + 1], norm, groups, dims=3))
            for i in range(self.levels))
        self.ups = nn.ModuleList(
            nn.Sequential(nn.ConvTranspose3d(chans[i + 1], chans[i], 3, stride=2, padding=1,
                                             output_padding=1, bias=norm == "none"),
                          make_norm(norm, chans[i], groups, 3), nn.LeakyReLU(0.1, inplace=True))
            for i in range(self.levels))
        self.prob = FastConv3d(chans[0], 1, 3, padding=1)
        self.feat = FastConv3d(chans[0], out_ch, 3, padding=1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        D, h, w = x.shape[-3:]
        m = 2 ** self.levels
        pads = ((-w) % m, (-h) % m, (-D) % m)
        if any(pads):
            x = F.pad(x, (0, pads[0], 0, pads[1], 0, pads[2]), mode="replicate")
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        y = skips.pop()
        for i in reversed(range(self.levels)):
            y = self.ups[i](y) + skips[i]
        y = y[..., :D, :h, :w]
        return self.prob(y).squeeze(1), self.feat(y)


@dataclass
class CascadeInput:
    """One reference view for :meth:`CascadeCostVolume.forward_views`: ``ref_pyr[l]``
    [C_l, h_l, w_l]; ``src_pyr[l]`` [M, C_l, h_l, w_l]; ``ref_K`` [3, 3], ``src_K`` [M, 3, 3]
    for the full-resolution images; ``ref_c2w`` [4, 4], ``src_c2w`` [M, 4, 4]; ``near``/``far``
    m; ``ref_image`` [3, H, W], ``src_images`` [M, 3, H, W] in [0, 1] (photometric channel)."""

    ref_pyr: list[Tensor]
    src_pyr: list[Tensor]
    ref_K: Tensor
    src_K: Tensor
    ref_c2w: Tensor
    src_c2w: Tensor
    near: float
    far: float
    ref_image: Tensor | None = None
    src_images: Tensor | None = None
    depth_prior: Tensor | None = None
    """[2, h, w] (log depth m, log std) of the reference view: the single-view prior the first
    stage's logits take with ``cost_volume.depth_prior_weight`` > 0 (model/depth_prior.py)."""


@dataclass
class CascadeOutput:
    """Per reference view, lists indexed by pyramid level l = 0, 1, 2 (full, 1/2, 1/4):
    ``depth`` [h_l, w_l] m; ``volume`` [F, D_l, h_l, w_l]; ``plane_start`` [h_l, w_l] (plane
    coordinate of the first, nearest plane per pixel: 1/m for inverse spacing, m for linear);
    ``plane_step`` [3] (signed plane spacing per level, same units)."""

    depth: list[Tensor]
    volume: list[Tensor]
    plane_start: list[Tensor]
    plane_step: Tensor


class CascadeCostVolume(nn.Module):
    """Three-stage cascade (levels 2 -> 1 -> 0) with one 3D U-Net per stage."""

    def __init__(self, cfg: CostVolumeConfig, fpn_channels: list[int]) -> None:
        super().__init__()
        self.cfg = cfg
        self.spacing = PlaneSpacing.named(cfg.spacing)
        in_ch = cfg.groups + (1 if cfg.photometric else 0)
        self.regs = nn.ModuleList(
            CostRegNet(in_ch, cfg.reg_channels, cfg.volume_channels, cfg.norm,
                       min(cfg.reg_channels))
            for _ in range(3))
        for c in fpn_channels:
            if c % cfg.groups:
                raise ValueError(f"cost_volume.groups={cfg.groups} must divide fpn channels {c}")

    def stage_planes(self, stage: int, prev_depth: Tensor | None, size: tuple[int, int],
                     near: float, far: float, device: torch.device) -> tuple[Tensor, float]:
        """Plane coordinates [D, h, w] of ``stage`` (nearest plane first) and their step.

        Stage 0 spans [near, far]; later stages centre a band of ``num_planes[stage]`` planes
        with step ``step0 / interval_ratios[0] * interval_ratios[stage]`` on the bilinearly
        upsampled depth of the previous stage, shifted to stay inside [near, far].
        """
        cfg, sp = self.cfg, self.spacing
        D = cfg.num_planes[stage]
        q_near, step0 = plane_sweep_planes(sp, near, far, cfg.num_planes[0])
        q_far = float(sp.coord(far))
        step = step0 / cfg.interval_ratios[0] * cfg.interval_ratios[stage]
        h, w = size
        if prev_depth is None:
            start = torch.full((h, w), q_near, device=device, dtype=torch.float32)
            step = step0
        else:
            up = F.interpolate(prev_depth.detach()[None, None].float(), size=(h, w),
                               mode="bilinear", align_corners=False)[0, 0]
            span = (D - 1) * step
            lo, hi = min(q_near, q_far), max(q_near, q_far)
            lower = lo - min(0.0, span)
            upper = max(hi - max(0.0, span), lower)
            start = (sp.coord(up.clamp(min=near)) - 0.5 * span).clamp(lower, upper)
        ks = torch.arange(D, device=device, dtype=torch.float32)[:, None, None]
        return start[None] + step * ks, step

    def regularise(self, stage: int, cost: Tensor, q_planes: Tensor) -> tuple[Tensor, Tensor]:
        """The stage's 3D U-Net on B reference views at once: cost [B, G(+1), D, h, w] ->
        depth logits [B, D, h, w] over the planes ``q_planes`` [B, D, h, w] (nearest first)
        and the volume feature [B, F, D, h, w]."""
        return self.regs[stage](cost)

    def forward(self, ref_pyr: list[Tensor], src_pyr: list[Tensor], ref_K: Tensor, src_K: Tensor,
                ref_c2w: Tensor, src_c2w: Tensor, near: float, far: float,
                ref_image: Tensor | None = None, src_images: Tensor | None = None
                ) -> CascadeOutput:
        """``ref_pyr[l]`` [C_l, h_l, w_l]; ``src_pyr[l]`` [M, C_l, h_l, w_l]; ``ref_K`` [3, 3] and
        ``src_K`` [M, 3, 3] for the full-resolution images; ``*_c2w`` [4, 4] / [M, 4, 4];
        ``ref_image`` [3, H, W] and ``src_images`` [M, 3, H, W] in [0, 1] (needed when
        ``cost_volume.photometric`` is on)."""
        return self.forward_views([CascadeInput(ref_pyr, src_pyr, ref_K, src_K, ref_c2w, src_c2w,
                                                near, far, ref_image, src_images)])[0]

    def forward_views(self, views: Sequence[CascadeInput]) -> list[CascadeOutput]:
        """Several reference views, each against its own neighbours (fields as in
        :meth:`forward`). Each view builds its own cost volume; the 3D U-Nets then run on
        the views of equal size as one batch. Same result as one view at a time up to float
        rounding (the U-Net's group norm is per sample), and on the CPU much faster: batch 1
        sends a 3D convolution this small to PyTorch's native kernel, a batch to oneDNN's
        (about 3x less time forward and backward for the 8 source views of training)."""
        cfg, sp = self.cfg, self.spacing
        src_from_ref, img_pyrs = [], []
        for v in views:
            if not v.far > v.near > 0:
                raise ValueError(f"need far > near > 0, got near={v.near}, far={v.far}")
            if cfg.photometric:
                if v.ref_image is None or v.src_images is None:
                    raise ValueError("cost_volume.photometric needs the reference and source "
                                     "images")
                img_pyrs.append(image_pyramid(torch.cat([v.ref_image[None], v.src_images],
                                                        0).float(), 3))
            src_from_ref.append(invert_pose(v.src_c2w.float()) @ v.ref_c2w.float())
        B = len(views)
        outs = [CascadeOutput(depth=[None] * 3, volume=[None] * 3,  # type: ignore[list-item]
                              plane_start=[None] * 3,  # type: ignore[list-item]
                              plane_step=torch.zeros(3, dtype=torch.float32,
                                                     device=v.ref_K.device)) for v in views]
        prev: list[Tensor | None] = [None] * B
        for stage in range(3):
            lvl = 2 - stage
            costs, q_all = [], []
            for b, v in enumerate(views):
                ref = v.ref_pyr[lvl]
                h, w = ref.shape[-2:]
                q_planes, step = self.stage_planes(stage, prev[b], (h, w), v.near, v.far,
                                                   ref.device)
                planes = sp.depth(q_planes)
                rK = level_intrinsics(v.ref_K.float(), lvl)
                sK = level_intrinsics(v.src_K.float(), lvl)
                warped, valid = homography_warp(v.src_pyr[lvl], sK, src_from_ref[b], rK, planes)
                cost = group_correlation(ref, warped, valid, cfg.groups,
                                         normalize=cfg.correlation == "cosine")
                if cfg.photometric:
                    imgs = img_pyrs[b][lvl]
                    wimg, _ = homography_warp(imgs[1:], sK, src_from_ref[b], rK, planes)
                    cost = torch.cat([cost, photometric_cost(imgs[0], wimg, valid,
                                                             cfg.photometric_patch)
                                      * cfg.photometric_scale], 0)
                costs.append(cost)
                q_all.append(q_planes)
                outs[b].plane_step[lvl] = step
            logits, vols = [None] * B, [None] * B
            for idx in _same_shape_groups([c.shape for c in costs]):
                lg, vl = self.regularise(stage, torch.stack([costs[i] for i in idx]),
                                         torch.stack([q_all[i] for i in idx]))
                for j, i in enumerate(idx):
                    logits[i], vols[i] = lg[j], vl[j]
            for b in range(B):
                if (stage < cfg.depth_prior_stages and cfg.depth_prior_weight > 0
                        and views[b].depth_prior is not None):
                    logits[b] = logits[b].float() + prior_logits(
                        sp.depth(q_all[b])[None], views[b].depth_prior[None],
                        cfg.depth_prior_weight)[0]
                prob = torch.softmax(logits[b].float(), dim=0)
                depth = sp.depth((prob * q_all[b]).sum(0))
                o = outs[b]
                o.depth[lvl], o.volume[lvl], o.plane_start[lvl] = depth, vols[b], q_all[b][0]
                prev[b] = depth
        return outs


def _same_shape_groups(shapes: Sequence[torch.Size]) -> list[list[int]]:
    """Indices grouped by equal shape, in first-seen order."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, shp in enumerate(shapes):
        groups.setdefault(tuple(shp), []).append(i)
    return list(groups.values())
