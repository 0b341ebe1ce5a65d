"""Write a :class:`~gsnerf_ros.data.scene.Scene` as a ROS 2 bag (mcap or sqlite3) with
``rosbags``: images, camera info, optional depth / labels, and poses on ``/tf`` or a pose topic.
Tests and the ROS demo use it; :class:`~gsnerf_ros.data.rosbag.BagScene` reads such bags back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gsnerf_ros.data.bag_messages import (
    CAMERA_INFO, COMPRESSED_IMAGE, IMAGE, ODOMETRY, POSE_STAMPED, TF_MESSAGE,
    encode_compressed_image, encode_image, make_header,
)
from gsnerf_ros.data.scene import Scene
from gsnerf_ros.geometry import matrix_to_quat

__all__ = ["write_bag"]


def write_bag(scene: Scene, path: str | Path, storage: str = "mcap", rate_hz: float = 10.0,
              image_topic: str = "/camera/color/image_raw",
              camera_info_topic: str = "/camera/color/camera_info",
              depth_topic: str | None = "/camera/depth/image_raw",
              label_topic: str | None = None, pose_mode: str = "tf",
              pose_topic: str = "/camera/pose", world_frame: str = "map",
              base_frame: str = "base_link", camera_frame: str = "camera_color_optical_frame",
              compressed: bool = False, depth_encoding: str = "16UC1",
              start_time: float = 1_700_000_000.0) -> Path:
    """Record ``scene`` as a ROS 2 bag directory at ``path`` (must not exist).

    ``pose_mode``: ``"tf"`` (dynamic ``world -> base_frame`` on /tf plus a fixed
    ``base_frame -> camera_frame`` on /tf_static), ``"pose"`` (PoseStamped of the camera in
    ``world_frame``) or ``"odometry"`` (Odometry, same pose). ``storage``: ``"mcap"`` or
    ``"sqlite3"``. Depth as 16UC1 mm or 32FC1 m; labels mono8 (mono16 above 255 classes).
    """
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    if storage not in ("mcap", "sqlite3"):
        raise ValueError(f"storage must be 'mcap' or 'sqlite3', got {storage!r}")
    if pose_mode not in ("tf", "pose", "odometry"):
        raise ValueError(f"pose_mode must be tf, pose or odometry, got {pose_mode!r}")
    if depth_encoding not in ("16UC1", "32FC1"):
        raise ValueError(f"depth_encoding must be 16UC1 or 32FC1, got {depth_encoding!r}")
    ts = get_typestore(Stores.ROS2_HUMBLE)
    T_ = ts.types
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    # fixed base -> camera extrinsic: camera 10 cm forward, 20 cm up, optical axes
    base_cam = np.array([[0, 0, 1, 0.1], [-1, 0, 0, 0.0], [0, -1, 0, 0.2], [0, 0, 0, 1.0]])

    def tf_stamped(stamp, parent, child, T):
        q = matrix_to_quat(torch.from_numpy(T[:3, :3])).numpy()
        return T_["geometry_msgs/msg/TransformStamped"](
            header=make_header(ts, stamp, parent), child_frame_id=child,
            transform=T_["geometry_msgs/msg/Transform"](
                translation=T_["geometry_msgs/msg/Vector3"](x=T[0, 3], y=T[1, 3], z=T[2, 3]),
                rotation=T_["geometry_msgs/msg/Quaternion"](x=q[0], y=q[1], z=q[2], w=q[3])))

    def pose_msg(T):
        q = matrix_to_quat(torch.from_numpy(T[:3, :3])).numpy()
        return T_["geometry_msgs/msg/Pose"](
            position=T_["geometry_msgs/msg/Point"](x=T[0, 3], y=T[1, 3], z=T[2, 3]),
            orientation=T_["geometry_msgs/msg/Quaternion"](x=q[0], y=q[1], z=q[2], w=q[3]))

    path = Path(path)
    with Writer(path, version=9, storage_plugin=plugin) as w:
        img_type = COMPRESSED_IMAGE if compressed else IMAGE
        c_img = w.add_connection(image_topic, img_type, typestore=ts)
        c_info = w.add_connection(camera_info_topic, CAMERA_INFO, typestore=ts)
        c_depth = w.add_connection(depth_topic, IMAGE, typestore=ts) if depth_topic else None
        c_lab = w.add_connection(label_topic, IMAGE, typestore=ts) if label_topic else None
        if pose_mode == "tf":
            c_tf = w.add_connection("/tf", TF_MESSAGE, typestore=ts)
            c_static = w.add_connection("/tf_static", TF_MESSAGE, typestore=ts)
            static = T_[TF_MESSAGE](
                transforms=[tf_stamped(start_time, base_frame, camera_frame, base_cam)])
            w.write(c_static, int(start_time * 1e9), ts.serialize_cdr(static, TF_MESSAGE))
        else:
            ptype = POSE_STAMPED if pose_mode == "pose" else ODOMETRY
            c_pose = w.add_connection(pose_topic, ptype, typestore=ts)
        for i in range(len(scene)):
            f = scene.frame(i)
            stamp = start_time + i / rate_hz
            ns = int(round(stamp * 1e9))
            c2w = f.c2w.double().numpy()
            if pose_mode == "tf":
                T_wb = c2w @ np.linalg.inv(base_cam)
                msg = T_[TF_MESSAGE](transforms=[tf_stamped(stamp, world_frame, base_frame, T_wb)])
                w.write(c_tf, ns, ts.serialize_cdr(msg, TF_MESSAGE))
            elif pose_mode == "pose":
                msg = T_[POSE_STAMPED](header=make_header(ts, stamp, world_frame),
                                       pose=pose_msg(c2w))
                w.write(c_pose, ns, ts.serialize_cdr(msg, POSE_STAMPED))
            else:
                cov = np.zeros(36, dtype=np.float64)
                msg = T_[ODOMETRY](
                    header=make_header(ts, stamp, world_frame), child_frame_id=camera_frame,
                    pose=T_["geometry_msgs/msg/PoseWithCovariance"](pose=pose_msg(c2w),
                                                                   covariance=cov),
                    twist=T_["geometry_msgs/msg/TwistWithCovariance"](
                        twist=T_["geometry_msgs/msg/Twist"](
                            linear=T_["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=0.0),
                            angular=T_["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=0.0)),
                        covariance=cov))
                w.write(c_pose, ns, ts.serialize_cdr(msg, ODOMETRY))
            rgb = (f.image.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
            if compressed:
                msg = encode_compressed_image(ts, rgb, "rgb8", stamp, camera_frame, "png")
            else:
                msg = encode_image(ts, rgb, "rgb8", stamp, camera_frame)
            w.write(c_img, ns + 1000, ts.serialize_cdr(msg, img_type))
            K = f.K.double().numpy()
            info = T_[CAMERA_INFO](
                header=make_header(ts, stamp, camera_frame), height=f.height, width=f.width,
                distortion_model="plumb_bob", d=np.zeros(5), k=K.reshape(9),
                r=np.eye(3).reshape(9),
                p=np.concatenate([K, np.zeros((3, 1))], 1).reshape(12),
                binning_x=0, binning_y=0,
                roi=T_["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0,
                                                          width=0, do_rectify=False))
            w.write(c_info, ns + 1000, ts.serialize_cdr(info, CAMERA_INFO))
            if c_depth is not None and f.depth is not None:
                d = f.depth.numpy()
                arr = (np.round(d * 1000).clip(0, 65535).astype(np.uint16)
                       if depth_encoding == "16UC1" else d.astype(np.float32))
                w.write(c_depth, ns + 2000, ts.serialize_cdr(
                    encode_image(ts, arr, depth_encoding,
                                 stamp + 0.002, camera_frame), IMAGE))
            if c_lab is not None and f.labels is not None:
                lab = f.labels.numpy()
                enc = "mono8" if lab.max() <= 255 else "mono16"
                arr = lab.astype(np.uint8 if enc == "mono8" else np.uint16)
                w.write(c_lab, ns + 3000, ts.serialize_cdr(
                    encode_image(ts, arr, enc, stamp, camera_frame), IMAGE))
    return path
