"""Measured versions of the paper's studies (docs/RESULTS.md), as one command each.

    python -m gsnerf_ros.train.ablations sampling  --checkpoint C --data D [...]   # Fig. A4
    python -m gsnerf_ros.train.ablations views     --checkpoint C --data D [...]   # Table A5
    python -m gsnerf_ros.train.ablations semantics --checkpoint C --data D [...]   # Table A3
    python -m gsnerf_ros.train.ablations compare   --checkpoints NAME=PATH ... --data D  # A2/A3

``sampling``, ``views`` and ``semantics`` vary inference settings of one trained model;
``compare`` evaluates separately trained checkpoints under identical settings. Each writes a
JSON file with every run's full metrics and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

import torch

__all__ = ["main"]

COLS = ("mIoU", "acc", "class_acc", "psnr", "ssim", "depth_abs_rel")


def _row(name: str, r: dict[str, Any]) -> str:
    def f(k: str, nd: int = 2) -> str:
        v = r.get(k)
        return "—" if v is None else f"{v:.{nd}f}"
    return (f"| {name} | {f('mIoU')} | {f('acc')} | {f('class_acc')} | {f('psnr')} | "
            f"{f('ssim', 3)} | {f('depth_abs_rel', 3)} | {r.get('seconds_per_view', 0):.1f} |")


HEADER = ("| setting | mIoU | acc | class acc | PSNR | SSIM | depth abs-rel | s/view |\n"
          "|---|---|---|---|---|---|---|---|")


def main(argv: list[str] | None = None) -> int:
    from gsnerf_ros.model import GSNeRF
    from gsnerf_ros.train.data_setup import eval_views, load_scenes
    from gsnerf_ros.train.evaluate import EvalOptions, evaluate, write_json
    from gsnerf_ros.device import resolve_device

    p = argparse.ArgumentParser(prog="gsnerf-ablations", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("study", choices=["sampling", "views", "semantics", "compare"])
    p.add_argument("--checkpoint", help="model for sampling/views/semantics")
    p.add_argument("--checkpoints", nargs="*", default=[], help="NAME=PATH pairs for compare")
    p.add_argument("--data", required=True)
    p.add_argument("--format", default="replica")
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--num-sources", type=int, default=8)
    p.add_argument("--max-targets", type=int, default=None)
    p.add_argument("--samples", type=int, nargs="*", default=[4, 8, 16, 32, 64])
    p.add_argument("--views", type=int, nargs="*", default=[4, 6, 8])
    p.add_argument("--json", required=True)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args(argv)
    device = resolve_device(a.device)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    scenes = load_scenes(a.data, a.format)
    if not scenes:
        p.error(f"no scenes under {a.data}")

    def run(model: Any, views: list, **opts: Any) -> dict[str, Any]:
        return evaluate(model, views, EvalOptions(baseline=False, lpips=False, progress=False,
                                                  **opts), device=device, total=len(views))

    rows: list[tuple[str, dict[str, Any]]] = []
    if a.study == "compare":
        if not a.checkpoints:
            p.error("compare needs --checkpoints NAME=PATH ...")
        views = eval_views(scenes, a.num_sources, a.height, a.width, a.max_targets)
        for item in a.checkpoints:
            name, path = item.split("=", 1)
            rows.append((name, run(GSNeRF.from_checkpoint(path, device=device), views)))
    else:
        if not a.checkpoint:
            p.error(f"{a.study} needs --checkpoint")
        model = GSNeRF.from_checkpoint(a.checkpoint, device=device)
        if a.study == "views":
            for k in a.views:
                views = eval_views(scenes, k, a.height, a.width, a.max_targets)
                rows.append((f"{k} source views", run(model, views)))
        else:
            views = eval_views(scenes, a.num_sources, a.height, a.width, a.max_targets)
            if a.study == "sampling":
                for mode in ("depth_guided", "uniform"):
                    for n in a.samples:
                        rows.append((f"{mode}, {n} samples",
                                     run(model, views, sampling={"mode": mode,
                                                                 "num_samples": n})))
            else:  # semantics: paper Table A3 rows, at inference
                n = model.config.sampling.num_guided + 1
                rows.append(("A: uniform sampling + 2D seg. of rendered RGB",
                             run(model, views, sampling={"mode": "uniform", "num_samples": n},
                                 semantics="2d_on_rendered")))
                rows.append(("B: depth-guided + 2D seg. of rendered RGB",
                             run(model, views, sampling={"mode": "depth_guided"},
                                 semantics="2d_on_rendered")))
                rows.append(("C: depth-guided RGB + volume semantics (uniform samples)",
                             run(model, views, sampling={"mode": "depth_guided"},
                                 semantics="separate", semantic_sampling={
                                     "mode": "uniform", "num_samples": n,
                                     "semantic_mode": "volume"})))
                rows.append(("full: depth-guided + surface-point semantics",
                             run(model, views, sampling={"mode": "depth_guided"})))
    table = "\n".join([HEADER] + [_row(n, r) for n, r in rows])
    cmd = "python -m gsnerf_ros.train.ablations " + " ".join(
        shlex.quote(x) for x in (argv if argv is not None else sys.argv[1:]))
    write_json({"study": a.study, "command": cmd, "n_images": rows[0][1]["n_images"],
                "rows": [{"setting": n, **r} for n, r in rows]}, a.json)
    Path(a.json).with_suffix(".md").write_text(f"`{cmd}`\n\n{table}\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
