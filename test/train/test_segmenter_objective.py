"""The ``segmenter`` training objective: batches of single frames of many rooms, the 2D loss
alone, and with the geometry path frozen every geometric output stays exactly as it was."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from gsnerf_ros.config import load_config
from gsnerf_ros.data.scene import Frame
from gsnerf_ros.train.config import TrainConfig
from gsnerf_ros.train.segmenter_objective import GEOMETRY_PATH, FrameBatches, SegmenterStep
from gsnerf_ros.train.trainer import Trainer
from helpers.rooms import protocol_views
from test_train_trainer import H, W, tiny_cfg


class _Rooms:
    """A stand-in for the training GSNeRFDataset: ``n`` rooms of ``frames`` frames whose
    image value is the room index and whose label is the frame index."""

    def __init__(self, n: int, frames: int) -> None:
        self.scenes = [list(range(frames)) for _ in range(n)]
        self.cfg = SimpleNamespace(seed=3)
        self.epoch = 0
        self.class_names, self.palette = ["a", "b"], None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def frame(self, si: int, fi: int) -> Frame:
        return Frame(image=torch.full((3, 4, 6), float(si)), K=torch.eye(3), c2w=torch.eye(4),
                     labels=torch.full((4, 6), fi, dtype=torch.long))


def test_frame_batches_draw_distinct_rooms_reproducibly() -> None:
    batches = FrameBatches(_Rooms(n=10, frames=5), batch=4)
    a, b = batches[7], batches[7]
    assert a["images"].shape == (4, 3, 4, 6) and a["labels"].shape == (4, 4, 6)
    assert torch.equal(a["images"], b["images"]) and torch.equal(a["labels"], b["labels"])
    rooms = a["images"][:, 0, 0, 0].tolist()
    assert len(set(rooms)) == 4                      # four rooms, not four views of one
    assert len({tuple(batches[i]["images"][:, 0, 0, 0].tolist()) for i in range(8)}) > 1
    assert len(batches) == 10 * 5 // 4
    few = FrameBatches(_Rooms(n=2, frames=5), batch=4)[0]     # fewer rooms than the batch
    assert few["images"].shape[0] == 4
    with pytest.raises(IndexError):
        batches[len(batches)]
    with pytest.raises(ValueError, match="batch"):
        FrameBatches(_Rooms(2, 2), batch=0)


def test_objective_and_select_metric_are_checked() -> None:
    with pytest.raises(ValueError, match="objective"):
        load_config(TrainConfig, None, ["objective=segment"])
    cfg = load_config(TrainConfig, None, ["objective=segmenter",
                                          "log.select_metric=segmenter_mIoU"])
    assert cfg.objective == "segmenter"


def _lite_cfg(rooms, run_dir, *extra: str) -> TrainConfig:
    cfg = tiny_cfg(rooms, run_dir, "objective=segmenter", "optim.lr=1e-3", *extra)
    cfg.model.encoder.backbone = "efficientnet_lite0"
    cfg.model.encoder.pretrained = False
    cfg.model.encoder.decoder_channels = [32, 16, 16, 8, 8]
    return cfg


@pytest.mark.parametrize("stem", ["shared", "own"])
def test_segmenter_stage_learns_2d_classes_and_leaves_the_geometry_bit_identical(
        rooms, tmp_path, stem: str) -> None:
    """Five steps of the segmenter objective with the geometry path, cost volume and renderers
    frozen: the 2D loss on a fixed batch falls, the semantic decoder (and an own semantic stem)
    moved, and the feature pyramid, the depths, D_T, the colour and the rendered depth are
    bit-identical."""
    torch.set_num_threads(1)
    cfg = _lite_cfg(rooms, tmp_path / "seg", "optim.steps=5", "log.val_every=5",
                    "data.colour_jitter=0.2",
                    "log.ckpt_every=5", "log.select_metric=segmenter_mIoU",
                    "freeze=[" + ",".join([*GEOMETRY_PATH, "cost_volume", "volume_renderer",
                                           "semantic_renderer"]) + "]")
    cfg.model.encoder.semantic_stem = stem
    tr = Trainer(cfg)
    assert isinstance(tr.step_module, SegmenterStep) and isinstance(tr.train_set, FrameBatches)
    model = tr.model
    images, _, K, c2w, near, far = protocol_views(H, W, frames=12, seed=0, num_sources=3,
                                                  source_stride=3, with_target=True)
    fixed = tr.train_set[0]

    def loss_now() -> float:
        torch.manual_seed(0)
        with torch.no_grad():
            return float(tr.step_module(fixed)[0])

    def geometry() -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor]:
        model.eval()
        with torch.no_grad():
            enc = model.encode_sources(images[:3], K[:3], c2w[:3], near, far)
            res = model.render(enc, K[3], c2w[3], H, W, chunk=512)
        model.train()
        return [enc.feature, *enc.depth_levels], res.target_depth, res.rgb, res.depth

    loss0, before = loss_now(), geometry()
    trained = model.encoder.decoder if stem == "shared" else model.encoder.semantic_stem
    trained0 = [p.detach().clone() for p in trained.parameters()]
    summary = tr.fit()
    after = geometry()
    assert loss_now() < loss0
    assert any(not torch.equal(a, p) for a, p in zip(trained0, trained.parameters()))
    for a, b in zip(before[0], after[0]):
        assert torch.equal(a, b)
    for a, b in zip(before[1:], after[1:]):
        assert torch.equal(a, b)
    assert summary["select_metric"] == "segmenter_mIoU"
    assert summary["val_history"][-1]["segmenter_mIoU"] is not None


def test_colour_jitter_varies_each_image_within_its_bounds() -> None:
    """``jitter_colours``: 0 is the identity; otherwise every image changes, by a factor per
    image (not per pixel: a flat image stays flat), reproducibly under a seed, within [0, 1];
    the GSNeRF objective refuses it."""
    from gsnerf_ros.train.segmenter_objective import jitter_colours

    images = torch.rand(4, 3, 6, 8) * 0.8 + 0.1
    assert jitter_colours(images, 0.0) is images
    torch.manual_seed(0)
    a = jitter_colours(images, 0.3)
    torch.manual_seed(0)
    assert torch.equal(a, jitter_colours(images, 0.3))
    assert a.min() >= 0 and a.max() <= 1
    assert all(not torch.allclose(a[i], images[i]) for i in range(4))
    flat = torch.full((2, 3, 5, 5), 0.5)
    out = jitter_colours(flat, 0.3)
    assert torch.allclose(out, out[..., :1, :1].expand_as(out))
    assert not torch.allclose(out[0], out[1])
    with pytest.raises(ValueError, match="colour_jitter"):
        load_config(TrainConfig, None, ["data.colour_jitter=0.2"])
    with pytest.raises(ValueError, match="colour_jitter"):
        load_config(TrainConfig, None, ["objective=segmenter", "data.colour_jitter=1.5"])
    cfg = load_config(TrainConfig, None, ["objective=segmenter", "data.colour_jitter=0.2"])
    assert cfg.data.colour_jitter == 0.2
