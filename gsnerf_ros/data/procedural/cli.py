"""``gsnerf-synth``: write procedural rooms in the Replica layout.

    gsnerf-synth OUT --scenes N --frames F --height H --width W --seed S [--split train|val|test|all]
                 [--fov DEG] [--workers K] [--device cpu|cuda]

``--split all`` writes ``OUT/train`` (N scenes), ``OUT/val`` and ``OUT/test``
(``--val-scenes`` / ``--test-scenes`` each, default max(1, N // 4)). Scene ``k`` of a split is
seeded with ``SPLIT_OFFSETS[split] + S + k``, so splits never share a room.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
from tqdm import tqdm

from gsnerf_ros.data.procedural.generator import SynthConfig, generate_scene, scene_name
from gsnerf_ros.data.procedural.writer import write_replica_layout

__all__ = ["main", "build_parser", "synth_one"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gsnerf-synth", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path, help="output folder")
    p.add_argument("--scenes", type=int, default=1, help="scenes (train scenes with --split all)")
    p.add_argument("--frames", type=int, default=100, help="frames per scene")
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--seed", type=int, default=0, help="first scene seed within the split")
    p.add_argument("--split", choices=["train", "val", "test", "all"], default="train")
    p.add_argument("--val-scenes", type=int, default=None)
    p.add_argument("--test-scenes", type=int, default=None)
    p.add_argument("--fov", type=float, default=90.0, help="horizontal field of view, degrees")
    p.add_argument("--workers", type=int, default=1, help="parallel processes (scenes)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads per worker (1 is fastest: the ops are small and "
                        "extra threads mostly contend)")
    p.add_argument("--device", default="cpu", help="torch device for rendering, e.g. cuda")
    p.add_argument("--overwrite", action="store_true", help="re-render existing scenes")
    return p


def synth_one(job: tuple[dict, int, str, str, int]) -> tuple[str, float]:
    """Render and write one scene; returns (name, seconds). Runs in worker processes."""
    cfg_d, seed, split, out, threads = job
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    cfg = SynthConfig(**cfg_d)
    scene = generate_scene(cfg, seed, split)
    write_replica_layout(scene, Path(out) / scene.name, {"seed": seed, "split": split})
    return scene.name, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    for name in ("scenes", "frames", "height", "width", "workers", "threads"):
        if getattr(a, name) < 1:
            raise SystemExit(f"gsnerf-synth: --{name} must be >= 1")
    if a.seed < 0:
        raise SystemExit("gsnerf-synth: --seed must be >= 0")
    cfg = {"frames": a.frames, "height": a.height, "width": a.width, "fov_deg": a.fov,
           "device": a.device}
    if a.split == "all":
        n_other = max(1, a.scenes // 4)
        plan = [("train", a.scenes, a.out / "train"),
                ("val", a.val_scenes if a.val_scenes is not None else n_other, a.out / "val"),
                ("test", a.test_scenes if a.test_scenes is not None else n_other, a.out / "test")]
    else:
        plan = [(a.split, a.scenes, a.out)]
    threads = a.threads
    jobs = []
    for split, n, out in plan:
        for k in range(n):
            if not a.overwrite and (out / scene_name(a.seed + k, split) / "scene.json").is_file():
                continue
            jobs.append((cfg, a.seed + k, split, str(out), threads))
    t0 = time.perf_counter()
    times: dict[str, float] = {}
    bar = tqdm(total=len(jobs), desc="gsnerf-synth", unit="scene")
    if a.workers == 1:
        for job in jobs:
            name, dt = synth_one(job)
            times[name] = dt
            bar.update(1)
            bar.set_postfix(last=f"{dt:.1f}s")
    else:
        with ProcessPoolExecutor(a.workers) as ex:
            for name, dt in ex.map(synth_one, jobs):
                times[name] = dt
                bar.update(1)
                bar.set_postfix(last=f"{dt:.1f}s")
    bar.close()
    a.out.mkdir(parents=True, exist_ok=True)
    summary = {"args": {k: str(v) for k, v in vars(a).items()}, "seconds_per_scene": times,
               "total_seconds": time.perf_counter() - t0}
    (a.out / "synth_log.json").write_text(json.dumps(summary, indent=1))
    print(f"gsnerf-synth: wrote {len(jobs)} scene(s) to {a.out} in "
          f"{summary['total_seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
