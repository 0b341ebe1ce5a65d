"""Shared 2D encoder-decoder of the Semantic Geo-Reasoner.

For every source image it gives a feature pyramid at scales 1, 1/2, 1/4 (the cost-volume and
rendering features), a semantic feature map at full resolution and 2D semantic logits.
Normalisation is GroupNorm (or per-channel GroupNorm = instance norm): no running statistics,
so training and evaluation behave identically (the released code ran BatchNorm in train mode at
evaluation; we do not).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gsnerf_ros.model.config import EncoderConfig

__all__ = ["make_norm", "ConvBlock", "FastConv3d", "FeatureEncoder", "EncoderOutput"]


class FastConv3d(nn.Conv3d):
    """``nn.Conv3d`` that uses the oneDNN (mkldnn) kernel for float32 CPU inference.

    PyTorch's dispatcher sends batch-1 3D convolutions with ``C x D x H <= 20480`` to its naive
    ``slow_conv3d`` path (a heuristic tuned for 2D); for the cost-volume U-Nets that is 5-13x
    slower than oneDNN (measured: 16->16 channels on 24x32x40, 82 -> 15 ms; 8->8 on 8x240x320,
    726 -> 57 ms; one thread). Same parameters and state_dict keys as ``nn.Conv3d``; results
    equal to float rounding. Only without autograd (encoding for rendering: node, evaluation,
    benchmarks); training keeps PyTorch's default dispatch, so its numerics are unchanged. Other
    devices and dtypes are unchanged.
    """

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        if (input.device.type == "cpu" and input.dtype == torch.float32 and input.dim() == 5
                and not torch.is_grad_enabled()
                and self.padding_mode == "zeros" and not isinstance(self.padding, str)
                and torch.backends.mkldnn.is_available()):
            return torch.ops.aten.mkldnn_convolution(input, weight, bias, list(self.padding),
                                                     list(self.stride), list(self.dilation),
                                                     self.groups)
        return super()._conv_forward(input, weight, bias)


def make_norm(kind: str, channels: int, groups: int, dims: int = 2) -> nn.Module:
    """Normalisation layer that is the same in train and eval (no running statistics)."""
    if kind == "group":
        return nn.GroupNorm(math.gcd(groups, channels), channels)
    if kind == "instance":
        return nn.GroupNorm(channels, channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; use group | instance | none")


class ConvBlock(nn.Module):
    """Conv (2D or 3D) -> norm -> LeakyReLU."""

    def __init__(self, cin: int, cout: int, norm: str, groups: int, stride: int = 1,
                 dims: int = 2, kernel: int = 3) -> None:
        super().__init__()
        conv = nn.Conv2d if dims == 2 else FastConv3d
        self.conv = conv(cin, cout, kernel, stride=stride, padding=kernel // 2,
                         bias=norm == "none")
        self.norm = make_norm(norm, cout, groups, dims)
        self.act = nn.LeakyReLU(0.1, inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.norm(self.conv(x)))


@dataclass
class EncoderOutput:
    """Per-image outputs. ``pyramid[l]``: [B, fpn_l, H/2^l, W/2^l] (ceil), l = 0, 1, 2;
    ``semantic_feature`` [B, Cs, H, W]; ``semantic_logits`` [B, C, H, W]."""

    pyramid: list[Tensor]
    semantic_feature: Tensor
    semantic_logits: Tensor


class FeatureEncoder(nn.Module):
    """U-Net with 3 stride-2 levels; any input size (padded to a multiple of 8, then cropped).

    Input: images [B, 3, H, W] in [0, 1] (no ImageNet normalisation, as in the released code).
    """

    def __init__(self, cfg: EncoderConfig, num_classes: int, semantic_channels: int) -> None:
        super().__init__()
        c0, c1, c2, c3 = cfg.channels
        n, g = cfg.norm, cfg.groups
        self.stem = nn.Sequential(ConvBlock(3, c0, n, g), ConvBlock(c0, c0, n, g))
        self.down1 = nn.Sequential(ConvBlock(c0, c1, n, g, stride=2), ConvBlock(c1, c1, n, g))
        self.down2 = nn.Sequential(ConvBlock(c1, c2, n, g, stride=2), ConvBlock(c2, c2, n, g))
        self.down3 = nn.Sequential(ConvBlock(c2, c3, n, g, stride=2), ConvBlock(c3, c3, n, g))
        self.up2 = nn.Sequential(ConvBlock(c3 + c2, c2, n, g), ConvBlock(c2, c2, n, g))
        self.up1 = nn.Sequential(ConvBlock(c2 + c1, c1, n, g), ConvBlock(c1, c1, n, g))
        self.up0 = nn.Sequential(ConvBlock(c1 + c0, c0, n, g), ConvBlock(c0, c0, n, g))
        f0, f1, f2 = cfg.fpn_channels
        self.fpn0 = nn.Conv2d(c0, f0, 1)
        self.fpn1 = nn.Conv2d(c1, f1, 1)
        self.fpn2 = nn.Conv2d(c2, f2, 1)
        self.semantic_head = nn.Conv2d(c0, semantic_channels, 3, padding=1)
        self.logit_head = nn.Conv2d(semantic_channels, num_classes, 1)

    @staticmethod
    def _up(x: Tensor, like: Tensor) -> Tensor:
        return F.interpolate(x, size=like.shape[-2:], mode="nearest")

    def forward(self, images: Tensor) -> EncoderOutput:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be [B,3,H,W], got {tuple(images.shape)}")
        H, W = images.shape[-2:]
        ph, pw = (-H) % 8, (-W) % 8
        x = F.pad(images, (0, pw, 0, ph), mode="replicate") if (ph or pw) else images
        e0 = self.stem(x)
        e1 = self.down1(e0)
        e2 = self.down2(e1)
        e3 = self.down3(e2)
        d2 = self.up2(torch.cat([self._up(e3, e2), e2], 1))
        d1 = self.up1(torch.cat([self._up(d2, e1), e1], 1))
        d0 = self.up0(torch.cat([self._up(d1, e0), e0], 1))
        sizes = [(H, W), (-(-H // 2), -(-W // 2)), (-(-H // 4), -(-W // 4))]
        pyr = [self.fpn0(d0), self.fpn1(d1), self.fpn2(d2)]
        pyr = [p[..., :h, :w] for p, (h, w) in zip(pyr, sizes)]
        sem = self.semantic_head(d0)[..., :H, :W]
        return EncoderOutput(pyramid=pyr, semantic_feature=sem, semantic_logits=self.logit_head(sem))
