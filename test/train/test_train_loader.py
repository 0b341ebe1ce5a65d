"""Training loader: one seeded sample per step, identical for any worker count, resumable."""

from __future__ import annotations

import pytest
import torch

from gsnerf_ros.data.dataset import DatasetConfig, GSNeRFDataset, TrainViewConfig
from gsnerf_ros.data.scene import InMemoryScene
from gsnerf_ros.geometry import look_at
from gsnerf_ros.train.loader import StepSampler, make_train_loader, step_item_index, to_device


def _dataset(n: int = 20) -> GSNeRFDataset:
    eye = torch.stack([torch.arange(n) * 0.1, torch.zeros(n), torch.ones(n)], -1).float()
    c2w = look_at(eye, eye + torch.tensor([0.0, 1.0, 0.0]))
    H, W = 12, 16
    K = torch.tensor([[10.0, 0, 7.5], [0, 10.0, 5.5], [0, 0, 1]]).expand(n, 3, 3).clone()
    images = torch.rand(n, 3, H, W, generator=torch.Generator().manual_seed(0))
    scene = InMemoryScene(name="s", images=images, K=K, c2w=c2w, depths=torch.full((n, H, W), 2.),
                          labels=torch.zeros(n, H, W, dtype=torch.long), class_names=["a"],
                          palette=torch.zeros(1, 3, dtype=torch.uint8), near=0.2, far=5.0)
    # jitter on, so near/far also depend on the item's seeded draws
    return GSNeRFDataset([scene], DatasetConfig(height=6, width=8, near_far_jitter_prob=0.5,
                                                train_views=TrainViewConfig(num_sources=3)))


def _read(workers: int, start: int = 0, stop: int = 12, seed: int = 5) -> list[dict]:
    loader = make_train_loader(_dataset(), seed=seed, rank=0, start=start, stop=stop,
                               num_workers=workers, device=torch.device("cpu"))
    return list(loader)


def _same(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k]
               for k in a)


def test_zero_and_two_workers_give_the_same_samples():
    torch.set_num_threads(1)
    a, b = _read(0), _read(2)
    assert len(a) == len(b) == 12
    assert a[0]["images"].shape == (4, 3, 6, 8)            # one item per step, not batched
    assert all(_same(x, y) for x, y in zip(a, b))
    assert len({int(x["target_index"]) for x in a}) > 3    # steps draw different items


def test_a_resumed_loader_continues_the_same_stream():
    full, tail = _read(0, 0, 12), _read(2, 7, 12)
    assert all(_same(x, y) for x, y in zip(full[7:], tail))


def test_seed_and_rank_change_the_items():
    idx = [step_item_index(5, s, 0, 20) for s in range(30)]
    assert idx != [step_item_index(6, s, 0, 20) for s in range(30)]
    assert idx != [step_item_index(5, s, 1, 20) for s in range(30)]
    assert list(StepSampler(20, 5, 0, 0, 30)) == idx and all(0 <= i < 20 for i in idx)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="num_workers"):
        make_train_loader(_dataset(), 0, 0, 0, 4, -1, torch.device("cpu"))
    with pytest.raises(ValueError, match="start <= stop"):
        StepSampler(10, 0, 0, 5, 2)


def test_to_device_keeps_non_tensors():
    s = {"images": torch.ones(2), "scene": "a", "has_depth": True}
    out = to_device(s, torch.device("cpu"))
    assert torch.equal(out["images"], s["images"]) and out["scene"] == "a" and out["has_depth"]
