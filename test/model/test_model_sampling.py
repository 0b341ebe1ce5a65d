"""Samplers: counts, ordering, clamping, the surface sample on D_T, the A.4 schedule."""

from __future__ import annotations

import pytest
import torch

from gsnerf_ros.model.config import SamplingConfig
from gsnerf_ros.model.sampling import (
    mixed_uniform_count,
    pdf_depths,
    sample_along_rays,
    uniform_depths,
)

N = 64


def _td(lo: float = 0.3, hi: float = 5.5) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return lo + (hi - lo) * torch.rand(N, generator=g)


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("mode,expected", [("depth_guided", 9), ("mixed", 16), ("uniform", 64),
                                           ("hierarchical", 32), ("released", 128)])
def test_counts_sorted_and_clamped(mode: str, expected: int, training: bool) -> None:
    cfg = SamplingConfig()
    near, far = torch.full((N,), 0.5), torch.full((N,), 5.0)
    g = torch.Generator().manual_seed(0)
    s = sample_along_rays(mode, near, far, _td(), cfg, training, step=0, generator=g)
    assert s.depths.shape == (N, expected)
    assert (s.depths[:, 1:] >= s.depths[:, :-1]).all()
    assert (s.depths >= 0.5).all() and (s.depths <= 5.0).all()
    assert s.surface_index.shape == (N,) and s.surface_index.dtype == torch.long


@pytest.mark.parametrize("mode", ["depth_guided", "mixed", "released"])
def test_surface_sample_lands_on_target_depth(mode: str) -> None:
    cfg = SamplingConfig()
    td = _td(0.6, 4.9)
    s = sample_along_rays(mode, 0.5, 5.0, td, cfg, training=True, step=10,
                          generator=torch.Generator().manual_seed(3))
    on = s.depths.gather(1, s.surface_index[:, None])[:, 0]
    assert torch.equal(on, td)
    # D_T outside [near, far] is clamped, and the surface sample with it.
    s2 = sample_along_rays(mode, 1.0, 2.0, torch.tensor([0.2, 3.0]), cfg, training=False)
    assert torch.equal(s2.depths.gather(1, s2.surface_index[:, None])[:, 0], torch.tensor([1.0, 2.0]))


def test_uniform_and_hierarchical_have_no_surface_sample() -> None:
    for mode in ("uniform", "hierarchical"):
        s = sample_along_rays(mode, 0.5, 5.0, None, SamplingConfig(), training=False)
        assert (s.surface_index == -1).all()


def test_depth_guided_sigma_absolute_and_relative() -> None:
    td = torch.full((4000,), 2.0)
    for mode, sigma, expect in (("absolute", 0.3, 0.3), ("relative", 0.1, 0.2)):
        cfg = SamplingConfig(sigma=sigma, sigma_mode=mode, sigma_min=0.0, num_guided=16)
        s = sample_along_rays("depth_guided", 0.1, 10.0, td, cfg, training=True,
                              generator=torch.Generator().manual_seed(0))
        assert s.depths.shape == (4000, 17)
        std = float((s.depths - 2.0).pow(2).sum() / (4000 * 16)) ** 0.5   # surface sample adds 0
        assert abs(std - expect) < 0.05 * expect


def test_sigma_override_sets_the_spread_of_the_guided_samples() -> None:
    """render(..., guided_sigma=sampling.sensor_sigma) for measured source depth: the Gaussian
    samples keep to the override's spread, relative or absolute as the config says."""
    td = torch.full((4000,), 2.0)
    for mode, override, expect in (("relative", 0.01, 0.02), ("absolute", 0.05, 0.05)):
        cfg = SamplingConfig(sigma=0.3, sigma_mode=mode, sigma_min=0.0, num_guided=16)
        s = sample_along_rays("depth_guided", 0.1, 10.0, td, cfg, training=True,
                              generator=torch.Generator().manual_seed(0), sigma=override)
        std = float((s.depths - 2.0).pow(2).sum() / (4000 * 16)) ** 0.5
        assert abs(std - expect) < 0.05 * expect
    with pytest.raises(ValueError, match="sensor_sigma"):
        SamplingConfig(sensor_sigma=0.0)


def test_depth_guided_eval_is_deterministic_quantiles() -> None:
    cfg = SamplingConfig(num_guided=8, sigma=0.1, sigma_mode="absolute")
    a = sample_along_rays("depth_guided", 0.1, 10.0, torch.tensor([3.0]), cfg, training=False)
    b = sample_along_rays("depth_guided", 0.1, 10.0, torch.tensor([3.0]), cfg, training=False)
    assert torch.equal(a.depths, b.depths)
    d = a.depths[0]
    assert torch.allclose(d - 3.0, -(d - 3.0).flip(0), atol=1e-6)       # symmetric around D_T


def test_num_samples_override() -> None:
    td = _td()
    s = sample_along_rays("depth_guided", 0.1, 6.0, td, SamplingConfig(), False, num_samples=3)
    assert s.depths.shape == (N, 3)
    s = sample_along_rays("depth_guided", 0.1, 6.0, td, SamplingConfig(), False, num_samples=1)
    assert s.depths.shape == (N, 1) and torch.equal(s.depths[:, 0], td)


def test_mixed_schedule_switches_at_paper_step() -> None:
    """Paper A.4: half uniform / half depth-guided for the first 125k steps, then all guided."""
    cfg = SamplingConfig(mixed_num_samples=16)
    assert cfg.mixed_switch_step == 125_000
    assert mixed_uniform_count(16, cfg, 0) == 8
    assert mixed_uniform_count(16, cfg, 124_999) == 8
    assert mixed_uniform_count(16, cfg, 125_000) == 0
    assert mixed_uniform_count(16, cfg, None) == 0
    td = torch.full((N,), 1.0)
    near, far = 0.5, 5.5
    before = sample_along_rays("mixed", near, far, td, cfg, training=True, step=100,
                               generator=torch.Generator().manual_seed(0))
    after = sample_along_rays("mixed", near, far, td, cfg, training=True, step=200_000,
                              generator=torch.Generator().manual_seed(0))
    assert before.depths.shape == after.depths.shape == (N, 16)
    far_from_surface = lambda s: int(((s.depths - 1.0).abs() > 1.0).sum(1).min())  # noqa: E731
    assert far_from_surface(before) >= 5       # uniform samples cover [near, far]
    assert far_from_surface(after) == 0        # all within a few sigma of D_T = 1


def test_stratified_uniform_in_training_only() -> None:
    near, far = torch.full((N, 1), 1.0), torch.full((N, 1), 3.0)
    det = uniform_depths(near, far, 8)
    assert torch.allclose(det[0], torch.linspace(1.0, 3.0, 8))
    st = uniform_depths(near, far, 8, stratified=True, generator=torch.Generator().manual_seed(0))
    bins = torch.linspace(1.0, 3.0, 9)
    assert ((st >= bins[:-1]) & (st <= bins[1:])).all()
    assert not torch.allclose(st, det)


def test_pdf_samples_follow_weights() -> None:
    bins = torch.linspace(0.0, 4.0, 5).expand(2, 5)
    w = torch.tensor([[0.0, 0.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    f = pdf_depths(bins, w, 64, deterministic=True)
    assert f.shape == (2, 64)
    assert ((f[0] >= 2.0) & (f[0] <= 3.0)).float().mean() > 0.95
    assert abs(float(f[1].mean()) - 2.0) < 0.1


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="needs target_depth"):
        sample_along_rays("depth_guided", 0.1, 1.0, None, SamplingConfig(), False)
    with pytest.raises(ValueError, match="unknown sampling mode"):
        sample_along_rays("nope", 0.1, 1.0, None, SamplingConfig(), False)
    with pytest.raises(ValueError, match="sampling.mode"):
        SamplingConfig(mode="nope")


@pytest.mark.parametrize("num_samples", [None, 5])
@pytest.mark.parametrize("mode", ["depth_guided", "mixed", "uniform", "hierarchical", "released"])
def test_sample_counts_match_what_the_sampler_draws(mode: str, num_samples) -> None:
    """The one table of modes (sampling_modes) and the sampler agree on every count."""
    from gsnerf_ros.model.sampling_modes import mode_spec, sample_counts

    cfg = SamplingConfig()
    s = sample_along_rays(mode, 0.5, 5.0, _td(), cfg, training=False, num_samples=num_samples)
    c = sample_counts(cfg, mode, num_samples)
    assert s.depths.shape[1] == c["first_pass"]
    spec = mode_spec(mode)
    if spec.two_pass:
        assert c["samples"] == c["first_pass"] + cfg.num_fine
        assert c["network_evals"] == c["first_pass"] + c["samples"]
    else:
        assert c["samples"] == c["network_evals"] == s.depths.shape[1]
    assert c["semantic_points"] == (c["samples"] if spec.semantics_at_samples else 1)
    assert (s.surface_index >= 0).all() == spec.needs_target_depth


def test_every_consumer_reads_the_one_list_of_modes() -> None:
    from gsnerf_ros.bench.runner import ALL_MODES
    from gsnerf_ros.model.config import SAMPLING_MODES as from_config
    from gsnerf_ros.model.sampling_modes import SAMPLING_MODES, mode_spec
    from gsnerf_ros.runtime.params import PARAMETERS

    assert from_config is SAMPLING_MODES
    assert set(ALL_MODES) == set(SAMPLING_MODES) - {"mixed"}   # mixed renders as depth_guided
    spec = next(p for p in PARAMETERS if p.name == "render.sampling_mode")
    assert tuple(spec.choices) == SAMPLING_MODES
    with pytest.raises(ValueError, match="unknown sampling mode 'foo'"):
        mode_spec("foo")
    with pytest.raises(ValueError, match="unknown sampling mode"):
        sample_along_rays("foo", 0.5, 5.0, _td(), SamplingConfig(), training=False)
