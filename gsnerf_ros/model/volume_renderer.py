"""Volume renderer (paper Eq. 9-11) and alpha compositing.

Per sample: V view tokens (3D volume features, 2D features, colour) plus a global token built
from the masked mean/variance across the views that see the sample; attention across views with
a key mask (outside the image or behind the view's surface -> masked; global token kept);
density from the global tokens along the ray with a ray-wise 1D conv (works for any sample count);
colour as a softmax blend of the source colours; alpha compositing (fp32) to RGB and depth, both
normalised by the accumulated opacity (``renderer.normalise_colour``).

:func:`render_samples` gathers what the network consumes (each sample projected into the
sources, the occlusion test, the cost-volume and 2D features, the colours and the view
directions; :mod:`.features`) and runs it; :func:`colour_view_mask` picks the sources that lend
colour (``renderer.colour_views``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gsnerf_ros.geometry import nearest_views
from gsnerf_ros.model.attention import ViewTransformer, masked_mean_var, mlp
from gsnerf_ros.model.config import RendererConfig
from gsnerf_ros.model.cost_volume import PlaneSpacing
from gsnerf_ros.model.encoding import SourceEncoding
from gsnerf_ros.model.features import (direction_features, occlusion_mask, project_to_views,
                                       sample_maps, sample_volumes)

__all__ = ["composite", "alpha_from_density", "RayDensity", "VolumeRenderer", "colour_mask",
           "prefer_views", "colour_view_mask", "render_samples"]


def alpha_from_density(sigma: Tensor, depths: Tensor, mode: str) -> Tensor:
    """Opacity per sample. ``sigma`` [N, S] >= 0, ``depths`` [N, S] -> alpha [N, S] in [0, 1).

    ``opacity``: 1 - exp(-sigma) (GeoNeRF / released); ``delta``: 1 - exp(-sigma * dt) with
    dt the spacing to the next sample (the last sample repeats the previous spacing).
    """
    sigma = sigma.float()
    if mode == "opacity":
        return 1.0 - torch.exp(-sigma)
    dt = depths.float().diff(dim=-1)
    last = dt[:, -1:] if dt.shape[-1] else torch.ones_like(depths[:, :1])
    dt = torch.cat([dt, last], -1).clamp(min=0.0)
    return 1.0 - torch.exp(-sigma * dt)


def composite(alpha: Tensor) -> Tensor:
    """Compositing weights w_s = alpha_s * prod_{k<s} (1 - alpha_k). [N, S] -> [N, S] (fp32);
    weights are >= 0 and sum to <= 1 per ray."""
    alpha = alpha.float()
    trans = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1.0 - alpha + 1e-10], -1), -1)
    return alpha * trans[:, :-1]


def colour_mask(visible: Tensor, in_image: Tensor) -> Tensor:
    """Views that may lend colour: visible ones; else in-image ones; else all. [P, V] bool."""
    any_vis = visible.any(-1, keepdim=True)
    any_in = in_image.any(-1, keepdim=True)
    return torch.where(any_vis, visible, torch.where(any_in, in_image, torch.ones_like(in_image)))


def prefer_views(mask: Tensor, keep: Tensor) -> Tensor:
    """``mask`` [P, V] bool restricted to the ``keep`` [V] bool views in every row where one of
    them is set; a row where none is keeps its mask (``renderer.colour_views``)."""
    kept = mask & keep
    return torch.where(kept.any(-1, keepdim=True), kept, mask)


class RayDensity(nn.Module):
    """Density from per-sample tokens along a ray: residual 1D convs (kernel 3, zero padding, no
    pooling, so any sample count S >= 1 works) then an MLP. [N, S, d] + [N, S, 2] -> [N, S]."""

    def __init__(self, d: int, ch: int, blocks: int) -> None:
        super().__init__()
        self.inp = nn.Conv1d(d + 2, ch, 3, padding=1)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.ELU(), nn.Conv1d(ch, ch, 3, padding=1), nn.ELU(),
                          nn.Conv1d(ch, ch, 3, padding=1)) for _ in range(blocks))
        self.out = mlp([ch, max(ch // 2, 8), 1])
        self.act = nn.Softplus()
        nn.init.constant_(self.out[-1].bias, -1.0)

    def forward(self, tokens: Tensor, pos: Tensor) -> Tensor:
        x = self.inp(torch.cat([tokens, pos.to(tokens.dtype)], -1).transpose(1, 2))
        for b in self.blocks:
            x = x + b(x)
        return self.act(self.out(torch.nn.functional.elu(x).transpose(1, 2))).squeeze(-1)


class VolumeRenderer(nn.Module):
    """Predicts density and colour of every sample and composites them.

    ``in_ch`` = channels of a view token input (volume + 2D features + RGB).
    """

    def __init__(self, cfg: RendererConfig, in_ch: int, dir_ch: int = 4) -> None:
        super().__init__()
        d = cfg.d_model
        self.cfg = cfg
        self.view_embed = mlp([in_ch, d], last_act=True)
        self.global_embed = mlp([2 * in_ch, d, d], last_act=True)
        self.transformer = ViewTransformer(d, cfg.num_heads, cfg.num_layers, cfg.ff_mult)
        self.density = RayDensity(d, cfg.density_channels, cfg.density_blocks)
        self.colour = mlp([d + dir_ch, d, 16, 1])

    def forward(self, view_in: Tensor, rgb: Tensor, dirs: Tensor, visible: Tensor,
                in_image: Tensor, depths: Tensor, near: Tensor, far: Tensor,
                keep: Tensor | None = None) -> dict[str, Tensor]:
        """Shapes (P = N * S samples): ``view_in`` [P, V, in_ch], ``rgb`` [P, V, 3], ``dirs``
        [P, V, 4], ``visible``/``in_image`` [P, V] bool, ``depths`` [N, S] m, ``near``/``far``
        [N] m. ``keep`` [V] bool: the views that lend colour wherever one of them may
        (:func:`prefer_views`, ``renderer.colour_views``); the density uses every visible view.
        Returns ``rgb`` [N, 3], ``depth`` [N] (expected depth, weights normalised), ``acc``
        [N], ``weights`` [N, S], ``sigma`` [N, S], ``alpha`` [N, S]."""
        N, S = depths.shape
        P, V, _ = view_in.shape
        mean, var = masked_mean_var(view_in, visible)
        tokens = torch.cat([self.global_embed(torch.cat([var, mean], -1))[:, None],
                            self.view_embed(view_in)], 1)                    # [P, V+1, d]
        key_mask = torch.cat([torch.ones_like(visible[:, :1]), visible], 1)
        tokens = self.transformer(tokens, key_mask)

        span = (far - near).float().clamp(min=1e-6)[:, None]
        tn = (depths.float() - near.float()[:, None]) / span
        dt = torch.cat([depths.float().diff(dim=-1), torch.zeros_like(depths[:, :1].float())], -1)
        pos = torch.stack([tn, dt / span * S], -1)
        sigma = self.density(tokens[:, 0].reshape(N, S, -1), pos)            # [N, S]

        logits = self.colour(torch.cat([tokens[:, 1:], dirs.to(tokens.dtype)], -1)).squeeze(-1)
        cm = (colour_mask(visible, in_image) if keep is None else
              colour_mask(prefer_views(visible, keep), prefer_views(in_image, keep)))
        w_view = torch.softmax(logits.float().masked_fill(~cm, float("-inf")), dim=-1)
        colour = (w_view[..., None] * rgb.float()).sum(1).reshape(N, S, 3)

        alpha = alpha_from_density(sigma, depths, self.cfg.alpha_mode)
        weights = composite(alpha)
        acc = weights.sum(-1)
        rgb_out = (weights[..., None] * colour).sum(1)
        if self.cfg.normalise_colour:
            rgb_out = rgb_out / acc.clamp(min=1e-6)[:, None]
            rgb_out = torch.where(acc[:, None] > 1e-6, rgb_out, colour.mean(1))
        depth = (weights * depths.float()).sum(-1) / acc.clamp(min=1e-6)
        depth = torch.where(acc > 1e-6, depth, depths.float()[:, -1])
        return {"rgb": rgb_out, "depth": depth, "acc": acc, "weights": weights,
                "sigma": sigma.float(), "alpha": alpha}


def colour_view_mask(enc: SourceEncoding, c2w: Tensor, k: int) -> Tensor | None:
    """[V] bool: the ``k`` source views nearest the target ``c2w`` [4, 4]
    (:func:`geometry.nearest_views`), or None when every view lends colour (``k`` 0 or >= V)."""
    if k <= 0 or k >= len(enc):
        return None
    keep = torch.zeros(len(enc), dtype=torch.bool, device=enc.c2w.device)
    keep[nearest_views(c2w.to(enc.c2w).float(), enc.c2w, k)] = True
    return keep


def render_samples(renderer: VolumeRenderer, enc: SourceEncoding, origins: Tensor, dirs: Tensor,
                   depths: Tensor, near: Tensor, far: Tensor, cfg: RendererConfig,
                   spacing: PlaneSpacing, keep: Tensor | None = None) -> dict[str, Tensor]:
    """Gather the view tokens of every sample and run ``renderer`` (paper Eq. 9-11).

    Rays ``origins``/``dirs`` [N, 3] (``geometry.camera_rays``: ``t`` is z-depth), sample
    ``depths`` [N, S] m, ``near``/``far`` [N] m; ``cfg`` the occlusion test's thresholds,
    ``spacing`` the cost volume's plane spacing; ``keep`` [V] bool: the views that lend colour
    wherever one of them may (:func:`colour_view_mask`); density and visibility use every view.
    Returns :meth:`VolumeRenderer.forward`'s dict plus ``visible`` [N, S, V] bool (in the image
    and not occluded) and ``uv`` [V, N * S, 2] (the samples' pixels in each view, full
    resolution)."""
    N, S = depths.shape
    pts = (origins[:, None] + depths[..., None] * dirs[:, None]).reshape(N * S, 3)
    uv, z, in_image = project_to_views(pts, enc)
    visible = in_image & ~occlusion_mask(enc, uv, z, cfg.occlusion_threshold, cfg.occlusion_min,
                                        spacing)
    vol = sample_volumes(enc, uv, z, spacing)
    f2d = sample_maps(enc.feature, uv, enc.geometry_level)
    rgb = sample_maps(enc.image, uv)
    dfeat = direction_features(pts, dirs.repeat_interleave(S, 0), enc)
    view_in = torch.cat([vol.to(f2d.dtype), f2d, rgb.to(f2d.dtype)], -1)
    out = renderer(view_in, rgb, dfeat, visible, in_image, depths, near, far, keep)
    out["visible"] = visible.reshape(N, S, -1)
    out["uv"] = uv
    return out
