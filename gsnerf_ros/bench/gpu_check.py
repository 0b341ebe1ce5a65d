"""The one GPU check (``bash tools/gpu_check.sh``): CUDA tests, whole-view benchmarks in fp32
and bf16 with bf16-vs-fp32 accuracy, and a short CUDA training run, each step in its own
process with its own timeout. Built for the bare device machine: ``python3`` with torch and
triton, no venv, no ROS, no registry; run from the repository root with ``PYTHONPATH=$PWD``.

Writes ``gpu_<device>_<date>.json`` (every step's command, exit status, time, output tail and
the benchmark JSONs) and ``gpu_<device>_<date>.md`` (a summary against the issue-12 targets)
into ``--out`` (default ``$OUT``, else ``docs/bench``), plus ``gpu_check_logs.txt``.

``--smoke`` runs the same steps on the CPU at tiny sizes (how to try the script without a GPU);
``--dry-run`` only prints the commands. Total budget on an H200: < 8 minutes.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Step", "plan", "main"]

TARGETS = {"320x240_ms": 15.0, "640x480_ms": 50.0, "640x480_peak_gb": 3.0,
           "bf16_psnr_diff_db": 0.1, "bf16_label_agreement_pct": 99.0,
           "speedup_vs_released": 100.0}


@dataclass
class Step:
    """One command of the check, run with ``timeout_s``; ``json_out`` is read back if written."""

    name: str
    argv: list[str]
    timeout_s: int
    json_out: str | None = None
    env: dict[str, str] = field(default_factory=dict)


def _py() -> list[str]:
    return [sys.executable]


def plan(work: Path, smoke: bool) -> list[Step]:
    """The steps, in order. ``smoke``: CPU, tiny model and sizes (same code paths)."""
    dev = ["--device", "cpu"] if smoke else ["--device", "cuda"]
    model = ["--tiny"] if smoke else ["--random-init"]
    res = ["32x24", "48x36"] if smoke else ["160x120", "320x240", "640x480"]
    size = ["--width", "48", "--height", "36"] if smoke else ["--width", "320", "--height", "240"]
    reps = ["--repeats", "1", "--warmup", "0"] if smoke else ["--repeats", "10", "--warmup", "2"]
    budget = ["--ray-budget", "0"]                     # whole views, also in the smoke run
    bench = [*_py(), "-m", "gsnerf_ros.bench.cli", *dev, "--views", "8", *size, "--quiet",
             "--max-memory-mb", "2048", *budget]
    rooms, run = work / "rooms", work / "train_run"
    if importlib.util.find_spec("pytest") is not None:
        tests = [*_py(), "-m", "pytest", "-m", "cuda", "test/bench/test_cuda.py", "-q", "-s",
                 "-p", "no:cacheprovider", "-rs"]
    else:   # the device image lists pytest; without it the file runs its own tests
        tests = [*_py(), "test/bench/test_cuda.py"]
    steps = [
        Step("cuda_tests", tests, 150),
        Step("bench_fp32", [*bench, *model, *reps, "--modes", "depth_guided", "released",
                            "--sweep", "resolution", "--resolutions", *res, "--no-accuracy",
                            "--json", str(work / "bench_fp32.json")], 150 if not smoke else 300,
             json_out=str(work / "bench_fp32.json")),
        Step("bench_bf16", [*bench, *model, *reps, "--precision", "bf16", "--modes",
                            "depth_guided", "--sweep", "resolution", "--resolutions", *res,
                            "--no-accuracy", "--json", str(work / "bench_bf16.json")],
             70 if not smoke else 300, json_out=str(work / "bench_bf16.json")),
        Step("bench_accuracy", [*bench, "--repeats", "2", "--warmup", "1", "--modes",
                                "depth_guided", "--accuracy-scenes", "1" if smoke else "2",
                                "--accuracy-targets", "1" if smoke else "2",
                                *(["--lowp-accuracy-on-cpu", "--accuracy-rays", "256"]
                                  if smoke else []),
                                "--json", str(work / "bench_accuracy.json")],
             80 if not smoke else 400, json_out=str(work / "bench_accuracy.json")),
        Step("train_data", [*_py(), "-m", "gsnerf_ros.data.procedural.cli", str(rooms),
                            "--split", "all", "--scenes", "2", "--val-scenes", "1",
                            "--test-scenes", "0", "--frames", "12" if smoke else "24",
                            "--height", "60" if smoke else "120",
                            "--width", "80" if smoke else "160",
                            *(["--workers", "2"] if smoke else ["--device", "cuda"])],
             60 if not smoke else 300),
        # the paper-sized GPU recipe (config/train_gpu.yaml, bf16 autocast), a few steps
        Step("train_cuda", [*_py(), "-m", "gsnerf_ros.train.cli", "--config",
                            "config/train_gpu.yaml", f"run_dir={run}",
                            f"data.train_root={rooms / 'train'}",
                            f"data.val_root={rooms / 'val'}",
                            "device=" + ("cpu" if smoke else "cuda"),
                            "data.height=" + ("30" if smoke else "120"),
                            "data.width=" + ("40" if smoke else "160"),
                            "optim.steps=" + ("4" if smoke else "60"),
                            "optim.rays_per_step=" + ("128" if smoke else "1024"),
                            "log.log_every=" + ("2" if smoke else "10"),
                            "log.val_every=1000000", "log.ckpt_every=1000000", "log.panels=0",
                            "log.progress=false", "log.tensorboard=false",
                            "data.num_workers=2", "data.num_sources=" + ("3" if smoke else "8"),
                            "data.source_strides=[1]", "optim.warmup_steps=5",
                            "optim.time_limit_s=" + ("0" if smoke else "45"),
                            "threads=0"], 75 if not smoke else 300),
        # last, as it may take long to compile: CUDA graphs (padded static chunks) at 320x240
        Step("bench_cuda_graphs", [*bench, *model, "--repeats", "5", "--warmup", "2",
                                   "--modes", "depth_guided", "--sweep", "none", "--no-accuracy",
                                   "--kernel", "eager",
                                   *(["--cuda-graphs"] if not smoke else []),
                                   "--json", str(work / "bench_cuda_graphs.json")],
             90 if not smoke else 300, json_out=str(work / "bench_cuda_graphs.json")),
    ]
    return steps


def _slug(text: str) -> str:
    text = re.sub(r"^nvidia\s+", "", text.strip().lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-") or "device"


def device_name(smoke: bool) -> str:
    """``h200``-style name of the GPU (``cpu`` in a smoke run)."""
    if smoke:
        return "cpu"
    import torch

    return _slug(torch.cuda.get_device_name(0)) if torch.cuda.is_available() else "nocuda"


def environment() -> dict[str, Any]:
    """Versions and the GPU, for the report."""
    import platform

    import torch

    env: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__,
                           "cuda_available": torch.cuda.is_available()}
    try:
        import triton
        env["triton"] = triton.__version__
    except ImportError:
        env["triton"] = None
    try:
        import pytest
        env["pytest"] = pytest.__version__
    except ImportError:
        env["pytest"] = None
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        env.update({"gpu": torch.cuda.get_device_name(0), "gpu_memory_gb": p.total_memory / 1e9,
                    "capability": f"{p.major}.{p.minor}", "cuda": torch.version.cuda})
    return env


def run_step(step: Step, log: list[str], timeout_s: float | None = None) -> dict[str, Any]:
    """Run one step (own process, own timeout: ``timeout_s`` or the step's); its record."""
    limit = int(timeout_s if timeout_s is not None else step.timeout_s)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **step.env}
    env["PYTHONPATH"] = os.pathsep.join([os.getcwd(), env.get("PYTHONPATH", "")])
    t0 = time.perf_counter()
    try:
        r = subprocess.run(step.argv, env=env, capture_output=True, text=True, timeout=limit)
        rc, out = r.returncode, r.stdout + r.stderr
    except subprocess.TimeoutExpired as e:
        rc = 124
        out = ((e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes)
               else (e.stdout or "")) + f"\n[timeout after {limit} s]"
    wall = time.perf_counter() - t0
    log.append(f"===== {step.name} rc={rc} {wall:.1f} s\n$ {shlex.join(step.argv)}\n{out}\n")
    rec: dict[str, Any] = {"name": step.name, "command": shlex.join(step.argv), "rc": rc,
                           "wall_s": round(wall, 2), "timeout_s": limit,
                           "output_tail": out[-3000:]}
    if step.json_out and Path(step.json_out).is_file():
        try:
            rec["result"] = json.loads(Path(step.json_out).read_text())
        except json.JSONDecodeError as e:
            rec["result_error"] = str(e)
    return rec


def _get(d: Any, *path: Any) -> Any:
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def summarise(report: dict[str, Any]) -> dict[str, Any]:
    """Headline numbers against the issue-12 targets (None where a step gave none)."""
    steps = {s["name"]: s for s in report["steps"]}
    out: dict[str, Any] = {"targets": TARGETS}
    for prec in ("fp32", "bf16"):
        res = _get(steps.get(f"bench_{prec}"), "result")
        pts = _get(res, "sweeps", "resolution", "points") or []
        for p in pts if isinstance(pts, list) else []:
            key = f"{p.get('width')}x{p.get('height')}"
            out[f"{prec}_{key}_ms"] = _get(p, "render", "median_ms")
            out[f"{prec}_{key}_peak_mb"] = _get(p, "render", "peak_mem_mb")
            out[f"{prec}_{key}_chunk"] = _get(p, "render", "chunk")
            out[f"{prec}_{key}_encode_ms"] = _get(p, "keyframe_encode", "median_ms")
        if res is not None:
            out[f"{prec}_variants"] = {k: v.get("median_ms") for k, v in
                                       (_get(res, "variants") or {}).items()}
            out[f"{prec}_speedup_vs_released"] = _get(res, "modes", "depth_guided",
                                                      "speedup_vs_released")
    out["cuda_graphs_variant"] = _get(steps.get("bench_cuda_graphs"), "result", "variants",
                                      "cuda_graphs")
    out["bf16_accuracy"] = _get(steps.get("bench_accuracy"), "result", "precision")
    tail = (_get(steps.get("train_cuda"), "output_tail") or "").strip().splitlines()
    out["train_last_lines"] = [ln for ln in tail if ln.startswith("step ")][-3:]
    return out


def markdown(report: dict[str, Any]) -> str:
    """The Markdown summary: environment, steps, headline numbers."""
    env, summ = report["environment"], report["summary"]
    lines = [f"# GPU check {report['device']} {report['date']}", "",
             f"`{report['command']}` — python {env.get('python')}, torch {env.get('torch')}, "
             f"triton {env.get('triton')}, pytest {env.get('pytest')}, GPU {env.get('gpu')}", "",
             "| step | rc | s |", "|---|---|---|"]
    lines += [f"| {s['name']} | {s['rc']} | {s['wall_s']} |" for s in report["steps"]]
    lines += ["", "| number | value |", "|---|---|"]
    for k, v in summ.items():
        if k in ("targets",):
            continue
        lines.append(f"| {k} | {json.dumps(v) if isinstance(v, (dict, list)) else v} |")
    lines += ["", "Targets (issue 12): " + ", ".join(f"{k} {v}" for k, v in TARGETS.items())]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gpu_check", description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.environ.get("OUT") or "docs/bench",
                    help="folder for the JSON, Markdown and logs (default $OUT or docs/bench)")
    ap.add_argument("--smoke", action="store_true", help="CPU, tiny sizes: try the script")
    ap.add_argument("--dry-run", action="store_true", help="print the commands only")
    ap.add_argument("--only", nargs="*", default=None, help="run only these steps")
    ap.add_argument("--budget-s", type=float, default=450.0,
                    help="total seconds; each step's timeout is cut to what is left, and steps "
                         "that no longer fit are recorded as not run (the report is always "
                         "written)")
    a = ap.parse_args(argv)
    if not a.smoke and not a.dry_run:
        import torch
        if not torch.cuda.is_available():
            print("gpu_check: no CUDA device here; use --smoke to try the script on the CPU",
                  file=sys.stderr)
            return 2
    work = Path(tempfile.mkdtemp(prefix="gsnerf_gpu_check_"))
    steps = [s for s in plan(work, a.smoke) if a.only is None or s.name in a.only]
    if a.dry_run:
        for s in steps:
            print(f"[{s.name}, timeout {s.timeout_s} s] {shlex.join(s.argv)}")
        return 0
    date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d")
    dev = device_name(a.smoke)
    report: dict[str, Any] = {"device": dev, "date": date, "smoke": a.smoke,
                              "command": shlex.join(["tools/gpu_check.sh", *(argv or [])]),
                              "environment": environment(), "steps": []}
    log: list[str] = []
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for s in steps:
        left = a.budget_s - (time.perf_counter() - t0) - 5
        if left < 15:
            report["steps"].append({"name": s.name, "command": shlex.join(s.argv), "rc": None,
                                    "wall_s": 0, "not_run": f"budget {a.budget_s} s spent"})
            continue
        rec = run_step(s, log, min(s.timeout_s, left))
        report["steps"].append(rec)
        print(f"[gpu_check] {s.name}: rc={rec['rc']} in {rec['wall_s']} s", flush=True)
    report["total_s"] = round(time.perf_counter() - t0, 1)
    report["summary"] = summarise(report)
    stem = f"gpu_{dev}_{date}"
    (out / f"{stem}.json").write_text(json.dumps(report, indent=1, default=str))
    (out / f"{stem}.md").write_text(markdown(report))
    (out / "gpu_check_logs.txt").write_text("".join(log))
    print(markdown(report))
    return 0 if all(r["rc"] == 0 for r in report["steps"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
