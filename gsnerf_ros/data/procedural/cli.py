"""``gsnerf-synth``: write procedural rooms in the Replica layout.

    gsnerf-synth OUT [--config config/synth.yaml] --scenes N --frames F --height H --width W
                 --seed S [--split train|val|test|test_novel|all] [--fov DEG] [--workers K]
                 [--device cpu|cuda] [--paths mixed|robot|handheld] [key=value ...]

The rooms' distribution comes from the typed config (``--config``, then ``key=value``
overrides such as ``settings.base.room.side=[3,6]``); ``--frames/--height/--width/--fov/
--device`` override the same fields. ``--split all`` writes ``OUT/train`` (N scenes),
``OUT/val``, ``OUT/test`` (``--val-scenes`` / ``--test-scenes`` each, default max(1, N // 4))
and ``OUT/test_novel`` (``--novel-scenes``, default as test). Scene ``k`` of a split is seeded
with ``SPLIT_OFFSETS[split] + S + k``, so splits never share a room; each split folder gets a
``split.json`` with the config, its setting and seeds, so it can be regenerated exactly.

``--paths robot`` draws only robot-base camera paths (0.3-0.6 m above the floor, looking along
the direction of travel), ``--paths handheld`` only hand-held ones: it sets
``camera.robot_prob`` of every setting to 1 or 0 (recorded in ``split.json``'s config), so the
rooms are those of the same seeds with the mixed paths (the path kind is one draw of the
scene's RNG either way); ``mixed`` (default) keeps the config's ``robot_prob``.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from gsnerf_ros.config import ConfigError, from_dict, to_dict
from gsnerf_ros.data.procedural.generator import (
    SPLIT_OFFSETS,
    SynthConfig,
    generate_scene,
    load_synth_config,
    scene_name,
    scene_seed,
)
from gsnerf_ros.data.procedural.writer import write_replica_layout

__all__ = ["main", "build_parser", "synth_one", "split_record", "PATH_KINDS", "set_path_kind"]

PATH_KINDS = {"mixed": None, "robot": 1.0, "handheld": 0.0}
"""``--paths`` choice -> ``camera.robot_prob`` of every setting (None: the config's own)."""


def set_path_kind(cfg: SynthConfig, paths: str) -> SynthConfig:
    """Draw only robot-base (``robot``) or hand-held (``handheld``) camera paths in every
    setting of ``cfg`` (in place; ``mixed`` changes nothing). Returns ``cfg``."""
    if paths not in PATH_KINDS:
        raise ValueError(f"paths must be one of {list(PATH_KINDS)}, got {paths!r}")
    prob = PATH_KINDS[paths]
    if prob is not None:
        for dist in cfg.settings.values():
            dist.camera.robot_prob = prob
    return cfg


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gsnerf-synth", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path, help="output folder")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="config overrides, e.g. settings.base.lights.count=[2,3]")
    p.add_argument("--config", type=Path, default=None,
                   help="synth config YAML (default: the built-in one, as config/synth.yaml)")
    p.add_argument("--scenes", type=int, default=1, help="scenes (train scenes with --split all)")
    p.add_argument("--frames", type=int, default=None, help="frames per scene (config: frames)")
    p.add_argument("--height", type=int, default=None, help="image height px (config: height)")
    p.add_argument("--width", type=int, default=None, help="image width px (config: width)")
    p.add_argument("--seed", type=int, default=0, help="first scene seed within the split")
    p.add_argument("--split", choices=[*SPLIT_OFFSETS, "all"], default="train")
    p.add_argument("--val-scenes", type=int, default=None)
    p.add_argument("--test-scenes", type=int, default=None)
    p.add_argument("--novel-scenes", type=int, default=None,
                   help="test_novel scenes with --split all (default: as --test-scenes)")
    p.add_argument("--fov", type=float, default=None,
                   help="horizontal field of view, degrees (config: fov_deg)")
    p.add_argument("--workers", type=int, default=1, help="parallel processes (scenes)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads per worker (1 is fastest: the ops are small and "
                        "extra threads mostly contend)")
    p.add_argument("--device", default=None, help="torch device for rendering (config: device)")
    p.add_argument("--overwrite", action="store_true", help="re-render existing scenes")
    p.add_argument("--paths", choices=list(PATH_KINDS), default="mixed",
                   help="camera paths: only robot-base ones (0.3-0.6 m, looking along the "
                        "travel), only hand-held ones, or the config's mix (default)")
    return p


def synth_one(job: tuple[dict, int, str, str, int]) -> tuple[str, float]:
    """Render and write one scene; returns (name, seconds). Runs in worker processes."""
    cfg_d, seed, split, out, threads = job
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    cfg = from_dict(SynthConfig, cfg_d)
    scene = generate_scene(cfg, seed, split)
    write_replica_layout(scene, Path(out) / scene.name, {"seed": seed, "split": split})
    return scene.name, time.perf_counter() - t0


def split_record(cfg: SynthConfig, split: str, first_seed: int, n: int) -> dict[str, Any]:
    """What ``split.json`` holds: the split's setting, seeds and the full generator config."""
    setting, _ = cfg.setting(split)
    rec: dict[str, Any] = {
        "split": split, "setting": setting, "seed_offset": SPLIT_OFFSETS[split],
        "first_seed": first_seed, "scenes": [scene_name(first_seed + k, split) for k in range(n)],
        "rng_seeds": [scene_seed(first_seed + k, split) for k in range(n)],
        "config": to_dict(cfg)}
    if split == "test_novel" and "train" in cfg.splits:
        rec["novel_against_train"] = cfg.novel_aspects()
    return rec


def _merge_split_json(path: Path, rec: dict[str, Any], overwrite: bool) -> dict[str, Any]:
    """``rec`` joined with the scenes an earlier run listed in ``path`` (same config); refuses
    to add scenes of another config to an existing split folder unless ``overwrite``."""
    if not path.is_file():
        return rec
    old = json.loads(path.read_text())
    if old.get("config") != rec["config"]:
        if overwrite:
            return rec
        raise SystemExit(f"gsnerf-synth: {path} was written with another config; use a new "
                         f"folder or --overwrite (nothing was written)")
    pairs = sorted(set(zip(old["scenes"], old["rng_seeds"])) | set(zip(rec["scenes"],
                                                                        rec["rng_seeds"])))
    return {**rec, "first_seed": min(old["first_seed"], rec["first_seed"]),
            "scenes": [p[0] for p in pairs], "rng_seeds": [p[1] for p in pairs]}


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_intermixed_args(argv)
    for name in ("scenes", "workers", "threads"):
        if getattr(a, name) < 1:
            raise SystemExit(f"gsnerf-synth: --{name} must be >= 1")
    if a.seed < 0:
        raise SystemExit("gsnerf-synth: --seed must be >= 0")
    flags = {"frames": a.frames, "height": a.height, "width": a.width, "fov_deg": a.fov,
             "device": a.device}
    overrides = list(a.overrides) + [f"{k}={v}" for k, v in flags.items() if v is not None]
    try:
        cfg = set_path_kind(load_synth_config(a.config, overrides), a.paths)
    except (ConfigError, ValueError, OSError) as exc:
        raise SystemExit(f"gsnerf-synth: bad config: {exc}") from exc
    if a.split == "all":
        n_other = max(1, a.scenes // 4)
        n_test = a.test_scenes if a.test_scenes is not None else n_other
        plan = [("train", a.scenes, a.out / "train"),
                ("val", a.val_scenes if a.val_scenes is not None else n_other, a.out / "val"),
                ("test", n_test, a.out / "test"),
                ("test_novel", a.novel_scenes if a.novel_scenes is not None else n_test,
                 a.out / "test_novel")]
    else:
        plan = [(a.split, a.scenes, a.out)]
    if a.seed + max(n for _, n, _ in plan) > 1_000_000:
        raise SystemExit("gsnerf-synth: --seed + scenes must stay below 1000000")
    plan = [(s, n, out) for s, n, out in plan if n > 0]
    for split, _n, _out in plan:
        if split not in cfg.splits:
            raise SystemExit(f"gsnerf-synth: the config gives split {split!r} no setting "
                             f"(splits: {cfg.splits})")
    records = [(out / "split.json", _merge_split_json(out / "split.json",
                                                      split_record(cfg, split, a.seed, n),
                                                      a.overwrite)) for split, n, out in plan]
    cfg_d = to_dict(cfg)
    jobs = []
    for split, n, out in plan:
        for k in range(n):
            if not a.overwrite and (out / scene_name(a.seed + k, split) / "scene.json").is_file():
                continue
            jobs.append((cfg_d, a.seed + k, split, str(out), a.threads))
    for path, rec in records:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rec, indent=1))
    t0 = time.perf_counter()
    times: dict[str, float] = {}
    bar = tqdm(total=len(jobs), desc="gsnerf-synth", unit="scene")
    if a.workers == 1:
        results = map(synth_one, jobs)
    else:
        ex = ProcessPoolExecutor(a.workers)
        results = ex.map(synth_one, jobs)
    for name, dt in results:
        times[name] = dt
        bar.update(1)
        bar.set_postfix(last=f"{dt:.1f}s")
    if a.workers != 1:
        ex.shutdown()
    bar.close()
    a.out.mkdir(parents=True, exist_ok=True)
    frames = len(jobs) * cfg.frames
    total = time.perf_counter() - t0
    summary = {"args": {k: str(v) for k, v in vars(a).items()}, "seconds_per_scene": times,
               "total_seconds": total, "frames": frames,
               "frames_per_second": frames / total if total > 0 else None}
    (a.out / "synth_log.json").write_text(json.dumps(summary, indent=1))
    print(f"gsnerf-synth: wrote {len(jobs)} scene(s) ({frames} frames) to {a.out} in "
          f"{total:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
