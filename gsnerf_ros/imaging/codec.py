"""Image bytes <-> NumPy arrays: the one table of image encodings, raw and compressed.

Raw images are the fields of a ``sensor_msgs/Image`` (``encoding``, ``height``, ``width``,
``step``, ``is_bigendian``, ``data``), read with cv_bridge semantics; compressed images are the
``format`` and ``data`` of a ``sensor_msgs/CompressedImage`` (JPEG or PNG, decoded with OpenCV).
Nothing here knows ROS message types, so the node, the bag reader and the bag writer share it.

:data:`ENCODINGS` names every encoding this package reads and writes: colour ``rgb8``, ``bgr8``,
``rgba8``, ``bgra8`` (and their 16-bit ``rgb16`` ... ``bgra16``), grey ``mono8`` / ``mono16``
and every generic OpenCV type ``8UC1`` ... ``64FC4`` (``16UC1`` is depth in millimetres,
``32FC1`` depth in metres or a confidence). Rows may be padded: ``step >= width *
bytes_per_pixel``. ``compressedDepth`` (the depth image_transport) is not supported.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = [
    "ImageFormatError", "EncodingInfo", "CV_DEPTHS", "ENCODINGS", "encoding_info",
    "canonical_encoding", "cv_type_name", "decode_raw", "encode_raw", "decode_compressed",
    "encode_compressed",
]


class ImageFormatError(ValueError):
    """Image data cannot be decoded or encoded; the message says what to fix."""


@dataclass(frozen=True)
class EncodingInfo:
    """NumPy dtype, channel count and channel order of one ROS image encoding.

    ``order`` is the colour order of the named colour encodings (``"rgb"``, ``"bgr"``,
    ``"rgba"``, ``"bgra"``, ``"mono"``) and ``None`` for the generic ``<depth>C<n>`` ones, whose
    channels carry no colour meaning.
    """

    dtype: type
    channels: int
    order: str | None = None


CV_DEPTHS: dict[str, type] = {"8U": np.uint8, "8S": np.int8, "16U": np.uint16, "16S": np.int16,
                              "32S": np.int32, "32F": np.float32, "64F": np.float64}
"""OpenCV depth codes of the generic ``<depth>C<channels>`` encodings (sensor_msgs)."""

ENCODINGS: dict[str, EncodingInfo] = {
    "rgb8": EncodingInfo(np.uint8, 3, "rgb"), "bgr8": EncodingInfo(np.uint8, 3, "bgr"),
    "rgba8": EncodingInfo(np.uint8, 4, "rgba"), "bgra8": EncodingInfo(np.uint8, 4, "bgra"),
    "rgb16": EncodingInfo(np.uint16, 3, "rgb"), "bgr16": EncodingInfo(np.uint16, 3, "bgr"),
    "rgba16": EncodingInfo(np.uint16, 4, "rgba"), "bgra16": EncodingInfo(np.uint16, 4, "bgra"),
    "mono8": EncodingInfo(np.uint8, 1, "mono"), "mono16": EncodingInfo(np.uint16, 1, "mono"),
    **{f"{code}C{ch}": EncodingInfo(dt, ch) for code, dt in CV_DEPTHS.items()
       for ch in (1, 2, 3, 4)},
}
"""Every encoding this package reads and writes: the named ones and every ``8UC1``..``64FC4``."""

_BY_LOWER = {name.lower(): name for name in ENCODINGS}


def encoding_info(encoding: str) -> EncodingInfo:
    """The :class:`EncodingInfo` of ``encoding`` (exact name); :class:`ImageFormatError` if
    this package does not read it."""
    if encoding not in ENCODINGS:
        raise ImageFormatError(
            f"unsupported image encoding {encoding!r}; publish one of {sorted(ENCODINGS)} "
            "(e.g. convert yuv422/bayer images with image_proc first)")
    return ENCODINGS[encoding]


def canonical_encoding(encoding: str) -> str:
    """The table's spelling of ``encoding``, ignoring case (``"8uc1"`` -> ``"8UC1"``,
    ``"RGB8"`` -> ``"rgb8"``), for recordings that do not spell it as sensor_msgs does."""
    name = _BY_LOWER.get(encoding.lower(), encoding)
    encoding_info(name)
    return name


def cv_type_name(encoding: str) -> str:
    """The OpenCV type name of an encoding's pixels (``rgb8`` -> ``8UC3``)."""
    info = encoding_info(encoding)
    code = next(c for c, dt in CV_DEPTHS.items() if np.dtype(dt) == np.dtype(info.dtype))
    return f"{code}C{info.channels}"


def decode_raw(encoding: str, height: int, width: int, step: int,
               data: bytes | bytearray | memoryview | np.ndarray,
               is_bigendian: bool = False) -> np.ndarray:
    """Raw image bytes to an array: (H, W) for one channel or (H, W, C), dtype of the encoding.

    Honours row padding (``step`` bytes per row) and byte order; the channels stay in the
    encoding's order. The result owns its memory (native byte order).
    """
    info = encoding_info(encoding)
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
    shape = (height, width, info.channels) if info.channels > 1 else (height, width)
    return np.array(arr.reshape(shape), copy=True)


def encode_raw(array: np.ndarray, encoding: str) -> tuple[int, int, int, bytes]:
    """Array to raw image fields ``(height, width, step, data)``, little-endian, no padding.

    Shape: (H, W) or (H, W, C) with C and dtype matching ``encoding``.
    """
    info = encoding_info(encoding)
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


_COMPRESSED_COLOUR = {(np.dtype(np.uint8), 3): "bgr8", (np.dtype(np.uint8), 4): "bgra8",
                      (np.dtype(np.uint16), 3): "bgr16", (np.dtype(np.uint16), 4): "bgra16",
                      (np.dtype(np.uint8), 1): "mono8", (np.dtype(np.uint16), 1): "16UC1"}
"""The encoding of what OpenCV decodes (BGR channel order; 16-bit grey is depth in mm)."""


def decode_compressed(data: bytes | bytearray | memoryview | np.ndarray,
                      format: str = "") -> tuple[np.ndarray, str]:
    """JPEG/PNG bytes to ``(array, encoding)``: (H, W) ``mono8`` / ``16UC1`` or (H, W, C)
    ``bgr8`` / ``bgra8`` / ``bgr16`` / ``bgra16`` (OpenCV's channel order).

    ``format`` is the CompressedImage's format string; ``compressedDepth`` data is refused.
    """
    buf = np.frombuffer(data.tobytes() if isinstance(data, np.ndarray) else bytes(data),
                        dtype=np.uint8)
    if buf.size == 0:
        raise ImageFormatError(f"empty CompressedImage (format {format!r})")
    if "compresseddepth" in str(format).lower():
        raise ImageFormatError("compressedDepth images are not supported; record raw depth")
    arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ImageFormatError(f"cannot decode CompressedImage of format {format!r}")
    channels = 1 if arr.ndim == 2 else arr.shape[2]
    encoding = _COMPRESSED_COLOUR.get((arr.dtype, channels))
    if encoding is None:
        raise ImageFormatError(f"CompressedImage of format {format!r} decodes to {channels} "
                               f"channel(s) of {arr.dtype}; publish 8- or 16-bit JPEG or PNG")
    return arr, encoding


def encode_compressed(array: np.ndarray, encoding: str, format: str = "png") -> bytes:
    """An array of a colour or grey ``encoding`` to JPEG/PNG bytes (``format`` ``"png"`` or
    ``"jpeg"``), converted to OpenCV's channel order first."""
    info = encoding_info(encoding)
    ext = {"png": ".png", "jpeg": ".jpg", "jpg": ".jpg"}.get(format.lower())
    if ext is None:
        raise ImageFormatError(f"compressed format must be png or jpeg, got {format!r}")
    a = np.asarray(array)
    if a.dtype != info.dtype or (a.shape[2] if a.ndim == 3 else 1) != info.channels:
        raise ImageFormatError(f"array of shape {a.shape} and dtype {a.dtype} is not {encoding}")
    if info.order == "rgb":
        a = a[..., ::-1]
    elif info.order == "rgba":
        a = a[..., [2, 1, 0, 3]]
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(a))
    if not ok:
        raise ImageFormatError(f"OpenCV cannot encode {encoding} {a.shape} as {format}")
    return buf.tobytes()
