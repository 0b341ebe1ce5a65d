"""Pose input under robot conditions (node in this process, fake renderer, real rclpy):
frames that arrive before their TF wait in a queue instead of blocking a callback, and a bag
replayed in a loop (stamps jump back) resets the buffer and TF cache once."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

pytest.importorskip("rclpy")

from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from gsnerf_ros.ros import convert  # noqa: E402
from gsnerf_ros.ros.ros_libs import tf2_ros  # noqa: E402
from helpers.ros_nodes import InProcessNode, wait_until

K = torch.tensor([[20.0, 0, 7.5], [0, 20.0, 5.5], [0, 0, 1]])


class _Camera:
    """Publishes image + camera_info and the map -> cam TF at explicit stamps (seconds)."""

    def __init__(self, run: InProcessNode) -> None:
        self.pub_img = run.peer.create_publisher(Image, "/image", 10)
        self.pub_info = run.peer.create_publisher(CameraInfo, "/camera_info", 10)
        self.tf = tf2_ros.TransformBroadcaster(run.peer)
        wait_until(lambda: self.pub_img.get_subscription_count() and
                   self.pub_info.get_subscription_count(), 10, "the node's subscriptions")

    def image(self, t: float) -> None:
        hdr = Header(stamp=convert.sec_to_stamp(t), frame_id="cam")
        self.pub_img.publish(convert.array_to_image(np.zeros((12, 16, 3), np.uint8), "rgb8", hdr))
        self.pub_info.publish(convert.make_camera_info(K, 16, 12, hdr))

    def pose(self, t: float, x: float) -> None:
        c2w = torch.eye(4, dtype=torch.float64)
        c2w[0, 3] = x
        self.tf.sendTransform(convert.c2w_to_transform(c2w, "map", "cam", convert.sec_to_stamp(t)))


def test_frame_waits_for_late_tf_without_blocking() -> None:
    with InProcessNode(**{"frames.tf_timeout": 3.0, "keyframes.min_interval": 0.0}) as run:
        cam = _Camera(run)
        cam.image(1000.0)                                       # no TF yet
        wait_until(lambda: len(run.node.pending) == 1, 10, "the frame to wait for its TF")
        assert len(run.node.buffer) == 0
        cam.pose(999.9, 0.0)
        cam.pose(1000.1, 0.2)                                   # TF arrives after the image
        wait_until(lambda: len(run.node.buffer) == 1, 10, "the keyframe after its TF arrived")
        assert float(run.node.buffer.keyframes()[0].c2w[0, 3]) == pytest.approx(0.1, abs=1e-4)
        assert len(run.node.pending) == 0 and run.node.input_stats.errors == 0


def test_frame_without_tf_is_dropped_after_the_timeout_with_the_reason() -> None:
    with InProcessNode(**{"frames.tf_timeout": 0.3}) as run:
        cam = _Camera(run)
        cam.image(50.0)
        wait_until(lambda: run.node.input_stats.errors == 1, 10, "the frame to be dropped")
        assert len(run.node.pending) == 0 and len(run.node.buffer) == 0
        assert run.node.input_stats.last_error is not None
        assert "no TF map -> cam" in run.node.input_stats.last_error[1]


def test_bag_loop_resets_buffer_and_tf_cache_once() -> None:
    with InProcessNode(**{"frames.tf_timeout": 2.0, "keyframes.min_interval": 0.0,
                          "keyframes.min_translation": 0.1}) as run:
        cam = _Camera(run)
        for i in range(3):                                      # first pass: 3 keyframes
            t = 100.0 + i
            cam.pose(t - 0.05, 0.5 * i)
            cam.pose(t + 0.05, 0.5 * i)
            time.sleep(0.05)
            cam.image(t)
            wait_until(lambda: len(run.node.buffer) == i + 1, 10, f"keyframe {i}")
        for t in (30.0, 30.1, 30.2):                            # the bag starts again: 70 s back
            cam.pose(t - 0.05, 0.0)
            cam.pose(t + 0.05, 0.0)
            time.sleep(0.05)
            cam.image(t)
        wait_until(lambda: run.node.time_jump.jumps == 1, 10, "the time jump")
        assert run.node.buffer.stats.resets == 1
        cam.pose(30.95, 0.5)
        cam.pose(31.05, 0.5)
        time.sleep(0.05)
        cam.image(31.0)                                         # not an extrapolation any more
        wait_until(lambda: len(run.node.buffer) >= 1, 10, "a keyframe after the loop")
        assert all(k.stamp < 50 for k in run.node.buffer.keyframes())
