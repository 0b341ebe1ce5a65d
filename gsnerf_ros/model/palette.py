"""The default class colours of a checkpoint without its own palette."""

from __future__ import annotations

import colorsys

import torch
from torch import Tensor

__all__ = ["default_palette"]


def default_palette(num_classes: int) -> Tensor:
    """Distinct deterministic colours (golden-ratio hues). -> uint8 [C, 3]."""
    cols = []
    for i in range(num_classes):
        r, g, b = colorsys.hsv_to_rgb((i * 0.618033988749895) % 1.0, 0.65 + 0.35 * (i % 2),
                                      0.95 - 0.3 * ((i // 2) % 2))
        cols.append([int(r * 255), int(g * 255), int(b * 255)])
    return torch.tensor(cols, dtype=torch.uint8).reshape(num_classes, 3)
