"""Cost-volume neighbours chosen by the triangulation they give (pure torch).

A reference view's depth comes from matching it against its neighbours, and matching can only
place a point that the two views see under some angle. The nearest views are a poor choice for
a camera that drives forward: the views just ahead and behind lie on its optical axis, and near
the focus of expansion they subtend no angle at all. :func:`triangulation_scores` scores each
candidate by the geometry it gives at the scene: points of the reference view's image (a
``grid`` x ``grid`` pattern of pixels) at the scene depth, and for each point

- the angle it subtends between the two camera centres, through a band that is 1 between
  ``band_deg[0]`` and ``band_deg[1]`` and falls off as a Gaussian below (``sigma_deg[0]``) and
  above (``sigma_deg[1]``): MVSNet's piecewise-Gaussian view-selection score with a plateau
  (too small an angle leaves the depth undetermined, too large one makes the views look
  unlike each other);
- overlap: 0 where the point lies behind the candidate or outside its image;

averaged over the points, times a lateral-baseline factor ``min(1, s / lateral_min)`` with
``s`` the :func:`~gsnerf_ros.geometry.pose.lateral_baseline_share` of the baseline against the
reference's optical axis (a baseline along the axis is the forward-motion case). Then
:func:`triangulation_neighbours` takes the ``k`` best-scored views (ties by pose distance).

The scene depth is the reference view's own when known (a measured depth, an earlier encoding),
else a prior: :func:`scene_depth_prior`, the median of the depths already known, else the
middle of [near, far] in log depth (``sqrt(near * far)``; 1.58 m for the procedural rooms'
0.25-10 m).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from gsnerf_ros.geometry.pose import lateral_baseline_share, pose_distance

__all__ = ["NEIGHBOUR_RULES", "TriangulationBand", "angle_band", "scene_depth_prior",
           "triangulation_scores", "triangulation_neighbours", "choose_neighbours"]

NEIGHBOUR_RULES = ("nearest", "triangulation")
"""How a view's cost-volume neighbours are chosen: the nearest by pose distance, or the best by
:func:`triangulation_scores`."""


@dataclass(frozen=True)
class TriangulationBand:
    """The angle band and penalties of :func:`triangulation_scores` (degrees; share in [0, 1])."""

    band_deg: tuple[float, float] = (4.0, 15.0)
    """Angles subtended at the scene that score 1."""
    sigma_deg: tuple[float, float] = (2.0, 10.0)
    """Gaussian fall-off below and above the band."""
    lateral_min: float = 0.25
    """Lateral baseline share at and above which the baseline is not penalised."""
    grid: int = 3
    """Points of the reference image per side (grid x grid, at the cell centres)."""

    def __post_init__(self) -> None:
        lo, hi = self.band_deg
        if not (math.isfinite(lo) and math.isfinite(hi) and 0.0 <= lo <= hi < 180.0):
            raise ValueError(f"band_deg must be 0 <= lo <= hi < 180, got {self.band_deg}")
        if not all(math.isfinite(s) and s > 0 for s in self.sigma_deg) or len(self.sigma_deg) != 2:
            raise ValueError(f"sigma_deg must be two values > 0, got {self.sigma_deg}")
        if not 0.0 <= self.lateral_min <= 1.0:
            raise ValueError(f"lateral_min must lie in [0, 1], got {self.lateral_min}")
        if self.grid < 1:
            raise ValueError(f"grid must be >= 1, got {self.grid}")


def angle_band(theta_deg: Tensor, band: TriangulationBand | None = None) -> Tensor:
    """Score in [0, 1] of triangulation angles (degrees, any shape): 1 inside ``band_deg``,
    a Gaussian of the distance to the band outside it (``sigma_deg`` below / above)."""
    b = band or TriangulationBand()
    lo, hi = b.band_deg
    below = torch.exp(-0.5 * ((theta_deg - lo).clamp(max=0) / b.sigma_deg[0]) ** 2)
    above = torch.exp(-0.5 * ((theta_deg - hi).clamp(min=0) / b.sigma_deg[1]) ** 2)
    return below * above


def scene_depth_prior(near: float, far: float, known: Tensor | None = None) -> float:
    """Scene depth (m) to score neighbours at when a view's own is not known: the median of the
    ``known`` depths (m, any shape; non-finite or <= 0 ignored) when there are any, else the
    middle of [near, far] in log depth, ``sqrt(near * far)``."""
    if not (math.isfinite(near) and math.isfinite(far) and 0 < near < far):
        raise ValueError(f"depth range must satisfy 0 < near < far, got {near}, {far}")
    if known is not None:
        k = known.detach().reshape(-1).float()
        k = k[torch.isfinite(k) & (k > 0)]
        if k.numel():
            return float(k.median())
    return math.sqrt(near * far)


def _check_inputs(c2w: Tensor, K: Tensor, what: str) -> None:
    if c2w.ndim != 3 or tuple(c2w.shape[1:]) != (4, 4):
        raise ValueError(f"{what} c2w must be [N,4,4], got {tuple(c2w.shape)}")
    if K.shape != (c2w.shape[0], 3, 3):
        raise ValueError(f"{what} K must be [{c2w.shape[0]},3,3], got {tuple(K.shape)}")
    if not bool(torch.isfinite(c2w).all() & torch.isfinite(K).all()):
        raise ValueError(f"{what} c2w and K must be finite")


def triangulation_scores(ref_c2w: Tensor, ref_K: Tensor, size: tuple[int, int],
                         scene_depth: Tensor | float, cand_c2w: Tensor, cand_K: Tensor,
                         band: TriangulationBand | None = None) -> Tensor:
    """Triangulation score of every (reference, candidate) pair (module docstring).

    ``ref_c2w`` [R, 4, 4], ``ref_K`` [R, 3, 3] px for images of ``size`` (H, W);
    ``scene_depth`` m, a float or [R] (depth along each reference's optical axis);
    ``cand_c2w`` [N, 4, 4], ``cand_K`` [N, 3, 3] for the same size -> [R, N] in [0, 1]
    (0 for a candidate at the reference's own centre).
    """
    b = band or TriangulationBand()
    _check_inputs(ref_c2w, ref_K, "reference")
    _check_inputs(cand_c2w, cand_K, "candidate")
    H, W = int(size[0]), int(size[1])
    if H < 1 or W < 1:
        raise ValueError(f"image size must be positive, got {size}")
    R, N = ref_c2w.shape[0], cand_c2w.shape[0]
    dev = ref_c2w.device
    ref_c2w, cand_c2w = ref_c2w.float(), cand_c2w.float().to(dev)
    ref_K, cand_K = ref_K.float().to(dev), cand_K.float().to(dev)
    d = torch.as_tensor(scene_depth, dtype=torch.float32, device=dev).reshape(-1)
    if d.numel() == 1:
        d = d.expand(R)
    if d.numel() != R or not bool((torch.isfinite(d) & (d > 0)).all()):
        raise ValueError(f"scene_depth must be > 0 m, one value or one per reference ({R})")
    # Points of each reference image at the scene depth (z-depth d): [R, G, 3] world.
    g = b.grid
    frac = (torch.arange(g, device=dev, dtype=torch.float32) + 0.5) / g
    v, u = torch.meshgrid(frac * H - 0.5, frac * W - 0.5, indexing="ij")
    pix = torch.stack([u.reshape(-1), v.reshape(-1), torch.ones(g * g, device=dev)], -1)
    rays = pix @ torch.linalg.inv(ref_K).transpose(-1, -2)                   # [R, G, 3] z = 1
    pts_cam = rays * d[:, None, None]
    pts = pts_cam @ ref_c2w[:, :3, :3].transpose(-1, -2) + ref_c2w[:, None, :3, 3]
    # Angle at each point between the rays to the two centres: [R, N, G].
    to_ref = ref_c2w[:, None, None, :3, 3] - pts[:, None]
    to_cand = cand_c2w[None, :, None, :3, 3] - pts[:, None]
    cos = (to_ref * to_cand).sum(-1) / (to_ref.norm(dim=-1) * to_cand.norm(dim=-1)).clamp(min=1e-9)
    theta = torch.rad2deg(torch.arccos(cos.clamp(-1.0, 1.0)))
    # Overlap: the point in front of the candidate and inside its image.
    w2c = torch.linalg.inv(cand_c2w)
    pc = torch.einsum("nij,rgj->rngi", w2c[:, :3, :3], pts) + w2c[None, :, None, :3, 3]
    z = pc[..., 2]
    uvw = torch.einsum("nij,rngj->rngi", cand_K, pc)
    uv = uvw[..., :2] / z.clamp(min=1e-9)[..., None]
    inside = ((z > 1e-6) & (uv[..., 0] >= -0.5) & (uv[..., 0] <= W - 0.5)
              & (uv[..., 1] >= -0.5) & (uv[..., 1] <= H - 0.5))
    per_point = angle_band(theta, b) * inside.float()
    share = lateral_baseline_share(ref_c2w[:, None].expand(R, N, 4, 4),
                                   cand_c2w[None].expand(R, N, 4, 4))
    share = torch.nan_to_num(share, nan=0.0)
    lateral = (share / b.lateral_min).clamp(max=1.0) if b.lateral_min > 0 else torch.ones_like(share)
    return per_point.mean(-1) * lateral


def triangulation_neighbours(c2w: Tensor, K: Tensor, size: tuple[int, int],
                             scene_depth: Tensor | float, k: int,
                             band: TriangulationBand | None = None) -> Tensor:
    """For each of V views, the ``k`` other views that triangulate it best, best first.

    ``c2w`` [V, 4, 4], ``K`` [V, 3, 3] px for ``size`` (H, W), ``scene_depth`` m (float or [V])
    -> [V, min(k, V - 1)] int64. Ties (e.g. no candidate sees the scene) go to the nearer view
    by :func:`~gsnerf_ros.geometry.pose.pose_distance`, then the lower index.
    """
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    V = c2w.shape[0]
    s = triangulation_scores(c2w, K, size, scene_depth, c2w, K, band)
    return _best(s, c2w, c2w, min(k, V - 1), exclude_self=True)


def _best(scores: Tensor, ref_c2w: Tensor, cand_c2w: Tensor, k: int,
          exclude_self: bool) -> Tensor:
    """[R, k] indices of the best ``scores`` [R, N] per row; ties by pose distance, then index."""
    R, N = scores.shape
    dist = pose_distance(ref_c2w[:, None].expand(R, N, 4, 4).float(),
                         cand_c2w[None].expand(R, N, 4, 4).float().to(ref_c2w.device))
    scores = scores.clone()
    if exclude_self:
        eye = torch.eye(N, dtype=torch.bool, device=scores.device)
        scores[eye] = -1.0
        dist = dist.masked_fill(eye, float("inf"))
    order = torch.argsort(dist, dim=1, stable=True)
    ranked = torch.argsort(-scores.gather(1, order), dim=1, stable=True)
    return order.gather(1, ranked)[:, :k]


def choose_neighbours(rule: str, ref_c2w: Tensor, ref_K: Tensor, size: tuple[int, int],
                      scene_depth: float, cand_c2w: Tensor, cand_K: Tensor, k: int,
                      band: TriangulationBand | None = None) -> Tensor:
    """Indices of the ``k`` candidates (``cand_c2w`` [N, 4, 4], ``cand_K`` [N, 3, 3]) one view
    (``ref_c2w`` [4, 4], ``ref_K`` [3, 3], images ``size``) is matched against by ``rule``:
    ``nearest`` (pose distance, :func:`~gsnerf_ros.geometry.pose.nearest_views`) or
    ``triangulation`` (at ``scene_depth`` m) -> [min(k, N)] int64, best first."""
    from gsnerf_ros.geometry.pose import nearest_views

    if rule not in NEIGHBOUR_RULES:
        raise ValueError(f"neighbour rule must be one of {NEIGHBOUR_RULES}, got {rule!r}")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    N = cand_c2w.shape[0]
    if N == 0 or k == 0:
        return torch.zeros(0, dtype=torch.long, device=cand_c2w.device)
    if rule == "nearest":
        return nearest_views(ref_c2w.to(cand_c2w), cand_c2w, k)
    s = triangulation_scores(ref_c2w[None], ref_K[None], size, scene_depth, cand_c2w, cand_K,
                             band)
    return _best(s, ref_c2w[None], cand_c2w, min(k, N), exclude_self=False)[0].to(cand_c2w.device)
