"""Transformer over the view tokens of a sample (V view tokens + 1 global token).

Pre-LayerNorm encoder layers with a key mask: masked views are never attended to; the global
token (index 0) is always kept, so no row is fully masked.

Attention over so few tokens (<= 17) is implemented two ways with the same result:
``scaled_dot_product_attention`` (the CPU default) and explicit matmul + softmax (the CUDA
default: SDPA's kernels are tiled for long sequences and waste almost every tile on 9 tokens;
measured 2.1x faster on an H200, docs/BENCHMARKS.md). :class:`ViewTransformer` can also run as
one fused Triton kernel (``kernel``, :mod:`gsnerf_ros.model.fused_attention`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gsnerf_ros.model.fused_attention import check_kernel, fused_view_transformer, use_fused

__all__ = ["ViewAttentionLayer", "ViewTransformer", "masked_mean_var", "mlp", "matmul_attention",
           "ATTENTION_IMPLS"]

ATTENTION_IMPLS = ("auto", "sdpa", "matmul")
MATMUL_MAX_TOKENS = 32
"""``auto`` uses explicit matmul attention on CUDA up to this many tokens per sample."""


def matmul_attention(q: Tensor, k: Tensor, v: Tensor, key_mask: Tensor) -> Tensor:
    """Softmax attention with explicit matrix products. ``q``/``k``/``v`` [P, h, T, dh],
    ``key_mask`` [P, T] bool (True = attend) -> [P, h, T, dh]. Scores and softmax in fp32."""
    s = torch.matmul(q, k.transpose(-1, -2)).float() * (q.shape[-1] ** -0.5)
    s = s.masked_fill(~key_mask[:, None, None, :], float("-inf"))
    return torch.matmul(torch.softmax(s, -1).to(v.dtype), v)


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
        self.attention = "auto"
        """``auto`` (matmul on CUDA for <= 32 tokens, else SDPA) | ``sdpa`` | ``matmul``."""
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
        if self.attention not in ATTENTION_IMPLS:
            raise ValueError(f"attention must be one of {ATTENTION_IMPLS}, got {self.attention!r}")
        explicit = self.attention == "matmul" or (self.attention == "auto" and x.is_cuda
                                                  and T <= MATMUL_MAX_TOKENS)
        if explicit:
            a = matmul_attention(q, k, v, key_mask)
        else:
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask[:, None, None, :])
        x = x + self.proj(a.transpose(1, 2).reshape(P, T, d))
        return x + self.ff(self.norm2(x))


class ViewTransformer(nn.Module):
    """A stack of :class:`ViewAttentionLayer` with a final LayerNorm.

    ``kernel`` (``auto`` | ``eager`` | ``triton``) picks the implementation of the whole stack
    (:mod:`gsnerf_ros.model.fused_attention`); ``fused_block_p`` samples per Triton program.
    """

    DEFAULT_BLOCK_P = 2
    """Samples per Triton program (untuned: gsnerf-bench's kernel_triton_*_bp* variants)."""

    def __init__(self, d: int, heads: int, layers: int, ff_mult: int = 2) -> None:
        super().__init__()
        self.layers = nn.ModuleList(ViewAttentionLayer(d, heads, ff_mult) for _ in range(layers))
        self.norm = nn.LayerNorm(d)
        self.kernel = "auto"
        self.fused_block_p = self.DEFAULT_BLOCK_P

    def set_kernel(self, kernel: str) -> None:
        self.kernel = check_kernel(kernel)

    def forward(self, x: Tensor, key_mask: Tensor) -> Tensor:
        """``x`` [P, T, d], ``key_mask`` [P, T] bool (True = attend) -> [P, T, d]."""
        if use_fused(self, x):
            return fused_view_transformer(self, x, key_mask)
        for layer in self.layers:
            x = layer(x, key_mask)
        return self.norm(x)
