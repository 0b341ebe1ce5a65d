"""A procedural room's source set as the evaluation protocol picks it, as stacked tensors."""

from __future__ import annotations

import torch
from torch import Tensor

from gsnerf_ros.data.procedural import SynthConfig, generate_scene
from gsnerf_ros.data.view_selection import EvalProtocol, evaluation_views


def protocol_views(height: int, width: int, frames: int, seed: int, num_sources: int,
                   source_stride: int, with_target: bool = False
                   ) -> tuple[Tensor, Tensor, Tensor, Tensor, float, float]:
    """The first source set (and, ``with_target``, its target last) of a test-split room:
    ``images`` [V(+1), 3, H, W], ``depths`` [V(+1), H, W] m, ``K`` [V(+1), 3, 3],
    ``c2w`` [V(+1), 4, 4], and the room's ``near``/``far`` m."""
    scene = generate_scene(SynthConfig(frames=frames, height=height, width=width), seed=seed,
                           split="test")
    t, src = evaluation_views(scene.poses(), EvalProtocol(
        num_sources=num_sources, source_stride=source_stride, target_offset=2))[0]
    idx = [int(i) for i in src] + ([int(t)] if with_target else [])
    fr = [scene.frame(i) for i in idx]
    return (torch.stack([f.image for f in fr]), torch.stack([f.depth for f in fr]),
            torch.stack([f.K for f in fr]).float(), torch.stack([f.c2w for f in fr]).float(),
            scene.near, scene.far)
