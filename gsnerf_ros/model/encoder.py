"""Shared 2D encoder-decoder of the Semantic Geo-Reasoner.

For every source image it gives a feature pyramid at scales 1, 1/2, 1/4 (the cost-volume and
rendering features), a semantic feature map at full resolution and 2D semantic logits.
``FeatureEncoder(cfg, ...)`` builds the one ``cfg.backbone`` names:

- ``scratch`` (:class:`ScratchUNetEncoder`): a small U-Net trained from scratch, GroupNorm (or
  per-channel GroupNorm = instance norm) throughout;
- ``efficientnet_lite0`` (:class:`EfficientNetEncoder`): an ImageNet-pretrained EfficientNet-Lite0
  under the paper's MVS feature pyramid and a U-Net semantic decoder (the paper uses an
  ImageNet-pretrained MobileNetV3 the same way).

Neither has running statistics that change between training and evaluation (the released code
ran BatchNorm in train mode at evaluation; we do not).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gsnerf_ros.model.backbones.efficientnet_lite import TAP_CHANNELS, EfficientNetLite0
from gsnerf_ros.model.config import EncoderConfig
from gsnerf_ros.model.depth_prior import MonoDepthHead

__all__ = ["make_norm", "ConvBlock", "FastConv3d", "FeatureEncoder", "EncoderOutput",
           "ScratchUNetEncoder", "EfficientNetEncoder"]

SEMANTIC_STEM_BLOCKS = 3
"""Blocks of an own semantic stem (``EncoderConfig.semantic_stem: own``): the stem and blocks
0-2, everything the feature pyramid reads (the stride-2 and stride-4 taps)."""


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
    ``semantic_feature`` [B, Cs, H, W]; ``semantic_logits`` [B, C, H, W]; ``depth_prior``
    [B, 2, h, w] (log depth m, log std) where the Geo-Reasoner uses the single-view prior
    (``cost_volume.depth_prior_weight`` > 0), else None."""

    pyramid: list[Tensor]
    semantic_feature: Tensor
    semantic_logits: Tensor
    depth_prior: Tensor | None = None


class FeatureEncoder(nn.Module):
    """Base of the 2D encoders; ``FeatureEncoder(cfg, num_classes, semantic_channels)`` builds
    the subclass that ``cfg.backbone`` names. ``forward(images)`` takes [B, 3, H, W] in [0, 1]
    (any H, W) and returns an :class:`EncoderOutput`; :meth:`feature_pyramid` and
    :meth:`semantic_maps` return one half of it (the same values), for a Geo-Reasoner whose
    semantic maps are at another pyramid level than its cost volumes
    (``GSNeRFConfig.semantic_max_pixels``)."""

    def __new__(cls, *args: object, **kwargs: object) -> "FeatureEncoder":
        if cls is FeatureEncoder:
            cfg = args[0] if args else kwargs["cfg"]
            cls = _ENCODERS[cfg.backbone]  # type: ignore[attr-defined]
        return super().__new__(cls)

    @staticmethod
    def _check_images(images: Tensor) -> None:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be [B,3,H,W], got {tuple(images.shape)}")

    @staticmethod
    def _pyramid_sizes(H: int, W: int) -> list[tuple[int, int]]:
        return [(H, W), (-(-H // 2), -(-W // 2)), (-(-H // 4), -(-W // 4))]

    def feature_pyramid(self, images: Tensor) -> list[Tensor]:
        """``forward(images).pyramid`` without the semantic head(s)."""
        raise NotImplementedError

    def semantic_maps(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """``(semantic_feature, semantic_logits)`` of ``forward(images)`` without the feature
        pyramid."""
        raise NotImplementedError

    def depth_prior_maps(self, images: Tensor) -> Tensor:
        """The single-view depth prior of ``images`` [B, 3, H, W] in [0, 1] (``encoder.depth_prior``):
        [B, 2, ceil(H/4), ceil(W/4)], canonical log depth and log std
        (:class:`~gsnerf_ros.model.depth_prior.MonoDepthHead`)."""
        raise ValueError(f"{type(self).__name__} has no depth prior head (encoder.depth_prior "
                         "needs encoder.backbone: efficientnet_lite0)")

    def semantic_maps_and_depth_prior(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """:meth:`semantic_maps` and :meth:`depth_prior_maps` of the same ``images`` (one trunk
        pass where both read the same taps)."""
        return (*self.semantic_maps(images), self.depth_prior_maps(images))


class ScratchUNetEncoder(FeatureEncoder):
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

    def _decode(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Decoder maps (d0, d1, d2) at strides 1, 2, 4 of the padded input."""
        self._check_images(images)
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
        return d0, d1, d2

    def _pyramid(self, d: tuple[Tensor, Tensor, Tensor], H: int, W: int) -> list[Tensor]:
        pyr = [self.fpn0(d[0]), self.fpn1(d[1]), self.fpn2(d[2])]
        return [p[..., :h, :w] for p, (h, w) in zip(pyr, self._pyramid_sizes(H, W))]

    def _semantics(self, d0: Tensor, H: int, W: int) -> tuple[Tensor, Tensor]:
        sem = self.semantic_head(d0)[..., :H, :W]
        return sem, self.logit_head(sem)

    def forward(self, images: Tensor) -> EncoderOutput:
        d = self._decode(images)
        H, W = images.shape[-2:]
        sem, logits = self._semantics(d[0], H, W)
        return EncoderOutput(pyramid=self._pyramid(d, H, W), semantic_feature=sem,
                             semantic_logits=logits)

    def feature_pyramid(self, images: Tensor) -> list[Tensor]:
        return self._pyramid(self._decode(images), *images.shape[-2:])

    def semantic_maps(self, images: Tensor) -> tuple[Tensor, Tensor]:
        return self._semantics(self._decode(images)[0], *images.shape[-2:])


class EfficientNetEncoder(FeatureEncoder):
    """EfficientNet-Lite0 backbone (taps at strides 2, 4, 8, 16, 32) with the paper's two heads.

    - MVS feature pyramid (``fpn_channels`` f0, f1, f2; no normalisation, no activation): level 2
      is a 1x1 conv of the stride-4 tap; level 1 adds the bilinearly upsampled (align_corners)
      level-2 map to a 1x1 lateral of the stride-2 tap and smooths the sum with a 3x3 conv;
      level 0 does the same with the un-smoothed level-1 sum and a 1x1 lateral of the RGB image.
    - Semantic decoder, ``semantic_decoder: unet``: a U-Net from the stride-32 tap up to full
      resolution, one block per stride 16, 8, 4, 2, 1 (``decoder_channels``): nearest x2
      upsampling, concatenation of the tap of that stride (none at stride 1), two 3x3
      ConvBlocks (``norm``/``groups``). Then the semantic feature (3x3 conv) and the logits
      (1x1 conv), as in the scratch encoder.
    - ``semantic_decoder: fpn``: 1x1 laterals of the five taps to ``semantic_fpn_channels``,
      summed top-down, a 3x3 conv + norm + ReLU at stride 2, the semantic feature by a 1x1 conv
      there, upsampled bilinearly to full resolution; the logits (1x1 conv) as above.
    - ``depth_prior``: a single-view depth head on the taps the semantic decoder reads
      (:class:`~gsnerf_ros.model.depth_prior.MonoDepthHead`, :meth:`depth_prior_maps`).

    Input: images [B, 3, H, W] in [0, 1] (the backbone applies the ImageNet mean/std); any size,
    padded to a multiple of 32 by edge replication and cropped back. ``cfg.pretrained`` loads
    the backbone's ImageNet weights here.

    With ``cfg.semantic_stem: own`` the semantic decoder reads its stride-2 and stride-4 taps
    from its own copy of the stem and blocks 0-2 (``semantic_stem``), continued by the
    backbone's blocks 3-15, which only the semantics read. The feature pyramid, and so every
    geometric output, then has weights of its own, and the 2D segmenter can be trained whole
    without changing them (train/segmenter_objective.py); the copy costs 16 k parameters and,
    where the semantic and geometry levels are the same, a second pass of those blocks.
    """

    def __init__(self, cfg: EncoderConfig, num_classes: int, semantic_channels: int) -> None:
        super().__init__()
        self.backbone = EfficientNetLite0()
        self.semantic_stem: EfficientNetLite0 | None = None
        if cfg.semantic_stem == "own":
            self.semantic_stem = EfficientNetLite0(num_blocks=SEMANTIC_STEM_BLOCKS)
        if cfg.pretrained:
            self.backbone.load_package_weights()
            if self.semantic_stem is not None:
                self.semantic_stem.load_package_weights()
        t2, t4, t8, t16, t32 = TAP_CHANNELS
        f0, f1, f2 = cfg.fpn_channels
        self.fpn_lateral2 = nn.Conv2d(t4, f2, 1)
        self.fpn_lateral1 = nn.Conv2d(t2, f2, 1)
        self.fpn_lateral0 = nn.Conv2d(3, f2, 1)
        self.fpn_smooth1 = nn.Conv2d(f2, f1, 3, padding=1)
        self.fpn_smooth0 = nn.Conv2d(f2, f0, 3, padding=1)
        n, g = cfg.norm, cfg.groups
        self.decoder: nn.ModuleList | None = None
        self.semantic_laterals: nn.ModuleList | None = None
        self.semantic_fpn: nn.Sequential | None = None
        if cfg.semantic_decoder == "fpn":
            fs = cfg.semantic_fpn_channels
            self.semantic_laterals = nn.ModuleList(nn.Conv2d(c, fs, 1) for c in TAP_CHANNELS)
            self.semantic_fpn = nn.Sequential(nn.Conv2d(fs, fs, 3, padding=1),
                                              make_norm(n, fs, g), nn.ReLU(inplace=True))
            self.semantic_head = nn.Conv2d(fs, semantic_channels, 1)
        else:
            widths = [t32, *cfg.decoder_channels]
            skips = [t16, t8, t4, t2, 0]
            self.decoder = nn.ModuleList(
                nn.Sequential(ConvBlock(cin + skip, cout, n, g), ConvBlock(cout, cout, n, g))
                for cin, cout, skip in zip(widths[:-1], widths[1:], skips))
            self.semantic_head = nn.Conv2d(widths[-1], semantic_channels, 3, padding=1)
        self.logit_head = nn.Conv2d(semantic_channels, num_classes, 1)
        self.depth_head: MonoDepthHead | None = (
            MonoDepthHead(TAP_CHANNELS, cfg.depth_prior_channels) if cfg.depth_prior else None)

    @staticmethod
    def _up2(x: Tensor) -> Tensor:
        return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=True)

    def _taps(self, images: Tensor, num_taps: int = 5) -> tuple[Tensor, list[Tensor]]:
        """The padded input and the backbone's first ``num_taps`` taps (strides 2, 4, 8, 16,
        32)."""
        x = self._padded(images)
        return x, self.backbone(x, num_taps)

    def _padded(self, images: Tensor) -> Tensor:
        """``images`` padded to a multiple of 32 by edge replication."""
        self._check_images(images)
        H, W = images.shape[-2:]
        ph, pw = (-H) % 32, (-W) % 32
        return F.pad(images, (0, pw, 0, ph), mode="replicate") if (ph or pw) else images

    def _pyramid(self, x: Tensor, taps: list[Tensor], H: int, W: int) -> list[Tensor]:
        s2 = self.fpn_lateral2(taps[1])
        s1 = self._up2(s2) + self.fpn_lateral1(taps[0])
        s0 = self._up2(s1) + self.fpn_lateral0(x)
        pyr = [self.fpn_smooth0(s0), self.fpn_smooth1(s1), s2]
        return [p[..., :h, :w] for p, (h, w) in zip(pyr, self._pyramid_sizes(H, W))]

    def _semantic_taps(self, images: Tensor) -> list[Tensor]:
        """The five taps the semantic decoder reads: the backbone's, or with an own semantic
        stem, its stride-2 and stride-4 taps continued by the backbone's later blocks."""
        if self.semantic_stem is None:
            return self._taps(images)[1]
        early = self.semantic_stem(self._padded(images))
        return self.backbone.continue_taps(early[-1], early)

    def _semantics(self, taps: list[Tensor], H: int, W: int) -> tuple[Tensor, Tensor]:
        if self.semantic_laterals is not None:
            sem = self._fpn_semantics(taps, H, W)
        else:
            d = taps[-1]
            for block, skip in zip(self.decoder, [*reversed(taps[:-1]), None]):
                d = F.interpolate(d, scale_factor=2.0, mode="nearest")
                d = block(d if skip is None else torch.cat([d, skip], 1))
            sem = self.semantic_head(d)[..., :H, :W]
        return sem, self.logit_head(sem)

    def _fpn_semantics(self, taps: list[Tensor], H: int, W: int) -> Tensor:
        """The semantic feature [B, Cs, H, W] of ``semantic_decoder: fpn``: 1x1 laterals of the
        five taps summed top-down (bilinear upsampling to each tap's size), a 3x3 conv, norm
        and ReLU at stride 2, the 1x1 semantic head, bilinear x2 to the padded input, cropped."""
        lat = self.semantic_laterals
        y = lat[-1](taps[-1])
        for tap, lateral in zip(reversed(taps[:-1]), reversed(list(lat)[:-1])):
            y = F.interpolate(y, size=tap.shape[-2:], mode="bilinear", align_corners=False)
            y = y + lateral(tap)
        y = self.semantic_head(self.semantic_fpn(y))
        return F.interpolate(y, scale_factor=2.0, mode="bilinear",
                             align_corners=False)[..., :H, :W]

    def forward(self, images: Tensor) -> EncoderOutput:
        H, W = images.shape[-2:]
        if self.semantic_stem is not None:                # two trunks: no taps to share
            sem, logits = self.semantic_maps(images)
            return EncoderOutput(pyramid=self.feature_pyramid(images), semantic_feature=sem,
                                 semantic_logits=logits)
        x, taps = self._taps(images)
        sem, logits = self._semantics(taps, H, W)
        return EncoderOutput(pyramid=self._pyramid(x, taps, H, W), semantic_feature=sem,
                             semantic_logits=logits)

    def feature_pyramid(self, images: Tensor) -> list[Tensor]:
        x, taps = self._taps(images, num_taps=2)          # the pyramid reads strides 2 and 4
        return self._pyramid(x, taps, *images.shape[-2:])

    def semantic_maps(self, images: Tensor) -> tuple[Tensor, Tensor]:
        return self._semantics(self._semantic_taps(images), *images.shape[-2:])

    def depth_prior_maps(self, images: Tensor) -> Tensor:
        """The depth head on the taps the semantic decoder reads (the semantic stem's where it
        has one): the geometry's features stay as they are whatever the head learns."""
        if self.depth_head is None:
            return super().depth_prior_maps(images)
        return self.depth_head(self._semantic_taps(images), *images.shape[-2:])

    def semantic_maps_and_depth_prior(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        if self.depth_head is None:
            return super().semantic_maps_and_depth_prior(images)
        taps = self._semantic_taps(images)
        H, W = images.shape[-2:]
        return (*self._semantics(taps, H, W), self.depth_head(taps, H, W))


_ENCODERS: dict[str, type[FeatureEncoder]] = {
    "scratch": ScratchUNetEncoder,
    "efficientnet_lite0": EfficientNetEncoder,
}
