"""Target-view depth D_T (paper Algorithm 1) and its z-buffer against analytic scenes: planes
and walls seen from known poses, occlusion, leaks through magnified surfaces, the multi-view
consistency tiers, the footprint depth rule and the hole filling of measured depth."""

from __future__ import annotations

import math

import pytest
import torch

from gsnerf_ros.geometry import look_at, pixel_grid, unproject_depth, world_to_pixels
from gsnerf_ros.model.config import TargetDepthConfig
from gsnerf_ros.model.target_depth import (estimate_target_depth, estimate_target_depth_measured,
                                           zbuffer_splat)
from helpers.plane_scenes import intrinsics as _K, plane_view as _plane_view, translation as _translation


def test_target_depth_of_plane_matches_analytic_depth() -> None:
    """Sources see the wall Z = 3; D_T at a new (rotated, translated) pose matches the analytic
    ray-plane depth within 1% at every valid pixel, and >= 90% of pixels are valid."""
    H, W, z0 = 30, 40, 3.0
    K = _K(32.0, H, W)
    eyes = [(-0.4, -0.2, 0.0), (0.4, -0.2, 0.0), (-0.4, 0.25, 0.2), (0.4, 0.25, 0.2), (0.0, 0.0, -0.3)]
    src_c2w = torch.stack([look_at(torch.tensor(e), torch.tensor([0.0, 0.0, z0]),
                                   torch.tensor([0.0, -1.0, 0.0])) for e in eyes])
    src_depth = torch.stack([_plane_view(K, c, H, W, z0)[1] for c in src_c2w])
    tgt = look_at(torch.tensor([0.1, 0.05, 0.4]), torch.tensor([0.2, -0.1, z0]),
                  torch.tensor([0.0, -1.0, 0.0]))
    _, true = _plane_view(K, tgt, H, W, z0)
    est, valid = estimate_target_depth(src_depth, K.expand(5, 3, 3), src_c2w, K, tgt, H, W,
                                       near=0.1, far=10.0)
    assert est.shape == (H, W) and valid.dtype == torch.bool
    assert valid.float().mean() >= 0.9
    rel = ((est - true).abs() / true)[valid]
    assert float(rel.max()) < 0.01, f"max relative error {float(rel.max()):.4f}"
    # Deterministic.
    est2, valid2 = estimate_target_depth(src_depth, K.expand(5, 3, 3), src_c2w, K, tgt, H, W,
                                         near=0.1, far=10.0)
    assert torch.equal(est, est2) and torch.equal(valid, valid2)


def test_zbuffer_keeps_nearest_surface() -> None:
    """Points of a near square (z = 2) and a far wall (z = 4): the z-buffer keeps the near one
    wherever both project, whatever the order of the points."""
    H, W = 20, 20
    K = _K(20.0, H, W)
    c2w = _translation(0.0, 0.0, 0.0)
    far_pts = unproject_depth(torch.full((H, W), 4.0), K).reshape(-1, 3)
    near_depth = torch.full((H, W), 2.0)
    near_pts = unproject_depth(near_depth, K)[5:15, 5:15].reshape(-1, 3)
    for pts in (torch.cat([near_pts, far_pts]), torch.cat([far_pts, near_pts])):
        zb = zbuffer_splat(pts, K, c2w, H, W)
        assert torch.allclose(zb[5:15, 5:15], torch.full((10, 10), 2.0))
        outside = torch.ones(H, W, dtype=torch.bool)
        outside[5:15, 5:15] = False
        assert torch.allclose(zb[outside], torch.full_like(zb[outside], 4.0))
    # Points behind the camera never enter the z-buffer.
    behind = far_pts * torch.tensor([1.0, 1.0, -1.0])
    assert torch.isinf(zbuffer_splat(behind, K, c2w, H, W)).all()


def test_target_depth_two_surfaces_nearer_wins() -> None:
    """Two source depth maps from the target's own pose: a far wall everywhere and a near
    square (invalid elsewhere). D_T shows the square in front of the wall."""
    H, W = 24, 24
    K = _K(24.0, H, W)
    c2w = look_at(torch.tensor([0.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 1.0]),
                  torch.tensor([0.0, -1.0, 0.0]))
    wall = torch.full((H, W), 5.0)
    square = torch.zeros(H, W)
    square[6:18, 6:18] = 2.0
    cfg = TargetDepthConfig(smooth=False)
    for order in ((wall, square), (square, wall)):
        d, valid = estimate_target_depth(torch.stack(order), K.expand(2, 3, 3), c2w.expand(2, 4, 4),
                                         K, c2w, H, W, near=0.5, far=8.0, cfg=cfg)
        assert valid.all()
        assert torch.allclose(d[6:18, 6:18], torch.full((12, 12), 2.0))
        assert torch.allclose(d[:6], torch.full((6, W), 5.0))


def test_target_depth_magnified_surface_has_no_leaks() -> None:
    """A near plane seen by a half-resolution source (so its points land on every other target
    pixel) in front of a dense far wall: footprint splatting keeps the far wall from leaking
    through the gaps."""
    H, W = 20, 20
    K = _K(20.0, H, W)
    K_half = torch.tensor([[10.0, 0.0, 4.75], [0.0, 10.0, 4.75], [0.0, 0.0, 1.0]])
    c2w = _translation(0.0, 0.0, 0.0)
    near_pts = unproject_depth(torch.full((10, 10), 2.0), K_half).reshape(-1, 3)
    uv, _ = world_to_pixels(near_pts[None], K[None], c2w[None])
    assert torch.allclose(uv[0], pixel_grid(10, 10).reshape(-1, 2) * 2, atol=1e-4)  # every other px
    src = torch.zeros(2, H, W)
    src[0] = 4.0
    src[1, :10, :10] = 2.0
    Ks = torch.stack([K, K_half])
    for radius in (0, 2):
        d, valid = estimate_target_depth(src, Ks, c2w.expand(2, 4, 4), K, c2w, H, W, near=0.5,
                                         far=8.0, cfg=TargetDepthConfig(smooth=False,
                                                                        leak_filter=False,
                                                                        max_splat_radius=radius))
        leaked = (d[:-1, :-1] > 3.0).float().mean()
        if radius == 0:
            assert leaked > 0.5          # without footprints the wall shows through the gaps
        else:
            assert leaked == 0.0
            assert torch.allclose(d[:-1, :-1], torch.full((H - 1, W - 1), 2.0))
    assert valid.all()


def test_target_depth_unseen_region_is_invalid() -> None:
    """Pixels no source sees (beyond the hole-filling radius) are invalid and get the fallback."""
    H, W = 20, 20
    K = _K(20.0, H, W)
    src_c2w = _translation(0.0, 0.0, 0.0)
    side = look_at(torch.zeros(3), torch.tensor([1.0, 0.0, 2.5]), torch.tensor([0.0, -1.0, 0.0]))
    d2, valid2 = estimate_target_depth(torch.full((1, H, W), 4.0), K[None], src_c2w[None], K, side,
                                       H, W, near=0.5, far=8.0,
                                       cfg=TargetDepthConfig(fill_iterations=2))
    assert not valid2.all() and valid2.any()
    assert torch.isfinite(d2).all() and (d2 >= 0.5).all() and (d2 <= 8.0).all()
    assert math.isclose(float(d2[~valid2][0]), float(d2[valid2].median()), rel_tol=1e-6)


def _wall_views(H: int, W: int, xs: list[float], z_wall: float = 4.0):  # type: ignore[no-untyped-def]
    """Cameras at (x, 0, 0) looking down +z at the fronto-parallel wall Z = ``z_wall``: K, c2w
    [V, 4, 4] and the exact depth maps [V, H, W] (every pixel sees the wall at z_wall)."""
    K = _K(float(W), H, W)
    c2w = torch.stack([_translation(x, 0.0, 0.0) for x in xs])
    return K, c2w, torch.full((len(xs), H, W), z_wall)


def test_consistent_views_counts_agreeing_sources_and_rejects_outliers() -> None:
    """Three cameras 0.4 m apart see one wall. Exact depths are confirmed by the other views
    that see the point (both neighbours in the overlap); a patch of view 0 estimated 40 % too
    near, a 5 % error (beyond the 2 % tolerance) and invalid pixels are confirmed by none; a 1 %
    error is within it."""
    from gsnerf_ros.model.target_depth import consistent_views

    H, W = 16, 20
    K, c2w, depth = _wall_views(H, W, [0.0, 0.4, 0.8])
    Ks = K.expand(3, 3, 3)
    n = consistent_views(depth, Ks, c2w, 0.02)
    assert n.shape == (3, H, W) and n.dtype == torch.int64
    # View 1 (middle): its points are inside both other images over the central columns.
    # A wall point at x_w projects to u = W*(x_w - x_cam)/4 + (W-1)/2 in each camera.
    assert (n[1, :, 4:16] == 2).all()
    assert (n <= 2).all() and (n[0] >= 1).float().mean() > 0.5
    bad = depth.clone()
    bad[0, 4:12, 10:16] = 2.4                             # too near in view 0
    bad[0, 0:2, 10:16] = 4.0 * 1.05                       # 5 % off
    bad[0, 14:16, 10:16] = 4.0 * 1.01                     # 1 % off
    bad[0, 2:4, 10:16] = 0.0                              # no estimate
    n = consistent_views(bad, Ks, c2w, 0.02)
    assert (n[0, 4:12, 10:16] == 0).all() and (n[0, 0:4, 10:16] == 0).all()
    assert (n[0, 14:16, 10:16] >= 1).all()
    # The other views' points that land on the corrupted patch of view 0 lose that vote only.
    assert (n[1, :, 4:16] >= 1).all()


def test_target_depth_consistency_drops_unconfirmed_near_outliers() -> None:
    """A patch of one source estimated far too near hides the wall in D_T when every point
    counts alike (the z-buffer keeps the nearest); with the consistency check the confirmed wall
    wins there, the patch is kept when it is a sensor measurement (trusted), and a region that
    only one source sees is still filled from it."""
    H, W = 16, 20
    K, c2w, depth = _wall_views(H, W, [-0.4, 0.0, 0.4])
    Ks = K.expand(3, 3, 3)
    tgt = _translation(0.1, 0.0, 0.0)
    bad = depth.clone()
    bad[1, 4:12, 6:14] = 2.0
    off = TargetDepthConfig(smooth=False, consistency_tolerance=0.0)
    on = TargetDepthConfig(smooth=False)
    assert on.consistency_tolerance > 0                   # on by default
    d_off, _ = estimate_target_depth(bad, Ks, c2w, K, tgt, H, W, 0.5, 8.0, cfg=off)
    d_on, valid = estimate_target_depth(bad, Ks, c2w, K, tgt, H, W, 0.5, 8.0, cfg=on)
    assert (d_off < 3.0).float().mean() > 0.15            # the outlier shows
    assert valid.all() and torch.allclose(d_on, torch.full((H, W), 4.0), atol=1e-4)
    # The fixed-shape (CUDA) schedule agrees with the CPU one, also when every point is trusted
    # (the CPU schedule then skips the second tier).
    all_measured = torch.ones(3, H, W, dtype=torch.bool)
    for depths, meas in ((bad, None), (depth, None), (bad, all_measured)):
        a, va = estimate_target_depth(depths, Ks, c2w, K, tgt, H, W, 0.5, 8.0, cfg=on,
                                      sync_free=False, src_measured=meas)
        b, vb = estimate_target_depth(depths, Ks, c2w, K, tgt, H, W, 0.5, 8.0, cfg=on,
                                      sync_free=True, src_measured=meas)
        assert torch.equal(va, vb) and torch.allclose(a, b, rtol=0, atol=1e-6)
    measured = torch.zeros(3, H, W, dtype=torch.bool)
    measured[1, 4:12, 6:14] = True
    d_meas, _ = estimate_target_depth(bad, Ks, c2w, K, tgt, H, W, 0.5, 8.0, cfg=on,
                                      src_measured=measured)
    assert torch.allclose(d_meas, d_off)
    # Only view 2 has an estimate on the image's right part, so nothing confirms it there; the
    # target still gets it (second tier), not a hole or the fallback.
    lone = depth.clone()
    lone[:2, :, 10:] = 0.0
    d_lone, valid = estimate_target_depth(lone, Ks, c2w, K, tgt, H, W, 0.5, 8.0, cfg=on)
    assert valid.all() and torch.allclose(d_lone, torch.full((H, W), 4.0), atol=1e-4)


def test_target_depth_tiers_and_the_sources_that_see_a_target_pixel() -> None:
    """``target_depth_tiers`` says which D_T pixels come from confirmed points (1) and which
    only from unconfirmed ones (2); ``sources_seeing_target`` counts the sources whose
    ground-truth depth sees a target pixel's surface, so a source whose view of it is occluded
    does not count."""
    from gsnerf_ros.model.target_depth import target_depth_tiers
    from gsnerf_ros.train.depth_probe import sources_seeing_target

    H, W = 16, 20
    K, c2w, depth = _wall_views(H, W, [-0.4, 0.0, 0.4])
    Ks = K.expand(3, 3, 3)
    tgt = _translation(0.1, 0.0, 0.0)
    on = TargetDepthConfig(smooth=False, fill_iterations=1)
    tier = target_depth_tiers(depth, Ks, c2w, K, tgt, H, W, 0.5, 8.0, cfg=on)
    assert tier.shape == (H, W) and tier.dtype == torch.int64 and (tier == 1).all()
    # Views 0 and 1 have no estimate on their right halves: the target's right part then sees
    # the wall only through view 2, which nothing confirms there.
    lone = depth.clone()
    lone[:2, :, 10:] = 0.0
    tier = target_depth_tiers(lone, Ks, c2w, K, tgt, H, W, 0.5, 8.0, cfg=on)
    assert (tier[:, :6] == 1).all() and (tier[:, -4:] == 2).all()
    assert set(tier.unique().tolist()) == {1, 2}
    off = TargetDepthConfig(smooth=False, fill_iterations=1, consistency_tolerance=0.0)
    assert (target_depth_tiers(lone, Ks, c2w, K, tgt, H, W, 0.5, 8.0, cfg=off) == 1).all()
    # Ground-truth coverage: the middle of the target is seen by all three sources.
    gt = torch.full((H, W), 4.0)
    seen = sources_seeing_target(depth, Ks, c2w, K, tgt, gt, 0.5, 8.0)
    assert seen.shape == (H, W) and seen.dtype == torch.int64
    assert (seen[:, 6:14] == 3).all() and (seen >= 1).all() and (seen <= 3).all()
    # An object 2 m away fills view 2's left half: the wall behind it is seen by views 0 and 1
    # only (target columns up to 13: the nearer object also covers, by parallax, some of the
    # wall that view 2 sees beside it); further right all three see it.
    occluded = depth.clone()
    occluded[2, :, :10] = 2.0
    seen2 = sources_seeing_target(occluded, Ks, c2w, K, tgt, gt, 0.5, 8.0)
    assert (seen2 <= seen).all() and (seen2[:, 6:12] == 2).all() and (seen2[:, 14:17] == 3).all()
    gt_holes = gt.clone()
    gt_holes[:4] = 0.0                                   # no ground truth: counted by none
    assert (sources_seeing_target(depth, Ks, c2w, K, tgt, gt_holes, 0.5, 8.0)[:4] == 0).all()


def test_zbuffer_sync_free_schedule_equals_grouped() -> None:
    """The fixed-shape schedule (no host-device synchronisation, used on CUDA) gives the same
    z-buffer as the grouped one (used on CPU), bit for bit: footprints of several radii,
    points behind the camera, outside the image, outside [near, far] and masked invalid."""
    gen = torch.Generator().manual_seed(3)
    H, W = 24, 32
    K = _K(30.0, H, W)
    c2w = look_at(torch.tensor([0.1, -0.2, 0.0]), torch.tensor([0.0, 0.0, 3.0]),
                  torch.tensor([0.0, -1.0, 0.0]))
    pts = torch.rand(3000, 3, generator=gen) * torch.tensor([6.0, 6.0, 8.0]) - torch.tensor(
        [3.0, 3.0, 2.0])
    size = torch.rand(3000, generator=gen) * 0.3
    valid = torch.rand(3000, generator=gen) > 0.2
    for radius in (0, 1, 3):
        a = zbuffer_splat(pts, K, c2w, H, W, 0.5, 5.0, point_size=size, max_radius=radius,
                          valid=valid, sync_free=False)
        b = zbuffer_splat(pts, K, c2w, H, W, 0.5, 5.0, point_size=size, max_radius=radius,
                          valid=valid, sync_free=True)
        assert torch.isfinite(a).any() and torch.isinf(a).any()
        assert torch.equal(a, b)
    # A masked point never lands: the only point, masked out, leaves the buffer empty.
    one = torch.tensor([[0.0, 0.0, 3.0]])
    for sf in (False, True):
        assert torch.isinf(zbuffer_splat(one, K, c2w, H, W, valid=torch.tensor([False]),
                                         sync_free=sf)).all()
        assert torch.isfinite(zbuffer_splat(one, K, c2w, H, W, sync_free=sf)).sum() == 1


def _slanted_wall_views():  # type: ignore[no-untyped-def]
    """Two sources that see the wall Z = 3 obliquely from about 4 m, and a target 2 m from it
    that sees the same wall magnified (a source pixel covers more than one target pixel):
    K [3, 3], source poses [2, 4, 4], their exact depths [2, H, W], target pose and its exact
    depth [H, W]."""
    H, W, z0 = 30, 40, 3.0
    K = _K(32.0, H, W)
    up = torch.tensor([0.0, -1.0, 0.0])
    aim = torch.tensor([1.2, 0.0, z0])
    src = torch.stack([look_at(torch.tensor(e), aim, up) for e in ((-1.0, 0.0, 0.0),
                                                                   (-1.0, 0.3, -0.2))])
    depths = torch.stack([_plane_view(K, c, H, W, z0)[1] for c in src])
    tgt = look_at(torch.tensor([0.2, 0.1, 1.2]), aim, up)
    return K, src, depths, tgt, _plane_view(K, tgt, H, W, z0)[1]


def test_centre_footprint_depth_removes_the_bias_towards_the_camera() -> None:
    """Measured depth of a slanted wall, splatted into a target that sees it magnified: with
    ``footprint_depth: point`` each footprint pixel takes the nearest overlapping point's depth,
    so D_T is too near on average; with ``centre`` the footprints decide only the surface and
    the depth comes from the points at the pixel centres: the bias and most of the error go.
    Both z-buffer schedules agree."""
    K, src, depths, tgt, true = _slanted_wall_views()
    H, W = true.shape
    err = {}
    for rule in ("point", "centre"):
        cfg = TargetDepthConfig(footprint_depth=rule, smooth=False)
        out = [estimate_target_depth(depths, K.expand(2, 3, 3), src, K, tgt, H, W, 0.1, 10.0,
                                     cfg, src_measured=depths > 0, sync_free=sf)
               for sf in (False, True)]
        assert torch.equal(out[0][0], out[1][0]) and torch.equal(out[0][1], out[1][1])
        est, valid = out[0]
        assert valid.all()
        rel = (est - true) / true
        err[rule] = (float(rel.mean()), float(rel.abs().mean()))
    assert err["point"][0] < -0.008                       # biased towards the camera
    assert abs(err["centre"][0]) < 0.003
    assert err["centre"][1] < 0.5 * err["point"][1]
    # measured_centre: the centre rule where the surface a pixel sees is measured. Three rows
    # of view 1 are a sensor's hole filled by an estimate 8 % too far; the measured wall of
    # view 0 in front of it keeps the rule (a depth camera's holes do not turn it off).
    rules = {r: TargetDepthConfig(footprint_depth=r, smooth=False)
             for r in ("point", "centre", "measured_centre")}

    def render(depth: torch.Tensor, rule: str, measured, sf: bool = False):  # type: ignore[no-untyped-def]
        return estimate_target_depth(depth, K.expand(2, 3, 3), src, K, tgt, H, W, 0.1, 10.0,
                                     rules[rule], src_measured=measured, sync_free=sf)

    for measured, same_as in ((depths > 0, "centre"), (None, "point")):
        for sf in (False, True):
            want, got = render(depths, same_as, measured, sf), render(depths, "measured_centre",
                                                                      measured, sf)
            assert torch.equal(want[0], got[0]) and torch.equal(want[1], got[1]), (same_as, sf)
    holey = depths.clone()
    holey[1, :3] *= 1.08
    some = depths > 0
    some[1, :3] = False
    out = {}
    for rule in ("point", "measured_centre"):
        a, b = render(holey, rule, some, False), render(holey, rule, some, True)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]), rule
        rel = (a[0] - true) / true
        out[rule] = (float(rel.mean()), float(rel.abs().mean()))
    assert abs(out["measured_centre"][0]) < 0.003
    assert out["measured_centre"][1] < 0.5 * out["point"][1]
    with pytest.raises(ValueError, match="footprint_depth"):
        TargetDepthConfig(footprint_depth="mean")


def test_zbuffer_centre_values_keep_the_footprints_surface() -> None:
    """``centre_tolerance``: a pixel keeps the depth of the point landing nearest its centre only
    where that point is on the surface the footprints show; a background point whose centre
    falls inside a nearer point's footprint leaves the pixel empty (not the background), and so
    does a footprint that no centre confirms. The same with both schedules."""
    H, W = 8, 8
    K = _K(8.0, H, W)
    c2w = _translation(0.0, 0.0, 0.0)
    near = unproject_depth(torch.full((H, W), 2.0), K)[4, 4]          # pixel (4, 4), 2 m
    far = unproject_depth(torch.full((H, W), 4.0), K)[4, 5]           # its right neighbour, 4 m
    beside = unproject_depth(torch.full((H, W), 2.04), K)[3, 4]       # above it, 2.04 m
    pts = torch.stack([near, far, beside])
    size = torch.tensor([2.0 * 2.0 / 8.0, 1e-3, 1e-3])                # near: 2 px wide
    for sf in (False, True):
        point = zbuffer_splat(pts, K, c2w, H, W, point_size=size, max_radius=1, sync_free=sf)
        assert float(point[4, 5]) == 2.0 and float(point[3, 4]) == 2.0   # footprint values
        centre = zbuffer_splat(pts, K, c2w, H, W, point_size=size, max_radius=1, sync_free=sf,
                               centre_tolerance=0.05)
        assert float(centre[4, 4]) == 2.0
        assert math.isclose(float(centre[3, 4]), 2.04, rel_tol=1e-6)  # its own depth, in tolerance
        assert torch.isinf(centre[4, 5])                              # hidden background
        assert torch.isinf(centre[5, 5])                              # footprint only
        assert int(torch.isfinite(centre).sum()) == 2


def test_measured_fill_iterations_fill_wider_holes_of_measured_depth() -> None:
    """A band of the wall no source measured, wider than ``fill_iterations`` rounds can close.
    Past those rounds, up to ``measured_fill_iterations`` fill a hole only from neighbours that
    are all measured. So the band is filled (valid, the wall's depth) where its borders are
    measured, and from a measured border only where the other is an estimate (only the
    estimated view sees it, or nothing is measured beyond it): the fill stops short of the
    estimate; with nothing measured only ``fill_iterations`` run and
    the band's middle stays a hole (the median fallback, not valid). -1 keeps
    ``fill_iterations``. Both schedules agree."""
    H, W = 16, 24
    K, c2w, depth = _wall_views(H, W, [-0.1, 0.1])
    depth[:, :, 8:16] = 0.0                                   # nothing measured there
    Ks = K.expand(2, 3, 3)
    tgt = _translation(0.0, 0.0, 0.0)
    cfg = TargetDepthConfig(smooth=False, fill_iterations=1, measured_fill_iterations=8,
                            consistency_tolerance=0.0)      # one z-buffer, no second tier
    mixed = depth > 0
    mixed[1] = False                                          # view 1 is an estimate
    left = depth > 0
    left[:, :, 16:] = False                                   # measured left of the band only
    n_valid = {}
    for name, meas in (("all", depth > 0), ("mixed", mixed), ("left", left), ("none", None)):
        out = [estimate_target_depth(depth, Ks, c2w, K, tgt, H, W, 0.5, 8.0, cfg=cfg,
                                     src_measured=meas, sync_free=sf) for sf in (False, True)]
        assert torch.equal(out[0][0], out[1][0]) and torch.equal(out[0][1], out[1][1]), name
        d, valid = out[0]
        n_valid[name] = int(valid.sum())
        assert torch.allclose(d[valid], torch.full_like(d[valid], 4.0), atol=1e-4)
    assert n_valid["all"] == H * W
    assert n_valid["none"] < n_valid["left"] < H * W
    assert n_valid["none"] < n_valid["mixed"] < H * W
    same = TargetDepthConfig(smooth=False, fill_iterations=1)
    assert same.measured_fill_iterations == -1
    d, valid = estimate_target_depth(depth, Ks, c2w, K, tgt, H, W, 0.5, 8.0, cfg=same,
                                     src_measured=depth > 0)
    assert not valid.all()
    with pytest.raises(ValueError, match="measured_fill_iterations"):
        TargetDepthConfig(measured_fill_iterations=-2)


def test_centre_mean_removes_the_bias_of_noisy_measurements() -> None:
    """Six depth cameras with 1 % noise see a wall: the centre rule's nearest point per pixel
    is biased towards the camera by about the noise, the mean of the points within
    ``centre_mean_tolerance`` of it is not (and is closer). Both schedules agree to the bit.
    A point beyond the tolerance (another surface) never enters the mean."""
    H, W = 16, 24
    K, c2w, depth = _wall_views(H, W, [-0.15, -0.09, -0.03, 0.03, 0.09, 0.15])
    gen = torch.Generator().manual_seed(5)
    noisy = depth * (1 + 0.01 * torch.randn(depth.shape, generator=gen))
    Ks, tgt = K.expand(6, 3, 3), _translation(0.0, 0.0, 0.0)
    err = {}
    for tol in (0.0, 0.05):
        cfg = TargetDepthConfig(footprint_depth="centre", centre_mean_tolerance=tol,
                                smooth=False, consistency_tolerance=0.0)
        out = [estimate_target_depth(noisy, Ks, c2w, K, tgt, H, W, 0.5, 8.0, cfg=cfg,
                                     src_measured=noisy > 0, sync_free=sf) for sf in (False, True)]
        assert torch.equal(out[0][0], out[1][0]) and torch.equal(out[0][1], out[1][1]), tol
        d, valid = out[0]
        inner = valid[:, 4:-4]
        rel = (d[:, 4:-4][inner] - 4.0) / 4.0
        err[tol] = (float(rel.mean()), float(rel.abs().mean()))
    assert err[0.0][0] < -0.005                          # the nearest: too near
    assert abs(err[0.05][0]) < 0.002                     # the mean: unbiased
    assert err[0.05][1] < 0.5 * err[0.0][1]
    # By hand: three points on one pixel at 2.00, 2.02 and 2.50 m.
    pix = unproject_depth(torch.ones(8, 8), _K(8.0, 8, 8))[4, 4]
    pts = torch.stack([pix * z for z in (2.0, 2.02, 2.5)])
    for sf in (False, True):
        kw = dict(point_size=torch.full((3,), 1e-3), max_radius=1, sync_free=sf,
                  centre_tolerance=0.05)
        one = zbuffer_splat(pts, _K(8.0, 8, 8), _translation(0.0, 0.0, 0.0), 8, 8, **kw)
        mean = zbuffer_splat(pts, _K(8.0, 8, 8), _translation(0.0, 0.0, 0.0), 8, 8,
                             centre_mean=0.05, **kw)
        assert float(one[4, 4]) == 2.0
        assert math.isclose(float(mean[4, 4]), 2.01, rel_tol=1e-6)
        assert int(torch.isfinite(mean).sum()) == 1
    with pytest.raises(ValueError, match="centre_mean_tolerance"):
        TargetDepthConfig(centre_mean_tolerance=1.0)


def test_measured_pixels_of_target_depth() -> None:
    """``estimate_target_depth_measured``: the same D_T and validity, and the valid pixels
    whose surface is measured: all of them when every source is, none without measurements,
    and with one source an estimate only where the measured one decides the pixel."""
    H, W = 16, 24
    K, c2w, depth = _wall_views(H, W, [-0.1, 0.1])
    depth[1] *= 0.99                          # view 1 nearer, within the consistency check
    Ks, tgt = K.expand(2, 3, 3), _translation(0.0, 0.0, 0.0)
    one = depth > 0
    one[1] = False
    for meas in (depth > 0, one, None):
        for sf in (False, True):
            d, valid = estimate_target_depth(depth, Ks, c2w, K, tgt, H, W, 0.5, 8.0,
                                             src_measured=meas, sync_free=sf)
            d2, valid2, measured = estimate_target_depth_measured(
                depth, Ks, c2w, K, tgt, H, W, 0.5, 8.0, src_measured=meas, sync_free=sf)
            assert torch.equal(d, d2) and torch.equal(valid, valid2)
            assert not (measured & ~valid).any()
            if meas is None:
                assert not measured.any()
            elif meas is one:           # the nearer estimate wins the z-buffer: not measured
                assert not measured[:, 6:-6].any()
            else:
                assert torch.equal(measured, valid)
