"""View selection on known trajectories, training sampling and the evaluation protocol."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gsnerf_ros.data.view_selection import (
    EvalProtocol, TrainViewConfig, cost_volume_neighbours, evaluation_views,
    sample_training_views, select_sources,
)
from gsnerf_ros.geometry import look_at


def _line(n: int = 20, step: float = 0.1) -> torch.Tensor:
    """Cameras on the x axis, all looking along +y."""
    eye = torch.stack([torch.arange(n) * step, torch.zeros(n), torch.ones(n)], -1)
    return look_at(eye, eye + torch.tensor([0.0, 1.0, 0.0]))


def test_nearest_on_a_line_excludes_target() -> None:
    poses = _line()
    src = select_sources(poses, 10, 4)
    assert 10 not in src.tolist()
    assert set(src.tolist()) == {9, 11, 8, 12}
    assert set(src[:2].tolist()) == {9, 11}


def test_viewing_angle_counts() -> None:
    # same place, one camera turned away: the angle term must push it behind a 0.3 m neighbour
    eye = torch.tensor([[0.0, 0, 1], [0.0, 0, 1], [0.3, 0, 1]])
    tgt = torch.tensor([[0.0, 1, 1], [0.0, -1, 1], [0.3, 1, 1]])
    poses = look_at(eye, tgt)
    target = look_at(torch.tensor([0.01, 0, 1]), torch.tensor([0.01, 1, 1]))
    assert select_sources(poses, target, 1).tolist() == [0]
    assert select_sources(poses, target, 2).tolist() == [0, 2]
    assert select_sources(poses, target, 2, angle_weight=0.0).tolist() == [0, 1]


def test_candidates_restrict_choice() -> None:
    poses = _line()
    src = select_sources(poses, 7, 3, candidates=list(range(0, 20, 5)))
    assert src.tolist() == [5, 10, 0]


def test_cost_volume_neighbours_self_first() -> None:
    nb = cost_volume_neighbours(_line(6), m=3)
    assert nb.shape == (6, 4)
    assert nb[:, 0].tolist() == list(range(6))
    assert set(nb[0, 1:].tolist()) == {1, 2, 3}
    assert set(nb[3, 1:3].tolist()) == {2, 4}


def test_cost_volume_neighbours_by_triangulation_pick_the_lane_beside() -> None:
    """A robot driving along +y: nearest picks the views on its own line, triangulation the
    parallel lane 0.7 m beside it (the scene 2 m ahead)."""
    own = torch.stack([torch.zeros(5), torch.arange(5) * 0.3, torch.full((5,), 0.4)], -1)
    lane = own[:2] + torch.tensor([0.7, 0.0, 0.0])
    eye = torch.cat([own, lane])
    c2w = look_at(eye, eye + torch.tensor([0.0, 1.0, 0.0]))
    K = torch.tensor([[160.0, 0.0, 159.5], [0.0, 160.0, 119.5], [0.0, 0.0, 1.0]]).expand(7, 3, 3)
    near = cost_volume_neighbours(c2w, m=2)
    tri = cost_volume_neighbours(c2w, m=2, rule="triangulation", K=K, size=(240, 320),
                                 scene_depth=2.0)
    assert tri.shape == near.shape == (7, 3) and tri[:, 0].tolist() == list(range(7))
    assert set(near[0, 1:].tolist()) == {1, 2} and set(tri[0, 1:].tolist()) == {5, 6}
    assert torch.equal(cost_volume_neighbours(c2w, m=2, rule="triangulation", K=K,
                                              size=(240, 320), near_far=(1.0, 4.0)), tri)
    with pytest.raises(ValueError, match="needs"):
        cost_volume_neighbours(c2w, m=2, rule="triangulation")
    with pytest.raises(ValueError, match="rule"):
        cost_volume_neighbours(c2w, m=2, rule="random")


def test_training_sampling_draws_from_nearby_pool_deterministically() -> None:
    poses = _line(40)
    cfg = TrainViewConfig(num_sources=4, pool_ratios=(2,), pool_cap=8)
    t, src = sample_training_views(poses, np.random.default_rng(3), cfg)
    t2, src2 = sample_training_views(poses, np.random.default_rng(3), cfg)
    assert t == t2 and torch.equal(src, src2)
    assert len(src) == 4 and t not in src.tolist() and len(set(src.tolist())) == 4
    pool = set(select_sources(poses, t, 8).tolist())
    assert set(src.tolist()) <= pool
    seen = set()
    for s in range(30):
        _, src = sample_training_views(poses, np.random.default_rng(s), cfg, target=20)
        assert all(abs(i - 20) <= 4 for i in src.tolist())
        seen.add(tuple(sorted(src.tolist())))
    assert len(seen) > 1


def test_evaluation_protocol_fixed_targets_and_sources() -> None:
    poses = _line(200, 0.05)
    views = evaluation_views(poses, EvalProtocol(num_sources=4))
    assert [t for t, _ in views] == [2, 22, 42, 62, 82, 102, 122, 142, 162, 182]
    for t, src in views:
        assert all(i % 5 == 0 for i in src.tolist())
        assert t not in src.tolist()
        if t > 10:
            assert set(src.tolist()) == {t - 2, t + 3, t - 7, t + 8}
    assert set(views[0][1].tolist()) == {0, 5, 10, 15}
    assert evaluation_views(poses, EvalProtocol(num_sources=4)) is not views
    short = evaluation_views(_line(30), EvalProtocol())
    assert [t for t, _ in short] == [2, 22]


def test_bad_inputs_raise() -> None:
    with pytest.raises(IndexError):
        select_sources(_line(5), 9, 2)
    with pytest.raises(ValueError):
        select_sources(torch.zeros(3, 3, 3), 0, 1)
    with pytest.raises(ValueError):
        sample_training_views(_line(1), np.random.default_rng(0))
    assert math.isclose(float(_line(2)[1, 0, 3]), 0.1, rel_tol=1e-6)
