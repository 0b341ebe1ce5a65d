"""Label vote: a 2D segmenter's per-pixel class ids carried into a novel view (not in the paper;
docs/METHOD.md "Labels of an upstream segmenter").

For each target pixel the surface point at the target depth D_T is projected into every source
view, and the occlusion test of the semantic renderer
(:func:`~gsnerf_ros.model.semantic_renderer.surface_visibility`) says which views see it. Each
view that sees it looks its label up (nearest pixel of its label map, which may have another size
than the encoding: the map covers the same image) and votes for it with the weight
``visibility x confidence x view weight``; the view weight is ``exp(-theta^2 / 2 sigma^2)`` of the
angle ``theta`` between the target ray and the view's ray to the point (``angle_sigma_deg``;
0 = every view weighs 1). Unknown ids (< 0) vote for nothing. The class with the largest summed
weight wins (ties: the smallest id); its share of the summed weight is the confidence (1 when
the views agree, 0 where no view votes, and then the label is -1).

D_T is least reliable on thin and small objects (a table leg whose depth the cost volume missed
puts the point on the wall behind it). With ``depth_search`` > 0 the vote is also taken at the
depths ``D_T x s`` for scales ``s`` spread geometrically over ``[1 / (1 + r), 1 + r]``
(:func:`depth_scales`), and each pixel keeps the hypothesis whose winning class gathers the most
weight: the depth at which the views that see the point agree on its label, as a photo-
consistency test does with colours. D_T is tried first and is left only for a strictly larger
agreement, so where the views agree at D_T nothing changes.

Ids are the segmenter's own (any non-negative integers): the vote compares ids between views,
it never needs the number of classes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from gsnerf_ros.geometry import camera_rays, pixel_grid
from gsnerf_ros.model.config import RendererConfig
from gsnerf_ros.model.cost_volume import PlaneSpacing
from gsnerf_ros.model.encoding import SourceEncoding
from gsnerf_ros.model.semantic_renderer import surface_visibility

__all__ = ["LabelVote", "lookup_labels", "tally_votes", "view_angle_weight", "vote_labels",
           "depth_scales", "UNKNOWN", "SEMANTIC_SOURCES"]

SEMANTIC_SOURCES = ("model", "labels")
"""Where rendered classes come from (``semantic.source``, gsnerf-eval): the model's, or a 2D
segmenter's labels voted across the source views."""

UNKNOWN = -1
"""Label of a pixel no view votes for (and of unknown pixels in a source's label map)."""


@dataclass
class LabelVote:
    """The vote in a target view. ``labels`` [H, W] int64 (the sources' ids, :data:`UNKNOWN`
    where nobody votes); ``confidence`` [H, W] in [0, 1] (the winner's share of the weight);
    ``voters`` [H, W] int64 (views whose vote counted)."""

    labels: Tensor
    confidence: Tensor
    voters: Tensor


def lookup_labels(label_map: Tensor, confidence: Tensor | None, uv: Tensor, height: int,
                  width: int) -> tuple[Tensor, Tensor]:
    """Nearest-pixel label and confidence at pixels ``uv`` [P, 2] of a ``height`` x ``width``
    image (integer pixel centres) in a label map of the same image at any size.

    ``label_map`` [h, w] int (< 0 = unknown), ``confidence`` [h, w] in [0, 1] or None (= 1).
    Returns ids [P] int64 and confidence [P] float32. The map's pixel j covers the image's
    ``[j, j + 1) * width / w`` (the half-pixel convention of ``geometry.scale_intrinsics``)."""
    h, w = label_map.shape[-2:]
    col = ((uv[:, 0].float() + 0.5) * (w / width)).floor().long().clamp(0, w - 1)
    row = ((uv[:, 1].float() + 0.5) * (h / height)).floor().long().clamp(0, h - 1)
    flat = row * w + col
    ids = label_map.reshape(-1).long()[flat]
    if confidence is None:
        conf = torch.ones(flat.shape, dtype=torch.float32, device=uv.device)
    else:
        if confidence.shape[-2:] != (h, w):
            raise ValueError(f"confidence map {tuple(confidence.shape)} does not match its "
                             f"label map {tuple(label_map.shape)}")
        conf = confidence.reshape(-1).float()[flat].clamp(0, 1)
    return ids, conf


def view_angle_weight(points: Tensor, ray_dirs: Tensor, enc: SourceEncoding,
                      sigma_deg: float) -> Tensor:
    """``exp(-theta^2 / (2 sigma^2))`` of the angle between each target ray ``ray_dirs``
    [P, 3] and each source's ray to ``points`` [P, 3] -> [P, V]; all ones for ``sigma_deg`` 0."""
    V = len(enc)
    if sigma_deg <= 0:
        return torch.ones(points.shape[0], V, device=points.device)
    r = F.normalize(ray_dirs.float(), dim=-1)[:, None]                       # [P, 1, 3]
    s = F.normalize(points.float()[:, None] - enc.c2w[None, :, :3, 3].float(), dim=-1)
    theta = torch.acos((r * s).sum(-1).clamp(-1.0, 1.0))                    # [P, V] rad
    sigma = math.radians(sigma_deg)
    return torch.exp(-0.5 * (theta / sigma) ** 2)


def tally_votes(ids: Tensor, weights: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The weighted vote of V views at P points.

    ``ids`` [P, V] int64 (< 0 votes for nothing), ``weights`` [P, V] >= 0. Returns (label [P]
    int64, :data:`UNKNOWN` where the total weight is 0; share [P] of the total weight won by it;
    voters [P] int64, views with weight > 0). Ties go to the smallest id."""
    w = torch.where(ids >= 0, weights.float().clamp(min=0), torch.zeros_like(weights.float()))
    same = ids[:, :, None] == ids[:, None, :]                                 # [P, V, V]
    score = (same.float() * w[:, None, :]).sum(-1)                            # [P, V]
    score = torch.where(w > 0, score, torch.full_like(score, -1.0))
    best = score.max(-1, keepdim=True).values
    tol = 1e-6 * best.abs().clamp(min=1.0)
    big = torch.iinfo(torch.int64).max
    cand = torch.where(score >= best - tol, ids, torch.full_like(ids, big))
    label = cand.min(-1).values
    total = w.sum(-1)
    voted = total > 0
    label = torch.where(voted, label, torch.full_like(label, UNKNOWN))
    share = torch.where(voted, best[:, 0].clamp(min=0) / total.clamp(min=1e-12),
                        torch.zeros_like(total))
    return label, share.clamp(0, 1), (w > 0).sum(-1)


def depth_scales(search: float, steps: int = 9) -> list[float]:
    """Depth hypotheses of the vote as scales of D_T: 1 first, then ``steps - 1`` more spread
    geometrically over ``[1 / (1 + search), 1 + search]``, nearest to 1 first; ``[1.0]`` for
    ``search`` 0."""
    if search < 0:
        raise ValueError(f"depth search must be >= 0, got {search}")
    if search == 0 or steps < 2:
        return [1.0]
    half = max(1, (steps - 1) // 2)
    logs = [math.log1p(search) * k / half for k in range(1, half + 1)]
    out = [1.0]
    for lg in logs:
        out += [math.exp(-lg), math.exp(lg)]
    return out


def vote_labels(enc: SourceEncoding, label_maps: Sequence[Tensor | None],
                confidences: Sequence[Tensor | None] | None, K: Tensor, c2w: Tensor,
                target_depth: Tensor, target_valid: Tensor, cfg: RendererConfig,
                spacing: PlaneSpacing, angle_sigma_deg: float = 0.0,
                depth_search: float = 0.0, chunk: int = 65536) -> LabelVote:
    """The sources' labels voted at the surface point of every pixel of a target view.

    ``enc``: V source views (encoding size H_s x W_s); ``label_maps`` V maps [h_v, w_v] int
    (the segmenter's ids, < 0 unknown; None: the view has no labels and never votes), in the
    order of ``enc``; ``confidences`` V maps of the same sizes in [0, 1] or None (= 1).
    ``K`` [3, 3] px, ``c2w`` [4, 4] of the target; ``target_depth`` / ``target_valid`` [H, W]
    D_T in metres and its validity (pixels without a valid D_T get no vote).
    ``cfg`` / ``spacing``: the occlusion test's settings (``RendererConfig.occlusion_*``, the
    cost volume's plane spacing); ``angle_sigma_deg``: the view weight (0 = off);
    ``depth_search``: relative range of the depth hypotheses around D_T (0 = D_T alone;
    module docstring)."""
    V = len(enc)
    if len(label_maps) != V:
        raise ValueError(f"{len(label_maps)} label maps for {V} source views")
    confs = list(confidences) if confidences is not None else [None] * V
    if len(confs) != V:
        raise ValueError(f"{len(confs)} confidence maps for {V} source views")
    H, W = target_depth.shape
    dev = enc.image.device
    K, c2w = K.to(dev).float(), c2w.to(dev).float()
    maps = [None if m is None else m.to(dev) for m in label_maps]
    confs = [None if c is None else c.to(dev) for c in confs]
    uv_all = pixel_grid(H, W, dev).reshape(-1, 2)
    td_all, tdv_all = target_depth.to(dev).reshape(-1).float(), target_valid.to(dev).reshape(-1)
    labels, shares, voters = [], [], []
    scales = depth_scales(depth_search)
    for s in range(0, uv_all.shape[0], chunk):
        uv, td, tdv = uv_all[s:s + chunk], td_all[s:s + chunk], tdv_all[s:s + chunk]
        origins, dirs = camera_rays(uv, K, c2w)
        best: tuple[Tensor, Tensor, Tensor, Tensor] | None = None
        for scale in scales:
            lab, share, n, won = _vote_at(enc, maps, confs, origins, dirs, td * scale, tdv, cfg,
                                          spacing, angle_sigma_deg)
            if best is None:
                best = (lab, share, n, won)
                continue
            better = won > best[3] * (1 + 1e-6) + 1e-9
            best = tuple(torch.where(better, new, old)                     # type: ignore
                         for new, old in zip((lab, share, n, won), best))
        assert best is not None
        labels.append(best[0])
        shares.append(best[1])
        voters.append(best[2])
    return LabelVote(labels=torch.cat(labels).reshape(H, W),
                     confidence=torch.cat(shares).reshape(H, W),
                     voters=torch.cat(voters).reshape(H, W))


def _vote_at(enc: SourceEncoding, maps: list[Tensor | None], confs: list[Tensor | None],
             origins: Tensor, dirs: Tensor, depth: Tensor, valid: Tensor, cfg: RendererConfig,
             spacing: PlaneSpacing, angle_sigma_deg: float
             ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The vote at the points ``origins + depth * dirs`` ([P, 3], ``depth`` [P] m, ``valid``
    [P] bool): (label [P], share [P], voters [P], the winner's weight [P])."""
    V = len(enc)
    dev = origins.device
    uv_s, vis = surface_visibility(enc, origins, dirs, depth, cfg, spacing)     # [V,P,2], [P,V]
    vis = vis & valid[:, None]
    P = origins.shape[0]
    ids = torch.full((P, V), UNKNOWN, dtype=torch.int64, device=dev)
    w = torch.zeros(P, V, device=dev)
    for v in range(V):
        if maps[v] is None:
            continue
        ids[:, v], w[:, v] = lookup_labels(maps[v], confs[v], uv_s[v], enc.height, enc.width)
    w = w * vis.float()
    if angle_sigma_deg > 0:
        w = w * view_angle_weight(origins + depth[:, None] * dirs, dirs, enc, angle_sigma_deg)
    lab, share, n = tally_votes(ids, w)
    total = torch.where(ids >= 0, w, torch.zeros_like(w)).sum(-1)
    return lab, share, n, share * total
