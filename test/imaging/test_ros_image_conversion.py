"""Image conversion of the node's topics (ROS-free): colour order, depth units, label and
float encodings (the camera model and undistortion: test_runtime_ingest.py)."""

from __future__ import annotations

import numpy as np
import torch

from gsnerf_ros.imaging import (
    colorize_labels, decode_raw, encode_raw, labels_to_array, to_depth_metres, to_rgb_tensor,
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


