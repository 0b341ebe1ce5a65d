"""Render chunk size from a memory cap (``render.max_memory_mb``, ``gsnerf-bench
--max-memory-mb``), never from the free memory: a robot's GPU is shared, so a render must use
a known, bounded amount whatever else is running.

The chunk is the largest power of two of rays whose estimated working set
(:func:`bytes_per_ray`) fits the cap, or the whole view when it fits at once. Powers of two
keep the chunk shape the same across resolutions (static shapes for CUDA graphs / compile; the
last chunk is padded by :meth:`GSNeRF.render` with ``pad_chunks``). The cap bounds the render's
working memory on top of the model weights and the cached keyframe encodings.
"""

from __future__ import annotations

from gsnerf_ros.model.gsnerf import GSNeRF
from gsnerf_ros.model.sampling_modes import sample_counts

__all__ = ["DEFAULT_MAX_MEMORY_MB", "MIN_CHUNK", "samples_per_ray", "bytes_per_ray",
           "chunk_for_budget", "auto_chunk"]

DEFAULT_MAX_MEMORY_MB = 2048
"""Default cap of a render's working memory (MB): 640x480 views fit (issue 12: <= 2 GB)."""
MIN_CHUNK = 256
"""Smallest chunk :func:`chunk_for_budget` returns, even when the cap is smaller."""


def samples_per_ray(model: GSNeRF, mode: str, num_samples: int | None = None) -> dict[str, int]:
    """:func:`~gsnerf_ros.model.sampling_modes.sample_counts` of the model's sampling config."""
    return sample_counts(model.config.sampling, mode, num_samples)


def bytes_per_ray(model: GSNeRF, views: int, samples: int, semantic_points: int,
                  bytes_per_value: int = 4) -> int:
    """Rough upper bound of the live activation bytes of one ray in ``render_rays``.

    Per (sample, view): the gathered view token (3 volume levels x Fv + F0 + 3 RGB + 4 dir)
    plus the transformer's tokens (d_model, qkv 3d, feed-forward ff_mult x d); per semantic
    point and view: the k x k semantic neighbourhood and its transformer tokens. A factor 2
    covers temporaries (masks, projections, norms). Measured on an H200 (notes of 2026-11-28):
    ~150 kB/ray in fp32 for the default model and 8 views; this gives ~180 kB.
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


def chunk_for_budget(per_ray_bytes: int, pixels: int, max_memory_mb: float) -> int:
    """Rays per chunk under ``max_memory_mb``: ``pixels`` when the whole view fits, else the
    largest power of two that fits (at least :data:`MIN_CHUNK`)."""
    if max_memory_mb <= 0:
        raise ValueError(f"max_memory_mb must be > 0, got {max_memory_mb}")
    if pixels < 1 or per_ray_bytes < 1:
        raise ValueError("pixels and per_ray_bytes must be >= 1")
    n = int(max_memory_mb * 2 ** 20) // per_ray_bytes
    if n >= pixels:
        return pixels
    return max(MIN_CHUNK, 1 << max(n, 1).bit_length() - 1)


def auto_chunk(model: GSNeRF, views: int, pixels: int, mode: str | None = None,
               num_samples: int | None = None,
               max_memory_mb: float = DEFAULT_MAX_MEMORY_MB, bytes_per_value: int = 4) -> int:
    """:func:`chunk_for_budget` for a render of ``pixels`` rays from ``views`` sources in
    ``mode`` (default: the model's sampling mode); ``bytes_per_value`` 2 under bf16/fp16."""
    spr = samples_per_ray(model, mode or model.config.sampling.mode, num_samples)
    per = bytes_per_ray(model, views, spr["network_evals"], spr["semantic_points"],
                        bytes_per_value)
    return chunk_for_budget(per, pixels, max_memory_mb)
