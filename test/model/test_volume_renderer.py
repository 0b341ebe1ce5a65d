"""The volume renderer alone (paper Eq. 9-11): masked views, the colour's normalisation by the
accumulated opacity, and the colour taken from the kept (nearest) views."""

from __future__ import annotations

import pytest
import torch

from gsnerf_ros.model.config import RendererConfig
from gsnerf_ros.model.volume_renderer import VolumeRenderer, prefer_views


def _renderer_inputs(num_layers: int, N: int = 3, S: int = 4, Vv: int = 5):  # type: ignore[no-untyped-def]
    """A seeded VolumeRenderer (in_ch 10) and random inputs for N rays of S samples, Vv views,
    every view visible: (renderer, view_in, rgb, dirs, visible, depths, near, far)."""
    torch.manual_seed(0)
    r = VolumeRenderer(RendererConfig(d_model=16, num_heads=2, num_layers=num_layers),
                       in_ch=10).eval()
    x = torch.randn(N * S, Vv, 10)
    rgb, dirs = torch.rand(N * S, Vv, 3), torch.randn(N * S, Vv, 4)
    vis = torch.ones(N * S, Vv, dtype=torch.bool)
    depths = torch.linspace(1, 3, S).expand(N, S).contiguous()
    return r, x, rgb, dirs, vis, depths, torch.full((N,), 0.5), torch.full((N,), 4.0)


def test_masked_view_does_not_influence_renderer() -> None:
    """Eq. 11: a view masked for a sample contributes nothing (attention key mask, masked
    mean/variance, colour blend)."""
    r, x, rgb, dirs, vis, depths, near, far = _renderer_inputs(num_layers=2)
    vis[:, 2] = False
    a = r(x, rgb, dirs, vis, vis, depths, near, far)
    x2, rgb2, dirs2 = x.clone(), rgb.clone(), dirs.clone()
    x2[:, 2] += 5.0
    rgb2[:, 2] = 1.0 - rgb2[:, 2]
    dirs2[:, 2] *= -1
    b = r(x2, rgb2, dirs2, vis, vis, depths, near, far)
    torch.testing.assert_close(a["rgb"], b["rgb"])
    torch.testing.assert_close(a["sigma"], b["sigma"])


@pytest.mark.parametrize("normalise", [True, False])
def test_colour_is_normalised_by_the_accumulated_opacity(normalise: bool) -> None:
    """renderer.normalise_colour: a ray whose density leaves opacity unspent keeps its colour
    (every source shows the same grey, so the blend is that grey at any weights); without it
    the ray is darkened by its accumulated opacity (GeoNeRF / released)."""
    torch.manual_seed(0)
    r = VolumeRenderer(RendererConfig(d_model=16, num_heads=2, num_layers=1,
                                      normalise_colour=normalise), in_ch=10).eval()
    N, S, Vv = 4, 6, 3
    with torch.no_grad():
        r.density.out[-1].bias.fill_(-6.0)          # almost transparent: acc << 1
        out = r(torch.randn(N * S, Vv, 10), torch.full((N * S, Vv, 3), 0.6),
                torch.randn(N * S, Vv, 4), torch.ones(N * S, Vv, dtype=torch.bool),
                torch.ones(N * S, Vv, dtype=torch.bool),
                torch.linspace(1, 3, S).expand(N, S).contiguous(), torch.full((N,), 0.5),
                torch.full((N,), 4.0))
    assert float(out["acc"].max()) < 0.2
    want = torch.full((N, 3), 0.6) if normalise else (0.6 * out["acc"])[:, None].expand(N, 3)
    torch.testing.assert_close(out["rgb"], want, atol=1e-5, rtol=1e-5)


def test_prefer_views_keeps_the_preferred_views_where_one_is_set() -> None:
    mask = torch.tensor([[1, 1, 0, 1], [0, 0, 1, 1], [0, 0, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    keep = torch.tensor([1, 1, 0, 0], dtype=torch.bool)
    out = prefer_views(mask, keep)
    assert out.tolist() == [[True, True, False, False],   # kept views only
                            [False, False, True, True],   # none kept sees it: as it was
                            [False] * 4,
                            [True, False, False, False]]


def test_kept_views_alone_lend_colour_where_one_of_them_may() -> None:
    """``keep`` (renderer.colour_views): a sample that a kept view sees takes its colour from the
    kept views only; one that none sees falls back to every view that does; the density does
    not change."""
    r, x, rgb, dirs, vis, depths, near, far = _renderer_inputs(num_layers=1)
    S = depths.shape[1]
    vis[:S, :2] = False                                   # ray 0: no kept view sees it
    keep = torch.tensor([True, True, False, False, False])
    every = r(x, rgb, dirs, vis, vis, depths, near, far)
    kept = r(x, rgb, dirs, vis, vis, depths, near, far, keep)
    for f in ("sigma", "weights", "depth", "acc"):
        assert torch.equal(kept[f], every[f]), f
    torch.testing.assert_close(kept["rgb"][0], every["rgb"][0])
    assert not torch.allclose(kept["rgb"][1:], every["rgb"][1:], atol=1e-3)
    other = rgb.clone()
    other[:, 2:] = 1.0 - other[:, 2:]                     # the other views' colours only
    again = r(x, other, dirs, vis, vis, depths, near, far, keep)
    torch.testing.assert_close(again["rgb"][1:], kept["rgb"][1:])
    assert not torch.allclose(again["rgb"][0], kept["rgb"][0], atol=1e-3)
