"""A 2D segmenter's labels on keyframes (ROS-free): decoding, checks, and its class names over
time.

A segmenter publishes class-id images (``mono8`` / ``mono16``, 255 / 65535 = unknown), optionally
a per-pixel confidence (``32FC1`` in [0, 1] or ``mono8`` 0-255), and its class names as a
``vision_msgs/LabelInfo``. :func:`decode_labels` and :func:`decode_confidence` turn the images
into a :class:`KeyframeLabels` (ids int32 with -1 = unknown, at the camera's resolution, kept
beside the keyframe), refusing with :class:`LabelError` what cannot be used.
:class:`LabelSpace` keeps the LabelInfo's class map; when it changes mid-run the labels kept
under an earlier map are translated by class name (:meth:`LabelSpace.to_current`), so nothing
already buffered is relabelled wrongly, and ids a map does not name are reported
(:meth:`LabelSpace.unnamed_ids`).
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from gsnerf_ros.model.label_vote import SEMANTIC_SOURCES

__all__ = ["LABEL_ENCODINGS", "CONFIDENCE_ENCODINGS", "UNKNOWN", "LabelError",
           "KeyframeLabels", "decode_labels", "decode_confidence", "check_label_header",
           "LabelSpace", "LabelInfoChange", "id_palette", "SEMANTIC_SOURCES"]


LABEL_ENCODINGS = {"mono8": 255, "8UC1": 255, "mono16": 65535, "16UC1": 65535}
"""Class-id image encodings and their 'unknown' value."""

CONFIDENCE_ENCODINGS = ("32FC1", "mono8", "8UC1")
UNKNOWN = -1


class LabelError(ValueError):
    """A segmenter's label (or confidence) image that cannot be used, and why."""


@dataclass
class KeyframeLabels:
    """A keyframe's segmenter labels. ``ids`` [H, W] int32 (-1 = unknown) and ``confidence``
    [H, W] float32 in [0, 1] or None (= 1), at the camera's resolution (rectified like the
    image); ``generation``: the :class:`LabelSpace` generation its ids belong to (-1: before
    any LabelInfo); ``wide``: it came as a 16-bit image."""

    ids: Tensor
    confidence: Tensor | None = None
    generation: int = -1
    wide: bool = False


def check_label_header(what: str, width: int, height: int, stamp: float, image_width: int,
                       image_height: int, image_stamp: float, tolerance: float) -> None:
    """Raise :class:`LabelError` when a label (or confidence) image is not the colour image's
    size or its stamp is more than ``tolerance`` s from the image's."""
    if (width, height) != (image_width, image_height):
        raise LabelError(f"{what} image is {width}x{height} but the colour image is "
                         f"{image_width}x{image_height}; publish labels at the camera's "
                         "resolution")
    if abs(stamp - image_stamp) > tolerance:
        raise LabelError(f"{what} stamp {stamp:.6f} is {abs(stamp - image_stamp) * 1e3:.1f} ms "
                         f"from the image's {image_stamp:.6f} (semantic.label_stamp_tolerance="
                         f"{tolerance} s); a segmenter should copy the header of the image it "
                         "labelled")


def decode_labels(arr: np.ndarray, encoding: str) -> tuple[Tensor, bool]:
    """A class-id image (H, W) -> (ids [H, W] int32 with -1 = unknown, wide). Raises
    :class:`LabelError` for another encoding."""
    if encoding not in LABEL_ENCODINGS:
        raise LabelError(f"label image encoding {encoding!r} is not a class-id image; publish "
                         "mono8 (255 = unknown) or mono16 (65535 = unknown)")
    arr = np.asarray(arr)
    if arr.ndim != 2:
        raise LabelError(f"label image must have one channel, got shape {arr.shape}")
    unknown = LABEL_ENCODINGS[encoding]
    ids = torch.from_numpy(arr.astype(np.int32))
    ids = torch.where(ids == unknown, torch.full_like(ids, UNKNOWN), ids)
    return ids, unknown == 65535


def decode_confidence(arr: np.ndarray, encoding: str) -> Tensor:
    """A confidence image (H, W): ``32FC1`` in [0, 1] (NaN = 0) or ``mono8``/``8UC1`` 0-255
    -> float32 [H, W] in [0, 1]. Raises :class:`LabelError` for another encoding or floats
    outside [0, 1]."""
    arr = np.asarray(arr)
    if encoding not in CONFIDENCE_ENCODINGS or arr.ndim != 2:
        raise LabelError(f"label confidence encoding {encoding!r} (shape {arr.shape}); publish "
                         "32FC1 in [0, 1] or mono8 0-255")
    if encoding == "32FC1":
        c = torch.from_numpy(np.nan_to_num(arr.astype(np.float32), nan=0.0))
        lo, hi = float(c.min()), float(c.max())
        if lo < -1e-3 or hi > 1.0 + 1e-3:
            raise LabelError(f"label confidence spans [{lo:.3g}, {hi:.3g}], not [0, 1]")
        return c.clamp_(0, 1)
    return torch.from_numpy(arr.astype(np.float32) / 255.0)


@functools.lru_cache(maxsize=2)
def id_palette(num_ids: int) -> Tensor:
    """Colours uint8 [num_ids, 3] keyed by class id: colour i depends on i alone (golden-ratio
    hues, :func:`gsnerf_ros.model.palette.default_palette`), so a class keeps its colour when
    others appear; ids at or beyond ``num_ids`` (the unknown value) are black."""
    from gsnerf_ros.model.palette import default_palette

    return default_palette(num_ids)


@dataclass
class LabelInfoChange:
    """What a LabelInfo changed: ``kind`` ``first`` | ``same`` | ``extended`` (ids added,
    none renamed or removed) | ``changed``; ``message`` says what, for the log."""

    kind: str
    message: str


class LabelSpace:
    """The segmenter's class map {id: name} and its earlier versions (thread-safe).

    ``generation`` counts the distinct maps received (-1: none yet). Labels carry the
    generation they were decoded under; :meth:`to_current` translates them by name."""

    def __init__(self) -> None:
        self._maps: list[dict[int, str]] = []
        self._lock = threading.Lock()
        self._luts: dict[tuple[int, int], Tensor] = {}
        self.wide = False
        """Some labels came as 16-bit images or some id is above 254: output mono16."""

    @property
    def generation(self) -> int:
        with self._lock:
            return len(self._maps) - 1

    def names(self) -> dict[int, str]:
        """The current class map (empty before any LabelInfo)."""
        with self._lock:
            return dict(self._maps[-1]) if self._maps else {}

    def update(self, class_map: dict[int, str]) -> LabelInfoChange:
        """A new LabelInfo's {id: name}. Raises :class:`LabelError` for duplicate names
        (labels could not be translated by name) or ids beyond 65534."""
        if any(i < 0 or i >= 65535 for i in class_map):
            raise LabelError(f"label_info ids must lie in [0, 65534], got "
                             f"{sorted(i for i in class_map if i < 0 or i >= 65535)}")
        names = list(class_map.values())
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise LabelError(f"label_info names {dup} more than one id; class names must be "
                             "unique")
        with self._lock:
            if any(i >= 255 for i in class_map):
                self.wide = True
            if not self._maps:
                self._maps.append(dict(class_map))
                return LabelInfoChange("first", f"{len(class_map)} classes")
            old = self._maps[-1]
            if old == class_map:
                return LabelInfoChange("same", "unchanged")
            self._maps.append(dict(class_map))
        renamed = {i: (old[i], class_map[i]) for i in old if i in class_map
                   and class_map[i] != old[i]}
        removed = {i: old[i] for i in old if i not in class_map}
        added = {i: class_map[i] for i in class_map if i not in old}
        if not renamed and not removed:
            return LabelInfoChange("extended", f"{len(added)} class(es) added: "
                                   f"{_short(added)}")
        parts = []
        if renamed:
            parts.append(f"renamed {_short({i: f'{a}->{b}' for i, (a, b) in renamed.items()})}")
        if removed:
            parts.append(f"removed {_short(removed)}")
        if added:
            parts.append(f"added {_short(added)}")
        return LabelInfoChange("changed", "; ".join(parts) + "; labels kept from before are "
                               "translated by class name (names the new map lacks vote for "
                               "nothing)")

    def _lut(self, src: int, dst: int) -> Tensor:
        """int32 [65536]: ids of generation ``src`` -> ids of ``dst`` by name; ids ``src`` does
        not name keep their value unless ``dst`` names them (then -1)."""
        key = (src, dst)
        with self._lock:
            if key in self._luts:
                return self._luts[key]
            a, b = self._maps[src], self._maps[dst]
        lut = torch.arange(65536, dtype=torch.int32)
        by_name = {n: i for i, n in b.items()}
        for i in b:
            if i not in a:
                lut[i] = UNKNOWN
        for i, n in a.items():
            lut[i] = by_name.get(n, UNKNOWN)
        with self._lock:
            self._luts[key] = lut
        return lut

    def to_current(self, labels: KeyframeLabels) -> Tensor:
        """``labels.ids`` in the ids of the current class map (int32 [H, W], -1 unknown)."""
        cur = self.generation
        if labels.generation < 0 or labels.generation == cur:
            return labels.ids
        lut = self._lut(labels.generation, cur)
        ids = labels.ids
        return torch.where(ids >= 0, lut[ids.clamp(min=0).long()], ids)

    def unnamed_ids(self, ids: Tensor) -> list[int]:
        """Ids in ``ids`` that the current class map does not name (empty before any map)."""
        names = self.names()
        if not names:
            return []
        present = torch.unique(ids[ids >= 0]).tolist()
        return [int(i) for i in present if int(i) not in names]

    @property
    def unknown_value(self) -> int:
        """The 'unknown' id of the output: 65535 for mono16 output, else 255."""
        return 65535 if self.wide else 255


def _short(d: dict[int, str], n: int = 6) -> str:
    items = [f"{i}:{v}" for i, v in sorted(d.items())[:n]]
    return "{" + ", ".join(items) + (", ..." if len(d) > n else "") + "}"
