"""Training objective ``segmenter``: the Semantic Geo-Reasoner's 2D segmenter alone, on single
frames of every training room.

A GSNeRF step sees the sources of one room, so a step's 2D semantic loss is eight views of the
same walls; a segmenter learns from batches of many rooms (docs/METHOD.md §9). This objective
(``TrainConfig.objective: segmenter``) trains the 2D semantic path on batches of
``data.num_sources`` frames, each from another room where there are enough, at the semantic
level the model encodes them at (:func:`~gsnerf_ros.model.pyramid.semantic_level`), each
flipped left-right with probability 1/2 and its colours varied by ``data.colour_jitter``, with
the run's class weights. Nothing is rendered.
The trainer, checkpoints, validation and recipe stages are those of the GSNeRF objective
(:class:`~gsnerf_ros.train.trainer.Trainer`).

Freezing the modules the geometry reads (:data:`GEOMETRY_PATH` of the pretrained encoder: the
stem, blocks 0-2 whose outputs are the stride-2 and stride-4 taps, and the FPN) keeps the cost
volume's features, depths, colour and D_T exactly as they were while the deeper blocks and the
semantic decoder learn; the semantic renderer is then trained against the new semantic maps
(``config/recipes/cpu_pretrained.yaml``). With an own semantic stem
(``model.encoder.semantic_stem: own``) the semantic path's copy of those early blocks trains
too, so the whole 2D segmenter learns and the geometry still does not move.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from gsnerf_ros.model.pyramid import depth_level
from gsnerf_ros.train.config import TrainConfig
from gsnerf_ros.train.losses import IGNORE_INDEX, class_weights_for, semantic_2d_ce

__all__ = ["GEOMETRY_PATH", "FrameBatches", "SegmenterStep", "jitter_colours", "flip_batch"]

GEOMETRY_PATH = ("encoder.backbone.conv_stem", "encoder.backbone.bn0",
                 "encoder.backbone.blocks.0", "encoder.backbone.blocks.1",
                 "encoder.backbone.blocks.2",
                 "encoder.fpn_lateral0", "encoder.fpn_lateral1",
                 "encoder.fpn_lateral2", "encoder.fpn_smooth0", "encoder.fpn_smooth1")
"""The parameters of the ``efficientnet_lite0`` encoder that the feature pyramid (and so the
cost volume, the depths and the renderers' features) is computed from: everything up to the
stride-4 tap, and the FPN. Frozen with the rest of the geometry, a ``segmenter`` stage leaves
every geometric output unchanged."""


class FrameBatches(Dataset):
    """Batches of single labelled frames for the ``segmenter`` objective.

    Wraps the training :class:`~gsnerf_ros.data.dataset.GSNeRFDataset` (its scenes, frame size,
    label remapping and frame cache). Item ``index`` is ``batch`` frames drawn with
    ``numpy.random.default_rng([seed, epoch, index])``: distinct rooms while there are at least
    ``batch`` of them, a random frame of each. Returns ``images`` [B, 3, H, W] in [0, 1],
    ``labels`` [B, H, W] int64 (``IGNORE_INDEX`` where unlabelled), ``depths`` [B, H, W] m (0
    where a frame has none) and ``K`` [B, 3, 3] (the ``depth_prior`` objective's)."""

    def __init__(self, frames: Any, batch: int, samples_per_epoch: int = 0) -> None:
        if batch < 1:
            raise ValueError(f"FrameBatches: batch must be >= 1, got {batch}")
        self.frames = frames
        self.batch = int(batch)
        self.class_names = frames.class_names
        self.palette = frames.palette
        self._sizes = [len(s) for s in frames.scenes]
        self._len = samples_per_epoch or max(1, sum(self._sizes) // self.batch)

    def set_epoch(self, epoch: int) -> None:
        self.frames.set_epoch(epoch)

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"item {index} out of range ({len(self)})")
        rng = np.random.default_rng([self.frames.cfg.seed, self.frames.epoch, index])
        n = len(self._sizes)
        rooms = rng.choice(n, size=self.batch, replace=n < self.batch)
        picked = [self.frames.frame(int(r), int(rng.integers(0, self._sizes[r]))) for r in rooms]
        images = torch.stack([f.image for f in picked]).float()
        labels = torch.stack([f.labels if f.labels is not None else
                              torch.full(f.image.shape[-2:], IGNORE_INDEX, dtype=torch.long)
                              for f in picked]).long()
        depths = torch.stack([f.depth if f.depth is not None else
                              torch.zeros(f.image.shape[-2:]) for f in picked]).float()
        K = torch.stack([f.K for f in picked]).float()
        return {"images": images, "labels": labels, "depths": depths, "K": K}


def jitter_colours(images: Tensor, amount: float) -> Tensor:
    """Each image of ``images`` [B, 3, H, W] in [0, 1] with its brightness, contrast and
    saturation scaled by factors drawn uniformly from [1 - amount, 1 + amount] and each channel
    by one from [1 - amount/2, 1 + amount/2] (a white balance), clamped to [0, 1]; torch's RNG.
    ``amount`` 0 returns ``images``."""
    if amount <= 0:
        return images
    B = images.shape[0]

    def factor(*shape: int, spread: float = amount) -> Tensor:
        return 1.0 + spread * (2.0 * torch.rand(B, *shape) - 1.0).to(images)

    grey_w = torch.tensor([0.299, 0.587, 0.114]).to(images).view(1, 3, 1, 1)
    x = images * factor(1, 1, 1) * factor(3, 1, 1, spread=amount / 2)
    mean = (x * grey_w).sum(1, keepdim=True).mean((2, 3), keepdim=True)
    x = mean + (x - mean) * factor(1, 1, 1)                           # contrast
    grey = (x * grey_w).sum(1, keepdim=True)
    x = grey + (x - grey) * factor(1, 1, 1)                           # saturation
    return x.clamp(0.0, 1.0)


def flip_batch(images: Tensor, *maps: Tensor) -> tuple[Tensor, ...]:
    """Each item of ``images`` [B, 3, H, W], and the same item of every per-pixel map of
    ``maps`` ([B, H, W] each: labels, depths), flipped left-right with probability 1/2 (one
    draw of torch's RNG per item). Returns the images and the maps, in order."""
    flip = torch.rand(images.shape[0]) < 0.5
    if not bool(flip.any()):
        return (images, *maps)
    return (torch.where(flip.view(-1, 1, 1, 1).to(images.device), images.flip(-1), images),
            *(torch.where(flip.view(-1, 1, 1).to(m.device), m.flip(-1), m) for m in maps))


class SegmenterStep(nn.Module):
    """The ``segmenter`` objective's loss of one batch: the 2D cross-entropy of
    ``model.semantic_logits_2d`` (the model's semantic level), with the run's class weights
    (``loss.class_weights`` / ``background_classes``), against the labels taken at that level
    (every 2^l-th pixel, as the sources' own labels are read), each image flipped left-right
    with probability 1/2 and its colours varied by ``data.colour_jitter``
    (:func:`jitter_colours`) (torch's RNG, which the trainer seeds per step)."""

    def __init__(self, model: nn.Module, cfg: TrainConfig) -> None:
        super().__init__()
        self.model = model
        self.colour_jitter = float(cfg.data.colour_jitter)
        lc = cfg.loss
        w = class_weights_for(lc.class_weights, lc.background_classes, lc.background_weight,
                              cfg.model.num_classes)
        self.register_buffer("class_weights", w if w is not None else torch.ones(0),
                             persistent=False)

    def forward(self, sample: dict[str, Any], uv: Tensor | None = None, step: int = 0
                ) -> tuple[Tensor, dict[str, Tensor]]:
        images, labels = sample["images"], sample["labels"]
        if images.dim() != 4 or labels.shape != (images.shape[0], *images.shape[-2:]):
            raise ValueError(f"SegmenterStep: expected images [B,3,H,W] and labels [B,H,W], got "
                             f"{tuple(images.shape)} and {tuple(labels.shape)}")
        images, labels = flip_batch(images, labels)
        images = jitter_colours(images, self.colour_jitter)
        logits, s = self.model.semantic_logits_2d(images)
        cw = self.class_weights if self.class_weights.numel() else None
        loss = semantic_2d_ce(logits.float(), depth_level(labels, s), class_weights=cw)
        return loss, {"semantic_2d": loss.detach(), "loss": loss.detach()}
