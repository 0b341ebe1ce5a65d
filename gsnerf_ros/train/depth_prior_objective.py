"""Training objective ``depth_prior``: the encoder's single-view depth head alone, on single
frames of every training room (model/depth_prior.py).

The head reads the taps of the semantic path (with an own semantic stem, none of them feeds the
cost volume), so training it with everything else frozen leaves every other output of the
model as it was; the cost volume meets the prior only at inference
(``cost_volume.depth_prior_weight``). Batches are those of the ``segmenter`` objective
(:class:`~gsnerf_ros.train.segmenter_objective.FrameBatches`: ``data.num_sources`` frames, each
from another room, flipped left-right with probability 1/2 and colour-jittered by
``data.colour_jitter``); the loss is the Gaussian negative log-likelihood of the frames' log
depth under the predicted log depth and std (:func:`~gsnerf_ros.model.depth_prior.prior_nll`),
at the level the model runs the head at (:func:`~gsnerf_ros.model.geo_reasoner.depth_prior`).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from gsnerf_ros.model.depth_prior import prior_nll
from gsnerf_ros.model.geo_reasoner import depth_prior, depth_prior_level
from gsnerf_ros.model.pyramid import depth_level
from gsnerf_ros.train.config import TrainConfig
from gsnerf_ros.train.segmenter_objective import flip_batch, jitter_colours

__all__ = ["DepthPriorStep", "depth_prior_abs_rel"]


def depth_prior_abs_rel(prior: Tensor, depth: Tensor) -> Tensor:
    """Mean absolute relative error of the prior's depth ``exp(prior[:, 0])`` [B, h, w] against
    ``depth`` [B, H, W] m read at the prior's pixels (level 2 of ``depth``; 0 = unknown)."""
    d = depth_level(depth, 2)
    valid = d > 0
    if not bool(valid.any()):
        return prior.new_tensor(float("nan"))
    err = (prior[:, 0].exp() - d).abs() / d.clamp(min=1e-6)
    return err[valid].mean()


class DepthPriorStep(nn.Module):
    """The ``depth_prior`` objective's loss of one batch (``images`` [B, 3, H, W], ``depths``
    [B, H, W] m, 0 = unknown, ``K`` [B, 3, 3]): :func:`prior_nll` of the model's depth prior.
    Logs the loss and the prior's depth abs-rel."""

    def __init__(self, model: nn.Module, cfg: TrainConfig) -> None:
        super().__init__()
        self.model = model
        self.colour_jitter = float(cfg.data.colour_jitter)

    def forward(self, sample: dict[str, Any], uv: Tensor | None = None, step: int = 0
                ) -> tuple[Tensor, dict[str, Tensor]]:
        images, depths, K = sample["images"], sample.get("depths"), sample["K"]
        if depths is None:
            raise ValueError("objective depth_prior needs depth maps; the training frames have "
                             "none")
        if images.dim() != 4 or depths.shape != (images.shape[0], *images.shape[-2:]):
            raise ValueError(f"DepthPriorStep: expected images [B,3,H,W] and depths [B,H,W], "
                             f"got {tuple(images.shape)} and {tuple(depths.shape)}")
        images, depths = flip_batch(images, depths)
        images = jitter_colours(images, self.colour_jitter)
        cfg = self.model.config
        prior = depth_prior(self.model.encoder, cfg, images, K)
        d = depth_level(depths, depth_prior_level(cfg, *images.shape[-2:]))
        loss = prior_nll(prior.float(), d)
        return loss, {"depth_prior_nll": loss.detach(), "loss": loss.detach(),
                      "depth_prior_abs_rel": depth_prior_abs_rel(prior.detach().float(), d)}
