"""PNG panels for evaluation and TensorBoard: sources, GT, rendered RGB, semantics, depth, error.

Layout (rows of equal-size tiles, uint8 RGB):
    row 1: the source views (up to 8, padded with black tiles)
    row 2: GT RGB | rendered RGB | |error| heat map | GT semantics | rendered semantics
    row 3: GT depth | rendered depth | target-depth estimate | depth |error| | semantic errors
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

from gsnerf_ros.data.classes import IGNORE_INDEX
from gsnerf_ros.data.io import label_colors as colorize_labels

__all__ = ["to_uint8_rgb", "colorize_labels", "colorize_depth", "colorize_error", "make_panel",
           "save_png", "depth_colorbar", "class_legend"]


def to_uint8_rgb(img: Tensor) -> np.ndarray:
    """(3,H,W) or (H,W,3) float in [0,1] -> (H,W,3) uint8."""
    t = img.detach().float().cpu()
    if t.ndim == 3 and t.shape[0] == 3 and t.shape[-1] != 3:
        t = t.permute(1, 2, 0)
    return (t.clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)


def colorize_depth(depth: Tensor, vmin: float | None = None, vmax: float | None = None
                   ) -> np.ndarray:
    """(H,W) metres -> (H,W,3) uint8 turbo colour map; invalid (<=0 or NaN) pixels black."""
    d = depth.detach().float().cpu().numpy()
    valid = np.isfinite(d) & (d > 0)
    d = np.where(valid, d, 0.0)
    if vmin is None:
        vmin = float(d[valid].min()) if valid.any() else 0.0
    if vmax is None:
        vmax = float(d[valid].max()) if valid.any() else 1.0
    x = np.clip((d - vmin) / max(vmax - vmin, 1e-6), 0, 1)
    bgr = cv2.applyColorMap((x * 255).astype(np.uint8), cv2.COLORMAP_TURBO)
    rgb = bgr[..., ::-1].copy()
    rgb[~valid] = 0
    return rgb


def _put_text(img: np.ndarray, text: str, x: int, y: int, scale: float) -> None:
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                cv2.LINE_AA)


def depth_colorbar(vmin: float, vmax: float, height: int, width: int, ticks: int = 5
                   ) -> np.ndarray:
    """A horizontal colour bar of :func:`colorize_depth`'s map from ``vmin`` to ``vmax`` metres,
    labelled in metres below the bar. Shape: (height, width, 3) uint8."""
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
        _put_text(out, label, int(np.clip(x - tw // 2, 0, width - tw)), min(height - 2, bar_h + 4 + th),
                  scale)
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


def colorize_error(err: Tensor, vmax: float) -> np.ndarray:
    """(H,W) non-negative error -> (H,W,3) uint8 'inferno' map scaled to [0, vmax]."""
    x = np.clip(err.detach().float().cpu().numpy() / max(vmax, 1e-9), 0, 1)
    bgr = cv2.applyColorMap((x * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)
    return bgr[..., ::-1].copy()


def _label_error(pred: Tensor, gt: Tensor) -> np.ndarray:
    p, g = pred.cpu().numpy(), gt.cpu().numpy()
    out = np.zeros((*g.shape, 3), np.uint8)
    out[(g != IGNORE_INDEX) & (p == g)] = (40, 160, 40)
    out[(g != IGNORE_INDEX) & (p != g)] = (220, 30, 30)
    return out


def _tile(img: np.ndarray, h: int, w: int) -> np.ndarray:
    if img.shape[:2] != (h, w):
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_NEAREST)
    return img


def make_panel(sources: Tensor, gt_rgb: Tensor, pred_rgb: Tensor, palette: Tensor | np.ndarray,
               pred_labels: Tensor, gt_labels: Tensor | None = None,
               pred_depth: Tensor | None = None, gt_depth: Tensor | None = None,
               target_depth: Tensor | None = None, max_sources: int = 8,
               class_names: list[str] | None = None) -> np.ndarray:
    """Compose the evaluation panel. Shapes: ``sources`` (V,3,H,W); ``gt_rgb`` (3,H,W) or
    (H,W,3); ``pred_rgb`` likewise; labels (H,W); depths (H,W) m. With ``class_names`` the
    semantic row ends in a legend of the classes shown, and the depth row in a colour bar in
    metres (the depth tiles' common scale). Returns (3H', max(5, V)W', 3) uint8."""
    H, W = pred_labels.shape
    cols = 5
    blank = np.zeros((H, W, 3), np.uint8)
    src = [_tile(to_uint8_rgb(s), H, W) for s in sources[:max_sources]]
    row1 = src + [blank] * (max(cols, len(src)) - len(src))
    ncols = len(row1)
    g_rgb, p_rgb = to_uint8_rgb(gt_rgb), to_uint8_rgb(pred_rgb)
    err = torch.from_numpy(np.abs(g_rgb.astype(np.float32) - p_rgb.astype(np.float32))
                           .mean(-1) / 255.0)
    gl = colorize_labels(gt_labels, palette) if gt_labels is not None else blank
    pl = colorize_labels(pred_labels, palette)
    row2 = [g_rgb, p_rgb, colorize_error(err, 0.25), gl, pl]
    vmin = vmax = None
    if gt_depth is not None and bool((gt_depth > 0).any()):
        vmin, vmax = float(gt_depth[gt_depth > 0].min()), float(gt_depth.max())
    gd = colorize_depth(gt_depth, vmin, vmax) if gt_depth is not None else blank
    pd = colorize_depth(pred_depth, vmin, vmax) if pred_depth is not None else blank
    td = colorize_depth(target_depth, vmin, vmax) if target_depth is not None else blank
    if gt_depth is not None and pred_depth is not None:
        de = colorize_error((pred_depth.cpu() - gt_depth.cpu()).abs() * (gt_depth.cpu() > 0), 0.5)
    else:
        de = blank
    se = _label_error(pred_labels, gt_labels) if gt_labels is not None else blank
    row3 = [gd, pd, td, de, se]
    cap2 = ["GT RGB", "rendered RGB", "RGB error", "GT semantics", "rendered semantics"]
    cap3 = ["GT depth", "rendered depth", "target depth D_T", "depth error", "semantic error"]
    if class_names is not None and ncols >= 7:
        shown = torch.unique(torch.cat([pred_labels.reshape(-1).cpu()] + (
            [gt_labels.reshape(-1).cpu()] if gt_labels is not None else []))).tolist()
        top = _caption_height(H)                  # keep the tile's caption off the content
        legend = np.zeros((H, 2 * W, 3), np.uint8)
        legend[top:] = class_legend(class_names, palette, H - top, 2 * W,
                                    ids=[int(i) for i in shown])
        row2 += [legend[:, :W], legend[:, W:]]
        cap2 += ["classes", ""]
        if vmin is not None and vmax is not None and vmax > vmin:
            bar = np.zeros((H, W, 3), np.uint8)
            bar[top:] = depth_colorbar(vmin, vmax, H - top, W)
            row3 += [bar]
            cap3 += ["depth (m)"]
    rows = []
    for r in (row1, row2, row3):
        r = [_tile(x, H, W) for x in r] + [blank] * (ncols - len(r))
        rows.append(np.concatenate(r, axis=1))
    panel = np.ascontiguousarray(np.concatenate(rows, axis=0))
    return caption_tiles(panel, H, W, [[f"source {i}" for i in range(len(src))], cap2, cap3])


def _caption_scale(tile_h: int) -> float:
    return max(0.35, tile_h / 480.0)


def _caption_height(tile_h: int, min_tile_h: int = 48) -> int:
    """Rows :func:`caption_tiles` darkens at the top of a tile (0 when it writes none)."""
    if tile_h < min_tile_h:
        return 0
    (_, th), base = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, _caption_scale(tile_h), 1)
    return th + base + 4


def caption_tiles(panel: np.ndarray, tile_h: int, tile_w: int,
                  captions: list[list[str]], min_tile_h: int = 48) -> np.ndarray:
    """Write a caption into the top-left corner of each tile of a grid panel, in place.

    ``captions[r][c]`` names tile (r, c); empty strings are skipped. Tiles smaller than
    ``min_tile_h`` pixels get no caption (text would cover them). Returns ``panel``.
    """
    if tile_h < min_tile_h:
        return panel
    scale = _caption_scale(tile_h)
    thick = 1
    for r, row in enumerate(captions):
        for c, text in enumerate(row):
            if not text:
                continue
            (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
            y0, x0 = r * tile_h, c * tile_w
            panel[y0:y0 + th + base + 4, x0:x0 + min(tw + 6, tile_w)] //= 3
            cv2.putText(panel, text, (x0 + 3, y0 + th + 2), cv2.FONT_HERSHEY_SIMPLEX, scale,
                        (255, 255, 255), thick, cv2.LINE_AA)
    return panel


def save_png(path: str | Path, rgb: np.ndarray) -> None:
    """Write an (H,W,3) uint8 RGB array as PNG (creating parent folders)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1])):
        raise OSError(f"could not write {path}")
