"""Geometry of the model against analytic scenes: projection round trips, homography warping of
a textured fronto-parallel plane, target-depth estimation and the z-buffer."""

from __future__ import annotations

import math

import pytest

import torch

from gsnerf_ros.geometry import (
    camera_rays,
    look_at,
    make_pose,
    pixel_grid,
    unproject_depth,
    world_to_pixels,
)
from gsnerf_ros.model.config import TargetDepthConfig
from gsnerf_ros.model.cost_volume import group_correlation, homography_warp
from gsnerf_ros.model.target_depth import estimate_target_depth, zbuffer_splat

torch.manual_seed(0)


def _K(f: float, H: int, W: int) -> torch.Tensor:
    return torch.tensor([[f, 0.0, (W - 1) / 2], [0.0, f, (H - 1) / 2], [0.0, 0.0, 1.0]])


def _translation(x: float, y: float, z: float) -> torch.Tensor:
    return make_pose(torch.eye(3), torch.tensor([x, y, z]))


def _texture(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """A smooth, non-periodic-looking texture on the plane. -> [3, ...]."""
    return torch.stack([0.5 + 0.5 * torch.sin(7.0 * X + 3.0 * Y),
                        0.5 + 0.5 * torch.cos(5.0 * Y - 2.0 * X * Y),
                        0.5 + 0.5 * torch.sin(11.0 * X * X + 4.0 * Y)])


def _plane_view(K: torch.Tensor, c2w: torch.Tensor, H: int, W: int, z0: float
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Image [3,H,W] and z-depth [H,W] of the world plane Z = z0 seen by a camera."""
    uv = pixel_grid(H, W).reshape(-1, 2)
    o, d = camera_rays(uv, K, c2w)
    t = (z0 - o[:, 2]) / d[:, 2]
    X = o + t[:, None] * d
    img = _texture(X[:, 0], X[:, 1]).reshape(3, H, W)
    z_cam = world_to_pixels(X[None], K[None], c2w[None])[1][0]
    return img, z_cam.reshape(H, W)


def test_unproject_project_round_trip() -> None:
    H, W = 12, 16
    K = _K(20.0, H, W)
    c2w = look_at(torch.tensor([0.3, -1.0, 0.5]), torch.tensor([0.0, 0.5, 2.0]))
    depth = 1.0 + torch.rand(H, W) * 3.0
    pts = unproject_depth(depth, K, c2w).reshape(-1, 3)
    uv, z = world_to_pixels(pts[None], K[None], c2w[None])
    torch.testing.assert_close(uv[0], pixel_grid(H, W).reshape(-1, 2), atol=1e-4, rtol=0)
    torch.testing.assert_close(z[0], depth.reshape(-1), atol=1e-5, rtol=1e-5)


def test_camera_rays_parameter_is_z_depth() -> None:
    H, W = 8, 10
    K = _K(12.0, H, W)
    c2w = look_at(torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 2.0, 1.0]))
    uv = pixel_grid(H, W).reshape(-1, 2)
    o, d = camera_rays(uv, K, c2w)
    t = torch.linspace(0.5, 4.0, uv.shape[0])
    _, z = world_to_pixels((o + t[:, None] * d)[None], K[None], c2w[None])
    torch.testing.assert_close(z[0], t, atol=1e-5, rtol=1e-5)


def test_homography_warp_recovers_plane_depth() -> None:
    """Warping a source view of a textured fronto-parallel plane onto depth hypotheses: the
    best-matching plane is the true depth (within one plane spacing)."""
    H, W, z0 = 48, 64, 2.3
    K = _K(50.0, H, W)
    ref_c2w = _translation(0.0, 0.0, 0.0)
    src_c2w = torch.stack([_translation(0.25, 0.0, 0.0), _translation(-0.2, 0.1, 0.0)])
    ref_img, ref_depth = _plane_view(K, ref_c2w, H, W, z0)
    src_imgs = torch.stack([_plane_view(K, c, H, W, z0)[0] for c in src_c2w])
    torch.testing.assert_close(ref_depth, torch.full((H, W), z0), atol=1e-5, rtol=0)

    planes_1d = torch.linspace(1.0, 4.0, 61)                         # spacing 0.05 m
    planes = planes_1d[:, None, None].expand(-1, H, W).contiguous()
    src_from_ref = torch.linalg.inv(src_c2w) @ ref_c2w
    warped, valid = homography_warp(src_imgs, K.expand(2, 3, 3), src_from_ref, K, planes)
    assert warped.shape == (2, 3, 61, H, W) and valid.shape == (2, 61, H, W)
    err = ((warped - ref_img[None, :, None]) ** 2).mean(1)           # [M, D, H, W]
    vm = valid.float()
    cost = (err * vm).sum((0, 2, 3)) / vm.sum((0, 2, 3)).clamp(min=1)
    best = planes_1d[cost.argmin()]
    assert abs(float(best) - z0) <= 0.05 + 1e-6, f"best plane {best} vs true {z0}"

    # Group-wise correlation: per group, the mean over its channels of ref * warped, averaged
    # over the neighbours that see the (plane, pixel).
    ref_f = torch.randn(8, H, W)
    wf = torch.randn(2, 8, 61, H, W)
    corr = group_correlation(ref_f, wf, valid, groups=4)
    assert corr.shape == (4, 61, H, W)
    prod = (wf * ref_f[None, :, None]).reshape(2, 4, 2, 61, H, W).mean(2)
    expect = (prod * vm[:, None]).sum(0) / vm[:, None].sum(0).clamp(min=1)
    torch.testing.assert_close(corr, expect)
    # Cosine: G x the cosine similarity split over the groups, as with F.normalize on both
    # features (zero vectors give 0, not NaN), in value and in gradient.
    wf[0, :, 3, 2, 2] = 0.0
    ref_f[:, 1, 1] = 0.0
    rf, ww = ref_f.clone().requires_grad_(), wf.clone().requires_grad_()
    corr = group_correlation(rf, ww, valid, groups=4, normalize=True)
    rf2, ww2 = ref_f.clone().requires_grad_(), wf.clone().requires_grad_()
    prod = (torch.nn.functional.normalize(ww2, dim=1, eps=1e-6)
            * torch.nn.functional.normalize(rf2, dim=0, eps=1e-6)[None, :, None])
    prod = prod.reshape(2, 4, 2, 61, H, W).sum(2) * 4
    expect = (prod * vm[:, None]).sum(0) / vm[:, None].sum(0).clamp(min=1)
    torch.testing.assert_close(corr, expect)
    assert torch.isfinite(corr).all() and corr.abs().max() <= 4 + 1e-5
    torch.testing.assert_close(corr.sum(0), 4 * ((torch.nn.functional.cosine_similarity(
        wf, ref_f[None, :, None], dim=1, eps=1e-6) * vm).sum(0) / vm.sum(0).clamp(min=1)))
    g = torch.randn_like(corr)
    (corr * g).sum().backward()
    (expect * g).sum().backward()
    torch.testing.assert_close(rf.grad, rf2.grad)
    torch.testing.assert_close(ww.grad, ww2.grad)


def test_homography_warp_points_behind_camera_are_invalid() -> None:
    H, W = 8, 8
    K = _K(8.0, H, W)
    flip = make_pose(torch.diag(torch.tensor([-1.0, 1.0, -1.0])), torch.zeros(3))  # looks backwards
    planes = torch.full((2, H, W), 2.0)
    warped, valid = homography_warp(torch.rand(1, 3, H, W), K[None], flip[None], K, planes)
    assert not valid.any()
    assert torch.all(warped == 0)


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


def test_look_at_gives_upright_optical_frame() -> None:
    """Looking along +y with +z up: image right is +x world, image down is -z world."""
    from gsnerf_ros.geometry import look_at

    c2w = look_at(torch.tensor([0.0, 0.0, 1.5]), torch.tensor([0.0, 2.0, 1.5]))
    R = c2w[:3, :3]
    assert torch.allclose(R[:, 0], torch.tensor([1.0, 0.0, 0.0]), atol=1e-6)
    assert torch.allclose(R[:, 1], torch.tensor([0.0, 0.0, -1.0]), atol=1e-6)
    assert torch.allclose(R[:, 2], torch.tensor([0.0, 1.0, 0.0]), atol=1e-6)
    assert torch.allclose(torch.linalg.det(R), torch.tensor(1.0), atol=1e-6)
    # A point above the optical axis projects above the image centre (smaller v).
    from gsnerf_ros.geometry import world_to_pixels
    K = torch.tensor([[100.0, 0, 50], [0, 100.0, 50], [0, 0, 1]])
    uv, z = world_to_pixels(torch.tensor([[0.0, 2.0, 2.0]]), K, c2w)
    assert uv[0, 1] < 50 and z[0] > 0


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


def test_lateral_baseline_share_separates_forward_from_sideways_motion() -> None:
    """0 when camera b lies on a's optical axis (a robot driving forward), 1 when it is beside
    it, 0.5 at 45 degrees; the same after any rigid motion of both; NaN for one centre."""
    from gsnerf_ros.geometry import lateral_baseline_share, quat_to_matrix

    eye = torch.tensor([0.5, -0.2, 1.0])
    a = look_at(eye, eye + torch.tensor([0.0, 0.0, 2.0]))       # optical axis +z (world)
    z, x = a[:3, 2], a[:3, 0]

    def at(c: torch.Tensor) -> torch.Tensor:
        p = a.clone()
        p[:3, 3] = c
        return p

    b = torch.stack([at(eye + 0.7 * z), at(eye - 0.3 * z), at(eye + 0.4 * x),
                     at(eye + 0.5 * x + 0.5 * z)])
    got = lateral_baseline_share(a.expand(4, 4, 4), b)
    assert torch.allclose(got, torch.tensor([0.0, 0.0, 1.0, 0.5]), atol=1e-6)
    # Rigid motion of both cameras leaves it unchanged; it is not symmetric in general.
    q = torch.nn.functional.normalize(torch.tensor([0.9, 0.1, -0.3, 0.2]), dim=0)
    R = make_pose(quat_to_matrix(q), torch.tensor([1.0, 2.0, 3.0]))
    moved = lateral_baseline_share((R @ a).expand(4, 4, 4), R @ b)
    assert torch.allclose(moved, got, atol=1e-5)
    assert bool(torch.isnan(lateral_baseline_share(a, a)))
    # A set's pairs leave out the ones without a baseline (two cameras at one centre).
    from gsnerf_ros.geometry import neighbour_lateral_shares

    shares = neighbour_lateral_shares(torch.stack([a, a, at(eye + 0.4 * x)]), 2)
    assert shares.shape == (4,) and torch.allclose(shares, torch.ones(4))


# --- triangulation neighbours -------------------------------------------------------------
from gsnerf_ros.geometry import (TriangulationBand, angle_band, choose_neighbours,  # noqa: E402
                                 nearest_views, pose_distance, scene_depth_prior,
                                 triangulation_neighbours, triangulation_scores)

_K320 = torch.tensor([[160.0, 0.0, 159.5], [0.0, 160.0, 119.5], [0.0, 0.0, 1.0]])


def _robot_cam(x: float, y: float, yaw_deg: float = 0.0, z: float = 0.4) -> torch.Tensor:
    """A camera at (x, y, z) looking along +y turned by ``yaw_deg`` about world z."""
    a = math.radians(yaw_deg)
    eye = torch.tensor([x, y, z])
    return look_at(eye, eye + torch.tensor([-math.sin(a), math.cos(a), 0.0]))


def test_triangulation_prefers_a_lateral_neighbour_to_a_collinear_forward_one() -> None:
    ref = _robot_cam(0, 0)
    for dist in (0.2, 0.3, 0.5):
        cands = torch.stack([_robot_cam(0, dist), _robot_cam(dist, 0), _robot_cam(0, -dist)])
        s = triangulation_scores(ref[None], _K320[None], (240, 320), 2.0, cands,
                                 _K320.expand(3, 3, 3))[0]
        assert float(s[1]) > 0.5 and float(s[1]) > 5 * float(s[0])
        assert float(s[1]) > 5 * float(s[2])
        # pose distance alone cannot tell them apart: all three are equally near
        d = pose_distance(ref.expand(3, 4, 4), cands)
        assert torch.allclose(d, d[0].expand(3), atol=1e-5)
    # a robot driving forward past a parallel lane: nearest picks the views on its own line,
    # triangulation the ones beside it
    c2w = torch.stack([_robot_cam(0, 0), _robot_cam(0, 0.25), _robot_cam(0, -0.25),
                       _robot_cam(0.4, 0.1), _robot_cam(0.4, -0.4)])
    K = _K320.expand(5, 3, 3)
    tri = triangulation_neighbours(c2w, K, (240, 320), 2.0, 2)
    assert set(tri[0].tolist()) == {3, 4}
    near = torch.stack([nearest_views(c2w[0], c2w, 2, exclude=[0])])
    assert set(near[0].tolist()) == {1, 2}
    assert tri.shape == (5, 2) and all(i not in row.tolist() for i, row in enumerate(tri))


def test_triangulation_band_and_overlap() -> None:
    band = TriangulationBand()
    th = torch.tensor([0.0, 2.0, 4.0, 10.0, 15.0, 25.0, 60.0])
    g = angle_band(th, band)
    assert torch.allclose(g[2:5], torch.ones(3))
    assert float(g[0]) < float(g[1]) < 1.0 and 1.0 > float(g[5]) > float(g[6])
    assert float(g[0]) == pytest.approx(math.exp(-0.5 * (4 / 2) ** 2), rel=1e-5)
    # the lateral offset that subtends ~8 deg at 2 m beats a tiny (1 deg) and a huge (60 deg) one
    ref = _robot_cam(0, 0)
    offs = [2.0 * math.tan(math.radians(a)) for a in (1.0, 8.0, 60.0)]
    cands = torch.stack([_robot_cam(o, 0) for o in offs])
    s = triangulation_scores(ref[None], _K320[None], (240, 320), 2.0, cands,
                             _K320.expand(3, 3, 3))[0]
    assert int(s.argmax()) == 1
    # overlap: a view looking away (behind) or far to the side sees none of the scene points
    away = torch.stack([_robot_cam(0.3, 0, yaw_deg=180.0), _robot_cam(0.3, 0, yaw_deg=-90.0),
                        _robot_cam(0.3, 0)])
    s = triangulation_scores(ref[None], _K320[None], (240, 320), 2.0, away,
                             _K320.expand(3, 3, 3))[0]
    assert float(s[0]) == 0.0 and float(s[1]) < 0.2 * float(s[2])
    # the choice depends on the scene depth: a near scene wants a shorter baseline
    cands = torch.stack([_robot_cam(0.1, 0), _robot_cam(0.6, 0)])
    far = choose_neighbours("triangulation", ref, _K320, (240, 320), 4.0, cands,
                            _K320.expand(2, 3, 3), 1)
    near = choose_neighbours("triangulation", ref, _K320, (240, 320), 0.5, cands,
                             _K320.expand(2, 3, 3), 1)
    assert far.tolist() == [1] and near.tolist() == [0]
    assert choose_neighbours("nearest", ref, _K320, (240, 320), 4.0, cands,
                             _K320.expand(2, 3, 3), 1).tolist() == [0]


def test_scene_depth_prior() -> None:
    assert scene_depth_prior(0.25, 10.0) == pytest.approx(math.sqrt(2.5))
    assert scene_depth_prior(0.25, 10.0, torch.tensor([1.0, 3.0, float("nan"), 0.0, 2.0])) == 2.0
    assert scene_depth_prior(0.25, 10.0, torch.tensor([0.0])) == pytest.approx(math.sqrt(2.5))
    with pytest.raises(ValueError):
        scene_depth_prior(2.0, 1.0)


def test_triangulation_refuses_bad_inputs() -> None:
    c2w = torch.stack([_robot_cam(0, 0), _robot_cam(0.3, 0)])
    K = _K320.expand(2, 3, 3)
    for bad in (dict(scene_depth=0.0), dict(scene_depth=torch.tensor([1.0, 2.0, 3.0])),
                dict(scene_depth=float("nan")), dict(size=(0, 320)),
                dict(K=_K320.expand(3, 3, 3)), dict(c2w=c2w[:, :3])):
        kw = dict(c2w=c2w, K=K, size=(240, 320), scene_depth=2.0, k=1) | bad
        with pytest.raises(ValueError):
            triangulation_neighbours(**kw)
    bad_pose = c2w.clone()
    bad_pose[0, 0, 3] = float("inf")
    with pytest.raises(ValueError):
        triangulation_neighbours(bad_pose, K, (240, 320), 2.0, 1)
    with pytest.raises(ValueError):
        triangulation_neighbours(c2w, K, (240, 320), 2.0, -1)
    with pytest.raises(ValueError):
        choose_neighbours("farthest", c2w[0], K[0], (240, 320), 2.0, c2w, K, 1)
    for kw in (dict(band_deg=(15.0, 4.0)), dict(sigma_deg=(0.0, 1.0)), dict(lateral_min=2.0),
               dict(grid=0)):
        with pytest.raises(ValueError):
            TriangulationBand(**kw)
    assert triangulation_neighbours(c2w[:1], K[:1], (240, 320), 2.0, 3).shape == (1, 0)
