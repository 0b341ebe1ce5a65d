"""Procedural scene generation: room + trajectory + rendering -> an in-memory scene.

``generate_scene(SynthConfig(...), seed, split)`` is deterministic per (seed, split): the room
and path are drawn from ``numpy.random.default_rng(split_offset + seed)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from gsnerf_ros.data.classes import PROCEDURAL_CLASSES, PROCEDURAL_PALETTE
from gsnerf_ros.data.procedural.layout import Room, sample_room
from gsnerf_ros.data.procedural.renderer import RoomRenderer
from gsnerf_ros.data.procedural.trajectory import TrajectoryConfig, sample_trajectory
from gsnerf_ros.data.scene import InMemoryScene

__all__ = ["SynthConfig", "SPLIT_OFFSETS", "scene_seed", "scene_name", "intrinsics_from_fov",
           "generate_scene", "PROCEDURAL_NEAR", "PROCEDURAL_FAR"]

PROCEDURAL_NEAR = 0.25
PROCEDURAL_FAR = 10.0

SPLIT_OFFSETS = {"train": 0, "val": 1_000_000, "test": 2_000_000}
"""Disjoint seed ranges: a scene's RNG seed is ``SPLIT_OFFSETS[split] + seed`` (seed < 10^6)."""


@dataclass
class SynthConfig:
    """Generator settings (image size in px, horizontal field of view in degrees)."""

    frames: int = 100
    height: int = 240
    width: int = 320
    fov_deg: float = 90.0
    shadow_res: int = 96
    device: str = "cpu"
    trajectory: TrajectoryConfig = field(default_factory=TrajectoryConfig)


def scene_seed(seed: int, split: str) -> int:
    """RNG seed of scene ``seed`` in ``split`` (disjoint ranges per split)."""
    if split not in SPLIT_OFFSETS:
        raise ValueError(f"split must be one of {sorted(SPLIT_OFFSETS)}, got {split!r}")
    if not 0 <= seed < 1_000_000:
        raise ValueError(f"scene seed must lie in [0, 1000000), got {seed}")
    return SPLIT_OFFSETS[split] + seed


def scene_name(seed: int, split: str) -> str:
    return f"{split}_{seed:06d}"


def intrinsics_from_fov(height: int, width: int, fov_deg: float) -> torch.Tensor:
    """Pinhole K [3,3] with square pixels, horizontal FOV ``fov_deg``, centred principal point."""
    if not 10.0 <= fov_deg <= 150.0:
        raise ValueError(f"fov_deg must lie in [10, 150], got {fov_deg}")
    f = (width / 2) / math.tan(math.radians(fov_deg) / 2)
    return torch.tensor([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1]],
                        dtype=torch.float32)


def generate_scene(cfg: SynthConfig, seed: int, split: str = "train",
                   progress: bool = False) -> InMemoryScene:
    """Generate one room and render its trajectory -> :class:`InMemoryScene` (CPU tensors)."""
    rs = scene_seed(seed, split)
    room: Room = sample_room(rs)
    rng = np.random.default_rng([rs, 1])
    c2w = sample_trajectory(room, cfg.frames, rng, cfg.trajectory)
    K = intrinsics_from_fov(cfg.height, cfg.width, cfg.fov_deg)
    renderer = RoomRenderer(room, cfg.device, shadow_res=cfg.shadow_res)
    imgs, depths, labels = [], [], []
    for i in tqdm(range(cfg.frames), desc=scene_name(seed, split), disable=not progress,
                  leave=False):
        out = renderer.render(K, c2w[i], cfg.height, cfg.width)
        imgs.append(out.rgb.cpu())
        depths.append(out.depth.cpu())
        labels.append(out.labels.cpu())
    n = cfg.frames
    return InMemoryScene(
        name=scene_name(seed, split), images=torch.stack(imgs), K=K.expand(n, 3, 3).clone(),
        c2w=c2w, depths=torch.stack(depths), labels=torch.stack(labels),
        stamps=torch.arange(n, dtype=torch.float64) * 0.1,
        frame_ids=[str(i) for i in range(n)], class_names=list(PROCEDURAL_CLASSES),
        palette=PROCEDURAL_PALETTE.clone(), near=PROCEDURAL_NEAR, far=PROCEDURAL_FAR,
        metadata={"seed": seed, "split": split, "rng_seed": rs, "room_size": list(room.size),
                  "pieces": room.pieces, "fov_deg": cfg.fov_deg,
                  "lights": [{"position": l.position.tolist(), "color": l.color.tolist(),
                              "power": l.power} for l in room.lights]})
