"""Which frames serve as sources for a target view.

Distance between two cameras = centre distance (m) + ``angle_weight`` x angle between optical
axes (rad) (:func:`gsnerf_ros.geometry.pose_distance`); ``angle_weight = 0`` is the paper's pure
centre distance. The default 1/pi counts a 180 deg turn like 1 m, which matters for robots that
turn in place (cameras at one spot looking away share nothing).

- :func:`select_sources`: K nearest frames to a target (target excluded).
- :func:`cost_volume_neighbours`: for each source, its nearest other sources (self first), or
  with ``rule="triangulation"`` the ones that triangulate it best
  (:func:`gsnerf_ros.geometry.triangulation_neighbours`; what ``GSNeRF.encode_sources`` does
  with ``cost_volume.neighbour_rule: triangulation``, in training and evaluation alike).
- :func:`sample_training_views`: random target; sources = K drawn from the nearest
  ``K x ratio`` frames (ratio 1 or 2, pool capped at 12), as in the released code.
- :func:`evaluation_views`: the fixed evaluation protocol (see :class:`EvalProtocol`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from gsnerf_ros.geometry import (nearest_views, pose_distance, scene_depth_prior,
                                 triangulation_neighbours)
from gsnerf_ros.data.scene import Scene

__all__ = ["select_sources", "cost_volume_neighbours", "TrainViewConfig",
           "sample_training_views", "EvalProtocol", "evaluation_views"]

DEFAULT_ANGLE_WEIGHT = 1.0 / math.pi


def _poses(scene_or_poses: Scene | Tensor) -> Tensor:
    p = scene_or_poses.poses() if isinstance(scene_or_poses, Scene) else scene_or_poses
    if p.ndim != 3 or tuple(p.shape[1:]) != (4, 4):
        raise ValueError(f"poses must be [N,4,4], got {tuple(p.shape)}")
    return p.float()


def select_sources(scene_or_poses: Scene | Tensor, target: int | Tensor, k: int,
                   angle_weight: float = DEFAULT_ANGLE_WEIGHT,
                   candidates: Tensor | list[int] | None = None) -> Tensor:
    """Indices of the ``k`` frames nearest to a target, nearest first, the target excluded.

    ``target`` is a frame index of the scene, or a pose [4,4] (a novel view; nothing excluded).
    ``candidates`` restricts the choice to these frame indices. Returns int64 (min(k, n),).
    """
    poses = _poses(scene_or_poses)
    n = poses.shape[0]
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    cand = (torch.arange(n) if candidates is None
            else torch.as_tensor(candidates, dtype=torch.long))
    if isinstance(target, Tensor) and target.ndim == 2:
        t_pose, exclude = target.float(), None
    else:
        ti = int(target)
        if not 0 <= ti < n:
            raise IndexError(f"target index {ti} out of range for {n} frames")
        t_pose = poses[ti]
        hit = torch.nonzero(cand == ti).flatten()
        exclude = hit if hit.numel() else None
    local = nearest_views(t_pose, poses[cand], k, exclude=exclude, angle_weight=angle_weight)
    return cand[local]


def cost_volume_neighbours(source_c2w: Tensor, m: int = 3, angle_weight: float = 0.0,
                           rule: str = "nearest", K: Tensor | None = None,
                           size: tuple[int, int] | None = None,
                           scene_depth: Tensor | float | None = None,
                           near_far: tuple[float, float] | None = None) -> Tensor:
    """For each source view, itself then its ``m`` nearest other sources (``rule="nearest"``,
    camera-centre distance by default: the paper) or the ``m`` that triangulate it best
    (``rule="triangulation"``: needs ``K`` [V,3,3] px for images of ``size`` (H, W) and the
    ``scene_depth`` m, float or [V], else ``near_far`` (m) for
    :func:`~gsnerf_ros.geometry.scene_depth_prior`).

    Shape: (V,4,4) -> (V, 1 + min(m, V-1)) int64.
    """
    V = source_c2w.shape[0]
    m = min(m, V - 1)
    if rule == "triangulation":
        if K is None or size is None or (scene_depth is None and near_far is None):
            raise ValueError("the triangulation rule needs K, size and scene_depth or near_far")
        depth = scene_depth if scene_depth is not None else scene_depth_prior(*near_far)
        nb = triangulation_neighbours(source_c2w.float(), K.float(), size, depth, m)
        return torch.cat([torch.arange(V)[:, None], nb.cpu()], 1)
    if rule != "nearest":
        raise ValueError(f"rule must be nearest or triangulation, got {rule!r}")
    rows = []
    for i in range(V):
        nb = nearest_views(source_c2w[i], source_c2w, m, exclude=[i], angle_weight=angle_weight)
        rows.append(torch.cat([torch.tensor([i]), nb]))
    return torch.stack(rows)


@dataclass
class TrainViewConfig:
    """Training view sampling (released-code defaults)."""

    num_sources: int = 8
    pool_ratios: tuple[int, ...] = (1, 2)
    """The pool of nearest frames is ``num_sources x ratio`` with ``ratio`` drawn from these."""
    pool_cap: int = 12
    angle_weight: float = DEFAULT_ANGLE_WEIGHT
    target_in_pool_prob: float = 0.0
    """Probability the target may be among its own sources (released code: 0.02; off here,
    it makes the task trivial for that sample)."""
    source_strides: tuple[int, ...] = (1,)
    """Sources come from every ``stride``-th frame (random phase; ``stride`` drawn from these),
    like the keyframes of the node's buffer and the evaluation protocol's source pool, so that
    training sees the baselines it is evaluated at. ``(1,)``: every frame (released code;
    consecutive frames of a dense trajectory are centimetres apart)."""


def sample_training_views(scene_or_poses: Scene | Tensor, rng: np.random.Generator,
                          cfg: TrainViewConfig | None = None,
                          target: int | None = None) -> tuple[int, Tensor]:
    """Draw (target, sources): random target (unless given), sources shuffled from its pool.

    Returns ``(target_index, sources)`` with ``sources`` int64 (min(num_sources, n-1),).
    """
    cfg = cfg or TrainViewConfig()
    poses = _poses(scene_or_poses)
    n = poses.shape[0]
    if n < 2:
        raise ValueError("a training sample needs a scene with at least 2 frames")
    t = int(rng.integers(0, n)) if target is None else int(target)
    ratio = int(cfg.pool_ratios[int(rng.integers(0, len(cfg.pool_ratios)))])
    pool_n = max(cfg.num_sources, min(cfg.num_sources * ratio, cfg.pool_cap))
    stride = int(cfg.source_strides[int(rng.integers(0, len(cfg.source_strides)))])
    if stride < 1:
        raise ValueError(f"source_strides must be >= 1, got {cfg.source_strides}")
    # Keep enough candidates for a full source set (a short scene falls back to every frame).
    while stride > 1 and (n - 1) // stride < cfg.num_sources:
        stride -= 1
    phase = int(rng.integers(0, stride))
    cand = torch.arange(phase, n, stride)
    if rng.uniform() < cfg.target_in_pool_prob:
        d = pose_distance(poses[t].expand_as(poses[cand]), poses[cand], cfg.angle_weight)
        pool = cand[torch.argsort(d, stable=True)[:pool_n]]
    else:
        pool = select_sources(poses, t, pool_n, cfg.angle_weight, candidates=cand)
    perm = torch.from_numpy(rng.permutation(pool.shape[0]))
    return t, pool[perm][: cfg.num_sources]


@dataclass
class EvalProtocol:
    """Fixed evaluation views (the released code's rule, kept for comparability).

    Sources are drawn from frames ``0, stride, 2*stride, ...`` (at most ``max_source_frames``);
    targets are frames ``target_offset + j * target_stride`` (first ``max_targets``; never a
    source frame while ``target_offset % source_stride != 0``). Each target's sources are its
    ``num_sources`` nearest source-pool frames.
    """

    num_sources: int = 8
    source_stride: int = 5
    max_source_frames: int = 140
    target_offset: int = 2
    target_stride: int = 20
    max_targets: int = 10
    angle_weight: float = DEFAULT_ANGLE_WEIGHT


def evaluation_views(scene_or_poses: Scene | Tensor,
                     protocol: EvalProtocol | None = None) -> list[tuple[int, Tensor]]:
    """``[(target_index, sources), ...]`` of the evaluation protocol for one scene."""
    pr = protocol or EvalProtocol()
    poses = _poses(scene_or_poses)
    n = poses.shape[0]
    pool = torch.arange(0, n, pr.source_stride)[: pr.max_source_frames]
    targets = list(range(pr.target_offset, n, pr.target_stride))[: pr.max_targets]
    out = []
    for t in targets:
        src = select_sources(poses, t, pr.num_sources, pr.angle_weight, candidates=pool)
        if src.numel():
            out.append((t, src))
    return out
