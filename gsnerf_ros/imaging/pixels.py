"""What decoded pixels mean: colour order, depth units and class ids, for every encoding of
:data:`~gsnerf_ros.imaging.codec.ENCODINGS`.

- colour: any 1-, 3- or 4-channel encoding -> RGB (:func:`to_rgb_array`, same dtype); the
  node's camera input is one of :data:`CAMERA_ENCODINGS` (:func:`to_rgb_tensor`, [0,1] floats);
- depth: ``16UC1`` / ``mono16`` millimetres or ``32FC1`` metres -> float32 metres, 0 = invalid
  (:func:`depth_metres`);
- labels: any single-channel encoding -> int64 class ids (:func:`label_ids`); rendered ids ->
  ``mono8`` / ``mono16`` (:func:`labels_to_array`).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor

from gsnerf_ros.imaging.codec import ImageFormatError, encoding_info

__all__ = [
    "CAMERA_ENCODINGS", "CAMERA_COLOUR_ENCODINGS", "check_camera_encoding", "to_rgb_array",
    "to_rgb_tensor", "convert_color", "depth_metres", "to_depth_metres", "label_ids",
    "labels_to_array",
]

CAMERA_COLOUR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8")
"""The 8-bit colour encodings a camera image may have (the ones to publish)."""

CAMERA_ENCODINGS = CAMERA_COLOUR_ENCODINGS + ("8UC3", "8UC1")
"""Every encoding the node reads as a camera image: :data:`CAMERA_COLOUR_ENCODINGS` and the
generic ``8UC3`` (read in OpenCV's BGR order) and ``8UC1`` (grey)."""


def check_camera_encoding(encoding: str) -> None:
    """:class:`ImageFormatError` unless ``encoding`` is one of :data:`CAMERA_ENCODINGS`."""
    if encoding not in CAMERA_ENCODINGS:
        raise ImageFormatError(f"image encoding {encoding!r} is not supported; publish one of "
                               f"{list(CAMERA_COLOUR_ENCODINGS)}")


def to_rgb_array(array: np.ndarray, encoding: str, generic_order: str = "rgb") -> np.ndarray:
    """A decoded image to RGB channel order. Shape: (H, W[, C]) -> (H, W, 3), same dtype.

    Grey images are repeated into three channels and alpha is dropped. The named encodings
    carry their order; a generic ``<depth>C3`` / ``C4`` image is read in ``generic_order``
    (``"rgb"``: as stored, ``"bgr"``: OpenCV's order).
    """
    info = encoding_info(encoding)
    if info.channels not in (1, 3, 4):
        raise ImageFormatError(f"a {encoding} image has {info.channels} channels; a colour "
                               "image has 1 (grey), 3 or 4")
    if generic_order not in ("rgb", "bgr"):
        raise ValueError(f"generic_order must be 'rgb' or 'bgr', got {generic_order!r}")
    arr = np.asarray(array)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    order = info.order or generic_order
    if order.startswith("bgr"):
        arr = arr[..., 2::-1]
    return np.ascontiguousarray(arr[..., :3])


def to_rgb_tensor(array: np.ndarray, encoding: str) -> Tensor:
    """A decoded camera image (one of :data:`CAMERA_ENCODINGS`) to the model's layout.

    Shape: (H, W[, C]) uint8 -> (3, H, W) float32 in [0, 1]. ``8UC3`` is read as BGR.
    """
    check_camera_encoding(encoding)
    rgb = to_rgb_array(array, encoding, generic_order="bgr")
    return torch.from_numpy(rgb).permute(2, 0, 1).float().div_(255.0)


_COLOUR_8BIT = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8")

_CVT: dict[tuple[str, str], int] = {
    ("bgr8", "rgb8"): cv2.COLOR_BGR2RGB, ("rgb8", "bgr8"): cv2.COLOR_RGB2BGR,
    ("rgba8", "rgb8"): cv2.COLOR_RGBA2RGB, ("bgra8", "rgb8"): cv2.COLOR_BGRA2RGB,
    ("rgba8", "bgr8"): cv2.COLOR_RGBA2BGR, ("bgra8", "bgr8"): cv2.COLOR_BGRA2BGR,
    ("mono8", "rgb8"): cv2.COLOR_GRAY2RGB, ("mono8", "bgr8"): cv2.COLOR_GRAY2BGR,
    ("rgb8", "mono8"): cv2.COLOR_RGB2GRAY, ("bgr8", "mono8"): cv2.COLOR_BGR2GRAY,
    ("rgba8", "mono8"): cv2.COLOR_RGBA2GRAY, ("bgra8", "mono8"): cv2.COLOR_BGRA2GRAY,
    ("rgb8", "rgba8"): cv2.COLOR_RGB2RGBA, ("bgr8", "bgra8"): cv2.COLOR_BGR2BGRA,
    ("rgb8", "bgra8"): cv2.COLOR_RGB2BGRA, ("bgr8", "rgba8"): cv2.COLOR_BGR2RGBA,
    ("rgba8", "bgra8"): cv2.COLOR_RGBA2BGRA, ("bgra8", "rgba8"): cv2.COLOR_BGRA2RGBA,
    ("mono8", "rgba8"): cv2.COLOR_GRAY2RGBA, ("mono8", "bgra8"): cv2.COLOR_GRAY2BGRA,
}


def convert_color(array: np.ndarray, src: str, dst: str) -> np.ndarray:
    """Convert between the 8-bit colour encodings (cv_bridge's ``desired_encoding``)."""
    if src == dst:
        return array
    if (src, dst) not in _CVT:
        raise ImageFormatError(f"cannot convert image from {src!r} to {dst!r}; colour conversions "
                               f"exist among {list(_COLOUR_8BIT)}")
    return cv2.cvtColor(array, _CVT[(src, dst)])


def depth_metres(array: np.ndarray, encoding: str) -> np.ndarray:
    """A decoded depth image to z-depth in metres, 0 = invalid. Shape: (H, W) -> (H, W) float32.

    ``16UC1`` / ``mono16`` are millimetres; ``32FC1`` is metres (NaN, inf, negatives and -0 ->
    0).
    """
    if encoding in ("16UC1", "mono16"):
        return array.astype(np.float32) / 1000.0
    if encoding == "32FC1":
        d = array.astype(np.float32)
        return np.where(np.isfinite(d) & (d > 0), d, 0.0).astype(np.float32)
    raise ImageFormatError(f"depth image has encoding {encoding!r}; publish 16UC1 "
                           "(millimetres) or 32FC1 (metres)")


def to_depth_metres(array: np.ndarray, encoding: str) -> Tensor:
    """:func:`depth_metres` as a tensor. Shape: (H, W) -> (H, W) float32 metres."""
    return torch.from_numpy(np.ascontiguousarray(depth_metres(array, encoding)))


def label_ids(array: np.ndarray, encoding: str) -> np.ndarray:
    """A decoded single-channel image of class ids to int64. Shape: (H, W) -> (H, W)."""
    if encoding_info(encoding).channels != 1 or np.ndim(array) != 2:
        raise ImageFormatError(f"labels must be single-channel ids, got encoding {encoding!r}")
    return np.asarray(array).astype(np.int64)


def labels_to_array(labels: Tensor, num_classes: int) -> tuple[np.ndarray, str]:
    """Class ids to an image array and its encoding: ``mono8``, or ``mono16`` above 255 classes.

    Shape: (H, W) int64 -> (H, W) uint8 / uint16.
    """
    lab = labels.detach().to("cpu").numpy()
    if num_classes > 255:
        return lab.astype(np.uint16), "mono16"
    return lab.astype(np.uint8), "mono8"
