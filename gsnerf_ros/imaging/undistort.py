"""Lens undistortion of decoded camera images (OpenCV), keeping the camera matrix ``K``."""

from __future__ import annotations

import cv2
import numpy as np

from gsnerf_ros.imaging.codec import ImageFormatError

__all__ = ["undistort", "undistort_depth"]


def _has_distortion(D: np.ndarray) -> bool:
    return D.size > 0 and bool(np.any(np.abs(D) > 1e-12))


def undistort(array: np.ndarray, K: np.ndarray, D: np.ndarray,
              model: str = "plumb_bob", interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Remove lens distortion, keeping the same ``K`` for the output (pixels outside -> 0).

    ``model``: ``plumb_bob`` / ``rational_polynomial`` (OpenCV model) or ``equidistant``
    (fisheye, 4 coefficients). Returns the input unchanged when every coefficient is zero.
    Shape: (H, W[, C]) -> the same.
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
