"""Timing of each pipeline stage and of a whole rendered view for one sampling mode.

Stages (per rendered view unless stated): keyframe encode (one keyframe against its cost-volume
neighbours, per keyframe), view selection (nearest keyframes in a buffer + stacking their cached
encodings), target depth (Algorithm 1 at the render size), sampling + feature gathering, volume
renderer, semantic renderer, other (confidence, concatenation), and ROS conversion (render ->
five sensor_msgs/Image messages).

Large views on a slow device can be timed on a *ray budget*: ``render_rays`` on an even subset
of the view's rays (exactly one chunk of :meth:`GSNeRF.render`), and the per-view time is
``target_depth + rays_per_view / budget x batch time``. That extrapolation is linear in rays by
construction of the chunked renderer (each chunk does the same work); the resolution sweep
measures that linearity. Results say ``extrapolated: true`` and the budget.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import Tensor

from gsnerf_ros.bench.instrument import STAGE_NAMES, StageRecorder
from gsnerf_ros.bench.scene import BenchScene
from gsnerf_ros.bench.timing import Stats, measure, synchronize
from gsnerf_ros.geometry import nearest_views, pixel_grid
from gsnerf_ros.model import GSNeRF, SourceEncoding, StackCache
from gsnerf_ros.model.memory import DEFAULT_MAX_MEMORY_MB, auto_chunk, samples_per_ray

__all__ = ["BenchSettings", "skipped", "precision_context", "samples_per_ray", "ray_subset",
           "time_keyframe_encode", "time_view_selection", "time_target_depth",
           "time_target_depth_rgbd", "time_view",
           "time_breakdown", "time_ros_conversion", "time_labels_view", "encode_scene",
           "render_chunk"]


@dataclass
class BenchSettings:
    """How to measure. ``ray_budget`` None: render whole views."""

    device: torch.device
    repeats: int = 3
    warmup: int = 1
    ray_budget: int | None = None
    chunk: int | None = None
    """Rays per render chunk; None: from ``max_memory_mb`` per mode and size."""
    precision: str = "fp32"
    """``fp32`` | ``bf16`` | ``fp16`` (autocast; GPU)."""
    max_memory_mb: float = DEFAULT_MAX_MEMORY_MB
    pad_chunks: bool = False
    """Pad the last chunk to the chunk size (static shapes, for CUDA graphs)."""
    extra: dict[str, Any] = field(default_factory=dict)


def skipped(reason: str) -> dict[str, Any]:
    """A stage or section that was not measured, with the reason (JSON ``median_ms: null``)."""
    return {"median_ms": None, "skipped": reason}


def precision_context(settings: BenchSettings) -> contextlib.AbstractContextManager:
    """Autocast for ``bf16``/``fp16``, nothing for ``fp32``."""
    if settings.precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if settings.precision == "bf16" else torch.float16
    return torch.autocast(device_type=settings.device.type, dtype=dtype)


def ray_subset(height: int, width: int, budget: int, device: torch.device) -> Tensor:
    """``budget`` pixel centres spread evenly over the image (raster order). -> uv [N, 2]."""
    uv = pixel_grid(height, width, device).reshape(-1, 2)
    n = uv.shape[0]
    if budget >= n:
        return uv
    idx = torch.linspace(0, n - 1, budget, device=device).round().long()
    return uv[idx]


def encode_scene(model: GSNeRF, scene: BenchScene, settings: BenchSettings) -> SourceEncoding:
    """Encode all source views once (the cached encoding every render reuses)."""
    with torch.no_grad(), precision_context(settings):
        enc = model.encode_sources(scene.images, scene.K, scene.c2w, scene.near, scene.far)
    synchronize(settings.device)
    return enc


def time_keyframe_encode(model: GSNeRF, scene: BenchScene, settings: BenchSettings,
                         repeats: int | None = None) -> dict[str, Any]:
    """One keyframe encoded against its cost-volume neighbours (``encode_view``), per keyframe."""
    m = min(model.config.cost_volume.num_neighbors, len(scene) - 1)

    def run() -> None:
        with torch.no_grad(), precision_context(settings):
            model.encode_view(scene.images[0], scene.K[0], scene.c2w[0], scene.images[1:1 + m],
                              scene.K[1:1 + m], scene.c2w[1:1 + m], scene.near, scene.far)

    st = measure(run, settings.device, repeats or settings.repeats, settings.warmup)
    return {**st.to_dict(), "per": "keyframe", "neighbours": m}


def time_view_selection(enc: SourceEncoding, scene: BenchScene, settings: BenchSettings
                        ) -> dict[str, Any]:
    """nearest_views over a buffer of ``len(pool_c2w)`` keyframe poses + the
    :class:`StackCache` of the node's renderer: the main numbers are a new source set (stacking
    copies the chosen cached encodings into one SourceEncoding); ``cached_set`` is the same
    request again (the set is reused, as when a planner scores nearby candidate poses)."""
    V = len(enc)
    cached = [enc.view(i % V) for i in range(scene.pool_c2w.shape[0])]
    pool = scene.pool_c2w.to(settings.device)
    target = scene.target_c2w.to(settings.device)

    def run(cache: StackCache) -> None:
        idx = nearest_views(target, pool, V)
        cache.get([cached[int(i)] for i in sorted(idx.tolist())])

    repeats = max(settings.repeats, 5)
    st = measure(lambda: run(StackCache()), settings.device, repeats, settings.warmup)
    warm = StackCache()
    run(warm)
    hit = measure(lambda: run(warm), settings.device, repeats, settings.warmup)
    return {**st.to_dict(), "per": "view", "pool": int(pool.shape[0]), "selected": V,
            "cached_set": hit.to_dict()}


def time_target_depth(model: GSNeRF, enc: SourceEncoding, scene: BenchScene, height: int,
                      width: int, settings: BenchSettings) -> Stats:
    """Algorithm 1 (reproject + z-buffer + fill) at ``height`` x ``width``."""
    K = _target_K(scene, height, width)

    def run() -> None:
        model.target_depth(enc, K, scene.target_c2w, height, width)

    return measure(run, settings.device, settings.repeats, settings.warmup)


def time_target_depth_rgbd(model: GSNeRF, enc: SourceEncoding, scene: BenchScene, height: int,
                           width: int, settings: BenchSettings) -> Stats:
    """D_T from the scene's exact depth as an RGB-D camera's (``with_sensor_depth``), with the
    model's rules for measured depth, as :meth:`GSNeRF.render` takes it
    (``render_target_depth``: the measured mask too with ``renderer.depth_from_measured``)."""
    K = _target_K(scene, height, width)
    rgbd = enc.with_sensor_depth(scene.depths)
    near, far = model.depth_range(rgbd)

    def run() -> None:
        model.render_target_depth(rgbd, K, scene.target_c2w, height, width, near, far)

    return measure(run, settings.device, settings.repeats, settings.warmup)


def _target_K(scene: BenchScene, height: int, width: int) -> Tensor:
    """Target intrinsics for a render size (the scene's K scaled to it)."""
    from gsnerf_ros.geometry import scale_intrinsics

    return scale_intrinsics(scene.target_K, width / scene.width, height / scene.height)


def render_chunk(model: GSNeRF, views: int, pixels: int, mode: str, num_samples: int | None,
                 settings: BenchSettings) -> int:
    """The chunk of a whole-view render: ``settings.chunk``, else from the memory cap."""
    return settings.chunk or auto_chunk(model, views, pixels, mode, num_samples,
                                        settings.max_memory_mb,
                                        4 if settings.precision == "fp32" else 2)


def _view_runner(model: GSNeRF, enc: SourceEncoding, scene: BenchScene, height: int, width: int,
                 mode: str, settings: BenchSettings, num_samples: int | None
                 ) -> tuple[Callable[[], Any], int, Any]:
    """A callable rendering (part of) one view, the number of rays it renders, and the
    precomputed target depth it uses (None for a whole-view render)."""
    K = _target_K(scene, height, width)
    n_pix = height * width
    if settings.ray_budget is None or settings.ray_budget >= n_pix:
        chunk = render_chunk(model, len(enc), n_pix, mode, num_samples, settings)

        def full() -> Any:
            with precision_context(settings):
                return model.render(enc, K, scene.target_c2w, height, width, mode=mode,
                                    num_samples=num_samples, chunk=chunk,
                                    pad_chunks=settings.pad_chunks)
        return full, n_pix, None
    uv = ray_subset(height, width, settings.ray_budget, settings.device)
    with torch.no_grad():
        td = model.target_depth(enc, K, scene.target_c2w, height, width)

    def part() -> Any:
        with torch.no_grad(), precision_context(settings):
            return model.render_rays(enc, K, scene.target_c2w, uv, height, width, mode=mode,
                                     num_samples=num_samples, target_depth=td, training=False)
    return part, int(uv.shape[0]), td


def time_view(model: GSNeRF, enc: SourceEncoding, scene: BenchScene, height: int, width: int,
              mode: str, settings: BenchSettings, num_samples: int | None = None,
              td_stats: Stats | None = None) -> dict[str, Any]:
    """Time of one rendered view (RGB + semantics + depth + confidence) from a cached encoding.

    Whole view when no ray budget applies; otherwise extrapolated from a ray batch (see module
    docstring), using ``td_stats`` (measured here when None) for the target-depth part.
    """
    run, rays, td = _view_runner(model, enc, scene, height, width, mode, settings, num_samples)
    st = measure(run, settings.device, settings.repeats, settings.warmup)
    n_pix = height * width
    info = {"mode": mode, "height": height, "width": width, "views": len(enc),
            **samples_per_ray(model, mode, num_samples), "rays_timed": rays,
            "extrapolated": td is not None, "kernel": model.kernel,
            "chunk": render_chunk(model, len(enc), n_pix, mode, num_samples, settings)}
    if td is None:
        return {**st.to_dict(), **info, "per": "view"}
    tds = td_stats or time_target_depth(model, enc, scene, height, width, settings)
    scale = n_pix / rays
    return {"median_ms": tds.median_ms + scale * st.median_ms,
            "iqr_ms": tds.iqr_ms + scale * st.iqr_ms,
            "min_ms": tds.min_ms + scale * st.min_ms, "max_ms": tds.max_ms + scale * st.max_ms,
            "repeats": st.repeats, "warmup": st.warmup, "peak_mem_mb": st.peak_mem_mb,
            "mem_kind": st.mem_kind, "batch_ms": st.to_dict(), "target_depth_ms": tds.median_ms,
            **info, "per": "view"}


def time_labels_view(model: GSNeRF, enc: SourceEncoding, scene: BenchScene, height: int,
                     width: int, settings: BenchSettings, depth_search: float = 0.25,
                     angle_sigma_deg: float = 0.0) -> dict[str, Any]:
    """One whole view with ``semantic.source: labels`` (the node's and gsnerf-eval's path): the
    model's render without its semantics (``GSNeRF.render(semantics=False)``: RGB, depth, D_T)
    and the vote of the sources' labels at D_T (:func:`gsnerf_ros.model.label_vote.vote_labels`,
    ``depth_search`` as ``semantic.label_depth_search``). The stand-in segmenter labels are each
    source's 2D class argmax (the vote's cost does not depend on the ids). ``with_semantics``:
    the same with the model's semantics run and dropped, the path before they were skipped.
    A ray budget does not apply (the vote takes the whole view's D_T): skipped then."""
    from gsnerf_ros.model.label_vote import vote_labels

    n_pix = height * width
    if settings.ray_budget is not None and settings.ray_budget < n_pix:
        return skipped("timed on whole views only (the vote takes the whole view's D_T); "
                       "run without --ray-budget")
    K = _target_K(scene, height, width)
    mode = "depth_guided"
    chunk = render_chunk(model, len(enc), n_pix, mode, None, settings)
    maps = list(enc.semantic_logits_2d.argmax(1))

    def run(semantics: bool) -> None:
        with torch.no_grad(), precision_context(settings):
            res = model.render(enc, K, scene.target_c2w, height, width, mode=mode, chunk=chunk,
                               pad_chunks=settings.pad_chunks, semantics=semantics)
            vote_labels(enc, maps, None, K, scene.target_c2w, res.target_depth,
                        res.target_depth_valid, model.config.renderer, model.cost_volume.spacing,
                        angle_sigma_deg=angle_sigma_deg, depth_search=depth_search)

    lean = measure(lambda: run(False), settings.device, settings.repeats, settings.warmup)
    full = measure(lambda: run(True), settings.device, settings.repeats, settings.warmup)
    return {**lean.to_dict(), "with_semantics": full.to_dict(),
            "speedup_vs_with_semantics": full.median_ms / lean.median_ms,
            "mode": mode, "height": height, "width": width, "views": len(enc), "chunk": chunk,
            "depth_search": depth_search, "per": "view"}


def time_breakdown(model: GSNeRF, enc: SourceEncoding, scene: BenchScene, height: int,
                   width: int, mode: str, settings: BenchSettings, num_samples: int | None = None
                   ) -> dict[str, Any]:
    """Per-stage ms of one view (median over ``repeats`` instrumented runs; scaled to the whole
    view when a ray budget applies; target depth is then timed on the full map)."""
    run, rays, td = _view_runner(model, enc, scene, height, width, mode, settings, num_samples)
    for _ in range(settings.warmup):
        run()
    runs: list[dict[str, float]] = []
    for _ in range(settings.repeats):
        with StageRecorder(model, settings.device) as rec:
            synchronize(settings.device)
            t0 = time.perf_counter()
            run()
            synchronize(settings.device)
            total = (time.perf_counter() - t0) * 1e3
        runs.append(rec.breakdown(total))
    med = {k: float(torch.tensor([r[k] for r in runs]).median()) for k in STAGE_NAMES}
    scale = height * width / rays
    if td is not None:
        med = {k: v * scale for k, v in med.items()}
        med["target_depth"] = time_target_depth(model, enc, scene, height, width,
                                                settings).median_ms
    return {"stages_ms": med, "total_ms": sum(med.values()), "mode": mode, "rays_timed": rays,
            "extrapolated": td is not None, "repeats": settings.repeats, "instrumented": True}


def time_ros_conversion(result: Any, model: GSNeRF, settings: BenchSettings) -> dict[str, Any]:
    """Render result -> the five sensor_msgs/Image messages of a response (the node's own
    conversion code, gsnerf_ros.ros.convert.output_to_images). Needs rclpy's message types;
    without them the stage is reported as skipped with the reason."""
    try:
        from gsnerf_ros.ros.convert import make_header, output_to_images
        from gsnerf_ros.runtime.engine import RenderOutput
    except Exception as e:  # noqa: BLE001 - any import failure means "no ROS here"
        return skipped(f"ROS message types unavailable ({type(e).__name__}: {e})")
    out = RenderOutput(rgb=result.rgb, depth=result.depth, labels=result.labels,
                       confidence=result.confidence)
    header = make_header("virtual_camera_optical_frame")
    n_classes = model.config.num_classes

    def run() -> None:
        output_to_images(out, header, model.palette, n_classes)

    st = measure(run, settings.device, max(settings.repeats, 5), settings.warmup)
    h, w = result.labels.shape
    return {**st.to_dict(), "per": "view", "height": int(h), "width": int(w), "messages": 5}
