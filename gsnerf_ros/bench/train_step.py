"""Seconds per optimisation step of a training config (``gsnerf-bench --train-config``).

The CPU recipe's time budget (models/MODEL_CARD.md) is the sum of its stages' steps times this
number. The trainer is the real one (:class:`gsnerf_ros.train.trainer.Trainer`), on the config's
data and model, writing into a temporary run folder; validation, checkpoints and TensorBoard are
not run, so only the steps are timed. The weights do not change the cost, so a config whose
``init_checkpoint`` is missing (a git-ignored run folder) is timed from freshly initialised
weights, and the JSON says so.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import torch

from gsnerf_ros.bench.timing import process_rss_peak_mb

__all__ = ["time_train_steps", "format_train_steps"]


def time_train_steps(config: str | Path, overrides: Sequence[str] = (), steps: int = 6,
                     warmup: int = 2, stage: str | None = None) -> dict[str, Any]:
    """Time ``steps`` training steps of the YAML ``config`` (of a recipe, its stage ``stage``;
    with ``key=value`` ``overrides``) after ``warmup`` untimed ones. Returns seconds per step
    (mean, std, min, max), what the step holds (rays, sources, neighbours, size), the device,
    torch threads and peak RSS (MiB, CPU)."""
    from gsnerf_ros.model.checkpoint import checkpoint_paths
    from gsnerf_ros.train.recipe import is_recipe, load_stages
    from gsnerf_ros.train.trainer import Trainer

    if steps < 1 or warmup < 0:
        raise ValueError(f"need steps >= 1 and warmup >= 0, got {steps} and {warmup}")
    if not Path(config).is_file():
        raise FileNotFoundError(f"training config {config} not found")
    if is_recipe(config) and stage in (None, "all"):
        raise ValueError(f"{config} is a recipe: name one of its stages (--train-stage)")
    cfg = load_stages(config, list(overrides), stage)[0].config
    missing_init = None
    # the weights file GSNeRF.from_checkpoint would read (with or without the suffix)
    if cfg.init_checkpoint and not checkpoint_paths(cfg.init_checkpoint)[0].is_file():
        missing_init, cfg.init_checkpoint = cfg.init_checkpoint, ""
    root = Path(cfg.data.train_root)
    if not cfg.data.finetune_scene and not root.is_dir():
        raise FileNotFoundError(f"training data {root} not found; the config's header says how "
                                f"to make it (gsnerf-synth ...)")
    cfg.log.tensorboard, cfg.log.progress, cfg.log.panels = False, False, 0
    times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="gsnerf_bench_train_") as run_dir:
        cfg.run_dir = run_dir
        trainer = Trainer(cfg)
        sync = (torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None))
        for s in range(warmup + steps):
            t0 = time.perf_counter()
            trainer.train_step(s)
            sync()
            if s >= warmup:
                times.append(time.perf_counter() - t0)
    cv = cfg.model.cost_volume
    return {
        "config": str(config), "stage": stage, "overrides": list(overrides), "steps": steps,
        "warmup": warmup,
        "s_per_step": statistics.fmean(times),
        "s_per_step_std": statistics.stdev(times) if len(times) > 1 else 0.0,
        "s_per_step_min": min(times), "s_per_step_max": max(times),
        "device": str(trainer.device), "threads": torch.get_num_threads(),
        "size": [cfg.data.height, cfg.data.width], "rays_per_step": cfg.optim.rays_per_step,
        "num_sources": cfg.data.num_sources, "num_neighbors": cv.num_neighbors,
        "init_checkpoint_missing": missing_init,
        "peak_rss_mib": process_rss_peak_mb() if trainer.device.type == "cpu" else None,
    }


def format_train_steps(res: dict[str, Any]) -> str:
    """One Markdown table row set for a :func:`time_train_steps` result."""
    lines = ["| config | s / step (mean ± std, min) | device, threads | size | rays | sources "
             "| neighbours |", "|---|---|---|---|---|---|---|",
             f"| {res['config']} | {res['s_per_step']:.2f} ± {res['s_per_step_std']:.2f}, "
             f"{res['s_per_step_min']:.2f} | {res['device']}, {res['threads']} | "
             f"{res['size'][1]}x{res['size'][0]} | {res['rays_per_step']} | "
             f"{res['num_sources']} | {res['num_neighbors']} |"]
    if res.get("init_checkpoint_missing"):
        lines.append(f"(init_checkpoint {res['init_checkpoint_missing']} absent: timed from "
                     f"freshly initialised weights)")
    return "\n".join(lines)
