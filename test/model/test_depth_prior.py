"""The single-view depth prior (model/depth_prior.py): the head's shapes and units, the
canonical camera, the prior in the cost volume's first stage, and that a model with the prior
off is the model without it, bit for bit."""

from __future__ import annotations

import math

import pytest
import torch

from gsnerf_ros.config import load_config
from gsnerf_ros.model import GSNeRF, GSNeRFConfig
from gsnerf_ros.model.config import CostVolumeConfig, EncoderConfig
from gsnerf_ros.model.cost_volume import CascadeCostVolume, CascadeInput
from gsnerf_ros.model.depth_prior import (MonoDepthHead, canonical_to_metric, prior_logits,
                                          prior_nll)
from gsnerf_ros.model.inference import InferenceConfig, apply_inference
from helpers.rooms import protocol_views

H, W = 48, 64


def _lite(depth_prior: bool, weight: float = 0.0) -> GSNeRFConfig:
    cfg = GSNeRFConfig.tiny(4)
    cfg.encoder = EncoderConfig(backbone="efficientnet_lite0", pretrained=False,
                                fpn_channels=[4, 8, 8], groups=4, semantic_decoder="fpn",
                                semantic_fpn_channels=16, semantic_stem="own",
                                depth_prior=depth_prior, depth_prior_channels=8)
    cfg.cost_volume.depth_prior_weight = weight
    return cfg


def test_head_gives_log_depth_and_a_bounded_log_std_at_a_quarter_of_any_size() -> None:
    head = MonoDepthHead((16, 24, 40, 112, 320), channels=8)
    taps = [torch.randn(2, c, 64 // s, 96 // s) for c, s in
            zip((16, 24, 40, 112, 320), (2, 4, 8, 16, 32))]
    with torch.no_grad():
        head.out.bias[1] = 50.0                       # an absurd std is clamped
        out = head(taps, 61, 90)                      # padded to 64 x 96 by the encoder
    assert out.shape == (2, 2, 16, 23)
    assert float(out[:, 1].max()) == pytest.approx(math.log(2.0))


def test_canonical_depth_is_the_same_for_every_pyramid_level_of_an_image() -> None:
    """Only f_x / width matters: the same prediction of a 320-wide image and of its 160-wide
    level gives the same metric depth, and a narrower field of view (longer focal length) a
    proportionally larger one."""
    p = torch.stack([torch.full((1, 3, 4), 0.5), torch.full((1, 3, 4), -1.0)], 1)
    K = torch.tensor([[[300.0, 0, 160], [0, 300, 120], [0, 0, 1]]])
    a = canonical_to_metric(p, K, 320)
    b = canonical_to_metric(p, K * torch.tensor([[0.5], [0.5], [1.0]]), 160)
    assert torch.allclose(a, b)
    assert torch.allclose(a[:, 0].exp(), torch.full((1, 3, 4), math.exp(0.5) * 300 / 320))
    tele = canonical_to_metric(p, K * torch.tensor([[2.0], [2.0], [1.0]]), 320)
    assert torch.allclose(tele[:, 0].exp(), 2 * a[:, 0].exp())
    assert torch.equal(a[:, 1], p[:, 1])


def test_prior_logits_peak_at_the_prior_depth_and_vanish_with_weight_zero() -> None:
    planes = torch.linspace(0.5, 5.0, 16).view(1, 16, 1, 1).expand(1, 16, 3, 4)
    prior = torch.stack([torch.full((1, 6, 8), math.log(2.0)), torch.full((1, 6, 8), -1.0)], 1)
    lg = prior_logits(planes, prior, 1.0)
    assert lg.shape == (1, 16, 3, 4)
    best = planes[0, lg[0, :, 0, 0].argmax(), 0, 0]
    assert abs(float(best) - 2.0) < 0.2
    assert float(lg.max()) <= 0
    assert torch.equal(prior_logits(planes, prior, 0.0), torch.zeros_like(lg))
    assert torch.allclose(prior_logits(planes, prior, 0.5), 0.5 * lg)


def test_nll_is_lowest_at_the_true_depth_and_ignores_unknown_pixels() -> None:
    depth = torch.full((1, 12, 16), 3.0)
    depth[:, :4] = 0.0                                # unknown rows
    def nll(mu: float, log_s: float) -> float:
        p = torch.stack([torch.full((1, 3, 4), mu), torch.full((1, 3, 4), log_s)], 1)
        return float(prior_nll(p, depth))
    assert nll(math.log(3.0), -1.0) < nll(math.log(2.0), -1.0)
    assert nll(math.log(3.0), -2.0) < nll(math.log(3.0), -1.0)   # right and sure is best
    assert nll(math.log(1.0), 0.0) < nll(math.log(1.0), -2.0)    # wrong: better unsure
    with pytest.raises(ValueError, match="level 2"):
        prior_nll(torch.zeros(1, 2, 5, 5), depth)


def test_a_sure_prior_decides_the_first_stage_where_matching_cannot() -> None:
    """Features without texture (zeros) match every plane alike: without the prior the depth is
    whatever the untrained network makes of it; with a sure prior the first stage takes the
    plane nearest the prior's depth (in log depth) and the cascade, which has nothing to refine
    on, stays there; weight 0 is no prior."""
    torch.manual_seed(0)
    cfg = CostVolumeConfig(num_planes=[16, 8, 4], num_neighbors=1, groups=4,
                           reg_channels=[4, 8, 8], volume_channels=4, photometric=False,
                           depth_prior_weight=1.0)
    cv = CascadeCostVolume(cfg, [4, 8, 8]).eval()
    K = torch.tensor([[40.0, 0, 32], [0, 40, 24], [0, 0, 1]])
    c2w_src = torch.eye(4)
    c2w_src[0, 3] = 0.2
    pyr = [torch.zeros(4, 48, 64), torch.zeros(8, 24, 32), torch.zeros(8, 12, 16)]
    q, _ = cv.stage_planes(0, None, (12, 16), 0.5, 8.0, torch.device("cpu"))
    planes = cv.spacing.depth(q[:, 0, 0])

    def depth(p: torch.Tensor | None) -> torch.Tensor:
        v = CascadeInput(pyr, [x[None] for x in pyr], K, K[None], torch.eye(4), c2w_src[None],
                         0.5, 8.0, depth_prior=p)
        with torch.no_grad():
            return cv.forward_views([v])[0].depth[0]

    def sure(z: float) -> torch.Tensor:
        return torch.stack([torch.full((12, 16), math.log(z)), torch.full((12, 16), -4.0)])

    for z in (1.3, 2.2, 3.0):
        nearest = planes[(planes.log() - math.log(z)).abs().argmin()]
        assert torch.allclose(depth(sure(z)), nearest.expand(48, 64))
    assert not torch.allclose(depth(None), depth(sure(1.3)))
    # on the second stage too (depth_prior_stages 2), its finer planes come nearer the prior
    first = depth(sure(2.2))
    cfg.depth_prior_stages = 2
    second = depth(sure(2.2))
    assert float((second - 2.2).abs().max()) < float((first - 2.2).abs().min())
    cfg.depth_prior_stages = 1
    cfg.depth_prior_weight = 0.0
    assert torch.equal(depth(sure(2.2)), depth(None))
    with pytest.raises(ValueError, match="depth_prior_stages"):
        CostVolumeConfig(depth_prior_stages=4)


def test_a_model_with_the_prior_off_is_the_model_without_the_head_bit_for_bit() -> None:
    """The same weights with and without a depth head (weight 0): identical encodings; with
    the weight on, only the depths move; a model without a head refuses the weight."""
    torch.manual_seed(0)
    images, _, K, c2w, near, far = protocol_views(H, W, frames=8, seed=0, num_sources=3,
                                                  source_stride=2, with_target=False)
    plain = GSNeRF(_lite(False)).eval()
    headed = GSNeRF(_lite(True)).eval()
    missing, unexpected = headed.load_state_dict(plain.state_dict(), strict=False)
    assert unexpected == [] and missing and all(k.startswith("encoder.depth_head.")
                                                for k in missing)
    with torch.no_grad():
        a = plain.encode_sources(images[:3], K[:3], c2w[:3], near, far)
        b = headed.encode_sources(images[:3], K[:3], c2w[:3], near, far)
        for x, y in zip(a.depth_levels + [a.feature, a.semantic_logits],
                        b.depth_levels + [b.feature, b.semantic_logits]):
            assert torch.equal(x, y)
        headed.config.cost_volume.depth_prior_weight = 1.0
        c = headed.encode_sources(images[:3], K[:3], c2w[:3], near, far)
        assert not torch.equal(a.depth_levels[-1], c.depth_levels[-1])
        assert torch.equal(a.feature, c.feature) and torch.equal(a.semantic_logits,
                                                                 c.semantic_logits)
        one = headed.encode_view(images[0], K[0], c2w[0], images[1:3], K[1:3], c2w[1:3],
                                 near, far)
        assert torch.allclose(one.depth_levels[0], c.depth_levels[0][0], atol=1e-4)
        assert not torch.allclose(one.depth_levels[0], a.depth_levels[0][0], atol=1e-4)
        plain.config.cost_volume.depth_prior_weight = 1.0
        with pytest.raises(ValueError, match="depth prior"):
            plain.encode_sources(images[:3], K[:3], c2w[:3], near, far)


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="depth_prior"):
        EncoderConfig(depth_prior=True)                  # the scratch encoder has no head
    with pytest.raises(ValueError, match="depth_prior_weight"):
        CostVolumeConfig(depth_prior_weight=-1.0)
    with pytest.raises(ValueError, match="depth_prior_weight"):
        InferenceConfig(depth_prior_weight=-0.5)
    inf = InferenceConfig.from_sidecar({"cost_volume.depth_prior_weight": 0.5})
    assert inf.model_settings() == {"cost_volume.depth_prior_weight": 0.5}
    plain = GSNeRFConfig.tiny(3)
    with pytest.raises(ValueError, match="depth head"):      # and nothing is set
        apply_inference(plain, InferenceConfig(depth_prior_weight=0.5, colour_views=1))
    assert plain == GSNeRFConfig.tiny(3)
    assert apply_inference(_lite(True), inf).cost_volume.depth_prior_weight == 0.5
    from gsnerf_ros.runtime.params import params_from_values
    with pytest.raises(ValueError, match="model.depth_prior_weight"):
        params_from_values({"model.depth_prior_weight": -0.5})
    assert params_from_values({}).model_depth_prior_weight == -1.0
    from gsnerf_ros.train.config import TrainConfig
    cfg = load_config(TrainConfig, None, ["objective=depth_prior", "data.colour_jitter=0.2",
                                          "log.select_metric=depth_abs_rel"])
    assert cfg.objective == "depth_prior"


@pytest.mark.parametrize("geometry, semantic, fuse", [(0, -1, -1), (768, 0, -1), (768, 0, 768),
                                                      (192, 768, 0)])
def test_the_prior_shares_the_semantic_pass_and_equals_a_pass_of_its_own(
        geometry: int, semantic: int, fuse: int) -> None:
    """Wherever the semantic maps are computed (one level, two fused, the geometry's own pass),
    the encodings' prior is the head's on the 2D segmenter's level, to the bit, and the
    semantic maps are those of a model without the prior."""
    from gsnerf_ros.model.geo_reasoner import depth_prior, encoder_outputs

    torch.manual_seed(0)
    cfg = _lite(True, 1.0)
    cfg.geometry_max_pixels, cfg.semantic_max_pixels = geometry, semantic
    cfg.semantic_fuse_max_pixels = fuse
    model = GSNeRF(cfg).eval()
    images, _, K, c2w, near, far = protocol_views(H, W, frames=6, seed=1, num_sources=2,
                                                  source_stride=2, with_target=False)
    with torch.no_grad():
        out, _, _ = encoder_outputs(model.encoder, cfg, images[:2], K[:2])
        alone = depth_prior(model.encoder, cfg, images[:2], K[:2])
        cfg.cost_volume.depth_prior_weight = 0.0
        plain, _, _ = encoder_outputs(model.encoder, cfg, images[:2], K[:2])
    assert out.depth_prior is not None and torch.equal(out.depth_prior, alone)
    assert plain.depth_prior is None
    assert torch.equal(out.semantic_logits, plain.semantic_logits)
    assert all(torch.equal(a, b) for a, b in zip(out.pyramid, plain.pyramid))
