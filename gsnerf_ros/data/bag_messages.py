"""ROS 2 message helpers for reading and writing bags with ``rosbags``: the message type names,
``sensor_msgs/Image`` / ``CompressedImage`` messages <-> arrays (through the codec of
:mod:`gsnerf_ros.imaging`), and header / stamp helpers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gsnerf_ros.imaging import (
    canonical_encoding, decode_compressed, decode_raw, depth_metres, encode_compressed, encode_raw,
    label_ids, to_rgb_array,
)

__all__ = ["IMAGE", "COMPRESSED_IMAGE", "CAMERA_INFO", "TF_MESSAGE", "POSE_STAMPED", "ODOMETRY",
           "decode_image", "encode_image", "encode_compressed_image", "make_header",
           "stamp_seconds"]

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
TF_MESSAGE = "tf2_msgs/msg/TFMessage"
POSE_STAMPED = "geometry_msgs/msg/PoseStamped"
ODOMETRY = "nav_msgs/msg/Odometry"


def decode_image(msg: Any, kind: str = "rgb") -> np.ndarray:
    """Decode an Image / CompressedImage message.

    ``kind="rgb"`` -> uint8/uint16 [H,W,3] RGB (a generic ``8UC3`` is taken as stored);
    ``"depth"`` -> float32 [H,W] m (0 = invalid); ``"labels"`` -> int64 [H,W]. Encoding names
    are matched ignoring case.
    """
    if hasattr(msg, "encoding"):
        enc = canonical_encoding(msg.encoding)
        arr = decode_raw(enc, int(msg.height), int(msg.width), int(msg.step), msg.data,
                         bool(getattr(msg, "is_bigendian", 0)))
    else:
        arr, enc = decode_compressed(msg.data, str(getattr(msg, "format", "")))
    if kind == "rgb":
        return to_rgb_array(arr, enc, generic_order="rgb")
    if kind == "depth":
        return depth_metres(arr, enc)
    if kind == "labels":
        return label_ids(arr, enc)
    raise ValueError(f"kind must be rgb, depth or labels, got {kind!r}")


def encode_image(typestore: Any, array: np.ndarray, encoding: str, stamp: float,
                 frame_id: str) -> Any:
    """Build a ``sensor_msgs/Image`` from an array (row-major, little endian)."""
    h, w, step, data = encode_raw(array, encoding)
    return typestore.types[IMAGE](
        header=make_header(typestore, stamp, frame_id), height=h, width=w, encoding=encoding,
        is_bigendian=0, step=step, data=np.frombuffer(data, dtype=np.uint8))


def encode_compressed_image(typestore: Any, array: np.ndarray, encoding: str, stamp: float,
                            frame_id: str, format: str = "png") -> Any:
    """Build a ``sensor_msgs/CompressedImage`` (PNG or JPEG) from an array of ``encoding``."""
    data = encode_compressed(array, encoding, format)
    return typestore.types[COMPRESSED_IMAGE](
        header=make_header(typestore, stamp, frame_id), format=format,
        data=np.frombuffer(data, dtype=np.uint8))


def make_header(typestore: Any, stamp: float, frame_id: str) -> Any:
    """A ``std_msgs/Header`` at ``stamp`` seconds in ``frame_id``."""
    Header = typestore.types["std_msgs/msg/Header"]
    Time = typestore.types["builtin_interfaces/msg/Time"]
    sec = int(math.floor(stamp))
    return Header(stamp=Time(sec=sec, nanosec=int(round((stamp - sec) * 1e9))), frame_id=frame_id)


def stamp_seconds(msg: Any) -> float:
    """The header stamp of a message in seconds."""
    s = msg.header.stamp
    return float(s.sec) + float(s.nanosec) * 1e-9
