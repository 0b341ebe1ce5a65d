"""Geometry of the model against analytic scenes: projection round trips, homography warping of
a textured fronto-parallel plane, camera frames and the choice of cost-volume neighbours (the
z-buffer and target-depth estimation: test_target_depth.py)."""

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
from gsnerf_ros.model.cost_volume import group_correlation, homography_warp

from helpers.plane_scenes import intrinsics as _K, plane_view as _plane_view, translation as _translation

torch.manual_seed(0)


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
