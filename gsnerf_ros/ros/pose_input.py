"""Camera poses for incoming images: from TF, or from a PoseStamped/Odometry topic.

With ``topics.pose`` empty the pose of an image is the TF ``frames.world`` -> image optical
frame at the image stamp. With ``topics.pose`` set, the pose nearest the stamp (within
``sync.slop``) is taken from the received stream, composed with the TF ``frames.pose_body`` ->
optical frame when the stream describes another body frame. :meth:`CameraPoseSource.camera_pose`
never waits: a missing pose raises at once and the node retries the frame later
(:class:`~gsnerf_ros.runtime.pending_frames.PendingFrames`). :func:`input_qos` is the QoS of the
camera and pose subscriptions (``qos.*`` parameters).
"""

from __future__ import annotations

import collections
import threading
from typing import Any, Callable

import torch
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry
from rclpy.duration import Duration
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.time import Time

from gsnerf_ros.ros import convert
from gsnerf_ros.runtime.params import NodeParams
from gsnerf_ros.runtime.requests import RequestError
from gsnerf_ros.ros.ros_libs import tf2_ros

__all__ = ["CameraPoseSource", "pose_message_type", "input_qos"]

_NO_WAIT = Duration(seconds=0)


def input_qos(params: NodeParams) -> QoSProfile:
    """QoS of the image / camera_info / depth / pose subscriptions (``qos.input_*``)."""
    rel = (ReliabilityPolicy.RELIABLE if params.qos_input_reliability == "reliable"
           else ReliabilityPolicy.BEST_EFFORT)
    return QoSProfile(depth=params.qos_input_depth, history=HistoryPolicy.KEEP_LAST,
                      reliability=rel)


def pose_message_type(params: NodeParams) -> type:
    """The message class of ``topics.pose``: Odometry or PoseStamped (``topics.pose_type``)."""
    return Odometry if params.topics_pose_type == "odometry" else PoseStamped


class CameraPoseSource:
    """c2w poses in the world frame from ``tf_buffer`` and, when configured, the pose topic.

    ``on_error(key, text)`` is told of pose messages that cannot be used.
    """

    def __init__(self, tf_buffer: Any, params: NodeParams,
                 on_error: Callable[[str, str], None]) -> None:
        self.tf_buffer = tf_buffer
        self.p = params
        self._on_error = on_error
        self._poses: collections.deque[tuple[int, torch.Tensor]] = collections.deque(maxlen=400)
        self._pose_lock = threading.Lock()

    def on_pose(self, msg: Any) -> None:
        """Subscription callback of ``topics.pose`` (PoseStamped or Odometry)."""
        pose = msg.pose.pose if isinstance(msg, Odometry) else msg.pose
        try:
            c2w = convert.pose_to_c2w(pose, "pose topic")
        except RequestError as exc:
            self._on_error("pose", str(exc))
            return
        ns = Time.from_msg(msg.header.stamp).nanoseconds
        with self._pose_lock:
            self._poses.append((ns, c2w))

    def clear(self) -> None:
        """Forget the received poses (a time jump)."""
        with self._pose_lock:
            self._poses.clear()

    def camera_pose(self, frame: str, stamp: Any) -> torch.Tensor:
        """c2w [4,4] float64 of ``frame`` in the world at ``stamp``; RequestError at once when
        it is not available (yet)."""
        p = self.p
        t = Time.from_msg(stamp)
        timeout = _NO_WAIT
        if p.topics_pose:
            with self._pose_lock:
                poses = list(self._poses)
            if not poses:
                raise RequestError(f"no pose received on '{p.topics_pose}' yet; publish the camera "
                                   "pose or clear topics.pose to use TF")
            ns, c2w = min(poses, key=lambda x: abs(x[0] - t.nanoseconds))
            if abs(ns - t.nanoseconds) > p.sync_slop * 1e9:
                raise RequestError(f"nearest pose on '{p.topics_pose}' is "
                                   f"{abs(ns - t.nanoseconds) * 1e-9:.3f} s from the image stamp "
                                   f"(slop {p.sync_slop} s); the pose stream is stale or late")
            if p.frames_pose_body and p.frames_pose_body != frame:
                c2w = c2w @ self.lookup(p.frames_pose_body, frame, Time(), timeout)
            return c2w
        return self.lookup(p.frames_world, frame, t, timeout)

    def lookup(self, target: str, source: str, t: Time, timeout: Duration) -> torch.Tensor:
        """c2w of ``source`` in ``target`` from TF at ``t``; RequestError when unavailable."""
        try:
            tf = self.tf_buffer.lookup_transform(target, source, t, timeout=timeout)
        except tf2_ros.TransformException as exc:
            raise RequestError(f"no TF {target} -> {source} at t={t.nanoseconds * 1e-9:.3f}: "
                               f"{exc}; check that the camera's TF is published and current"
                               ) from exc
        return convert.transform_to_c2w(tf)
