"""Transformer over the view tokens of a sample (V view tokens + 1 global token).

Pre-LayerNorm encoder layers using ``torch.nn.functional.scaled_dot_product_attention`` with a
key mask: masked views are never attended to; the global token (index 0) is always kept, so no
row is fully masked.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ViewAttentionLayer", "ViewTransformer", "masked_mean_var", "mlp"]


def mlp(sizes: list[int], act: type[nn.Module] = nn.ELU, last_act: bool = False) -> nn.Sequential:
    """Linear layers with activations between (and after the last when ``last_act``)."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2 or last_act:
            layers.append(act())
    return nn.Sequential(*layers)


def masked_mean_var(x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and (population) variance over views of the unmasked entries (paper A.3).

    ``x`` [P, V, C], ``mask`` [P, V] bool -> mean, var [P, C] (zeros where no view is kept).
    """
    m = mask.to(x.dtype)[..., None]
    cnt = m.sum(1).clamp(min=1.0)
    mean = (x * m).sum(1) / cnt
    var = (((x - mean[:, None]) ** 2) * m).sum(1) / cnt
    return mean, var


class ViewAttentionLayer(nn.Module):
    """Pre-LN multi-head self-attention + feed-forward, both residual."""

    def __init__(self, d: int, heads: int, ff_mult: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.proj = nn.Linear(d, d, bias=False)
        self.norm2 = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, ff_mult * d), nn.ReLU(), nn.Linear(ff_mult * d, d))

    def forward(self, x: Tensor, key_mask: Tensor) -> Tensor:
        """``x`` [P, T, d], ``key_mask`` [P, T] bool (True = attend) -> [P, T, d]."""
        P, T, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(P, T, 3, self.heads, d // self.heads).permute(
            2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask[:, None, None, :])
        x = x + self.proj(a.transpose(1, 2).reshape(P, T, d))
        return x + self.ff(self.norm2(x))


class ViewTransformer(nn.Module):
    """A stack of :class:`ViewAttentionLayer` with a final LayerNorm."""

    def __init__(self, d: int, heads: int, layers: int, ff_mult: int = 2) -> None:
        super().__init__()
        self.layers = nn.ModuleList(ViewAttentionLayer(d, heads, ff_mult) for _ in range(layers))
        self.norm = nn.LayerNorm(d)

    def forward(self, x: Tensor, key_mask: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x, key_mask)
        return self.norm(x)
