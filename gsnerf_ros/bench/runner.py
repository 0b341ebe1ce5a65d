"""The whole benchmark: stages, same-run mode comparison, variants, sweeps, accuracy, node.

:func:`run_benchmark` returns one JSON-serialisable dict (schema ``gsnerf-bench/1``):

- ``environment``: device, versions, CPU model and load.
- ``model``: configuration name, checkpoint, parameters, whether weights are trained.
- ``settings``: size, views, repeats, warm-up, ray budget, chunk.
- ``stages``: per-stage ms (median, IQR, ...) of the default mode; each entry names what it
  is ``per`` (keyframe / view); skipped stages have ``median_ms: null`` and ``skipped``.
- ``modes``: per sampling mode, one view's time, samples per ray, the instrumented
  breakdown, and ``speedup_vs_released`` (same run, same protocol).
- ``variants``: bf16/fp16 autocast, ``torch.compile``, CUDA graphs (padded static chunks) and
  each view-transformer kernel (eager / fused Triton, fp32 and lowp) on the GPU, against the
  base run (``--kernel``, ``--precision``).
- ``sweeps``: ``resolution`` / ``samples`` / ``views`` points and fitted exponents.
- ``accuracy``: default vs ``released`` on held-out rooms; ``precision``: bf16 vs fp32.
- ``node``: service round trip vs pure render (``--node``).
- ``targets``: each target of the issue with the measured value and whether it is met.
"""

from __future__ import annotations

import datetime as _dt
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from tqdm import tqdm

from gsnerf_ros.bench.environment import cpu_load, describe_environment
from gsnerf_ros.bench.scene import make_bench_scene
from gsnerf_ros.bench.stages import (BenchSettings, encode_scene, samples_per_ray, skipped,
                                     time_breakdown, time_keyframe_encode, time_labels_view,
                                     time_ros_conversion, time_target_depth,
                                     time_target_depth_rgbd, time_view,
                                     time_view_selection)
from gsnerf_ros.bench.sweeps import (DEFAULT_RESOLUTIONS, DEFAULT_SAMPLES, DEFAULT_VIEWS,
                                     sweep_resolution, sweep_samples, sweep_views)
from gsnerf_ros.bench.targets import evaluate_targets
from gsnerf_ros.device import resolve_device
from gsnerf_ros.model import GSNeRF, GSNeRFConfig, RenderResult
from gsnerf_ros.model.fused_attention import check_kernel, triton_available
from gsnerf_ros.model.memory import DEFAULT_MAX_MEMORY_MB
from gsnerf_ros.model.sampling_modes import BENCH_MODES, SAMPLING_MODES

__all__ = ["BenchConfig", "run_benchmark", "load_model", "SCHEMA", "ALL_MODES"]

SCHEMA = "gsnerf-bench/1"
ALL_MODES = BENCH_MODES  # every mode that renders differently at inference
SWEEPS = ("none", "resolution", "samples", "views", "all")


@dataclass
class BenchConfig:
    """Everything the CLI sets (see ``gsnerf-bench --help``)."""

    device: str = "cpu"
    height: int = 240
    width: int = 320
    views: int = 8
    modes: list[str] = field(default_factory=lambda: list(ALL_MODES))
    samples: list[int] = field(default_factory=lambda: list(DEFAULT_SAMPLES))
    sample_modes: list[str] = field(default_factory=lambda: ["depth_guided"])
    resolutions: list[tuple[int, int]] = field(default_factory=lambda: list(DEFAULT_RESOLUTIONS))
    view_counts: list[int] = field(default_factory=lambda: list(DEFAULT_VIEWS))
    repeats: int = 5
    warmup: int = 1
    sweep: str = "none"
    checkpoint: str | None = None
    tiny: bool = False
    ray_budget: int | None = None
    """None: whole views; else rays timed per view (per-view time extrapolated)."""
    chunk: int | None = None
    """Rays per render chunk; None: from ``max_memory_mb`` (per mode and size)."""
    max_memory_mb: float = DEFAULT_MAX_MEMORY_MB
    """Cap of a render's working memory (sets the chunk; gsnerf_ros.model.memory)."""
    kernel: str = "auto"
    """View transformer: auto | eager | triton (gsnerf_ros.model.fused_attention)."""
    precision: str = "fp32"
    lowp: str = "bf16"
    compile: bool = False
    cuda_graphs: bool = False
    accuracy: bool = True
    accuracy_scenes: int = 2
    accuracy_targets: int = 2
    accuracy_size: tuple[int, int] | None = None
    accuracy_rays: int | None = None
    node: bool = False
    node_calls: int = 10
    node_size: tuple[int, int] = (48, 64)
    """(height, width) of the node-latency renders."""
    lowp_on_cpu: bool = False
    """Measure the ``lowp`` autocast accuracy on the CPU too (a proxy for the GPU number)."""
    flops: bool = False
    """Also count the FLOPs of a keyframe encode and of one view per mode (bench/flops.py)."""
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        bad = [m for m in self.modes + self.sample_modes if m not in SAMPLING_MODES]
        if bad:
            raise ValueError(f"unknown mode(s) {bad}; use {SAMPLING_MODES}")
        if self.sweep not in SWEEPS:
            raise ValueError(f"--sweep must be one of {SWEEPS}, got {self.sweep!r}")
        if self.height < 8 or self.width < 8 or self.views < 1:
            raise ValueError("height and width must be >= 8 and views >= 1")
        if self.repeats < 1 or self.warmup < 0:
            raise ValueError("repeats must be >= 1 and warmup >= 0")
        if self.precision not in ("fp32", "bf16", "fp16") or self.lowp not in ("bf16", "fp16"):
            raise ValueError("precision must be fp32 | bf16 | fp16 and lowp bf16 | fp16")
        check_kernel(self.kernel)
        if self.max_memory_mb <= 0:
            raise ValueError("max_memory_mb must be > 0")


def load_model(cfg: BenchConfig, device: torch.device) -> tuple[GSNeRF, dict[str, Any]]:
    """The checkpoint's model when given, else a randomly initialised full (or tiny) model."""
    torch.manual_seed(cfg.seed)
    if cfg.checkpoint:
        model = GSNeRF.from_checkpoint(cfg.checkpoint, device=device)
        info = {"config": "checkpoint", "checkpoint": cfg.checkpoint, "trained": True}
    else:
        conf = GSNeRFConfig.tiny() if cfg.tiny else GSNeRFConfig()
        model = GSNeRF(conf).to(device).eval()
        info = {"config": "tiny" if cfg.tiny else "full (default GSNeRFConfig)",
                "checkpoint": None, "trained": False,
                "note": "randomly initialised weights: timings only (cost does not depend on "
                        "the weight values)"}
    model.set_kernel(cfg.kernel)
    info.update({"num_parameters": model.num_parameters(), "kernel": cfg.kernel,
                 "num_classes": model.config.num_classes,
                 "samples_per_ray": {m: samples_per_ray(model, m) for m in ALL_MODES}})
    return model.eval(), info


def _fake_result(model: GSNeRF, h: int, w: int, device: torch.device) -> RenderResult:
    """Render-shaped outputs for the ROS-conversion timing (its cost does not depend on
    the values)."""
    g = torch.Generator(device="cpu").manual_seed(0)
    C = model.config.num_classes
    lab = torch.randint(0, C, (h, w), generator=g).to(device)
    return RenderResult(rgb=torch.rand(h, w, 3, generator=g).to(device),
                        depth=torch.rand(h, w, generator=g).to(device) * 5,
                        semantic_logits=torch.zeros(h, w, C, device=device), labels=lab,
                        target_depth=torch.ones(h, w, device=device),
                        target_depth_valid=torch.ones(h, w, dtype=torch.bool, device=device),
                        confidence=torch.rand(h, w, generator=g).to(device),
                        acc=torch.ones(h, w, device=device))


def _variants(model: GSNeRF, enc: Any, scene: Any, cfg: BenchConfig, settings: BenchSettings,
              base: dict[str, Any], tds: Any) -> dict[str, Any]:
    """Low-precision autocast, torch.compile and CUDA-graph variants of the default mode, and
    the ``semantic.source: labels`` view (``labels_source``: the model's render without its
    semantics plus the label vote, against the same with them, ``speedup_vs_with_semantics``)."""
    H, W = cfg.height, cfg.width
    out: dict[str, Any] = {f"base_{cfg.kernel}_{settings.precision}":
                           {"median_ms": base["median_ms"], "kernel": cfg.kernel}}
    dev = settings.device
    if dev.type == "cuda":
        s2 = BenchSettings(**{**asdict(settings), "precision": cfg.lowp})
        out[f"autocast_{cfg.lowp}"] = time_view(model, enc, scene, H, W, "depth_guided", s2,
                                                td_stats=tds)
    else:
        out[f"autocast_{cfg.lowp}"] = skipped("autocast timing is GPU only (CPU bf16 matmuls "
                                              "are not the deployment path)")
    for name, flag, kw in (("compile", cfg.compile, {"dynamic": False}),
                           ("cuda_graphs", cfg.cuda_graphs, {"mode": "reduce-overhead",
                                                             "dynamic": False})):
        if not flag:
            out[name] = skipped(f"not requested (--{name.replace('_', '-')})")
            continue
        if dev.type != "cuda":
            out[name] = skipped(f"{name} is benchmarked on CUDA only (device {dev.type})")
            continue
        vr, sr = model.volume_renderer, model.semantic_renderer
        # static shapes: every chunk padded to the chunk size, so one graph serves all chunks
        s_static = BenchSettings(**{**asdict(settings), "pad_chunks": True})
        try:
            model.volume_renderer = torch.compile(vr, **kw)  # type: ignore[assignment]
            model.semantic_renderer = torch.compile(sr, **kw)  # type: ignore[assignment]
            out[name] = time_view(model, enc, scene, H, W, "depth_guided", s_static,
                                  td_stats=tds)
            out[name]["compiled"] = "volume_renderer, semantic_renderer"
        except Exception as e:  # noqa: BLE001 - report, do not abort the benchmark
            out[name] = skipped(f"{type(e).__name__}: {e}")
        finally:
            model.volume_renderer, model.semantic_renderer = vr, sr
    out.update(_kernel_variants(model, enc, scene, cfg, settings, tds))
    out["labels_source"] = time_labels_view(model, enc, scene, H, W, settings)
    for k, v in out.items():
        if k != "labels_source" and v.get("median_ms") and base["median_ms"]:
            v["speedup_vs_eager"] = base["median_ms"] / v["median_ms"]
    return out


def _kernel_variants(model: GSNeRF, enc: Any, scene: Any, cfg: BenchConfig,
                     settings: BenchSettings, tds: Any) -> dict[str, Any]:
    """The default mode with each view-transformer implementation (``kernel_eager``,
    ``kernel_triton``; CUDA only), in fp32 and in ``lowp``."""
    H, W = cfg.height, cfg.width
    out: dict[str, Any] = {}
    for kernel in ("eager", "triton"):
        for prec in ("fp32", cfg.lowp):
            name = f"kernel_{kernel}_{prec}"
            if settings.device.type != "cuda":
                out[name] = skipped("kernel variants are benchmarked on CUDA only")
                continue
            if kernel == "triton" and not triton_available():
                out[name] = skipped("triton is not installed")
                continue
            s = BenchSettings(**{**asdict(settings), "precision": prec})
            # the fused kernel's samples per program, untuned so far: sweep it in lowp
            blocks = (1, 2, 4, 8) if kernel == "triton" and prec != "fp32" else (None,)
            for bp in blocks:
                key = name if bp is None else f"{name}_bp{bp}"
                try:
                    model.set_kernel(kernel)
                    _set_block_p(model, bp)
                    out[key] = time_view(model, enc, scene, H, W, "depth_guided", s,
                                         td_stats=tds)
                except Exception as e:  # noqa: BLE001 - report, do not abort the benchmark
                    out[key] = skipped(f"{type(e).__name__}: {str(e)[:300]}")
                finally:
                    model.set_kernel(cfg.kernel)
                    _set_block_p(model, None)
    return out


def _set_block_p(model: GSNeRF, bp: int | None) -> None:
    """Samples per Triton program of both view transformers (None: the default)."""
    from gsnerf_ros.model.attention import ViewTransformer

    for vt in (model.volume_renderer.transformer, model.semantic_renderer.transformer):
        vt.fused_block_p = bp or ViewTransformer.DEFAULT_BLOCK_P


def run_benchmark(cfg: BenchConfig, argv: list[str] | None = None) -> dict[str, Any]:
    """Run every requested section; returns the result dict (see module docstring)."""
    device = resolve_device(cfg.device)
    model, model_info = load_model(cfg, device)
    H, W, V = cfg.height, cfg.width, cfg.views
    settings = BenchSettings(device=device, repeats=cfg.repeats, warmup=cfg.warmup,
                             ray_budget=cfg.ray_budget, chunk=cfg.chunk, precision=cfg.precision,
                             max_memory_mb=cfg.max_memory_mb)
    res: dict[str, Any] = {
        "schema": SCHEMA, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(),
        "command": "gsnerf-bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "environment": describe_environment(device), "model": model_info,
        "settings": {**{k: v for k, v in asdict(cfg).items() if k not in ("progress",)},
                     "chunk_used": cfg.chunk or "from max_memory_mb (per mode: modes.*.chunk)"},
    }
    bar = tqdm(total=6, desc="gsnerf-bench", disable=not cfg.progress)

    # -- stages --------------------------------------------------------------------------
    scene = make_bench_scene(H, W, V, device, seed=cfg.seed)
    enc = encode_scene(model, scene, settings)
    stages: dict[str, Any] = {}
    stages["keyframe_encode"] = time_keyframe_encode(model, scene, settings)
    stages["view_selection"] = time_view_selection(enc, scene, settings)
    tds = time_target_depth(model, enc, scene, H, W, settings)
    if cfg.flops:
        from gsnerf_ros.bench.flops import count_flops
        res["flops"] = count_flops(model, enc, scene, H, W, list(cfg.modes),
                                   rays=cfg.ray_budget or 512)
    bar.update()

    # -- modes (same run, same protocol) -------------------------------------------------
    modes: dict[str, Any] = {}
    for mode in tqdm(cfg.modes, desc="modes", disable=not cfg.progress, leave=False):
        modes[mode] = time_view(model, enc, scene, H, W, mode, settings, td_stats=tds)
        one = BenchSettings(**{**asdict(settings), "warmup": 0,
                               "repeats": settings.repeats if mode == "depth_guided" else 1})
        modes[mode]["breakdown"] = time_breakdown(model, enc, scene, H, W, mode, one)
    if "released" in modes:
        for m in modes.values():
            m["speedup_vs_released"] = modes["released"]["median_ms"] / m["median_ms"]
    res["modes"] = modes
    bar.update()
    if "depth_guided" in modes:
        bd = modes["depth_guided"]["breakdown"]["stages_ms"]
        stages["target_depth"] = {**tds.to_dict(), "per": "view"}
        for k in ("sampling_gathering", "volume_renderer", "semantic_renderer", "other"):
            stages[k] = {"median_ms": bd[k], "per": "view",
                         "source": "instrumented render (modes.depth_guided.breakdown)"}
        stages["render_total"] = {k: modes["depth_guided"][k] for k in
                                  ("median_ms", "iqr_ms", "peak_mem_mb", "mem_kind",
                                   "extrapolated", "rays_timed")}
    else:
        stages["target_depth"] = {**tds.to_dict(), "per": "view"}
    stages["target_depth_rgbd"] = {**time_target_depth_rgbd(model, enc, scene, H, W,
                                                            settings).to_dict(),
                                   "per": "view", "input": "the scene's exact depth as sensor "
                                   "depth (with_sensor_depth), the model's measured-depth rules"}
    stages["ros_conversion"] = time_ros_conversion(_fake_result(model, H, W, device), model,
                                                   settings)
    res["stages"] = stages
    base = modes.get("depth_guided") or time_view(model, enc, scene, H, W, "depth_guided",
                                                  settings, td_stats=tds)
    res["variants"] = _variants(model, enc, scene, cfg, settings, base, tds)
    del enc
    bar.update()

    # -- sweeps --------------------------------------------------------------------------
    sw: dict[str, Any] = {}
    if cfg.sweep in ("resolution", "all"):
        sw["resolution"] = sweep_resolution(model, V, settings, cfg.resolutions,
                                            progress=cfg.progress)
    if cfg.sweep in ("samples", "all"):
        sw["samples"] = sweep_samples(model, H, W, V, settings, cfg.samples, cfg.sample_modes,
                                      progress=cfg.progress)
    if cfg.sweep in ("views", "all"):
        sw["views"] = sweep_views(model, H, W, settings, cfg.view_counts, progress=cfg.progress)
    res["sweeps"] = sw
    bar.update()

    # -- accuracy ------------------------------------------------------------------------
    res["accuracy"], res["precision"] = _accuracy(model, model_info, cfg)
    bar.update()

    # -- node ----------------------------------------------------------------------------
    if cfg.node:
        from gsnerf_ros.bench.node_latency import measure_node_latency

        res["node"] = measure_node_latency(cfg, model, size=cfg.node_size)
    else:
        res["node"] = skipped("not requested (--node)")
    bar.update()
    bar.close()
    res["environment"]["load_avg_end"] = cpu_load()
    res["targets"] = evaluate_targets(res)
    return res


def _accuracy(model: GSNeRF, info: dict[str, Any], cfg: BenchConfig
              ) -> tuple[dict[str, Any], dict[str, Any]]:
    from gsnerf_ros.bench.accuracy import compare_modes, compare_precision, heldout_views

    trained = bool(info.get("trained"))
    want_prec = model.device.type == "cuda" or cfg.lowp_on_cpu
    if not cfg.accuracy:
        return skipped("not requested"), skipped("not requested")
    if not trained and not want_prec:
        a = compare_modes(model, [], cfg.accuracy_rays, trained)
        return a, compare_precision(model, [], cfg.accuracy_rays, trained, cfg.lowp,
                                    cfg.lowp_on_cpu)
    h, w = cfg.accuracy_size or (cfg.height, cfg.width)
    try:
        items = heldout_views(cfg.accuracy_scenes, 40, h, w, cfg.views, cfg.accuracy_targets,
                              seed=cfg.seed)
    except Exception as e:  # noqa: BLE001 - the data package may be missing pieces
        s = skipped(f"held-out rooms unavailable ({type(e).__name__}: {e})")
        return s, s
    return (compare_modes(model, items, cfg.accuracy_rays, trained),
            compare_precision(model, items, cfg.accuracy_rays, trained, cfg.lowp,
                              cfg.lowp_on_cpu))
