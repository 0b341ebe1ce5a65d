"""Evaluation metrics: semantic (mIoU, accuracies), colour (PSNR, SSIM, LPIPS) and depth.

Semantic metrics follow the paper's protocol (per image, then averaged over images; classes
absent from an image's ground truth are left out of that image's mean) and are also reported
from one confusion matrix accumulated over the whole set. All semantic numbers are percent.

Deliberate differences from the released code (docs/METHOD.md):
- a predicted class outside ``[0, C)`` is counted as a miss for the true class (the released
  code silently drops such pixels);
- an image whose ground truth holds no labelled pixel is skipped instead of scored 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gsnerf_ros.data.classes import IGNORE_INDEX

PSNR_CAP_DB = 100.0  # PSNR of an exact reconstruction (MSE = 0) is reported as this cap

__all__ = [
    "IGNORE_INDEX", "PSNR_CAP_DB", "confusion_matrix", "per_class_iou", "scores_from_confusion",
    "psnr",
    "ssim", "depth_errors", "SemanticAccumulator", "LpipsMetric",
]


def confusion_matrix(pred: Tensor, gt: Tensor, num_classes: int,
                     ignore_index: int = IGNORE_INDEX) -> Tensor:
    """Confusion counts, rows = ground truth, columns = prediction.

    Shape: ``pred``, ``gt`` (...) int -> (C, C + 1) int64. Pixels with ``gt == ignore_index`` are
    skipped; a prediction outside ``[0, C)`` lands in the extra last column ("no valid class"),
    which counts as a miss (false negative) but as nobody's false positive.
    """
    if pred.shape != gt.shape:
        raise ValueError(f"confusion_matrix: pred {tuple(pred.shape)} != gt {tuple(gt.shape)}")
    pred = pred.reshape(-1).long().cpu()
    gt = gt.reshape(-1).long().cpu()
    keep = gt != ignore_index
    pred, gt = pred[keep], gt[keep]
    if bool(((gt < 0) | (gt >= num_classes)).any()):
        raise ValueError(f"confusion_matrix: ground-truth labels outside [0, {num_classes}) "
                         f"that are not ignore_index={ignore_index}")
    pred = torch.where((pred < 0) | (pred >= num_classes), torch.full_like(pred, num_classes),
                       pred)
    idx = gt * (num_classes + 1) + pred
    return torch.bincount(idx, minlength=num_classes * (num_classes + 1)).reshape(
        num_classes, num_classes + 1)


def per_class_iou(cm: Tensor) -> list[float]:
    """IoU of every class (percent) from a (C, C+1) confusion matrix: TP / (GT + predicted -
    TP). NaN for a class absent from both the ground truth and the prediction (0 / 0: no
    number exists); a class predicted but absent from the ground truth scores 0."""
    cm = cm.double()
    C = cm.shape[0]
    tp = torch.diagonal(cm[:, :C])
    union = cm.sum(1) + cm[:, :C].sum(0) - tp
    return [float(tp[c] / union[c]) * 100 if union[c] > 0 else float("nan") for c in range(C)]


def scores_from_confusion(cm: Tensor) -> dict[str, float]:
    """mIoU, total accuracy and class-average accuracy (percent) from a (C, C+1) matrix.

    Means are over the classes present in the ground truth (row sum > 0). Returns NaN for all
    three when the matrix is empty. Also returns ``per_class_iou`` (:func:`per_class_iou`: NaN
    for a class absent from both the ground truth and the prediction; a class only predicted
    scores 0 there but is not in the mean).
    """
    cm = cm.double()
    C = cm.shape[0]
    tp = torch.diagonal(cm[:, :C])
    gt_count = cm.sum(1)
    pred_count = cm[:, :C].sum(0)
    present = gt_count > 0
    total = float(gt_count.sum())
    if total == 0:
        nan = float("nan")
        return {"mIoU": nan, "acc": nan, "class_acc": nan, "per_class_iou": [nan] * C}
    iou = tp / (gt_count + pred_count - tp).clamp(min=1)
    recall = tp / gt_count.clamp(min=1)
    return {
        "mIoU": float(iou[present].mean()) * 100,
        "acc": float(tp.sum()) / total * 100,
        "class_acc": float(recall[present].mean()) * 100,
        "per_class_iou": per_class_iou(cm),
    }


def _hwc(img: Tensor) -> Tensor:
    """(3,H,W) or (H,W,3) -> (H,W,3) float64 on CPU."""
    if img.ndim != 3:
        raise ValueError(f"expected an image (3,H,W) or (H,W,3), got {tuple(img.shape)}")
    if img.shape[0] == 3 and img.shape[-1] != 3:
        img = img.permute(1, 2, 0)
    return img.detach().double().cpu()


def psnr(pred: Tensor, gt: Tensor, mask: Tensor | None = None,
         cap: float = PSNR_CAP_DB) -> float:
    """PSNR in dB over masked pixels (all channels), data range 1, capped at ``cap``.

    Shape: ``pred``, ``gt`` (3, H, W) or (H, W, 3) in [0, 1] (pred is clamped); ``mask`` (H, W).
    NaN if the mask is empty.
    """
    p, g = _hwc(pred).clamp(0, 1), _hwc(gt)
    if mask is not None:
        m = mask.detach().cpu().bool()
        if not bool(m.any()):
            return float("nan")
        p, g = p[m], g[m]
    mse = float(((p - g) ** 2).mean())
    if mse <= 10 ** (-cap / 10):
        return cap
    return -10.0 * math.log10(mse)


def ssim(pred: Tensor, gt: Tensor, mask: Tensor | None = None) -> float:
    """SSIM (skimage, 7x7 uniform window, data range 1) with masked-out pixels set to 0 in both.

    Shape: ``pred``, ``gt`` (3, H, W) or (H, W, 3) in [0, 1]; ``mask`` (H, W). This is the
    paper's protocol; images smaller than 7 px use the largest odd window that fits.
    """
    from skimage.metrics import structural_similarity

    p, g = _hwc(pred).clamp(0, 1).numpy(), _hwc(gt).numpy()
    if mask is not None:
        m = mask.detach().cpu().bool().numpy()
        p = p * m[..., None]
        g = g * m[..., None]
    win = min(7, min(p.shape[:2]))
    win = win if win % 2 == 1 else win - 1
    return float(structural_similarity(p, g, data_range=1.0, channel_axis=-1, win_size=win))


def depth_errors(pred: Tensor, gt: Tensor) -> dict[str, float]:
    """Absolute relative error and RMSE (m) over pixels with GT depth > 0.

    Shape: ``pred``, ``gt`` (H, W) m. Also returns ``n`` (valid pixels), ``abs_rel_sum`` and
    ``sq_sum`` for accumulation over a data set; NaN metrics when no pixel is valid.
    """
    p = pred.detach().double().cpu().reshape(-1)
    g = gt.detach().double().cpu().reshape(-1)
    v = g > 0
    n = int(v.sum())
    if n == 0:
        return {"abs_rel": float("nan"), "rmse": float("nan"), "n": 0, "abs_rel_sum": 0.0,
                "sq_sum": 0.0}
    ar = float(((p[v] - g[v]).abs() / g[v]).sum())
    sq = float(((p[v] - g[v]) ** 2).sum())
    return {"abs_rel": ar / n, "rmse": math.sqrt(sq / n), "n": n, "abs_rel_sum": ar,
            "sq_sum": sq}


@dataclass
class SemanticAccumulator:
    """Per-image and accumulated semantic scores over a set of images."""

    num_classes: int
    ignore_index: int = IGNORE_INDEX
    per_image: list[dict[str, float]] = field(default_factory=list)
    cm: Tensor | None = None

    def update(self, pred: Tensor, gt: Tensor) -> dict[str, float] | None:
        """Add one image. Shape: ``pred``, ``gt`` (H, W). Returns its scores (None if unlabelled)."""
        cm = confusion_matrix(pred, gt, self.num_classes, self.ignore_index)
        self.cm = cm if self.cm is None else self.cm + cm
        if int(cm.sum()) == 0:
            return None
        s = scores_from_confusion(cm)
        s.pop("per_class_iou")
        self.per_image.append(s)
        return s

    def summary(self) -> dict[str, Any]:
        """Per-image-averaged ``mIoU``/``acc``/``class_acc`` and ``*_accumulated`` variants."""
        out: dict[str, Any] = {}
        for k in ("mIoU", "acc", "class_acc"):
            vals = [s[k] for s in self.per_image]
            out[k] = float(np.mean(vals)) if vals else float("nan")
        if self.cm is not None:
            acc = scores_from_confusion(self.cm)
            out["mIoU_accumulated"] = acc["mIoU"]
            out["acc_accumulated"] = acc["acc"]
            out["class_acc_accumulated"] = acc["class_acc"]
            out["per_class_iou_accumulated"] = acc["per_class_iou"]
        return out


class LpipsMetric:
    """LPIPS (VGG) if the ``lpips`` package and its weights are available locally, else off.

    ``available`` tells whether it runs; ``reason`` says why not. Nothing is downloaded:
    torchvision's VGG backbone must already sit in the torch hub cache.
    """

    def __init__(self, device: torch.device | str = "cpu", net: str = "vgg") -> None:
        self.model: Any = None
        self.reason: str | None = None
        try:
            import lpips  # type: ignore[import-not-found]
        except ImportError:
            self.reason = "the 'lpips' package is not installed"
            return
        hub = Path(torch.hub.get_dir()) / "checkpoints"
        backbone = {"vgg": "vgg16-397923af.pth", "alex": "alexnet-owt-7be5be79.pth"}[net]
        lin = Path(lpips.__file__).parent / "weights" / "v0.1" / f"{net}.pth"
        if not (hub / backbone).exists():
            self.reason = f"backbone weights {hub / backbone} are not present locally"
            return
        if not lin.exists():
            self.reason = f"LPIPS linear weights {lin} are not present locally"
            return
        self.model = lpips.LPIPS(net=net, verbose=False).to(device).eval()
        self.device = device

    @property
    def available(self) -> bool:
        return self.model is not None

    @torch.no_grad()
    def __call__(self, pred: Tensor, gt: Tensor, mask: Tensor | None = None) -> float | None:
        """LPIPS of masked images (masked pixels 0 in both), or None when unavailable."""
        if self.model is None:
            return None
        p = _hwc(pred).clamp(0, 1).float()
        g = _hwc(gt).float()
        if mask is not None:
            m = mask.detach().cpu().bool()[..., None]
            p, g = p * m, g * m
        p = p.permute(2, 0, 1)[None].to(self.device) * 2 - 1
        g = g.permute(2, 0, 1)[None].to(self.device) * 2 - 1
        return float(self.model(p, g).mean())
