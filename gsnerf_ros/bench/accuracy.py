"""Accuracy of the fast configurations against the reference ones, on held-out rooms.

- ``compare_modes``: default ``depth_guided`` vs ``released`` (PSNR in dB against the ground-truth
  image, mIoU in percent against the ground-truth labels) on procedural *test-split* rooms that
  training never sees. Both modes render exactly the same rays of the same views. With a ray
  budget, a fixed even subset of each view's pixels is scored (an unbiased estimate of the
  full-image PSNR and a subsample of the confusion matrix).
- ``compare_precision``: bf16/fp16 autocast vs fp32 on the same rays (PSNR of each against the
  ground truth, the PSNR of the low-precision RGB against the fp32 RGB, label agreement, and
  the mIoU difference). GPU only: CPU autocast is not what the node runs, so it reports the
  reason instead of a number.

A randomly initialised model gives meaningless accuracy, so both return ``skipped`` unless a
trained checkpoint was loaded.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gsnerf_ros.bench.stages import ray_subset, skipped
from gsnerf_ros.data.classes import IGNORE_INDEX
from gsnerf_ros.model import GSNeRF
from gsnerf_ros.runtime.checkpoint_lookup import DEFAULT_CHECKPOINT

__all__ = ["heldout_views", "compare_modes", "compare_precision"]


def heldout_views(scenes: int, frames: int, height: int, width: int, views: int,
                  targets_per_scene: int, seed: int = 0) -> list[dict[str, Any]]:
    """Procedural test-split rooms -> evaluation items (sources chosen by the evaluation
    protocol's nearest-view rule among frames that are not the target)."""
    from gsnerf_ros.data.procedural import SynthConfig, generate_scene
    from gsnerf_ros.data.view_selection import select_sources

    items = []
    for s in range(scenes):
        sc = generate_scene(SynthConfig(frames=frames, height=height, width=width), seed + s,
                            "test")
        step = max(frames // (targets_per_scene + 1), 1)
        for j in range(targets_per_scene):
            t = min(step * (j + 1), frames - 1)
            src = select_sources(sc, t, views).tolist()
            tf = sc.frame(t)
            frs = [sc.frame(i) for i in src]
            items.append({"scene": sc.name, "target": t, "sources": src,
                          "images": torch.stack([f.image for f in frs]),
                          "K": torch.stack([f.K for f in frs]),
                          "c2w": torch.stack([f.c2w for f in frs]),
                          "near": sc.near, "far": sc.far, "target_K": tf.K,
                          "target_c2w": tf.c2w, "gt_rgb": tf.image, "gt_depth": tf.depth,
                          "gt_labels": tf.labels})
    return items


def _render(model: GSNeRF, enc: Any, item: dict[str, Any], uv: Tensor, mode: str,
            autocast: torch.dtype | None) -> dict[str, Tensor]:
    H, W = item["gt_rgb"].shape[-2:]
    dev = model.device
    ctx = (torch.autocast(device_type=dev.type, dtype=autocast) if autocast is not None
           else torch.autocast(device_type=dev.type, enabled=False))
    with torch.no_grad(), ctx:
        o = model.render_rays(enc, item["target_K"].to(dev), item["target_c2w"].to(dev), uv, H,
                              W, mode=mode, training=False)
    return {"rgb": o["rgb"].float().clamp(0, 1).cpu(),
            "labels": o["semantic_logits"].float().argmax(-1).cpu()}


def _gt_at(item: dict[str, Any], uv: Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
    u, v = uv[:, 0].long().cpu(), uv[:, 1].long().cpu()
    rgb = item["gt_rgb"][:, v, u].T
    lab = item["gt_labels"][v, u] if item["gt_labels"] is not None else None
    mask = item["gt_depth"][v, u] > 0 if item["gt_depth"] is not None else torch.ones_like(u).bool()
    return rgb, lab, mask


def _psnr(a: Tensor, b: Tensor, mask: Tensor) -> float:
    """:func:`gsnerf_ros.train.metrics.psnr` of ray colours ``a``, ``b`` [N, 3] over ``mask`` [N]."""
    from gsnerf_ros.train.metrics import psnr

    return psnr(a[:, None], b[:, None], mask[:, None])


def _miou(preds: list[Tensor], gts: list[Tensor], C: int) -> float:
    from gsnerf_ros.train.metrics import confusion_matrix, scores_from_confusion

    cm = sum(confusion_matrix(p, g, C, IGNORE_INDEX) for p, g in zip(preds, gts))
    return float(scores_from_confusion(cm)["mIoU"])


def _encode(model: GSNeRF, item: dict[str, Any]) -> Any:
    dev = model.device
    with torch.no_grad():
        return model.encode_sources(item["images"].to(dev), item["K"].to(dev),
                                    item["c2w"].to(dev), item["near"], item["far"])


def compare_modes(model: GSNeRF, items: list[dict[str, Any]], ray_budget: int | None,
                  trained: bool, modes: tuple[str, str] = ("depth_guided", "released")
                  ) -> dict[str, Any]:
    """PSNR and mIoU of two modes on the same rays of held-out views, and their differences."""
    if not trained:
        return skipped(f"no trained checkpoint loaded ({DEFAULT_CHECKPOINT} "
                       "missing or --checkpoint not given): accuracy of a random model is "
                       "meaningless; timings only")
    if not items:
        return skipped("no held-out views")
    C = model.config.num_classes
    res: dict[str, dict[str, list]] = {m: {"psnr": [], "pred": [], "gt": []} for m in modes}
    for item in items:
        enc = _encode(model, item)
        H, W = item["gt_rgb"].shape[-2:]
        uv = ray_subset(H, W, ray_budget or H * W, model.device)
        gt_rgb, gt_lab, mask = _gt_at(item, uv)
        for m in modes:
            o = _render(model, enc, item, uv, m, None)
            res[m]["psnr"].append(_psnr(o["rgb"], gt_rgb, mask))
            if gt_lab is not None:
                res[m]["pred"].append(o["labels"])
                res[m]["gt"].append(gt_lab)
    out: dict[str, Any] = {"views": len(items), "rays_per_view": ray_budget,
                           "scenes": sorted({i["scene"] for i in items})}
    for m in modes:
        ps = [p for p in res[m]["psnr"] if p == p]
        out[m] = {"psnr": sum(ps) / len(ps) if ps else None,
                  "mIoU": _miou(res[m]["pred"], res[m]["gt"], C) if res[m]["gt"] else None}
    a, b = out[modes[0]], out[modes[1]]
    out["psnr_diff_db"] = (a["psnr"] - b["psnr"]) if None not in (a["psnr"], b["psnr"]) else None
    out["miou_diff_points"] = (a["mIoU"] - b["mIoU"]) if None not in (a["mIoU"], b["mIoU"]) else None
    return out


def compare_precision(model: GSNeRF, items: list[dict[str, Any]], ray_budget: int | None,
                      trained: bool, dtype: str = "bf16", allow_cpu: bool = False
                      ) -> dict[str, Any]:
    """Autocast ``dtype`` vs fp32 on the same rays (default mode). On the CPU only with
    ``allow_cpu``: CPU autocast rounds the same network to bf16, but its list of low-precision
    ops is not CUDA's, so the result is a proxy for the GPU number, labelled as such."""
    if model.device.type != "cuda" and not allow_cpu:
        return skipped(f"{dtype} autocast accuracy is measured on GPU only (device is "
                       f"{model.device.type}; CPU autocast is not the deployment path; "
                       "--lowp-accuracy-on-cpu measures it there as a proxy)")
    if not items:
        return skipped("no held-out views")
    lowp = torch.bfloat16 if dtype == "bf16" else torch.float16
    C = model.config.num_classes
    ps32, psl, pair, agree = [], [], [], []
    pred32, predl, gts = [], [], []
    for item in items:
        enc = _encode(model, item)
        H, W = item["gt_rgb"].shape[-2:]
        uv = ray_subset(H, W, ray_budget or H * W, model.device)
        gt_rgb, gt_lab, mask = _gt_at(item, uv)
        a = _render(model, enc, item, uv, "depth_guided", None)
        b = _render(model, enc, item, uv, "depth_guided", lowp)
        ps32.append(_psnr(a["rgb"], gt_rgb, mask))
        psl.append(_psnr(b["rgb"], gt_rgb, mask))
        pair.append(_psnr(b["rgb"], a["rgb"], torch.ones_like(mask)))
        agree.append(float((a["labels"] == b["labels"]).float().mean()) * 100)
        if gt_lab is not None:
            pred32.append(a["labels"])
            predl.append(b["labels"])
            gts.append(gt_lab)
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    out: dict[str, Any] = {"dtype": dtype, "views": len(items), "trained": trained,
                           "device": model.device.type,
                           "autocast": ("CUDA autocast" if model.device.type == "cuda" else
                                        f"{model.device.type} autocast (proxy: another op list)"),
                           "psnr_fp32": mean(ps32), f"psnr_{dtype}": mean(psl),
                           "psnr_diff_db": mean(psl) - mean(ps32),
                           f"psnr_{dtype}_vs_fp32": mean(pair),
                           "label_agreement_pct": mean(agree)}
    if gts and trained:
        m32, ml = _miou(pred32, gts, C), _miou(predl, gts, C)
        out.update({"mIoU_fp32": m32, f"mIoU_{dtype}": ml, "miou_diff_points": ml - m32})
    return out
