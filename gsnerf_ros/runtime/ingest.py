"""Camera frames -> keyframes (ROS-free): the camera model, rectification, depth registration,
resizing and the keyframe buffer's policy.

The camera model is the one of ``sensor_msgs/CameraInfo`` as ``image_geometry`` and OpenCV read
it (:class:`CameraModel`):

- a *raw* image is undistorted and rectified with ``K``, ``D``, ``R`` and ``P`` (OpenCV's
  ``initUndistortRectifyMap(K, D, R, P[:3,:3])``, ``image_proc``'s ``image_rect``); a
  *rectified* one (``image_rect``) is used as it is. Either way the keyframe's intrinsics are
  ``P[:3,:3]`` and its optical frame is the rectified one, turned by ``R`` from the camera's
  (``R`` is the identity for a monocular camera). ``P``'s last column (a stereo baseline) is not
  used: the camera's own TF frame places it. A CameraInfo with ``P`` all zero (an uncalibrated
  driver) has ``P = [K | 0]``, and ``R`` all zero is the identity.
- ``camera.input`` says which: ``raw``, ``rectified``, or ``auto`` = rectified when every
  distortion coefficient is zero (nothing to undistort), raw otherwise. An ``image_rect`` topic
  with the camera's own camera_info (``D != 0``) needs ``rectified``.
- A depth image with its own camera_info (``topics.depth_camera_info``) is rectified with that
  model (nearest neighbour, never blending depths) and, when its camera is not the colour one
  (another frame, intrinsics or size), registered to the colour camera:
  :func:`~gsnerf_ros.geometry.register_depth` with the TF depth frame -> colour frame at the
  stamp (z-buffer, nearest surface wins; 0 where no depth pixel lands). Without one, the depth
  must be the colour camera's (same size) and is rectified with the colour model.

:class:`FrameIngest` applies this to a decoded frame and adds it to a
:class:`~gsnerf_ros.runtime.keyframes.KeyframeBuffer` at the keyframe size (``keyframes.width``
/ ``height``, :func:`resize_frame`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gsnerf_ros.geometry import register_depth, scale_intrinsics
from gsnerf_ros.runtime.keyframes import Keyframe, KeyframeBuffer
from gsnerf_ros.runtime.requests import RequestError, check_image_matches_info, check_intrinsics
from gsnerf_ros.runtime.segmenter_labels import KeyframeLabels

__all__ = ["CAMERA_INPUTS", "DISTORTION_MODELS", "CameraModel", "Rectifier", "DepthFrame",
           "FrameIngest", "resize_frame", "pose_of_rectified"]

CAMERA_INPUTS = ("auto", "raw", "rectified")
"""Values of ``camera.input``: how an image relates to its camera_info."""

DISTORTION_MODELS = ("plumb_bob", "rational_polynomial", "equidistant", "")
"""CameraInfo distortion models that can be undone ("" with no coefficients = none)."""


@dataclass(frozen=True)
class CameraModel:
    """A camera as ``sensor_msgs/CameraInfo`` describes it.

    ``K`` (3, 3) px, ``D`` (n,) distortion coefficients of ``distortion_model``, ``R`` (3, 3)
    rectification rotation (rectified frame <- camera frame), ``P`` (3, 4) projection of the
    rectified image, all float64; ``frame`` the optical frame id (may be empty).
    """

    width: int
    height: int
    K: np.ndarray
    D: np.ndarray
    distortion_model: str
    R: np.ndarray
    P: np.ndarray
    frame: str = ""

    @classmethod
    def from_fields(cls, width: int, height: int, k: Sequence[float], d: Sequence[float],
                    distortion_model: str, r: Sequence[float], p: Sequence[float],
                    frame: str = "") -> "CameraModel":
        """From CameraInfo's flat ``k`` (9), ``d``, ``r`` (9) and ``p`` (12); ``r`` all zero ->
        identity, ``p`` all zero -> ``[K | 0]``."""
        K = np.asarray(k, dtype=np.float64).reshape(3, 3)
        R = np.asarray(r, dtype=np.float64).reshape(3, 3)
        P = np.asarray(p, dtype=np.float64).reshape(3, 4)
        if not R.any():
            R = np.eye(3)
        if not P.any():
            P = np.concatenate([K, np.zeros((3, 1))], axis=1)
        return cls(int(width), int(height), K, np.asarray(d, dtype=np.float64).reshape(-1),
                   str(distortion_model), R, P, str(frame))

    @property
    def distorted(self) -> bool:
        """Whether any distortion coefficient is non-zero."""
        return self.D.size > 0 and bool(np.any(np.abs(self.D) > 1e-12))

    @property
    def rectified_K(self) -> np.ndarray:
        """Intrinsics (3, 3) px of the rectified image: ``P[:3, :3]``."""
        return self.P[:, :3]

    def is_rectified(self, camera_input: str) -> bool:
        """Whether an image of this camera is taken as already rectified (``camera.input``)."""
        if camera_input not in CAMERA_INPUTS:
            raise ValueError(f"camera input must be one of {list(CAMERA_INPUTS)}, got "
                             f"{camera_input!r}")
        return camera_input == "rectified" or (camera_input == "auto" and not self.distorted)

    def check(self, what: str = "camera_info") -> None:
        """Raise :class:`RequestError` saying what to fix when the model cannot be used."""
        check_intrinsics(torch.from_numpy(self.K), self.width, self.height, what)
        check_intrinsics(torch.from_numpy(self.rectified_K.copy()), self.width, self.height,
                         f"{what}.p")
        if not (np.isfinite(self.R).all() and np.isfinite(self.D).all()):
            raise RequestError(f"{what}.r or .d has NaN/inf entries; publish a calibrated camera")
        if (np.abs(self.R @ self.R.T - np.eye(3)).max() > 1e-4
                or abs(np.linalg.det(self.R) - 1.0) > 1e-4):
            raise RequestError(f"{what}.r is not a rotation matrix; publish the identity for a "
                               "monocular camera")
        if self.distorted and self.distortion_model not in DISTORTION_MODELS:
            raise RequestError(f"unsupported distortion model {self.distortion_model!r} in "
                               f"{what}; use plumb_bob, rational_polynomial or equidistant, or "
                               "publish rectified images (camera.input: rectified)")
        if self.distorted and self.distortion_model == "equidistant" and self.D.size < 4:
            raise RequestError(f"equidistant distortion needs 4 coefficients in {what}.d")

    def needs_remap(self, camera_input: str) -> bool:
        """Whether its images must be remapped: raw input whose undistortion / rectification is
        not the identity (``D`` zero, ``R`` = I and ``P[:3,:3]`` = ``K``)."""
        return not self.is_rectified(camera_input) and (
            self.distorted or not np.allclose(self.R, np.eye(3), rtol=0.0, atol=1e-12)
            or not np.array_equal(self.rectified_K, self.K))

    def key(self) -> tuple[object, ...]:
        """Hashable identity of the remap this camera needs."""
        return (self.width, self.height, self.distortion_model, self.K.tobytes(),
                self.D.tobytes(), self.R.tobytes(), self.P[:, :3].tobytes())


def pose_of_rectified(c2w: Tensor, camera: CameraModel) -> Tensor:
    """Pose (4, 4) of the rectified image's optical frame from the camera's, ``c2w`` (4, 4):
    a rectified-frame point ``x`` is ``R^T x`` in the camera frame. The same ``c2w`` when
    ``R`` is the identity."""
    if np.array_equal(camera.R, np.eye(3)):
        return c2w
    T = torch.eye(4, dtype=c2w.dtype)
    T[:3, :3] = torch.from_numpy(camera.R.T.copy()).to(c2w.dtype)
    return c2w @ T


class Rectifier:
    """Undistorts and rectifies images of :class:`CameraModel` cameras; the remap tables of the
    last few cameras are kept (a camera's calibration rarely changes). Thread-safe."""

    def __init__(self, cache_size: int = 4) -> None:
        self._maps: dict[tuple[object, ...], tuple[np.ndarray, np.ndarray]] = {}
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def maps(self, camera: CameraModel) -> tuple[np.ndarray, np.ndarray]:
        """``cv2.remap`` tables (H, W) float32 from rectified pixels to raw ones."""
        key = camera.key()
        with self._lock:
            hit = self._maps.get(key)
        if hit is not None:
            return hit
        size, P3 = (camera.width, camera.height), np.ascontiguousarray(camera.rectified_K)
        if camera.distorted and camera.distortion_model == "equidistant":
            m = cv2.fisheye.initUndistortRectifyMap(camera.K, camera.D[:4], camera.R, P3, size,
                                                    cv2.CV_32FC1)
        else:
            D = camera.D if camera.distorted else np.zeros(5)
            m = cv2.initUndistortRectifyMap(camera.K, D, camera.R, P3, size, cv2.CV_32FC1)
        with self._lock:
            if len(self._maps) >= self._cache_size:
                self._maps.pop(next(iter(self._maps)))
            self._maps[key] = m
        return m

    def rectify(self, image: np.ndarray, camera: CameraModel, camera_input: str,
                nearest: bool = False) -> np.ndarray:
        """The rectified image (intrinsics ``camera.rectified_K``; pixels from outside the raw
        image are 0). Shape: (H, W[, C]) -> same. ``nearest``: nearest-neighbour sampling
        (depth), else bilinear. A rectified input, or a raw one whose remap is the identity,
        is returned as it is."""
        if not camera.needs_remap(camera_input):
            return image
        if image.shape[:2] != (camera.height, camera.width):
            raise RequestError(f"image is {image.shape[1]}x{image.shape[0]} but its camera_info "
                               f"says {camera.width}x{camera.height}")
        m1, m2 = self.maps(camera)
        return cv2.remap(image, m1, m2, cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)


@dataclass
class DepthFrame:
    """A decoded depth image waiting to be rectified and registered.

    ``depth`` (H, W) z-depth in metres, 0 = invalid; ``camera`` its own model, or None when it
    is the colour camera's (same size, same model); ``colour_from_depth`` (4, 4) the depth
    optical frame -> colour optical frame (TF at the stamp), None when both are the same frame.
    """

    depth: Tensor
    camera: CameraModel | None = None
    colour_from_depth: Tensor | None = None


def resize_frame(image: Tensor, K: Tensor, width: int, height: int,
                 depth: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor | None]:
    """Resize a frame to ``width`` x ``height`` (0 = keep) and scale ``K`` to match.

    Shape: ``image`` [3,H,W], ``K`` [3,3], ``depth`` [H,W] (nearest) -> same at the new size.
    """
    H, W = image.shape[-2:]
    if (width in (0, W)) and (height in (0, H)):
        return image, K, depth
    w, h = width or W, height or H
    img = F.interpolate(image[None], size=(h, w), mode="bilinear", align_corners=False,
                        antialias=True)[0].clamp_(0, 1)
    Ks = scale_intrinsics(K, w / W, h / H)
    d = None
    if depth is not None:
        d = F.interpolate(depth[None, None], size=(h, w), mode="nearest")[0, 0]
    return img, Ks, d


def _rotation4(R: np.ndarray) -> Tensor:
    T = torch.eye(4, dtype=torch.float64)
    T[:3, :3] = torch.from_numpy(np.ascontiguousarray(R))
    return T


class FrameIngest:
    """Adds decoded camera frames to ``buffer`` as keyframes.

    ``camera_input``: ``camera.input`` (:data:`CAMERA_INPUTS`); ``width`` / ``height``: the
    keyframe size (0 = the first frame's size, kept for every later frame).
    """

    def __init__(self, buffer: KeyframeBuffer, camera_input: str = "auto", width: int = 0,
                 height: int = 0) -> None:
        if camera_input not in CAMERA_INPUTS:
            raise ValueError(f"camera.input must be one of {list(CAMERA_INPUTS)}, got "
                             f"{camera_input!r}")
        self.buffer = buffer
        self.camera_input = camera_input
        self.width, self.height = width, height
        self.rectifier = Rectifier()
        self._size: tuple[int, int] | None = None

    def intrinsics(self, camera: CameraModel) -> Tensor:
        """The checked intrinsics (3, 3) float64 px of this camera's rectified images (what a
        keyframe of it gets, before resizing); raises :class:`RequestError`."""
        camera.check()
        return torch.from_numpy(camera.rectified_K.copy())

    def wants(self, c2w: Tensor, camera: CameraModel, stamp: float) -> bool:
        """Whether a frame of ``camera`` at ``c2w`` (its optical frame's pose, (4, 4)) becomes
        a keyframe by the buffer's policy (cheap: call before decoding)."""
        return self.buffer.is_new_keyframe(pose_of_rectified(c2w, camera).float(), stamp)

    def add(self, rgb: Tensor, camera: CameraModel, c2w: Tensor, stamp: float, frame: str,
            depth: DepthFrame | None = None, labels: KeyframeLabels | None = None
            ) -> tuple[Keyframe | None, list[Keyframe]]:
        """Rectify, register, resize and add one frame (no policy check: see :meth:`wants`).

        Shape: ``rgb`` (3, H, W) in [0, 1] at the camera's size; ``c2w`` (4, 4) world <- the
        camera's optical frame. ``labels``: a segmenter's labels of the image (same size),
        rectified like it (nearest neighbour) and kept at the camera's resolution.
        Returns (keyframe, evicted keyframes)."""
        check_image_matches_info(rgb.shape[-1], rgb.shape[-2], camera.width, camera.height)
        if camera.needs_remap(self.camera_input):
            arr = np.ascontiguousarray(rgb.permute(1, 2, 0).numpy())
            rect = self.rectifier.rectify(arr, camera, self.camera_input)
            rgb = torch.from_numpy(np.ascontiguousarray(rect)).permute(2, 0, 1).clamp_(0, 1)
        K = self.intrinsics(camera)
        d = self._depth(depth, camera, K) if depth is not None else None
        if self._size is None:
            self._size = (self.width or rgb.shape[-1], self.height or rgb.shape[-2])
        rgb, Kf, d = resize_frame(rgb, K.float(), self._size[0], self._size[1], d)
        if labels is not None:
            labels = self._labels(labels, camera)
        return self.buffer.add(rgb, Kf, pose_of_rectified(c2w, camera).float(), stamp, frame,
                               d, force=True, labels=labels)

    def _labels(self, labels: KeyframeLabels, camera: CameraModel) -> KeyframeLabels:
        """The labels (and confidence) rectified like the colour image, nearest neighbour;
        pixels from outside the raw image are unknown (confidence 0)."""
        check_image_matches_info(labels.ids.shape[-1], labels.ids.shape[-2], camera.width,
                                 camera.height, "labels")
        if not camera.needs_remap(self.camera_input):
            return labels
        shifted = (labels.ids + 1).numpy().astype(np.float32)      # 0 = unknown = the border
        rect = self.rectifier.rectify(shifted, camera, self.camera_input, nearest=True)
        ids = torch.from_numpy(np.rint(rect).astype(np.int32) - 1)
        conf = labels.confidence
        if conf is not None:
            conf = torch.from_numpy(np.ascontiguousarray(self.rectifier.rectify(
                conf.numpy(), camera, self.camera_input, nearest=True)))
        return KeyframeLabels(ids, conf, labels.generation, labels.wide)

    def _depth(self, depth: DepthFrame, colour: CameraModel, K_colour: Tensor) -> Tensor:
        """The depth (H, W) m in the colour camera's rectified image."""
        mode = self.camera_input
        d = depth.depth.float()
        cam = depth.camera
        if cam is None:
            check_image_matches_info(d.shape[-1], d.shape[-2], colour.width, colour.height,
                                     "depth")
            return torch.from_numpy(np.ascontiguousarray(
                self.rectifier.rectify(d.numpy(), colour, mode, nearest=True)))
        check_image_matches_info(d.shape[-1], d.shape[-2], cam.width, cam.height, "depth")
        cam.check("depth camera_info")
        d = torch.from_numpy(np.ascontiguousarray(
            self.rectifier.rectify(d.numpy(), cam, mode, nearest=True)))
        K_depth = torch.from_numpy(cam.rectified_K.copy())
        same = (depth.colour_from_depth is None and (cam.width, cam.height)
                == (colour.width, colour.height) and torch.allclose(K_depth, K_colour)
                and np.allclose(cam.R, colour.R))
        if same:
            return d
        moved = depth.colour_from_depth
        moved = torch.eye(4, dtype=torch.float64) if moved is None else moved.double()
        colour_from_depth = _rotation4(colour.R) @ moved @ _rotation4(cam.R.T)
        return register_depth(d, K_depth, colour_from_depth, K_colour, colour.height,
                              colour.width)
