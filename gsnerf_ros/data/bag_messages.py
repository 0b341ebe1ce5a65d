"""ROS 2 message helpers for reading and writing bags with ``rosbags``: the message type names,
image decoding (``sensor_msgs/Image`` / ``CompressedImage`` -> arrays) and encoding, and
header / stamp helpers.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["decode_image", "encode_image"]

_IMAGE = "sensor_msgs/msg/Image"
_CIMAGE = "sensor_msgs/msg/CompressedImage"
_INFO = "sensor_msgs/msg/CameraInfo"
_TF = "tf2_msgs/msg/TFMessage"
_POSE = "geometry_msgs/msg/PoseStamped"
_ODOM = "nav_msgs/msg/Odometry"


def decode_image(msg: object, kind: str = "rgb") -> np.ndarray:
    """Decode an Image / CompressedImage message.

    ``kind="rgb"`` -> uint8/uint16 [H,W,3] RGB; ``"depth"`` -> float32 [H,W] m (0 = invalid);
    ``"labels"`` -> int64 [H,W].
    """
    if hasattr(msg, "encoding"):
        enc = msg.encoding.lower()
        h, w, step = int(msg.height), int(msg.width), int(msg.step)
        raw = np.asarray(msg.data, dtype=np.uint8)
        chans = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "8uc1": 1,
                 "mono16": 1, "16uc1": 1, "32fc1": 1, "8uc3": 3}
        if enc not in chans:
            raise ValueError(f"unsupported image encoding {msg.encoding!r}")
        dtype = {"mono16": np.uint16, "16uc1": np.uint16, "32fc1": np.float32}.get(enc, np.uint8)
        itemsize = np.dtype(dtype).itemsize
        rows = raw.reshape(h, step)[:, : w * chans[enc] * itemsize]
        big = bool(getattr(msg, "is_bigendian", 0))
        arr = np.frombuffer(rows.tobytes(), dtype=np.dtype(dtype).newbyteorder(">" if big else "<"))
        arr = arr.astype(dtype).reshape(h, w, chans[enc]) if chans[enc] > 1 else arr.astype(dtype).reshape(h, w)
    else:  # CompressedImage
        buf = np.frombuffer(np.asarray(msg.data, dtype=np.uint8).tobytes(), dtype=np.uint8)
        if "compresseddepth" in str(getattr(msg, "format", "")).lower():
            raise ValueError("compressedDepth images are not supported; record raw depth")
        arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        if arr is None:
            raise ValueError(f"cannot decode CompressedImage of format {msg.format!r}")
        enc = "bgr8" if arr.ndim == 3 else ("16uc1" if arr.dtype == np.uint16 else "mono8")
        if arr.ndim == 3 and arr.shape[2] == 4:
            arr, enc = arr[..., :3], "bgr8"
    if kind == "rgb":
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=-1)
        if enc.startswith("bgr"):
            arr = arr[..., 2::-1]
        return np.ascontiguousarray(arr[..., :3])
    if kind == "depth":
        if arr.ndim != 2:
            raise ValueError(f"depth must be single-channel, got encoding {enc!r}")
        d = arr.astype(np.float32) / (1000.0 if arr.dtype == np.uint16 else 1.0)
        return np.where(np.isfinite(d) & (d > 0), d, 0.0).astype(np.float32)
    if kind == "labels":
        if arr.ndim != 2:
            raise ValueError(f"labels must be single-channel ids, got encoding {enc!r}")
        return arr.astype(np.int64)
    raise ValueError(f"kind must be rgb, depth or labels, got {kind!r}")


def encode_image(typestore, array: np.ndarray, encoding: str, stamp: float, frame_id: str):
    """Build a ``sensor_msgs/Image`` from an array (row-major, little endian)."""
    Image = typestore.types[_IMAGE]
    arr = np.ascontiguousarray(array)
    h, w = arr.shape[:2]
    return Image(header=_header(typestore, stamp, frame_id), height=h, width=w, encoding=encoding,
                 is_bigendian=0, step=arr.strides[0],
                 data=np.frombuffer(arr.tobytes(), dtype=np.uint8))


def _header(ts, stamp: float, frame_id: str):
    Header = ts.types["std_msgs/msg/Header"]
    Time = ts.types["builtin_interfaces/msg/Time"]
    sec = int(math.floor(stamp))
    return Header(stamp=Time(sec=sec, nanosec=int(round((stamp - sec) * 1e9))), frame_id=frame_id)


def _stamp(msg: object) -> float:
    s = msg.header.stamp
    return float(s.sec) + float(s.nanosec) * 1e-9
