"""Reader for ScanNet scenes exported to frames (SensReader + 2D label export).

```
<root>/scannetv2-labels.combined.tsv          (or pass ``labels_tsv``)
<root>/<scene>/color/<id>.jpg                  colour (1296x968 in ScanNet)
<root>/<scene>/depth/<id>.png                  uint16 mm (640x480), depth camera
<root>/<scene>/pose/<id>.txt                   4x4 camera-to-world; inf/nan rows = lost tracking
<root>/<scene>/intrinsic/intrinsic_color.txt   4x4 (top-left 3x3 used)
<root>/<scene>/intrinsic/intrinsic_depth.txt   4x4 (optional; else colour K scaled to depth size)
<root>/<scene>/label-filt/<id>.png             raw ScanNet label ids (uint16), colour viewpoint
```

- Frame ids are the numeric file names; they need not be contiguous. Frames whose pose is
  missing or holds inf/nan are skipped.
- Depth is registered to the colour image: each colour pixel looks up the depth pixel on the
  same viewing ray (nearest), using both intrinsics; ScanNet's exported depth and colour
  cameras share their optical centre (identity extrinsics), which this assumes.
- Labels: raw id -> nyu40 (``id`` and ``nyu40id`` columns of the tsv) -> 20 benchmark classes;
  anything else -> 255 (protocol ``"benchmark"``), or the released GSNeRF remap (``"gsnerf"``).
  Label images of another size are resized to colour size (nearest).
- near/far: 0.1 / 10 m.
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

from gsnerf_ros.data.classes import (
    make_palette, nyu40_to_scannet20_lut, scannet_class_names,
)
from gsnerf_ros.geometry import scale_intrinsics
from gsnerf_ros.data.io import read_depth_png, read_label_png, read_matrix, read_rgb
from gsnerf_ros.data.scene import Frame, Scene

__all__ = ["ScanNetScene", "read_label_tsv", "register_depth", "SCANNET_NEAR", "SCANNET_FAR"]

SCANNET_NEAR = 0.1
SCANNET_FAR = 10.0
TSV_NAME = "scannetv2-labels.combined.tsv"


def read_label_tsv(path: str | Path) -> np.ndarray:
    """``scannetv2-labels.combined.tsv`` -> LUT raw id -> nyu40 id (0 where unknown), int64."""
    path = Path(path)
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        cols = reader.fieldnames or []
        if "id" not in cols or "nyu40id" not in cols:
            raise ValueError(f"{path}: needs 'id' and 'nyu40id' columns, found {cols}")
        pairs = [(int(r["id"]), int(r["nyu40id"] or 0)) for r in reader if r["id"].strip()]
    size = max([65536] + [i + 1 for i, _ in pairs])
    lut = np.zeros(size, dtype=np.int64)
    for rid, nid in pairs:
        if not 0 <= nid <= 40:
            raise ValueError(f"{path}: nyu40id {nid} of raw id {rid} outside 0..40")
        lut[rid] = nid
    return lut


def register_depth(depth: Tensor, K_depth: Tensor, K_color: Tensor, height: int,
                   width: int) -> Tensor:
    """Resample a depth map onto the colour image grid (shared optical centre, nearest).

    Shape: ``depth`` (h,w) m, ``K_*`` (3,3) -> (height, width) m; 0 outside the depth view.
    """
    v, u = np.meshgrid(np.arange(height, dtype=np.float32), np.arange(width, dtype=np.float32),
                       indexing="ij")
    Kc, Kd = K_color.double().numpy(), K_depth.double().numpy()
    x = (u - Kc[0, 2]) / Kc[0, 0]
    y = (v - Kc[1, 2]) / Kc[1, 1]
    map_x = (Kd[0, 0] * x + Kd[0, 2]).astype(np.float32)
    map_y = (Kd[1, 1] * y + Kd[1, 2]).astype(np.float32)
    out = cv2.remap(depth.numpy().astype(np.float32), map_x, map_y, cv2.INTER_NEAREST,
                    borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    return torch.from_numpy(out)


class ScanNetScene(Scene):
    """One exported ScanNet scene as a :class:`Scene` (frames at colour resolution)."""

    def __init__(self, root: str | Path, labels_tsv: str | Path | None = None,
                 protocol: str = "benchmark", load_depth: bool = True,
                 load_labels: bool = True, frame_step: int = 1) -> None:
        self.root = Path(root)
        color_dir = self.root / "color"
        if not color_dir.is_dir():
            raise FileNotFoundError(f"{self.root}: not an exported ScanNet scene (no color/)")
        self.name = self.root.name
        self.class_names = scannet_class_names(protocol)
        self.palette = make_palette(len(self.class_names))
        self.near, self.far = SCANNET_NEAR, SCANNET_FAR
        files = {}
        for p in color_dir.iterdir():
            if p.suffix.lower() in (".jpg", ".jpeg", ".png") and p.stem.isdigit():
                files[int(p.stem)] = p
        if frame_step < 1:
            raise ValueError(f"frame_step must be >= 1, got {frame_step}")
        ids, poses = [], []
        for fid in sorted(files)[::frame_step]:
            pp = self.root / "pose" / f"{fid}.txt"
            if not pp.is_file():
                continue
            T = read_matrix(pp)
            if T.shape != (4, 4) or not bool(torch.isfinite(T).all()):
                continue
            ids.append(fid)
            poses.append(T)
        if not ids:
            raise ValueError(f"{self.root}: no frame has both a colour image and a finite pose")
        self._ids, self._color = ids, files
        self._c2w = torch.stack(poses)
        Kc = read_matrix(self.root / "intrinsic" / "intrinsic_color.txt")[:3, :3]
        probe = read_rgb(files[ids[0]])
        self.height, self.width = int(probe.shape[1]), int(probe.shape[2])
        self._K = Kc.clone()
        kd_path = self.root / "intrinsic" / "intrinsic_depth.txt"
        self._K_depth = read_matrix(kd_path)[:3, :3] if kd_path.is_file() else None
        self.load_depth, self.load_labels = load_depth, load_labels
        self._lut: Tensor | None = None
        if load_labels and (self.root / "label-filt").is_dir():
            tsv = Path(labels_tsv) if labels_tsv else None
            if tsv is None:
                for cand in (self.root / TSV_NAME, self.root.parent / TSV_NAME):
                    if cand.is_file():
                        tsv = cand
                        break
            if tsv is None:
                raise FileNotFoundError(f"{self.root}: label-filt/ needs {TSV_NAME} in the scene "
                                        "folder or its parent, or pass labels_tsv=")
            raw_to_nyu = read_label_tsv(tsv)
            nyu_to_cls = nyu40_to_scannet20_lut(protocol)
            self._lut = torch.from_numpy(nyu_to_cls[raw_to_nyu])

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def frame_ids(self) -> list[int]:
        return list(self._ids)

    def frame(self, i: int) -> Frame:
        fid = self._ids[self._check_index(i)]
        image = read_rgb(self._color[fid])
        if tuple(image.shape[1:]) != (self.height, self.width):
            raise ValueError(f"{self._color[fid]}: size differs from the scene's first frame")
        depth = labels = None
        dp = self.root / "depth" / f"{fid}.png"
        if self.load_depth and dp.is_file():
            d = read_depth_png(dp)
            Kd = self._K_depth
            if Kd is None:
                Kd = scale_intrinsics(self._K, d.shape[1] / self.width, d.shape[0] / self.height)
            depth = register_depth(d, Kd, self._K, self.height, self.width)
        lp = self.root / "label-filt" / f"{fid}.png"
        if self._lut is not None and lp.is_file():
            raw = read_label_png(lp)
            if tuple(raw.shape) != (self.height, self.width):
                raw = torch.from_numpy(cv2.resize(raw.numpy().astype(np.uint16),
                                                  (self.width, self.height),
                                                  interpolation=cv2.INTER_NEAREST).astype(np.int64))
            labels = self._lut[raw.clamp(0, self._lut.numel() - 1)]
        return Frame(image=image, K=self._K.clone(), c2w=self._c2w[i % len(self)].clone(),
                     depth=depth, labels=labels, frame_id=str(fid), stamp=float(fid))

    def poses(self) -> Tensor:
        return self._c2w

    def intrinsics(self) -> Tensor:
        return self._K.expand(len(self), 3, 3).clone()
