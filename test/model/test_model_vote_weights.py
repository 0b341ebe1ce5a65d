"""The semantic renderer's vote of the sources' 2D labels weighted by proximity
(``semantic.vote_weights``; model/semantic_renderer.py)."""

from __future__ import annotations

import pytest
import torch

from gsnerf_ros.geometry import look_at, pose_distance
from gsnerf_ros.model.config import SemanticConfig
from gsnerf_ros.model.semantic_renderer import SemanticRenderer, vote_weights
from helpers.rooms import label_skip_model_and_views


def _renderer(how: str) -> SemanticRenderer:
    torch.manual_seed(0)
    r = SemanticRenderer(SemanticConfig(d_model=8, num_heads=2, num_layers=1, label_skip=True,
                                        vote_weights=how), in_ch=5, num_classes=3)
    with torch.no_grad():                      # the head adds nothing: the output is the vote
        r.head[-1].weight.zero_()
        r.head[-1].bias.zero_()
    return r


def test_the_vote_is_the_weighted_mean_of_the_visible_views_log_probabilities() -> None:
    """Head zeroed: ``mean`` gives the plain mean of the visible views' log-probabilities,
    weights give their weighted mean (a hidden view counts for nothing whatever its weight),
    and equal weights give the mean bit for bit."""
    torch.manual_seed(1)
    P, V, C = 6, 4, 3
    feats, logits = torch.randn(P, V, 5), torch.randn(P, V, C)
    mask = torch.rand(P, V) > 0.3
    mask[:, 0] = True
    w = torch.tensor([4.0, 1.0, 0.5, 2.0])
    logp = logits.log_softmax(-1)
    m = mask.float()[..., None]
    with torch.no_grad():
        plain = _renderer("mean")(feats, mask, logits)
        weighted = _renderer("proximity")(feats, mask, logits, w)
        same = _renderer("mean")(feats, mask, logits, torch.full((V,), 3.0))
    assert torch.allclose(plain, (logp * m).sum(1) / m.sum(1), atol=1e-6)
    want = (logp * m * w[None, :, None]).sum(1) / (m * w[None, :, None]).sum(1)
    assert torch.allclose(weighted, want, atol=1e-6)
    assert not torch.allclose(weighted, plain, atol=1e-3)
    assert torch.allclose(same, plain, atol=1e-6)


def test_proximity_weights_are_the_baselines() -> None:
    """``proximity``: 1 / (pose distance + 0.05 m) per source, the nearest source weighs most;
    ``mean``: None; anything else is refused."""
    up = torch.tensor([0.0, 0.0, 1.0])
    target = look_at(torch.tensor([0.0, 0.0, 1.5]), torch.tensor([3.0, 0.0, 1.5]), up)
    c2w = torch.stack([look_at(torch.tensor([x, 0.0, 1.5]), torch.tensor([3.0, 0.0, 1.5]), up)
                       for x in (-0.2, -1.0, 0.5)])

    class _Enc:
        pass

    enc = _Enc()
    enc.c2w = c2w
    w = vote_weights(enc, target, "proximity")
    want = 1.0 / (pose_distance(c2w, target.expand_as(c2w)) + 0.05)
    assert torch.allclose(w, want) and int(w.argmax()) == 0
    assert vote_weights(enc, target, "mean") is None
    with pytest.raises(ValueError, match="vote_weights"):
        vote_weights(enc, target, "farthest")
    with pytest.raises(ValueError, match="vote_weights"):
        SemanticConfig(vote_weights="farthest")


def test_a_render_with_proximity_weights_differs_only_in_its_classes() -> None:
    """The same model rendering with ``proximity`` instead of ``mean``: colour and depth are
    bit-identical, the semantic logits differ."""
    model, images, K, c2w, near, far = label_skip_model_and_views()
    with torch.no_grad():
        enc = model.encode_sources(images[:3], K[:3], c2w[:3], near, far)
        a = model.render(enc, K[3], c2w[3], 24, 32, chunk=512)
        model.config.semantic.vote_weights = "proximity"
        b = model.render(enc, K[3], c2w[3], 24, 32, chunk=512)
    assert torch.equal(a.rgb, b.rgb) and torch.equal(a.depth, b.depth)
    assert not torch.allclose(a.semantic_logits, b.semantic_logits, atol=1e-4)
