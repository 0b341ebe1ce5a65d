"""In-tree equivalent of ``cv_bridge.CvBridge`` (used where the real package is not installed).

Same API as ROS 2 cv_bridge for the parts this package uses::

    bridge = CvBridge()
    arr = bridge.imgmsg_to_cv2(msg, desired_encoding="passthrough")   # or "rgb8", "bgr8", ...
    msg = bridge.cv2_to_imgmsg(arr, encoding="rgb8", header=header)

Encodings and row padding follow the codec of :mod:`gsnerf_ros.imaging`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gsnerf_ros.imaging import (
    CV_DEPTHS, ENCODINGS, ImageFormatError, convert_color, cv_type_name, decode_raw, encode_raw,
)

__all__ = ["CvBridge", "CvBridgeError"]


class CvBridgeError(TypeError):
    """Raised like cv_bridge's when an image cannot be converted."""


class CvBridge:
    """Convert between ``sensor_msgs/Image`` and NumPy (OpenCV) arrays."""

    def imgmsg_to_cv2(self, img_msg: Any, desired_encoding: str = "passthrough") -> np.ndarray:
        """Image message to an array (H, W) or (H, W, C), optionally converting colour order."""
        try:
            arr = decode_raw(img_msg.encoding, img_msg.height, img_msg.width, img_msg.step,
                             img_msg.data, bool(img_msg.is_bigendian))
            if desired_encoding in ("passthrough", img_msg.encoding):
                return arr
            return convert_color(arr, img_msg.encoding, desired_encoding)
        except ImageFormatError as exc:
            raise CvBridgeError(str(exc)) from exc

    def cv2_to_imgmsg(self, cvim: np.ndarray, encoding: str = "passthrough",
                      header: Any = None) -> Any:
        """Array to an Image message; ``passthrough`` names the OpenCV type of the array
        (``8UC3``, ``32FC1``, ...). Like cv_bridge: TypeError for a non-array, CvBridgeError when
        ``encoding`` does not fit the array's type."""
        from sensor_msgs.msg import Image

        if not isinstance(cvim, (np.ndarray, np.generic)):
            raise TypeError("Your input type is not a numpy array")
        cv_type = _infer_encoding(cvim)
        if encoding == "passthrough":
            encoding = cv_type
        elif encoding in ENCODINGS and cv_type_name(encoding) != cv_type:
            raise CvBridgeError(f"encoding specified as {encoding}, but image has incompatible "
                                f"type {cv_type}")
        try:
            h, w, step, data = encode_raw(cvim, encoding)
        except ImageFormatError as exc:
            raise CvBridgeError(str(exc)) from exc
        msg = Image()
        if header is not None:
            msg.header = header
        msg.height, msg.width, msg.step, msg.encoding = h, w, step, encoding
        msg.is_bigendian = 0
        msg.data = data
        return msg


def _infer_encoding(a: np.ndarray) -> str:
    """The OpenCV type name of an array: depth code from the dtype, channels from the shape."""
    ch = 1 if a.ndim == 2 else a.shape[2]
    code = next((c for c, dt in CV_DEPTHS.items() if np.dtype(dt) == a.dtype.newbyteorder("=")),
                None)
    if code is None or not 1 <= ch <= 4:
        raise CvBridgeError(f"cannot infer an encoding for dtype {a.dtype} with {ch} channels")
    return f"{code}C{ch}"
