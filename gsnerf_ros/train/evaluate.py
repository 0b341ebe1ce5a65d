"""Evaluation of a GSNeRF model on held-out scenes (``gsnerf-eval``), with the baseline.

For each target view (chosen by the data package's evaluation protocol) the model encodes the
K nearest source frames, renders the target at full resolution, and the result is scored:
semantics (per-image-averaged as in the paper and from one accumulated confusion matrix),
colour on valid-depth pixels (PSNR, SSIM, LPIPS or null), depth (abs-rel, RMSE) of the rendered
depth and of the target-depth estimate D_T. The reprojection baseline
(:mod:`gsnerf_ros.train.baseline`) is scored on the same views from the same source depths,
2D labels and D_T. Writes the evaluation JSON, a Markdown summary and PNG panels.
"""

from __future__ import annotations

import math
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from gsnerf_ros.model.label_vote import SEMANTIC_SOURCES
from gsnerf_ros.model.pyramid import level_to_full
from gsnerf_ros.train.baseline import reproject_to_target
from gsnerf_ros.train.metrics import (LpipsMetric, SemanticAccumulator, depth_errors,
                                      per_class_iou, psnr, ssim)
from gsnerf_ros.train.eval_report import write_confusion_png, write_json, write_markdown
from gsnerf_ros.train.panels import make_panel, save_png

__all__ = ["SEMANTIC_SOURCES", "EvalView", "EvalOptions", "ScoreGroup", "evaluate",
           "render_eval_view", "write_markdown", "write_json", "write_confusion_png"]


@dataclass
class EvalView:
    """One evaluation item: a target frame and its source frames, all tensors at eval size."""

    scene: str
    target_index: int
    source_indices: list[int]
    images: Tensor        # (V+1, 3, H, W), target last
    K: Tensor             # (V+1, 3, 3)
    c2w: Tensor           # (V+1, 4, 4)
    depths: Tensor | None  # (V+1, H, W) m or None
    labels: Tensor | None  # (V+1, H, W) int64 or None
    near: float
    far: float
    source_label_maps: dict[str, list[Tensor]] | None = None
    """2D segmenters' labels of the V sources by segmenter name ([h, w] int64 each at its own
    size, -1 unknown, in the ids of ``labels``), for ``EvalOptions.semantic_source ==
    "labels"``: the first is the one the results are of, the others are scored beside it
    (``label_sources``), from the same renders."""


@dataclass
class EvalOptions:
    """What to render and what to write."""

    sampling: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments for ``model.render`` (e.g. ``mode``, ``num_samples``)."""
    baseline: bool = True
    panels_dir: str | None = None
    panels_per_scene: int = 2
    lpips: bool = True
    progress: bool = True
    semantics: str = "renderer"
    """Where the predicted classes come from (ablation of paper Table A3): ``renderer`` (the
    model's semantic output), ``2d_on_rendered`` (the model's own 2D segmenter run on the
    rendered RGB), or ``separate`` (a second render with ``semantic_sampling``)."""
    semantic_sampling: dict[str, Any] = field(default_factory=dict)
    """``render`` keyword arguments of the second render when ``semantics == "separate"``,
    e.g. ``{"mode": "uniform", "semantic_mode": "volume"}``."""
    sensor_depth: bool = False
    """Give the model the sources' ground-truth depth as if from an RGB-D camera
    (:func:`gsnerf_ros.model.encoding.with_sensor_depth`): D_T and occlusion use it. Never the
    target's depth."""
    sensor_holes: float = 0.0
    """With ``sensor_depth``: this share of each source's measured depth dropped in blobs, as
    a depth camera's holes (:func:`gsnerf_ros.data.sensor_holes.depth_holes`; seeded by the
    scene, target and source, so every run drops the same pixels); the model's estimate
    stands in there."""
    sensor_noise: float = 0.0
    """With ``sensor_depth``: relative Gaussian noise on each source's measured depth
    (:func:`gsnerf_ros.data.sensor_holes.depth_noise`; seeded like ``sensor_holes``)."""
    floor_z: float | None = None
    """Height (m) of the floor plane in the data's z-up world frame: the sources' depths, D_T
    and the rendered depth are bounded by it (:func:`gsnerf_ros.model.encoding.with_floor`), so
    the baseline, which reprojects with the same depths, gets the same bound. None: off."""
    semantic_source: str = "model"
    """``model``: the classes of ``semantics``; ``labels``: the vote of the sources' segmenter
    labels (``EvalView.source_label_maps``) at the surface point
    (:func:`gsnerf_ros.model.label_vote.vote_labels`); the segmenter itself is scored on the
    source views (``segmenter`` in the results)."""
    label_angle_sigma: float = 0.0
    """View weight of the label vote (degrees; 0 = off), see ``vote_labels``."""
    label_depth_search: float = 0.0
    """Relative range of the label vote's depth hypotheses around D_T (0 = D_T alone)."""


class ScoreGroup:
    """Accumulates one group of images (a scene, or everything) for one method."""

    def __init__(self, num_classes: int) -> None:
        self.sem = SemanticAccumulator(num_classes)
        self.psnr: list[float] = []
        self.ssim: list[float] = []
        self.lpips: list[float] = []
        self.depth: list[dict[str, float]] = []
        self.target_depth: list[dict[str, float]] = []
        self.n = 0

    def add(self, rec: dict[str, Any], pred_labels: Tensor, gt_labels: Tensor | None) -> None:
        self.n += 1
        if gt_labels is not None:
            self.sem.update(pred_labels, gt_labels)
        for k in ("psnr", "ssim", "lpips"):
            v = rec.get(k)
            if v is not None and not math.isnan(v):
                getattr(self, k).append(v)
        if "depth" in rec:
            self.depth.append(rec["depth"])
        if "target_depth" in rec:
            self.target_depth.append(rec["target_depth"])

    @staticmethod
    def _depth_summary(items: list[dict[str, float]]) -> tuple[float | None, float | None]:
        n = sum(d["n"] for d in items)
        if n == 0:
            return None, None
        return (sum(d["abs_rel_sum"] for d in items) / n,
                math.sqrt(sum(d["sq_sum"] for d in items) / n))

    def summary(self, class_names: list[str] | None = None) -> dict[str, Any]:
        """Averages of the group; with ``class_names``, also the per-class results of the
        accumulated confusion matrix (:meth:`per_class`)."""
        s = self.sem.summary()
        out: dict[str, Any] = {k: _num(s.get(k)) for k in ("mIoU", "acc", "class_acc")}
        out["psnr"] = _num(np.mean(self.psnr)) if self.psnr else None
        out["ssim"] = _num(np.mean(self.ssim)) if self.ssim else None
        out["lpips"] = _num(np.mean(self.lpips)) if self.lpips else None
        out["depth_abs_rel"], out["depth_rmse"] = self._depth_summary(self.depth)
        if self.target_depth:
            out["target_depth_abs_rel"], out["target_depth_rmse"] = self._depth_summary(
                self.target_depth)
        out["n_images"] = self.n
        for k in ("mIoU_accumulated", "acc_accumulated", "class_acc_accumulated"):
            if k in s:
                out[k] = _num(s[k])
        if class_names is not None:
            out.update(self.per_class(class_names))
        return out

    def per_class(self, class_names: list[str]) -> dict[str, Any]:
        """``per_class_iou`` {class: IoU % over all the group's pixels, or None where the class
        is in neither the ground truth nor the prediction}, ``class_pixels`` {class: {"gt",
        "pred"}} and ``confusion_matrix`` (C, C+1) counts (rows: ground truth; columns:
        prediction, the last one "no valid class"). Empty without ground-truth labels."""
        cm = self.sem.cm
        if cm is None:
            return {}
        if len(class_names) != cm.shape[0]:
            raise ValueError(f"{len(class_names)} class names for a {cm.shape[0]}-class matrix")
        C = cm.shape[0]
        iou = per_class_iou(cm)
        gt, pred = cm.sum(1).tolist(), cm[:, :C].sum(0).tolist()
        return {"per_class_iou": {n: _num(v) for n, v in zip(class_names, iou)},
                "class_pixels": {n: {"gt": int(g), "pred": int(p)}
                                 for n, g, p in zip(class_names, gt, pred)},
                "confusion_matrix": cm.tolist()}


def _num(v: Any) -> float | None:
    if v is None:
        return None
    v = float(v)
    return None if math.isnan(v) else v


def _sensor_depth(view: EvalView, holes: float, noise: float = 0.0) -> Tensor:
    """The sources' measured depth [V, H, W] m of ``view``, with ``holes`` of each map dropped
    and relative ``noise`` added (:attr:`EvalOptions.sensor_holes`, ``sensor_noise``)."""
    V = view.images.shape[0] - 1
    depth = view.depths[:V]
    if holes <= 0 and noise <= 0:
        return depth
    from gsnerf_ros.data.sensor_holes import depth_holes, depth_noise

    out = []
    for i, src in enumerate(view.source_indices[:V]):
        rng = np.random.default_rng(zlib.crc32(f"{view.scene}:{view.target_index}:{src}".encode()))
        out.append(depth_noise(depth_holes(depth[i], holes, rng), noise, rng))
    return torch.stack(out)


@torch.no_grad()
def render_eval_view(model: Any, view: EvalView, options: EvalOptions,
                     device: torch.device | str = "cpu") -> tuple[Any, Any]:
    """gsnerf-eval's render of one view: the V sources encoded together (each one's cost-volume
    neighbours among them; with ``options.sensor_depth`` their measured depth, with
    ``options.floor_z`` the floor bound), the target (last) rendered at the view's size with
    ``options.sampling``. Returns the encoding the render used and the ``RenderResult``
    (``depth`` [H, W] m, ...)."""
    V = view.images.shape[0] - 1
    H, W = view.images.shape[-2:]
    imgs = view.images.to(device)
    K = view.K.to(device)
    c2w = view.c2w.to(device)
    enc = model.encode_sources(imgs[:V], K[:V], c2w[:V], view.near, view.far)
    if options.sensor_depth:
        if view.depths is None:
            raise ValueError(f"sensor_depth needs depth maps; scene {view.scene} has none")
        enc = enc.with_sensor_depth(_sensor_depth(view, options.sensor_holes,
                                                  options.sensor_noise).to(device))
    if options.floor_z is not None:
        enc = enc.with_floor(options.floor_z)
    sampling = dict(options.sampling)
    if options.sensor_depth:                 # measured D_T: samples at the sensor's spread
        sampling.setdefault("guided_sigma", model.config.sampling.sensor_sigma)
    # the labels source votes the segmenters' labels: the model's semantics are not run
    res = model.render(enc, K[V], c2w[V], H, W, floor_z=options.floor_z,
                       semantics=options.semantic_source == "model", **sampling)
    return enc, res


@torch.no_grad()
def evaluate(model: Any, views: Iterable[EvalView], options: EvalOptions | None = None,
             device: torch.device | str = "cpu", total: int | None = None) -> dict[str, Any]:
    """Render and score every view. Returns ``mIoU``, ``acc``, ``class_acc`` (percent),
    ``psnr``, ``ssim``, ``lpips`` (None without its weights), ``depth_abs_rel``, ``depth_rmse``,
    ``n_images``, ``per_scene`` (+ ``baseline``, ``accumulated`` metrics, ``class_names``,
    ``segmenter_on_target`` (the model's 2D segmenter on the ground-truth target image, the
    semantics' reference, :meth:`GSNeRF.segment_2d`) and,
    for the model and the baseline over all images, ``per_class_iou`` / ``class_pixels`` /
    ``confusion_matrix``, ``lpips_reason``, ``seconds_per_view``)."""
    options = options or EvalOptions()
    C = model.config.num_classes
    lp = LpipsMetric(device) if options.lpips else None
    if options.semantic_source not in SEMANTIC_SOURCES:
        raise ValueError(f"EvalOptions.semantic_source must be one of {SEMANTIC_SOURCES}, got "
                         f"{options.semantic_source!r}")
    groups: dict[str, dict[str, ScoreGroup]] = {"model": {}, "baseline": {}}
    overall = {"model": ScoreGroup(C), "baseline": ScoreGroup(C)}
    scored_sources: set[tuple[str, str, int]] = set()
    label_names: list[str] = []
    panels_written: dict[str, int] = {}
    t_render = 0.0
    n_views = 0
    was_training = getattr(model, "training", False)
    model.eval()
    for view in tqdm(views, total=total, desc="eval", disable=not options.progress):
        V = view.images.shape[0] - 1
        H, W = view.images.shape[-2:]
        t0 = time.perf_counter()
        enc, res = render_eval_view(model, view, options, device)
        imgs = view.images.to(device)
        K = view.K.to(device)
        c2w = view.c2w.to(device)
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize()
        t_render += time.perf_counter() - t0
        n_views += 1
        gt_rgb = view.images[V]
        gt_depth = view.depths[V] if view.depths is not None else None
        gt_labels = view.labels[V] if view.labels is not None else None
        mask = (gt_depth > 0) if gt_depth is not None else None
        rgb = res.rgb.float().cpu()
        rec: dict[str, Any] = {"psnr": psnr(rgb, gt_rgb, mask), "ssim": ssim(rgb, gt_rgb, mask)}
        if lp is not None and lp.available:
            rec["lpips"] = lp(rgb, gt_rgb, mask)
        if gt_depth is not None:
            rec["depth"] = depth_errors(res.depth.float().cpu(), gt_depth)
            rec["target_depth"] = depth_errors(res.target_depth.float().cpu(), gt_depth)
        if options.semantic_source == "labels":
            if view.source_label_maps is None:
                raise ValueError(f"semantic_source 'labels' needs the sources' segmenter "
                                 f"labels; scene {view.scene} has none (gsnerf-eval "
                                 "--labels-from DIR)")
            for i, name in enumerate(view.source_label_maps):
                if name not in label_names:
                    label_names.append(name)
                pred = _label_vote(model, enc, res, view, options, name)
                if i == 0:
                    pred_labels = pred
                for key, lab in ((f"vote:{name}", pred), (f"segmenter:{name}", None)):
                    overall.setdefault(key, ScoreGroup(C))
                    groups.setdefault(key, {}).setdefault(view.scene, ScoreGroup(C))
                groups[f"vote:{name}"][view.scene].add({}, pred, gt_labels)
                overall[f"vote:{name}"].add({}, pred, gt_labels)
                _score_segmenter(view, name, overall[f"segmenter:{name}"],
                                 groups[f"segmenter:{name}"][view.scene], scored_sources)
        else:
            pred_labels = _labels_for(model, enc, res, view, options).cpu()
            if gt_labels is not None:       # what the 2D eye sees on the true target image
                seg = model.segment_2d(imgs[V:V + 1])[0].cpu()
                for g in (overall.setdefault("target_2d", ScoreGroup(C)),
                          groups.setdefault("target_2d", {}).setdefault(view.scene, ScoreGroup(C))):
                    g.add({}, seg, gt_labels)
        for g in (overall["model"], groups["model"].setdefault(view.scene, ScoreGroup(C))):
            g.add(rec, pred_labels, gt_labels)

        base = None
        if options.baseline:
            # The Geo-Reasoner's maps (each at its own level of the image) at full
            # resolution, each pixel from the level pixel centred nearest to it (the network's
            # grid).
            src_depth = level_to_full(enc.depth.float(), enc.depth_map_level, H, W)
            src_lab = level_to_full(enc.semantic_logits_2d.argmax(1), enc.semantic_level, H, W)
            base = reproject_to_target(imgs[:V], src_lab, src_depth, K[:V], c2w[:V], K[V],
                                       c2w[V], res.target_depth.float(), C)
            brgb = base.rgb.cpu()
            brec: dict[str, Any] = {"psnr": psnr(brgb, gt_rgb, mask),
                                    "ssim": ssim(brgb, gt_rgb, mask)}
            if lp is not None and lp.available:
                brec["lpips"] = lp(brgb, gt_rgb, mask)
            if gt_depth is not None:
                brec["depth"] = depth_errors(res.target_depth.float().cpu(), gt_depth)
            for g in (overall["baseline"], groups["baseline"].setdefault(view.scene, ScoreGroup(C))):
                g.add(brec, base.labels.cpu(), gt_labels)

        if options.panels_dir and panels_written.get(view.scene, 0) < options.panels_per_scene:
            panels_written[view.scene] = panels_written.get(view.scene, 0) + 1
            panel = make_panel(view.images[:V], gt_rgb, rgb, model.palette, pred_labels,
                               gt_labels, res.depth.float().cpu(), gt_depth,
                               res.target_depth.float().cpu(), class_names=model.class_names)
            save_png(Path(options.panels_dir) / f"{view.scene}_{view.target_index:05d}.png",
                     panel)
            if base is not None:
                bpanel = make_panel(view.images[:V], gt_rgb, base.rgb.cpu(), model.palette,
                                    base.labels.cpu(), gt_labels, res.target_depth.float().cpu(),
                                    gt_depth, res.target_depth.float().cpu(),
                                    class_names=model.class_names)
                save_png(Path(options.panels_dir) /
                         f"{view.scene}_{view.target_index:05d}_baseline.png", bpanel)
    if was_training:
        model.train()
    names = list(model.class_names)
    out = overall["model"].summary(names)
    out["class_names"] = names
    out["per_scene"] = {k: g.summary() for k, g in groups["model"].items()}
    if options.baseline:
        out["baseline"] = overall["baseline"].summary(names)
        out["baseline"]["per_scene"] = {k: g.summary() for k, g in groups["baseline"].items()}
    if "target_2d" in overall:
        sem_keys = ("mIoU", "acc", "class_acc", "mIoU_accumulated", "n_images")
        seg = overall["target_2d"].summary(names)
        out["segmenter_on_target"] = {
            **{k: seg.get(k) for k in (*sem_keys, "per_class_iou")},
            "per_scene": {k: {m: g.summary().get(m) for m in sem_keys}
                          for k, g in groups["target_2d"].items()}}
    if options.semantic_source == "labels" and label_names:
        sem_keys = ("mIoU", "acc", "class_acc", "mIoU_accumulated", "n_images")
        out["label_sources"] = {}
        for name in label_names:
            seg = overall[f"segmenter:{name}"].summary(names)
            seg["per_scene"] = {k: g.summary() for k, g in groups[f"segmenter:{name}"].items()}
            vote = overall[f"vote:{name}"].summary()
            out["label_sources"][name] = {
                **{k: vote.get(k) for k in sem_keys},
                "per_scene": {k: {m: g.summary().get(m) for m in sem_keys}
                              for k, g in groups[f"vote:{name}"].items()},
                "segmenter": {k: seg.get(k) for k in (*sem_keys, "per_scene")}}
        out["segmenter"] = overall[f"segmenter:{label_names[0]}"].summary(names)
        out["segmenter"]["per_scene"] = out["label_sources"][label_names[0]]["segmenter"][
            "per_scene"]
    out["semantic_source"] = options.semantic_source
    out["lpips_reason"] = None if (lp is not None and lp.available) else (
        lp.reason if lp is not None else "disabled by --no-lpips")
    out["seconds_per_view"] = t_render / max(n_views, 1)
    out["sampling"] = dict(options.sampling)
    return out


def _label_vote(model: Any, enc: Any, res: Any, view: EvalView, options: EvalOptions,
                name: str) -> Tensor:
    """Segmenter ``name``'s labels of the sources voted at the surface point D_T [H, W] (-1: no
    vote); ``enc`` is the render's (floor-bounded with ``floor_z``), so is the occlusion
    test."""
    from gsnerf_ros.model.label_vote import vote_labels

    assert view.source_label_maps is not None
    V = view.images.shape[0] - 1
    dev = enc.image.device
    vote = vote_labels(enc, view.source_label_maps[name], None, view.K[V].to(dev),
                       view.c2w[V].to(dev), res.target_depth, res.target_depth_valid,
                       model.config.renderer, model.cost_volume.spacing,
                       angle_sigma_deg=options.label_angle_sigma,
                       depth_search=options.label_depth_search)
    return vote.labels.cpu()


def _score_segmenter(view: EvalView, name: str, overall: "ScoreGroup", scene: "ScoreGroup",
                     done: set[tuple[str, str, int]]) -> None:
    """Score segmenter ``name``'s labels of each source view (once per frame) against its
    ground truth: what the segmenter scores on the views the camera did see."""
    if view.labels is None or view.source_label_maps is None:
        return
    H, W = view.labels.shape[-2:]
    for v, idx in enumerate(view.source_indices):
        if (name, view.scene, idx) in done:
            continue
        done.add((name, view.scene, idx))
        seg = view.source_label_maps[name][v]
        if seg.shape[-2:] != (H, W):
            seg = torch.nn.functional.interpolate(seg[None, None].float(), size=(H, W),
                                                  mode="nearest")[0, 0].long()
        for g in (overall, scene):
            g.add({}, seg, view.labels[v])


def _labels_for(model: Any, enc: Any, res: Any, view: EvalView, options: EvalOptions) -> Tensor:
    """Predicted classes [H, W] according to ``options.semantics``."""
    if options.semantics == "renderer":
        return res.labels
    if options.semantics == "2d_on_rendered":
        rgb = res.rgb.permute(2, 0, 1)[None].to(enc.image.dtype)
        return model.encoder(rgb).semantic_logits[0].argmax(0)
    if options.semantics == "separate":
        V = view.images.shape[0] - 1
        H, W = view.images.shape[-2:]
        dev = enc.image.device
        sem = model.render(enc, view.K[V].to(dev), view.c2w[V].to(dev), H, W,
                           floor_z=options.floor_z, **options.semantic_sampling)
        return sem.labels
    raise ValueError(f"EvalOptions.semantics must be renderer | 2d_on_rendered | separate, got "
                     f"{options.semantics!r}")
