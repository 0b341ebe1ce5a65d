"""Frame ingest (ROS-free): the camera model (raw images undistorted and rectified with K, D, R,
P; rectified ones used as they are), depth registration to the colour camera, keyframe size.
Synthetic images whose right answer is known in closed form."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from gsnerf_ros.geometry import make_pose, register_depth
from gsnerf_ros.runtime.ingest import CameraModel, DepthFrame, FrameIngest, pose_of_rectified
from gsnerf_ros.runtime.keyframes import KeyframeBuffer, KeyframePolicy
from gsnerf_ros.runtime.requests import RequestError

H, W = 60, 80
K = np.array([[60.0, 0, 39.5], [0, 62.0, 29.5], [0, 0, 1]])
D = np.array([-0.2, 0.05, 0.001, -0.001, 0.0])
P3 = np.array([[55.0, 0, 41.0], [0, 55.0, 30.0], [0, 0, 1]])


def _rot_y(deg: float) -> np.ndarray:
    a = math.radians(deg)
    return np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])


def _camera(d: np.ndarray = D, R: np.ndarray | None = None, P: np.ndarray = P3,
            k: np.ndarray = K, size: tuple[int, int] = (W, H), frame: str = "cam") -> CameraModel:
    R = np.eye(3) if R is None else R
    p = np.concatenate([P, np.zeros((3, 1))], axis=1)
    return CameraModel.from_fields(size[0], size[1], k.reshape(-1), d, "plumb_bob", R.reshape(-1),
                                   p.reshape(-1), frame)


def _pattern(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A smooth texture of normalised rectified coordinates -> (..., 3) in [0, 1]."""
    f = 0.5 + 0.4 * np.sin(8 * x) * np.cos(7 * y)
    return np.stack([f, 0.5 * f, 1 - f], -1)


def _raw_image(cam: CameraModel) -> torch.Tensor:
    """The raw (distorted, unrectified) image of :func:`_pattern`: each raw pixel shows the
    pattern where its ray, turned into the rectified frame by R, points. Shape (3, H, W)."""
    uv = np.stack(np.meshgrid(np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64)),
                  -1).reshape(-1, 1, 2)
    xy = cv2.undistortPoints(uv, cam.K, cam.D).reshape(-1, 2)           # camera frame, z = 1
    ray = np.concatenate([xy, np.ones((len(xy), 1))], 1) @ cam.R.T      # rectified frame
    img = _pattern(ray[:, 0] / ray[:, 2], ray[:, 1] / ray[:, 2]).reshape(H, W, 3)
    return torch.from_numpy(img.astype(np.float32)).permute(2, 0, 1).contiguous()


def _expected_rectified() -> np.ndarray:
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    return _pattern((u - P3[0, 2]) / P3[0, 0], (v - P3[1, 2]) / P3[1, 1])


def _ingest(mode: str, width: int = 0, height: int = 0) -> FrameIngest:
    return FrameIngest(KeyframeBuffer(KeyframePolicy(capacity=8)), mode, width, height)


def test_raw_image_is_undistorted_and_rectified_with_K_D_R_and_P() -> None:
    cam = _camera(R=_rot_y(3.0))
    c2w = make_pose(torch.eye(3, dtype=torch.float64), torch.tensor([1.0, 2.0, 0.5],
                                                                    dtype=torch.float64))
    kf, _ = _ingest("raw").add(_raw_image(cam), cam, c2w, 1.0, "cam")
    assert kf is not None
    got = kf.image.permute(1, 2, 0).numpy()
    c = (slice(10, 50), slice(12, 68))
    err = np.abs(got[c] - _expected_rectified()[c])
    assert err.mean() < 2e-3 and err.max() < 2e-2, (err.mean(), err.max())
    assert torch.allclose(kf.K, torch.from_numpy(P3).float())        # P's intrinsics, not K
    # the rectified optical frame is turned by R from the camera's: x_cam = R^T x_rect
    assert torch.allclose(kf.c2w[:3, :3].double(), torch.from_numpy(_rot_y(3.0).T), atol=1e-6)
    assert torch.allclose(kf.c2w[:3, 3], torch.tensor([1.0, 2.0, 0.5]))
    # undistorting with K alone (the old node) leaves the image far off the right answer
    old = cv2.undistort(_raw_image(cam).permute(1, 2, 0).numpy(), K, D)
    assert np.abs(old[c] - _expected_rectified()[c]).mean() > 20 * err.mean()


def test_rectified_input_with_distortion_is_not_undistorted_again() -> None:
    cam = _camera()                                   # the camera's own camera_info: D != 0
    rect = torch.from_numpy(_expected_rectified().astype(np.float32)).permute(2, 0, 1).contiguous()
    kf, _ = _ingest("rectified").add(rect, cam, torch.eye(4, dtype=torch.float64), 0.0, "cam")
    assert kf is not None and torch.equal(kf.image, rect)
    assert torch.allclose(kf.K, torch.from_numpy(P3).float())
    # auto: D != 0 means raw, so the same image is undistorted (and changes)
    kf_auto, _ = _ingest("auto").add(rect, cam, torch.eye(4, dtype=torch.float64), 0.0, "cam")
    assert kf_auto is not None and not torch.allclose(kf_auto.image, rect, atol=0.05)
    # auto with D == 0: rectified, used as it is with P's intrinsics
    cam0 = _camera(d=np.zeros(5))
    kf0, _ = _ingest("auto").add(rect, cam0, torch.eye(4, dtype=torch.float64), 0.0, "cam")
    assert kf0 is not None and torch.equal(kf0.image, rect)
    assert torch.allclose(kf0.K, torch.from_numpy(P3).float())


def test_camera_model_defaults_and_checks() -> None:
    m = CameraModel.from_fields(W, H, K.reshape(-1), [], "", [0.0] * 9, [0.0] * 12)
    assert np.array_equal(m.R, np.eye(3)) and np.array_equal(m.rectified_K, K)
    assert not m.distorted and m.is_rectified("auto") and not m.needs_remap("raw")
    with pytest.raises(RequestError, match="not a rotation"):
        _camera(R=2 * np.eye(3)).check()
    with pytest.raises(RequestError, match="unsupported distortion model"):
        CameraModel.from_fields(W, H, K.reshape(-1), D, "weird", np.eye(3).reshape(-1),
                                [0.0] * 12).check()
    with pytest.raises(RequestError, match="focal lengths"):
        _camera(P=np.zeros((3, 3)) + np.diag([0.0, 0.0, 1.0])).check()
    with pytest.raises(ValueError, match="camera.input"):
        _ingest("maybe")


def test_pose_of_rectified_is_the_same_pose_without_rotation() -> None:
    c2w = torch.randn(4, 4, dtype=torch.float64)
    assert pose_of_rectified(c2w, _camera()) is c2w


# ------------------------------------------------------------------ depth registration
def _plane_depth(Kc: np.ndarray, n: np.ndarray, c: float, h: int, w: int) -> np.ndarray:
    """z-depth (h, w) of the plane n . X = c seen by a camera with intrinsics Kc at the origin."""
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    rays = np.stack([(u - Kc[0, 2]) / Kc[0, 0], (v - Kc[1, 2]) / Kc[1, 1], np.ones_like(u)], -1)
    return c / (rays @ n)


def test_registered_depth_of_a_tilted_plane_is_the_colour_cameras_view() -> None:
    n, c = np.array([0.2, -0.1, 1.0]), 2.0                      # the plane, in the colour frame
    Kd = np.array([[90.0, 0, 63.5], [0, 90.0, 47.5], [0, 0, 1]])  # depth: 128x96, other K
    Rcd, t = _rot_y(4.0), np.array([0.05, -0.01, 0.02])           # colour <- depth
    # the plane in the depth frame: n . (Rcd x + t) = c
    depth = _plane_depth(Kd, Rcd.T @ n, c - n @ t, 96, 128)
    T = torch.eye(4, dtype=torch.float64)
    T[:3, :3], T[:3, 3] = torch.from_numpy(Rcd), torch.from_numpy(t)
    got = register_depth(torch.from_numpy(depth).float(), torch.from_numpy(Kd), T,
                         torch.from_numpy(K), H, W).double().numpy()
    want = _plane_depth(K, n, c, H, W)
    valid = got > 0
    assert valid[5:-5, 5:-5].mean() > 0.97                        # the plane covers the view
    rel = np.abs(got[valid] - want[valid]) / want[valid]
    # a depth pixel lands on the nearest colour pixel centre: off by < 1 px of the plane's slope
    assert rel.max() < 5e-3, rel.max()
    # without the depth camera's transform the answer is wrong
    off = register_depth(torch.from_numpy(depth).float(), torch.from_numpy(Kd),
                         torch.eye(4, dtype=torch.float64), torch.from_numpy(K), H, W).numpy()
    both = valid & (off > 0)
    assert (np.abs(off[both] - want[both]) / want[both]).mean() > 5 * rel.mean()


def test_zbuffer_keeps_nearest_surface() -> None:
    """Depth camera: a near half-plane (z = 1 m, x < 0) in front of a far wall (z = 3 m); the
    colour camera sits 0.3 m to its right, so for colour rays with slope in [0.1, 0.3) both the
    near plane and the wall behind it land on one pixel: the near one must win."""
    Kc = np.array([[40.0, 0, 39.5], [0, 40.0, 29.5], [0, 0, 1]])
    tx = 0.3
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    slope = (u - Kc[0, 2]) / Kc[0, 0]
    depth = np.where(slope < 0, 1.0, 3.0)                         # depth camera = same K
    T = torch.eye(4, dtype=torch.float64)
    T[0, 3] = tx                                                  # colour x = depth x + tx
    got = register_depth(torch.from_numpy(depth).float(), torch.from_numpy(Kc), T,
                         torch.from_numpy(Kc), H, W).numpy()
    # colour pixel slope s: the near plane where x_d = s - tx < 0, the wall where 3 s - tx >= 0
    m = 1.5 / 40                                                  # 1.5 px from each boundary
    overlap = (slope > tx / 3 + m) & (slope < tx - m)
    assert overlap.sum() > 4 * H
    assert (got[overlap] > 0).mean() > 0.9
    assert np.all(got[overlap][got[overlap] > 0] == pytest.approx(1.0))
    wall = slope > tx + m
    assert wall.sum() > 4 * H and (got[wall] > 0).mean() > 0.9
    assert np.all(got[wall][got[wall] > 0] == pytest.approx(3.0))


def test_frame_ingest_registers_depth_from_its_own_camera() -> None:
    n, c = np.array([0.0, 0.0, 1.0]), 1.5                        # a wall 1.5 m ahead
    Kd = np.array([[90.0, 0, 63.5], [0, 90.0, 47.5], [0, 0, 1]])     # finer than the colour
    depth_cam = CameraModel.from_fields(128, 96, Kd.reshape(-1), np.zeros(5), "plumb_bob",
                                        np.eye(3).reshape(-1),
                                        np.concatenate([Kd, np.zeros((3, 1))], 1).reshape(-1),
                                        "depth")
    colour = _camera(d=np.zeros(5), P=K)
    moved = torch.eye(4, dtype=torch.float64)
    moved[0, 3] = 0.02                                            # colour <- depth: 2 cm
    d = torch.from_numpy(_plane_depth(Kd, n, c, 96, 128)).float()
    rgb = torch.rand(3, H, W)
    kf, _ = _ingest("auto", 40, 30).add(rgb, colour, torch.eye(4, dtype=torch.float64), 0.0,
                                        "cam", DepthFrame(d, depth_cam, moved))
    assert kf is not None and kf.depth is not None and kf.depth.shape == (30, 40)
    assert kf.image.shape == (3, 30, 40) and torch.allclose(kf.K[0, 0], torch.tensor(30.0))
    valid = kf.depth > 0
    assert valid[2:-2, 2:-2].float().mean() > 0.9
    assert torch.allclose(kf.depth[valid], torch.tensor(1.5))
    # without its own camera_info the depth must have the colour camera's size
    with pytest.raises(RequestError, match="depth is 128x96"):
        _ingest("auto").add(rgb, colour, torch.eye(4, dtype=torch.float64), 0.0, "cam",
                            DepthFrame(d))
