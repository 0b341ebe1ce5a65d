"""GSNeRF: Semantic Geo-Reasoner + target depth + depth-guided volume and semantic rendering.

Usage (INTERFACES.md ``gsnerf_ros.model``)::

    model = GSNeRF(GSNeRFConfig.tiny(4))
    enc = model.encode_sources(images, K, c2w, near, far)       # cache and reuse
    res = model.render(enc, K_t, c2w_t, H, W)                    # chunked, no grad
    out = model.render_rays(enc, K_t, c2w_t, uv, H, W, step=s)   # training, with grad
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from gsnerf_ros.geometry import (camera_rays, floor_depth, level_intrinsics, nearest_views,
                                 pixel_grid)
from gsnerf_ros.model.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, save_checkpoint
from gsnerf_ros.model.config import GSNeRFConfig
from gsnerf_ros.model.confidence import semantic_confidence
from gsnerf_ros.model.cost_volume import CascadeCostVolume, CascadeInput
from gsnerf_ros.model.encoder import EncoderOutput, FeatureEncoder
from gsnerf_ros.model.encoding import SourceEncoding, ViewEncoding, check_floor_z
from gsnerf_ros.model.features import (
    direction_features,
    occlusion_mask,
    project_to_views,
    sample_maps,
    sample_volumes,
    semantic_neighbourhood,
)
from gsnerf_ros.model.palette import default_palette
from gsnerf_ros.model.pyramid import geometry_level, image_level
from gsnerf_ros.model.sampling import merge_sorted, pdf_depths, sample_along_rays
from gsnerf_ros.model.sampling_modes import mode_spec
from gsnerf_ros.model.semantic_renderer import SemanticRenderer
from gsnerf_ros.model.target_depth import estimate_target_depth
from gsnerf_ros.model.volume_renderer import VolumeRenderer

__all__ = ["GSNeRF", "RenderResult", "default_palette", "CHECKPOINT_FORMAT"]


@dataclass
class RenderResult:
    """A rendered target view. ``rgb`` [H, W, 3] in [0, 1]; ``depth`` [H, W] m (rendered);
    ``semantic_logits`` [H, W, C]; ``labels`` [H, W] int64; ``target_depth`` [H, W] m (the
    reprojection estimate D_T); ``target_depth_valid`` [H, W] bool; ``confidence`` [H, W] in
    [0, 1]; ``acc`` [H, W] accumulated opacity."""

    rgb: Tensor
    depth: Tensor
    semantic_logits: Tensor
    labels: Tensor
    target_depth: Tensor
    target_depth_valid: Tensor
    confidence: Tensor
    acc: Tensor


def _range(x: float | Tensor, V: int, device: torch.device) -> Tensor:
    t = torch.as_tensor(x, dtype=torch.float32, device=device).reshape(-1)
    if t.numel() == 1:
        t = t.expand(V)
    if t.numel() != V:
        raise ValueError(f"near/far must be a float or have one value per view ({V}), got {t.numel()}")
    return t.clone()


class GSNeRF(nn.Module):
    """The whole model. ``class_names`` (C strings) and ``palette`` (uint8 [C, 3]) travel with the
    checkpoint; defaults are ``class_<i>`` and :func:`default_palette`."""

    def __init__(self, config: GSNeRFConfig | None = None, class_names: Sequence[str] | None = None,
                 palette: Tensor | Sequence[Sequence[int]] | None = None) -> None:
        super().__init__()
        self.config = config or GSNeRFConfig()
        cfg = self.config
        C = cfg.num_classes
        self.class_names = list(class_names) if class_names is not None else [f"class_{i}" for i in range(C)]
        if len(self.class_names) != C:
            raise ValueError(f"{len(self.class_names)} class names for num_classes={C}")
        pal = default_palette(C) if palette is None else torch.as_tensor(palette).to(torch.uint8)
        if pal.shape != (C, 3):
            raise ValueError(f"palette must be [C,3] = [{C},3], got {tuple(pal.shape)}")
        self.palette = pal
        self.encoder = FeatureEncoder(cfg.encoder, C, cfg.semantic_channels)
        self.cost_volume = CascadeCostVolume(cfg.cost_volume, cfg.encoder.fpn_channels)
        in_ch = 3 * cfg.cost_volume.volume_channels + cfg.encoder.fpn_channels[0] + 3
        self.volume_renderer = VolumeRenderer(cfg.renderer, in_ch)
        k = cfg.semantic.neighbourhood
        self.semantic_renderer = SemanticRenderer(cfg.semantic, k * k * cfg.semantic_channels, C)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def set_kernel(self, kernel: str) -> "GSNeRF":
        """View-transformer implementation of both renderers: ``auto`` | ``eager`` | ``triton``
        (:mod:`gsnerf_ros.model.fused_attention`). Returns self."""
        for vt in (self.volume_renderer.transformer, self.semantic_renderer.transformer):
            vt.set_kernel(kernel)
        return self

    @property
    def kernel(self) -> str:
        return self.volume_renderer.transformer.kernel

    # ------------------------------------------------------------------ encoding
    @staticmethod
    def _check_views(images: Tensor, K: Tensor, c2w: Tensor, what: str) -> None:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"{what} images must be [V,3,H,W], got {tuple(images.shape)}")
        V = images.shape[0]
        if K.shape != (V, 3, 3) or c2w.shape != (V, 4, 4):
            raise ValueError(f"{what}: K must be [{V},3,3] and c2w [{V},4,4], got "
                             f"{tuple(K.shape)} and {tuple(c2w.shape)}")

    def _geometry_inputs(self, images: Tensor, K: Tensor) -> tuple[Tensor, Tensor]:
        """Images [V, 3, h_g, w_g] and intrinsics [V, 3, 3] the Geo-Reasoner works on: pyramid
        level ``geometry_level(H, W, config.geometry_max_pixels)`` of ``images`` [V, 3, H, W]
        (anti-aliased, on the network's own pixel grid) and ``K`` [V, 3, 3] scaled to it."""
        H, W = images.shape[-2:]
        g = geometry_level(int(H), int(W), self.config.geometry_max_pixels)
        if g == 0:
            return images, K
        return image_level(images, g), level_intrinsics(K, g)

    def _encode_views(self, feats: EncoderOutput, nbrs: list[Tensor], images: Tensor, K: Tensor,
                      c2w: Tensor, near: Tensor, far: Tensor, near_m: list[float],
                      far_m: list[float], geo_images: Tensor, geo_K: Tensor) -> list[ViewEncoding]:
        """View i against views ``nbrs[i]`` ([M] indices), for the first ``len(nbrs)`` views;
        ``near``/``far`` [V] tensors (stored in the encoding) and ``near_m``/``far_m`` the same
        ranges as Python floats (m), so the plane sweep needs no host-device synchronisation.
        ``images``/``K`` at full resolution (kept for rendering), ``geo_images``/``geo_K`` the
        Geo-Reasoner's inputs (:meth:`_geometry_inputs`). The views' cost volumes are
        regularised as one batch (:meth:`CascadeCostVolume.forward_views`)."""
        inputs = [CascadeInput([p[i] for p in feats.pyramid],
                               [p.index_select(0, nb) for p in feats.pyramid], geo_K[i],
                               geo_K.index_select(0, nb), c2w[i], c2w.index_select(0, nb),
                               near_m[i], far_m[i], geo_images[i], geo_images.index_select(0, nb))
                  for i, nb in enumerate(nbrs)]
        return [ViewEncoding(image=images[i], K=K[i], c2w=c2w[i], near=near[i], far=far[i],
                             feature=feats.pyramid[0][i],
                             semantic_feature=feats.semantic_feature[i],
                             semantic_logits=feats.semantic_logits[i], depth_levels=cv.depth,
                             volumes=cv.volume, plane_start=cv.plane_start,
                             plane_step=cv.plane_step,
                             depth_measured=torch.zeros_like(cv.depth[0], dtype=torch.bool))
                for i, cv in enumerate(self.cost_volume.forward_views(inputs))]

    def encode_view(self, image: Tensor, K: Tensor, c2w: Tensor, nbr_images: Tensor, nbr_K: Tensor,
                    nbr_c2w: Tensor, near: float, far: float) -> ViewEncoding:
        """Encode one keyframe against M given neighbour views (its cost volume partners).

        ``image`` [3, H, W], ``K`` [3, 3], ``c2w`` [4, 4]; ``nbr_*`` [M, ...] (M may be 0).
        """
        images = torch.cat([image[None], nbr_images.to(image)], 0)
        Ks = torch.cat([K[None], nbr_K.to(K)], 0).float()
        c2ws = torch.cat([c2w[None], nbr_c2w.to(c2w)], 0).float()
        self._check_views(images, Ks, c2ws, "encode_view")
        V = images.shape[0]
        nr, fr = _range(near, V, images.device), _range(far, V, images.device)
        geo_images, geo_K = self._geometry_inputs(images, Ks)
        feats = self.encoder(geo_images)
        nbrs = torch.arange(1, V, device=images.device)
        return self._encode_views(feats, [nbrs], images, Ks, c2ws, nr, fr, [float(near)],
                                  [float(far)], geo_images, geo_K)[0]

    def encode_sources(self, images: Tensor, K: Tensor, c2w: Tensor, near: float | Tensor,
                       far: float | Tensor) -> SourceEncoding:
        """Encode V source views; each one's cost volume uses its ``num_neighbors`` nearest views
        among them (``geometry.nearest_views``). ``images`` [V, 3, H, W] in [0, 1], ``K``
        [V, 3, 3], ``c2w`` [V, 4, 4], ``near``/``far`` floats or [V] m."""
        self._check_views(images, K, c2w, "encode_sources")
        V = images.shape[0]
        K, c2w = K.to(images.device).float(), c2w.to(images.device).float()
        nr, fr = _range(near, V, images.device), _range(far, V, images.device)
        geo_images, geo_K = self._geometry_inputs(images, K)
        feats = self.encoder(geo_images)
        near_m, far_m = nr.tolist(), fr.tolist()      # one transfer for all views
        nbrs = [nearest_views(c2w[i], c2w, self.config.cost_volume.num_neighbors,
                              exclude=[i]).to(images.device) for i in range(V)]
        return SourceEncoding.stack(self._encode_views(feats, nbrs, images, K, c2w, nr, fr, near_m,
                                                       far_m, geo_images, geo_K))

    # ------------------------------------------------------------------ rendering
    @staticmethod
    def depth_range(enc: SourceEncoding, near: float | None = None,
                    far: float | None = None) -> tuple[float, float]:
        """Render depth range (m): the given values, else the sources' widest [near, far].
        Reading the encoding's range is a host-device transfer, so :meth:`render` resolves it
        once per view (callers that know the range, like the ROS node, pass it and avoid it)."""
        if near is None or far is None:
            lo, hi = float(enc.near.min()), float(enc.far.max())
            near = lo if near is None else near
            far = hi if far is None else far
        return float(near), float(far)

    def target_depth(self, enc: SourceEncoding, K: Tensor, c2w: Tensor, height: int, width: int,
                     near: float | None = None, far: float | None = None) -> tuple[Tensor, Tensor]:
        """D_T [H, W] m and its validity mask [H, W] (Algorithm 1) for a target camera."""
        near, far = self.depth_range(enc, near, far)
        dev = enc.image.device
        return estimate_target_depth(enc.depth, enc.geometry_K, enc.c2w, K.to(dev).float(),
                                     c2w.to(dev).float(), height, width, near, far,
                                     self.config.target_depth, src_measured=enc.depth_measured)

    def colour_view_mask(self, enc: SourceEncoding, c2w: Tensor) -> Tensor | None:
        """[V] bool: the ``renderer.colour_views`` source views nearest the target ``c2w`` [4, 4]
        (:func:`geometry.nearest_views`), or None when every view renders (0 or >= V)."""
        k = self.config.renderer.colour_views
        if k <= 0 or k >= len(enc):
            return None
        keep = torch.zeros(len(enc), dtype=torch.bool, device=enc.c2w.device)
        keep[nearest_views(c2w.to(enc.c2w).float(), enc.c2w, k)] = True
        return keep

    def _render_samples(self, enc: SourceEncoding, origins: Tensor, dirs: Tensor, depths: Tensor,
                        near: Tensor, far: Tensor, gather_semantic: bool,
                        keep: Tensor | None = None) -> dict[str, Tensor]:
        """``keep`` [V] bool: the views that lend colour wherever one of them may
        (``renderer.colour_views``); density and semantics use every view."""
        N, S = depths.shape
        rcfg = self.config.renderer
        pts = (origins[:, None] + depths[..., None] * dirs[:, None]).reshape(N * S, 3)
        uv, z, in_image = project_to_views(pts, enc)
        visible = in_image & ~occlusion_mask(enc, uv, z, rcfg.occlusion_threshold, rcfg.occlusion_min,
                                            self.cost_volume.spacing)
        vol = sample_volumes(enc, uv, z, self.cost_volume.spacing)
        g = enc.geometry_level
        f2d = sample_maps(enc.feature, uv, g)
        rgb = sample_maps(enc.image, uv)
        dfeat = direction_features(pts, dirs.repeat_interleave(S, 0), enc)
        view_in = torch.cat([vol.to(f2d.dtype), f2d, rgb.to(f2d.dtype)], -1)
        out = self.volume_renderer(view_in, rgb, dfeat, visible, in_image, depths, near, far, keep)
        out["visible"] = visible.reshape(N, S, -1)
        if gather_semantic:
            out["semantic_features"] = semantic_neighbourhood(
                enc, uv, self.config.semantic.neighbourhood).reshape(N, S, len(enc), -1)
            if self.config.semantic.label_skip:
                out["semantic_logits_2d"] = sample_maps(enc.semantic_logits, uv, g).reshape(
                    N, S, len(enc), -1)
        return out

    def render_rays(self, enc: SourceEncoding, K: Tensor, c2w: Tensor, uv: Tensor, height: int,
                    width: int, mode: str | None = None, num_samples: int | None = None,
                    step: int | None = None, near: float | None = None, far: float | None = None,
                    semantic_mode: str | None = None,
                    target_depth: tuple[Tensor, Tensor] | None = None,
                    generator: torch.Generator | None = None,
                    training: bool | None = None,
                    guided_sigma: float | None = None) -> dict[str, Tensor]:
        """Render N rays of a target camera (the training path; keeps gradients).

        ``K`` [3, 3] for ``height`` x ``width``, ``c2w`` [4, 4], ``uv`` [N, 2] pixel centres.
        ``mode``/``num_samples``: see :func:`sampling.sample_along_rays` (default from config);
        ``step``: training step for the ``mixed`` schedule; ``target_depth``: a precomputed
        (D_T, valid) pair of [H, W] maps; ``guided_sigma``: std of the depth-guided samples
        instead of ``sampling.sigma`` (``sampling.sensor_sigma`` for measured source depth).
        Returns a dict: ``rgb`` [N, 3], ``depth`` [N],
        ``acc`` [N], ``semantic_logits`` [N, C], ``target_depth`` [N], ``target_depth_valid``
        [N], ``confidence`` [N], ``n_visible`` [N], ``weights`` [N, S], ``z_vals`` [N, S],
        ``surface_index`` [N] (-1: none), and ``coarse_*`` entries for ``hierarchical``.
        """
        cfg = self.config
        mode = mode or cfg.sampling.mode
        sem_mode = semantic_mode or cfg.semantic.mode
        spec = mode_spec(mode)
        if sem_mode not in ("surface", "volume"):
            raise ValueError(f"semantic_mode must be surface | volume, got {sem_mode!r}")
        if uv.dim() != 2 or uv.shape[-1] != 2:
            raise ValueError(f"uv must be [N,2] pixel coordinates, got {tuple(uv.shape)}")
        training = self.training if training is None else training
        dev = enc.image.device
        K, c2w, uv = K.to(dev).float(), c2w.to(dev).float(), uv.to(dev).float()
        near, far = self.depth_range(enc, near, far)
        if target_depth is None:
            target_depth = self.target_depth(enc, K, c2w, height, width, near, far)
        td_map, td_valid = target_depth
        ui = uv[:, 0].round().long().clamp(0, width - 1)
        vi = uv[:, 1].round().long().clamp(0, height - 1)
        td, tdv = td_map[vi, ui], td_valid[vi, ui]
        N = uv.shape[0]
        origins, dirs = camera_rays(uv, K, c2w)
        nr = torch.full((N,), near, device=dev)
        fr = torch.full((N,), far, device=dev)
        samples = sample_along_rays(mode, nr, fr, td, cfg.sampling, training, num_samples, step,
                                    generator, sigma=guided_sigma)
        need_sem = spec.semantics_at_samples or sem_mode == "volume"
        out: dict[str, Tensor] = {}
        depths = samples.depths
        keep = self.colour_view_mask(enc, c2w)
        if spec.two_pass:
            coarse = self._render_samples(enc, origins, dirs, depths, nr, fr, False, keep)
            mids = 0.5 * (depths[:, 1:] + depths[:, :-1])
            bins = torch.cat([nr[:, None], mids, fr[:, None]], -1)
            fine = pdf_depths(bins, coarse["weights"], cfg.sampling.num_fine,
                              deterministic=not training, generator=generator)
            depths = merge_sorted(depths, fine)
            out.update({"coarse_rgb": coarse["rgb"], "coarse_depth": coarse["depth"],
                        "coarse_weights": coarse["weights"]})
        vol = self._render_samples(enc, origins, dirs, depths, nr, fr, need_sem, keep)
        V = len(enc)

        # Surface point at D_T: visibility (for confidence) and, in surface mode, semantics.
        surf = origins + td[:, None] * dirs
        uv_s, z_s, in_s = project_to_views(surf, enc)
        rcfg = self.config.renderer
        vis_s = in_s & ~occlusion_mask(enc, uv_s, z_s, rcfg.occlusion_threshold,
                                          rcfg.occlusion_min, self.cost_volume.spacing)
        skip = cfg.semantic.label_skip
        if sem_mode == "volume":
            S = depths.shape[1]
            l2d = vol["semantic_logits_2d"].reshape(N * S, V, -1) if skip else None
            lg = self.semantic_renderer(vol["semantic_features"].reshape(N * S, V, -1),
                                        vol["visible"].reshape(N * S, V), l2d).reshape(N, S, -1)
            logits = (vol["weights"][..., None] * lg.float()).sum(1)
        elif spec.semantics_at_samples:
            idx = samples.surface_index
            rows = torch.arange(N, device=dev)
            l2d = vol["semantic_logits_2d"][rows, idx] if skip else None
            logits = self.semantic_renderer(vol["semantic_features"][rows, idx],
                                            vol["visible"][rows, idx], l2d)
        else:
            sf = semantic_neighbourhood(enc, uv_s, cfg.semantic.neighbourhood)
            l2d = sample_maps(enc.semantic_logits, uv_s, enc.geometry_level) if skip else None
            logits = self.semantic_renderer(sf, vis_s, l2d)
        n_vis = vis_s.sum(-1)
        out.update({
            "rgb": vol["rgb"], "depth": vol["depth"], "acc": vol["acc"],
            "weights": vol["weights"], "z_vals": depths, "sigma": vol["sigma"],
            "semantic_logits": logits, "target_depth": td, "target_depth_valid": tdv,
            "surface_index": samples.surface_index, "n_visible": n_vis,
            "confidence": semantic_confidence(logits.detach(), n_vis, tdv,
                                              cfg.semantic.confidence_min_views,
                                              cfg.semantic.invalid_depth_confidence),
        })
        return out

    @torch.no_grad()
    def render(self, enc: SourceEncoding, K: Tensor, c2w: Tensor, height: int, width: int,
               mode: str | None = None, num_samples: int | None = None, chunk: int | None = None,
               near: float | None = None, far: float | None = None,
               semantic_mode: str | None = None, step: int | None = None,
               pad_chunks: bool = False, guided_sigma: float | None = None,
               floor_z: float | None = None) -> RenderResult:
        """Render a full target view in chunks of ``chunk`` rays (memory bounded), without grad
        and with deterministic sampling. ``K`` [3, 3] for ``height`` x ``width``, ``c2w`` [4, 4].

        ``floor_z``: the floor plane's height (m) in a z-up world frame, for a ground robot that
        knows it; every depth is bounded by it: the sources' (:func:`encoding.with_floor`, so
        D_T and occlusion), D_T and the rendered depth (``geometry.floor_depth``). None: off.

        Each chunk's outputs are copied into full-view buffers at once, so the networks may
        reuse their output memory for the next chunk (CUDA graphs do). ``pad_chunks``: the last
        chunk is padded (repeating its last pixel) to ``chunk`` rays, so every network call has
        the same static shape (CUDA graphs, ``torch.compile(dynamic=False)``).
        ``guided_sigma``: see :meth:`render_rays`.
        """
        chunk = chunk or self.config.sampling.chunk
        if chunk < 1 or height < 1 or width < 1:
            raise ValueError("chunk, height and width must be >= 1")
        near, far = self.depth_range(enc, near, far)
        floor = None
        if floor_z is not None:
            z = check_floor_z(floor_z)
            enc = enc.with_floor(z)
            floor = floor_depth(K.to(enc.image.device).float(),
                                c2w.to(enc.image.device).float(), height, width, z)
        td = self.target_depth(enc, K, c2w, height, width, near, far)
        if floor is not None:
            td = (torch.minimum(td[0], floor), td[1])
        uv = pixel_grid(height, width, enc.image.device).reshape(-1, 2)
        n_pix = uv.shape[0]
        keys = ("rgb", "depth", "semantic_logits", "confidence", "acc")
        out: dict[str, Tensor] = {}
        mark_step = getattr(getattr(torch, "compiler", None), "cudagraph_mark_step_begin", None)
        for s in range(0, n_pix, chunk):
            part = uv[s:s + chunk]
            n = part.shape[0]
            if pad_chunks and n < chunk:
                part = torch.cat([part, part[-1:].expand(chunk - n, 2)], 0)
            if mark_step is not None and uv.is_cuda:
                mark_step()
            o = self.render_rays(enc, K, c2w, part, height, width, mode=mode,
                                 num_samples=num_samples, step=step, near=near, far=far,
                                 semantic_mode=semantic_mode, target_depth=td, training=False,
                                 guided_sigma=guided_sigma)
            for k in keys:
                v = o[k][:n]
                if k not in out:
                    out[k] = torch.empty((n_pix, *v.shape[1:]), dtype=torch.float32,
                                         device=v.device)
                out[k][s:s + n].copy_(v)
        logits = out["semantic_logits"].reshape(height, width, -1)
        depth = out["depth"].reshape(height, width)
        if floor is not None:
            depth = torch.minimum(depth, floor)
        return RenderResult(rgb=out["rgb"].clamp(0, 1).reshape(height, width, 3),
                            depth=depth, semantic_logits=logits,
                            labels=logits.argmax(-1), target_depth=td[0], target_depth_valid=td[1],
                            confidence=out["confidence"].reshape(height, width),
                            acc=out["acc"].reshape(height, width))

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
        """Write ``<path>.safetensors`` (weights) and ``<path>.json`` (model config, class names,
        palette, free ``metadata``). Returns the weights path. Never pickles
        (:func:`gsnerf_ros.model.checkpoint.save_checkpoint`)."""
        return save_checkpoint(self, path, metadata)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu") -> "GSNeRF":
        """Load a checkpoint written by :meth:`save_checkpoint` (either file's path or the stem);
        the model is returned in eval mode with ``.metadata`` from the sidecar
        (:func:`gsnerf_ros.model.checkpoint.load_checkpoint`)."""
        return load_checkpoint(cls, path, device)
