"""In-tree equivalent of ``cv_bridge.CvBridge`` (used where the real package is not installed).

Same API as ROS 2 cv_bridge for the parts this package uses::

    bridge = CvBridge()
    arr = bridge.imgmsg_to_cv2(msg, desired_encoding="passthrough")   # or "rgb8", "bgr8", ...
    msg = bridge.cv2_to_imgmsg(arr, encoding="rgb8", header=header)

Encodings and row padding follow :mod:`gsnerf_ros.ros.image_conversion`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gsnerf_ros.ros.image_conversion import (
    ImageFormatError, convert_color, decode_image, encode_image,
)

__all__ = ["CvBridge", "CvBridgeError"]


class CvBridgeError(TypeError):
    """Raised like cv_bridge's when an image cannot be converted."""


class CvBridge:
    """Convert between ``sensor_msgs/Image`` and NumPy (OpenCV) arrays."""

    def imgmsg_to_cv2(self, img_msg: Any, desired_encoding: str = "passthrough") -> np.ndarray:
        """Image message to an array (H, W) or (H, W, C), optionally converting colour order."""
        try:
            arr = decode_image(img_msg.encoding, img_msg.height, img_msg.width, img_msg.step,
                               img_msg.data, bool(img_msg.is_bigendian))
            if desired_encoding in ("passthrough", img_msg.encoding):
                return arr
            return convert_color(arr, img_msg.encoding, desired_encoding)
        except ImageFormatError as exc:
            raise CvBridgeError(str(exc)) from exc

    def cv2_to_imgmsg(self, cvim: np.ndarray, encoding: str = "passthrough",
                      header: Any = None) -> Any:
        """Array to an Image message; ``passthrough`` infers 8UC*/16UC1/32FC1 from the dtype."""
        from sensor_msgs.msg import Image

        if encoding == "passthrough":
            encoding = _infer_encoding(cvim)
        try:
            h, w, step, data = encode_image(cvim, encoding)
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
    ch = 1 if a.ndim == 2 else a.shape[2]
    table = {(np.dtype(np.uint8), 1): "8UC1", (np.dtype(np.uint8), 3): "8UC3",
             (np.dtype(np.uint16), 1): "16UC1", (np.dtype(np.float32), 1): "32FC1"}
    if (a.dtype, ch) not in table:
        raise CvBridgeError(f"cannot infer an encoding for dtype {a.dtype} with {ch} channels")
    return table[(a.dtype, ch)]
