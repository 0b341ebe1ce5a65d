"""Image conversion of the node's topics (ROS-free): colour order, depth units, label and
float encodings, undistortion."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from gsnerf_ros.imaging import (
    colorize_labels, decode_raw, encode_raw, labels_to_array, to_depth_metres, to_rgb_tensor,
    undistort,
)


def test_image_conversion_colour_order_and_depth_units() -> None:
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[..., 0] = 255
    t = to_rgb_tensor(np.ascontiguousarray(rgb[..., ::-1]), "bgr8")
    assert torch.allclose(t[:, 0, 0], torch.tensor([1.0, 0, 0]))
    assert torch.allclose(to_rgb_tensor(np.full((2, 3), 128, np.uint8), "mono8")[:, 0, 0],
                          torch.full((3,), 128 / 255))
    d = to_depth_metres(np.array([[1500, 0]], np.uint16), "16UC1")
    assert d.tolist() == [[1.5, 0.0]]
    d = to_depth_metres(np.array([[2.0, np.nan, -1.0]], np.float32), "32FC1")
    assert d.tolist() == [[2.0, 0.0, 0.0]]
    h, w, step, data = encode_raw(np.ones((2, 3), np.float32), "32FC1")
    assert (h, w, step) == (2, 3, 12)
    assert decode_raw("32FC1", h, w, step, data).sum() == 6
    lab, enc = labels_to_array(torch.tensor([[0, 300]]), 400)
    assert enc == "mono16" and lab.dtype == np.uint16 and lab[0, 1] == 300
    col = colorize_labels(torch.tensor([[0, 1, 255]]), torch.tensor([[1, 2, 3], [4, 5, 6]]))
    assert col.tolist() == [[[1, 2, 3], [4, 5, 6], [0, 0, 0]]]


def test_undistort_inverts_radial_distortion() -> None:
    Kn = np.array([[60.0, 0, 39.5], [0, 60.0, 29.5], [0, 0, 1]])
    D = np.array([-0.2, 0.05, 0, 0, 0])
    v, u = np.mgrid[0:60, 0:80].astype(np.float64)
    img = (127 + 100 * np.sin(u / 5.0) * np.cos(v / 6.0)).astype(np.uint8)     # smooth texture
    assert undistort(img, Kn, np.zeros(5)) is img                       # zero D: untouched
    # distort an ideal grid: each distorted pixel samples the undistorted point it images
    uv = np.stack(np.meshgrid(np.arange(80.0), np.arange(60.0)), -1).reshape(-1, 1, 2)
    und = cv2.undistortPoints(uv, Kn, D, P=Kn).reshape(60, 80, 2).astype(np.float32)
    distorted = cv2.remap(img, und[..., 0], und[..., 1], cv2.INTER_LINEAR)
    restored = undistort(distorted, Kn, D)
    c = (slice(15, 45), slice(20, 60))
    assert np.abs(restored[c].astype(int) - img[c].astype(int)).mean() < \
        0.5 * np.abs(distorted[c].astype(int) - img[c].astype(int)).mean()
