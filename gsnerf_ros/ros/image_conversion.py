"""sensor_msgs/Image <-> NumPy arrays with cv_bridge semantics, and the node's image math.

ROS-free: everything here works on the raw fields of an Image message (``encoding``, ``height``,
``width``, ``step``, ``is_bigendian``, ``data``), so it is tested without DDS and shared by the
in-tree :mod:`gsnerf_ros.ros.compat.cv_bridge` and the node.

Supported encodings: colour ``rgb8``, ``bgr8``, ``rgba8``, ``bgra8``, grey
``mono8`` / ``mono16``, generic ``8UC1``, ``8UC3``, ``16UC1`` (depth in millimetres) and ``32FC1``
(depth in metres / confidence). Rows may be padded: ``step >= width * bytes_per_pixel``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import Tensor

from gsnerf_ros.data.io import label_colors as colorize_labels

__all__ = [
    "ENCODINGS", "EncodingInfo", "ImageFormatError", "decode_image", "encode_image",
    "convert_color", "to_rgb_tensor", "to_depth_metres", "undistort", "undistort_depth",
    "labels_to_array", "colorize_labels",
]


class ImageFormatError(ValueError):
    """An image message cannot be decoded; the message says what to fix."""


@dataclass(frozen=True)
class EncodingInfo:
    """NumPy dtype and channel count of one ROS image encoding."""

    dtype: type
    channels: int


CV_DEPTHS: dict[str, type] = {"8U": np.uint8, "8S": np.int8, "16U": np.uint16, "16S": np.int16,
                              "32S": np.int32, "32F": np.float32, "64F": np.float64}
"""OpenCV depth codes of the generic ``<depth>C<channels>`` encodings (sensor_msgs)."""

ENCODINGS: dict[str, EncodingInfo] = {
    "rgb8": EncodingInfo(np.uint8, 3), "bgr8": EncodingInfo(np.uint8, 3),
    "rgba8": EncodingInfo(np.uint8, 4), "bgra8": EncodingInfo(np.uint8, 4),
    "mono8": EncodingInfo(np.uint8, 1), "mono16": EncodingInfo(np.uint16, 1),
    **{f"{code}C{ch}": EncodingInfo(dt, ch) for code, dt in CV_DEPTHS.items()
       for ch in (1, 2, 3, 4)},
}
"""Every encoding this package reads and writes: the named ones and every ``8UC1``..``64FC4``."""

_COLOR = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8")


def _info(encoding: str) -> EncodingInfo:
    if encoding not in ENCODINGS:
        raise ImageFormatError(
            f"unsupported image encoding {encoding!r}; publish one of {sorted(ENCODINGS)} "
            "(e.g. convert yuv422/bayer images with image_proc first)")
    return ENCODINGS[encoding]


def decode_image(encoding: str, height: int, width: int, step: int, data: bytes | bytearray |
                 memoryview | np.ndarray, is_bigendian: bool = False) -> np.ndarray:
    """Raw Image fields to an array (H, W) for one channel or (H, W, C), dtype of the encoding.

    Honours row padding (``step`` bytes per row) and byte order. The result owns its memory.
    """
    info = _info(encoding)
    itemsize = np.dtype(info.dtype).itemsize
    row = width * info.channels * itemsize
    if height <= 0 or width <= 0:
        raise ImageFormatError(f"image has size {width}x{height}; width and height must be > 0")
    if step < row:
        raise ImageFormatError(f"image step {step} is smaller than width*channels*bytes = {row} "
                               f"for {encoding} {width}x{height}; set step correctly")
    buf = np.frombuffer(bytes(data) if not isinstance(data, np.ndarray) else data.tobytes(),
                        dtype=np.uint8)
    if buf.size < step * (height - 1) + row:
        raise ImageFormatError(f"image data has {buf.size} bytes but {encoding} {width}x{height} "
                               f"with step {step} needs {step * height}")
    rows = np.lib.stride_tricks.as_strided(buf, shape=(height, row), strides=(step, 1))
    dt = np.dtype(info.dtype).newbyteorder(">" if is_bigendian else "<")
    arr = np.ascontiguousarray(rows).view(dt).astype(info.dtype, copy=False)
    arr = arr.reshape(height, width, info.channels) if info.channels > 1 else arr.reshape(height, width)
    return np.array(arr, copy=True)


def encode_image(array: np.ndarray, encoding: str) -> tuple[int, int, int, bytes]:
    """Array to raw Image fields ``(height, width, step, data)`` little-endian, no padding.

    Shape: (H, W) or (H, W, C) with C and dtype matching ``encoding``.
    """
    info = _info(encoding)
    a = np.asarray(array)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] != info.channels:
        raise ImageFormatError(f"array of shape {array.shape} cannot be encoded as {encoding} "
                               f"({info.channels} channel(s))")
    if a.dtype != info.dtype:
        raise ImageFormatError(f"array dtype {a.dtype} does not match {encoding} "
                               f"({np.dtype(info.dtype).name}); convert it first")
    a = np.ascontiguousarray(a.astype(np.dtype(info.dtype).newbyteorder("<"), copy=False))
    h, w = a.shape[:2]
    return h, w, w * info.channels * a.itemsize, a.tobytes()


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
    """Convert between the 8-bit colour encodings (cv_bridge ``desired_encoding``)."""
    if src == dst:
        return array
    if (src, dst) not in _CVT:
        raise ImageFormatError(f"cannot convert image from {src!r} to {dst!r}; colour conversions "
                               f"exist among {list(_COLOR)}")
    return cv2.cvtColor(array, _CVT[(src, dst)])


def to_rgb_tensor(array: np.ndarray, encoding: str) -> Tensor:
    """A decoded colour/mono image to the model's layout. Shape: (H, W[, C]) -> (3, H, W) in [0,1]."""
    if encoding not in _COLOR and encoding not in ("8UC3", "8UC1"):
        raise ImageFormatError(f"the camera image has encoding {encoding!r}, which is not a colour "
                               f"image; publish one of {list(_COLOR)}")
    src = {"8UC3": "bgr8", "8UC1": "mono8"}.get(encoding, encoding)
    rgb = convert_color(array, src, "rgb8")
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div_(255.0)


def to_depth_metres(array: np.ndarray, encoding: str) -> Tensor:
    """A decoded depth image to z-depth in metres, 0 = invalid. Shape: (H, W) -> (H, W) float32.

    ``16UC1``/``mono16`` are millimetres; ``32FC1`` is metres (NaN, inf and negatives -> 0).
    """
    if encoding in ("16UC1", "mono16"):
        d = array.astype(np.float32) / 1000.0
    elif encoding == "32FC1":
        d = array.astype(np.float32, copy=True)
        d[~np.isfinite(d) | (d < 0)] = 0.0
    else:
        raise ImageFormatError(f"depth image has encoding {encoding!r}; publish 16UC1 "
                               "(millimetres) or 32FC1 (metres)")
    return torch.from_numpy(np.ascontiguousarray(d))


def _has_distortion(D: np.ndarray) -> bool:
    return D.size > 0 and bool(np.any(np.abs(D) > 1e-12))


def undistort(array: np.ndarray, K: np.ndarray, D: np.ndarray,
              model: str = "plumb_bob", interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Remove lens distortion, keeping the same ``K`` for the output (pixels outside -> 0).

    ``model``: ``plumb_bob`` / ``rational_polynomial`` (OpenCV model) or ``equidistant``
    (fisheye, 4 coefficients). Returns the input unchanged when every coefficient is zero.
    """
    D = np.asarray(D, dtype=np.float64).reshape(-1)
    if not _has_distortion(D):
        return array
    K = np.asarray(K, dtype=np.float64).reshape(3, 3)
    h, w = array.shape[:2]
    if model == "equidistant":
        if D.size < 4:
            raise ImageFormatError("equidistant distortion needs 4 coefficients in CameraInfo.d")
        m1, m2 = cv2.fisheye.initUndistortRectifyMap(K, D[:4], np.eye(3), K, (w, h), cv2.CV_32FC1)
    elif model in ("plumb_bob", "rational_polynomial", ""):
        m1, m2 = cv2.initUndistortRectifyMap(K, D, np.eye(3), K, (w, h), cv2.CV_32FC1)
    else:
        raise ImageFormatError(f"unsupported distortion model {model!r}; use plumb_bob, "
                               "rational_polynomial or equidistant, or publish rectified images")
    return cv2.remap(array, m1, m2, interpolation, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def undistort_depth(array: np.ndarray, K: np.ndarray, D: np.ndarray,
                    model: str = "plumb_bob") -> np.ndarray:
    """:func:`undistort` with nearest-neighbour sampling (never blends depths across edges)."""
    return undistort(array, K, D, model, interpolation=cv2.INTER_NEAREST)


def labels_to_array(labels: Tensor, num_classes: int) -> tuple[np.ndarray, str]:
    """Class ids to an image array and its encoding: ``mono8``, or ``mono16`` above 255 classes.

    Shape: (H, W) int64 -> (H, W) uint8 / uint16.
    """
    lab = labels.detach().to("cpu").numpy()
    if num_classes > 255:
        return lab.astype(np.uint16), "mono16"
    return lab.astype(np.uint8), "mono8"
