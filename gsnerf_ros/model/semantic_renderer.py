"""Semantic renderer (paper Eq. 12-14).

For each ray one surface point at the estimated target depth D_T: its semantic features are
gathered from every source view (k x k neighbourhood), a global semantic token is built from the
masked mean/variance across the views that see the point, a transformer attends across views
(masked views are never keys; the global token is kept), and a head maps the global token plus
the masked mean of the view tokens to class logits. Using a pooled head (instead of the released
code's flatten of all 9 tokens) makes it work for any number of source views.

With ``label_skip`` (not in the paper; docs/METHOD.md) the masked mean of the source views' 2D
log-probabilities at the point's projection is added to the logits, so the renderer learns a
correction to the vote of the 2D segmenter instead of the whole class decision.

``volume`` mode (ablation, paper Table A3 model C): the same network predicts logits at every
sample and the logits are composited with the volume-rendering weights.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gsnerf_ros.model.attention import ViewTransformer, masked_mean_var, mlp
from gsnerf_ros.model.config import SemanticConfig

__all__ = ["SemanticRenderer"]


class SemanticRenderer(nn.Module):
    """[P, V, in_ch] semantic features + [P, V] mask -> [P, C] logits (no output activation)."""

    def __init__(self, cfg: SemanticConfig, in_ch: int, num_classes: int) -> None:
        super().__init__()
        d = cfg.d_model
        self.label_skip = cfg.label_skip
        self.view_embed = mlp([in_ch, d], last_act=True)
        self.global_embed = mlp([2 * in_ch, d, d], last_act=True)
        self.transformer = ViewTransformer(d, cfg.num_heads, cfg.num_layers, cfg.ff_mult)
        self.head = mlp([2 * d, 2 * d, num_classes])

    def forward(self, feats: Tensor, mask: Tensor, logits_2d: Tensor | None = None) -> Tensor:
        """``feats`` [P, V, in_ch], ``mask`` [P, V] bool (view sees the point), ``logits_2d``
        [P, V, C] the 2D segmenter's logits at the projections (used with ``label_skip``)."""
        mean, var = masked_mean_var(feats, mask)
        tokens = torch.cat([self.global_embed(torch.cat([var, mean], -1))[:, None],
                            self.view_embed(feats)], 1)
        key_mask = torch.cat([torch.ones_like(mask[:, :1]), mask], 1)
        out = self.transformer(tokens, key_mask)
        m = mask.to(out.dtype)[..., None]
        pooled = (out[:, 1:] * m).sum(1) / m.sum(1).clamp(min=1.0)
        logits = self.head(torch.cat([out[:, 0], pooled], -1))
        if not self.label_skip:
            return logits
        if logits_2d is None:
            raise ValueError("semantic.label_skip needs the 2D logits at the projections")
        logp = torch.log_softmax(logits_2d.float(), -1)
        vote = (logp * m.float()).sum(1) / m.float().sum(1).clamp(min=1.0)
        return logits + vote.to(logits.dtype)
