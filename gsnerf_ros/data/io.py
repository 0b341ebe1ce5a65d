"""Image, depth, label and pose file helpers (OpenCV), shared by the readers and the writer.

- colour: PNG/JPEG, read as float32 [3,H,W] RGB in [0,1];
- depth: uint16 PNG in millimetres (0 = invalid) <-> float32 [H,W] metres;
- labels: uint8 (or uint16) PNG of class ids <-> int64 [H,W];
- poses: ``traj_w_c.txt`` with one row-major 4x4 per line, or a 4x4 text matrix per file.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

__all__ = [
    "read_rgb", "write_rgb", "read_depth_png", "write_depth_png", "read_label_png",
    "write_label_png", "read_matrix", "read_traj", "write_traj", "natural_key",
]


def _check(path: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"missing file {path}")
    return path


def read_rgb(path: str | Path) -> Tensor:
    """Read a colour image as RGB float32 [3,H,W] in [0,1] (8- or 16-bit files)."""
    img = cv2.imread(str(_check(Path(path))), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f"{path}: OpenCV cannot decode this image")
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    if img.shape[-1] == 4:
        img = img[..., :3]
    scale = 65535.0 if img.dtype == np.uint16 else 255.0
    rgb = np.ascontiguousarray(img[..., ::-1]).astype(np.float32) / scale
    return torch.from_numpy(rgb).permute(2, 0, 1).contiguous()


def to_uint8_rgb(image: Tensor) -> np.ndarray:
    """float [3,H,W] in [0,1] -> uint8 [H,W,3] RGB."""
    arr = image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    return (arr * 255.0 + 0.5).astype(np.uint8)


def write_rgb(path: str | Path, image: Tensor | np.ndarray) -> None:
    """Write float [3,H,W] in [0,1] or uint8 [H,W,3] RGB as PNG/JPEG."""
    arr = to_uint8_rgb(image) if isinstance(image, Tensor) else np.asarray(image, dtype=np.uint8)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.ascontiguousarray(arr[..., ::-1])):
        raise OSError(f"could not write {path}")


def read_depth_png(path: str | Path, scale: float = 1000.0) -> Tensor:
    """uint16 depth PNG (``scale`` units per metre, default millimetres) -> float32 [H,W] m."""
    d = cv2.imread(str(_check(Path(path))), cv2.IMREAD_UNCHANGED)
    if d is None or d.ndim != 2:
        raise ValueError(f"{path}: expected a single-channel 16-bit depth PNG")
    return torch.from_numpy(d.astype(np.float32) / scale)


def write_depth_png(path: str | Path, depth: Tensor | np.ndarray, scale: float = 1000.0) -> None:
    """float [H,W] metres -> uint16 PNG in millimetres (rounded; >65.535 m and invalid -> 0)."""
    d = depth.detach().cpu().numpy() if isinstance(depth, Tensor) else np.asarray(depth)
    mm = np.round(np.nan_to_num(d, nan=0.0, posinf=0.0) * scale)
    mm = np.where((mm < 0) | (mm > 65535), 0, mm).astype(np.uint16)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), mm):
        raise OSError(f"could not write {path}")


def read_label_png(path: str | Path) -> Tensor:
    """Single-channel uint8/uint16 PNG of ids -> int64 [H,W]."""
    lab = cv2.imread(str(_check(Path(path))), cv2.IMREAD_UNCHANGED)
    if lab is None:
        raise ValueError(f"{path}: OpenCV cannot decode this label image")
    if lab.ndim == 3:
        raise ValueError(f"{path}: label images must be single-channel ids, got {lab.shape[-1]} "
                         "channels (a colour-coded label image?)")
    return torch.from_numpy(lab.astype(np.int64))


def write_label_png(path: str | Path, labels: Tensor | np.ndarray) -> None:
    """int [H,W] ids -> uint8 PNG (uint16 when an id exceeds 255)."""
    lab = labels.detach().cpu().numpy() if isinstance(labels, Tensor) else np.asarray(labels)
    if lab.min() < 0 or lab.max() > 65535:
        raise ValueError("label ids must lie in [0, 65535]")
    lab = lab.astype(np.uint8 if lab.max() <= 255 else np.uint16)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), lab):
        raise OSError(f"could not write {path}")


def read_matrix(path: str | Path) -> Tensor:
    """A whitespace-separated 4x4 (or 3x3) text matrix -> float32 tensor (inf/nan kept)."""
    vals = np.loadtxt(str(_check(Path(path))), dtype=np.float64)
    if vals.shape not in ((4, 4), (3, 3)):
        raise ValueError(f"{path}: expected a 4x4 or 3x3 matrix, got shape {vals.shape}")
    return torch.from_numpy(vals).float()


def read_traj(path: str | Path) -> Tensor:
    """``traj_w_c.txt``: one row-major 4x4 camera-to-world per line -> [N,4,4] float32."""
    vals = np.loadtxt(str(_check(Path(path))), dtype=np.float64, ndmin=2)
    if vals.shape[1] != 16:
        raise ValueError(f"{path}: each line must hold 16 numbers (a row-major 4x4), "
                         f"got {vals.shape[1]}")
    return torch.from_numpy(vals.reshape(-1, 4, 4)).float()


def write_traj(path: str | Path, c2w: Tensor) -> None:
    """[N,4,4] camera-to-world -> ``traj_w_c.txt`` (one row-major 4x4 per line)."""
    arr = c2w.detach().cpu().double().reshape(-1, 16).numpy()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(str(path), arr, fmt="%.9g")


def natural_key(name: str) -> list[int | str]:
    """Sort key with numbers compared numerically (``rgb_2`` before ``rgb_10``)."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]
