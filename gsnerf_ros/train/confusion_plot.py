"""Confusion-matrix picture of an evaluation (matplotlib, headless, no pyplot state).

One panel per method (e.g. the model and the reprojection baseline) side by side, sharing one
colour scale: rows are the ground-truth classes, columns the predicted classes plus ``(none)``
(pixels given no valid class, e.g. where no source view sees a baseline pixel); each row is
normalised to percent of that class's ground-truth pixels. Rows of classes absent from the
ground truth are grey.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["DPI", "confusion_png_size", "row_normalised", "save_confusion_png"]

DPI = 100
_CELL_IN = 0.3
"""Inches per matrix cell."""
_LABEL_IN = 2.0
"""Inches for the class names and the title around one panel."""
_COLORBAR_IN = 1.0


def _half_inches(x: float) -> float:
    return math.ceil(x * 2) / 2


def _panel_inches(num_classes: int) -> tuple[float, float]:
    return (_half_inches((num_classes + 1) * _CELL_IN + _LABEL_IN),
            _half_inches(num_classes * _CELL_IN + _LABEL_IN))


def confusion_png_size(num_classes: int, panels: int) -> tuple[int, int]:
    """(width, height) in pixels of :func:`save_confusion_png`'s picture."""
    w, h = _panel_inches(num_classes)
    return int(round((panels * w + _COLORBAR_IN) * DPI)), int(round(h * DPI))


def row_normalised(counts: np.ndarray) -> np.ndarray:
    """(C, C+1) counts -> percent of each row's sum; rows summing to 0 are NaN."""
    counts = np.asarray(counts, dtype=np.float64)
    rows = counts.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(rows > 0, counts / rows * 100.0, np.nan)


def save_confusion_png(path: str | Path, panels: Sequence[tuple[str, np.ndarray]],
                       class_names: Sequence[str]) -> Path:
    """Write the row-normalised confusion matrices ``panels`` = [(title, counts (C, C+1)), ...]
    to ``path`` (PNG of :func:`confusion_png_size`). Returns the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    C = len(class_names)
    if not panels:
        raise ValueError("save_confusion_png needs at least one matrix")
    for title, counts in panels:
        if np.shape(counts) != (C, C + 1):
            raise ValueError(f"confusion matrix {title!r} must be (C, C+1) = ({C}, {C + 1}), got "
                             f"{np.shape(counts)}")
    w, h = confusion_png_size(C, len(panels))
    fig = Figure(figsize=(w / DPI, h / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    cols = [*class_names, "(none)"]
    cmap = _colormap()
    image = None
    for ax, (title, counts) in zip(axes, panels):
        pct = row_normalised(counts)
        image = ax.imshow(np.ma.masked_invalid(pct), cmap=cmap, vmin=0.0, vmax=100.0,
                          interpolation="nearest", aspect="equal")
        ax.set_title(title, fontsize=9)
        ax.set_xticks(range(C + 1), cols, rotation=90, fontsize=7)
        ax.set_yticks(range(C), list(class_names), fontsize=7)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_ylabel("ground truth", fontsize=8)
        for r, c in zip(*np.nonzero(np.nan_to_num(pct) >= 1.0)):
            v = pct[r, c]
            ax.text(c, r, f"{v:.0f}", ha="center", va="center", fontsize=5,
                    color="white" if v > 60 else "black")
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="% of the row's pixels")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path


def _colormap():  # type: ignore[no-untyped-def]
    from matplotlib import colormaps

    return colormaps["Blues"].with_extremes(bad="#bbbbbb")
