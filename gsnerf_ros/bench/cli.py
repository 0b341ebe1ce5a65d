"""``gsnerf-bench``: per-stage timings, same-run mode comparison, sweeps, JSON and plots.

Examples::

    gsnerf-bench --device cuda --sweep all --json bench.json --plots docs/img
    gsnerf-bench --device cpu --ray-budget 1024 --repeats 3 --json bench_cpu.json
    gsnerf-bench --tiny --height 24 --width 32 --views 2 --repeats 1 --json /tmp/b.json  # CI
    gsnerf-bench --train-config config/recipes/cpu.yaml --train-stage stage3 --json steps.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Sequence

from gsnerf_ros.bench.runner import ALL_MODES, SWEEPS, BenchConfig, run_benchmark
from gsnerf_ros.device import resolve_device
from gsnerf_ros.runtime.checkpoint_lookup import DEFAULT_CHECKPOINT as _SHIPPED
from gsnerf_ros.model.fused_attention import KERNELS
from gsnerf_ros.model.memory import DEFAULT_MAX_MEMORY_MB

__all__ = ["main", "build_parser", "config_from_args"]

CPU_RAY_BUDGET = 512
"""Rays timed per view off-GPU (the full model needs minutes per whole view on a CPU core)."""
DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[2] / _SHIPPED


def _size(s: str) -> tuple[int, int]:
    try:
        w, h = s.lower().split("x")
        return int(h), int(w)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT like 320x240, got {s!r}") from e


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="gsnerf-bench", description=__doc__.split("\n")[0])
    ap.add_argument("--device", default=None, help="cpu | cuda | cuda:N (default: cuda if "
                    "available, else cpu)")
    ap.add_argument("--height", type=int, default=240)
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--views", type=int, default=8, help="source views per render")
    ap.add_argument("--modes", nargs="+", default=list(ALL_MODES), choices=ALL_MODES,
                    help="sampling modes compared in the same run")
    ap.add_argument("--samples", type=int, nargs="+", default=[4, 8, 16, 32, 64, 128],
                    help="samples-per-ray sweep values")
    ap.add_argument("--sample-modes", nargs="+", default=["depth_guided"], choices=ALL_MODES,
                    help="modes of the samples sweep")
    ap.add_argument("--resolutions", type=_size, nargs="+",
                    default=[(120, 160), (240, 320), (480, 640)],
                    help="resolution sweep sizes as WIDTHxHEIGHT")
    ap.add_argument("--view-counts", type=int, nargs="+", default=[4, 6, 8])
    ap.add_argument("--repeats", type=int, default=None, help="timed runs (default 5 on CUDA, "
                    "3 elsewhere)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--sweep", default="none", choices=SWEEPS)
    ap.add_argument("--checkpoint", default=None, help=f"trained checkpoint (default: "
                    f"{_SHIPPED} when it exists, else a random model)")
    ap.add_argument("--random-init", action="store_true",
                    help="ignore the shipped checkpoint; time a randomly initialised model")
    ap.add_argument("--tiny", action="store_true", help="tiny model config (CI); implies "
                    "--random-init unless --checkpoint is given")
    ap.add_argument("--ray-budget", type=int, default=None,
                    help="rays timed per view, time extrapolated to the whole view (default: "
                    f"whole views on CUDA, {CPU_RAY_BUDGET} elsewhere); 0 = whole views")
    ap.add_argument("--chunk", type=int, default=None,
                    help="rays per render chunk (default: from --max-memory-mb)")
    ap.add_argument("--max-memory-mb", type=float, default=DEFAULT_MAX_MEMORY_MB,
                    help="cap of a render's working memory in MB; sets the chunk size")
    ap.add_argument("--kernel", default="auto", choices=KERNELS,
                    help="view transformer: auto (fused Triton kernel on CUDA when available) "
                         "| eager | triton")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    ap.add_argument("--lowp", default="bf16", choices=["bf16", "fp16"],
                    help="low precision compared with fp32 (GPU)")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile'd renderers")
    ap.add_argument("--cuda-graphs", action="store_true",
                    help="also time CUDA graphs (torch.compile mode=reduce-overhead)")
    ap.add_argument("--no-accuracy", action="store_true")
    ap.add_argument("--accuracy-scenes", type=int, default=2)
    ap.add_argument("--accuracy-targets", type=int, default=2, help="target views per scene")
    ap.add_argument("--accuracy-size", type=_size, default=None, help="WIDTHxHEIGHT")
    ap.add_argument("--accuracy-rays", type=int, default=None,
                    help="rays scored per held-out view (default: all pixels on CUDA, 2048 "
                    "elsewhere)")
    ap.add_argument("--node", action="store_true",
                    help="also measure ~/render_view round trips of a real node (rclpy)")
    ap.add_argument("--node-calls", type=int, default=10)
    ap.add_argument("--node-size", type=_size, default=(48, 64), help="WIDTHxHEIGHT of the "
                    "node-latency renders (default 64x48)")
    ap.add_argument("--lowp-accuracy-on-cpu", action="store_true",
                    help="also measure the --lowp autocast accuracy vs fp32 on the CPU (a proxy: "
                         "CPU autocast casts another list of ops than CUDA's)")
    ap.add_argument("--flops", action="store_true",
                    help="also count FLOPs of a keyframe encode and of one view per mode")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-config", default=None, metavar="YAML",
                    help="instead of rendering, time training steps of this config "
                         "(the CPU recipe's budget; gsnerf_ros.bench.train_step)")
    ap.add_argument("--train-stage", default=None, metavar="NAME",
                    help="the stage of a recipe --train-config (config/recipes/*.yaml)")
    ap.add_argument("--train-steps", type=int, default=6, help="timed steps (--train-config)")
    ap.add_argument("--train-warmup", type=int, default=2,
                    help="untimed steps first (--train-config)")
    ap.add_argument("--train-overrides", nargs="*", default=[], metavar="KEY=VALUE",
                    help="overrides of the training config (--train-config)")
    ap.add_argument("--json", default=None, help="write the result here")
    ap.add_argument("--plots", default=None, help="write PNG plots into this folder")
    ap.add_argument("--quiet", action="store_true", help="no progress bars or table")
    return ap


def config_from_args(a: argparse.Namespace) -> BenchConfig:
    device = str(resolve_device(a.device or "auto"))
    ckpt = a.checkpoint
    if ckpt is None and not (a.random_init or a.tiny) and DEFAULT_CHECKPOINT.is_file():
        ckpt = str(DEFAULT_CHECKPOINT)
    on_gpu = device.startswith("cuda")
    budget = a.ray_budget
    if budget is None:
        budget = None if on_gpu else CPU_RAY_BUDGET
    elif budget == 0:
        budget = None
    repeats = a.repeats if a.repeats is not None else (5 if on_gpu else 3)
    acc_rays = a.accuracy_rays if a.accuracy_rays is not None else (None if on_gpu else 2048)
    cfg = BenchConfig(
        device=device, height=a.height, width=a.width, views=a.views, modes=list(a.modes),
        samples=list(a.samples), sample_modes=list(a.sample_modes),
        resolutions=list(a.resolutions), view_counts=list(a.view_counts), repeats=repeats,
        warmup=a.warmup, sweep=a.sweep, checkpoint=ckpt, tiny=a.tiny, ray_budget=budget,
        chunk=a.chunk, max_memory_mb=a.max_memory_mb, kernel=a.kernel, precision=a.precision,
        lowp=a.lowp, compile=a.compile,
        cuda_graphs=a.cuda_graphs, accuracy=not a.no_accuracy,
        accuracy_scenes=a.accuracy_scenes, accuracy_targets=a.accuracy_targets,
        accuracy_size=a.accuracy_size, accuracy_rays=acc_rays, node=a.node,
        node_calls=a.node_calls, node_size=a.node_size, flops=a.flops,
        lowp_on_cpu=a.lowp_accuracy_on_cpu, seed=a.seed,
        progress=not a.quiet)
    return cfg


def _clean(x: Any) -> Any:
    """NaN/inf -> None so the JSON is strict."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def main(argv: Sequence[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    args = list(argv) if argv is not None else sys.argv[1:]
    try:
        if a.train_config:     # seconds per training step of a config, instead of rendering
            from gsnerf_ros.bench.train_step import time_train_steps

            res = _clean(time_train_steps(a.train_config, a.train_overrides, a.train_steps,
                                          a.train_warmup, a.train_stage))
        else:
            res = _clean(run_benchmark(config_from_args(a), args))
    except (ValueError, FileNotFoundError) as e:
        print(f"gsnerf-bench: error: {e}", file=sys.stderr)
        return 2
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(res, indent=2, allow_nan=False))
    if a.plots and not a.train_config:
        from gsnerf_ros.bench.plots import write_plots

        for p in write_plots(res, a.plots):
            if not a.quiet:
                print(f"wrote {p}")
    if not a.quiet:
        if a.train_config:
            from gsnerf_ros.bench.train_step import format_train_steps

            print(format_train_steps(res))
        else:
            from gsnerf_ros.bench.report import format_report

            print(format_report(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
