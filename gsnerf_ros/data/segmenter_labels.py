"""Per-frame label images of a 2D segmenter beside a dataset (``gsnerf-eval --labels-from DIR``).

A segmenter's labels are class-id images like a ROS segmenter publishes them: single-channel
8-bit PNGs (255 = unknown) or 16-bit ones (65535 = unknown). ``DIR`` mirrors the dataset's
Replica layout: the labels of frame ``i`` of the scene at ``<data>/<rel>`` are
``DIR/<rel>/semantic_class/semantic_class_<i>.png``, so the dataset's own ground truth
(``DIR`` = the data root) or a corrupted copy of it
(:mod:`gsnerf_ros.data.label_corruption`) stands in for a segmenter. In memory the unknown
value is -1 (:data:`UNKNOWN`).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

__all__ = ["UNKNOWN", "UNKNOWN_MONO8", "UNKNOWN_MONO16", "read_segmenter_png",
           "write_segmenter_png", "segmenter_label_path", "scene_relative_dir"]

UNKNOWN = -1
UNKNOWN_MONO8 = 255
UNKNOWN_MONO16 = 65535


def read_segmenter_png(path: str | Path) -> Tensor:
    """A segmenter's class-id PNG -> int64 [H, W], -1 where unknown (255 in an 8-bit image,
    65535 in a 16-bit one). Raises FileNotFoundError / ValueError saying what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no segmenter label image for this frame")
    lab = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if lab is None:
        raise ValueError(f"{path}: OpenCV cannot decode this label image")
    if lab.ndim != 2 or lab.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"{path}: a segmenter label image is one channel of 8- or 16-bit ids, "
                         f"got shape {lab.shape} {lab.dtype}")
    unknown = UNKNOWN_MONO8 if lab.dtype == np.uint8 else UNKNOWN_MONO16
    out = torch.from_numpy(lab.astype(np.int64))
    return torch.where(out == unknown, torch.full_like(out, UNKNOWN), out)


def write_segmenter_png(path: str | Path, labels: Tensor | np.ndarray,
                        sixteen_bit: bool = False) -> None:
    """int [H, W] ids (< 0 unknown) -> an 8-bit PNG (255 unknown), 16-bit (65535 unknown) when
    ``sixteen_bit`` or an id exceeds 254."""
    lab = labels.detach().cpu().numpy() if isinstance(labels, Tensor) else np.asarray(labels)
    lab = lab.astype(np.int64)
    if lab.max(initial=-1) >= UNKNOWN_MONO16:
        raise ValueError(f"label ids must lie below {UNKNOWN_MONO16}")
    wide = sixteen_bit or lab.max(initial=-1) >= UNKNOWN_MONO8
    unknown = UNKNOWN_MONO16 if wide else UNKNOWN_MONO8
    arr = np.where(lab < 0, unknown, lab).astype(np.uint16 if wide else np.uint8)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), arr):
        raise OSError(f"could not write {path}")


def scene_relative_dir(scene_root: str | Path, data_root: str | Path) -> Path:
    """A scene folder relative to the data root it was found under (``.`` when the data root
    is the scene itself)."""
    scene_root, data_root = Path(scene_root).resolve(), Path(data_root).resolve()
    try:
        return scene_root.relative_to(data_root)
    except ValueError as exc:
        raise ValueError(f"scene {scene_root} is not under the data root {data_root}") from exc


def segmenter_label_path(labels_dir: str | Path, rel: str | Path, frame_index: int) -> Path:
    """``labels_dir/rel/semantic_class/semantic_class_<frame_index>.png``."""
    return Path(labels_dir) / rel / "semantic_class" / f"semantic_class_{frame_index}.png"
