"""One table of several models' held-out results against issue 11's targets.

    python -m gsnerf_ros.train.eval_summary FOLDER [--json summary.json]

Reads what ``tools/gpu_train.sh`` writes into FOLDER: ``eval_<model>_<split>_<rgb|rgbd>.json``
(``gsnerf-eval``, with the reprojection baseline of the same run), ``probe_<model>_<split>.json``
(the depth probe: the sources' cost-volume depth) and ``<model>/summary.json`` (a training run:
steps, seconds, validation history). Prints Markdown: one row per model, split and input with
the model's metrics, the baseline's, and which targets it meets; then the same by camera path
(``camera.mode`` of each room's scene.json: hand-held or robot base, where the depth fails) and
the per-class IoU of the RGB evaluations.

Splits: ``test`` and ``test_novel`` (the held-out rooms, mixed camera paths) and
``robot_test`` / ``robot_test_novel`` (held-out rooms of the same two settings with robot-base
paths only, ``gsnerf-synth --paths robot``), reported as rows of their own with issue 29's
depth target (:data:`ROBOT_DEPTH_TARGET`). A model name must not end in ``_robot``.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any, Sequence

__all__ = ["collect", "by_camera", "target_checks", "markdown", "main", "SPLITS"]

SPLITS = ("test", "test_novel", "robot_test", "robot_test_novel")
"""Split names of the eval files, in table order."""
_SPLIT = "(?P<split>" + "|".join(sorted(SPLITS, key=len, reverse=True)) + ")"
_EVAL = re.compile(r"^eval_(?P<model>.+?)_" + _SPLIT + r"_(?P<input>rgb|rgbd)\.json$")
_PROBE = re.compile(r"^probe_(?P<model>.+?)_" + _SPLIT + r"\.json$")

DEPTH_TARGET = 0.12
"""Issue 11: rendered and cost-volume depth abs-rel from RGB at most this."""
ROBOT_DEPTH_TARGET = 0.15
"""Issue 29: rendered depth abs-rel from RGB on the robot-base rooms at most this (without the
floor bound)."""
MIOU_MARGIN, PSNR_MARGIN = 10.0, 1.5
"""Issue 11: from RGB, mIoU (points) and PSNR (dB) at least the baseline's plus these."""


def _num(d: dict[str, Any], key: str) -> float | None:
    v = d.get(key)
    return float(v) if isinstance(v, (int, float)) else None


def by_camera(ev: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per camera path (scene.json ``camera.mode`` under the eval's data folder; ``unknown``
    without one): rooms, and the image-weighted mean PSNR and depth abs-rel of the model and
    the baseline over those rooms."""
    data = Path(str(ev.get("data", "")))
    base = ev.get("baseline", {}).get("per_scene", {})
    acc: dict[str, dict[str, float]] = {}
    for name, m in ev.get("per_scene", {}).items():
        meta = data / name / "scene.json"
        mode = "unknown"
        if meta.is_file():
            mode = str((json.loads(meta.read_text()).get("camera") or {}).get("mode", "unknown"))
        n = float(m.get("n_images") or 1)
        a = acc.setdefault(mode, {"rooms": 0, "n": 0.0, "psnr": 0.0, "depth_abs_rel": 0.0,
                                  "baseline_psnr": 0.0, "baseline_depth_abs_rel": 0.0})
        b = base.get(name, {})
        a["rooms"] += 1
        a["n"] += n
        for key, src, k in (("psnr", m, "psnr"), ("depth_abs_rel", m, "depth_abs_rel"),
                            ("baseline_psnr", b, "psnr"),
                            ("baseline_depth_abs_rel", b, "depth_abs_rel")):
            a[key] += n * float(src.get(k) or 0.0)
    return {mode: {"rooms": a["rooms"], **{k: a[k] / a["n"] for k in a if k not in ("rooms", "n")}}
            for mode, a in sorted(acc.items())}


def collect(folder: str | Path) -> dict[str, Any]:
    """Rows ``{model, split, input, mIoU, psnr, depth_abs_rel, target_depth_abs_rel,
    cost_volume_abs_rel, baseline: {...}, n_images, per_class_iou, baseline_per_class_iou}``
    and the training runs found in ``folder``."""
    folder = Path(folder)
    probes: dict[tuple[str, str], float | None] = {}
    for p in sorted(folder.glob("probe_*.json")):
        m = _PROBE.match(p.name)
        if m:
            res = json.loads(p.read_text()).get("results", {})
            probes[(m["model"], m["split"])] = _num(res.get("model_final/all", {}), "abs_rel")
    rows = []
    for p in sorted(folder.glob("eval_*.json")):
        m = _EVAL.match(p.name)
        if not m:
            continue
        ev = json.loads(p.read_text())
        base = ev.get("baseline", {})
        keys = ("mIoU", "psnr", "depth_abs_rel")
        rows.append({
            "model": m["model"], "split": m["split"], "input": m["input"],
            **{k: _num(ev, k) for k in (*keys, "target_depth_abs_rel")},
            "cost_volume_abs_rel": probes.get((m["model"], m["split"])) if m["input"] == "rgb"
            else None,
            "baseline": {k: _num(base, k) for k in keys},
            "n_images": ev.get("n_images"), "checkpoint": ev.get("checkpoint"),
            "by_camera": by_camera(ev), "per_class_iou": ev.get("per_class_iou") or {},
            "baseline_per_class_iou": base.get("per_class_iou") or {}})
    runs = {}
    for p in sorted(folder.glob("*/summary.json")):
        s = json.loads(p.read_text())
        runs[p.parent.name] = {k: s.get(k) for k in ("steps", "wall_s", "best_score",
                                                     "select_metric", "val_history")}
    return {"rows": rows, "runs": runs}


def target_checks(row: dict[str, Any]) -> dict[str, bool | None]:
    """Issue 11's targets for one row (None where a number is missing); on the robot splits
    the depth target is issue 29's :data:`ROBOT_DEPTH_TARGET`."""
    b = row["baseline"]

    def ge(a: float | None, c: float | None, margin: float = 0.0) -> bool | None:
        return None if a is None or c is None else a >= c + margin

    def le(a: float | None, c: float | None) -> bool | None:
        return None if a is None or c is None else a <= c

    if row["input"] == "rgb":
        t = ROBOT_DEPTH_TARGET if row["split"].startswith("robot_") else DEPTH_TARGET
        return {f"depth<={t:g}": le(row["depth_abs_rel"], t),
                f"cost_volume<={t:g}": le(row["cost_volume_abs_rel"], t),
                "mIoU>=b+10": ge(row["mIoU"], b["mIoU"], MIOU_MARGIN),
                "psnr>=b+1.5": ge(row["psnr"], b["psnr"], PSNR_MARGIN)}
    return {"mIoU>=b": ge(row["mIoU"], b["mIoU"]), "psnr>=b": ge(row["psnr"], b["psnr"]),
            "depth<=b": le(row["depth_abs_rel"], b["depth_abs_rel"])}


def _f(v: float | None, fmt: str) -> str:
    return "–" if v is None else format(v, fmt)


def markdown(summary: dict[str, Any]) -> str:
    """The rows as a Markdown table (baseline in brackets), then the training runs."""
    lines = ["| model | split | input | mIoU (baseline) | PSNR dB (baseline) | depth abs-rel "
             "(baseline) | D_T | cost volume | targets met |",
             "|---|---|---|---|---|---|---|---|---|"]
    order = {**{s: i for i, s in enumerate(SPLITS)}, "rgb": 0, "rgbd": 1}
    for r in sorted(summary["rows"], key=lambda r: (order[r["input"]], order[r["split"]],
                                                   r["model"])):
        b = r["baseline"]
        checks = target_checks(r)
        met = [k for k, v in checks.items() if v]
        missed = [k for k, v in checks.items() if v is False]
        lines.append(
            f"| {r['model']} | {r['split']} | {r['input'].upper().replace('RGBD', 'RGB-D')} | "
            f"{_f(r['mIoU'], '.1f')} ({_f(b['mIoU'], '.1f')}) | "
            f"{_f(r['psnr'], '.2f')} ({_f(b['psnr'], '.2f')}) | "
            f"{_f(r['depth_abs_rel'], '.4f')} ({_f(b['depth_abs_rel'], '.4f')}) | "
            f"{_f(r['target_depth_abs_rel'], '.4f')} | {_f(r['cost_volume_abs_rel'], '.4f')} | "
            f"{len(met)}/{len(checks)}" + (f" (missed: {', '.join(missed)})" if missed else "")
            + " |")
    cam = [r for r in summary["rows"] if r["input"] == "rgb" and r.get("by_camera")]
    if cam:
        lines += ["", "By camera path (RGB; mean over the rooms' images, baseline in brackets):", "",
                  "| model | split | camera | rooms | PSNR dB | depth abs-rel |", "|---|---|---|---|---|---|"]
        for r in sorted(cam, key=lambda r: (order[r["split"]], r["model"])):
            for mode, c in r["by_camera"].items():
                lines.append(f"| {r['model']} | {r['split']} | {mode} | {c['rooms']} | "
                             f"{c['psnr']:.2f} ({c['baseline_psnr']:.2f}) | "
                             f"{c['depth_abs_rel']:.4f} ({c['baseline_depth_abs_rel']:.4f}) |")
    lines += _per_class_table(summary["rows"], order)
    if summary["runs"]:
        lines += ["", "| training run | steps | seconds | best validation score |",
                  "|---|---|---|---|"]
        for name, s in summary["runs"].items():
            lines.append(f"| {name} | {s['steps']} | {_f(s['wall_s'], '.0f')} | "
                         f"{_f(s['best_score'], '.3f')} ({s['select_metric']}) |")
    return "\n".join(lines)


def _per_class_table(rows: list[dict[str, Any]], order: dict[str, int]) -> list[str]:
    """Per-class IoU of the RGB rows that have one: a row per class, a column per evaluation,
    the baseline in brackets, – where the class is in neither ground truth nor prediction."""
    rows = sorted((r for r in rows if r["input"] == "rgb" and r.get("per_class_iou")),
                  key=lambda r: (order[r["split"]], r["model"]))
    if not rows:
        return []
    classes = list(dict.fromkeys(c for r in rows for c in r["per_class_iou"]))
    lines = ["", "Per-class IoU % (RGB, over all images' pixels; baseline in brackets):", "",
             "| class | " + " | ".join(f"{r['model']} {r['split']}" for r in rows) + " |",
             "|---|" + "---|" * len(rows)]
    for c in classes:
        cells = [f"{_f(r['per_class_iou'].get(c), '.1f')} "
                 f"({_f(r['baseline_per_class_iou'].get(c), '.1f')})" for r in rows]
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", help="folder with eval_*.json / probe_*.json (tools/gpu_train.sh)")
    ap.add_argument("--json", default="", help="also write the rows and runs as JSON")
    args = ap.parse_args(argv)
    if not Path(args.folder).is_dir():
        ap.error(f"{args.folder} is not a folder")
    summary = collect(args.folder)
    if not summary["rows"]:
        ap.error(f"no eval_<model>_<split>_<rgb|rgbd>.json in {args.folder}")
    print(markdown(summary))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
