"""How good is the multi-view depth? A parameter-free plane sweep against the learned cost volume.

For the source views of the evaluation protocol, each view is matched against its nearest
other sources (as :meth:`GSNeRF.encode_sources` does) over the stage-0 planes:

- ``sweep``: the fixed photometric cost (3x3 SAD of the colours, :func:`photometric_cost`)
  through the project's own warp, winner-take-all over the planes — what matching alone gives;
- ``model`` (with a checkpoint): the learned cascade's stage-0 depth (1/4 resolution) and its
  final full-resolution depth.

Reported per method, over ground-truth-valid *textured* pixels (local colour gradient above a
threshold; matching cannot work on blank walls, which the network must fill in): the share
within +-1 stage-0 plane of the truth, abs-rel, and the same for all valid pixels.

With a checkpoint, the target depth D_T of each source set's target view is scored as well,
on all its pixels and split by where D_T took them from (points another source confirms,
or unconfirmed points only); ``target_coverage`` gives, for each part, the share of pixels
that 0..V sources truly see (their ground-truth depth splatted into the target): a surface
that one source sees cannot be matched by any neighbour.

``per_scene`` reports, for each room, the median lateral share of the baselines between each
source and its cost-volume neighbours (``geometry.neighbour_lateral_shares``: 0 = motion along
the optical axis, as a forward-driving robot base's, where matching has no parallax near the
focus of expansion) beside that room's D_T and final cost-volume abs-rel.

    python -m gsnerf_ros.train.depth_probe --data runs/data/rooms/test [--checkpoint CKPT]
        [--height 120 --width 160] [--spacing inverse|linear] [--planes 32] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor

from gsnerf_ros.geometry import (bound_by_floor, invert_pose, level_intrinsics, nearest_views,
                                 neighbour_lateral_shares)
from gsnerf_ros.model.config import TargetDepthConfig
from gsnerf_ros.model.cost_volume import (PlaneSpacing, homography_warp, photometric_cost,
                                          plane_sweep_planes)
from gsnerf_ros.model.pyramid import depth_level, image_level
from gsnerf_ros.model.target_depth import estimate_target_depth, target_depth_tiers
from gsnerf_ros.model.inference import add_inference_arguments, apply_inference, inference_from_args

__all__ = ["SweepResult", "fixed_plane_sweep", "texture_mask", "plane_metrics", "DepthStats",
           "probe_scene_views", "main"]


@dataclass
class SweepResult:
    """``depth`` [h, w] m (winner-take-all plane), ``cost`` [D, h, w] (higher = better),
    ``q_planes`` [D] plane coordinates, ``step`` (signed), ``seen`` [h, w] bool (at least one
    neighbour sees the pixel on some plane)."""

    depth: Tensor
    cost: Tensor
    q_planes: Tensor
    step: float
    seen: Tensor


def fixed_plane_sweep(images: Tensor, K: Tensor, c2w: Tensor, ref: int, nbrs: Sequence[int],
                      near: float, far: float, num_planes: int, spacing: PlaneSpacing,
                      level: int = 2, patch: int = 3) -> SweepResult:
    """Parameter-free plane sweep of view ``ref`` against views ``nbrs`` at pyramid ``level``.

    ``images`` [V, 3, H, W] in [0, 1], ``K`` [V, 3, 3] for (H, W), ``c2w`` [V, 4, 4]. Planes
    are evenly spaced in ``spacing`` over [near, far] m, as the cost volume's stage 0.
    """
    q0, step = plane_sweep_planes(spacing, near, far, num_planes)
    imgs = image_level(images.float(), level)
    h, w = imgs.shape[-2:]
    q = q0 + step * torch.arange(num_planes, dtype=torch.float32, device=images.device)
    planes = spacing.depth(q)[:, None, None].expand(-1, h, w)
    nb = torch.as_tensor(list(nbrs), dtype=torch.long, device=images.device)
    rK = level_intrinsics(K[ref].float(), level)
    sK = level_intrinsics(K[nb].float(), level)
    src_from_ref = invert_pose(c2w[nb].float()) @ c2w[ref].float()
    warped, valid = homography_warp(imgs[nb], sK, src_from_ref, rK, planes)
    cost = photometric_cost(imgs[ref], warped, valid, patch)[0]             # [D, h, w]
    best = cost.argmax(0)
    return SweepResult(depth=spacing.depth(q[best]), cost=cost, q_planes=q, step=step,
                       seen=valid.any(0).any(0))


def texture_mask(image: Tensor, level: int, threshold: float = 0.02) -> Tensor:
    """Pixels with visible texture at pyramid ``level``: mean absolute colour difference to the
    4-neighbours above ``threshold``. ``image`` [3, H, W] -> [h_l, w_l] bool."""
    im = image_level(image[None].float(), level)[0]
    gx = torch.zeros_like(im[0])
    gy = torch.zeros_like(im[0])
    gx[:, 1:-1] = (im[:, :, 2:] - im[:, :, :-2]).abs().mean(0) / 2
    gy[1:-1, :] = (im[:, 2:, :] - im[:, :-2, :]).abs().mean(0) / 2
    return torch.maximum(gx, gy) > threshold


METRICS = ("within_1_plane", "abs_rel", "delta_1.25")


def plane_metrics(pred: Tensor, gt: Tensor, mask: Tensor, spacing: PlaneSpacing, q0: float,
                  step: float) -> tuple[list[float], int]:
    """([share within +-1 plane, abs-rel, share with max(pred/gt, gt/pred) < 1.25], pixel
    count) of depth ``pred`` against ``gt`` (m) on ``mask`` (and gt > 0); planes at
    ``q0 + k * step`` in ``spacing``. The plane share depends on the spacing; abs-rel and
    delta do not."""
    m = mask & (gt > 0) & (pred > 0)
    n = int(m.sum())
    if n == 0:
        return [float("nan")] * 3, 0
    p, g = pred[m].float(), gt[m].float()
    kp = (spacing.coord(p) - q0) / step
    kg = (spacing.coord(g) - q0) / step
    within = float(((kp - kg).abs() <= 1.5).float().mean())
    absrel = float(((p - g).abs() / g).mean())
    delta = float((torch.maximum(p / g, g / p) < 1.25).float().mean())
    return [within, absrel, delta], n


def sources_seeing_target(depths: Tensor, K: Tensor, c2w: Tensor, tK: Tensor, tc2w: Tensor,
                          tdepth: Tensor, near: float, far: float, rel_tol: float = 0.05,
                          cfg: TargetDepthConfig | None = None) -> Tensor:
    """How many sources truly see each target pixel's surface: each source's *ground-truth*
    depth alone is turned into a target depth map as D_T is (:func:`estimate_target_depth`
    with one source, no smoothing: its z-buffer, leak filter and hole filling), and the source
    sees the pixel where that agrees with the target's ground truth within ``rel_tol``.

    Shapes: ``depths`` [V, H, W] m (0 = invalid), ``K`` [V, 3, 3], ``c2w`` [V, 4, 4], ``tK``
    [3, 3], ``tc2w`` [4, 4], ``tdepth`` [Ht, Wt] m (0 = invalid) -> [Ht, Wt] int64 in 0..V.
    """
    cfg = replace(cfg or TargetDepthConfig(), smooth=False)
    Ht, Wt = tdepth.shape[-2:]
    g = tdepth.float()
    count = torch.zeros(Ht, Wt, dtype=torch.long)
    for i in range(depths.shape[0]):
        d, valid = estimate_target_depth(depths[i:i + 1].float(), K[i:i + 1], c2w[i:i + 1], tK,
                                         tc2w, Ht, Wt, near, far, cfg)
        count += valid & (g > 0) & ((d - g).abs() <= rel_tol * g)
    return count


@dataclass
class DepthStats:
    """Pixel-weighted accumulators of :func:`plane_metrics` results, per method name."""

    sums: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, values: list[float], n: int) -> None:
        if n == 0:
            return
        s = self.sums.setdefault(name, [0.0] * (len(values) + 1))
        for i, v in enumerate(values):
            s[i] += v * n
        s[-1] += n

    def summary(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for k, v in self.sums.items():
            out[k] = {name: v[i] / v[-1] for i, name in enumerate(METRICS)}
            out[k]["pixels"] = int(v[-1])
        return out


def probe_scene_views(stats: DepthStats, images: Tensor, depths: Tensor, K: Tensor, c2w: Tensor,
                      near: float, far: float, num_planes: int, spacing: PlaneSpacing,
                      num_neighbors: int, model=None, texture_threshold: float = 0.02,
                      foreign_images: Tensor | None = None,
                      target: tuple[Tensor, Tensor, Tensor] | None = None,
                      coverage: dict[str, Tensor] | None = None,
                      scene_stats: DepthStats | None = None,
                      floor_z: float | None = None) -> None:
    """Add the metrics of every view of one source set to ``stats``.

    ``images`` [V, 3, H, W], ``depths`` [V, H, W] m (GT, 0 = invalid), ``K`` [V, 3, 3],
    ``c2w`` [V, 4, 4]. With a ``model``, its cost-volume depth is measured on the same views.
    With ``foreign_images`` [V, 3, H, W] (another room), each view is also encoded against
    neighbours whose poses are right but whose images are the foreign ones
    (``model_stage0_swapped``): a cost volume that matches gets worse; a monocular one does not.
    With ``target`` = (``K`` [3, 3], ``c2w`` [4, 4], GT ``depth`` [H, W] m) of the set's target
    view, the model's target-depth estimate D_T (Algorithm 1, from these sources' depths) is
    scored there too (``model_target_depth``), on all its pixels and split by where the
    pixel's D_T came from (:func:`target_depth_tiers`: ``first_tier`` = points that another
    source confirms, ``second_tier`` = unconfirmed points only). With ``coverage`` (a dict of
    ``first_tier`` / ``second_tier`` float64 [V+1] counters), the pixels of each tier are also
    counted by how many sources truly see them (:func:`sources_seeing_target`).
    ``scene_stats`` (e.g. one per room) also gets ``model_target_depth/all`` and
    ``model_final/all``. ``floor_z`` (m, z-up world): the model's finest depth and D_T are
    bounded by the floor plane, as ``GSNeRF.render(floor_z=...)`` does (stage 0 is not).
    """
    sinks = [stats] + ([scene_stats] if scene_stats is not None else [])
    V = images.shape[0]
    enc = None
    if model is not None:
        with torch.no_grad():
            dev = model.device
            enc = model.encode_sources(images.to(dev), K.to(dev), c2w.to(dev), near, far)
            if floor_z is not None:
                enc = enc.with_floor(floor_z)
    q0, step = plane_sweep_planes(spacing, near, far, num_planes)
    if enc is not None and target is not None:
        tK, tc2w, tdepth = target
        H, W = tdepth.shape[-2:]
        with torch.no_grad():
            dt, _ = model.target_depth(enc, tK, tc2w, H, W, near, far)
            if floor_z is not None:
                dt = bound_by_floor(dt, tK, tc2w, floor_z)
            tier = target_depth_tiers(enc.depth, enc.depth_K, enc.c2w, tK.to(enc.depth.device),
                                      tc2w.to(enc.depth.device), H, W, near, far,
                                      model.config.target_depth,
                                      enc.sensor_depth_mask).cpu()
        dt = dt.float().cpu()
        m_all = plane_metrics(dt, tdepth, tdepth > 0, spacing, q0, step)
        for st in sinks:
            st.add("model_target_depth/all", *m_all)
        for t, name in ((1, "first_tier"), (2, "second_tier")):
            stats.add(f"model_target_depth/{name}",
                      *plane_metrics(dt, tdepth, tier == t, spacing, q0, step))
        if coverage is not None:
            seen = sources_seeing_target(depths, K, c2w, tK, tc2w, tdepth, near, far,
                                         cfg=model.config.target_depth)
            for t, name in ((1, "first_tier"), (2, "second_tier")):
                m = (tier == t) & (tdepth > 0)
                coverage[name] += torch.bincount(seen[m], minlength=V + 1)[:V + 1].double()
    for i in range(V):
        nb = nearest_views(c2w[i], c2w, num_neighbors, exclude=[i]).tolist()
        sw = fixed_plane_sweep(images, K, c2w, i, nb, near, far, num_planes, spacing)
        gt2 = depth_level(depths[i], 2)
        tex2 = texture_mask(images[i], 2, texture_threshold) & sw.seen
        allv = sw.seen
        stats.add("sweep/textured", *plane_metrics(sw.depth, gt2, tex2, spacing, q0, step))
        stats.add("sweep/all", *plane_metrics(sw.depth, gt2, allv, spacing, q0, step))
        const = torch.full_like(gt2, float(gt2[gt2 > 0].median()) if bool((gt2 > 0).any()) else 1.0)
        stats.add("gt_median_constant/all", *plane_metrics(const, gt2, allv, spacing, q0, step))
        if enc is not None:
            # The model's stage 0 sits at pyramid level g + 2 (g = its geometry level, 0 unless
            # the probe size exceeds model.geometry_max_pixels): compare on that level's pixels.
            g = enc.geometry_level
            gt_m, tex_m, all_m = gt2, tex2, allv
            if g:
                gt_m = depth_level(depths[i], g + 2)
                all_m = depth_level(allv, g)
                tex_m = texture_mask(images[i], g + 2, texture_threshold) & all_m
            d2 = enc.depth_levels[2][i].float().cpu()
            d0 = enc.depth_levels[0][i].float().cpu()
            gt0 = depth_level(depths[i], enc.depth_map_level)
            stats.add("model_stage0/textured", *plane_metrics(d2, gt_m, tex_m, spacing, q0, step))
            stats.add("model_stage0/all", *plane_metrics(d2, gt_m, all_m, spacing, q0, step))
            m_final = plane_metrics(d0, gt0, gt0 > 0, spacing, q0, step)
            for st in sinks:
                st.add("model_final/all", *m_final)
            if foreign_images is not None:
                dev = model.device
                with torch.no_grad():
                    ve = model.encode_view(images[i].to(dev), K[i].to(dev), c2w[i].to(dev),
                                           foreign_images[nb].to(dev), K[nb].to(dev),
                                           c2w[nb].to(dev), near, far)
                ds = ve.depth_levels[2].float().cpu()
                stats.add("model_stage0_swapped/textured",
                          *plane_metrics(ds, gt_m, tex_m, spacing, q0, step))


def main(argv: Sequence[str] | None = None) -> int:
    from tqdm import tqdm

    from gsnerf_ros.data.dataset import DatasetConfig, GSNeRFDataset
    from gsnerf_ros.data.formats import open_scenes
    from gsnerf_ros.data.view_selection import EvalProtocol

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="folder of scenes (Replica layout)")
    ap.add_argument("--checkpoint", default="", help="also measure this model's cost volume")
    ap.add_argument("--height", type=int, default=120)
    ap.add_argument("--width", type=int, default=160)
    ap.add_argument("--spacing", default="", help="inverse | linear (default: the model's, "
                    "else inverse)")
    ap.add_argument("--planes", type=int, default=0, help="stage-0 planes (default: the "
                    "model's, else 32)")
    ap.add_argument("--num-sources", type=int, default=8)
    ap.add_argument("--max-targets", type=int, default=2, help="source sets per scene")
    ap.add_argument("--swap-neighbours", action="store_true", help="also encode each view "
                    "against neighbours showing another source set's images (does the learned "
                    "depth use matching?)")
    add_inference_arguments(ap, neighbours_note="; the fixed sweep uses it too, else 2")
    ap.add_argument("--device", default="cpu", help="the model's device (cpu | cuda | cuda:N | "
                    "auto); the fixed sweep runs on the CPU")
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    inference = inference_from_args(ap, args)

    model = None
    if args.checkpoint:
        from gsnerf_ros.model import GSNeRF
        from gsnerf_ros.device import DeviceError, resolve_device

        try:
            device = resolve_device(args.device)
        except DeviceError as exc:
            ap.error(str(exc))
        model = GSNeRF.from_checkpoint(args.checkpoint, device=device)
        apply_inference(model.config, inference)
    cv = model.config.cost_volume if model is not None else None
    spacing = PlaneSpacing.named(args.spacing or (cv.spacing if cv else "inverse"))
    planes = args.planes or (cv.num_planes[0] if cv else 32)
    nn_ = inference.num_neighbors or (cv.num_neighbors if cv else 2)
    ds = GSNeRFDataset(open_scenes(args.data, "replica"), DatasetConfig(
        mode="eval", height=args.height, width=args.width, near=inference.near, far=inference.far,
        eval_protocol=EvalProtocol(num_sources=args.num_sources, max_targets=args.max_targets)))
    stats = DepthStats()
    items = list(ds)
    V = args.num_sources
    coverage = ({k: torch.zeros(V + 1, dtype=torch.float64) for k in ("first_tier", "second_tier")}
                if model is not None else None)
    scene_stats: dict[str, DepthStats] = {}
    shares: dict[str, list[Tensor]] = {}
    for n, item in enumerate(tqdm(items, desc="depth probe", unit="set")):
        other = items[(n + 1) % len(items)]["images"][:V] if (
            args.swap_neighbours and len(items) > 1) else None
        name = str(item["scene"])
        probe_scene_views(stats, item["images"][:V], item["depths"][:V], item["K"][:V],
                          item["c2w"][:V], float(item["near"]), float(item["far"]), planes,
                          spacing, nn_, model, foreign_images=other, coverage=coverage,
                          target=(item["K"][V], item["c2w"][V], item["depths"][V])
                          if item["images"].shape[0] > V else None,
                          scene_stats=scene_stats.setdefault(name, DepthStats()),
                          floor_z=inference.floor_z)
        shares.setdefault(name, []).append(neighbour_lateral_shares(item["c2w"][:V].float(), nn_))
    out = {"data": args.data, "checkpoint": args.checkpoint, "spacing": spacing.inverse and
           "inverse" or "linear", "planes": planes, "size": [args.height, args.width],
           "num_neighbors": nn_, "floor_z": inference.floor_z,
           "consistency_tolerance": (model.config.target_depth.consistency_tolerance
                                     if model is not None else None),
           "results": stats.summary(), "per_scene": {}}
    for name, sh in shares.items():
        sh_all = torch.cat(sh)
        row: dict[str, float | None] = {
            "lateral_baseline_share": round(float(sh_all.median()), 3) if sh_all.numel() else None}
        for key, res in scene_stats[name].summary().items():
            row[key.split("/")[0] + "_abs_rel"] = round(res["abs_rel"], 4)
        out["per_scene"][name] = row
    if coverage is not None:
        # Share of each D_T tier's pixels seen by k = 0..V sources (ground truth).
        out["target_coverage"] = {k: [round(float(x), 4) for x in (v / v.sum().clamp(min=1))]
                                  for k, v in coverage.items()}
    print(json.dumps(out, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
