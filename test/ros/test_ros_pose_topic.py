"""The node in this process (a fake renderer): camera pose from a PoseStamped topic instead of TF,
optional 16UC1 depth synchronised with the image, bgr8 input, and keyframes built from them."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

pytest.importorskip("rclpy")

from geometry_msgs.msg import PoseStamped  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from gsnerf_ros.ros import convert  # noqa: E402
from helpers.ros_nodes import InProcessNode, wait_until


def test_pose_topic_depth_and_bgr_frames_build_keyframes() -> None:
    with InProcessNode(**{"topics.pose": "/camera_pose", "topics.depth": "depth",
                          "keyframes.min_translation": 0.1,
                          "keyframes.min_interval": 0.0}) as run:
        node, src = run.node, run.peer
        pub_pose = src.create_publisher(PoseStamped, "/camera_pose", qos_profile_sensor_data)
        pub_img = src.create_publisher(Image, "/image", qos_profile_sensor_data)
        pub_info = src.create_publisher(CameraInfo, "/camera_info", qos_profile_sensor_data)
        pub_depth = src.create_publisher(Image, "/depth", qos_profile_sensor_data)
        wait_until(lambda: all(p.get_subscription_count() for p in
                               (pub_pose, pub_img, pub_info, pub_depth)), 10, "subscriptions")
        K = torch.tensor([[20.0, 0, 7.5], [0, 20.0, 5.5], [0, 0, 1]])
        for k in range(4):
            stamp = src.get_clock().now().to_msg()
            hdr = Header(stamp=stamp, frame_id="cam")
            ps = PoseStamped(header=Header(stamp=stamp, frame_id="map"))
            c2w = torch.eye(4)
            c2w[0, 3] = 0.3 * k
            ps.pose = convert.c2w_to_pose(c2w)
            pub_pose.publish(ps)
            time.sleep(0.05)
            bgr = np.zeros((12, 16, 3), np.uint8)
            bgr[..., 0] = 255                                   # blue in BGR order
            pub_img.publish(convert.array_to_image(bgr, "bgr8", hdr))
            pub_info.publish(convert.make_camera_info(K, 16, 12, hdr))
            pub_depth.publish(convert.array_to_image(np.full((12, 16), 1500, np.uint16), "16UC1", hdr))
            time.sleep(0.1)
        wait_until(lambda: len(node.buffer) == 4, 10, "four keyframes")
        kfs = node.buffer.keyframes()
        assert [round(float(k.c2w[0, 3]), 3) for k in kfs] == [0.0, 0.3, 0.6, 0.9]
        assert torch.allclose(kfs[0].image[:, 0, 0], torch.tensor([0.0, 0.0, 1.0]))  # RGB blue
        assert kfs[0].depth is not None and float(kfs[0].depth[0, 0]) == pytest.approx(1.5)
        assert wait_until(lambda: node.buffer.num_encoded() == 4, 10, "encodings")
