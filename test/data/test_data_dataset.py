"""GSNeRFDataset: target last, resizing with scaled intrinsics, near/far, workers."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from gsnerf_ros.data.classes import IGNORE_INDEX
from gsnerf_ros.data.dataset import (
    DatasetConfig, EvalProtocol, GSNeRFDataset, TrainViewConfig, resize_frame,
)
from gsnerf_ros.data.procedural import SynthConfig, generate_scene
from gsnerf_ros.data.scene import Frame, InMemoryScene
from gsnerf_ros.geometry import look_at, world_to_pixels


def _scene(n: int = 12, name: str = "s") -> InMemoryScene:
    eye = torch.stack([torch.arange(n) * 0.1, torch.zeros(n), torch.ones(n)], -1).float()
    c2w = look_at(eye, eye + torch.tensor([0.0, 1.0, 0.0]))
    H, W = 16, 20
    K = torch.tensor([[10.0, 0, 9.5], [0, 10.0, 7.5], [0, 0, 1]]).expand(n, 3, 3).clone()
    images = torch.rand(n, 3, H, W, generator=torch.Generator().manual_seed(0))
    images[:, 0] = torch.arange(n)[:, None, None] / n  # frame id in the red channel
    labels = torch.randint(0, 5, (n, H, W), generator=torch.Generator().manual_seed(1))
    return InMemoryScene(name=name, images=images, K=K, c2w=c2w,
                         depths=torch.full((n, H, W), 2.0), labels=labels,
                         class_names=[f"c{i}" for i in range(5)],
                         palette=torch.zeros(5, 3, dtype=torch.uint8), near=0.2, far=5.0)


def test_item_layout_target_last() -> None:
    sc = _scene()
    ds = GSNeRFDataset([sc], DatasetConfig(height=8, width=10, near_far_jitter_prob=0.0,
                                           train_views=TrainViewConfig(num_sources=3)))
    assert len(ds) == 12
    it = ds[5]
    assert it["images"].shape == (4, 3, 8, 10) and it["K"].shape == (4, 3, 3)
    assert it["c2w"].shape == (4, 4, 4) and it["depths"].shape == (4, 8, 10)
    assert it["labels"].shape == (4, 8, 10) and it["labels"].dtype == torch.int64
    assert it["target_index"] == 5
    assert torch.allclose(it["c2w"][-1], sc.c2w[5])
    for v, i in enumerate(it["source_indices"].tolist()):
        assert torch.allclose(it["c2w"][v], sc.c2w[i])
    assert abs(float(it["near"]) - 0.2) < 1e-6 and float(it["far"]) == 5.0
    assert torch.allclose(it["K"][-1], torch.tensor([[5.0, 0, 4.5], [0, 5.0, 3.5], [0, 0, 1]]))


def test_items_deterministic_per_epoch_and_change_between_epochs() -> None:
    ds = GSNeRFDataset([_scene(30)], DatasetConfig(height=8, width=10,
                                                  train_views=TrainViewConfig(num_sources=3)))
    a = [ds[i]["source_indices"] for i in range(30)]
    b = [ds[i]["source_indices"] for i in range(30)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    ds.set_epoch(1)
    c = [ds[i]["source_indices"] for i in range(30)]
    assert any(not torch.equal(x, y) for x, y in zip(a, c))


def test_resize_keeps_projection_consistent() -> None:
    sc = generate_scene(SynthConfig(frames=2, height=24, width=32, shadow_res=16), 2)
    f = sc.frame(0)
    g = resize_frame(f, 12, 16)
    assert g.image.shape == (3, 12, 16) and g.depth.shape == (12, 16)
    # a world point at a big-image pixel centre projects to (u+0.5)/2-0.5 in the small image
    from gsnerf_ros.geometry import unproject_depth
    pts = unproject_depth(f.depth, f.K, f.c2w)[10, 14][None]
    uv, _ = world_to_pixels(pts, g.K, g.c2w)
    assert torch.allclose(uv[0], torch.tensor([(14 + 0.5) / 2 - 0.5, (10 + 0.5) / 2 - 0.5]),
                          atol=1e-3)
    # labels only take values present in the original
    assert set(g.labels.unique().tolist()) <= set(f.labels.unique().tolist())
    # area averaging: the small image is the mean of 2x2 blocks
    block = f.image.reshape(3, 12, 2, 16, 2).mean((2, 4))
    assert torch.allclose(g.image, block, atol=1e-5)


def test_missing_depth_and_labels_are_filled() -> None:
    sc = _scene()
    sc.depths, sc.labels = None, None
    it = GSNeRFDataset([sc], DatasetConfig(height=16, width=20))[0]
    assert not it["has_depth"] and not it["has_labels"]
    assert float(it["depths"].abs().sum()) == 0 and bool((it["labels"] == IGNORE_INDEX).all())


def test_label_map_and_near_far_override() -> None:
    cfg = DatasetConfig(height=16, width=20, label_map={0: 1, 1: 0}, near=0.5, far=3.0,
                        near_far_jitter_prob=0.0)
    sc = _scene()
    it = GSNeRFDataset([sc], cfg)[3]
    lab = sc.labels[3]
    want = torch.where(lab == 0, 1, torch.where(lab == 1, 0, IGNORE_INDEX))
    assert torch.equal(it["labels"][-1], want)
    assert float(it["near"]) == 0.5 and float(it["far"]) == 3.0


def test_eval_mode_and_workers() -> None:
    scenes = [_scene(30, "a"), _scene(25, "b")]
    cfg = DatasetConfig(height=8, width=10, mode="eval",
                        eval_protocol=EvalProtocol(num_sources=2, target_stride=10))
    ds = GSNeRFDataset(scenes, cfg)
    assert [(it[0], it[1]) for it in ds.items] == [(0, 2), (0, 12), (0, 22), (1, 2), (1, 12),
                                                   (1, 22)]
    loader = DataLoader(ds, batch_size=1, num_workers=2)
    batches = list(loader)
    assert len(batches) == 6
    assert batches[0]["images"].shape == (1, 3, 3, 8, 10)
    assert batches[3]["scene"] == ["b"]
    assert all(int(b["target_index"]) not in b["source_indices"][0].tolist() for b in batches)


def test_frame_validation() -> None:
    import pytest
    with pytest.raises(ValueError):
        Frame(image=torch.zeros(3, 4, 5), K=torch.eye(3), c2w=torch.eye(4),
              depth=torch.zeros(4, 4))
