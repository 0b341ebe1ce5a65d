"""Score a checkpoint's 2D segmenter alone on every labelled frame of a dataset.

``python -m gsnerf_ros.train.segmenter_score --checkpoint CKPT --data ROOT [ROOT ...]`` runs
``GSNeRF.segment_2d`` (the Semantic Geo-Reasoner's 2D logits at its semantic level, read back
at full resolution: the labels the sources vote with) on each frame at the frame's own size and
prints, per data root, the mIoU and accuracy accumulated over all pixels (means over the classes
present in the ground truth) and the per-image mean, with the per-class IoU in the JSON
(``--json``). Nothing is rendered, so it measures the model's 2D eye on many frames in the time
gsnerf-eval renders a few views; ``segmenter_on_target`` of gsnerf-eval is the same measure on
its target views. docs/RESULTS.md §12 uses it to compare 2D decoders.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from gsnerf_ros.data.classes import remap_labels
from gsnerf_ros.data.formats import FORMATS, open_scenes
from gsnerf_ros.train.data_setup import class_label_maps
from gsnerf_ros.train.evaluate import ScoreGroup

__all__ = ["score_segmenter", "main"]

_KEYS = ("mIoU", "acc", "class_acc", "mIoU_accumulated", "acc_accumulated",
         "class_acc_accumulated", "n_images", "per_class_iou", "class_pixels")
"""What :func:`score_segmenter` returns of gsnerf-eval's per-group summary (no rendering
metrics, no confusion matrix)."""


@torch.no_grad()
def score_segmenter(model: Any, root: str | Path, fmt: str = "replica", batch: int = 8,
                    progress: bool = False) -> dict[str, Any]:
    """Accumulated and per-image scores of ``model.segment_2d`` on every labelled frame under
    ``root``, as gsnerf-eval summarises a group of views (:class:`ScoreGroup`):
    ``mIoU``/``acc``/``class_acc`` (per-image means), ``*_accumulated``, ``per_class_iou`` (name
    -> IoU %, None for a class absent from ground truth and prediction), ``class_pixels``,
    ``n_images``. Frames are batched by ``batch`` within a scene (one size per scene). A
    scene's label ids are matched to the model's classes by name, as gsnerf-eval does
    (``data_setup.class_label_maps``; ``ClassMatchError`` when they cannot be). Raises
    ValueError when no frame under ``root`` has labels."""
    model.eval()
    device = next(model.parameters()).device
    group = ScoreGroup(len(model.class_names))
    scenes = open_scenes(root, fmt)
    label_maps = class_label_maps(scenes, list(model.class_names))
    for scene, lmap in zip(tqdm(scenes, desc=f"segmenter {Path(root).name}",
                                disable=not progress), label_maps):
        for start in range(0, len(scene), batch):
            frames = [scene.frame(i) for i in range(start, min(start + batch, len(scene)))]
            frames = [f for f in frames if f.labels is not None]
            if not frames:
                continue
            images = torch.stack([f.image for f in frames]).float().to(device)
            pred = model.segment_2d(images).cpu()
            for p, f in zip(pred, frames):
                group.add({}, p, f.labels if lmap is None else remap_labels(f.labels, lmap))
    if group.n == 0:
        raise ValueError(f"segmenter_score: no labelled frame under {root}")
    summary = group.summary(list(model.class_names))
    return {k: summary[k] for k in _KEYS}


def main(argv: list[str] | None = None) -> int:
    from gsnerf_ros.model.gsnerf import GSNeRF

    p = argparse.ArgumentParser(prog="python -m gsnerf_ros.train.segmenter_score",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="a .safetensors checkpoint")
    p.add_argument("--data", nargs="+", required=True, help="dataset root(s), scored separately")
    p.add_argument("--format", default="replica", choices=FORMATS)
    p.add_argument("--batch", type=int, default=8, help="frames per forward pass")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", default=None, help="write {root: scores} here")
    a = p.parse_args(argv)
    if a.batch < 1:
        p.error("--batch must be >= 1")
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    model = GSNeRF.from_checkpoint(a.checkpoint, device=a.device)
    out: dict[str, Any] = {}
    for root in a.data:
        s = score_segmenter(model, root, a.format, a.batch, progress=True)
        out[str(root)] = s
        print(f"{root}: accumulated mIoU {s['mIoU_accumulated']:.1f} acc "
              f"{s['acc_accumulated']:.1f}; per-image mIoU {s['mIoU']:.1f} "
              f"({s['n_images']} frames)")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps({"checkpoint": a.checkpoint, "scores": out}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
