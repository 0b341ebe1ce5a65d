"""Depths along rays for every sampling strategy, behind one interface.

All functions return depths as the ray parameter ``t`` (= camera z-depth, rays from
``geometry.camera_rays``), shape [N, S], sorted ascending and clamped to [near, far].

Modes (``SamplingConfig.mode``):
- ``depth_guided`` (paper Eq. 8): K samples from N(D_T, sigma^2) plus one exactly on D_T.
  In training the K samples are random; at evaluation they are the K evenly spaced quantiles of
  that Gaussian, so renders are deterministic.
- ``mixed`` (paper A.4): a fixed total S; before ``mixed_switch_step`` a fraction (half) is
  uniform and the rest guided, then all guided. Without a step (inference) the final phase is used.
- ``uniform``: GeoNeRF-style evenly spaced, stratified (jittered in each bin) in training.
- ``hierarchical``: S-Ray/NeRF-style coarse uniform pass; :func:`fine_depths` then draws fine
  samples from the coarse weights (:func:`pdf_depths`) and merges them with the coarse ones
  (the renderer runs both passes).
- ``released``: the released code's 96 uniform + 31 Gaussian (sigma 0.5 m) + 1 surface sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from gsnerf_ros.model.config import SamplingConfig
from gsnerf_ros.model.sampling_modes import mode_spec, sample_counts

__all__ = ["RaySamples", "uniform_depths", "guided_depths", "pdf_depths", "sample_along_rays",
           "mixed_uniform_count", "merge_sorted", "fine_depths"]


@dataclass
class RaySamples:
    """``depths`` [N, S] sorted, in [near, far]; ``surface_index`` [N] int64: position of the
    sample lying exactly on D_T, or -1 where the mode has none."""

    depths: Tensor
    surface_index: Tensor


def _as_col(x: Tensor | float, n: int, ref: Tensor) -> Tensor:
    return torch.as_tensor(x, dtype=torch.float32, device=ref.device).expand(n).reshape(n, 1)


def uniform_depths(near: Tensor, far: Tensor, n: int, stratified: bool = False,
                   generator: torch.Generator | None = None) -> Tensor:
    """Evenly spaced (or stratified) depths. ``near``/``far`` [N, 1] -> [N, n].

    Deterministic: ``linspace(near, far, n)``; stratified: one uniform draw in each of n equal bins.
    """
    N = near.shape[0]
    if stratified:
        u = (torch.arange(n, device=near.device, dtype=torch.float32)
             + torch.rand(N, n, device=near.device, generator=generator)) / n
    else:
        u = torch.linspace(0.0, 1.0, n, device=near.device).expand(N, n)
    return near + (far - near) * u


def guided_depths(center: Tensor, k: int, std: Tensor, random: bool,
                  generator: torch.Generator | None = None) -> Tensor:
    """K depths from N(center, std^2). ``center``/``std`` [N, 1] -> [N, k] (unclamped).

    ``random=False`` gives the Gaussian's quantiles at (i + 0.5) / k (deterministic).
    """
    N = center.shape[0]
    if random:
        z = torch.randn(N, k, device=center.device, generator=generator)
    else:
        q = (torch.arange(k, device=center.device, dtype=torch.float32) + 0.5) / k
        z = (math.sqrt(2.0) * torch.erfinv(2.0 * q - 1.0)).expand(N, k)
    return center + std * z


def pdf_depths(bins: Tensor, weights: Tensor, n: int, deterministic: bool,
               generator: torch.Generator | None = None) -> Tensor:
    """Inverse-CDF samples from piecewise-constant weights (NeRF's fine sampling).

    ``bins`` [N, B + 1] edges, ``weights`` [N, B] >= 0 -> [N, n] depths inside the bins.
    """
    w = weights.detach().float() + 1e-5
    pdf = w / w.sum(-1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[:, :1]), torch.cumsum(pdf, -1)], -1)
    N = cdf.shape[0]
    if deterministic:
        u = ((torch.arange(n, device=cdf.device, dtype=torch.float32) + 0.5) / n).expand(N, n)
    else:
        u = torch.rand(N, n, device=cdf.device, generator=generator)
    u = u.contiguous()
    idx = torch.searchsorted(cdf.contiguous(), u, right=True).clamp(1, cdf.shape[-1] - 1)
    c0, c1 = cdf.gather(-1, idx - 1), cdf.gather(-1, idx)
    b0, b1 = bins.gather(-1, idx - 1), bins.gather(-1, idx)
    t = ((u - c0) / (c1 - c0).clamp(min=1e-8)).clamp(0.0, 1.0)
    return b0 + t * (b1 - b0)


def merge_sorted(a: Tensor, b: Tensor) -> Tensor:
    """Union of two depth sets per ray, sorted. [N, A], [N, B] -> [N, A + B]."""
    return torch.sort(torch.cat([a, b], -1), -1).values


def fine_depths(depths: Tensor, weights: Tensor, near: Tensor, far: Tensor, n: int,
                deterministic: bool, generator: torch.Generator | None = None) -> Tensor:
    """The hierarchical mode's fine pass: ``n`` depths drawn from the coarse pass's compositing
    ``weights`` [N, S] (bins between the midpoints of the coarse ``depths`` [N, S], closed by
    ``near``/``far`` [N] m; :func:`pdf_depths`), merged with the coarse depths -> [N, S + n]
    sorted. ``deterministic``: the pdf's evenly spaced quantiles (inference)."""
    mids = 0.5 * (depths[:, 1:] + depths[:, :-1])
    bins = torch.cat([near[:, None], mids, far[:, None]], -1)
    fine = pdf_depths(bins, weights, n, deterministic=deterministic, generator=generator)
    return merge_sorted(depths, fine)


def mixed_uniform_count(total: int, cfg: SamplingConfig, step: int | None) -> int:
    """Uniform samples of the ``mixed`` schedule at a training ``step`` (None = inference)."""
    if step is None or step >= cfg.mixed_switch_step:
        return 0
    return min(int(round(total * cfg.mixed_uniform_fraction)), total - 1)


def _with_surface(other: Tensor, surface: Tensor, near: Tensor, far: Tensor) -> RaySamples:
    allz = torch.cat([other, surface], -1).clamp(min=near, max=far)
    depths, order = torch.sort(allz, dim=-1, stable=True)
    surf = (order == allz.shape[-1] - 1).long().argmax(-1)
    return RaySamples(depths=depths, surface_index=surf)


def sample_along_rays(mode: str, near: Tensor | float, far: Tensor | float,
                      target_depth: Tensor | None, cfg: SamplingConfig, training: bool,
                      num_samples: int | None = None, step: int | None = None,
                      generator: torch.Generator | None = None,
                      sigma: float | None = None) -> RaySamples:
    """Sample depths for N rays.

    ``near``/``far``: floats or [N]; ``target_depth`` [N] (D_T, needed by depth_guided, mixed
    and released). ``num_samples`` overrides the mode's main count: depth_guided -> total
    samples (K = num_samples - 1 Gaussian + 1 surface); mixed -> total; uniform -> total;
    hierarchical -> coarse count. ``sigma`` overrides ``cfg.sigma`` (the Gaussian samples' std,
    relative or absolute as ``cfg.sigma_mode``). Returns :class:`RaySamples` ([N, S], sorted,
    clamped).
    """
    if target_depth is None and mode_spec(mode).needs_target_depth:
        raise ValueError(f"sampling mode {mode!r} needs target_depth")
    first = sample_counts(cfg, mode, num_samples)["first_pass"]
    ref = target_depth if target_depth is not None else torch.as_tensor(near, dtype=torch.float32)
    N = target_depth.shape[0] if target_depth is not None else (
        near.shape[0] if isinstance(near, Tensor) and near.dim() > 0 else 1)
    nr, fr = _as_col(near, N, ref), _as_col(far, N, ref)
    none = torch.full((N,), -1, dtype=torch.long, device=nr.device)

    if mode in ("uniform", "hierarchical"):
        n = first
        if n < 2:
            raise ValueError(f"{mode} sampling needs >= 2 samples, got {n}")
        d = uniform_depths(nr, fr, n, stratified=training, generator=generator)
        return RaySamples(depths=d.clamp(min=nr, max=fr), surface_index=none)

    assert target_depth is not None
    td = target_depth.detach().float().reshape(N, 1).clamp(min=nr, max=fr)
    if mode == "released":
        uni = uniform_depths(nr, fr, cfg.released_uniform, stratified=False)
        std = torch.full_like(td, cfg.released_sigma)
        g = guided_depths(td, cfg.released_guided - 1, std, random=training, generator=generator)
        return _with_surface(torch.cat([uni, g], -1), td, nr, fr)

    sig = cfg.sigma if sigma is None else float(sigma)
    if cfg.sigma_mode == "relative":
        std = (sig * td).clamp(min=cfg.sigma_min)
    else:
        std = torch.full_like(td, max(sig, cfg.sigma_min))
    total = first
    n_uni = 0 if mode == "depth_guided" else mixed_uniform_count(total, cfg,
                                                                 step if training else None)
    if total < 1:
        raise ValueError(f"{mode} sampling needs >= 1 sample, got {total}")
    parts = []
    if n_uni > 0:
        parts.append(uniform_depths(nr, fr, n_uni, stratified=training, generator=generator)
                     if n_uni >= 2 else 0.5 * (nr + fr))
    k = total - 1 - n_uni
    if k > 0:
        parts.append(guided_depths(td, k, std, random=training, generator=generator))
    other = torch.cat(parts, -1) if parts else td[:, :0]
    return _with_surface(other, td, nr, fr)
