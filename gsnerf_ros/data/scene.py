"""The one scene abstraction every reader produces: posed frames with image, depth and labels.

Conventions (docs/INTERFACES.md): images float32 [3,H,W] in [0,1]; depth float32 [H,W] z-depth in
metres (0 = invalid); labels int64 [H,W] with ``IGNORE_INDEX = 255``; ``K`` 3x3 pixels for the
image size; ``c2w`` 4x4 camera-to-world, OpenCV optical frame, metres.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import torch
from torch import Tensor

__all__ = ["Frame", "Scene", "InMemoryScene"]


@dataclass
class Frame:
    """One posed frame.

    ``image`` [3,H,W] float32 in [0,1]; ``depth`` [H,W] float32 metres or None; ``labels`` [H,W]
    int64 or None; ``K`` [3,3] float32; ``c2w`` [4,4] float32; ``frame_id`` a stable string id;
    ``stamp`` seconds (0.0 when the source has no time).
    """

    image: Tensor
    K: Tensor
    c2w: Tensor
    depth: Tensor | None = None
    labels: Tensor | None = None
    frame_id: str = ""
    stamp: float = 0.0

    def __post_init__(self) -> None:
        if self.image.ndim != 3 or self.image.shape[0] != 3:
            raise ValueError(f"Frame.image must be [3,H,W], got {tuple(self.image.shape)}")
        H, W = self.image.shape[-2:]
        for name in ("depth", "labels"):
            t = getattr(self, name)
            if t is not None and tuple(t.shape) != (H, W):
                raise ValueError(f"Frame.{name} must be [{H},{W}] like the image, "
                                 f"got {tuple(t.shape)}")
        if tuple(self.K.shape) != (3, 3) or tuple(self.c2w.shape) != (4, 4):
            raise ValueError(f"Frame.K must be 3x3 and c2w 4x4, got {tuple(self.K.shape)} "
                             f"and {tuple(self.c2w.shape)}")

    @property
    def height(self) -> int:
        return int(self.image.shape[-2])

    @property
    def width(self) -> int:
        return int(self.image.shape[-1])


class Scene(ABC):
    """A sequence of posed frames of one static scene.

    Subclasses set ``name``, ``class_names``, ``palette`` (uint8 [C,3]), ``near``, ``far`` (m),
    ``height``, ``width`` (px of ``frame(i).image``) and implement ``__len__``, ``frame``,
    ``poses`` and ``intrinsics``.
    """

    name: str
    class_names: list[str]
    palette: Tensor
    near: float
    far: float
    height: int
    width: int

    @abstractmethod
    def __len__(self) -> int:
        """Number of frames."""

    @abstractmethod
    def frame(self, i: int) -> Frame:
        """Load frame ``i`` (0 <= i < len)."""

    @abstractmethod
    def poses(self) -> Tensor:
        """All camera-to-world poses, [N,4,4] float32 (cheap: no image is read)."""

    @abstractmethod
    def intrinsics(self) -> Tensor:
        """All intrinsics, [N,3,3] float32 for images of ``height`` x ``width``."""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def _check_index(self, i: int) -> int:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"frame index {i} out of range for scene {self.name!r} with {n} frames")
        return i % n

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, frames={len(self)}, "
                f"size={self.width}x{self.height}, classes={self.num_classes}, "
                f"near={self.near}, far={self.far})")


@dataclass
class InMemoryScene(Scene):
    """A scene held as tensors (generator output, tests, bag playback).

    ``images`` [N,3,H,W] float32 in [0,1]; ``K`` [N,3,3]; ``c2w`` [N,4,4]; ``depths`` [N,H,W] m or
    None; ``labels`` [N,H,W] int64 or None; ``stamps`` [N] seconds or None; ``frame_ids`` or None.
    """

    name: str
    images: Tensor
    K: Tensor
    c2w: Tensor
    class_names: list[str]
    palette: Tensor
    near: float
    far: float
    depths: Tensor | None = None
    labels: Tensor | None = None
    stamps: Tensor | None = None
    frame_ids: list[str] | None = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.images.shape[0]
        if self.images.ndim != 4 or self.images.shape[1] != 3:
            raise ValueError(f"images must be [N,3,H,W], got {tuple(self.images.shape)}")
        if self.K.shape[0] != n or self.c2w.shape[0] != n:
            raise ValueError(f"K and c2w need {n} entries like images, got {self.K.shape[0]} "
                             f"and {self.c2w.shape[0]}")
        self.height, self.width = int(self.images.shape[-2]), int(self.images.shape[-1])
        self.palette = torch.as_tensor(self.palette, dtype=torch.uint8)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def frame(self, i: int) -> Frame:
        i = self._check_index(i)
        return Frame(
            image=self.images[i], K=self.K[i], c2w=self.c2w[i],
            depth=None if self.depths is None else self.depths[i],
            labels=None if self.labels is None else self.labels[i],
            frame_id=self.frame_ids[i] if self.frame_ids is not None else str(i),
            stamp=float(self.stamps[i]) if self.stamps is not None else 0.0,
        )

    def poses(self) -> Tensor:
        return self.c2w

    def intrinsics(self) -> Tensor:
        return self.K

    @classmethod
    def from_frames(cls, name: str, frames: list[Frame], class_names: list[str],
                    palette: Tensor, near: float, far: float, **kw: object) -> "InMemoryScene":
        """Stack frames of one size into an in-memory scene (depth/labels kept if all have them)."""
        if not frames:
            raise ValueError(f"scene {name!r}: no frames to stack")
        has_d = all(f.depth is not None for f in frames)
        has_l = all(f.labels is not None for f in frames)
        return cls(
            name=name, images=torch.stack([f.image for f in frames]),
            K=torch.stack([f.K for f in frames]), c2w=torch.stack([f.c2w for f in frames]),
            depths=torch.stack([f.depth for f in frames]) if has_d else None,  # type: ignore[misc]
            labels=torch.stack([f.labels for f in frames]) if has_l else None,  # type: ignore[misc]
            stamps=torch.tensor([f.stamp for f in frames], dtype=torch.float64),
            frame_ids=[f.frame_id for f in frames], class_names=class_names, palette=palette,
            near=near, far=far, **kw)  # type: ignore[arg-type]


def materialize(scene: Scene) -> InMemoryScene:
    """Load every frame of ``scene`` into memory."""
    return InMemoryScene.from_frames(scene.name, [scene.frame(i) for i in range(len(scene))],
                                     scene.class_names, scene.palette, scene.near, scene.far)
