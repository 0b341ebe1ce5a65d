"""Training / evaluation samples: a target view plus its source views, resized, as tensors.

Each item is a dict (docs/INTERFACES.md), **target last** in every per-view tensor:
``images`` [V+1,3,H,W] float in [0,1], ``K`` [V+1,3,3] (for the resized images), ``c2w``
[V+1,4,4], ``depths`` [V+1,H,W] m (0 = invalid or missing), ``labels`` [V+1,H,W] int64
(255 = ignore or missing), ``near``, ``far`` (0-d float tensors), ``scene`` (str),
``target_index`` (int), ``source_indices`` [V] int64, ``has_depth``, ``has_labels`` (bool).

Resizing: colour with area averaging when shrinking (anti-aliasing; bilinear when enlarging),
depth and labels nearest-neighbour (no invented depths or classes at edges), ``K`` through
:func:`gsnerf_ros.geometry.scale_intrinsics`.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from gsnerf_ros.geometry import scale_intrinsics
from gsnerf_ros.data.classes import IGNORE_INDEX, remap_labels
from gsnerf_ros.data.scene import Frame, Scene
from gsnerf_ros.data.view_selection import (
    EvalProtocol, TrainViewConfig, evaluation_views, sample_training_views,
)

__all__ = ["DatasetConfig", "GSNeRFDataset", "resize_frame", "TrainViewConfig", "EvalProtocol"]


def resize_frame(frame: Frame, height: int, width: int) -> Frame:
    """Resize a frame's image (anti-aliased), depth and labels (nearest) and scale its K."""
    H, W = frame.height, frame.width
    if (H, W) == (height, width):
        return frame
    img = frame.image.permute(1, 2, 0).numpy()
    interp = cv2.INTER_AREA if (height < H and width < W) else cv2.INTER_LINEAR
    img = cv2.resize(img, (width, height), interpolation=interp)
    image = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).clamp(0, 1)
    depth = labels = None
    if frame.depth is not None:
        depth = torch.from_numpy(cv2.resize(frame.depth.numpy(), (width, height),
                                            interpolation=cv2.INTER_NEAREST))
    if frame.labels is not None:
        lab = frame.labels.numpy().astype(np.int32)
        labels = torch.from_numpy(cv2.resize(lab, (width, height),
                                             interpolation=cv2.INTER_NEAREST)).long()
    K = scale_intrinsics(frame.K, width / W, height / H)
    return Frame(image=image.contiguous(), K=K, c2w=frame.c2w, depth=depth, labels=labels,
                 frame_id=frame.frame_id, stamp=frame.stamp)


@dataclass
class DatasetConfig:
    """Sample construction settings."""

    height: int = 240
    width: int = 320
    mode: str = "train"
    """``"train"`` (random targets and sources) or ``"eval"`` (fixed protocol)."""
    samples_per_epoch: int = 0
    """Training items per epoch; 0 = one per frame of every scene."""
    near: float | None = None
    """Override every scene's near plane (m); None = the scene's (dataset) value."""
    far: float | None = None
    near_far_jitter_prob: float = 0.05
    """Training only: with this probability scale near by U(0.95,1) and far by U(1,1.05)."""
    label_map: dict[int, int] | None = None
    """Optional id remap applied to every label map (unmapped ids -> 255)."""
    seed: int = 0
    cache_frames: int = 64
    """Resized frames kept per worker (LRU)."""
    train_views: TrainViewConfig = field(default_factory=TrainViewConfig)
    eval_protocol: EvalProtocol = field(default_factory=EvalProtocol)


class GSNeRFDataset(Dataset):
    """Target + sources samples from one or more scenes.

    Training items are deterministic given (``seed``, epoch, index): call :meth:`set_epoch`
    each epoch for fresh draws. Works with ``DataLoader(num_workers>0)`` and ``batch_size=1``
    (items of different scenes may differ in V only if a scene has fewer frames than V+1).
    """

    def __init__(self, scenes: list[Scene], cfg: DatasetConfig | None = None) -> None:
        self.cfg = cfg or DatasetConfig()
        if self.cfg.mode not in ("train", "eval"):
            raise ValueError(f"mode must be 'train' or 'eval', got {self.cfg.mode!r}")
        if not scenes:
            raise ValueError("GSNeRFDataset needs at least one scene")
        for s in scenes:
            if len(s) < 2:
                raise ValueError(f"scene {s.name!r} has {len(s)} frame(s); need >= 2")
        self.scenes = scenes
        self.epoch = 0
        self._cache: OrderedDict[tuple[int, int], Frame] = OrderedDict()
        self._poses = [s.poses() for s in scenes]
        if self.cfg.mode == "eval":
            self.items: list[tuple[int, int, Tensor | None]] = [
                (si, t, src) for si, s in enumerate(scenes)
                for t, src in evaluation_views(self._poses[si], self.cfg.eval_protocol)]
        else:
            self.items = [(si, t, None) for si, s in enumerate(scenes) for t in range(len(s))]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        if self.cfg.mode == "train" and self.cfg.samples_per_epoch > 0:
            return self.cfg.samples_per_epoch
        return len(self.items)

    def frame(self, si: int, fi: int) -> Frame:
        """Frame ``fi`` of scene ``si`` at the dataset's size (labels remapped; cached)."""
        return self._frame(si, fi)

    def _frame(self, si: int, fi: int) -> Frame:
        key = (si, fi)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        f = resize_frame(self.scenes[si].frame(fi), self.cfg.height, self.cfg.width)
        if self.cfg.label_map is not None and f.labels is not None:
            f.labels = remap_labels(f.labels, self.cfg.label_map)
        if self.cfg.cache_frames > 0:
            self._cache[key] = f
            while len(self._cache) > self.cfg.cache_frames:
                self._cache.popitem(last=False)
        return f

    def views(self, index: int) -> tuple[int, int, Tensor, np.random.Generator]:
        """(scene index, target index, source indices, rng) of item ``index``."""
        rng = np.random.default_rng([self.cfg.seed, self.epoch, index])
        if self.cfg.mode == "eval":
            si, t, src = self.items[index]
            return si, t, src, rng  # type: ignore[return-value]
        if self.cfg.samples_per_epoch > 0:
            si, t, _ = self.items[int(rng.integers(0, len(self.items)))]
        else:
            si, t, _ = self.items[index]
        t, src = sample_training_views(self._poses[si], rng, self.cfg.train_views, target=t)
        return si, t, src, rng

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"item {index} out of range ({len(self)})")
        si, t, src, rng = self.views(index)
        scene = self.scenes[si]
        order = [int(i) for i in src] + [t]
        frames = [self._frame(si, i) for i in order]
        H, W = self.cfg.height, self.cfg.width
        has_d = all(f.depth is not None for f in frames)
        has_l = all(f.labels is not None for f in frames)
        depths = torch.stack([f.depth if f.depth is not None else torch.zeros(H, W)
                              for f in frames]).float()
        labels = torch.stack([f.labels if f.labels is not None
                              else torch.full((H, W), IGNORE_INDEX, dtype=torch.long)
                              for f in frames]).long()
        near = self.cfg.near if self.cfg.near is not None else scene.near
        far = self.cfg.far if self.cfg.far is not None else scene.far
        if self.cfg.mode == "train" and rng.uniform() < self.cfg.near_far_jitter_prob:
            near *= float(rng.uniform(0.95, 1.0))
            far *= float(rng.uniform(1.0, 1.05))
        return {
            "images": torch.stack([f.image for f in frames]).float(),
            "K": torch.stack([f.K for f in frames]).float(),
            "c2w": torch.stack([f.c2w for f in frames]).float(),
            "depths": depths, "labels": labels,
            "near": torch.tensor(near, dtype=torch.float32),
            "far": torch.tensor(far, dtype=torch.float32),
            "scene": scene.name, "target_index": t,
            "source_indices": torch.as_tensor(order[:-1], dtype=torch.long),
            "has_depth": has_d, "has_labels": has_l,
        }
