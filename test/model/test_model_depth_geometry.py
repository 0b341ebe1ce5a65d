"""The multi-view depth's geometry, end to end (issue 11 §1): tests that would have caught why
the cost volume did not learn.

- Homography warping gives the reference image back at the true depth, at every pyramid level
  the cascade uses, with the network's pixel grid (level pixel j at full-resolution 2^l j).
- A parameter-free plane sweep (photometric SAD, winner-take-all over the stage-0 planes) finds
  the depth of textured pixels of procedural rooms: matching is possible with these planes.
- One depth throughout: the depth the losses supervise (``depth_pyramid``) is the one the
  cascade regresses, in the same units, at the same pixels, with the same plane order, and
  the bands passed from stage to stage contain the truth.
"""

from __future__ import annotations

import pytest
import torch

from gsnerf_ros.geometry import (invert_pose, level_intrinsics, nearest_views, project_points,
                                 scale_intrinsics, transform_points, unproject_depth)
from gsnerf_ros.model.config import CostVolumeConfig
from gsnerf_ros.model.cost_volume import (CascadeCostVolume, PlaneSpacing, homography_warp,
                                          plane_sweep_planes)
from gsnerf_ros.model.pyramid import depth_level, image_level, level_size
from gsnerf_ros.train.depth_probe import DepthStats, probe_scene_views
from gsnerf_ros.train.losses import depth_pyramid
from helpers.rooms import protocol_views
from helpers.tolerance import assert_close_reordered

H, W = 120, 160


@pytest.fixture(scope="module")
def room():
    """A procedural room (40 frames, 160x120) and the evaluation protocol's first source set."""
    return protocol_views(H, W, frames=40, seed=11, num_sources=6, source_stride=4)


def _unoccluded(depth_ref: torch.Tensor, K_ref, c2w_ref, depth_src, K_src, c2w_src, rel=0.03):
    """Reference pixels whose surface point the source sees (z-test against its depth)."""
    pts = unproject_depth(depth_ref, K_ref, c2w_ref).reshape(-1, 3)
    uv, z = project_points(transform_points(invert_pose(c2w_src), pts), K_src)
    h, w = depth_src.shape
    u, v = uv[:, 0].round().long(), uv[:, 1].round().long()
    inside = (u >= 0) & (u < w) & (v >= 0) & (v < h) & (z > 0) & (depth_ref.reshape(-1) > 0)
    ds = torch.zeros_like(z)
    ds[inside] = depth_src[v[inside], u[inside]]
    return (inside & ((ds - z).abs() < rel * z)).reshape(depth_ref.shape)


@pytest.mark.parametrize("level", [0, 1, 2])
def test_warp_at_true_depth_gives_the_reference_back_at_every_level(room, level: int) -> None:
    images, depths, K, c2w, _, _ = room
    i, j = 0, int(nearest_views(c2w[0], c2w, 1, exclude=[0])[0])
    imgs = image_level(images, level)
    d_ref = depth_level(depths[i], level)
    rK, sK = level_intrinsics(K[i], level), level_intrinsics(K[j:j + 1], level)
    ok = _unoccluded(d_ref, rK, c2w[i], depth_level(depths[j], level), sK[0], c2w[j])
    assert ok.float().mean() > 0.3, "the pair shares too little of the room to test"

    def err(planes: torch.Tensor, src_from_ref: torch.Tensor, Ks=sK, Kr=rK) -> float:
        warped, valid = homography_warp(imgs[j:j + 1], Ks, src_from_ref, Kr, planes[None])
        m = ok & valid[0, 0]
        return float((warped[0, :, 0] - imgs[i]).abs().mean(0)[m].mean())

    sfr = invert_pose(c2w[j:j + 1]) @ c2w[i]
    e_true = err(d_ref, sfr)
    assert e_true < 0.03
    # wrong depth, and the pose used the wrong way round (c2w instead of w2c), are far worse
    assert err(d_ref * 0.8, sfr) > 1.5 * e_true
    assert err(d_ref * 1.25, sfr) > 1.5 * e_true
    assert err(d_ref, invert_pose(c2w[i:i + 1]) @ c2w[j]) > 2.0 * e_true


def test_level_intrinsics_match_the_stride_two_grid() -> None:
    """A feature map subsampled like a stride-2 network (x[::2^l]) holds at level pixel j the
    full-resolution pixel 2^l j: projecting with level_intrinsics lands on the same content;
    the resize convention (scale_intrinsics) is off by (2^l - 1) / 2^(l+1) level pixels."""
    K = torch.tensor([[100.0, 0, 63.5], [0, 100.0, 47.5], [0, 0, 1]])
    u_full = torch.arange(128.0).expand(96, 128)                  # pixel value = its u
    pts = torch.tensor([[0.31, -0.2, 2.0], [-0.4, 0.1, 3.0], [0.05, 0.33, 1.5]])
    uv_full, _ = project_points(pts, K)
    for level in (1, 2):
        s = 2 ** level
        uv_l, _ = project_points(pts, level_intrinsics(K, level))
        sub = u_full[::s, ::s]
        # bilinear read along u at the projected level coordinate
        u0 = uv_l[:, 0].floor().long()
        frac = uv_l[:, 0] - u0
        val = sub[0, u0] * (1 - frac) + sub[0, u0 + 1] * frac
        torch.testing.assert_close(val, uv_full[:, 0], atol=1e-3, rtol=0)
        uv_wrong, _ = project_points(pts, scale_intrinsics(K, 1 / s, 1 / s))
        assert float((uv_wrong - uv_l).abs().max()) > 0.2


def test_inverse_planes_are_evenly_spaced_in_disparity_nearest_first() -> None:
    sp = PlaneSpacing(inverse=True)
    q0, step = plane_sweep_planes(sp, 0.25, 10.0, 32)
    q = q0 + step * torch.arange(32.0)
    z = sp.depth(q)
    assert step < 0 and float(z[0]) == pytest.approx(0.25) and float(z[-1]) == pytest.approx(10.0)
    assert bool((z[1:] > z[:-1]).all())
    torch.testing.assert_close(torch.diff(1 / z), torch.full((31,), step), atol=1e-5, rtol=0)
    with pytest.raises(ValueError):
        plane_sweep_planes(sp, 1.0, 0.5, 8)


def test_fixed_feature_plane_sweep_finds_depth_of_textured_pixels(room) -> None:
    """Winner-take-all of the 3x3 SAD over 32 inverse-depth stage-0 planes at 1/4 resolution.

    Thresholds: measured 0.76 within +-1 plane and delta<1.25 of 0.71 on textured pixels of
    three procedural rooms (python -m gsnerf_ros.train.depth_probe, docs/METHOD.md); a per-view
    constant at the ground-truth median reaches delta 0.55. We require 0.6 and 0.6, and the
    sweep to beat the constant by 0.08 on delta: matching, not luck, places the depth.
    """
    images, depths, K, c2w, near, far = room
    stats = DepthStats()
    probe_scene_views(stats, images, depths, K, c2w, near, far, 32, PlaneSpacing(True), 2)
    r = stats.summary()
    sweep, const = r["sweep/textured"], r["gt_median_constant/all"]
    assert sweep["pixels"] > 500
    assert sweep["within_1_plane"] >= 0.6
    assert sweep["delta_1.25"] >= 0.6
    assert sweep["delta_1.25"] >= const["delta_1.25"] + 0.08


class _OracleCascade(CascadeCostVolume):
    """The cascade with its U-Nets replaced by an oracle that peaks the logits at the plane
    nearest the ground truth of the loss (``depth_pyramid``) at each level."""

    def __init__(self, cfg: CostVolumeConfig, gt: torch.Tensor) -> None:
        super().__init__(cfg, [4, 4, 4])
        self.gt = gt
        self.levels = depth_pyramid(gt[None], [level_size(*gt.shape, l) for l in range(3)])

    def regularise(self, stage, cost, q_planes):
        gt = self.levels[2 - stage][0]
        assert gt.shape == q_planes.shape[2:], "loss and cost volume disagree on the level size"
        qg = self.spacing.coord(gt.clamp(min=1e-3))
        step = (q_planes[:, 1] - q_planes[:, 0]).abs().clamp(min=1e-9)
        logits = -(((q_planes - qg[None, None]) / step[:, None]) ** 2) * 4.0
        return logits, cost.new_zeros(q_planes.shape[0], 2, *q_planes.shape[1:])


def test_cascade_of_several_views_equals_one_at_a_time(room) -> None:
    """``forward_views`` regularises the views' cost volumes as one batch: depth, volume
    feature, planes and gradients equal those of one view at a time (to float rounding), for
    views with their own neighbours and depth ranges, and a view of another size."""
    from gsnerf_ros.model.cost_volume import CascadeInput

    images, depths, K, c2w, near, far = room
    torch.manual_seed(0)
    cfg = CostVolumeConfig(num_planes=[8, 4, 4], groups=2, reg_channels=[4, 8],
                           volume_channels=2, photometric=True)
    cv = CascadeCostVolume(cfg, [4, 4, 4]).train()
    h, w = 24, 32
    imgs = torch.nn.functional.interpolate(images[:4], size=(h, w), mode="area")
    Ks = K[:4].clone()
    Ks[:, :2] *= torch.tensor([w / W, h / H])[:, None]
    pyr = [torch.randn(4, 4, *level_size(h, w, l), requires_grad=True) for l in range(3)]
    small = [torch.randn(2, 4, *level_size(16, 24, l)) for l in range(3)]
    simg = torch.rand(2, 3, 16, 24)

    def inputs(p: list[torch.Tensor]) -> list[CascadeInput]:
        views = []
        for i, (rng, nb) in enumerate(zip([(near, far), (0.5, 6.0), (near, far)],
                                          [[1, 2], [2, 3], [0, 3]])):
            nbi = torch.tensor(nb)
            views.append(CascadeInput([x[i] for x in p], [x[nbi] for x in p], Ks[i], Ks[nbi],
                                      c2w[i], c2w[nbi], *rng, imgs[i], imgs[nbi]))
        Ksm = K[0].clone()
        Ksm[:2] *= torch.tensor([24 / W, 16 / H])[:, None]
        views.append(CascadeInput([x[0] for x in small], [x[1:] for x in small], Ksm, Ksm[None],
                                  c2w[0], c2w[1:2], near, far, simg[0], simg[1:]))
        return views

    many = cv.forward_views(inputs(pyr))
    loss_many = sum(o.depth[0].sum() + o.volume[1].sum() for o in many)
    (g_many,) = torch.autograd.grad(loss_many, pyr[1])
    one = [cv.forward_views([v])[0] for v in inputs(pyr)]
    loss_one = sum(o.depth[0].sum() + o.volume[1].sum() for o in one)
    (g_one,) = torch.autograd.grad(loss_one, pyr[1])
    assert many[3].depth[0].shape == (16, 24) and many[0].depth[0].shape == (h, w)
    for a, b in zip(many, one):
        for lvl in range(3):
            # 3x3x3 convolutions over <= 8 channels (216 products a sum), stacked in layers.
            assert_close_reordered(a.depth[lvl], b.depth[lvl], fan_in=256)
            assert_close_reordered(a.volume[lvl], b.volume[lvl], fan_in=256)
            torch.testing.assert_close(a.plane_start[lvl], b.plane_start[lvl])
        torch.testing.assert_close(a.plane_step, b.plane_step)
    # The backward pass sums the layers' products again, over every plane and view.
    assert_close_reordered(g_many, g_one, fan_in=1024)
    # The single-view entry point is the same computation.
    v = inputs(pyr)[1]
    single = cv(v.ref_pyr, v.src_pyr, v.ref_K, v.src_K, v.ref_c2w, v.src_c2w, v.near, v.far,
                v.ref_image, v.src_images)
    assert_close_reordered(single.depth[0], many[1].depth[0], fan_in=256)


@pytest.mark.parametrize("spacing", ["inverse", "linear"])
def test_one_depth_throughout_the_cascade(room, spacing: str) -> None:
    images, depths, K, c2w, near, far = room
    cfg = CostVolumeConfig(num_planes=[32, 16, 8], groups=4, reg_channels=[4, 8],
                           volume_channels=2, spacing=spacing)
    gt = depths[0]
    cv = _OracleCascade(cfg, gt)
    feats = [torch.zeros(4, *level_size(H, W, l)) for l in range(3)]
    srcs = [torch.zeros(2, 4, *level_size(H, W, l)) for l in range(3)]
    out = cv(feats, srcs, K[0], K[1:3], c2w[0], c2w[1:3], near, far,
             ref_image=images[0], src_images=images[1:3])
    sp = cv.spacing
    for lvl in range(3):
        g = depth_pyramid(gt[None], [tuple(out.depth[lvl].shape)])[0][0]
        m = (g > near * 1.05) & (g < far * 0.95)
        rel = ((out.depth[lvl] - g).abs() / g)[m]
        # soft-argmin of a peaked oracle lands within a fraction of the level's plane step
        q_step = abs(float(out.plane_step[lvl]))
        tol = sp.band_metres(g[m], q_step) / g[m] * 0.5 + 1e-3
        # all but depth edges, where the bilinearly upsampled coarse depth mixes two surfaces
        assert float((rel <= tol).float().mean()) > 0.97, \
            f"level {lvl}: depth differs from the loss's target"
        # planes nearest first and the band of levels 1 and 0 holds the truth
        D = cfg.num_planes[2 - lvl]
        q_first = out.plane_start[lvl]
        q_last = q_first + (D - 1) * out.plane_step[lvl]
        z_first, z_last = sp.depth(q_first), sp.depth(q_last)
        assert bool((z_first <= z_last).all())
        inside = (g >= z_first - 1e-4) & (g <= z_last + 1e-4)
        assert float(inside[m].float().mean()) > 0.97


def test_depth_probe_measures_a_model_and_its_swapped_neighbours(room) -> None:
    """The probe's model path: stage-0 and final depth of a (tiny, untrained) model, and the
    same views encoded against another room's images, all scored on the same pixels."""
    from gsnerf_ros.model import GSNeRF, GSNeRFConfig

    images, depths, K, c2w, near, far = room
    torch.manual_seed(0)
    model = GSNeRF(GSNeRFConfig.tiny(4)).eval()
    stats = DepthStats()
    foreign = images.flip(0).roll(1, dims=-1)
    coverage = {k: torch.zeros(4, dtype=torch.float64) for k in ("first_tier", "second_tier")}
    per_room = DepthStats()
    probe_scene_views(stats, images[:3], depths[:3], K[:3], c2w[:3], near, far, 16,
                      model.cost_volume.spacing, 2, model, foreign_images=foreign[:3],
                      target=(K[3], c2w[3], depths[3]), coverage=coverage, scene_stats=per_room)
    r = stats.summary()
    # The per-room sink gets the same D_T and final-depth scores (one room here).
    assert per_room.summary() == {k: r[k] for k in ("model_target_depth/all", "model_final/all")}
    n_target = int((depths[3] > 0).sum())
    assert r["model_target_depth/all"]["pixels"] == n_target
    # Every target pixel is in one tier (or a hole), and each tier's pixels are counted once
    # by how many sources see them.
    tiers = [r.get(f"model_target_depth/{k}", {}).get("pixels", 0) for k in coverage]
    assert 0 < sum(tiers) <= n_target
    assert [int(v.sum()) for v in coverage.values()] == tiers
    for key in ("model_stage0/textured", "model_final/all", "model_stage0_swapped/textured",
                "model_target_depth/all"):
        assert r[key]["pixels"] > 0 and 0.0 <= r[key]["delta_1.25"] <= 1.0


def test_depth_probe_cli_reports_each_rooms_baselines_and_depth(tmp_path) -> None:
    """``python -m gsnerf_ros.train.depth_probe`` on a rendered room with a (tiny) checkpoint:
    the JSON has the room's lateral baseline share of its cost-volume pairs beside its D_T and
    final-depth abs-rel, and the share agrees with :func:`neighbour_lateral_shares`."""
    import json

    from gsnerf_ros.data.formats import open_scenes
    from gsnerf_ros.data.procedural.cli import main as synth_main
    from gsnerf_ros.model import GSNeRF, GSNeRFConfig
    from gsnerf_ros.geometry import neighbour_lateral_shares
    from gsnerf_ros.train.depth_probe import main as probe_main

    data = tmp_path / "test"
    assert synth_main([str(data), "--split", "test", "--scenes", "1", "--frames", "11",
                       "--height", "24", "--width", "32", "--seed", "0", "shadow_res=8"]) == 0
    torch.manual_seed(0)
    ckpt = GSNeRF(GSNeRFConfig.tiny(17)).save_checkpoint(tmp_path / "tiny.safetensors")
    out = tmp_path / "probe.json"
    assert probe_main(["--data", str(data), "--checkpoint", str(ckpt), "--height", "24",
                       "--width", "32", "--num-sources", "3", "--num-neighbors", "2",
                       "--max-targets", "1", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert len(res["per_scene"]) == 1
    row = next(iter(res["per_scene"].values()))
    assert 0.0 <= row["lateral_baseline_share"] <= 1.0
    assert row["model_target_depth_abs_rel"] == pytest.approx(
        res["results"]["model_target_depth/all"]["abs_rel"], abs=1e-4)
    assert row["model_final_abs_rel"] == pytest.approx(
        res["results"]["model_final/all"]["abs_rel"], abs=1e-4)
    # The same share from the scene's poses: sources are frames 0, 5, 10 (the protocol).
    c2w = open_scenes(str(data), "replica")[0].poses().float()[[0, 5, 10]]
    shares = neighbour_lateral_shares(c2w, 2)
    assert shares.shape == (6,)
    assert row["lateral_baseline_share"] == pytest.approx(float(shares.median()), abs=1e-3)
