"""The Geo-Reasoner at a capped resolution (``GSNeRFConfig.geometry_max_pixels``).

A model trained at 80x60 that renders 320x240 encodes the sources at the pyramid level that fits
its cap, and renders every target pixel with the full-resolution source colours. These tests
check that the capped encoding is exactly the encoding of that pyramid level, and that every
reader of its maps (target depth, occlusion, feature and volume sampling, sensor depth) looks
at the same place a full-resolution pixel sees.
"""

from __future__ import annotations

import pytest
import torch

from gsnerf_ros.geometry import level_intrinsics, unproject_depth
from gsnerf_ros.model import GSNeRF, GSNeRFConfig
from gsnerf_ros.model.features import occlusion_mask, project_to_views
from gsnerf_ros.model.pyramid import depth_level, geometry_level, image_level, level_to_full
from gsnerf_ros.model.target_depth import estimate_target_depth
from helpers.rooms import protocol_views

H, W = 96, 128


@pytest.fixture(scope="module")
def room():
    """A procedural room at 128x96: 6 sources and one target of the evaluation protocol."""
    return protocol_views(H, W, frames=30, seed=5, num_sources=6, source_stride=3,
                          with_target=True)


@pytest.mark.parametrize("g", [0, 1, 2])
def test_level_to_full_takes_the_nearest_level_pixel_on_the_network_grid(g: int) -> None:
    """Full-resolution pixel u takes level pixel round(u / 2^g), which sits at 2^g j: at most
    2^(g-1) px away (the old ``interpolate(mode='nearest')`` put it up to 2^g - 1 px off, always
    to the left/top). The level map comes back exactly, and a wrong size is refused."""
    h, w = 30, 41
    rows, cols = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    coords = torch.stack([rows, cols])                           # [2, H, W]: each pixel's (v, u)
    full = level_to_full(depth_level(coords, g), g, h, w)
    s = 2 ** g
    interior = (rows <= s * ((h - 1) // s)) & (cols <= s * ((w - 1) // s))
    err = (full - coords).abs().amax(0)
    assert err[interior].max() <= s // 2
    assert torch.equal(depth_level(full, g), depth_level(coords, g))
    if g:
        old = torch.nn.functional.interpolate(depth_level(coords, g)[None], size=(h, w),
                                              mode="nearest")[0]
        assert (old - coords).abs().amax(0)[interior].max() == s - 1
        with pytest.raises(ValueError, match="not level"):
            level_to_full(depth_level(coords, g)[..., :-1], g, h, w)


def _model(cap: int) -> GSNeRF:
    torch.manual_seed(0)
    cfg = GSNeRFConfig.tiny(4)
    cfg.geometry_max_pixels = cap
    return GSNeRF(cfg).eval()


def test_geometry_level_is_the_first_pyramid_level_that_fits() -> None:
    assert geometry_level(240, 320, 0) == 0
    assert geometry_level(60, 80, 4800) == 0
    assert geometry_level(240, 320, 4800) == 2
    assert geometry_level(240, 320, 19200) == 1
    assert geometry_level(480, 640, 4800) == 3
    assert geometry_level(241, 321, 4800) == 3          # ceil sizes: 61 x 81 > 4800
    with pytest.raises(ValueError, match="geometry_max_pixels"):
        GSNeRFConfig(geometry_max_pixels=-1)


def _blur_subsample_reference(images: torch.Tensor, level: int) -> torch.Tensor:
    """The textbook form of a pyramid level: a separable [1, 2, 1] / 4 convolution over every
    pixel (replicate padding), then every second row and column."""
    import torch.nn.functional as F

    k = torch.tensor([0.25, 0.5, 0.25], dtype=images.dtype)
    x = images
    for _ in range(level):
        B, C, h, w = x.shape
        x = F.pad(x, (1, 1, 1, 1), mode="replicate").reshape(B * C, 1, h + 2, w + 2)
        x = F.conv2d(F.conv2d(x, k.reshape(1, 1, 1, 3)), k.reshape(1, 1, 3, 1))
        x = x.reshape(B, C, h, w)[..., ::2, ::2]
    return x


@pytest.mark.parametrize("shape", [(2, 3, 240, 320), (1, 3, 239, 317), (1, 2, 7, 5), (1, 1, 1, 1)])
def test_image_level_is_the_blurred_subsampled_image(shape) -> None:
    """image_level sums the blur's taps at the kept pixels only; it equals blurring every pixel
    and subsampling, bit for bit, on even and odd sizes down to one pixel, and keeps a constant
    image constant (the blur's weights sum to 1)."""
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(0))
    for level in (0, 1, 3):
        ref = _blur_subsample_reference(x, level)
        assert torch.equal(image_level(x, level), ref), level
    flat = torch.full(shape, 0.7)
    assert torch.allclose(image_level(flat, 2), torch.full_like(image_level(flat, 2), 0.7))


def test_capped_encoding_is_the_encoding_of_the_pyramid_level(room) -> None:
    images, _, K, c2w, near, far = room
    V = 6
    capped = _model(H * W // 16)                         # -> level 2 (24 x 32)
    plain = _model(0)
    plain.load_state_dict(capped.state_dict())
    with torch.no_grad():
        enc = capped.encode_sources(images[:V], K[:V], c2w[:V], near, far)
        ref = plain.encode_sources(image_level(images[:V], 2), level_intrinsics(K[:V], 2),
                                   c2w[:V], near, far)
    assert enc.geometry_level == 2 and ref.geometry_level == 0
    assert enc.image.shape[-2:] == (H, W) and torch.equal(enc.image, images[:V])
    assert torch.equal(enc.K, K[:V]) and torch.allclose(enc.geometry_K, ref.K)
    for a, b in zip([enc.feature, enc.semantic_logits, *enc.depth_levels, *enc.volumes],
                    [ref.feature, ref.semantic_logits, *ref.depth_levels, *ref.volumes]):
        assert a.shape == b.shape and torch.allclose(a, b, atol=1e-6)
    # one view encoded on its own agrees with the set
    with torch.no_grad():
        one = capped.encode_view(images[0], K[0], c2w[0], images[1:3], K[1:3], c2w[1:3],
                                 near, far)
    assert one.geometry_level == 2 and one.depth.shape == (H // 4, W // 4)


def test_capped_maps_are_read_where_a_full_resolution_pixel_looks(room) -> None:
    """With the true (sensor) depth in a capped encoding, the target depth D_T reprojects to the
    true target depth and points on the target's surface are visible in the sources, while points
    behind it are occluded. Reading the level-2 depth map with full-resolution intrinsics (the
    mistake this guards against) puts D_T far off."""
    images, depths, K, c2w, near, far = room
    V = 6
    model = _model(H * W // 16)
    with torch.no_grad():
        enc = model.encode_sources(images[:V], K[:V], c2w[:V], near, far)
    # True depth at the geometry level (level 2; an image-size map would be kept at its own
    # size, test_model_semantic_level.py), so the maps are read on the level's grid.
    enc = enc.with_sensor_depth(depth_level(depths[:V], 2))
    assert torch.equal(enc.depth, depth_level(depths[:V], 2)) and enc.depth_map_level == 2
    gt = depths[V]
    td, valid = model.target_depth(enc, K[V], c2w[V], H, W, near, far)
    ok = valid & (gt > 0)
    rel = ((td - gt).abs() / gt)[ok]
    assert ok.float().mean() > 0.8 and rel.median() < 0.03, float(rel.median())
    wrong, _ = estimate_target_depth(enc.depth, enc.K, enc.c2w, K[V], c2w[V], H, W, near, far)
    assert ((wrong - gt).abs() / gt)[ok].median() > 5 * rel.median() + 0.02

    pts = unproject_depth(gt, K[V], c2w[V]).reshape(-1, 3)[gt.reshape(-1) > 0][::7]
    rc = model.config.renderer
    spacing = model.cost_volume.spacing
    uv, z, inside = project_to_views(pts, enc)
    seen = inside & ~occlusion_mask(enc, uv, z, rc.occlusion_threshold, rc.occlusion_min, spacing)
    behind = pts + 0.6 * (pts - c2w[V, :3, 3]) / (pts - c2w[V, :3, 3]).norm(dim=-1, keepdim=True)
    uv_b, z_b, inside_b = project_to_views(behind, enc)
    hidden = inside_b & occlusion_mask(enc, uv_b, z_b, rc.occlusion_threshold, rc.occlusion_min,
                                       spacing)
    in_any = inside.any(-1)
    assert seen.any(-1)[in_any].float().mean() > 0.85
    assert (hidden.sum(-1).float() / inside_b.sum(-1).clamp(min=1))[inside_b.any(-1)].mean() > 0.6


def test_capped_model_renders_full_resolution_targets(room) -> None:
    images, depths, K, c2w, near, far = room
    V = 6
    model = _model(H * W // 4)                           # level 1
    with torch.no_grad():
        enc = model.encode_sources(images[:V], K[:V], c2w[:V], near, far)
    res = model.render(enc, K[V], c2w[V], H, W, chunk=2048)
    assert res.rgb.shape == (H, W, 3) and res.depth.shape == (H, W)
    assert res.labels.shape == (H, W) and torch.isfinite(res.rgb).all()
    # sensor depth at the level's own size is taken as it is, at the image size at the image
    # size; any other size is refused
    half = enc.with_sensor_depth(depth_level(depths[:V], 1))
    assert torch.equal(half.depth, depth_level(depths[:V], 1))
    full = enc.with_sensor_depth(depths[:V])
    ok = depths[:V] > 0
    assert full.depth_map_level == 0 and torch.equal(full.depth[ok], depths[:V][ok])
    with pytest.raises(ValueError, match="shape of the image-size depth map"):
        enc.with_sensor_depth(depths[:V, :50, :70])
