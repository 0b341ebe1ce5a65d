"""ROS messages <-> the plain tensors of the engine (poses, cameras, images, markers)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from builtin_interfaces.msg import Time as TimeMsg
from geometry_msgs.msg import Point, Pose, TransformStamped
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import ColorRGBA, Header
from torch import Tensor
from vision_msgs.msg import LabelInfo, VisionClass
from visualization_msgs.msg import Marker, MarkerArray

from gsnerf_ros.geometry import make_pose, matrix_to_quat, quat_to_matrix
from gsnerf_ros.imaging import colorize_labels, encode_raw, labels_to_array
from gsnerf_ros.runtime.engine import RenderOutput
from gsnerf_ros.runtime.ingest import CameraModel
from gsnerf_ros.runtime.keyframes import Keyframe
from gsnerf_ros.runtime.requests import pose_from_components

__all__ = [
    "pose_to_c2w", "c2w_to_pose", "transform_to_c2w", "c2w_to_transform", "camera_info_K",
    "make_camera_info", "array_to_image", "output_to_images", "frustum_markers", "stamp_to_sec",
    "sec_to_stamp", "label_info", "camera_model",
]


def stamp_to_sec(stamp: TimeMsg) -> float:
    return float(stamp.sec) + 1e-9 * float(stamp.nanosec)


def sec_to_stamp(t: float) -> TimeMsg:
    ns = int(round(t * 1e9))
    return TimeMsg(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def pose_to_c2w(pose: Pose, what: str = "pose") -> Tensor:
    """geometry_msgs/Pose -> c2w [4,4] float64; raises RequestError on NaN or non-unit quaternion."""
    p, q = pose.position, pose.orientation
    return pose_from_components((p.x, p.y, p.z), (q.x, q.y, q.z, q.w), what)


def c2w_to_pose(c2w: Tensor) -> Pose:
    """c2w [4,4] -> geometry_msgs/Pose."""
    c2w = c2w.double().cpu()
    q = matrix_to_quat(c2w[:3, :3])
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in c2w[:3, 3])
    (pose.orientation.x, pose.orientation.y, pose.orientation.z,
     pose.orientation.w) = (float(v) for v in q)
    return pose


def transform_to_c2w(t: TransformStamped) -> Tensor:
    """TransformStamped (pose of child in parent) -> [4,4] float64 parent <- child."""
    tr, ro = t.transform.translation, t.transform.rotation
    R = quat_to_matrix(torch.tensor([ro.x, ro.y, ro.z, ro.w], dtype=torch.float64))
    return make_pose(R, torch.tensor([tr.x, tr.y, tr.z], dtype=torch.float64))


def c2w_to_transform(c2w: Tensor, parent: str, child: str, stamp: TimeMsg) -> TransformStamped:
    """[4,4] parent <- child -> TransformStamped."""
    pose = c2w_to_pose(c2w)
    t = TransformStamped()
    t.header.frame_id, t.header.stamp, t.child_frame_id = parent, stamp, child
    t.transform.translation.x = pose.position.x
    t.transform.translation.y = pose.position.y
    t.transform.translation.z = pose.position.z
    t.transform.rotation = pose.orientation
    return t


def camera_info_K(info: CameraInfo) -> Tensor:
    """CameraInfo.k -> K [3,3] float64."""
    return torch.tensor(np.asarray(info.k, dtype=np.float64).reshape(3, 3))


def make_camera_info(K: Tensor, width: int, height: int, header: Header) -> CameraInfo:
    """A pinhole, distortion-free CameraInfo for ``K`` [3,3] at ``width`` x ``height``."""
    info = CameraInfo()
    info.header = header
    info.width, info.height = int(width), int(height)
    info.distortion_model = "plumb_bob"
    info.d = [0.0] * 5
    k = K.double().cpu().numpy()
    info.k = [float(v) for v in k.reshape(-1)]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [float(k[0, 0]), float(k[0, 1]), float(k[0, 2]), 0.0,
              float(k[1, 0]), float(k[1, 1]), float(k[1, 2]), 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


def make_header(frame_id: str, t: float = 0.0) -> Header:
    """A std_msgs/Header for ``frame_id`` at time ``t`` (seconds)."""
    return Header(frame_id=frame_id, stamp=sec_to_stamp(t))


def array_to_image(array: np.ndarray, encoding: str, header: Header) -> Image:
    """Array -> sensor_msgs/Image (no row padding, little-endian)."""
    h, w, step, data = encode_raw(array, encoding)
    msg = Image()
    msg.header = header
    msg.height, msg.width, msg.step, msg.encoding, msg.is_bigendian = h, w, step, encoding, 0
    msg.data = data
    return msg


def output_to_images(out: RenderOutput, header: Header, palette: Tensor,
                     num_classes: int) -> dict[str, Image]:
    """A render -> ``rgb`` (rgb8), ``semantic`` (mono8/mono16), ``semantic_color`` (rgb8),
    ``depth`` (32FC1 m, NaN where invalid as REP 118 asks) and ``confidence`` (32FC1) images
    sharing ``header``."""
    rgb = (out.rgb.detach().float().cpu().clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).numpy()
    lab, lab_enc = labels_to_array(out.labels, num_classes)
    depth = out.depth.detach().float().cpu().numpy().astype(np.float32)
    depth[~np.isfinite(depth) | (depth <= 0)] = np.nan          # REP 118: NaN = no return
    conf = out.confidence.detach().float().cpu().clamp(0, 1).numpy().astype(np.float32)
    return {
        "rgb": array_to_image(rgb, "rgb8", header),
        "semantic": array_to_image(lab, lab_enc, header),
        "semantic_color": array_to_image(colorize_labels(out.labels, palette), "rgb8", header),
        "depth": array_to_image(depth, "32FC1", header),
        "confidence": array_to_image(conf, "32FC1", header),
    }


def label_info(class_names: Sequence[str], header: Header, threshold: float = 0.0) -> LabelInfo:
    """vision_msgs/LabelInfo: class id (the value of a ``semantic`` pixel) -> class name."""
    return LabelInfo(header=header, threshold=float(threshold), class_map=[
        VisionClass(class_id=i, class_name=str(n)) for i, n in enumerate(class_names)])


def frustum_markers(keyframes: Sequence[Keyframe], frame_id: str, stamp: TimeMsg,
                    scale: float, ns: str = "gsnerf_keyframes") -> MarkerArray:
    """One LINE_LIST camera frustum per keyframe (depth ``scale`` m), green when encoded and
    orange while waiting; a DELETEALL first so evicted keyframes disappear."""
    arr = MarkerArray()
    clear = Marker()
    clear.header.frame_id, clear.header.stamp, clear.ns = frame_id, stamp, ns
    clear.action = Marker.DELETEALL
    arr.markers.append(clear)
    for kf in keyframes:
        m = Marker()
        m.header.frame_id, m.header.stamp, m.ns, m.id = frame_id, stamp, ns, int(kf.id)
        m.type, m.action = Marker.LINE_LIST, Marker.ADD
        m.pose.orientation.w = 1.0
        m.scale.x = 0.01
        m.color = (ColorRGBA(r=0.1, g=0.9, b=0.2, a=1.0) if kf.encoded
                   else ColorRGBA(r=1.0, g=0.6, b=0.0, a=1.0))
        K = kf.K.double().cpu()
        W, H = kf.width, kf.height
        corners_px = torch.tensor([[0, 0], [W - 1, 0], [W - 1, H - 1], [0, H - 1]],
                                  dtype=torch.float64)
        x = (corners_px[:, 0] - K[0, 2]) / K[0, 0] * scale
        y = (corners_px[:, 1] - K[1, 2]) / K[1, 1] * scale
        cam = torch.stack([x, y, torch.full_like(x, scale)], -1)
        c2w = kf.c2w.double().cpu()
        world = cam @ c2w[:3, :3].T + c2w[:3, 3]
        o = c2w[:3, 3]
        pts: list[Any] = []
        for i in range(4):
            pts += [o, world[i], world[i], world[(i + 1) % 4]]
        m.points = [Point(x=float(p[0]), y=float(p[1]), z=float(p[2])) for p in pts]
        arr.markers.append(m)
    return arr


def camera_model(info: CameraInfo, frame: str = "") -> CameraModel:
    """CameraInfo -> :class:`~gsnerf_ros.runtime.ingest.CameraModel` (``frame``: its optical
    frame, default the info's header frame_id)."""
    return CameraModel.from_fields(info.width, info.height, info.k, info.d, info.distortion_model,
                                   info.r, info.p, frame or info.header.frame_id)
