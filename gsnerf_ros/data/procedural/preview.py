"""Picture grid of generated rooms (RGB | semantics | depth per row) for docs and sanity checks.

    python -m gsnerf_ros.data.procedural.preview docs/img/data_procedural_grid.png --seeds 0 1 2 3
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from gsnerf_ros.data.classes import PROCEDURAL_PALETTE
from gsnerf_ros.data.io import colorize_depth, colorize_labels, write_rgb
from gsnerf_ros.data.procedural.generator import intrinsics_from_fov, scene_seed
from gsnerf_ros.data.procedural.layout import sample_room
from gsnerf_ros.data.procedural.renderer import RoomRenderer
from gsnerf_ros.data.procedural.trajectory import sample_trajectory

__all__ = ["preview_grid", "main"]


def preview_grid(seeds: list[int], split: str = "train", height: int = 240, width: int = 320,
                 frames: tuple[int, ...] = (10, 60), path_len: int = 100) -> torch.Tensor:
    """Rows of [RGB | labels | depth] for frames of each seed's trajectory -> [3,H*,W*]."""
    rows = []
    K = intrinsics_from_fov(height, width, 90.0)
    for s in seeds:
        rs = scene_seed(s, split)
        room = sample_room(rs)
        c2w = sample_trajectory(room, path_len, np.random.default_rng([rs, 1]))
        r = RoomRenderer(room)
        for i in frames:
            out = r.render(K, c2w[i], height, width)
            rows.append(torch.cat([out.rgb, colorize_labels(out.labels, PROCEDURAL_PALETTE),
                                   colorize_depth(out.depth)], 2))
    return torch.cat(rows, 1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("out")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    p.add_argument("--split", default="train")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    write_rgb(a.out, preview_grid(a.seeds, a.split))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
