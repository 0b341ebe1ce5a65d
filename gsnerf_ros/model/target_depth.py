"""Target-view depth estimation (paper Algorithm 1) with a real z-buffer.

Every source depth map is lifted to world points, projected into the target camera, and splatted
to the nearest pixel (and, where the target sees the surface magnified, to the pixels of the
point's projected footprint); where several points land on one pixel the nearest wins (``scatter_reduce``
'amin', so the result does not depend on write order). With ``footprint_depth: centre`` the
footprints decide only which surface a pixel sees and its depth comes from the points nearest its
centre (no bias towards the camera on slanted surfaces); ``measured_centre`` does so where the
surface a pixel sees is measured (RGB-D). Only points in front of the camera (and
inside [near, far] when given) count. Background points that leak through gaps of a stretched
foreground are removed by a 3x3 majority test, holes are filled by a few rounds of 3x3 masked
means (more where the neighbours are measured: ``measured_fill_iterations``), and an
edge-preserving 3x3 bilateral filter smooths the result. Everything is
deterministic, runs in float32 and carries no gradient.

:func:`floor_bound` bounds the depths by a known floor plane (a ground robot's): the sources'
depth maps before the z-buffer, and D_T and the rendered depth after it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gsnerf_ros.geometry import floor_depth, unproject_depth, world_to_pixels
from gsnerf_ros.model.config import TargetDepthConfig
from gsnerf_ros.model.encoding import SourceEncoding, check_floor_z

__all__ = ["zbuffer_splat", "consistent_views", "estimate_target_depth",
           "estimate_target_depth_measured", "target_depth_tiers", "floor_bound"]


def _neighbours(x: Tensor) -> Tensor:
    """3x3 neighbourhood of a map. [H, W] -> [9, H, W] (NaN outside the image)."""
    H, W = x.shape
    p = F.pad(x[None, None], (1, 1, 1, 1), value=float("nan"))
    return F.unfold(p, 3).reshape(9, H, W)


def _sync_free_default(device: torch.device) -> bool:
    """Fixed-shape, synchronisation-free schedules off the CPU; on the CPU a host read costs
    nothing, so the cheaper data-dependent schedules (gathers, early exits) are used."""
    return device.type != "cpu"


def zbuffer_splat(points_world: Tensor, K: Tensor, c2w: Tensor, height: int, width: int,
                  near: float | None = None, far: float | None = None,
                  point_size: Tensor | None = None, max_radius: int = 0,
                  valid: Tensor | None = None, sync_free: bool | None = None,
                  centre_tolerance: float | None = None,
                  centre_points: Tensor | None = None, centre_mean: float = 0.0) -> Tensor:
    """Nearest-surface z-buffer of world points seen by a camera.

    Shapes: ``points_world`` [P, 3] m, ``K`` [3, 3], ``c2w`` [4, 4] -> [H, W] z-depth (m),
    ``inf`` where no point landed. Points behind the camera (z <= 0), outside [near, far] or
    with ``valid`` [P] False are dropped; each point goes to the pixel whose centre is nearest to
    its projection. With ``point_size`` [P] (metres: the lateral extent of the surface patch a
    point stands for) a point also covers the pixels within its projected footprint, radius
    ``ceil(size_px / 2 - 0.5)`` capped at ``max_radius`` (closes gaps where the target camera
    sees a surface magnified).

    A footprint gives its pixels the point's own depth, so where footprints overlap on a slanted
    surface the nearest wins and the depth is biased towards the camera. With
    ``centre_tolerance`` (relative) the footprints only decide which surface a pixel sees: the
    pixel keeps the depth of the points that land nearest its centre when it is within
    ``centre_tolerance`` of the footprints' nearest, and is ``inf`` (empty, to be filled from
    its neighbours) otherwise. ``centre_points`` [P] bool applies that rule only to those points
    (e.g. measured ones; None: all): where one of them is the surface a pixel sees, the pixel
    gets its centre depth; elsewhere the other points' footprint depth. With ``centre_mean`` >
    0 that centre depth is the mean of the centre points within ``centre_mean`` (relative) of
    their nearest (noisy measurements of one surface: the nearest is biased towards the
    camera); summed in integer micrometres, so the mean does not depend on the order of the
    points (both schedules agree to the bit, and a GPU's atomic adds are deterministic).

    Two equivalent schedules (same result: the z-buffer is a min, independent of order):
    ``sync_free=False`` gathers the kept points and groups them by radius (least work; needs
    data-dependent shapes, i.e. host-device synchronisations); ``sync_free=True`` scatters every
    point for each of the (2R+1)^2 footprint offsets with dropped points set to ``inf`` (fixed
    shapes: no synchronisation, CUDA-graph capturable). Default: grouped on CPU, sync-free
    elsewhere.
    """
    return _zbuffer(points_world, K, c2w, height, width, near, far, point_size, max_radius,
                    valid, sync_free, centre_tolerance, centre_points, None, centre_mean)[0]


def _zbuffer(points_world: Tensor, K: Tensor, c2w: Tensor, height: int, width: int,
             near: float | None, far: float | None, point_size: Tensor | None, max_radius: int,
             valid: Tensor | None, sync_free: bool | None, centre_tolerance: float | None,
             centre_points: Tensor | None, flag_points: Tensor | None = None,
             centre_mean: float = 0.0) -> tuple[Tensor, Tensor]:
    """:func:`zbuffer_splat` (same arguments), and [H, W] bool: the pixels whose surface (the
    footprints' nearest, within ``centre_tolerance`` or exactly) is one of ``flag_points``'
    [P] bool (all False when None)."""
    if sync_free is None:
        sync_free = _sync_free_default(points_world.device)
    if not sync_free and valid is not None:      # gather first: project only the valid points
        points_world = points_world[valid]
        point_size = point_size[valid] if point_size is not None else None
        centre_points = centre_points[valid] if centre_points is not None else None
        flag_points = flag_points[valid] if flag_points is not None else None
        valid = None
    uv, z = world_to_pixels(points_world[None].float(), K[None].float(), c2w[None].float())
    uv, z = uv[0], z[0]
    ui = torch.round(uv[:, 0])
    vi = torch.round(uv[:, 1])
    keep = torch.isfinite(z) & (z > 1e-6) & (ui >= 0) & (ui <= width - 1) & (vi >= 0) & (vi <= height - 1)
    if valid is not None:
        keep &= valid
    if near is not None:
        keep &= z >= near
    if far is not None:
        keep &= z <= far
    inf = torch.tensor(float("inf"), device=z.device, dtype=torch.float32)
    if sync_free:
        ui = torch.nan_to_num(ui, nan=-1.0).clamp(-1, width).long()
        vi = torch.nan_to_num(vi, nan=-1.0).clamp(-1, height).long()
        zk = torch.where(keep, z.float(), inf)
    else:
        ui, vi, zk = ui[keep].long(), vi[keep].long(), z[keep].float()
        if point_size is not None:
            point_size = point_size[keep]
        if centre_points is not None:
            centre_points = centre_points[keep]
        if flag_points is not None:
            flag_points = flag_points[keep]
    if point_size is None or max_radius <= 0:
        radius = torch.zeros_like(ui)
    else:
        f = torch.sqrt(K[0, 0] * K[1, 1]).float()
        size_px = f * point_size.float() / zk.clamp(min=1e-6)
        radius = torch.nan_to_num(torch.ceil(size_px / 2 - 0.5), nan=0.0).clamp(0, max_radius).long()

    def empty() -> Tensor:
        return torch.full((height * width,), float("inf"), device=z.device, dtype=torch.float32)

    def splat(buf: Tensor, u: Tensor, v: Tensor, zz: Tensor, dx: int, dy: int) -> Tensor:
        u2, v2 = u + dx, v + dy
        idx = v2.clamp(0, height - 1) * width + u2.clamp(0, width - 1)
        ok = (u2 >= 0) & (u2 < width) & (v2 >= 0) & (v2 < height)
        return buf.scatter_reduce(0, idx, torch.where(ok, zz, inf), reduce="amin",
                                  include_self=True)

    def footprints(zs: Tensor) -> Tensor:
        buf = empty()
        if sync_free:
            R = max_radius if point_size is not None else 0
            for dy in range(-R, R + 1):
                for dx in range(-R, R + 1):
                    zz = zs if (dx, dy) == (0, 0) else torch.where(
                        radius >= max(abs(dx), abs(dy)), zs, inf)
                    buf = splat(buf, ui, vi, zz, dx, dy)
            return buf
        R = int(radius.max()) if radius.numel() else 0
        for r in range(R + 1):                   # group points by footprint radius
            sel = radius == r
            ur, vr, zr = ui[sel], vi[sel], zs[sel]
            if zr.numel() == 0:
                continue
            for dy in range(-r, r + 1):
                for dx in range(-r, r + 1):
                    buf = splat(buf, ur, vr, zr, dx, dy)
        return buf

    use_centre = centre_tolerance is not None and point_size is not None and max_radius > 0
    tol = centre_tolerance or 0.0

    def in_front(part: Tensor, nearest: Tensor) -> Tensor:
        return torch.isfinite(part) & (part <= nearest * (1.0 + tol))

    # One subset of the points split out when its surface matters: the centre rule's points,
    # else the flagged ones.
    split = centre_points if use_centre and centre_points is not None else flag_points
    if split is None:
        buf = footprints(zk)
        split_front = torch.ones_like(buf, dtype=torch.bool)
    else:
        buf_s = footprints(torch.where(split, zk, inf))                  # its surface ...
        buf = torch.minimum(buf_s, footprints(torch.where(split, inf, zk)))
        split_front = in_front(buf_s, buf)                               # ... where in front
    if flag_points is None:
        flags = torch.zeros_like(buf, dtype=torch.bool)
    elif flag_points is split:
        flags = split_front
    else:
        flags = in_front(footprints(torch.where(flag_points, zk, inf)), buf)
    if not use_centre:
        return buf.reshape(height, width), flags.reshape(height, width)
    # the surface from footprints, the depth from the points at the pixel's centre
    zc = zk if centre_points is None else torch.where(centre_points, zk, inf)
    centre = splat(empty(), ui, vi, zc, 0, 0)
    value = _mean_near_nearest(centre, ui, vi, zc, centre_mean, height, width) \
        if centre_mean > 0 else centre
    by_centre = torch.where(centre <= buf * (1.0 + tol), value, inf)
    out = by_centre if centre_points is None else torch.where(split_front, by_centre, buf)
    return out.reshape(height, width), flags.reshape(height, width)


_MICROMETRES = 1e6


def _mean_near_nearest(nearest: Tensor, ui: Tensor, vi: Tensor, z: Tensor, rel: float,
                       height: int, width: int) -> Tensor:
    """[H*W] m: per pixel, the mean of the depths ``z`` [P] (m; ``inf`` = dropped) of the points
    that land on it (``ui``/``vi`` [P] pixel indices, possibly outside the image) and lie within
    ``rel`` of its nearest ``nearest`` [H*W] (their minimum; ``inf`` where none), else
    ``nearest``. The offsets from the nearest are summed as int64 micrometres: exact, so the
    result is independent of the points' order (grouped or sync-free schedule, GPU atomics).
    Fixed shapes, no host synchronisation."""
    inside = (ui >= 0) & (ui < width) & (vi >= 0) & (vi < height)
    idx = vi.clamp(0, height - 1) * width + ui.clamp(0, width - 1)
    base = nearest[idx]
    sel = inside & torch.isfinite(z) & torch.isfinite(base) & (z <= base * (1.0 + rel))
    off = torch.round(torch.where(sel, z - base, torch.zeros_like(z)) * _MICROMETRES).long()
    sums = torch.zeros_like(nearest, dtype=torch.int64).scatter_add_(0, idx, off)
    count = torch.zeros_like(nearest, dtype=torch.int64).scatter_add_(0, idx, sel.long())
    mean = nearest + sums.to(nearest.dtype) / count.clamp(min=1).to(nearest.dtype) / _MICROMETRES
    return torch.where(count > 0, mean, nearest)


@torch.no_grad()
def consistent_views(depths: Tensor, K: Tensor, c2w: Tensor, rel_tol: float) -> Tensor:
    """Multi-view geometric consistency of V depth maps: for every pixel, the number of *other*
    views that see its 3D point where their own depth agrees.

    Shapes: ``depths`` [V, h, w] z-depth m (0 or non-finite = invalid), ``K`` [V, 3, 3] for that
    size, ``c2w`` [V, 4, 4] -> [V, h, w] int64 count in 0..V-1 (0 at invalid pixels). View j
    agrees with pixel p of view i when p's point lies in front of j, projects inside j's image
    (nearest pixel centre) onto a valid depth d_j, and |d_j - z_j| <= ``rel_tol`` * z_j, with z_j
    the point's depth in j. A point hidden in j fails the test (j sees something nearer), so a
    surface seen by only one view counts 0. Fixed shapes: no host synchronisation.
    """
    V, h, w = depths.shape
    d = torch.nan_to_num(depths.float(), nan=0.0, posinf=0.0, neginf=0.0)
    valid = d > 0
    pts = unproject_depth(d, K.float(), c2w.float()).reshape(1, V * h * w, 3)
    uv, z = world_to_pixels(pts.expand(V, -1, -1), K.float(), c2w.float())   # [V_j, V_i*h*w]
    u = torch.nan_to_num(torch.round(uv[..., 0]), nan=-1.0)
    v = torch.nan_to_num(torch.round(uv[..., 1]), nan=-1.0)
    inside = torch.isfinite(z) & (z > 1e-6) & (u >= 0) & (u <= w - 1) & (v >= 0) & (v <= h - 1)
    idx = (v.clamp(0, h - 1) * w + u.clamp(0, w - 1)).long()
    dj = torch.gather(d.reshape(V, h * w), 1, idx)
    agree = inside & (dj > 0) & ((dj - z).abs() <= rel_tol * z)
    agree = agree.reshape(V, V, h * w) & ~torch.eye(V, dtype=torch.bool, device=d.device)[:, :, None]
    return agree.sum(0).reshape(V, h, w) * valid


def _leak_filter_and_fill(depth: Tensor, cfg: TargetDepthConfig, sync_free: bool,
                          measured: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """Drop leaked background pixels and fill small holes of a z-buffer ([H, W], NaN = empty).
    ``measured`` [H, W] bool marks the pixels whose surface is measured (sensor depth): past
    ``fill_iterations`` rounds, up to ``measured_fill_iterations`` fill only holes whose filled
    neighbours are all measured (a filled pixel is measured when they all were). Off the CPU
    every round runs (fixed work, no host synchronisation); on it the loop stops when a round
    fills nothing, since the next would not either. Returns the depth and the updated
    ``measured`` (None when not given)."""
    if cfg.leak_filter:
        nb = _neighbours(depth)
        nb_valid = torch.isfinite(nb)
        nb_valid[4] = False
        nearer = nb_valid & (nb < depth[None] * (1.0 - cfg.leak_tolerance))
        leaked = torch.isfinite(depth) & (2 * nearer.sum(0) > nb_valid.sum(0))
        depth = torch.where(leaked, torch.full_like(depth, float("nan")), depth)
    rounds = cfg.fill_iterations
    if measured is not None:
        rounds = max(rounds, cfg.measured_fill_iterations)
    for i in range(rounds):
        holes = ~torch.isfinite(depth)
        nb = _neighbours(depth)
        nb_valid = torch.isfinite(nb)
        cnt = nb_valid.sum(0)
        mean = torch.where(nb_valid, nb, torch.zeros_like(nb)).sum(0) / cnt.clamp(min=1)
        fill = holes & (cnt > 0)
        if measured is not None:
            nb_measured = _neighbours(measured.float()) > 0.5          # NaN outside: False
            all_measured = (nb_valid & ~nb_measured).sum(0) == 0
            if i >= cfg.fill_iterations:
                fill = fill & all_measured       # the measured-only rounds
            measured = torch.where(fill, all_measured, measured)
        if not sync_free and not bool(fill.any()):
            break                                # later rounds would change nothing
        depth = torch.where(fill, mean, depth)
    return depth, measured


def _tiered_zbuffer(src_depths: Tensor, src_K: Tensor, src_c2w: Tensor, K: Tensor, c2w: Tensor,
                    height: int, width: int, near: float | None, far: float | None,
                    cfg: TargetDepthConfig, sync_free: bool, src_measured: Tensor | None,
                    track_measured: bool = False) -> tuple[Tensor, Tensor, Tensor | None]:
    """The z-buffer of :func:`estimate_target_depth` after the leak filter and hole filling,
    before smoothing: ``depth`` [H, W] m (NaN = empty), ``tier`` [H, W] int64, 1 where the
    pixel came from trusted points (confirmed or measured; every point when the consistency
    check is off), 2 where only from the remaining points, 0 where empty, and with
    ``track_measured`` [H, W] bool: the pixels whose surface is measured (None otherwise)."""
    if src_depths.dim() != 3 or src_K.shape[-2:] != (3, 3) or src_c2w.shape[-2:] != (4, 4):
        raise ValueError("src_depths must be [V,h,w], src_K [V,3,3], src_c2w [V,4,4]")
    d = src_depths.detach().float()
    pts = unproject_depth(d, src_K.detach().float(), src_c2w.detach().float()).reshape(-1, 3)
    ok = (d.reshape(-1) > 0) & torch.isfinite(d.reshape(-1))
    f_src = torch.sqrt(src_K[:, 0, 0] * src_K[:, 1, 1]).float()          # [V]
    size = (d / f_src[:, None, None]).reshape(-1)                        # patch size, m

    measured = src_measured.reshape(-1) if src_measured is not None else None
    if measured is not None and not sync_free:
        # On the CPU the common cases take no extra z-buffer pass: every point measured (an
        # RGB-D camera with no hole) or none (RGB).
        n_meas = int((ok & measured).sum())
        if n_meas == 0:
            measured = None
    every_measured = measured is not None and not sync_free and n_meas == int(ok.sum())
    centre_tol, centre_points = None, None
    if cfg.footprint_depth == "centre":
        centre_tol = cfg.leak_tolerance
    elif cfg.footprint_depth == "measured_centre" and measured is not None:
        centre_tol = cfg.leak_tolerance
        centre_points = None if every_measured else measured
    extra_fill = measured is not None and cfg.measured_fill_iterations > cfg.fill_iterations
    flags_needed = measured is not None and (extra_fill or track_measured)
    flag_points = measured if flags_needed and not every_measured else None

    def splat_filled(keep: Tensor) -> tuple[Tensor, Tensor | None]:
        zb, flags = _zbuffer(pts, K.detach(), c2w.detach(), height, width, near, far, size,
                             cfg.max_splat_radius, keep, sync_free, centre_tol, centre_points,
                             flag_points, cfg.centre_mean_tolerance)
        zb = torch.where(torch.isfinite(zb), zb, torch.full_like(zb, float("nan")))
        if flags_needed and every_measured:
            flags = torch.ones_like(flags)
        return _leak_filter_and_fill(zb, cfg, sync_free, flags if flags_needed else None)

    if cfg.consistency_tolerance > 0 and d.shape[0] > 1:
        # Two tiers: points that other sources confirm first; the rest only where no
        # confirmed point reaches (so a wrong, too-near estimate of one source cannot hide
        # a surface that the others agree on, and nothing is left empty that was covered).
        if every_measured:
            # Every valid point is measured (RGB-D) and so trusted: the check would change
            # nothing, and at the camera's resolution it is most of D_T's time on the CPU.
            trusted = measured
        else:
            n_agree = consistent_views(d, src_K.detach().float(), src_c2w.detach().float(),
                                       cfg.consistency_tolerance).reshape(-1)
            trusted = n_agree >= cfg.consistency_min_views
            if measured is not None:
                trusted = trusted | measured
        confirmed, meas_first = splat_filled(ok & trusted)
        first = torch.isfinite(confirmed)
        if not sync_free and not bool((ok & ~trusted).any()):
            depth, meas = confirmed, meas_first   # every point trusted (e.g. RGB-D): one tier
        else:
            second, meas_second = splat_filled(ok)
            depth = torch.where(first, confirmed, second)
            meas = (torch.where(first, meas_first, meas_second)   # both None or neither
                    if meas_first is not None else None)
        tier = torch.where(first, 1, torch.where(torch.isfinite(depth), 2, 0))
    else:
        depth, meas = splat_filled(ok)
        tier = torch.isfinite(depth).long()
    if not track_measured:
        return depth, tier, None
    if meas is None:
        meas = torch.zeros_like(depth, dtype=torch.bool)
    return depth, tier, meas & torch.isfinite(depth)


@torch.no_grad()
def target_depth_tiers(src_depths: Tensor, src_K: Tensor, src_c2w: Tensor, K: Tensor,
                       c2w: Tensor, height: int, width: int, near: float | None = None,
                       far: float | None = None, cfg: TargetDepthConfig | None = None,
                       src_measured: Tensor | None = None) -> Tensor:
    """Where each pixel of :func:`estimate_target_depth` comes from (same arguments):
    [H, W] int64, 1 = points another source confirms (or measured ones), 2 = unconfirmed
    points only, 0 = no point (filled with the median). For diagnostics."""
    cfg = cfg or TargetDepthConfig()
    with torch.autocast(device_type=src_depths.device.type, enabled=False):
        return _tiered_zbuffer(src_depths, src_K, src_c2w, K, c2w, height, width, near, far,
                               cfg, _sync_free_default(src_depths.device), src_measured)[1]


@torch.no_grad()
def estimate_target_depth(src_depths: Tensor, src_K: Tensor, src_c2w: Tensor, K: Tensor,
                          c2w: Tensor, height: int, width: int, near: float | None = None,
                          far: float | None = None, cfg: TargetDepthConfig | None = None,
                          sync_free: bool | None = None, src_measured: Tensor | None = None
                          ) -> tuple[Tensor, Tensor]:
    """Estimate the target view's depth map D_T from the source views' depth maps.

    Shapes: ``src_depths`` [V, h, w] z-depth m (0 = invalid), ``src_K`` [V, 3, 3] for that size,
    ``src_c2w`` [V, 4, 4]; ``K`` [3, 3] for the target size ``height`` x ``width``, ``c2w`` [4, 4].
    Returns ``depth`` [H, W] (float32, m; holes are filled with the median valid depth, or the
    middle of [near, far]) and ``valid`` [H, W] bool (pixel supported by splatted points or
    filled from them within ``cfg.fill_iterations`` rounds).

    With ``cfg.consistency_tolerance`` > 0, estimated source depths are checked against each
    other (:func:`consistent_views`): points confirmed by ``cfg.consistency_min_views`` other
    sources, and measured points (``src_measured`` [V, h, w] bool: sensor depth, trusted as
    is), form the first z-buffer; the remaining points fill only what it leaves empty.
    ``sync_free`` (default: off the CPU) selects the z-buffer schedule, runs every fill round
    instead of stopping once no hole is left, and always builds the second tier (off it, the
    second tier is skipped when every point is trusted); the result is the same.
    """
    depth, valid, _ = _target_depth(src_depths, src_K, src_c2w, K, c2w, height, width, near,
                                    far, cfg, sync_free, src_measured, False)
    return depth, valid


@torch.no_grad()
def estimate_target_depth_measured(src_depths: Tensor, src_K: Tensor, src_c2w: Tensor,
                                   K: Tensor, c2w: Tensor, height: int, width: int,
                                   near: float | None = None, far: float | None = None,
                                   cfg: TargetDepthConfig | None = None,
                                   sync_free: bool | None = None,
                                   src_measured: Tensor | None = None
                                   ) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`estimate_target_depth` (same arguments and result) and [H, W] bool: the valid
    pixels whose surface is measured (a sensor depth's points decided it, or holes filled from
    measured neighbours only); all False without ``src_measured``."""
    depth, valid, measured = _target_depth(src_depths, src_K, src_c2w, K, c2w, height, width,
                                           near, far, cfg, sync_free, src_measured, True)
    assert measured is not None
    return depth, valid, measured


def _target_depth(src_depths: Tensor, src_K: Tensor, src_c2w: Tensor, K: Tensor, c2w: Tensor,
                  height: int, width: int, near: float | None, far: float | None,
                  cfg: TargetDepthConfig | None, sync_free: bool | None,
                  src_measured: Tensor | None, track_measured: bool
                  ) -> tuple[Tensor, Tensor, Tensor | None]:
    """:func:`estimate_target_depth`'s work (see there; defaults resolved here, autocast off),
    and the measured pixels when ``track_measured``."""
    cfg = cfg or TargetDepthConfig()
    if sync_free is None:
        sync_free = _sync_free_default(src_depths.device)
    with torch.autocast(device_type=src_depths.device.type, enabled=False):
        depth, _, measured = _tiered_zbuffer(src_depths, src_K, src_c2w, K, c2w, height, width,
                                             near, far, cfg, sync_free, src_measured,
                                             track_measured)
        valid = torch.isfinite(depth)
        if cfg.smooth:
            nb = _neighbours(depth)
            nb_valid = torch.isfinite(nb)
            offs = torch.tensor([2, 1, 2, 1, 0, 1, 2, 1, 2], device=depth.device, dtype=torch.float32)
            w_space = torch.exp(-offs / 2.0)[:, None, None]                 # sigma_space = 1 px
            sr = (cfg.smooth_range * depth).clamp(min=1e-6)[None]
            diff = torch.where(nb_valid, nb - depth[None], torch.zeros_like(nb))
            w = w_space * torch.exp(-0.5 * (diff / sr) ** 2) * nb_valid
            sm = (w * torch.where(nb_valid, nb, torch.zeros_like(nb))).sum(0) / w.sum(0).clamp(min=1e-12)
            depth = torch.where(valid, sm, depth)

        # Holes get the median valid depth (nanmedian: no masked gather, no synchronisation),
        # or the middle of [near, far] when nothing is valid.
        median = torch.nanmedian(torch.where(valid, depth, torch.full_like(depth, float("nan"))))
        default = 0.5 * (near + far) if near is not None and far is not None else 0.0
        fallback = torch.where(torch.isnan(median), torch.full_like(median, default), median)
        depth = torch.where(valid, depth, fallback)
        if near is not None or far is not None:
            depth = depth.clamp(min=near, max=far)
        return depth, valid, (measured & valid if measured is not None else None)


def floor_bound(enc: SourceEncoding, K: Tensor, c2w: Tensor, height: int, width: int,
                floor_z: float) -> tuple[SourceEncoding, Tensor]:
    """Bound every depth by the floor plane ``z = floor_z`` (m) of a z-up world frame: the
    sources' (:meth:`SourceEncoding.with_floor`, so D_T and the occlusion test) and the target's
    ``floor`` [H, W] m (``geometry.floor_depth`` of ``K`` [3, 3] for ``height`` x ``width``,
    ``c2w`` [4, 4]; ``inf`` where a ray does not meet the floor), which bounds D_T and the
    rendered depth (``torch.minimum``). ``ValueError`` for a non-finite ``floor_z``."""
    z = check_floor_z(floor_z)
    enc = enc.with_floor(z)
    dev = enc.image.device
    return enc, floor_depth(K.to(dev).float(), c2w.to(dev).float(), height, width, z)
