"""The ``depth_prior`` training objective: the depth head alone learns, everything else the
model outputs stays bit-identical; ``-`` entries of ``init_modules`` and ``freeze`` name the
new head."""

from __future__ import annotations

import copy

import pytest
import torch

from gsnerf_ros.model import GSNeRF
from gsnerf_ros.train.depth_prior_objective import DepthPriorStep, depth_prior_abs_rel
from gsnerf_ros.train.segmenter_objective import FrameBatches
from gsnerf_ros.train.trainer import Trainer, freeze_modules, load_modules
from helpers.rooms import protocol_views
from test_train_trainer import H, W, tiny_cfg

_OTHERS = ["encoder", "cost_volume", "volume_renderer", "semantic_renderer",
           "-encoder.depth_head"]


def _cfg(rooms, run_dir, *extra: str):
    cfg = tiny_cfg(rooms, run_dir, "objective=depth_prior", "optim.lr=3e-3",
                   "freeze=[" + ",".join(_OTHERS) + "]", *extra)
    enc = cfg.model.encoder
    enc.backbone, enc.pretrained, enc.semantic_decoder = "efficientnet_lite0", False, "fpn"
    enc.semantic_fpn_channels, enc.depth_prior, enc.depth_prior_channels = 16, True, 8
    cfg.model.cost_volume.depth_prior_weight = 1.0
    return cfg


def test_depth_prior_stage_trains_the_head_alone(rooms, tmp_path) -> None:
    """Six steps: the NLL and the prior's depth error on a fixed batch fall, the head moved,
    and with the prior off the model's depths, colour and semantics are bit-identical."""
    torch.set_num_threads(1)
    tr = Trainer(_cfg(rooms, tmp_path / "dp", "optim.steps=6", "log.val_every=6",
                      "log.ckpt_every=6", "log.select_metric=depth_abs_rel"))
    assert isinstance(tr.step_module, DepthPriorStep) and isinstance(tr.train_set, FrameBatches)
    model = tr.model
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("encoder.depth_head.") for n in trainable)
    fixed = tr.train_set[0]
    assert fixed["depths"].shape == fixed["labels"].shape and fixed["K"].shape[-2:] == (3, 3)

    def scores() -> tuple[float, float]:
        torch.manual_seed(0)
        with torch.no_grad():
            _, logs = tr.step_module(fixed)
        return float(logs["depth_prior_nll"]), float(logs["depth_prior_abs_rel"])

    images, _, K, c2w, near, far = protocol_views(H, W, frames=12, seed=0, num_sources=3,
                                                  source_stride=3, with_target=True)

    def outputs() -> list[torch.Tensor]:
        model.eval()
        model.config.cost_volume.depth_prior_weight = 0.0
        with torch.no_grad():
            enc = model.encode_sources(images[:3], K[:3], c2w[:3], near, far)
            res = model.render(enc, K[3], c2w[3], H, W, chunk=512)
        model.config.cost_volume.depth_prior_weight = 1.0
        model.train()
        return [*enc.depth_levels, res.rgb, res.depth, res.semantic_logits]

    before, (nll0, err0) = outputs(), scores()
    head0 = [p.detach().clone() for p in model.encoder.depth_head.parameters()]
    summary = tr.fit()
    nll1, err1 = scores()
    assert nll1 < nll0 and err1 < err0
    assert any(not torch.equal(a, p) for a, p in zip(head0, model.encoder.depth_head.parameters()))
    for a, b in zip(before, outputs()):
        assert torch.equal(a, b)
    assert summary["select_metric"] == "depth_abs_rel"
    assert summary["val_history"][-1]["depth_abs_rel"] is not None


def test_depth_prior_abs_rel_reads_the_prior_pixels() -> None:
    depth = torch.full((1, 8, 8), 2.0)
    depth[:, ::4, ::4] = 4.0                          # the pixels level 2 reads
    prior = torch.stack([torch.full((1, 2, 2), torch.log(torch.tensor(4.0))),
                         torch.zeros(1, 2, 2)], 1)
    assert float(depth_prior_abs_rel(prior, depth)) == pytest.approx(0.0, abs=1e-6)
    assert torch.isnan(depth_prior_abs_rel(prior, torch.zeros(1, 8, 8)))


def test_new_module_entries_of_init_modules_and_freeze(rooms, tmp_path) -> None:
    """``-encoder.depth_head``: every other encoder weight comes from a checkpoint without the
    head and the head keeps its initialisation; freezing ``encoder`` but ``-encoder.depth_head``
    leaves the head trainable; an unknown ``-`` entry is an error."""
    cfg = _cfg(rooms, tmp_path / "x")
    without = copy.deepcopy(cfg.model)
    without.encoder.depth_prior, without.cost_volume.depth_prior_weight = False, 0.0
    src, model = GSNeRF(without), GSNeRF(cfg.model)
    head0 = {k: v.clone() for k, v in model.state_dict().items() if "depth_head" in k}
    with pytest.raises(ValueError, match="other weights"):
        load_modules(model, src.state_dict(), ["encoder"])
    n = load_modules(model, src.state_dict(), ["encoder", "-encoder.depth_head"])
    state = model.state_dict()
    assert n == len(src.encoder.state_dict())
    assert all(torch.equal(state[k], v) for k, v in src.state_dict().items()
               if k.startswith("encoder."))
    assert all(torch.equal(state[k], v) for k, v in head0.items())
    with pytest.raises(ValueError, match="no parameter"):
        load_modules(model, src.state_dict(), ["encoder", "-encoder.nothing"])
    freeze_modules(model, ["encoder", "-encoder.depth_head"])
    assert {n for n, p in model.named_parameters() if p.requires_grad and
            n.startswith("encoder.")} == {n for n, _ in model.encoder.depth_head.named_parameters(
                prefix="encoder.depth_head")}
    with pytest.raises(ValueError, match="no parameter"):
        freeze_modules(model, ["-encoder.nothing"])
