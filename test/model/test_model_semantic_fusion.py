"""Two scales of the 2D semantic path fused (``GSNeRFConfig.semantic_fuse_max_pixels``).

The semantic maps of a second pyramid level are resampled onto the finer level's grid
(``pyramid.level_upsample``) and averaged with it; the geometry is untouched, and the 2D
segmenter the training scores (``GSNeRF.semantic_logits_2d``) is the fused one the encoding
holds.
"""

from __future__ import annotations

import pytest
import torch

from gsnerf_ros.model import GSNeRF, GSNeRFConfig
from gsnerf_ros.model.inference import InferenceConfig
from gsnerf_ros.model.pyramid import image_level, level_size, level_upsample, semantic_levels
from helpers.rooms import protocol_views

H, W = 48, 64
GEO = H * W // 16                         # geometry level 2: 12 x 16


@pytest.fixture(scope="module")
def room():
    """A procedural room at 64x48: 4 sources and one target of the evaluation protocol."""
    return protocol_views(H, W, frames=20, seed=5, num_sources=4, source_stride=3,
                          with_target=True)


def _model(semantic_max_pixels: int, fuse: int, backbone: str = "scratch") -> GSNeRF:
    torch.manual_seed(0)
    cfg = GSNeRFConfig.tiny(4)
    cfg.geometry_max_pixels = GEO
    cfg.semantic_max_pixels = semantic_max_pixels
    cfg.semantic_fuse_max_pixels = fuse
    cfg.encoder.backbone = backbone
    cfg.semantic.label_skip = True
    return GSNeRF(cfg).eval()


def test_semantic_levels_are_the_two_budgets_finest_first_each_once() -> None:
    assert semantic_levels(240, 320, 19200, -1, 4800) == (1,)       # one pass
    assert semantic_levels(240, 320, 19200, 0, 4800) == (0, 1)      # + the render size
    assert semantic_levels(240, 320, 19200, 76800, 4800) == (0, 1)
    assert semantic_levels(240, 320, 0, 19200, 4800) == (0, 1)      # either order
    assert semantic_levels(120, 160, 19200, 76800, 4800) == (0,)    # both fit: one pass
    assert semantic_levels(240, 320, -1, 1200, 4800) == (2,)        # never below geometry
    with pytest.raises(ValueError, match="semantic_fuse_max_pixels"):
        GSNeRFConfig(semantic_fuse_max_pixels=-2)
    with pytest.raises(ValueError, match="semantic_fuse_max_pixels"):
        InferenceConfig(semantic_fuse_max_pixels=-5)


@pytest.mark.parametrize("level,to_level", [(1, 0), (2, 0), (2, 1)])
def test_level_upsample_puts_each_pixel_where_the_network_grid_has_it(level: int,
                                                                       to_level: int) -> None:
    """A map whose value is its pixel's full-resolution coordinate (2^l j) resampled to a finer
    level holds the finer pixels' coordinates (2^t j) wherever they lie inside the coarse
    grid, and the last coarse value beyond it (border); odd sizes included."""
    for h_full, w_full in ((48, 64), (45, 61)):
        h, w = level_size(h_full, w_full, level)
        ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64),
                                torch.arange(w, dtype=torch.float64), indexing="ij")
        coarse = torch.stack([xs, ys])[None] * 2 ** level                  # [1, 2, h, w]
        fine = level_upsample(coarse, level, to_level, h_full, w_full)
        ht, wt = level_size(h_full, w_full, to_level)
        assert fine.shape == (1, 2, ht, wt)
        ty, tx = torch.meshgrid(torch.arange(ht, dtype=torch.float64),
                                torch.arange(wt, dtype=torch.float64), indexing="ij")
        want = torch.stack([tx.clamp(max=(w - 1) * 2 ** (level - to_level)),
                            ty.clamp(max=(h - 1) * 2 ** (level - to_level))]) * 2 ** to_level
        assert torch.allclose(fine[0], want, atol=1e-9)
    same = torch.randn(1, 3, 12, 16)
    assert level_upsample(same, 2, 2, 48, 64) is same
    with pytest.raises(ValueError, match="not level"):
        level_upsample(same, 1, 0, 48, 64)                                 # 12x16 is level 2
    with pytest.raises(ValueError, match="not finer"):
        level_upsample(same, 2, 3, 48, 64)


@pytest.mark.parametrize("backbone", ["scratch", "efficientnet_lite0"])
def test_fused_maps_are_the_mean_of_both_levels_and_leave_the_geometry(room,
                                                                      backbone: str) -> None:
    """semantic_max_pixels at level 1 fused with level 0: the encoding's semantic maps are at
    level 0, the mean of level 0's maps and level 1's resampled onto level 0; the features,
    depths and volumes are bit-identical to the unfused model's; one keyframe encoded alone
    (the node's path) has the same maps; the 2D segmenter of training is the fused one; a
    render reads them; -1 leaves the model as it was."""
    images, _, K, c2w, near, far = room
    V = 4
    plain, fused = _model(4 * GEO, -1, backbone), _model(4 * GEO, 0, backbone)
    fused.load_state_dict(plain.state_dict())
    x = images[:V]
    with torch.no_grad():
        ref = plain.encode_sources(x, K[:V], c2w[:V], near, far)
        enc = fused.encode_sources(x, K[:V], c2w[:V], near, far)
        f0, l0 = fused.encoder.semantic_maps(x)
        f1, l1 = fused.encoder.semantic_maps(image_level(x, 1))
        logits_2d, s = fused.semantic_logits_2d(x)
        one = fused.encode_view(x[0], K[0], c2w[0], x[1:3], K[1:3], c2w[1:3], near, far)
    assert (ref.semantic_level, enc.semantic_level, enc.geometry_level, s) == (1, 0, 2, 0)
    assert torch.equal(ref.semantic_feature, f1) and torch.equal(ref.semantic_logits, l1)
    want_f = (f0 + level_upsample(f1, 1, 0, H, W)) / 2
    want_l = (l0 + level_upsample(l1, 1, 0, H, W)) / 2
    assert torch.allclose(enc.semantic_feature, want_f, atol=1e-6)
    assert torch.allclose(enc.semantic_logits, want_l, atol=1e-6)
    assert not torch.allclose(enc.semantic_logits, l0, atol=1e-3)        # not level 0 alone
    assert torch.allclose(logits_2d, enc.semantic_logits, atol=1e-6)
    assert torch.allclose(one.semantic_logits, enc.semantic_logits[0], atol=1e-5)
    for a, b in zip([enc.feature, *enc.depth_levels, *enc.volumes],
                    [ref.feature, *ref.depth_levels, *ref.volumes]):
        assert torch.equal(a, b)
    res = fused.render(enc, K[V], c2w[V], H, W, chunk=1024)
    base = plain.render(ref, K[V], c2w[V], H, W, chunk=1024)
    assert torch.equal(res.depth, base.depth) and torch.equal(res.rgb, base.rgb)
    assert res.labels.shape == (H, W) and torch.isfinite(res.semantic_logits).all()


def test_fused_semantics_train_both_passes(room) -> None:
    """The training's 2D loss on the fused logits reaches the semantic path through both
    levels' passes: its gradient differs from either level's alone."""
    images, _, _, _, _, _ = room
    x = images[:2]
    grads = []
    for fuse in (0, -1):
        model = _model(4 * GEO, fuse).train()
        logits, _ = model.semantic_logits_2d(x)
        logits.logsumexp(1).mean().backward()
        grads.append(model.encoder.logit_head.weight.grad.clone())
    level0 = _model(0, -1).train()
    logits, _ = level0.semantic_logits_2d(x)
    logits.logsumexp(1).mean().backward()
    assert torch.isfinite(grads[0]).all() and grads[0].abs().sum() > 0
    assert not torch.allclose(grads[0], grads[1]) and not torch.allclose(
        grads[0], level0.encoder.logit_head.weight.grad)
