"""GSNeRF: the model, its stages called in the paper's order (one file per stage).

1. Semantic Geo-Reasoner (:mod:`.geo_reasoner`: :mod:`.encoder`, :mod:`.cost_volume`): each source
   view's features, depth and semantic features, cached as a :class:`SourceEncoding`.
2. Target depth D_T (:mod:`.target_depth`): the sources' depths reprojected into the target
   (z-buffer), optionally bounded by the floor.
3. Depth-guided sampling (:mod:`.sampling`, modes in :mod:`.sampling_modes`), with the
   hierarchical mode's fine pass.
4. Volume rendering (:mod:`.volume_renderer`): RGB and depth.
5. Semantic rendering (:mod:`.semantic_renderer`): class logits at the surface, and the
   confidence (:mod:`.confidence`).

Checkpoints: :mod:`.checkpoint`. Usage (docs/INTERFACES.md, ``gsnerf_ros.model``)::

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

from gsnerf_ros.geometry import camera_rays, pixel_grid
from gsnerf_ros.model.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, save_checkpoint
from gsnerf_ros.model.config import GSNeRFConfig
from gsnerf_ros.model.confidence import semantic_confidence
from gsnerf_ros.model.cost_volume import CascadeCostVolume
from gsnerf_ros.model.encoder import FeatureEncoder
from gsnerf_ros.model.encoding import SourceEncoding, ViewEncoding
from gsnerf_ros.model.geo_reasoner import encode_sources, encode_view, semantic_maps
from gsnerf_ros.model.palette import default_palette
from gsnerf_ros.model.pyramid import level_to_full
from gsnerf_ros.model.sampling import fine_depths, sample_along_rays
from gsnerf_ros.model.sampling_modes import mode_spec
from gsnerf_ros.model.semantic_renderer import (SEMANTIC_MODES, SemanticRenderer,
                                                render_semantics, surface_geometry,
                                                surface_visibility,
                                                vote_weights)
from gsnerf_ros.model.target_depth import (estimate_target_depth,
                                           estimate_target_depth_measured, floor_bound)
from gsnerf_ros.model.volume_renderer import VolumeRenderer, colour_view_mask, render_samples

__all__ = ["GSNeRF", "RenderResult", "default_palette", "CHECKPOINT_FORMAT"]


@dataclass
class RenderResult:
    """A rendered target view. ``rgb`` [H, W, 3] in [0, 1]; ``depth`` [H, W] m (rendered);
    ``semantic_logits`` [H, W, C]; ``labels`` [H, W] int64; ``target_depth`` [H, W] m (the
    reprojection estimate D_T); ``target_depth_valid`` [H, W] bool; ``confidence`` [H, W] in
    [0, 1]; ``acc`` [H, W] accumulated opacity. ``semantic_logits``, ``labels`` and
    ``confidence`` are None for a render without the model's semantics
    (``GSNeRF.render(semantics=False)``)."""

    rgb: Tensor
    depth: Tensor
    semantic_logits: Tensor | None
    labels: Tensor | None
    target_depth: Tensor
    target_depth_valid: Tensor
    confidence: Tensor | None
    acc: Tensor


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

    # ------------------------------------------------------------------ 1. Geo-Reasoner
    def encode_view(self, image: Tensor, K: Tensor, c2w: Tensor, nbr_images: Tensor, nbr_K: Tensor,
                    nbr_c2w: Tensor, near: float, far: float) -> ViewEncoding:
        """Encode one keyframe against M given neighbour views (its cost volume partners).

        ``image`` [3, H, W], ``K`` [3, 3], ``c2w`` [4, 4]; ``nbr_*`` [M, ...] (M may be 0).
        """
        return encode_view(self.encoder, self.cost_volume, self.config, image, K, c2w,
                           nbr_images, nbr_K, nbr_c2w, near, far)

    def encode_sources(self, images: Tensor, K: Tensor, c2w: Tensor, near: float | Tensor,
                       far: float | Tensor) -> SourceEncoding:
        """Encode V source views; each one's cost volume uses ``num_neighbors`` of the others,
        chosen by ``cost_volume.neighbour_rule`` (``geo_reasoner.source_neighbours``). ``images`` [V, 3, H, W] in [0, 1], ``K``
        [V, 3, 3], ``c2w`` [V, 4, 4], ``near``/``far`` floats or [V] m."""
        return encode_sources(self.encoder, self.cost_volume, self.config, images, K, c2w, near,
                              far)

    def semantic_logits_2d(self, images: Tensor) -> tuple[Tensor, int]:
        """The Semantic Geo-Reasoner's 2D segmenter on ``images`` [N, 3, H, W] in [0, 1], as
        the model encodes sources (``semantic_max_pixels``, ``semantic_fuse_max_pixels``:
        :func:`~gsnerf_ros.model.geo_reasoner.semantic_maps`): logits [N, C, h_s, w_s] (with
        grad) at the semantic level ``s``, and ``s``."""
        _, logits, s = semantic_maps(self.encoder, self.config, images)
        return logits, s

    @torch.no_grad()
    def segment_2d(self, images: Tensor) -> Tensor:
        """Class ids [N, H, W] (int64) of :meth:`semantic_logits_2d`, read back at full
        resolution on the network's grid (:func:`~gsnerf_ros.model.pyramid.level_to_full`), as
        the sources' own 2D labels are."""
        logits, s = self.semantic_logits_2d(images)
        return level_to_full(logits.argmax(1), s, *images.shape[-2:])

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
        """2. D_T [H, W] m and its validity mask [H, W] (Algorithm 1) for a target camera. The
        measured-depth rules (``target_depth.footprint_depth``, ``measured_fill_iterations``)
        run only for a set with sensor depth (``enc.has_sensor_depth``, a host-side mark), so
        an RGB render on the GPU does not run their passes for nothing."""
        near, far = self.depth_range(enc, near, far)
        dev = enc.image.device
        return estimate_target_depth(enc.depth, enc.depth_K, enc.c2w, K.to(dev).float(),
                                     c2w.to(dev).float(), height, width, near, far,
                                     self.config.target_depth,
                                     src_measured=enc.sensor_depth_mask)

    def render_target_depth(self, enc: SourceEncoding, K: Tensor, c2w: Tensor, height: int,
                            width: int, near: float, far: float
                            ) -> tuple[Tensor, Tensor, Tensor | None]:
        """What :meth:`render` takes D_T from: D_T [H, W] m, its validity [H, W] and, with
        ``renderer.depth_from_measured`` and sensor depth (``enc.has_sensor_depth``), the
        pixels whose surface is measured [H, W] bool (else None)."""
        if not (self.config.renderer.depth_from_measured and enc.has_sensor_depth):
            return (*self.target_depth(enc, K, c2w, height, width, near, far), None)
        dev = enc.image.device
        return estimate_target_depth_measured(
            enc.depth, enc.depth_K, enc.c2w, K.to(dev).float(), c2w.to(dev).float(), height,
            width, near, far, self.config.target_depth, src_measured=enc.depth_measured)

    def colour_view_mask(self, enc: SourceEncoding, c2w: Tensor) -> Tensor | None:
        """[V] bool: the ``renderer.colour_views`` source views nearest the target ``c2w`` [4, 4]
        (:func:`geometry.nearest_views`; ``renderer.measured_colour_views`` for a set with sensor
        depth when it is >= 0), or None when every view renders (0 or >= V)."""
        rc = self.config.renderer
        k = (rc.measured_colour_views if enc.has_sensor_depth and rc.measured_colour_views >= 0
             else rc.colour_views)
        return colour_view_mask(enc, c2w, k)

    def render_rays(self, enc: SourceEncoding, K: Tensor, c2w: Tensor, uv: Tensor, height: int,
                    width: int, mode: str | None = None, num_samples: int | None = None,
                    step: int | None = None, near: float | None = None, far: float | None = None,
                    semantic_mode: str | None = None,
                    target_depth: tuple[Tensor, Tensor] | None = None,
                    generator: torch.Generator | None = None,
                    training: bool | None = None,
                    guided_sigma: float | None = None,
                    semantics: bool = True) -> dict[str, Tensor]:
        """Render N rays of a target camera (the training path; keeps gradients).

        ``K`` [3, 3] for ``height`` x ``width``, ``c2w`` [4, 4], ``uv`` [N, 2] pixel centres.
        ``mode``/``num_samples``: see :func:`sampling.sample_along_rays` (default from config);
        ``step``: training step for the ``mixed`` schedule; ``target_depth``: a precomputed
        (D_T, valid) pair of [H, W] maps; ``guided_sigma``: std of the depth-guided samples
        instead of ``sampling.sigma`` (``sampling.sensor_sigma`` for measured source depth).
        ``semantics`` False: stage 5 (the semantic renderer, the surface point's occlusion test
        and the confidence) is skipped, for callers that take the classes from elsewhere (a
        segmenter's labels, :mod:`.label_vote`); every other output is the same.
        Returns a dict: ``rgb`` [N, 3], ``depth`` [N],
        ``acc`` [N], ``semantic_logits`` [N, C], ``target_depth`` [N], ``target_depth_valid``
        [N], ``confidence`` [N], ``n_visible`` [N], ``weights`` [N, S], ``z_vals`` [N, S],
        ``surface_index`` [N] (-1: none), and ``coarse_*`` entries for ``hierarchical``
        (without ``semantic_logits``, ``confidence`` and ``n_visible`` when ``semantics`` is
        False).
        """
        cfg = self.config
        mode = mode or cfg.sampling.mode
        sem_mode = semantic_mode or cfg.semantic.mode
        spec = mode_spec(mode)
        if sem_mode not in SEMANTIC_MODES:
            raise ValueError(f"semantic_mode must be surface | volume, got {sem_mode!r}")
        if uv.dim() != 2 or uv.shape[-1] != 2:
            raise ValueError(f"uv must be [N,2] pixel coordinates, got {tuple(uv.shape)}")
        training = self.training if training is None else training
        dev = enc.image.device
        K, c2w, uv = K.to(dev).float(), c2w.to(dev).float(), uv.to(dev).float()
        near, far = self.depth_range(enc, near, far)
        # 2. target depth D_T at the rays' pixels
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
        # 3. samples along the rays
        samples = sample_along_rays(mode, nr, fr, td, cfg.sampling, training, num_samples, step,
                                    generator, sigma=guided_sigma)
        out: dict[str, Tensor] = {}
        depths = samples.depths
        # 4. volume rendering (hierarchical: a coarse pass, then the fine samples)
        rcfg, spacing = cfg.renderer, self.cost_volume.spacing
        keep = self.colour_view_mask(enc, c2w)
        if spec.two_pass:
            coarse = render_samples(self.volume_renderer, enc, origins, dirs, depths, nr, fr,
                                    rcfg, spacing, keep)
            depths = fine_depths(depths, coarse["weights"], nr, fr, cfg.sampling.num_fine,
                                 deterministic=not training, generator=generator)
            out.update({"coarse_rgb": coarse["rgb"], "coarse_depth": coarse["depth"],
                        "coarse_weights": coarse["weights"]})
        vol = render_samples(self.volume_renderer, enc, origins, dirs, depths, nr, fr, rcfg,
                             spacing, keep)
        out.update({
            "rgb": vol["rgb"], "depth": vol["depth"], "acc": vol["acc"],
            "weights": vol["weights"], "z_vals": depths, "sigma": vol["sigma"],
            "target_depth": td, "target_depth_valid": tdv,
            "surface_index": samples.surface_index,
        })
        if not semantics:
            return out
        # 5. semantic rendering; the surface point's visibility also gives the confidence
        uv_s, vis_s = surface_visibility(enc, origins, dirs, td, rcfg, spacing)
        geometry = (surface_geometry(enc, origins, dirs, td, uv_s)
                    if cfg.semantic.view_geometry else None)
        logits = render_semantics(self.semantic_renderer, enc, cfg.semantic, sem_mode,
                                  spec.semantics_at_samples, uv_s, vis_s, vol,
                                  samples.surface_index,
                                  vote_weights(enc, c2w, cfg.semantic.vote_weights), geometry)
        n_vis = vis_s.sum(-1)
        out.update({
            "semantic_logits": logits, "n_visible": n_vis,
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
               floor_z: float | None = None, semantics: bool = True) -> RenderResult:
        """Render a full target view in chunks of ``chunk`` rays (memory bounded), without grad
        and with deterministic sampling. ``K`` [3, 3] for ``height`` x ``width``, ``c2w`` [4, 4].

        ``floor_z``: the floor plane's height (m) in a z-up world frame, for a ground robot that
        knows it; every depth is bounded by it: the sources' (:func:`encoding.with_floor`, so
        D_T and occlusion), D_T and the rendered depth (``geometry.floor_depth``). None: off.

        Each chunk's outputs are copied into full-view buffers at once, so the networks may
        reuse their output memory for the next chunk (CUDA graphs do). ``pad_chunks``: the last
        chunk is padded (repeating its last pixel) to ``chunk`` rays, so every network call has
        the same static shape (CUDA graphs, ``torch.compile(dynamic=False)``).
        ``guided_sigma``: see :meth:`render_rays`. ``semantics`` False: without the model's
        semantics (:meth:`render_rays`); the result's ``semantic_logits``, ``labels`` and
        ``confidence`` are None, RGB, depth, D_T and ``acc`` are the same as with them.
        With ``renderer.depth_from_measured`` and sensor depth, the depth is D_T where its
        surface is measured (the reprojected measurement).
        """
        chunk = chunk or self.config.sampling.chunk
        if chunk < 1 or height < 1 or width < 1:
            raise ValueError("chunk, height and width must be >= 1")
        near, far = self.depth_range(enc, near, far)
        floor = None
        if floor_z is not None:
            enc, floor = floor_bound(enc, K, c2w, height, width, floor_z)
        d_t, valid, measured = self.render_target_depth(enc, K, c2w, height, width, near, far)
        td = (d_t, valid)
        if floor is not None:
            td = (torch.minimum(td[0], floor), td[1])
        uv = pixel_grid(height, width, enc.image.device).reshape(-1, 2)
        n_pix = uv.shape[0]
        keys = (("rgb", "depth", "semantic_logits", "confidence", "acc") if semantics
                else ("rgb", "depth", "acc"))
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
                                 guided_sigma=guided_sigma, semantics=semantics)
            for k in keys:
                v = o[k][:n]
                if k not in out:
                    out[k] = torch.empty((n_pix, *v.shape[1:]), dtype=torch.float32,
                                         device=v.device)
                out[k][s:s + n].copy_(v)
        depth = out["depth"].reshape(height, width)
        if measured is not None:       # renderer.depth_from_measured: the measurement itself
            depth = torch.where(measured, td[0], depth)
        if floor is not None:
            depth = torch.minimum(depth, floor)
        logits = (out["semantic_logits"].reshape(height, width, -1) if semantics else None)
        return RenderResult(rgb=out["rgb"].clamp(0, 1).reshape(height, width, 3),
                            depth=depth, semantic_logits=logits,
                            labels=logits.argmax(-1) if logits is not None else None,
                            target_depth=td[0], target_depth_valid=td[1],
                            confidence=(out["confidence"].reshape(height, width)
                                        if semantics else None),
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
