"""Per-pixel confidence of the semantic prediction, for planners that score viewpoints."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["semantic_confidence"]


def semantic_confidence(logits: Tensor, n_visible: Tensor, depth_valid: Tensor,
                        min_views: int = 2, invalid_depth_factor: float = 0.5) -> Tensor:
    """Confidence in [0, 1] per ray.

    softmax probability of the chosen class x min(1, views that see the surface point /
    ``min_views``) x (``invalid_depth_factor`` where the target depth was a hole, else 1).
    Shapes: ``logits`` [N, C], ``n_visible`` [N] int, ``depth_valid`` [N] bool -> [N] float32.
    """
    p = torch.softmax(logits.float(), dim=-1).amax(-1)
    views = (n_visible.float() / float(min_views)).clamp(0.0, 1.0)
    dv = torch.where(depth_valid, torch.ones_like(p), torch.full_like(p, invalid_depth_factor))
    return (p * views * dv).clamp(0.0, 1.0)
