"""gsnerf-eval's reports of :func:`gsnerf_ros.train.evaluate.evaluate` results: Markdown
(model, baseline, segmenters, per class, per scene), strict JSON and the confusion-matrix
picture."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from gsnerf_ros.train.confusion_plot import save_confusion_png

__all__ = ["write_markdown", "write_json", "write_confusion_png"]


def _fmt(v: Any, nd: int = 2) -> str:
    return "—" if v is None else f"{v:.{nd}f}"


def write_markdown(results: dict[str, Any], path: str | Path, title: str = "Evaluation") -> None:
    """A Markdown summary of :func:`evaluate` results (model vs baseline, then per scene)."""
    labels = results.get("semantic_source") == "labels"
    rows = [("GSNeRF (classes: segmenter label vote)" if labels else "GSNeRF", results)]
    if "baseline" in results:
        rows.append(("reprojection baseline", results["baseline"]))
    if "segmenter" in results:
        rows.append(("2D segmenter on the source views", results["segmenter"]))
    if "segmenter_on_target" in results:
        rows.append(("its 2D segmenter on the true target image", results["segmenter_on_target"]))
    extra_sources = list(results.get("label_sources", {}).items())
    lines = [f"# {title}", ""]
    for k in ("checkpoint", "data", "command"):
        if k in results:
            lines.append(f"- {k}: `{results[k]}`")
    lines += [f"- images: {results.get('n_images')}",
              f"- LPIPS: {results.get('lpips_reason') or 'computed'}", "",
              "| method | mIoU | acc | class acc | mIoU (accum.) | PSNR | SSIM | LPIPS "
              "| depth abs-rel | depth RMSE (m) |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in rows:
        lines.append(f"| {name} | {_fmt(r.get('mIoU'))} | {_fmt(r.get('acc'))} | "
                     f"{_fmt(r.get('class_acc'))} | {_fmt(r.get('mIoU_accumulated'))} | "
                     f"{_fmt(r.get('psnr'))} | {_fmt(r.get('ssim'), 3)} | "
                     f"{_fmt(r.get('lpips'), 3)} | {_fmt(r.get('depth_abs_rel'), 3)} | "
                     f"{_fmt(r.get('depth_rmse'), 3)} |")
    if extra_sources:
        lines += ["", "## Segmenters (label vote vs the segmenter on the source views)", "",
                  "| labels from | vote mIoU | vote acc | segmenter mIoU | segmenter acc |",
                  "|---|---|---|---|---|"]
        for name, r in extra_sources:
            sg = r.get("segmenter", {})
            lines.append(f"| `{name}` | {_fmt(r.get('mIoU'))} | {_fmt(r.get('acc'))} | "
                         f"{_fmt(sg.get('mIoU'))} | {_fmt(sg.get('acc'))} |")
    if results.get("target_depth_abs_rel") is not None:
        lines += ["", f"Target-depth estimate D_T: abs-rel "
                      f"{_fmt(results['target_depth_abs_rel'], 3)}, RMSE "
                      f"{_fmt(results.get('target_depth_rmse'), 3)} m."]
    if results.get("per_class_iou"):
        lines += ["", "## Per class", "",
                  "IoU (%) over all images' pixels; — where a class is in neither the ground "
                  "truth nor the prediction. Share: the class's part of the labelled pixels.", ""]
        base = results.get("baseline", {}).get("per_class_iou")
        pixels = results.get("class_pixels", {})
        total = sum(p["gt"] for p in pixels.values()) or 1
        head = "| class | share (%) | GSNeRF IoU |" + (" baseline IoU |" if base else "")
        lines += [head, "|---|---|---|" + ("---|" if base else "")]
        for name, v in results["per_class_iou"].items():
            share = 100.0 * pixels.get(name, {}).get("gt", 0) / total
            row = f"| {name} | {share:.1f} | {_fmt(v, 1)} |"
            lines.append(row + (f" {_fmt(base.get(name), 1)} |" if base else ""))
        if results.get("confusion_png"):
            lines += ["", f"Confusion matrices (rows normalised): `{results['confusion_png']}`"]
    lines += ["", "## Per scene", "", "| scene | images | mIoU | acc | PSNR | SSIM | depth abs-rel |",
              "|---|---|---|---|---|---|---|"]
    for name, r in sorted(results.get("per_scene", {}).items()):
        lines.append(f"| {name} | {r['n_images']} | {_fmt(r.get('mIoU'))} | {_fmt(r.get('acc'))}"
                     f" | {_fmt(r.get('psnr'))} | {_fmt(r.get('ssim'), 3)} | "
                     f"{_fmt(r.get('depth_abs_rel'), 3)} |")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(lines) + "\n")


def write_confusion_png(results: dict[str, Any], path: str | Path) -> Path | None:
    """The row-normalised confusion matrices of the model and (if scored) the baseline from
    :func:`evaluate`'s results, side by side (:mod:`gsnerf_ros.train.confusion_plot`). None
    (nothing written) when no image had ground-truth labels."""
    if "confusion_matrix" not in results:
        return None
    panels = [(f"GSNeRF (mIoU {_fmt(results.get('mIoU_accumulated'), 1)})",
               np.asarray(results["confusion_matrix"]))]
    base = results.get("baseline", {})
    if "confusion_matrix" in base:
        panels.append((f"reprojection baseline (mIoU {_fmt(base.get('mIoU_accumulated'), 1)})",
                       np.asarray(base["confusion_matrix"])))
    return save_confusion_png(path, panels, results["class_names"])


def write_json(results: dict[str, Any], path: str | Path) -> None:
    """Write results as strict JSON (no NaN/inf)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(results, indent=2, allow_nan=False))
