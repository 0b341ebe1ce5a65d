"""``semantic.view_geometry``: the semantic renderer told how each view sees the surface point,
with a learnt factor on each view's weight in the label vote (model/semantic_renderer.py)."""

from __future__ import annotations

import copy

import pytest
import torch

from gsnerf_ros.geometry import camera_rays, look_at
from gsnerf_ros.model import GSNeRF
from gsnerf_ros.model.config import SemanticConfig
from gsnerf_ros.model.semantic_renderer import (GEOMETRY_FEATURES, SemanticRenderer,
                                                surface_geometry)
from helpers.rooms import label_skip_model_and_views


class _PassThrough(torch.nn.Module):
    def forward(self, tokens: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        return tokens


def test_config_needs_the_label_vote_and_the_surface_mode() -> None:
    with pytest.raises(ValueError, match="view_geometry"):
        SemanticConfig(view_geometry=True)
    with pytest.raises(ValueError, match="view_geometry"):
        SemanticConfig(view_geometry=True, label_skip=True, mode="volume")
    SemanticConfig(view_geometry=True, label_skip=True)


def test_it_starts_as_a_no_op_and_then_weighs_the_views_by_their_geometry() -> None:
    """Zero-initialised: the same output bit for bit as the renderer without it, whatever the
    geometry. With the vote factor set to distrust a positive depth residual and the head
    zeroed, a view that sees the point behind its own surface counts for (almost) nothing in
    the vote."""
    torch.manual_seed(0)
    plain = SemanticRenderer(SemanticConfig(d_model=8, num_heads=2, num_layers=1,
                                            label_skip=True), in_ch=5, num_classes=3)
    geo = SemanticRenderer(SemanticConfig(d_model=8, num_heads=2, num_layers=1, label_skip=True,
                                          view_geometry=True), in_ch=5, num_classes=3)
    geo.load_state_dict(plain.state_dict(), strict=False)
    P, V = 5, 3
    feats, logits = torch.randn(P, V, 5), torch.randn(P, V, 3)
    mask = torch.ones(P, V, dtype=torch.bool)
    g = torch.randn(P, V, GEOMETRY_FEATURES - 1)
    with torch.no_grad():
        assert torch.equal(plain(feats, mask, logits), geo(feats, mask, logits, None, g))
    with pytest.raises(ValueError, match="geometry"):
        geo(feats, mask, logits)

    # The view tokens carry the residual (feature 4) alone, and the factor reads it.
    with torch.no_grad():
        for layer in (plain.head[-1], geo.head[-1]):
            layer.weight.zero_()
            layer.bias.zero_()
        for p in geo.parameters():
            p.requires_grad_(False)
        geo.view_embed[0].weight.zero_()
        geo.view_embed[0].bias.zero_()
        geo.transformer = _PassThrough()        # tokens pass straight to the vote factor
        lin0, lin1 = geo.geometry_embed[0], geo.geometry_embed[-1]
        lin0.weight.zero_(), lin0.bias.zero_(), lin1.weight.zero_(), lin1.bias.zero_()
        lin0.weight[0, 4] = 1.0                         # hidden unit 0 = ELU(residual)
        lin1.weight[0, 0] = 1.0
        geo.vote_factor.weight.zero_()
        geo.vote_factor.weight[0, 0] = -100.0           # clamped: e^-4 for residual > 0
    g = torch.zeros(P, V, GEOMETRY_FEATURES - 1)
    g[:, 2, 4] = 0.5                                    # view 2 sees the point occluded
    logits = torch.full((P, V, 3), -5.0)
    logits[:, :2, 0] = 5.0                              # views 0, 1 say class 0
    logits[:, 2, 1] = 20.0                              # view 2 says class 1, very surely
    with torch.no_grad():
        even = plain(feats, mask, logits)
        weighed = geo(feats, mask, logits, None, g)
    assert (even.argmax(-1) == 1).all()                 # the sure, occluded view wins the mean
    assert (weighed.argmax(-1) == 0).all()              # and loses the learnt vote


def test_surface_geometry_of_a_known_rig() -> None:
    """A source 1 m to the side of the target, both 2 m from a wall: the dot product of the
    rays, the depth residual against an exact depth map (0) and against one 10 % too near
    (> 0), and the distance ratio."""
    up = torch.tensor([0.0, -1.0, 0.0])
    H, W = 12, 16
    K = torch.tensor([[10.0, 0.0, (W - 1) / 2], [0.0, 10.0, (H - 1) / 2], [0.0, 0.0, 1.0]])
    tgt = look_at(torch.tensor([0.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 2.0]), up)
    src = look_at(torch.tensor([1.0, 0.0, 0.0]), torch.tensor([1.0, 0.0, 2.0]), up)

    class _Enc:
        depth_map_level = 0

    enc = _Enc()
    enc.c2w = src[None]
    uv_t = torch.tensor([[(W - 1) / 2, (H - 1) / 2]])
    o, dirs = camera_rays(uv_t, K, tgt)
    depth = torch.tensor([2.0])                       # the wall point (0, 0, 2)
    uv_s = torch.tensor([[[(W - 1) / 2 - 5.0, (H - 1) / 2]]])   # x = -1 m at 2 m, f 10
    for scale, sign in ((1.0, 0), (0.9, 1)):
        enc.depth = torch.full((1, H, W), 2.0 * scale)
        g = surface_geometry(enc, o, dirs, depth, uv_s)[0, 0]
        assert g.shape == (GEOMETRY_FEATURES - 1,)
        assert g[3] == pytest.approx(2.0 / 5 ** 0.5, abs=1e-5)       # cos of the ray angle
        want = (2.0 - 2.0 * scale) / 2.0
        assert g[4] == pytest.approx(want, abs=1e-5) and (g[4] > 0) == bool(sign)
        assert g[5] == pytest.approx(torch.log(torch.tensor(5 ** 0.5 / 2)).item(), abs=1e-5)


def test_a_model_with_it_renders_and_its_colour_and_depth_are_unchanged() -> None:
    model, images, K, c2w, near, far = label_skip_model_and_views()
    cfg2 = copy.deepcopy(model.config)
    cfg2.semantic.view_geometry = True
    geo = GSNeRF(cfg2).eval()
    geo.load_state_dict(model.state_dict(), strict=False)
    with torch.no_grad():
        for p in (geo.semantic_renderer.geometry_embed[-1].weight,
                  geo.semantic_renderer.vote_factor.weight):
            p.normal_(0.0, 0.5)
        enc = model.encode_sources(images[:3], K[:3], c2w[:3], near, far)
        a = model.render(enc, K[3], c2w[3], 24, 32, chunk=512)
        b = geo.render(enc, K[3], c2w[3], 24, 32, chunk=512)
    assert torch.equal(a.rgb, b.rgb) and torch.equal(a.depth, b.depth)
    assert torch.isfinite(b.semantic_logits).all()
    assert not torch.allclose(a.semantic_logits, b.semantic_logits, atol=1e-4)
    with pytest.raises(ValueError, match="view_geometry"):
        with torch.no_grad():
            geo.render(enc, K[3], c2w[3], 24, 32, chunk=512, semantic_mode="volume")
