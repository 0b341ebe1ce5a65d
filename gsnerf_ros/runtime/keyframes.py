"""The node's keyframe buffer (ROS-free, thread-safe); its encoding worker is
:class:`gsnerf_ros.runtime.encoding_worker.EncodingWorker`.

Keyframe policy: a frame becomes a keyframe when its camera moved more than
``min_translation`` metres or turned more than ``min_rotation_deg`` degrees since the **last
keyframe** (the first frame always enters), and the rate cap allows it: at least
``min_interval`` seconds (of frame stamps) since the last keyframe, and fewer than
``max_pending`` keyframes waiting for encoding. The cap keeps the encoder ahead of a fast
camera; the movement test against the last keyframe keeps the coverage (a skipped frame is not
lost ground: the next frame is compared with the same last keyframe).

Eviction policy (when the buffer already holds ``capacity`` keyframes), among the keyframes that
are neither waiting for nor under encoding (those are never evicted):
- ``oldest`` (default): drop the oldest keyframe — a sliding window over the recent trajectory;
- ``redundant``: drop the keyframe whose nearest other keyframe is closest by
  :func:`~gsnerf_ros.geometry.pose_distance` (the most redundant one; the newest is never
  dropped) — keeps the spatial coverage of everything visited;
- ``baseline``: drop the keyframe whose removal loses the least triangulation — keeps the
  baselines matching needs (a robot driving forward leaves keyframes on a line, which give each
  other little parallax; a sideways step or a turn is worth keeping). Each keyframe's
  triangulation is the sum of its ``encode_want_neighbors`` best
  :func:`~gsnerf_ros.geometry.triangulation_scores` against the others (at the scene-depth
  prior below); a keyframe's loss is how much the others' sums drop without it, plus
  ``policy.coverage_weight`` x its pose distance to its nearest other keyframe (of two
  keyframes that triangulate alike, the one with a close twin goes; a larger weight keeps more
  of the places driven past). The newest
  :data:`BASELINE_KEEP_NEWEST` are never dropped (the next keyframes are matched against them).

Encoding: every keyframe is encoded by the geo-reasoner by ``EncodingWorker`` in its own
thread (never on the request path), against ``num_neighbors`` other keyframes chosen by
``neighbour_rule`` (``nearest``: pose distance; ``triangulation``: the best
:func:`~gsnerf_ros.geometry.triangulation_scores`), newest first (the newest keyframe is the one
nearest the camera and the furthest from eviction). The scene depth the triangulation is
scored at: the keyframe's own measured depth (median, RGB-D), else the median of the depths
known in the buffer (:attr:`Keyframe.scene_depth`, set from each encoding by the worker's
``depth_fn``), else the middle of ``policy.depth_range`` in log depth
(:func:`~gsnerf_ros.geometry.scene_depth_prior`): a keyframe's own cost-volume depth only
exists after it is encoded. While
the buffer fills, a keyframe is first encoded as soon as ``min_neighbors`` others exist, against
as many as there are, and encoded once more (*upgraded*) when ``num_neighbors`` are there and no
keyframe waits for its first encoding; until then it renders with its first encoding. With
``min_neighbors`` = ``num_neighbors`` every keyframe is encoded exactly once and waits
(``pending``) until that many neighbours exist. Renders use only encoded keyframes and reuse
their cached encodings.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor

from gsnerf_ros.geometry import (NEIGHBOUR_RULES, choose_neighbours, nearest_views,
                                 pose_distance, rotation_angle, scene_depth_prior,
                                 triangulation_scores)

__all__ = ["Keyframe", "KeyframePolicy", "KeyframeBuffer", "EVICTION_POLICIES",
           "BASELINE_KEEP_NEWEST", "baseline_eviction_losses"]

EVICTION_POLICIES = ("oldest", "redundant", "baseline")

BASELINE_KEEP_NEWEST = 3
"""``baseline`` eviction never drops the newest this many keyframes."""


class _Failed:
    """Marker encoding of a keyframe whose encoding raised (never used as a source)."""

    def __repr__(self) -> str:
        return "<encoding failed>"


_FAILED = _Failed()


@dataclass
class Keyframe:
    """One buffered keyframe. ``image`` [3,H,W] float32 in [0,1]; ``K`` [3,3] px for that size;
    ``c2w`` [4,4] m (world <- optical frame); ``depth`` [H,W] m or None; ``stamp`` s;
    ``labels`` a 2D segmenter's labels at the camera's resolution
    (:class:`~gsnerf_ros.runtime.segmenter_labels.KeyframeLabels`) or None."""

    id: int
    stamp: float
    frame_id: str
    image: Tensor
    K: Tensor
    c2w: Tensor
    depth: Tensor | None = None
    encoding: Any = None
    encode_ms: float = 0.0
    encoded_with: int = 0
    """Neighbours its current encoding was computed against."""
    labels: Any = None
    """The upstream segmenter's labels of this frame (``topics.labels``), or None."""
    scene_depth: float | None = None
    """Median depth (m) of its encoding or measured depth, once known (neighbour choice)."""

    @property
    def encoded(self) -> bool:
        """Has a usable encoding (a failed encoding is never used as a source)."""
        return self.encoding is not None and self.encoding is not _FAILED

    @property
    def height(self) -> int:
        return int(self.image.shape[-2])

    @property
    def width(self) -> int:
        return int(self.image.shape[-1])


@dataclass
class KeyframePolicy:
    """When frames enter the buffer and which one leaves when it is full."""

    min_translation: float = 0.2
    """Metres the camera must move since the last keyframe."""
    min_rotation_deg: float = 15.0
    """...or degrees it must turn."""
    capacity: int = 32
    eviction: str = "oldest"
    min_interval: float = 0.0
    """Seconds (of frame stamps) between keyframes at least; 0 = no cap."""
    max_pending: int = 0
    """Keyframes that may wait for encoding; a frame arriving while that many wait is skipped
    (0 = no cap)."""
    neighbour_rule: str = "nearest"
    """How a keyframe's cost-volume neighbours are chosen (``nearest`` | ``triangulation``)."""
    coverage_weight: float = 0.1
    """``baseline`` eviction: loss per metre of pose distance to the nearest other keyframe
    (a triangulation score is at most 1 per neighbour; 0.1 makes it a tie-breaker)."""
    depth_range: tuple[float, float] = (0.25, 10.0)
    """Depth range (m) whose log-depth middle is the scene-depth prior before any depth is
    known (the engine sets the renderer's near/far)."""

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError(f"keyframe capacity must be >= 1, got {self.capacity}")
        if self.min_translation < 0 or self.min_rotation_deg < 0:
            raise ValueError("keyframe thresholds must be >= 0")
        if self.min_interval < 0 or self.max_pending < 0:
            raise ValueError("keyframe min_interval and max_pending must be >= 0")
        if self.eviction not in EVICTION_POLICIES:
            raise ValueError(f"eviction must be one of {EVICTION_POLICIES}, got {self.eviction!r}")
        if self.neighbour_rule not in NEIGHBOUR_RULES:
            raise ValueError(f"neighbour_rule must be one of {NEIGHBOUR_RULES}, got "
                             f"{self.neighbour_rule!r}")
        if not (math.isfinite(self.coverage_weight) and self.coverage_weight >= 0):
            raise ValueError(f"coverage_weight must be >= 0, got {self.coverage_weight}")
        near, far = self.depth_range
        if not 0 < near < far:
            raise ValueError(f"depth_range must satisfy 0 < near < far, got {self.depth_range}")


@dataclass
class _Stats:
    added: int = 0
    evicted: int = 0
    rejected: int = 0
    """Frames that did not move enough since the last keyframe."""
    skipped_rate: int = 0
    """Frames that moved enough but were skipped by the rate cap (interval or encoder backlog)."""
    encoded: int = 0
    upgraded: int = 0
    """Re-encodings of keyframes first encoded against fewer neighbours than wanted."""
    resets: int = 0


class KeyframeBuffer:
    """Bounded set of keyframes; every method is thread-safe (one condition variable).

    ``version`` increases on every change; :meth:`wait_for` blocks until a predicate holds.
    """

    def __init__(self, policy: KeyframePolicy | None = None) -> None:
        self.policy = policy or KeyframePolicy()
        self._frames: list[Keyframe] = []
        self._next_id = 0
        self._last_c2w: Tensor | None = None
        self._last_stamp: float | None = None
        self._encoding_id: int | None = None
        self.encode_min_neighbors = 0
        """Neighbours a keyframe needs before it can be encoded (set by the EncodingWorker)."""
        self.encode_want_neighbors = 0
        """Neighbours a complete encoding uses (set by the EncodingWorker)."""
        self._cond = threading.Condition()
        self.version = 0
        self.stats = _Stats()

    # --- policy ------------------------------------------------------------------------
    def is_new_keyframe(self, c2w: Tensor, stamp: float | None = None) -> bool:
        """Whether a frame at ``c2w`` [4,4] (stamp ``stamp`` s) becomes a keyframe: it moved
        enough since the last keyframe and the rate cap allows it (see the module docstring).
        Counts the frames refused for either reason in :attr:`stats`."""
        with self._cond:
            last, last_stamp = self._last_c2w, self._last_stamp
            pending = sum(1 for f in self._frames if f.encoding is None)
            # the encoder cannot start before it has its neighbours: no backlog until then
            warming_up = len(self._frames) <= self.encode_min_neighbors
        if last is None:
            return True
        c2w = c2w.to(last)
        moved = float((c2w[:3, 3] - last[:3, 3]).norm())
        turned = math.degrees(float(rotation_angle(c2w[:3, :3], last[:3, :3])))
        if not (moved > self.policy.min_translation or turned > self.policy.min_rotation_deg):
            with self._cond:
                self.stats.rejected += 1
            return False
        too_soon = (stamp is not None and last_stamp is not None
                    and 0 <= stamp - last_stamp < self.policy.min_interval)
        backlog = 0 < self.policy.max_pending <= pending and not warming_up
        if too_soon or backlog:
            with self._cond:
                self.stats.skipped_rate += 1
            return False
        return True

    def add(self, image: Tensor, K: Tensor, c2w: Tensor, stamp: float = 0.0, frame_id: str = "",
            depth: Tensor | None = None, force: bool = False,
            labels: Any = None) -> tuple[Keyframe | None, list[Keyframe]]:
        """Add a frame if the policy accepts it (or ``force``); ``labels``: its segmenter labels
        (:class:`Keyframe`). Returns (keyframe or None, evicted)."""
        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(f"keyframe image must be [3,H,W], got {tuple(image.shape)}")
        if not force and not self.is_new_keyframe(c2w, stamp):
            return None, []
        with self._cond:
            kf = Keyframe(id=self._next_id, stamp=float(stamp), frame_id=frame_id, image=image,
                          K=K.float(), c2w=c2w.float(), depth=depth, labels=labels)
            self._next_id += 1
            self._frames.append(kf)
            self._last_c2w, self._last_stamp = kf.c2w, kf.stamp
            evicted = []
            while len(self._frames) > self.policy.capacity:
                i = self._eviction_index()
                if i is None:      # every other keyframe waits for encoding: keep them all
                    break
                evicted.append(self._frames.pop(i))
            self.stats.added += 1
            self.stats.evicted += len(evicted)
            self.version += 1
            self._cond.notify_all()
            return kf, evicted

    def _eviction_index(self) -> int | None:
        """Index of the keyframe to drop, among those not waiting for or under encoding and
        never the newest; None when there is none."""
        frames = self._frames
        allowed = [i for i, f in enumerate(frames[:-1])
                   if f.encoding is not None and f.id != self._encoding_id]
        if not allowed:
            return None
        if self.policy.eviction == "oldest" or len(frames) < 3:
            return allowed[0]
        if self.policy.eviction == "baseline":
            allowed = [i for i in allowed if i < len(frames) - BASELINE_KEEP_NEWEST]
            if not allowed:
                return None
            loss = baseline_eviction_losses(frames, self._scene_depth(None, frames),
                                            max(1, self.encode_want_neighbors),
                                            self.policy.coverage_weight)
            return min(allowed, key=lambda i: float(loss[i]))
        c2w = torch.stack([f.c2w for f in frames])
        n = c2w.shape[0]
        d = pose_distance(c2w[:, None].expand(n, n, 4, 4), c2w[None].expand(n, n, 4, 4))
        d.fill_diagonal_(float("inf"))
        nearest = d.min(dim=1).values
        return min(allowed, key=lambda i: float(nearest[i]))

    def _scene_depth(self, kf: Keyframe | None, frames: list[Keyframe]) -> float:
        """Scene depth (m) to score triangulation at (module docstring): ``kf``'s own measured
        depth, else the median of ``frames``' known depths, else the depth-range prior."""
        if kf is not None and kf.depth is not None:
            d = kf.depth[torch.isfinite(kf.depth) & (kf.depth > 0)]
            if d.numel():
                return float(d.median())
        known = [f.scene_depth for f in frames if f.scene_depth is not None]
        return scene_depth_prior(*self.policy.depth_range,
                                 torch.tensor(known) if known else None)

    def clear(self) -> int:
        """Drop every keyframe (a time jump: the old poses belong to another timeline); returns
        how many were dropped. Keyframe ids keep increasing."""
        with self._cond:
            n = len(self._frames)
            self._frames.clear()
            self._last_c2w, self._last_stamp = None, None
            self.stats.resets += 1
            self.version += 1
            self._cond.notify_all()
            return n

    def num_pending(self) -> int:
        """Keyframes waiting for (or under) encoding."""
        with self._cond:
            return sum(1 for f in self._frames if f.encoding is None)

    # --- queries -----------------------------------------------------------------------
    def __len__(self) -> int:
        with self._cond:
            return len(self._frames)

    def keyframes(self) -> list[Keyframe]:
        """Snapshot of all keyframes, oldest first."""
        with self._cond:
            return list(self._frames)

    def encoded(self) -> list[Keyframe]:
        with self._cond:
            return [f for f in self._frames if f.encoded]

    def num_encoded(self) -> int:
        with self._cond:
            return sum(1 for f in self._frames if f.encoded)

    def num_provisional(self) -> int:
        """Encoded keyframes whose encoding used fewer neighbours than a complete one and that
        will be upgraded (the buffer holds enough keyframes for that)."""
        with self._cond:
            if self.encode_want_neighbors <= self.encode_min_neighbors:
                return 0                                   # every keyframe is encoded once
            want = min(self.encode_want_neighbors, len(self._frames) - 1)
            return sum(1 for f in self._frames if f.encoded and f.encoded_with < want)

    def get(self, kf_id: int) -> Keyframe | None:
        with self._cond:
            return next((f for f in self._frames if f.id == kf_id), None)

    def nearest(self, c2w: Tensor, k: int, encoded_only: bool = True,
                exclude_id: int | None = None) -> list[Keyframe]:
        """The ``k`` keyframes nearest to ``c2w`` [4,4] by pose distance, nearest first."""
        with self._cond:
            pool = [f for f in self._frames
                    if (f.encoded or not encoded_only) and f.id != exclude_id]
        if not pool or k <= 0:
            return []
        poses = torch.stack([f.c2w for f in pool])
        idx = nearest_views(c2w.to(poses), poses, k)
        return [pool[int(i)] for i in idx]

    def set_encoding(self, kf_id: int, encoding: Any, encode_ms: float = 0.0,
                     neighbors: int = 0, scene_depth: float | None = None) -> bool:
        """Attach an encoding computed against ``neighbors`` keyframes (``scene_depth``: its
        median depth, m, when known); False when the keyframe was dropped meanwhile (a reset).
        A failed re-encoding (the marker) keeps a keyframe's earlier usable encoding and is not
        retried."""
        with self._cond:
            if self._encoding_id == kf_id:
                self._encoding_id = None
            kf = next((f for f in self._frames if f.id == kf_id), None)
            if kf is None:
                return False
            if encoding is _FAILED and kf.encoded:
                kf.encoded_with = max(kf.encoded_with, neighbors)
                self.version += 1
                self._cond.notify_all()
                return True
            if kf.encoded:
                self.stats.upgraded += 1
            kf.encoding, kf.encode_ms, kf.encoded_with = encoding, encode_ms, neighbors
            if scene_depth is not None and math.isfinite(scene_depth) and scene_depth > 0:
                kf.scene_depth = float(scene_depth)
            self.stats.encoded += 1
            self.version += 1
            self._cond.notify_all()
            return True

    def mark_failed(self, kf_id: int, neighbors: int = 0) -> bool:
        """Record that encoding keyframe ``kf_id`` against ``neighbors`` keyframes failed: it
        leaves the pending set (not retried) and keeps an earlier usable encoding if it has
        one. False when the keyframe was dropped meanwhile."""
        return self.set_encoding(kf_id, _FAILED, neighbors=neighbors)

    def neighbours_for(self, kf: Keyframe, k: int) -> list[Keyframe]:
        """The ``k`` other keyframes (encoded or not) ``kf`` is matched against, best first, by
        ``policy.neighbour_rule`` (module docstring)."""
        if self.policy.neighbour_rule == "nearest":
            return self.nearest(kf.c2w, k, encoded_only=False, exclude_id=kf.id)
        with self._cond:
            frames = list(self._frames)
        pool = [f for f in frames if f.id != kf.id]
        if not pool or k <= 0:
            return []
        idx = choose_neighbours("triangulation", kf.c2w, kf.K, (kf.height, kf.width),
                                self._scene_depth(kf, frames), torch.stack([f.c2w for f in pool]),
                                torch.stack([f.K for f in pool]), k)
        return [pool[int(i)] for i in idx]

    def next_pending(self, min_neighbors: int, want_neighbors: int | None = None
                     ) -> tuple[Keyframe, list[Keyframe]] | None:
        """The next keyframe to encode, with its neighbours (best first,
        :meth:`neighbours_for`), or None: the
        newest unencoded keyframe once ``min_neighbors`` other keyframes exist, against
        min(``want_neighbors``, others) of them; else, when ``want_neighbors`` exceeds
        ``min_neighbors``, the newest keyframe encoded against fewer than that (an upgrade).
        It is marked as under encoding (never evicted) until :meth:`set_encoding`.
        ``want_neighbors`` defaults to ``min_neighbors``."""
        want = min_neighbors if want_neighbors is None else max(want_neighbors, min_neighbors)
        with self._cond:
            if len(self._frames) < min_neighbors + 1:
                return None
            k = min(want, len(self._frames) - 1)
            kf = next((f for f in reversed(self._frames) if f.encoding is None), None)
            if kf is None and want > min_neighbors:
                kf = next((f for f in reversed(self._frames)
                           if f.encoded and f.encoded_with < k), None)
            if kf is None:
                return None
            self._encoding_id = kf.id
        return kf, self.neighbours_for(kf, k)

    def wait_for(self, predicate: Callable[["KeyframeBuffer"], bool], timeout: float) -> bool:
        """Block until ``predicate(self)`` holds or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.1))
            return True

    def notify(self) -> None:
        with self._cond:
            self._cond.notify_all()


def baseline_eviction_losses(frames: list[Keyframe], scene_depth: float, m: int,
                             coverage_weight: float = 0.1) -> Tensor:
    """[N] loss of triangulation if each of ``frames`` were dropped (``baseline`` eviction,
    module docstring): each keyframe's triangulation is the sum of its ``m`` best
    :func:`~gsnerf_ros.geometry.triangulation_scores` against the others at ``scene_depth`` m;
    a keyframe's loss is the drop of the others' sums without it, plus ``coverage_weight`` x
    the pose distance (m) to its nearest other keyframe. Scored
    at the first keyframe's image size (each keyframe's own K)."""
    n = len(frames)
    c2w = torch.stack([f.c2w.float() for f in frames])
    K = torch.stack([f.K.float() for f in frames])
    s = triangulation_scores(c2w, K, (frames[0].height, frames[0].width), scene_depth, c2w, K)
    s.fill_diagonal_(0.0)
    m = max(1, min(m, n - 2))
    top = s.topk(m, dim=1).values.sum(1)                              # [N] with everyone
    loss = torch.zeros(n)
    for i in range(n):
        without = s.clone()
        without[:, i] = 0.0
        top_i = without.topk(m, dim=1).values.sum(1)
        drop = top - top_i
        drop[i] = 0.0
        loss[i] = drop.sum()
    d = pose_distance(c2w[:, None].expand(n, n, 4, 4), c2w[None].expand(n, n, 4, 4))
    d.fill_diagonal_(float("inf"))
    return loss + coverage_weight * d.min(dim=1).values
