"""Colour images of labels and depth, for people: PNG panels, previews and the node's
``semantic_color`` and ``semantic_legend`` images.

Every function returns uint8 RGB images (H, W, 3); :func:`uint8_to_float_rgb` turns one into the
model's float [3, H, W] layout. Class ids are coloured with a checkpoint's palette (ids outside
it black); depth with OpenCV's turbo map, near blue to far red, invalid pixels black.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor

__all__ = ["colorize_labels", "colorize_depth", "DEPTH_SCALES", "depth_colorbar", "class_legend",
           "uint8_to_float_rgb"]

DEPTH_SCALES = ("linear", "inverse")
"""How :func:`colorize_depth` maps metres to the colour map: ``linear`` in depth (panels, the
demo and the colour bar) or ``inverse`` (in 1/depth: more colours near the camera)."""


def colorize_labels(labels: Tensor | np.ndarray, palette: Tensor | np.ndarray) -> np.ndarray:
    """Class ids to RGB with a palette. Shape: (H, W) ids, (C, 3) uint8 -> (H, W, 3) uint8.

    Ids outside the palette (e.g. 255 = ignore, negatives) become black.
    """
    pal = torch.as_tensor(palette, dtype=torch.uint8).cpu()
    pal = torch.cat([pal, torch.zeros(1, 3, dtype=torch.uint8)])
    lab = torch.as_tensor(labels).detach().to("cpu").long()
    lab = torch.where((lab >= 0) & (lab < pal.shape[0] - 1), lab,
                      torch.full_like(lab, pal.shape[0] - 1))
    return pal[lab].numpy()


def colorize_depth(depth: Tensor | np.ndarray, vmin: float | None = None,
                   vmax: float | None = None, scale: str = "linear") -> np.ndarray:
    """Depth in metres to the turbo colour map. Shape: (H, W) -> (H, W, 3) uint8.

    Pixels that are not finite and > 0 are invalid and black. The map spans ``vmin`` ..
    ``vmax`` metres (default: the valid pixels' range), ``linear`` in depth or ``inverse``
    (linear in 1/depth), see :data:`DEPTH_SCALES`.
    """
    if scale not in DEPTH_SCALES:
        raise ValueError(f"scale must be one of {DEPTH_SCALES}, got {scale!r}")
    d = torch.as_tensor(depth).detach().float().cpu().numpy()
    valid = np.isfinite(d) & (d > 0)
    d = np.where(valid, d, 0.0)
    if scale == "linear":
        lo = vmin if vmin is not None else (float(d[valid].min()) if valid.any() else 0.0)
        hi = vmax if vmax is not None else (float(d[valid].max()) if valid.any() else 1.0)
        x = np.clip((d - lo) / max(hi - lo, 1e-6), 0, 1)
    else:
        if not valid.any():
            return np.zeros((*d.shape, 3), np.uint8)
        lo = vmin if vmin is not None else float(d[valid].min())
        hi = vmax if vmax is not None else float(d[valid].max())
        x = np.clip((1.0 / np.clip(d, lo, hi) - 1.0 / hi) / max(1.0 / lo - 1.0 / hi, 1e-9), 0, 1)
    bgr = cv2.applyColorMap((x * 255).astype(np.uint8), cv2.COLORMAP_TURBO)
    rgb = bgr[..., ::-1].copy()
    rgb[~valid] = 0
    return rgb


def uint8_to_float_rgb(rgb: np.ndarray) -> Tensor:
    """An RGB image to the model's layout. Shape: (H, W, 3) uint8 -> (3, H, W) float32 in [0,1]."""
    rgb = np.asarray(rgb).astype(np.float32) / 255.0
    return torch.from_numpy(rgb).permute(2, 0, 1).contiguous()


def _put_text(img: np.ndarray, text: str, x: int, y: int, scale: float) -> None:
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                cv2.LINE_AA)


def depth_colorbar(vmin: float, vmax: float, height: int, width: int, ticks: int = 5
                   ) -> np.ndarray:
    """A horizontal colour bar of :func:`colorize_depth`'s linear map from ``vmin`` to ``vmax``
    metres, labelled in metres below the bar. Shape: (height, width, 3) uint8."""
    out = np.zeros((height, width, 3), np.uint8)
    bar_h = max(4, height // 2)
    ramp = torch.linspace(max(vmin, 1e-6), vmax, width)[None].expand(bar_h, width)
    out[:bar_h] = colorize_depth(ramp, max(vmin, 1e-6), vmax)
    (tw1, th1), _ = cv2.getTextSize(f"{max(abs(vmin), abs(vmax)):.1f} m",
                                    cv2.FONT_HERSHEY_SIMPLEX, 1.0, 1)
    # as large as the space under the bar allows, but every label within its share of the width
    scale = max(0.3, min((height - bar_h - 6) / max(th1, 1) * 0.8,
                         0.7 * width / ticks / max(tw1, 1)))
    for i in range(ticks):
        x = int(round(i * (width - 1) / (ticks - 1)))
        out[bar_h:bar_h + 3, max(0, x - 1):x + 1] = 255
        label = f"{vmin + (vmax - vmin) * i / (ticks - 1):.1f} m"
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        _put_text(out, label, int(np.clip(x - tw // 2, 0, width - tw)),
                  min(height - 2, bar_h + 4 + th), scale)
    return out


def class_legend(names: list[str], palette: Tensor | np.ndarray, height: int, width: int,
                 ids: list[int] | None = None) -> np.ndarray:
    """Colour swatch + name of each class id in ``ids`` (default all), in columns filling a
    (height, width, 3) uint8 image; the palette is the one of :func:`colorize_labels`."""
    pal = np.asarray(palette.cpu() if isinstance(palette, Tensor) else palette, np.uint8)
    ids = list(range(len(names))) if ids is None else [i for i in ids if 0 <= i < len(names)]
    out = np.zeros((height, width, 3), np.uint8)
    if not ids:
        return out
    row_h = max(10, min(24, height // max(1, min(len(ids), height // 10))))
    rows = max(1, height // row_h)
    cols = -(-len(ids) // rows)
    col_w = width // cols
    scale = row_h / 32.0
    for k, cid in enumerate(ids):
        r, c = k % rows, k // rows
        y, x = r * row_h, c * col_w
        sw = max(4, row_h - 4)
        out[y + 2:y + 2 + sw, x + 2:x + 2 + sw] = pal[cid]
        _put_text(out, f"{cid} {names[cid]}"[: max(1, col_w // max(4, int(18 * scale)))],
                  x + sw + 5, y + row_h - 5, scale)
    return out
