"""Contact sheet of generated rooms for docs and sanity checks: per room one row of three RGB
frames along its path, then the classes and the depth of the middle one, captioned with the
split, seed, setting, room size, wall/floor materials, camera kind and number of lights.

    python -m gsnerf_ros.data.procedural.preview docs/img/data_procedural_grid.png \\
        --splits train test test_novel --seeds 0 1 [--config config/synth.yaml]
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import torch

from gsnerf_ros.data.classes import PROCEDURAL_PALETTE
from gsnerf_ros.data.io import write_rgb
from gsnerf_ros.data.procedural.generator import (
    SynthConfig,
    intrinsics_from_fov,
    load_synth_config,
    scene_seed,
)
from gsnerf_ros.data.procedural.layout import sample_room
from gsnerf_ros.data.procedural.renderer import RoomRenderer
from gsnerf_ros.data.procedural.trajectory import sample_trajectory
from gsnerf_ros.imaging import colorize_depth, colorize_labels, uint8_to_float_rgb

__all__ = ["preview_grid", "main"]


def _caption(tile: torch.Tensor, text: str) -> torch.Tensor:
    """Write ``text`` in the top-left corner of an RGB tile [3,H,W] (white on a dark band)."""
    img = np.ascontiguousarray((tile.permute(1, 2, 0).numpy() * 255).astype(np.uint8))
    scale = max(0.3, img.shape[0] / 400)
    h = int(22 * scale) + 4
    img[:h] = (img[:h] * 0.35).astype(np.uint8)
    cv2.putText(img, text, (3, h - 5), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                cv2.LINE_AA)
    return torch.from_numpy(img).permute(2, 0, 1).float() / 255.0


def preview_grid(cfg: SynthConfig, splits: list[str], seeds: list[int],
                 picks: tuple[float, ...] = (0.1, 0.5, 0.9)) -> torch.Tensor:
    """Rows [RGB x len(picks) | labels | depth] per (split, seed), frames at the fractions
    ``picks`` of a ``cfg.frames``-long path, rendered at ``cfg.height`` x ``cfg.width``
    -> [3,H*,W*]."""
    rows = []
    H, W = cfg.height, cfg.width
    K = intrinsics_from_fov(H, W, cfg.fov_deg)
    for split in splits:
        setting, dist = cfg.setting(split)
        for s in seeds:
            rs = scene_seed(s, split)
            room = sample_room(rs, dist)
            path = sample_trajectory(room, cfg.frames, np.random.default_rng([rs, 1]),
                                     dist.camera)
            r = RoomRenderer(room, cfg.device, shadow_res=cfg.shadow_res)
            idx = [min(int(p * (cfg.frames - 1)), cfg.frames - 1) for p in picks]
            outs = [r.render(K, path.c2w[i], H, W) for i in idx]
            mid = outs[len(outs) // 2]
            lx, ly, hz = room.size
            tiles = [o.rgb.cpu() for o in outs]
            tiles[0] = _caption(tiles[0], f"{split} {s} ({setting}) {lx:.1f}x{ly:.1f}x{hz:.1f}m")
            tiles[1] = _caption(tiles[1], f"wall {room.surfaces['wall']} floor "
                                          f"{room.surfaces['floor']}")
            tiles[2] = _caption(tiles[2], f"{path.mode} {path.speed:.2f}m/fr "
                                          f"{len(room.lights)} lights")
            tiles += [uint8_to_float_rgb(colorize_labels(mid.labels.cpu(), PROCEDURAL_PALETTE)),
                      uint8_to_float_rgb(colorize_depth(mid.depth.cpu(), scale="inverse"))]
            rows.append(torch.cat(tiles, 2))
    return torch.cat(rows, 1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.add_argument("--config", default=None, help="synth config YAML")
    p.add_argument("--splits", nargs="+", default=["train", "test", "test_novel"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--height", type=int, default=120)
    p.add_argument("--width", type=int, default=160)
    a = p.parse_intermixed_args(argv)
    torch.set_num_threads(1)
    cfg = load_synth_config(a.config, [*a.overrides, f"height={a.height}", f"width={a.width}"])
    write_rgb(a.out, preview_grid(cfg, a.splits, a.seeds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
