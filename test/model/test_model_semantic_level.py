"""Maps of one encoding at different pyramid levels: the semantic maps at
``GSNeRFConfig.semantic_max_pixels`` (finer than the cost volume's geometry level) and a sensor
depth at the camera's resolution (``with_sensor_depth``).

Every reader takes a full-resolution pixel to the map's own level: the semantic gather (the
k x k neighbourhood steps one semantic-map pixel), the 2D logits of ``label_skip``, D_T and the
occlusion test.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from gsnerf_ros.geometry import bound_by_floor, look_at
from gsnerf_ros.model import GSNeRF, GSNeRFConfig
from gsnerf_ros.model.encoding import SourceEncoding, depth_at_level
from gsnerf_ros.model.features import (occlusion_mask, project_to_views, sample_maps,
                                       semantic_neighbourhood)
from gsnerf_ros.model.pyramid import (depth_level, image_level, level_size, level_to_full,
                                      semantic_level)
from gsnerf_ros.model.semantic_renderer import render_semantics, surface_visibility
from helpers.rooms import protocol_views

H, W = 48, 64
GEO = H * W // 16                         # geometry level 2: 12 x 16


@pytest.fixture(scope="module")
def room():
    """A procedural room at 64x48: 4 sources and one target of the evaluation protocol."""
    return protocol_views(H, W, frames=20, seed=3, num_sources=4, source_stride=3,
                          with_target=True)


def _model(semantic_max_pixels: int, num_classes: int = 4, backbone: str = "scratch",
           label_skip: bool = False) -> GSNeRF:
    torch.manual_seed(0)
    cfg = GSNeRFConfig.tiny(num_classes)
    cfg.geometry_max_pixels = GEO
    cfg.semantic_max_pixels = semantic_max_pixels
    cfg.encoder.backbone = backbone
    cfg.semantic.label_skip = label_skip
    return GSNeRF(cfg).eval()


def test_semantic_level_is_the_first_fitting_level_never_coarser_than_geometry() -> None:
    assert semantic_level(240, 320, -1, 4800) == 2          # -1: the geometry level
    assert semantic_level(240, 320, 19200, 4800) == 1       # 160 x 120
    assert semantic_level(240, 320, 0, 4800) == 0           # the render size
    assert semantic_level(240, 320, 1200, 4800) == 2        # not coarser than geometry
    assert semantic_level(240, 320, -1, 0) == 0
    with pytest.raises(ValueError, match="semantic_max_pixels"):
        GSNeRFConfig(semantic_max_pixels=-2)


@pytest.mark.parametrize("backbone", ["scratch", "efficientnet_lite0"])
def test_semantic_level_of_four_times_the_pixels_keeps_the_geometry(room, backbone: str) -> None:
    """semantic_max_pixels = 4x the geometry cap: semantic maps with 4x the pixels (level 1,
    24 x 32) that are the encoder's semantic maps of that level's image, while the features,
    depths and volumes are bit-identical to the one-pass encoding (-1)."""
    images, _, K, c2w, near, far = room
    V = 4
    one_pass, fine = _model(-1, backbone=backbone), _model(4 * GEO, backbone=backbone)
    fine.load_state_dict(one_pass.state_dict())
    with torch.no_grad():
        ref = one_pass.encode_sources(images[:V], K[:V], c2w[:V], near, far)
        enc = fine.encode_sources(images[:V], K[:V], c2w[:V], near, far)
        sem, logits = fine.encoder.semantic_maps(image_level(images[:V], 1))
        whole = fine.encoder(image_level(images[:V], 1))
    assert (ref.geometry_level, ref.semantic_level) == (2, 2)
    assert (enc.geometry_level, enc.semantic_level) == (2, 1)
    assert ref.semantic_feature.shape[-2:] == (12, 16)
    assert enc.semantic_feature.shape[-2:] == enc.semantic_logits.shape[-2:] == (24, 32)
    assert enc.semantic_feature[0, 0].numel() == 4 * ref.semantic_feature[0, 0].numel()
    assert torch.equal(enc.semantic_feature, sem) and torch.equal(enc.semantic_logits, logits)
    assert torch.equal(sem, whole.semantic_feature)            # the halves are forward's
    for a, b in zip([enc.feature, *enc.depth_levels, *enc.volumes],
                    [ref.feature, *ref.depth_levels, *ref.volumes]):
        assert torch.equal(a, b)
    with torch.no_grad():
        one = fine.encode_view(images[0], K[0], c2w[0], images[1:3], K[1:3], c2w[1:3], near,
                               far)
        full = _model(0, backbone=backbone)
        full.load_state_dict(one_pass.state_dict())
        enc0 = full.encode_sources(images[:2], K[:2], c2w[:2], near, far)
    assert torch.allclose(one.semantic_feature, sem[0], atol=1e-5)   # batch 1 against 4
    assert enc0.semantic_level == 0 and enc0.semantic_feature.shape[-2:] == (H, W)
    # views of different semantic levels do not stack
    with pytest.raises(ValueError, match="semantic_max_pixels"):
        SourceEncoding.stack([one, ref.view(1)])
    res = fine.render(enc, K[V], c2w[V], H, W, chunk=1024)
    assert res.labels.shape == (H, W) and torch.isfinite(res.semantic_logits).all()


def _coordinate_maps(level: int, V: int) -> tuple[Tensor, Tensor]:
    """Per-view maps of pyramid level ``level`` whose channels are the full-resolution pixel
    coordinates of their own pixels, u = 2^l x (channel 0) and v = 2^l y (channel 1)."""
    h, w = level_size(H, W, level)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32),
                            torch.arange(w, dtype=torch.float32), indexing="ij")
    m = torch.stack([xs, ys]) * 2 ** level
    return m[None].expand(V, -1, -1, -1).contiguous(), m


Tensor = torch.Tensor


def test_semantic_maps_are_read_at_their_own_level(room) -> None:
    """A semantic map whose value is its pixel's full-resolution coordinate, at level 1 of an
    encoding whose geometry is at level 2: the neighbourhood gather returns the projection's
    coordinate and its 3x3 neighbours one level-1 pixel (2 image pixels) apart, and the
    label_skip vote of a rendered ray reads the 2D logits at the surface point's projection.
    Reading at the geometry level (the old rule) is off by a factor of 2."""
    images, _, K, c2w, near, far = room
    V = 4
    model = _model(4 * GEO, num_classes=2, label_skip=True)
    with torch.no_grad():
        enc = model.encode_sources(images[:V], K[:V], c2w[:V], near, far)
    coords, _ = _coordinate_maps(1, V)
    enc = dataclasses.replace(enc, semantic_feature=coords)
    assert (enc.geometry_level, enc.semantic_level) == (2, 1)
    uv = torch.tensor([[[10.0, 6.0], [31.0, 17.0], [40.5, 20.25]]]).expand(V, -1, -1)
    got = semantic_neighbourhood(enc, uv, 1)                        # [P, V, 2]
    assert torch.allclose(got, uv.transpose(0, 1), atol=1e-4)
    nb = semantic_neighbourhood(enc, uv, 3).reshape(3, V, 9, 2)
    offs = torch.tensor([[dx, dy] for dy in (-2.0, 0.0, 2.0) for dx in (-2.0, 0.0, 2.0)])
    assert torch.allclose(nb, uv.transpose(0, 1)[:, :, None] + offs, atol=1e-4)
    wrong = sample_maps(enc.semantic_feature, uv, enc.geometry_level)
    assert not torch.allclose(wrong, uv.transpose(0, 1), atol=1.0)

    # label_skip: with the head zeroed the logits are the vote of log_softmax(2D logits); with
    # two classes [0, u] the difference of the log-probabilities is u at the projection.
    last = model.semantic_renderer.head[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
    one = enc.subset([0])
    one = dataclasses.replace(one, semantic_logits=torch.cat(
        [torch.zeros_like(coords[:1, :1]), coords[:1, :1]], 1))
    pix = torch.tensor([[20.0, 14.0], [33.0, 21.0], [45.0, 30.0]])
    from gsnerf_ros.geometry import camera_rays
    o, d = camera_rays(pix, K[0], c2w[0])                  # rays of source 0 itself
    depth = torch.full((3,), 2.0)
    with torch.no_grad():
        uv_s, vis = surface_visibility(one, o, d, depth, model.config.renderer,
                                       model.cost_volume.spacing)
        vis = torch.ones_like(vis)
        lg = render_semantics(model.semantic_renderer, one, model.config.semantic, "surface",
                              False, uv_s, vis, {}, torch.zeros(3, dtype=torch.long))
    assert torch.allclose(uv_s[0], pix, atol=1e-3)
    assert torch.allclose(lg[:, 1] - lg[:, 0], pix[:, 0], atol=1e-3)


def _step_scene(V: int = 2) -> tuple[Tensor, Tensor, Tensor]:
    """V cameras at one pose looking at a wall 3 m away (z-depth), with a 2-column near stripe
    (2 m) at columns 17-18, between the level-2 grid's columns 16 and 20: (K [V,3,3], c2w
    [V,4,4], depth [V,H,W])."""
    K = torch.tensor([[50.0, 0, (W - 1) / 2], [0, 50.0, (H - 1) / 2], [0, 0, 1]])
    c2w = look_at(torch.tensor([0.0, 0.0, 1.0]), torch.tensor([0.0, 3.0, 1.0]))
    depth = torch.full((H, W), 3.0)
    depth[:, 17:19] = 2.0
    return (K[None].expand(V, 3, 3).contiguous(), c2w[None].expand(V, 4, 4).contiguous(),
            depth[None].expand(V, H, W).contiguous())


def test_sensor_depth_at_full_resolution_drives_target_depth_and_occlusion() -> None:
    """A thin near stripe that the geometry level (every 4th column) cannot represent: with the
    sensor depth at the camera's resolution D_T has it and a point behind it is occluded; with
    the same depth taken at the geometry level D_T and the occlusion test do not see it."""
    K, c2w, depth = _step_scene()
    model = _model(-1)
    torch.manual_seed(1)
    with torch.no_grad():
        enc = model.encode_sources(torch.rand(2, 3, H, W), K, c2w, 0.5, 5.0)
    full = enc.with_sensor_depth(depth)
    coarse = enc.with_sensor_depth(depth_level(depth, 2))
    assert (full.depth_map_level, coarse.depth_map_level) == (0, 2)
    assert torch.equal(full.depth, depth) and full.depth_measured.all()
    assert torch.equal(full.depth_levels[1], enc.depth_levels[1])
    d_full, _ = model.target_depth(full, K[0], c2w[0], H, W, 0.5, 5.0)
    d_coarse, _ = model.target_depth(coarse, K[0], c2w[0], H, W, 0.5, 5.0)
    rows = slice(4, H - 4)
    assert torch.allclose(d_full[rows, 17:19], torch.tensor(2.0), atol=0.02)
    assert torch.allclose(d_full[rows, 21:30], torch.tensor(3.0), atol=0.02)
    assert (d_coarse[rows, 17:19] > 2.5).all()              # the stripe is lost
    # a point 2.5 m along the stripe's ray: behind the stripe in the full-resolution depth
    from gsnerf_ros.geometry import camera_rays
    o, d = camera_rays(torch.tensor([[17.5, 24.0]]), K[0], c2w[0])
    p = o + 2.5 * d
    cfg = model.config.renderer
    occ = {}
    for name, e in (("full", full), ("coarse", coarse)):
        uv, z, inside = project_to_views(p, e)
        occ[name] = occlusion_mask(e, uv, z, cfg.occlusion_threshold, cfg.occlusion_min,
                                   model.cost_volume.spacing)
        assert inside.all()
    assert occ["full"].all() and not occ["coarse"].any()


def test_sensor_depth_keeps_the_estimate_where_invalid_and_every_copy_keeps_levels() -> None:
    """Where the sensor has no value the cost-volume depth is taken up to the camera's
    resolution by nearest lookup; subset / view / stack (also of views with and without a
    sensor depth) / with_floor keep each map at its level."""
    K, c2w, depth = _step_scene(3)
    model = _model(4 * GEO)
    torch.manual_seed(2)
    with torch.no_grad():
        enc = model.encode_sources(torch.rand(3, 3, H, W), K, c2w, 0.5, 5.0)
    holey = depth.clone()
    holey[:, :, :10] = 0.0
    rgbd = enc.with_sensor_depth(holey)
    up = level_to_full(enc.depth, 2, H, W)
    assert torch.equal(rgbd.depth[:, :, :10], up[:, :, :10])
    assert torch.equal(rgbd.depth[:, :, 10:], depth[:, :, 10:])
    assert rgbd.depth_measured[:, :, 10:].all() and not rgbd.depth_measured[:, :, :10].any()
    assert torch.equal(depth_at_level(enc, 0).depth, up)
    sub = rgbd.subset([2, 0])
    assert (sub.depth_map_level, sub.semantic_level, sub.geometry_level) == (0, 1, 2)
    # a buffer of keyframes with and without depth: stacked at the camera's resolution
    mixed = SourceEncoding.stack([rgbd.view(0), enc.view(1), rgbd.view(2)])
    assert mixed.depth_map_level == 0
    assert torch.equal(mixed.depth[1], up[1]) and not mixed.depth_measured[1].any()
    assert torch.equal(mixed.depth[0], rgbd.depth[0])
    assert SourceEncoding.stack([enc.view(0), enc.view(1)]).depth_map_level == 2
    # a later geometry-level measurement over a full-resolution map is taken up to it
    again = rgbd.with_sensor_depth(depth_level(holey, 2))
    assert again.depth_map_level == 0
    assert torch.equal(again.depth[:, :, 12:], level_to_full(depth_level(depth, 2), 2, H, W)[:, :, 12:])
    assert torch.equal(again.depth[:, :, :10], up[:, :, :10])
    # the floor bound works on each map's own grid
    floored = rgbd.with_floor(-0.5)
    assert torch.equal(floored.depth, bound_by_floor(rgbd.depth, K, c2w, -0.5))
    assert torch.equal(floored.depth_levels[2], rgbd.depth_levels[2])
    with pytest.raises(ValueError, match="shape"):
        enc.with_sensor_depth(depth[:, :-1])
    with pytest.raises(ValueError, match="coarser"):
        depth_at_level(rgbd, 2)


def test_defaults_keep_one_pass_at_the_geometry_level(room) -> None:
    """semantic_max_pixels -1 (the default, and what a checkpoint without the key loads with)
    is one encoder pass on the geometry level's images: the semantic maps are forward's, and a
    render equals the render with the cap set to the geometry cap, bit for bit."""
    images, _, K, c2w, near, far = room
    V = 4
    assert GSNeRFConfig().semantic_max_pixels == -1
    default, same = _model(-1), _model(GEO)
    same.load_state_dict(default.state_dict())
    with torch.no_grad():
        enc = default.encode_sources(images[:V], K[:V], c2w[:V], near, far)
        out = default.encoder(image_level(images[:V], 2))
        enc2 = same.encode_sources(images[:V], K[:V], c2w[:V], near, far)
    assert torch.equal(enc.semantic_feature, out.semantic_feature)
    assert torch.equal(enc.semantic_logits, out.semantic_logits)
    assert torch.equal(enc.feature, out.pyramid[0])
    a = default.render(enc, K[V], c2w[V], H, W, chunk=1024)
    b = same.render(enc2, K[V], c2w[V], H, W, chunk=1024)
    for f in ("rgb", "depth", "semantic_logits", "target_depth", "confidence"):
        assert torch.equal(getattr(a, f), getattr(b, f)), f


@pytest.mark.parametrize("semantic_max_pixels", [-1, 4 * GEO])
def test_segment_2d_is_the_sources_own_2d_labels(room, semantic_max_pixels: int) -> None:
    """``segment_2d`` of a view is the class map the encoding holds for it (its 2D logits at
    the semantic level), read back at full resolution on the network's grid: the reference
    gsnerf-eval scores the rendered semantics against."""
    images, _, K, c2w, near, far = room
    model = _model(semantic_max_pixels)
    with torch.no_grad():
        enc = model.encode_sources(images[:4], K[:4], c2w[:4], near, far)
        seg = model.segment_2d(images[:4])
    expected = level_to_full(enc.semantic_logits.argmax(1), enc.semantic_level, H, W)
    assert seg.shape == (4, H, W) and seg.dtype == torch.int64
    assert torch.equal(seg, expected)
