"""Procedural scene generation: room + trajectory + rendering -> an in-memory scene.

``generate_scene(SynthConfig(...), seed, split)`` is deterministic per (seed, split, config):
the room and path are drawn from ``numpy.random.default_rng(split_offset + seed)`` and the
setting (:class:`~.distribution.SceneDistribution`) that ``SynthConfig.splits`` names for the
split. ``load_synth_config("config/synth.yaml", ["frames=50"])`` reads the typed config.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from gsnerf_ros.config import check, load_config, to_dict
from gsnerf_ros.data.classes import PROCEDURAL_CLASSES, PROCEDURAL_PALETTE
from gsnerf_ros.data.procedural.distribution import (
    SceneDistribution,
    base_setting,
    novel_aspects,
    novel_setting,
)
from gsnerf_ros.data.procedural.layout import Room, sample_room
from gsnerf_ros.data.procedural.renderer import RoomRenderer
from gsnerf_ros.data.procedural.trajectory import sample_trajectory
from gsnerf_ros.data.scene import InMemoryScene

__all__ = ["SynthConfig", "SPLIT_OFFSETS", "scene_seed", "scene_name", "intrinsics_from_fov",
           "generate_scene", "load_synth_config", "PROCEDURAL_NEAR", "PROCEDURAL_FAR"]

PROCEDURAL_NEAR = 0.25
PROCEDURAL_FAR = 10.0

SPLIT_OFFSETS = {"train": 0, "val": 1_000_000, "test": 2_000_000, "test_novel": 3_000_000}
"""Disjoint seed ranges: a scene's RNG seed is ``SPLIT_OFFSETS[split] + seed`` (seed < 10^6)."""


@dataclass
class SynthConfig:
    """Generator settings: image size (px), horizontal field of view (degrees), shadow-map
    face size (texels), device, the named settings rooms are drawn from and the setting of each
    split. ``test_novel`` must use a setting that :func:`~.distribution.novel_aspects` finds
    novel against ``train``'s."""

    frames: int = 100
    height: int = 240
    width: int = 320
    fov_deg: float = 90.0
    shadow_res: int = 96
    device: str = "cpu"
    settings: dict[str, SceneDistribution] = field(default_factory=lambda: {
        "base": base_setting(), "novel": novel_setting()})
    splits: dict[str, str] = field(default_factory=lambda: {
        "train": "base", "val": "base", "test": "base", "test_novel": "novel"})

    def __post_init__(self) -> None:
        for name in ("frames", "height", "width", "shadow_res"):
            check(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        unknown = set(self.splits) - set(SPLIT_OFFSETS)
        check(not unknown, f"splits: unknown split(s) {sorted(unknown)}; "
                           f"choose from {list(SPLIT_OFFSETS)}")
        missing = {v for v in self.splits.values()} - set(self.settings)
        check(not missing, f"splits name setting(s) {sorted(missing)} that settings lacks "
                           f"(it has {sorted(self.settings)})")
        if "test_novel" in self.splits and "train" in self.splits:
            check(bool(self.novel_aspects()),
                  f"split test_novel uses setting {self.splits['test_novel']!r}, which is not "
                  f"novel against train's {self.splits['train']!r}: give it disjoint room "
                  f"sizes (room.short_side), held-out wall/floor materials or light placements")

    def setting(self, split: str) -> tuple[str, SceneDistribution]:
        """(name, distribution) of the setting ``split`` uses."""
        if split not in self.splits:
            raise ValueError(f"split {split!r} has no setting in SynthConfig.splits "
                             f"({sorted(self.splits)})")
        name = self.splits[split]
        return name, self.settings[name]

    def novel_aspects(self) -> list[str]:
        """How ``test_novel``'s setting differs from ``train``'s (see ``novel_aspects``)."""
        return novel_aspects(self.setting("train")[1], self.setting("test_novel")[1])


def load_synth_config(path: str | None = None, overrides: list[str] | None = None) -> SynthConfig:
    """Defaults, updated by the YAML file at ``path``, then by ``key=value`` overrides."""
    return load_config(SynthConfig, path, overrides)


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
    setting, dist = cfg.setting(split)
    room: Room = sample_room(rs, dist)
    rng = np.random.default_rng([rs, 1])
    path = sample_trajectory(room, cfg.frames, rng, dist.camera)
    c2w = path.c2w
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
        metadata={"seed": seed, "split": split, "rng_seed": rs, "setting": setting,
                  "room_size": list(room.size), "surfaces": room.surfaces,
                  "camera": {"mode": path.mode, "speed_m_per_frame": path.speed,
                             "min_clearance_m": path.min_clearance},
                  "pieces": room.pieces, "fov_deg": cfg.fov_deg,
                  "ambient": room.ambient.tolist(),
                  "lights": [{"position": l.position.tolist(), "color": l.color.tolist(),
                              "power": l.power, "placement": l.placement} for l in room.lights],
                  "setting_config": to_dict(dist)})
