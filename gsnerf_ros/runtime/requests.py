"""Validation of render requests and camera inputs (ROS-free).

Every check raises :class:`RequestError` (a ``ValueError``) whose message says what is wrong and
what to fix; the node turns it into ``success=false`` + ``message`` and keeps running.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from gsnerf_ros.geometry import make_pose, quat_to_matrix, scale_intrinsics

__all__ = ["RequestError", "CameraSpec", "pose_from_components", "check_intrinsics",
           "resolve_camera", "check_image_matches_info", "QUATERNION_TOLERANCE"]

QUATERNION_TOLERANCE = 1e-3
"""Largest accepted | |q| - 1 | of a request's orientation."""


class RequestError(ValueError):
    """A request or input that cannot be served; the message says what to fix."""


@dataclass
class CameraSpec:
    """Intrinsics ``K`` [3,3] px for an image of ``width`` x ``height``."""

    K: Tensor
    width: int
    height: int


def pose_from_components(position: Sequence[float], orientation_xyzw: Sequence[float],
                         what: str = "pose") -> Tensor:
    """Position (m) + quaternion (x, y, z, w) -> c2w [4,4] float64.

    Raises for NaN/inf anywhere and for a quaternion whose norm is not 1 within
    :data:`QUATERNION_TOLERANCE` (a common client bug: an all-zero default orientation).
    """
    p = [float(v) for v in position]
    q = [float(v) for v in orientation_xyzw]
    if not all(math.isfinite(v) for v in p):
        raise RequestError(f"{what}.position has NaN/inf values {p}; send finite metres")
    if not all(math.isfinite(v) for v in q):
        raise RequestError(f"{what}.orientation has NaN/inf values {q}; send a unit quaternion")
    n = math.sqrt(sum(v * v for v in q))
    if abs(n - 1.0) > QUATERNION_TOLERANCE:
        raise RequestError(
            f"{what}.orientation (x,y,z,w)={tuple(round(v, 6) for v in q)} has norm {n:.6f}; "
            "send a unit quaternion (normalise it; identity is w=1)")
    R = quat_to_matrix(torch.tensor(q, dtype=torch.float64))
    return make_pose(R, torch.tensor(p, dtype=torch.float64))


def check_intrinsics(K: Tensor, width: int, height: int, what: str = "camera_info") -> None:
    """Raise unless ``K`` [3,3] is finite with fx, fy > 0 and the size is positive."""
    if width <= 0 or height <= 0:
        raise RequestError(f"{what} has size {width}x{height}; width and height must be > 0")
    if not bool(torch.isfinite(K).all()):
        raise RequestError(f"{what}.k has NaN/inf entries; publish a calibrated camera")
    if float(K[0, 0]) <= 0 or float(K[1, 1]) <= 0:
        raise RequestError(f"{what}.k has fx={float(K[0, 0])}, fy={float(K[1, 1])}; focal lengths "
                           "must be > 0 (is the camera calibrated?)")


def resolve_camera(K: Tensor, width: int, height: int, latest: CameraSpec | None,
                   default_width: int, default_height: int, max_width: int,
                   max_height: int) -> CameraSpec:
    """The virtual camera of a request.

    An all-zero ``K`` means the latest real camera's intrinsics scaled to the requested size, or
    to ``default_width`` x ``default_height`` when the request's size is 0. Sizes above the limits
    are refused.
    """
    if not bool(torch.isfinite(K).all()):
        raise RequestError("camera_info.k has NaN/inf entries; send finite intrinsics or all "
                           "zeros for the latest real camera's")
    if bool((K == 0).all()):
        if latest is None:
            raise RequestError("camera_info.k is all zeros (use the real camera's intrinsics) but "
                               "no camera_info has been received yet; wait for the camera or "
                               "send explicit intrinsics")
        w = width or default_width
        h = height or default_height
        _check_size(w, h, max_width, max_height)
        Ks = scale_intrinsics(latest.K.double(), w / latest.width, h / latest.height)
        return CameraSpec(Ks, w, h)
    _check_size(width, height, max_width, max_height)
    check_intrinsics(K, width, height, "camera_info")
    return CameraSpec(K.double(), width, height)


def _check_size(w: int, h: int, max_w: int, max_h: int) -> None:
    if w <= 0 or h <= 0:
        raise RequestError(f"camera_info size {w}x{h} is invalid; set width and height > 0 "
                           "(or 0 with an all-zero k for the configured render size)")
    if w > max_w or h > max_h:
        raise RequestError(f"render size {w}x{h} exceeds the limit {max_w}x{max_h}; request a "
                           "smaller camera_info width/height or raise render.max_width/max_height")


def check_image_matches_info(img_w: int, img_h: int, info_w: int, info_h: int,
                             what: str = "image") -> None:
    """Raise when an image and its CameraInfo disagree on the size."""
    if (img_w, img_h) != (info_w, info_h):
        raise RequestError(f"{what} is {img_w}x{img_h} but its camera_info says "
                           f"{info_w}x{info_h}; publish the CameraInfo of this image stream "
                           "(after any resize/crop)")
