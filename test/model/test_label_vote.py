"""The label vote (model/label_vote.py): a 2D segmenter's labels carried into a novel view.

An analytic scene: a wall at z = 2 m seen by three sources beside the target, all looking along
+z; the sources' depth is measured (with_sensor_depth), so visibility is known exactly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gsnerf_ros.model import GSNeRF
from gsnerf_ros.model.config import GSNeRFConfig
from gsnerf_ros.model.label_vote import (UNKNOWN, lookup_labels, tally_votes, view_angle_weight,
                                         vote_labels)

H, W = 24, 32
K = torch.tensor([[30.0, 0, (W - 1) / 2], [0, 30.0, (H - 1) / 2], [0, 0, 1]])


def _pose(x: float) -> torch.Tensor:
    c2w = torch.eye(4)
    c2w[0, 3] = x
    return c2w


@pytest.fixture(scope="module")
def wall():
    """(model, encoding of 3 sources at x = -0.2, 0, 0.2 m seeing a wall at z = 2 m)."""
    torch.manual_seed(0)
    model = GSNeRF(GSNeRFConfig.tiny(4)).eval()
    c2w = torch.stack([_pose(-0.2), _pose(0.0), _pose(0.2)])
    imgs = torch.rand(3, 3, H, W)
    with torch.no_grad():
        enc = model.encode_sources(imgs, K.expand(3, 3, 3), c2w, 0.5, 5.0)
    return model, enc.with_sensor_depth(torch.full((3, H, W), 2.0))


def _vote(model, enc, maps, confs=None, valid=None, sigma=0.0):
    td = torch.full((H, W), 2.0)
    tdv = torch.ones(H, W, dtype=torch.bool) if valid is None else valid
    return vote_labels(enc, maps, confs, K, _pose(0.1), td, tdv, model.config.renderer,
                       model.cost_volume.spacing, angle_sigma_deg=sigma)


def _full(v: int) -> torch.Tensor:
    return torch.full((H, W), v, dtype=torch.int64)


def _centre(t: torch.Tensor):
    return t[H // 2, W // 2].item()


def test_majority_wins_with_its_share_as_confidence(wall) -> None:
    model, enc = wall
    vote = _vote(model, enc, [_full(5), _full(5), _full(7)])
    assert _centre(vote.labels) == 5
    assert _centre(vote.confidence) == pytest.approx(2 / 3, abs=1e-5)
    assert _centre(vote.voters) == 3


def test_confidence_weights_the_votes(wall) -> None:
    model, enc = wall
    low = torch.full((H, W), 0.2)
    vote = _vote(model, enc, [_full(5), _full(5), _full(7)], [low, low, torch.ones(H, W)])
    assert _centre(vote.labels) == 7
    assert _centre(vote.confidence) == pytest.approx(1.0 / 1.4, abs=1e-5)


def test_occluded_views_do_not_vote(wall) -> None:
    model, enc = wall
    assert _centre(_vote(model, enc, [_full(7), _full(5), _full(5)]).labels) == 5
    # views 1 and 2 see an occluder 1 m away: the wall point at 2 m is hidden from them
    occluded = enc.with_sensor_depth(torch.stack([torch.full((H, W), 2.0)]
                                                 + [torch.full((H, W), 1.0)] * 2))
    vote = _vote(model, occluded, [_full(7), _full(5), _full(5)])
    assert _centre(vote.labels) == 7 and _centre(vote.confidence) == pytest.approx(1.0)
    assert _centre(vote.voters) == 1


def test_unknown_ids_vote_for_nothing(wall) -> None:
    model, enc = wall
    vote = _vote(model, enc, [_full(UNKNOWN), _full(UNKNOWN), _full(7)])
    assert _centre(vote.labels) == 7 and _centre(vote.confidence) == pytest.approx(1.0)
    assert _centre(vote.voters) == 1
    vote = _vote(model, enc, [_full(UNKNOWN), None, _full(UNKNOWN)])
    assert (vote.labels == UNKNOWN).all() and (vote.confidence == 0).all()
    assert (vote.voters == 0).all()


def test_pixels_without_target_depth_get_no_vote(wall) -> None:
    model, enc = wall
    valid = torch.ones(H, W, dtype=torch.bool)
    valid[:, : W // 2] = False
    vote = _vote(model, enc, [_full(5)] * 3, valid=valid)
    assert (vote.labels[:, : W // 2] == UNKNOWN).all()
    assert (vote.confidence[:, : W // 2] == 0).all()
    assert _centre(vote.labels) == 5


def test_the_surface_point_is_looked_up_where_each_view_sees_it(wall) -> None:
    """Label maps split at a vertical line at world x = 0.1 on the wall: every view's map puts
    it where that view sees it, so the vote agrees on both sides in the target."""
    model, enc = wall
    maps = []
    for x in (-0.2, 0.0, 0.2):
        u_edge = K[0, 0] * (0.1 - x) / 2.0 + K[0, 2]          # projection of world x = 0.1
        cols = torch.arange(W).float()
        maps.append(torch.where(cols[None].expand(H, W) < u_edge, 1, 2).long())
    vote = _vote(model, enc, maps)
    # target at x = 0.1: the line projects to the principal point's column
    cx = float(K[0, 2])
    assert (vote.labels[:, : int(cx) - 1] == 1).all()
    assert (vote.labels[:, int(cx) + 2:] == 2).all()
    far = torch.cat([vote.confidence[:, : int(cx) - 1], vote.confidence[:, int(cx) + 2:]], 1)
    assert (far == 1).all()


def test_label_maps_of_another_size_are_read_at_the_same_image_point() -> None:
    big = torch.arange(8 * 6).reshape(6, 8)              # a 8x6 map of a 4x3 image
    uv = torch.tensor([[0.0, 0.0], [3.0, 2.0], [1.0, 1.0]])
    ids, conf = lookup_labels(big, None, uv, 3, 4)
    # image pixel (u, v) covers map pixels [2u, 2u + 1] x [2v, 2v + 1]: the nearest is 2u + 1
    assert ids.tolist() == [big[1, 1].item(), big[5, 7].item(), big[3, 3].item()]
    assert conf.tolist() == [1.0, 1.0, 1.0]
    small = torch.tensor([[4, 5]])                         # a 2x1 map of a 4x3 image
    ids, _ = lookup_labels(small, torch.tensor([[0.5, 0.25]]), uv, 3, 4)
    assert ids.tolist() == [4, 5, 4]


def test_tally_breaks_ties_to_the_smallest_id_and_ignores_zero_weights() -> None:
    ids = torch.tensor([[9, 4, 9, 4], [3, 3, 8, 8], [1, 2, -1, 2]])
    w = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 1.0, 0.0], [0.0, 0.5, 5.0, 0.5]])
    label, share, n = tally_votes(ids, w)
    assert label.tolist() == [4, 3, 2]
    assert share.tolist() == pytest.approx([0.5, 0.5, 1.0])
    assert n.tolist() == [4, 2, 2]


def test_view_weight_favours_sources_whose_ray_is_near_the_targets(wall) -> None:
    _, enc = wall
    point = torch.tensor([[0.1, 0.0, 2.0]])
    ray = torch.tensor([[0.0, 0.0, 1.0]])              # target at x = 0.1 looking at it
    w = view_angle_weight(point, ray, enc, 5.0)[0]
    angles = [math.degrees(math.atan2(abs(0.1 - x), 2.0)) for x in (-0.2, 0.0, 0.2)]
    expect = [math.exp(-0.5 * (a / 5.0) ** 2) for a in angles]
    assert w.tolist() == pytest.approx(expect, rel=1e-4)
    assert (view_angle_weight(point, ray, enc, 0.0) == 1).all()
    assert np.argmax(w.tolist()) in (1, 2)


def test_depth_search_finds_the_depth_the_views_agree_on(wall) -> None:
    """D_T 20 % too deep: the views' labels of the true wall disagree at D_T near a label edge
    and agree again at the true depth, which the search (range 25 %) finds."""
    from gsnerf_ros.model.label_vote import depth_scales

    model, enc = wall
    maps = []
    for x in (-0.2, 0.0, 0.2):
        u_edge = K[0, 0] * (0.1 - x) / 2.0 + K[0, 2]
        cols = torch.arange(W).float()[None].expand(H, W)
        maps.append(torch.where(cols < u_edge, 1, 2).long())
    wrong = torch.full((H, W), 2.4)
    tdv = torch.ones(H, W, dtype=torch.bool)

    def vote(search: float):
        return vote_labels(enc, maps, None, K, _pose(0.1), wrong, tdv, model.config.renderer,
                           model.cost_volume.spacing, depth_search=search)

    expect = torch.where(torch.arange(W) <= int(K[0, 2]), 1, 2)[None].expand(H, W)
    cols = slice(4, W - 4)
    off = vote(0.0)
    assert (off.labels[:, cols] != expect[:, cols]).any()
    on = vote(0.25)
    assert torch.equal(on.labels[:, cols], expect[:, cols])
    scales = depth_scales(0.25)
    assert scales[0] == 1.0 and len(scales) == 9
    assert min(scales) == pytest.approx(1 / 1.25) and max(scales) == pytest.approx(1.25)
    assert depth_scales(0.0) == [1.0]
