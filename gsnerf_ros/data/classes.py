"""Class lists, palettes and label protocols for every dataset.

- Procedural rooms: :data:`PROCEDURAL_CLASSES` (17 classes, every pixel labelled).
- Replica (Semantic-NeRF renders): the GSNeRF protocol. The 19 Replica ids in
  :data:`REPLICA_KEPT_IDS` map to 0..18 in that order; every other id is merged into class 6
  (Replica id 40), exactly as the released code does (its ``19 -> 6`` remap).
- ScanNet: raw label id -> nyu40 id (``scannetv2-labels.combined.tsv``) -> the 20 ScanNet
  benchmark classes :data:`SCANNET20_CLASSES`; every other nyu40 id and unlabelled pixels become
  :data:`IGNORE_INDEX` (protocol ``"benchmark"``, the default). Protocol ``"gsnerf"`` reproduces
  the released code instead: otherfurniture merged into table and unlabelled/other as a trained
  class 19 ``"other"``.
"""

from __future__ import annotations

import colorsys

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "IGNORE_INDEX", "PROCEDURAL_CLASSES", "PROCEDURAL_PALETTE", "REPLICA_KEPT_IDS",
    "REPLICA_MERGE_CLASS", "replica_class_names", "replica_lut", "SCANNET20_NYU40_IDS",
    "SCANNET20_CLASSES", "scannet_class_names", "nyu40_to_scannet20_lut", "make_palette",
    "remap_labels",
]

IGNORE_INDEX = 255
"""Label value of unlabelled pixels in every dataset (loss and metrics skip it)."""

PROCEDURAL_CLASSES: list[str] = [
    "wall", "floor", "ceiling", "door", "window", "table", "chair", "sofa", "bed", "cabinet",
    "shelf", "lamp", "plant", "picture", "rug", "tv", "object",
]
"""Classes of the procedural rooms, in label-id order (17 classes)."""


def make_palette(n: int, seed: int = 0) -> Tensor:
    """A distinct colour per class: golden-ratio hues, alternating value. Shape: (n, 3) uint8."""
    cols = []
    for i in range(n):
        h = (i * 0.618033988749895 + 0.07 * seed) % 1.0
        s = 0.55 + 0.35 * ((i // 2) % 2)
        v = 0.95 if i % 2 == 0 else 0.7
        cols.append([int(round(255 * c)) for c in colorsys.hsv_to_rgb(h, s, v)])
    return torch.tensor(cols, dtype=torch.uint8)


PROCEDURAL_PALETTE: Tensor = torch.tensor([
    [174, 199, 232], [152, 223, 138], [230, 230, 230], [140, 86, 75], [112, 200, 255],
    [255, 127, 14], [214, 39, 40], [148, 103, 189], [255, 187, 120], [31, 119, 180],
    [188, 189, 34], [255, 230, 80], [44, 160, 44], [227, 119, 194], [196, 156, 148],
    [82, 84, 163], [23, 190, 207],
], dtype=torch.uint8)
"""Colour per procedural class (NYU/ScanNet-like colours), uint8 [17,3]."""

# --- Replica (Semantic-NeRF renders, GSNeRF protocol) -------------------------------------
REPLICA_KEPT_IDS: list[int] = [12, 17, 20, 22, 31, 37, 40, 44, 47, 56, 64, 79, 80, 87, 91, 92,
                               93, 95, 97]
"""Replica semantic ids kept by the GSNeRF protocol, mapped to 0..18 in this order."""

REPLICA_MERGE_CLASS = 6
"""Every Replica id not in :data:`REPLICA_KEPT_IDS` goes to this class (id 40), as in GSNeRF."""


def replica_class_names(id_to_name: dict[int, str] | None = None) -> list[str]:
    """Names of the 19 protocol classes: from the scene's ``info_semantic.json`` when given,
    else ``"replica_<id>"``."""
    id_to_name = id_to_name or {}
    return [id_to_name.get(i, f"replica_{i}") for i in REPLICA_KEPT_IDS]


def replica_lut(unlisted: str = "merge", size: int = 65536) -> np.ndarray:
    """Lookup table raw Replica id -> protocol class. Shape (size,) int64.

    ``unlisted="merge"`` (paper protocol) sends other ids to :data:`REPLICA_MERGE_CLASS`;
    ``"ignore"`` sends them to :data:`IGNORE_INDEX`.
    """
    if unlisted not in ("merge", "ignore"):
        raise ValueError(f"unlisted must be 'merge' or 'ignore', got {unlisted!r}")
    fill = REPLICA_MERGE_CLASS if unlisted == "merge" else IGNORE_INDEX
    lut = np.full(size, fill, dtype=np.int64)
    for c, rid in enumerate(REPLICA_KEPT_IDS):
        lut[rid] = c
    return lut


# --- ScanNet -----------------------------------------------------------------------------
SCANNET20_NYU40_IDS: list[int] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 24, 28, 33, 34,
                                  36, 39]
"""nyu40 ids of the 20 ScanNet benchmark classes, mapped to 0..19 in this order."""

SCANNET20_CLASSES: list[str] = [
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf",
    "picture", "counter", "desk", "curtain", "refrigerator", "shower curtain", "toilet", "sink",
    "bathtub", "otherfurniture",
]


def scannet_class_names(protocol: str = "benchmark") -> list[str]:
    """Class names of a ScanNet label protocol (``"benchmark"`` 20 classes, ``"gsnerf"`` 20)."""
    if protocol == "benchmark":
        return list(SCANNET20_CLASSES)
    if protocol == "gsnerf":
        return SCANNET20_CLASSES[:19] + ["other"]
    raise ValueError(f"ScanNet protocol must be 'benchmark' or 'gsnerf', got {protocol!r}")


def nyu40_to_scannet20_lut(protocol: str = "benchmark") -> np.ndarray:
    """Lookup table nyu40 id (0..40, 0 = unlabelled) -> class. Shape (41,) int64.

    ``"benchmark"``: the 20 classes, everything else :data:`IGNORE_INDEX`. ``"gsnerf"``: the
    released code's remap (otherfurniture -> table (6), everything else -> 19 ``"other"``).
    """
    scannet_class_names(protocol)  # validates
    lut = np.full(41, IGNORE_INDEX if protocol == "benchmark" else 19, dtype=np.int64)
    for c, nid in enumerate(SCANNET20_NYU40_IDS):
        lut[nid] = c
    if protocol == "gsnerf":
        lut[39] = 6
    return lut


def remap_labels(labels: Tensor, mapping: dict[int, int] | Tensor,
                 default: int = IGNORE_INDEX) -> Tensor:
    """Map label ids through ``mapping`` (dict or LUT tensor); unmapped ids -> ``default``.

    Shape: (*) int -> (*) int64. :data:`IGNORE_INDEX` stays ignored unless mapped explicitly.
    """
    if isinstance(mapping, dict):
        size = max(int(labels.max()) if labels.numel() else 0, IGNORE_INDEX, *mapping.keys()) + 1
        lut = torch.full((size,), default, dtype=torch.int64)
        lut[IGNORE_INDEX] = IGNORE_INDEX
        for k, v in mapping.items():
            lut[int(k)] = int(v)
    else:
        lut = mapping.to(torch.int64)
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= lut.numel()):
        raise ValueError(f"label ids must lie in [0, {lut.numel() - 1}] for this mapping, got "
                         f"[{int(labels.min())}, {int(labels.max())}]")
    return lut.to(labels.device)[labels.long()]
