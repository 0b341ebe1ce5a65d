"""A robot's own recording, written with ``rosbags``' writer and type store only (not the
project's ``data.bag_writer``), in the layout a RealSense driver and robot_state_publisher
record (issue 14):

- ``/camera/color/image_raw``: ``sensor_msgs/Image`` **bgr8**, frame
  ``camera_color_optical_frame`` (``image_mode="raw"``), and/or
  ``/camera/color/image_raw/compressed``: JPEG ``sensor_msgs/CompressedImage`` as
  image_transport writes it (``"compressed"``; ``"both"`` writes the two);
- ``/camera/color/camera_info``;
- ``/tf``: ``odom -> base_link`` at every image stamp (and half-way between them);
- ``/tf_static``: two **separate** messages, ``base_link -> camera_link`` (1.2 m up) and
  ``camera_link -> camera_color_optical_frame`` (the optical rotation);
- no ``map`` frame.

``write_robot_bag(path, images, K, c2w)`` takes the ground truth: RGB images, intrinsics, and the
camera optical frame's pose in ``odom`` per frame; tests compare what the readers return with it.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

IMAGE_TOPIC = "/camera/color/image_raw"
COMPRESSED_TOPIC = "/camera/color/image_raw/compressed"
INFO_TOPIC = "/camera/color/camera_info"
OPTICAL_FRAME = "camera_color_optical_frame"
WORLD = "odom"

BASE_TO_CAMERA_LINK = np.array([[1.0, 0, 0, 0.05], [0, 1, 0, 0.0], [0, 0, 1, 1.2], [0, 0, 0, 1]])
"""Pose of camera_link in base_link: 5 cm forward, 1.2 m up."""
CAMERA_LINK_TO_OPTICAL = np.array([[0.0, 0, 1, 0], [-1, 0, 0, 0], [0, -1, 0, 0], [0, 0, 0, 1]])
"""Pose of the optical frame (x right, y down, z forward) in camera_link (x forward, z up)."""


def _quat_xyzw(R: np.ndarray) -> np.ndarray:
    """Rotation matrix -> unit quaternion (x, y, z, w), via cv2 (independent of the project)."""
    rvec, _ = cv2.Rodrigues(np.ascontiguousarray(R, dtype=np.float64))
    angle = float(np.linalg.norm(rvec))
    axis = rvec[:, 0] / angle if angle > 1e-12 else np.array([1.0, 0, 0])
    return np.concatenate([axis * np.sin(angle / 2), [np.cos(angle / 2)]])


def write_robot_bag(path: str | Path, images: np.ndarray, K: np.ndarray, c2w: np.ndarray,
                    storage: str = "mcap", image_mode: str = "raw", rate_hz: float = 10.0,
                    start: float = 1_700_000_000.25, jpeg_quality: int = 95,
                    camera_static: bool = True) -> Path:
    """Write the bag. ``images`` uint8 [N,H,W,3] RGB; ``K`` [3,3] px; ``c2w`` [N,4,4] pose of
    the optical frame in ``odom`` (m). Image ``i`` is stamped ``start + i / rate_hz``.
    ``camera_static=False`` leaves out the ``camera_link -> optical frame`` static transform
    (a driver that never published it: the camera has no TF)."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    assert image_mode in ("raw", "compressed", "both")
    ts = get_typestore(Stores.ROS2_HUMBLE)
    T = ts.types
    Time, Header = T["builtin_interfaces/msg/Time"], T["std_msgs/msg/Header"]
    TFMessage = "tf2_msgs/msg/TFMessage"

    def header(ns: int, frame: str):
        return Header(stamp=Time(sec=ns // 10**9, nanosec=ns % 10**9), frame_id=frame)

    def transform(ns: int, parent: str, child: str, M: np.ndarray):
        q = _quat_xyzw(M[:3, :3])
        return T["geometry_msgs/msg/TransformStamped"](
            header=header(ns, parent), child_frame_id=child,
            transform=T["geometry_msgs/msg/Transform"](
                translation=T["geometry_msgs/msg/Vector3"](x=M[0, 3], y=M[1, 3], z=M[2, 3]),
                rotation=T["geometry_msgs/msg/Quaternion"](x=q[0], y=q[1], z=q[2], w=q[3])))

    def tf_msg(*transforms):
        return ts.serialize_cdr(T[TFMessage](transforms=list(transforms)), TFMessage)

    base_to_opt = BASE_TO_CAMERA_LINK @ CAMERA_LINK_TO_OPTICAL
    n, H, W = images.shape[:3]
    t0 = int(round(start * 1e9))
    step = int(round(1e9 / rate_hz))
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    path = Path(path)
    with Writer(path, version=9, storage_plugin=plugin) as w:
        c_static = w.add_connection("/tf_static", TFMessage, typestore=ts)
        c_tf = w.add_connection("/tf", TFMessage, typestore=ts)
        c_info = w.add_connection(INFO_TOPIC, "sensor_msgs/msg/CameraInfo", typestore=ts)
        c_raw = (w.add_connection(IMAGE_TOPIC, "sensor_msgs/msg/Image", typestore=ts)
                 if image_mode in ("raw", "both") else None)
        c_jpg = (w.add_connection(COMPRESSED_TOPIC, "sensor_msgs/msg/CompressedImage",
                                  typestore=ts) if image_mode in ("compressed", "both") else None)
        # robot_state_publisher and the camera driver each latch their own /tf_static message
        w.write(c_static, t0 - step, tf_msg(transform(t0 - step, "base_link", "camera_link",
                                                      BASE_TO_CAMERA_LINK)))
        if camera_static:
            w.write(c_static, t0 - step + 1000, tf_msg(transform(
                t0 - step, "camera_link", OPTICAL_FRAME, CAMERA_LINK_TO_OPTICAL)))
        base_poses = [c2w[i] @ np.linalg.inv(base_to_opt) for i in range(n)]
        for i in range(n):
            ns = t0 + i * step
            w.write(c_tf, ns, tf_msg(transform(ns, WORLD, "base_link", base_poses[i])))
            if i + 1 < n:  # a pose half-way (odometry runs faster than the camera)
                mid = 0.5 * (base_poses[i] + base_poses[i + 1])
                u, _, vt = np.linalg.svd(mid[:3, :3])
                mid[:3, :3] = u @ vt
                w.write(c_tf, ns + step // 2, tf_msg(transform(ns + step // 2, WORLD,
                                                               "base_link", mid)))
            bgr = np.ascontiguousarray(images[i][..., ::-1])
            if c_raw is not None:
                msg = T["sensor_msgs/msg/Image"](
                    header=header(ns, OPTICAL_FRAME), height=H, width=W, encoding="bgr8",
                    is_bigendian=0, step=W * 3, data=bgr.reshape(-1).copy())
                w.write(c_raw, ns + 2000, ts.serialize_cdr(msg, "sensor_msgs/msg/Image"))
            if c_jpg is not None:
                ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
                assert ok
                msg = T["sensor_msgs/msg/CompressedImage"](
                    header=header(ns, OPTICAL_FRAME), format="rgb8; jpeg compressed bgr8",
                    data=np.frombuffer(buf.tobytes(), dtype=np.uint8))
                w.write(c_jpg, ns + 3000,
                        ts.serialize_cdr(msg, "sensor_msgs/msg/CompressedImage"))
            info = T["sensor_msgs/msg/CameraInfo"](
                header=header(ns, OPTICAL_FRAME), height=H, width=W,
                distortion_model="plumb_bob", d=np.zeros(5), k=K.reshape(9).astype(np.float64),
                r=np.eye(3).reshape(9),
                p=np.concatenate([K, np.zeros((3, 1))], 1).reshape(12).astype(np.float64),
                binning_x=0, binning_y=0,
                roi=T["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0,
                                                         width=0, do_rectify=False))
            w.write(c_info, ns + 1000, ts.serialize_cdr(info, "sensor_msgs/msg/CameraInfo"))
    return path


def room_ground_truth(root: str | Path, frames: int, height: int, width: int,
                      seed: int = 5) -> dict:
    """Ground truth from one small procedural room written under ``root``: ``images`` RGB uint8
    [N,H,W,3], ``K`` [3,3] px, ``c2w`` [N,4,4] optical-frame poses (m), exactly orthonormal."""
    from gsnerf_ros.data.procedural.cli import main as synth
    from gsnerf_ros.data.replica import ReplicaScene, find_scene_dirs

    synth([str(root), "--split", "train", "--scenes", "1", "--frames", str(frames), "--height",
           str(height), "--width", str(width), "--seed", str(seed)])
    s = ReplicaScene(find_scene_dirs(root)[0])
    imgs = np.stack([(s.frame(i).image.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
                     for i in range(len(s))])
    c2w = s.poses().double().numpy()
    u, _, vt = np.linalg.svd(c2w[:, :3, :3])
    c2w[:, :3, :3] = u @ vt  # the float32 poses made exactly orthonormal: the truth
    return {"images": imgs, "K": s.intrinsics()[0].double().numpy(), "c2w": c2w}
