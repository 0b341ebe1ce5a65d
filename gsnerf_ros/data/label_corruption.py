"""A corrupted 2D segmenter: label maps with a given share of their pixels wrong, in blobs.

A real segmenter errs in regions (a chair's seat taken for the table, a patch of wall for the
floor), not in independent pixels, so the errors are random ellipses (random size, aspect and
orientation) each relabelled to one other class present in the image, drawn until ``fraction``
of the known pixels carry a wrong id (the last blob is shrunk until it does not overshoot by
more than ``tolerance``). Unknown pixels stay unknown and are not counted. Seeded: the same
seed and input give the same output.

Command line (a copy of every scene's labels under ``SRC`` in the layout
``gsnerf-eval --labels-from`` reads)::

    python -m gsnerf_ros.data.label_corruption SRC DST --fraction 0.2 --seed 0
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

from gsnerf_ros.data.segmenter_labels import read_segmenter_png, write_segmenter_png

__all__ = ["corrupt_blobs", "corrupt_dataset", "ellipse_mask", "main"]


def ellipse_mask(h: int, w: int, centre: tuple[float, float], axes: tuple[float, float],
                 angle_deg: float) -> np.ndarray:
    """[h, w] bool: the filled ellipse at ``centre`` (x, y px) with semi-axes ``axes`` (px, at
    least 1) turned by ``angle_deg``."""
    m = np.zeros((h, w), np.uint8)
    cv2.ellipse(m, (int(round(centre[0])), int(round(centre[1]))),
                (max(1, int(round(axes[0]))), max(1, int(round(axes[1])))), angle_deg, 0, 360,
                1, thickness=-1)
    return m.astype(bool)


def corrupt_blobs(labels: Tensor, fraction: float, rng: np.random.Generator,
                  min_axis: float = 0.03, max_axis: float = 0.15,
                  tolerance: float = 0.005) -> Tensor:
    """``labels`` [H, W] int (< 0 unknown) with ``fraction`` of its known pixels relabelled in
    elliptical blobs; returns a new tensor. Semi-axes are drawn in [``min_axis``,
    ``max_axis``] x the image's larger side. The result has between ``fraction`` and
    ``fraction + tolerance`` of the known pixels wrong (fewer only when the image has a single
    class, which then has nothing to be confused with)."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must lie in [0, 1), got {fraction}")
    orig = labels.detach().cpu().numpy().astype(np.int64)
    out = orig.copy()
    h, w = orig.shape
    known = orig >= 0
    n_known = int(known.sum())
    classes = np.unique(orig[known])
    if fraction == 0 or n_known == 0 or classes.size < 2:
        return torch.from_numpy(out)
    want = int(np.ceil(fraction * n_known))
    limit = want + int(tolerance * n_known)
    wrong = 0
    side = max(h, w)
    for _ in range(100000):
        if wrong >= want:
            break
        centre = (rng.uniform(0, w), rng.uniform(0, h))
        a = rng.uniform(min_axis, max_axis) * side
        axes = (a, a * rng.uniform(0.3, 1.0))
        angle = float(rng.uniform(0, 180))
        new = int(rng.choice(classes))
        while True:
            blob = ellipse_mask(h, w, centre, axes, angle) & known
            # pixels this blob would turn wrong, minus those it would turn right again
            change = blob & (out != new)
            delta = int((change & (orig == out)).sum()) - int((change & (orig == new)).sum())
            if wrong + delta <= limit or max(axes) < 1.5:
                break
            axes = (axes[0] * 0.7, axes[1] * 0.7)
        if wrong + delta > limit:
            continue
        out[change] = new
        wrong += delta
    return torch.from_numpy(out)


def corrupt_dataset(src: str | Path, dst: str | Path, fraction: float, seed: int = 0
                    ) -> dict[str, float]:
    """Write a corrupted copy of every ``semantic_class/semantic_class_<i>.png`` under ``src``
    to the same relative path under ``dst``; returns {relative file: wrong share of its known
    pixels}. Each file's generator is seeded with (``seed``, its relative path), so a file's
    corruption does not depend on which other files exist."""
    src, dst = Path(src), Path(dst)
    files = sorted(src.rglob("semantic_class/semantic_class_*.png"))
    if not files:
        raise FileNotFoundError(f"{src}: no semantic_class/semantic_class_<i>.png label images")
    report: dict[str, float] = {}
    for f in files:
        rel = f.relative_to(src)
        key = [seed] + list(rel.as_posix().encode())
        rng = np.random.default_rng(key)
        lab = read_segmenter_png(f)
        bad = corrupt_blobs(lab, fraction, rng)
        known = lab >= 0
        report[rel.as_posix()] = float(((bad != lab) & known).sum()) / max(int(known.sum()), 1)
        write_segmenter_png(dst / rel, bad, sixteen_bit=lab.max() >= 255)
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gsnerf_ros.data.label_corruption",
                                description="Corrupt a dataset's label images in blobs (a "
                                "stand-in for an imperfect 2D segmenter).")
    p.add_argument("src", help="dataset root (Replica layout)")
    p.add_argument("dst", help="output root (the same layout, label images only)")
    p.add_argument("--fraction", type=float, required=True,
                   help="share of each image's known pixels made wrong, in [0, 1)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        report = corrupt_dataset(args.src, args.dst, args.fraction, args.seed)
    except (ValueError, FileNotFoundError) as exc:
        p.exit(2, f"label_corruption: error: {exc}\n")
    vals = list(report.values())
    summary = {"files": len(vals), "fraction": args.fraction, "seed": args.seed,
               "wrong_mean": float(np.mean(vals)), "wrong_min": float(np.min(vals)),
               "wrong_max": float(np.max(vals))}
    Path(args.dst).mkdir(parents=True, exist_ok=True)
    (Path(args.dst) / "corruption.json").write_text(json.dumps({**summary, "per_file": report},
                                                               indent=1))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
