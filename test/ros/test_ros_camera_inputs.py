"""The node's camera inputs over real rclpy (node in this process, fake renderer): topic names
resolved before the image_transport suffix (remapping works for raw and compressed), the camera
model (a rectified image with D != 0 is not undistorted again; P's intrinsics), and a depth
camera of its own registered to the colour camera through TF."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pytest
import torch

pytest.importorskip("rclpy")

from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from gsnerf_ros.ros import convert  # noqa: E402
from gsnerf_ros.ros.ros_libs import tf2_ros  # noqa: E402
from helpers.ros_nodes import InProcessNode, wait_until

H, W = 12, 16
K = torch.tensor([[20.0, 0, 7.5], [0, 20.0, 5.5], [0, 0, 1]], dtype=torch.float64)
FAST = {"frames.tf_timeout": 3.0, "keyframes.min_interval": 0.0}


def _header(t: float, frame: str = "cam") -> Header:
    return Header(stamp=convert.sec_to_stamp(t), frame_id=frame)


def _pose(tf: Any, t: float, x: float = 0.0, parent: str = "map", child: str = "cam",
          z: float = 0.0) -> None:
    c2w = torch.eye(4, dtype=torch.float64)
    c2w[0, 3], c2w[2, 3] = x, z
    for dt in (-0.05, 0.05):
        tf.sendTransform(convert.c2w_to_transform(c2w, parent, child,
                                                  convert.sec_to_stamp(t + dt)))


def _wait_subscribed(*pubs: Any) -> None:
    wait_until(lambda: all(p.get_subscription_count() for p in pubs), 10,
               "the node's subscriptions")


@pytest.mark.parametrize("transport", ["raw", "compressed"])
def test_remapped_image_topic_is_used_for_raw_and_compressed(transport: str) -> None:
    remap = {"cli_args": ["--ros-args", "-r", "image:=/camera/color/image_raw"]}
    with InProcessNode(node_kwargs=remap, **FAST, **{"topics.image_transport": transport}) as run:
        node, peer = run.node, run.peer
        if transport == "compressed":
            topic, cls = "/camera/color/image_raw/compressed", CompressedImage
        else:
            topic, cls = "/camera/color/image_raw", Image
        pub_img = peer.create_publisher(cls, topic, 10)
        pub_info = peer.create_publisher(CameraInfo, "/camera_info", 10)
        _wait_subscribed(pub_img, pub_info)
        # nothing listens on the unremapped name with the suffix
        assert node.count_subscribers("/image/compressed") == 0
        assert node.count_subscribers("/image") == 0
        tf = tf2_ros.TransformBroadcaster(peer)
        _pose(tf, 10.0)
        rgb = np.zeros((H, W, 3), np.uint8)
        rgb[..., 1] = 200
        if transport == "compressed":
            ok, png = cv2.imencode(".png", rgb[..., ::-1])
            assert ok
            msg = CompressedImage(header=_header(10.0), format="png", data=png.tobytes())
        else:
            msg = convert.array_to_image(rgb, "rgb8", _header(10.0))
        pub_img.publish(msg)
        pub_info.publish(convert.make_camera_info(K, W, H, _header(10.0)))
        wait_until(lambda: len(node.buffer) == 1, 10, f"a keyframe from the remapped {transport} "
                   "image")
        kf = node.buffer.keyframes()[0]
        assert torch.allclose(kf.image[:, 0, 0], torch.tensor([0.0, 200 / 255, 0.0]))
        assert node.input_problem() is None


def _distorted_info(t: float) -> CameraInfo:
    """The camera's own CameraInfo: D != 0 and P's intrinsics differ from K."""
    info = convert.make_camera_info(K, W, H, _header(t))
    info.d = [-0.3, 0.1, 0.0, 0.0, 0.0]
    info.p = [18.0, 0.0, 8.0, 0.0, 0.0, 18.0, 6.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


@pytest.mark.parametrize("camera_input", ["rectified", "auto"])
def test_rectified_image_with_distortion_is_not_undistorted_again(camera_input: str) -> None:
    with InProcessNode(**FAST, **{"camera.input": camera_input}) as run:
        node, peer = run.node, run.peer
        pub_img = peer.create_publisher(Image, "/image", 10)
        pub_info = peer.create_publisher(CameraInfo, "/camera_info", 10)
        _wait_subscribed(pub_img, pub_info)
        tf = tf2_ros.TransformBroadcaster(peer)
        _pose(tf, 5.0)
        rng = np.random.default_rng(0)
        rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        pub_img.publish(convert.array_to_image(rgb, "rgb8", _header(5.0)))
        pub_info.publish(_distorted_info(5.0))
        wait_until(lambda: len(node.buffer) == 1, 10, "the keyframe")
        kf = node.buffer.keyframes()[0]
        given = torch.from_numpy(rgb).permute(2, 0, 1).float() / 255
        P3 = torch.tensor([[18.0, 0, 8.0], [0, 18.0, 6.0], [0, 0, 1]])
        assert torch.allclose(kf.K, P3)                             # P's intrinsics either way
        assert torch.allclose(node._latest_cam.K.float(), P3)       # and for zero-K requests
        if camera_input == "rectified":
            assert torch.equal(kf.image, given)                     # used as it is
        else:                                                       # auto, D != 0: raw
            assert not torch.allclose(kf.image, given, atol=0.05)


def test_depth_with_its_own_camera_info_is_registered_through_tf() -> None:
    """A depth camera 0.1 m behind the colour camera (TF cam -> depth_cam) sees a wall at
    1.5 m: the colour camera sees it at 1.4 m."""
    params = {**FAST, "topics.depth": "depth", "topics.depth_camera_info": "depth_info"}
    with InProcessNode(**params) as run:
        node, peer = run.node, run.peer
        pubs = {n: peer.create_publisher(c, f"/{n}", 10) for n, c in
                (("image", Image), ("camera_info", CameraInfo), ("depth", Image),
                 ("depth_info", CameraInfo))}
        _wait_subscribed(*pubs.values())
        tf = tf2_ros.TransformBroadcaster(peer)
        _pose(tf, 7.0)
        _pose(tf, 7.0, parent="cam", child="depth_cam", z=-0.1)
        Kd = torch.tensor([[40.0, 0, 15.5], [0, 40.0, 11.5], [0, 0, 1]], dtype=torch.float64)
        pubs["image"].publish(convert.array_to_image(np.zeros((H, W, 3), np.uint8), "rgb8",
                                                     _header(7.0)))
        pubs["camera_info"].publish(convert.make_camera_info(K, W, H, _header(7.0)))
        pubs["depth"].publish(convert.array_to_image(np.full((24, 32), 1500, np.uint16), "16UC1",
                                                     _header(7.0, "depth_cam")))
        pubs["depth_info"].publish(convert.make_camera_info(Kd, 32, 24,
                                                            _header(7.0, "depth_cam")))
        wait_until(lambda: len(node.buffer) == 1, 10, "the keyframe with registered depth")
        d = node.buffer.keyframes()[0].depth
        assert d is not None and d.shape == (H, W)
        valid = d > 0
        assert valid.float().mean() > 0.9
        assert torch.allclose(d[valid], torch.tensor(1.4), atol=1e-5)
