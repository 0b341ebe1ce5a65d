"""Render chunk size from free device memory (used by the node with `render.chunk: 0` and by
`gsnerf-bench`)."""

from __future__ import annotations

import torch

from gsnerf_ros.model.gsnerf import GSNeRF
from gsnerf_ros.model.sampling_modes import sample_counts

__all__ = ["samples_per_ray", "bytes_per_ray", "choose_chunk", "auto_chunk"]


def samples_per_ray(model: GSNeRF, mode: str, num_samples: int | None = None) -> dict[str, int]:
    """:func:`~gsnerf_ros.model.sampling_modes.sample_counts` of the model's sampling config."""
    return sample_counts(model.config.sampling, mode, num_samples)


def bytes_per_ray(model: GSNeRF, views: int, samples: int, semantic_points: int,
                  bytes_per_value: int = 4) -> int:
    """Rough upper bound of the live activation bytes of one ray in ``render_rays``.

    Per (sample, view): the gathered view token (3 volume levels x Fv + F0 + 3 RGB + 4 dir)
    plus the transformer's tokens (d_model, qkv 3d, feed-forward ff_mult x d); per semantic
    point and view: the k x k semantic neighbourhood and its transformer tokens. A factor 2
    covers temporaries (masks, projections, norms).
    """
    c = model.config
    tok = 3 * c.cost_volume.volume_channels + c.encoder.fpn_channels[0] + 3 + 4
    r = c.renderer
    per_sample_view = tok + r.d_model * (4 + r.ff_mult) + 8
    s = c.semantic
    k = s.neighbourhood
    per_sem_view = k * k * c.semantic_channels + s.d_model * (4 + s.ff_mult)
    per_ray = samples * (views + 1) * per_sample_view + semantic_points * (views + 1) * per_sem_view
    return int(2 * per_ray * bytes_per_value)


def choose_chunk(model: GSNeRF, views: int, samples: int, semantic_points: int,
                 device: torch.device, pixels: int, fraction: float = 0.5,
                 fallback: int | None = None, minimum: int = 1024) -> int:
    """Rays per chunk so one chunk uses at most ``fraction`` of the free CUDA memory.

    On other devices returns ``fallback`` (the config's chunk). Never more than ``pixels``
    (one chunk per view) and never below ``minimum``.
    """
    if device.type != "cuda":
        return min(fallback or model.config.sampling.chunk, pixels)
    free, _ = torch.cuda.mem_get_info(device)
    per = bytes_per_ray(model, views, samples, semantic_points)
    n = int(free * fraction) // max(per, 1)
    return int(max(minimum, min(n, pixels)))


def auto_chunk(model: GSNeRF, views: int, pixels: int, mode: str | None = None,
               num_samples: int | None = None, fraction: float = 0.5) -> int:
    """:func:`choose_chunk` for a render of ``pixels`` rays from ``views`` sources in ``mode``
    (default: the model's sampling mode) on the model's device."""
    spr = samples_per_ray(model, mode or model.config.sampling.mode, num_samples)
    return choose_chunk(model, views, spr["samples"], spr["semantic_points"], model.device,
                        pixels, fraction=fraction)
