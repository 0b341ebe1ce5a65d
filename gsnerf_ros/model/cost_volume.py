"""Cascade MVS cost volume of one reference view against its neighbour views.

Three stages, coarse to fine, at pyramid levels 2, 1, 0 (scales 1/4, 1/2, 1). Stage 0 places
fronto-parallel planes evenly on [near, far]; later stages place a narrower band of planes per
pixel around the upsampled depth of the previous stage. Each stage: homography warping of the
neighbours' features onto the planes, group-wise correlation with the reference feature averaged
over the neighbours that see the pixel, a 3D U-Net, and a soft-argmin depth.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gsnerf_ros.geometry import (
    invert_pose,
    pixel_grid,
    pixels_to_grid,
    project_points,
    scale_intrinsics,
    transform_points,
    unproject_pixels,
)
from gsnerf_ros.model.config import CostVolumeConfig
from gsnerf_ros.model.encoder import ConvBlock, FastConv3d, make_norm

__all__ = ["homography_warp", "group_correlation", "CostRegNet", "CascadeCostVolume", "CascadeOutput"]


def homography_warp(src_feat: Tensor, src_K: Tensor, src_from_ref: Tensor, ref_K: Tensor,
                    planes: Tensor, eps: float = 1e-4) -> tuple[Tensor, Tensor]:
    """Warp source features onto the reference view's depth hypotheses.

    Shapes: ``src_feat`` [M, C, h, w]; ``src_K`` [M, 3, 3] and ``ref_K`` [3, 3] for this level's
    size; ``src_from_ref`` [M, 4, 4] (= w2c_src @ c2w_ref); ``planes`` [D, h, w] z-depths (m) in
    the reference camera.  Returns ``warped`` [M, C, D, h, w] (zeros outside the source image) and
    ``valid`` [M, D, h, w] bool (in front of the source camera and inside its image).
    """
    M, C, hs, ws = src_feat.shape
    D, h, w = planes.shape
    uv = pixel_grid(h, w, planes.device, planes.dtype).reshape(1, h * w, 2).expand(D, -1, -1)
    pts_ref = unproject_pixels(uv, planes.reshape(D, h * w), ref_K)          # [D, hw, 3]
    pts_ref = pts_ref.reshape(1, D * h * w, 3).expand(M, -1, -1)
    uv_src, z = project_points(transform_points(src_from_ref, pts_ref), src_K)  # [M, P, 2]
    grid = pixels_to_grid(uv_src, hs, ws)
    valid = (z > eps) & (grid.abs() <= 1.0).all(-1)
    grid = torch.where(valid[..., None], grid, grid.new_full((), 2.0)).clamp(-2.0, 2.0)
    warped = F.grid_sample(src_feat, grid.reshape(M, D * h, w, 2).to(src_feat.dtype),
                           mode="bilinear", padding_mode="zeros", align_corners=True)
    return warped.reshape(M, C, D, h, w), valid.reshape(M, D, h, w)


def group_correlation(ref_feat: Tensor, warped: Tensor, valid: Tensor, groups: int) -> Tensor:
    """Group-wise correlation averaged over the neighbours that see each (plane, pixel).

    Shapes: ``ref_feat`` [C, h, w], ``warped`` [M, C, D, h, w], ``valid`` [M, D, h, w]
    -> [G, D, h, w]. (The released code divided by the total view count minus one instead of the
    neighbour count; we average over the valid neighbours.)
    """
    M, C, D, h, w = warped.shape
    if M == 0:
        return ref_feat.new_zeros(groups, D, h, w)
    corr = (warped.reshape(M, groups, C // groups, D, h, w)
            * ref_feat.reshape(1, groups, C // groups, 1, h, w)).mean(2)    # [M, G, D, h, w]
    vm = valid.to(corr.dtype).unsqueeze(1)
    return (corr * vm).sum(0) / vm.sum(0).clamp(min=1.0)


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
class CascadeOutput:
    """Per reference view, lists indexed by pyramid level l = 0, 1, 2 (full, 1/2, 1/4):
    ``depth`` [h_l, w_l] m; ``volume`` [F, D_l, h_l, w_l]; ``plane_start`` [h_l, w_l] m (depth
    of the first plane per pixel); ``plane_step`` [3] m (plane spacing per level)."""

    depth: list[Tensor]
    volume: list[Tensor]
    plane_start: list[Tensor]
    plane_step: Tensor


class CascadeCostVolume(nn.Module):
    """Three-stage cascade (levels 2 -> 1 -> 0) with one 3D U-Net per stage."""

    def __init__(self, cfg: CostVolumeConfig, fpn_channels: list[int]) -> None:
        super().__init__()
        self.cfg = cfg
        self.regs = nn.ModuleList(
            CostRegNet(cfg.groups, cfg.reg_channels, cfg.volume_channels, cfg.norm,
                       min(cfg.reg_channels))
            for _ in range(3))
        for c in fpn_channels:
            if c % cfg.groups:
                raise ValueError(f"cost_volume.groups={cfg.groups} must divide fpn channels {c}")

    def forward(self, ref_pyr: list[Tensor], src_pyr: list[Tensor], ref_K: Tensor, src_K: Tensor,
                ref_c2w: Tensor, src_c2w: Tensor, near: float, far: float) -> CascadeOutput:
        """``ref_pyr[l]`` [C_l, h_l, w_l]; ``src_pyr[l]`` [M, C_l, h_l, w_l]; ``ref_K`` [3, 3] and
        ``src_K`` [M, 3, 3] for the full-resolution images; ``*_c2w`` [4, 4] / [M, 4, 4]."""
        if not far > near > 0:
            raise ValueError(f"need far > near > 0, got near={near}, far={far}")
        cfg = self.cfg
        src_from_ref = (invert_pose(src_c2w.float()) @ ref_c2w.float()).to(ref_c2w.dtype)
        step0 = (far - near) / (cfg.num_planes[0] - 1)
        base = step0 / cfg.interval_ratios[0]
        depths: list[Tensor] = [None] * 3  # type: ignore[list-item]
        volumes: list[Tensor] = [None] * 3  # type: ignore[list-item]
        starts: list[Tensor] = [None] * 3  # type: ignore[list-item]
        steps = torch.zeros(3, dtype=torch.float32, device=ref_K.device)
        prev: Tensor | None = None
        for stage in range(3):
            lvl = 2 - stage
            ref = ref_pyr[lvl]
            h, w = ref.shape[-2:]
            D = cfg.num_planes[stage]
            step = base * cfg.interval_ratios[stage]
            if prev is None:
                start = torch.full((h, w), near, device=ref.device, dtype=torch.float32)
            else:
                up = F.interpolate(prev.detach()[None, None].float(), size=(h, w), mode="bilinear",
                                   align_corners=False)[0, 0]
                start = (up - 0.5 * (D - 1) * step).clamp(near, max(far - (D - 1) * step, near))
            planes = start[None] + step * torch.arange(D, device=ref.device,
                                                       dtype=torch.float32)[:, None, None]
            s = 1.0 / 2 ** lvl
            rK = scale_intrinsics(ref_K.float(), s, s)
            sK = scale_intrinsics(src_K.float(), s, s)
            warped, valid = homography_warp(src_pyr[lvl], sK, src_from_ref.float(), rK, planes)
            cost = group_correlation(ref, warped, valid, cfg.groups)
            logits, vol = self.regs[stage](cost[None])
            prob = torch.softmax(logits[0].float(), dim=0)
            depth = (prob * planes).sum(0)
            depths[lvl], volumes[lvl], starts[lvl] = depth, vol[0], start
            steps[lvl] = step
            prev = depth
        return CascadeOutput(depth=depths, volume=volumes, plane_start=starts, plane_step=steps)
