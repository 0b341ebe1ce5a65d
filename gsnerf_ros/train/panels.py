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
from gsnerf_ros.imaging import class_legend, colorize_depth, colorize_labels, depth_colorbar

__all__ = ["to_uint8_rgb", "colorize_error", "make_panel", "caption_tiles", "save_png"]


def to_uint8_rgb(img: Tensor) -> np.ndarray:
    """(3,H,W) or (H,W,3) float in [0,1] -> (H,W,3) uint8."""
    t = img.detach().float().cpu()
    if t.ndim == 3 and t.shape[0] == 3 and t.shape[-1] != 3:
        t = t.permute(1, 2, 0)
    return (t.clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)


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
