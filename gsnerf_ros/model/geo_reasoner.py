"""Semantic Geo-Reasoner (paper §3.1): encode source views into a cacheable encoding.

Each view goes through the 2D encoder (feature pyramid, semantic feature map, 2D semantic
logits) and the cascade cost volume against its neighbour views (depth per level and the
regularised 3D volume features); both work on the pyramid level of the images that
``GSNeRFConfig.geometry_max_pixels`` allows, while the encoding keeps the full-resolution images
and intrinsics for rendering. The semantic maps may be at a finer level
(``GSNeRFConfig.semantic_max_pixels``), and a second level may be fused with it
(``GSNeRFConfig.semantic_fuse_max_pixels``: :func:`semantic_maps`). The views' cost volumes are
regularised as one batch.

Usage (what :meth:`GSNeRF.encode_sources` / :meth:`GSNeRF.encode_view` call)::

    enc = encode_sources(model.encoder, model.cost_volume, model.config, images, K, c2w, near, far)
"""

from __future__ import annotations

import torch
from torch import Tensor

from gsnerf_ros.geometry import (level_intrinsics, nearest_views, scene_depth_prior,
                                 triangulation_neighbours)
from gsnerf_ros.model.config import GSNeRFConfig
from gsnerf_ros.model.cost_volume import CascadeCostVolume, CascadeInput
from gsnerf_ros.model.depth_prior import canonical_to_metric
from gsnerf_ros.model.encoder import EncoderOutput, FeatureEncoder
from gsnerf_ros.model.encoding import SourceEncoding, ViewEncoding
from gsnerf_ros.model.pyramid import (geometry_level, image_level, image_pyramid,
                                      level_upsample, semantic_level, semantic_levels)

__all__ = ["check_views", "per_view_range", "geometry_inputs", "semantic_maps", "encoder_outputs",
           "depth_prior", "depth_prior_level", "encode_views",
           "encode_view", "encode_sources", "source_neighbours"]


def check_views(images: Tensor, K: Tensor, c2w: Tensor, what: str) -> None:
    """``ValueError`` unless ``images`` [V, 3, H, W], ``K`` [V, 3, 3] and ``c2w`` [V, 4, 4]."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"{what} images must be [V,3,H,W], got {tuple(images.shape)}")
    V = images.shape[0]
    if K.shape != (V, 3, 3) or c2w.shape != (V, 4, 4):
        raise ValueError(f"{what}: K must be [{V},3,3] and c2w [{V},4,4], got "
                         f"{tuple(K.shape)} and {tuple(c2w.shape)}")


def per_view_range(x: float | Tensor, V: int, device: torch.device) -> Tensor:
    """A depth bound (m) as a [V] float32 tensor: a float for every view or one value each."""
    t = torch.as_tensor(x, dtype=torch.float32, device=device).reshape(-1)
    if t.numel() == 1:
        t = t.expand(V)
    if t.numel() != V:
        raise ValueError(f"near/far must be a float or have one value per view ({V}), got {t.numel()}")
    return t.clone()


def semantic_maps(encoder: FeatureEncoder, config: GSNeRFConfig, images: Tensor,
                  pyramid: list[Tensor] | None = None) -> tuple[Tensor, Tensor, int]:
    """The 2D semantic maps of full-resolution ``images`` [N, 3, H, W]: the semantic feature
    [N, Cs, h_s, w_s] and logits [N, C, h_s, w_s] at each level of
    ``model.pyramid.semantic_levels`` (``semantic_max_pixels``, ``semantic_fuse_max_pixels``),
    the coarser ones resampled onto the finest level s (:func:`level_upsample`) and the levels
    averaged (the logit head is affine, so the fused logits are the head of the fused
    feature); and s. One level: the encoder's maps of that level's image, unchanged.
    ``pyramid``: the images' :func:`image_pyramid` when the caller has it (at least to the
    coarsest semantic level), so no level is blurred twice."""
    return _semantic_maps(encoder, config, images, pyramid)[:3]


def _semantic_maps(encoder: FeatureEncoder, config: GSNeRFConfig, images: Tensor,
                   pyramid: list[Tensor] | None = None, prior_level: int | None = None
                   ) -> tuple[Tensor, Tensor, int, Tensor | None]:
    """:func:`semantic_maps`, and with ``prior_level`` (one of the semantic levels) the
    encoder's depth prior of that level's images from the same trunk pass
    (``semantic_maps_and_depth_prior``), else None."""
    H, W = (int(x) for x in images.shape[-2:])
    levels = semantic_levels(H, W, config.semantic_max_pixels, config.semantic_fuse_max_pixels,
                             config.geometry_max_pixels)
    if pyramid is None:
        pyramid = image_pyramid(images, levels[-1] + 1)
    feats, logits, prior = [], [], None
    for lvl in levels:
        if lvl == prior_level:
            f, lg, prior = encoder.semantic_maps_and_depth_prior(pyramid[lvl])
        else:
            f, lg = encoder.semantic_maps(pyramid[lvl])
        feats.append(level_upsample(f, lvl, levels[0], H, W))
        logits.append(level_upsample(lg, lvl, levels[0], H, W))
    if len(levels) == 1:
        return feats[0], logits[0], levels[0], prior
    return torch.stack(feats).mean(0), torch.stack(logits).mean(0), levels[0], prior


def encoder_outputs(encoder: FeatureEncoder, config: GSNeRFConfig, images: Tensor, K: Tensor,
                    semantic_views: int | None = None) -> tuple[EncoderOutput, Tensor, Tensor]:
    """The 2D encoder's maps of ``images`` [V, 3, H, W] with ``K`` [V, 3, 3]: the feature pyramid
    at the geometry level g (:func:`geometry_inputs`) and the semantic feature and logits at the
    semantic level s (:func:`semantic_maps`, s <= g), of the first ``semantic_views`` views
    (default all). One encoder pass on the level-g images when the semantics are one pass at
    g; otherwise a pyramid pass on them and the semantic pass(es), every level's images blurred
    once (:func:`image_pyramid`; the level-g images are the semantic levels' taken further, the
    same values as directly).
    With ``cost_volume.depth_prior_weight`` > 0 the maps carry the single-view depth prior of
    the same views (:func:`depth_prior`).
    Returns the maps, the level-g images [V, 3, h_g, w_g] and their intrinsics [V, 3, 3]."""
    H, W = (int(x) for x in images.shape[-2:])
    g = geometry_level(H, W, config.geometry_max_pixels)
    levels = semantic_levels(H, W, config.semantic_max_pixels, config.semantic_fuse_max_pixels,
                             config.geometry_max_pixels)
    want_prior = config.cost_volume.depth_prior_weight > 0
    n = semantic_views
    if levels == (g,) and semantic_views is None:
        geo_images, geo_K = geometry_inputs(images, K, config.geometry_max_pixels)
        out = encoder(geo_images)
        if want_prior:               # the prior's level is the one semantic level, g
            out.depth_prior = canonical_to_metric(encoder.depth_prior_maps(geo_images), K, W)
        return out, geo_images, geo_K
    pyramid = image_pyramid(images, g + 1)         # every semantic level is at most g
    geo_images, geo_K = pyramid[g], (level_intrinsics(K, g) if g else K)
    # the prior's level is a semantic level: its trunk pass serves both
    sem_feature, sem_logits, _, prior = _semantic_maps(
        encoder, config, images[:n], [x[:n] for x in pyramid],
        depth_prior_level(config, H, W) if want_prior else None)
    out = EncoderOutput(pyramid=encoder.feature_pyramid(geo_images),
                        semantic_feature=sem_feature, semantic_logits=sem_logits)
    if want_prior:
        assert prior is not None
        out.depth_prior = canonical_to_metric(prior, K[:n], W)
    return out, geo_images, geo_K


def depth_prior_level(config: GSNeRFConfig, height: int, width: int) -> int:
    """The pyramid level of an ``height x width`` image that the depth head runs on: the 2D
    segmenter's (``semantic_max_pixels``: the scale the head is trained at,
    train/depth_prior_objective.py), always one of the semantic levels."""
    return semantic_level(height, width, config.semantic_max_pixels, config.geometry_max_pixels)


def depth_prior(encoder: FeatureEncoder, config: GSNeRFConfig, images: Tensor,
                K: Tensor) -> Tensor:
    """The single-view depth prior of ``images`` [N, 3, H, W] with intrinsics ``K`` [N, 3, 3]:
    the encoder's depth head (``encoder.depth_prior``) on the images at
    :func:`depth_prior_level`, in metres: [N, 2, h, w] (log depth m, log std;
    :func:`~gsnerf_ros.model.depth_prior.canonical_to_metric`)."""
    H, W = (int(x) for x in images.shape[-2:])
    lvl = depth_prior_level(config, H, W)
    x = image_level(images, lvl) if lvl else images
    return canonical_to_metric(encoder.depth_prior_maps(x), K, W)


def geometry_inputs(images: Tensor, K: Tensor, max_pixels: int) -> tuple[Tensor, Tensor]:
    """Images [V, 3, h_g, w_g] and intrinsics [V, 3, 3] the Geo-Reasoner works on: pyramid
    level ``geometry_level(H, W, max_pixels)`` of ``images`` [V, 3, H, W] (anti-aliased, on the
    network's own pixel grid) and ``K`` [V, 3, 3] scaled to it."""
    H, W = images.shape[-2:]
    g = geometry_level(int(H), int(W), max_pixels)
    if g == 0:
        return images, K
    return image_level(images, g), level_intrinsics(K, g)


def encode_views(cost_volume: CascadeCostVolume, feats: EncoderOutput, nbrs: list[Tensor],
                 images: Tensor, K: Tensor, c2w: Tensor, near: Tensor, far: Tensor,
                 near_m: list[float], far_m: list[float], geo_images: Tensor,
                 geo_K: Tensor) -> list[ViewEncoding]:
    """View i against views ``nbrs[i]`` ([M] indices), for the first ``len(nbrs)`` views;
    ``feats`` the encoder's output for all V views (:func:`encoder_outputs`: the pyramid of
    ``geo_images``, the semantic maps of at least the first ``len(nbrs)`` views, at the
    semantic level); ``near``/``far`` [V] tensors
    (stored in the encoding) and ``near_m``/``far_m`` the same ranges as Python floats (m), so
    the plane sweep needs no host-device synchronisation. ``images``/``K`` at full resolution
    (kept for rendering), ``geo_images``/``geo_K`` the Geo-Reasoner's inputs
    (:func:`geometry_inputs`). The views' cost volumes are regularised as one batch
    (:meth:`CascadeCostVolume.forward_views`)."""
    inputs = [CascadeInput([p[i] for p in feats.pyramid],
                           [p.index_select(0, nb) for p in feats.pyramid], geo_K[i],
                           geo_K.index_select(0, nb), c2w[i], c2w.index_select(0, nb),
                           near_m[i], far_m[i], geo_images[i], geo_images.index_select(0, nb),
                           None if feats.depth_prior is None else feats.depth_prior[i])
              for i, nb in enumerate(nbrs)]
    return [ViewEncoding(image=images[i], K=K[i], c2w=c2w[i], near=near[i], far=far[i],
                         feature=feats.pyramid[0][i],
                         semantic_feature=feats.semantic_feature[i],
                         semantic_logits=feats.semantic_logits[i], depth_levels=cv.depth,
                         volumes=cv.volume, plane_start=cv.plane_start,
                         plane_step=cv.plane_step,
                         depth_measured=torch.zeros_like(cv.depth[0], dtype=torch.bool))
            for i, cv in enumerate(cost_volume.forward_views(inputs))]


def encode_view(encoder: FeatureEncoder, cost_volume: CascadeCostVolume, config: GSNeRFConfig,
                image: Tensor, K: Tensor, c2w: Tensor, nbr_images: Tensor, nbr_K: Tensor,
                nbr_c2w: Tensor, near: float, far: float) -> ViewEncoding:
    """Encode one keyframe against M given neighbour views (its cost volume partners).

    ``image`` [3, H, W], ``K`` [3, 3], ``c2w`` [4, 4]; ``nbr_*`` [M, ...] (M may be 0);
    ``near``/``far`` m.
    """
    images = torch.cat([image[None], nbr_images.to(image)], 0)
    Ks = torch.cat([K[None], nbr_K.to(K)], 0).float()
    c2ws = torch.cat([c2w[None], nbr_c2w.to(c2w)], 0).float()
    check_views(images, Ks, c2ws, "encode_view")
    V = images.shape[0]
    nr, fr = per_view_range(near, V, images.device), per_view_range(far, V, images.device)
    H, W = (int(x) for x in images.shape[-2:])
    one_pass = (semantic_levels(H, W, config.semantic_max_pixels,
                                config.semantic_fuse_max_pixels, config.geometry_max_pixels)
                == (geometry_level(H, W, config.geometry_max_pixels),))
    # Only the keyframe's own semantic maps are kept: a separate semantic pass skips the
    # neighbours.
    feats, geo_images, geo_K = encoder_outputs(encoder, config, images, Ks,
                                               None if one_pass else 1)
    nbrs = torch.arange(1, V, device=images.device)
    return encode_views(cost_volume, feats, [nbrs], images, Ks, c2ws, nr, fr, [float(near)],
                        [float(far)], geo_images, geo_K)[0]


def source_neighbours(config: GSNeRFConfig, K: Tensor, c2w: Tensor, size: tuple[int, int],
                      near: list[float], far: list[float]) -> list[Tensor]:
    """Each of V views' cost-volume neighbours among them ([min(M, V - 1)] int64 each, best
    first; M = ``cost_volume.num_neighbors``) by ``cost_volume.neighbour_rule``: ``nearest``
    (:func:`geometry.nearest_views`) or ``triangulation``
    (:func:`geometry.triangulation_neighbours`) at each view's depth prior
    :func:`geometry.scene_depth_prior` of its [near, far] (no depth is known before the cost
    volume). ``K`` [V, 3, 3] for images of ``size`` (H, W), ``c2w`` [V, 4, 4], ``near``/``far``
    m per view."""
    cv = config.cost_volume
    V = c2w.shape[0]
    if cv.neighbour_rule == "nearest":
        return [nearest_views(c2w[i], c2w, cv.num_neighbors, exclude=[i]) for i in range(V)]
    depth = [scene_depth_prior(n, f) for n, f in zip(near, far)]
    nb = triangulation_neighbours(c2w, K, size, torch.tensor(depth, device=c2w.device),
                                  cv.num_neighbors)
    return list(nb.unbind(0))


def encode_sources(encoder: FeatureEncoder, cost_volume: CascadeCostVolume, config: GSNeRFConfig,
                   images: Tensor, K: Tensor, c2w: Tensor, near: float | Tensor,
                   far: float | Tensor) -> SourceEncoding:
    """Encode V source views; each one's cost volume uses ``cost_volume.num_neighbors`` of the
    others, chosen by ``cost_volume.neighbour_rule`` (:func:`source_neighbours`). ``images`` [V, 3, H, W] in [0, 1],
    ``K`` [V, 3, 3], ``c2w`` [V, 4, 4], ``near``/``far`` floats or [V] m."""
    check_views(images, K, c2w, "encode_sources")
    V = images.shape[0]
    K, c2w = K.to(images.device).float(), c2w.to(images.device).float()
    nr, fr = per_view_range(near, V, images.device), per_view_range(far, V, images.device)
    feats, geo_images, geo_K = encoder_outputs(encoder, config, images, K)
    near_m, far_m = nr.tolist(), fr.tolist()      # one transfer for all views
    nbrs = [nb.to(images.device) for nb in
            source_neighbours(config, K, c2w, tuple(images.shape[-2:]), near_m, far_m)]
    return SourceEncoding.stack(encode_views(cost_volume, feats, nbrs, images, K, c2w, nr, fr,
                                             near_m, far_m, geo_images, geo_K))
