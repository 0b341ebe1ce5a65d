"""Arithmetic per stage: FLOPs of the real code path (``gsnerf-bench --flops``).

Counted with :class:`torch.utils.flop_counter.FlopCounterMode`, which covers matmuls,
convolutions and attention (element-wise work, gathers and the z-buffer are not FLOP-counted).
A keyframe encode is counted whole; a view render is counted on an even subset of rays (the
bench's ray subset) and scaled to the view, as its time is. The numbers say how far a device's
peak arithmetic is from the speed targets; they are not timings.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from gsnerf_ros.bench.scene import BenchScene
from gsnerf_ros.bench.stages import ray_subset
from gsnerf_ros.model import GSNeRF, SourceEncoding

__all__ = ["count_flops"]


def _flops(fn: Any) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        fn()
    return int(counter.get_total_flops())


def count_flops(model: GSNeRF, enc: SourceEncoding, scene: BenchScene, height: int, width: int,
                modes: list[str], rays: int = 512) -> dict[str, Any]:
    """GFLOP of one keyframe encode (``encode_view`` against its cost-volume neighbours) and of
    one ``height`` x ``width`` view per mode (from ``rays`` rays, scaled)."""
    m = min(model.config.cost_volume.num_neighbors, len(scene) - 1)
    encode = _flops(lambda: model.encode_view(
        scene.images[0], scene.K[0], scene.c2w[0], scene.images[1:1 + m], scene.K[1:1 + m],
        scene.c2w[1:1 + m], scene.near, scene.far))
    K = scene.target_K
    near, far = model.depth_range(enc, scene.near, scene.far)
    td = model.target_depth(enc, K, scene.target_c2w, height, width, near, far)
    uv = ray_subset(height, width, rays, enc.image.device)
    scale = height * width / uv.shape[0]
    per_mode = {}
    for mode in modes:
        f = _flops(lambda: model.render_rays(enc, K, scene.target_c2w, uv, height, width,
                                             mode=mode, near=near, far=far, target_depth=td,
                                             training=False))
        per_mode[mode] = round(f * scale / 1e9, 3)
    return {"keyframe_encode_gflop": round(encode / 1e9, 3), "render_gflop_per_view": per_mode,
            "rays_counted": int(uv.shape[0]), "height": height, "width": width,
            "views": len(enc), "counted_ops": "matmul, convolution, attention"}
