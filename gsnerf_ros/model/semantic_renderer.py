"""Semantic renderer (paper Eq. 12-14).

For each ray one surface point at the estimated target depth D_T: its semantic features are
gathered from every source view (k x k neighbourhood), a global semantic token is built from the
masked mean/variance across the views that see the point, a transformer attends across views
(masked views are never keys; the global token is kept), and a head maps the global token plus
the masked mean of the view tokens to class logits. Using a pooled head (instead of the released
code's flatten of all 9 tokens) makes it work for any number of source views.

With ``label_skip`` (not in the paper; docs/METHOD.md) the masked mean of the source views' 2D
log-probabilities at the point's projection is added to the logits, so the renderer learns a
correction to the vote of the 2D segmenter instead of the whole class decision.

With ``view_geometry`` (not in the paper; docs/METHOD.md) each view token also carries how that
view sees the point (:func:`surface_geometry`, and the 2D segmenter's entropy there), and a
head on the view tokens gives each view a learnt factor on its weight in that vote; both start
as no-ops.

``volume`` mode (ablation, paper Table A3 model C): the same network predicts logits at every
sample and the logits are composited with the volume-rendering weights. The ``released``
sampling mode (``ModeSpec.semantics_at_samples``) gathers the features at every sample and uses
the one on D_T.

:func:`render_semantics` gathers what the network consumes (the surface point at D_T, its
occlusion test in every view, the semantic features and 2D logits at the chosen points;
:mod:`.features`), picks the mode and runs it.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gsnerf_ros.geometry import proximity_weights
from gsnerf_ros.model.attention import ViewTransformer, masked_mean_var, mlp
from gsnerf_ros.model.config import RendererConfig, SemanticConfig
from gsnerf_ros.model.cost_volume import PlaneSpacing
from gsnerf_ros.model.encoding import SourceEncoding
from gsnerf_ros.model.features import (direction_features, occlusion_mask, project_to_views,
                                       sample_maps, semantic_neighbourhood)

__all__ = ["SemanticRenderer", "SEMANTIC_MODES", "surface_visibility", "surface_geometry",
           "render_semantics", "vote_weights", "GEOMETRY_FEATURES"]

GEOMETRY_FEATURES = 7
"""Per view and point with ``semantic.view_geometry``: :func:`surface_geometry`'s 6 and the 2D
segmenter's normalised entropy at the projection."""
_VOTE_FACTOR_LOG_MAX = 4.0      # the learnt vote factor stays within e^-4 .. e^4

SEMANTIC_MODES = ("surface", "volume")
"""``semantic.mode`` / ``render(semantic_mode=...)``: one point at D_T, or composited samples."""


class SemanticRenderer(nn.Module):
    """[P, V, in_ch] semantic features + [P, V] mask -> [P, C] logits (no output activation)."""

    def __init__(self, cfg: SemanticConfig, in_ch: int, num_classes: int) -> None:
        super().__init__()
        d = cfg.d_model
        self.label_skip = cfg.label_skip
        self.view_embed = mlp([in_ch, d], last_act=True)
        self.global_embed = mlp([2 * in_ch, d, d], last_act=True)
        self.transformer = ViewTransformer(d, cfg.num_heads, cfg.num_layers, cfg.ff_mult)
        self.head = mlp([2 * d, 2 * d, num_classes])
        self.view_geometry = cfg.view_geometry
        if self.view_geometry:
            self.geometry_embed = mlp([GEOMETRY_FEATURES, d, d])
            self.vote_factor = nn.Linear(d, 1)
            for layer in (self.geometry_embed[-1], self.vote_factor):   # start as no-ops
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)

    def forward(self, feats: Tensor, mask: Tensor, logits_2d: Tensor | None = None,
                vote_weights: Tensor | None = None, geometry: Tensor | None = None) -> Tensor:
        """``feats`` [P, V, in_ch], ``mask`` [P, V] bool (view sees the point), ``logits_2d``
        [P, V, C] the 2D segmenter's logits at the projections (used with ``label_skip``),
        ``vote_weights`` [V] > 0 the views' weights in that vote (None: alike), ``geometry``
        [P, V, 6] :func:`surface_geometry` (needed with ``view_geometry``, else unused)."""
        if self.label_skip and logits_2d is None:
            raise ValueError("semantic.label_skip needs the 2D logits at the projections")
        logp = torch.log_softmax(logits_2d.float(), -1) if self.label_skip else None
        mean, var = masked_mean_var(feats, mask)
        view_tokens = self.view_embed(feats)
        if self.view_geometry:
            if geometry is None:
                raise ValueError("semantic.view_geometry needs the surface point's geometry "
                                 "in every view (surface_geometry)")
            entropy = -(logp.exp() * logp).sum(-1, keepdim=True) / math.log(logp.shape[-1])
            g = torch.cat([geometry.float(), entropy], -1).to(view_tokens.dtype)
            view_tokens = view_tokens + self.geometry_embed(g)
        tokens = torch.cat([self.global_embed(torch.cat([var, mean], -1))[:, None],
                            view_tokens], 1)
        key_mask = torch.cat([torch.ones_like(mask[:, :1]), mask], 1)
        out = self.transformer(tokens, key_mask)
        m = mask.to(out.dtype)[..., None]
        pooled = (out[:, 1:] * m).sum(1) / m.sum(1).clamp(min=1.0)
        logits = self.head(torch.cat([out[:, 0], pooled], -1))
        if not self.label_skip:
            return logits
        w = m.float()
        if vote_weights is not None:
            w = w * vote_weights.float()[None, :, None]
        if self.view_geometry:
            a = self.vote_factor(out[:, 1:]).float().clamp(-_VOTE_FACTOR_LOG_MAX,
                                                           _VOTE_FACTOR_LOG_MAX)
            w = w * a.exp()
        vote = (logp * w).sum(1) / w.sum(1).clamp(min=1e-6)
        return logits + vote.to(logits.dtype)


def surface_visibility(enc: SourceEncoding, origins: Tensor, dirs: Tensor, depth: Tensor,
                       cfg: RendererConfig, spacing: PlaneSpacing) -> tuple[Tensor, Tensor]:
    """The surface point at ``depth`` [N] m (D_T) of each ray (``origins``/``dirs`` [N, 3]) in
    every source view: ``uv`` [V, N, 2] px and ``visible`` [N, V] bool (inside the image and
    not behind the view's surface: ``cfg.occlusion_threshold``/``occlusion_min``)."""
    surf = origins + depth[:, None] * dirs
    uv, z, inside = project_to_views(surf, enc)
    return uv, inside & ~occlusion_mask(enc, uv, z, cfg.occlusion_threshold, cfg.occlusion_min,
                                        spacing)


def surface_geometry(enc: SourceEncoding, origins: Tensor, dirs: Tensor, depth: Tensor,
                     uv: Tensor) -> Tensor:
    """How each source view sees the surface point at ``depth`` [N] m of each target ray
    (``origins``/``dirs`` [N, 3], unit ``dirs``; ``uv`` [V, N, 2] its projections):
    [N, V, 6] = the target-minus-source unit ray direction (3) and their dot product
    (:func:`features.direction_features`), the relative depth residual (z_view - d_view) /
    z_view against the view's own depth map at the projection (> 0: behind the surface that
    view sees; clamped to [-1, 1]) and log(source distance / target distance) to the point
    (clamped to [-3, 3])."""
    surf = origins + depth[:, None] * dirs
    direction = direction_features(surf, dirs, enc)                        # [N, V, 4]
    c_src = enc.c2w[:, :3, 3].float()                                       # [V, 3]
    rel = surf.float()[:, None] - c_src[None]                               # [N, V, 3]
    z = (rel * enc.c2w[None, :, :3, 2].float()).sum(-1)                     # [N, V] m
    d_src = sample_maps(enc.depth[:, None].float(), uv, enc.depth_map_level)[..., 0]
    residual = ((z - d_src) / z.abs().clamp(min=1e-3)).nan_to_num(1.0).clamp(-1.0, 1.0)
    dist = torch.log(rel.norm(dim=-1).clamp(min=1e-3)
                     / (depth.float()[:, None] * dirs.float().norm(dim=-1, keepdim=True)
                        ).clamp(min=1e-3)).clamp(-3.0, 3.0)
    return torch.cat([direction, residual[..., None], dist[..., None]], -1).nan_to_num(0.0)


def render_semantics(renderer: SemanticRenderer, enc: SourceEncoding, cfg: SemanticConfig,
                     mode: str, at_samples: bool, surface_uv: Tensor, surface_visible: Tensor,
                     samples: dict[str, Tensor], surface_index: Tensor,
                     vote_weights: Tensor | None = None,
                     geometry: Tensor | None = None) -> Tensor:
    """Class logits [N, C] of N rays (paper Eq. 12-14).

    ``mode``: ``surface`` (the point at D_T: ``surface_uv`` [V, N, 2] and ``surface_visible``
    [N, V] from :func:`surface_visibility`) or ``volume`` (every sample, composited with the
    volume weights). ``at_samples`` (``ModeSpec.semantics_at_samples``, surface mode): the
    features are gathered at every sample and the one at ``surface_index`` [N] (the sample on
    D_T) is used. ``samples``: :func:`.volume_renderer.render_samples`' output (``uv``
    [V, N * S, 2], ``visible`` [N, S, V], ``weights`` [N, S]). ``vote_weights`` [V]: the views'
    weights in the ``label_skip`` vote (:func:`vote_weights`; None: alike). ``geometry``
    [N, V, 6]: :func:`surface_geometry` of the surface point (``semantic.view_geometry``)."""
    if mode not in SEMANTIC_MODES:
        raise ValueError(f"semantic_mode must be surface | volume, got {mode!r}")
    if renderer.view_geometry and (mode == "volume" or at_samples):
        raise ValueError("semantic.view_geometry renders the surface point only: not with "
                         "semantic_mode volume or a sampling mode that gathers at the samples")
    skip = cfg.label_skip
    V = len(enc)
    if mode == "volume" or at_samples:
        N, S = samples["weights"].shape
        uv = samples["uv"]
        feats = semantic_neighbourhood(enc, uv, cfg.neighbourhood).reshape(N, S, V, -1)
        l2d = (sample_maps(enc.semantic_logits, uv, enc.semantic_level).reshape(N, S, V, -1)
               if skip else None)
        if mode == "volume":
            lg = renderer(feats.reshape(N * S, V, -1), samples["visible"].reshape(N * S, V),
                          l2d.reshape(N * S, V, -1) if l2d is not None else None,
                          vote_weights).reshape(N, S, -1)
            return (samples["weights"][..., None] * lg.float()).sum(1)
        rows = torch.arange(N, device=surface_index.device)
        idx = surface_index
        return renderer(feats[rows, idx], samples["visible"][rows, idx],
                        l2d[rows, idx] if l2d is not None else None, vote_weights)
    sf = semantic_neighbourhood(enc, surface_uv, cfg.neighbourhood)
    l2d = sample_maps(enc.semantic_logits, surface_uv, enc.semantic_level) if skip else None
    return renderer(sf, surface_visible, l2d, vote_weights, geometry)


def vote_weights(enc: SourceEncoding, c2w: Tensor, how: str) -> Tensor | None:
    """The source views' weights [V] in the ``label_skip`` vote for a target at ``c2w``
    [4, 4] (``semantic.vote_weights``): None for ``mean``; for ``proximity``
    :func:`geometry.proximity_weights`, 1 / (pose distance + 0.05 m), as the reprojection
    baseline weighs its vote (train/baseline.py)."""
    if how == "mean":
        return None
    if how != "proximity":
        raise ValueError(f"semantic.vote_weights must be mean | proximity, got {how!r}")
    return proximity_weights(enc.c2w.float(), c2w.float())
