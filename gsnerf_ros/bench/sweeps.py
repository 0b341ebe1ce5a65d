"""Sweeps over render size, samples per ray and source views, and the fitted growth exponents.

Each point is a view time from :func:`gsnerf_ros.bench.stages.time_view` (same protocol as the
mode comparison). Exponents are least-squares slopes of log(time) against log(pixels / samples
/ views): 1.0 is linear growth; < 1 means a fixed per-view or per-ray part that does not grow.
"""

from __future__ import annotations

from typing import Any, Sequence

from tqdm import tqdm

from gsnerf_ros.bench.scene import make_bench_scene
from gsnerf_ros.bench.stages import (BenchSettings, encode_scene, time_keyframe_encode,
                                     time_target_depth, time_view)
from gsnerf_ros.bench.timing import loglog_slope
from gsnerf_ros.model import GSNeRF

__all__ = ["sweep_resolution", "sweep_samples", "sweep_views", "DEFAULT_RESOLUTIONS",
           "DEFAULT_SAMPLES", "DEFAULT_VIEWS"]

DEFAULT_RESOLUTIONS: tuple[tuple[int, int], ...] = ((120, 160), (240, 320), (480, 640))
DEFAULT_SAMPLES: tuple[int, ...] = (4, 8, 16, 32, 64, 128)
DEFAULT_VIEWS: tuple[int, ...] = (4, 6, 8)


def sweep_resolution(model: GSNeRF, views: int, settings: BenchSettings,
                     sizes: Sequence[tuple[int, int]] = DEFAULT_RESOLUTIONS, mode: str = "depth_guided",
                     encode: bool = True, progress: bool = True) -> dict[str, Any]:
    """Per size (H, W): keyframe encode, target depth and one rendered view."""
    points = []
    for h, w in tqdm(sizes, desc="sweep resolution", disable=not progress, leave=False):
        scene = make_bench_scene(h, w, views, settings.device)
        enc = encode_scene(model, scene, settings)
        tds = time_target_depth(model, enc, scene, h, w, settings)
        view = time_view(model, enc, scene, h, w, mode, settings, td_stats=tds)
        pt = {"height": h, "width": w, "pixels": h * w, "render": view,
              "target_depth": tds.to_dict()}
        if encode:
            pt["keyframe_encode"] = time_keyframe_encode(model, scene, settings)
        points.append(pt)
        del enc
    px = [p["pixels"] for p in points]
    return {"mode": mode, "views": views, "points": points,
            "exponent_render_vs_pixels": loglog_slope(px, [p["render"]["median_ms"] for p in points]),
            "exponent_encode_vs_pixels": loglog_slope(
                px, [p["keyframe_encode"]["median_ms"] for p in points]) if encode else None,
            "exponent_target_depth_vs_pixels": loglog_slope(
                px, [p["target_depth"]["median_ms"] for p in points])}


def sweep_samples(model: GSNeRF, height: int, width: int, views: int, settings: BenchSettings,
                  samples: Sequence[int] = DEFAULT_SAMPLES, modes: Sequence[str] = ("depth_guided",),
                  progress: bool = True) -> dict[str, Any]:
    """Per mode and samples-per-ray count: one rendered view (cached encoding)."""
    scene = make_bench_scene(height, width, views, settings.device)
    enc = encode_scene(model, scene, settings)
    tds = time_target_depth(model, enc, scene, height, width, settings)
    out: dict[str, Any] = {"height": height, "width": width, "views": views, "modes": {}}
    for mode in modes:
        pts = [time_view(model, enc, scene, height, width, mode, settings, num_samples=s,
                         td_stats=tds)
               for s in tqdm(samples, desc=f"sweep samples ({mode})", disable=not progress,
                             leave=False)]
        out["modes"][mode] = {
            "points": pts,
            "exponent_render_vs_samples": loglog_slope([p["samples"] for p in pts],
                                                       [p["median_ms"] for p in pts]),
            "exponent_render_vs_samples_upper_half": loglog_slope(
                [p["samples"] for p in pts[len(pts) // 2:]],
                [p["median_ms"] for p in pts[len(pts) // 2:]])}
    return out


def sweep_views(model: GSNeRF, height: int, width: int, settings: BenchSettings,
                views: Sequence[int] = DEFAULT_VIEWS, mode: str = "depth_guided",
                progress: bool = True) -> dict[str, Any]:
    """Per source-view count: one rendered view from the first V cached encodings."""
    vmax = max(views)
    scene = make_bench_scene(height, width, vmax, settings.device)
    enc_all = encode_scene(model, scene, settings)
    pts = []
    for v in tqdm(views, desc="sweep views", disable=not progress, leave=False):
        enc = enc_all.subset(list(range(v)))
        tds = time_target_depth(model, enc, scene, height, width, settings)
        pts.append(time_view(model, enc, scene, height, width, mode, settings, td_stats=tds))
    return {"mode": mode, "height": height, "width": width, "points": pts,
            "exponent_render_vs_views": loglog_slope([p["views"] for p in pts],
                                                     [p["median_ms"] for p in pts])}
