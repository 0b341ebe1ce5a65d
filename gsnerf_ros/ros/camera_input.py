"""Camera input of the node: synchronised frames in, keyframes out.

The colour image (``topics.image``, or CompressedImage on ``<resolved image>/compressed`` with
``topics.image_transport: compressed``), its ``camera_info``, the optional ``depth`` with its own
``depth_camera_info``, and the optional segmenter ``labels`` and their confidence
(:func:`~gsnerf_ros.ros.semantic_source.label_topics`) go through one approximate-time
synchroniser (QoS from ``qos.*``). Each synchronised frame is checked (encoding, size, camera
model, frame ids) and waits in a bounded queue (``frames.pending_frames``, up to
``frames.tf_timeout`` s) until its pose is known (:class:`~gsnerf_ros.ros.pose_input.CameraPoseSource`:
TF or a PoseStamped/Odometry topic), retried on every frame and on a timer; no callback ever
sleeps. A frame with its pose goes to :class:`~gsnerf_ros.runtime.ingest.FrameIngest` (camera
model, rectification, depth registration, keyframe policy). Input stamps going back more than
``frames.time_jump_threshold`` s for three frames in a row (a bag loop) reset the buffer and the
TF cache, with one log line. Bad frames are input errors (counted, logged, dropped), never a
crash.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
from rclpy.duration import Duration
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from gsnerf_ros.imaging import (
    ImageFormatError, check_camera_encoding, decode_compressed, to_depth_metres, to_rgb_array,
    to_rgb_tensor,
)
from gsnerf_ros.ros import convert
from gsnerf_ros.ros.diagnostics import InputStats
from gsnerf_ros.ros.pose_input import CameraPoseSource, input_qos, pose_message_type
from gsnerf_ros.ros.ros_libs import CvBridgeError, message_filters
from gsnerf_ros.ros.semantic_source import label_topics
from gsnerf_ros.runtime.ingest import CameraModel, DepthFrame, FrameIngest
from gsnerf_ros.runtime.keyframes import KeyframeBuffer
from gsnerf_ros.runtime.params import NodeParams
from gsnerf_ros.runtime.pending_frames import PendingFrames, TimeJumpDetector
from gsnerf_ros.runtime.requests import CameraSpec, RequestError, check_image_matches_info
from gsnerf_ros.runtime.segmenter_labels import KeyframeLabels

if TYPE_CHECKING:
    from rclpy.node import Node as _NodeBase
else:
    _NodeBase = object

__all__ = ["CameraInputMixin", "decompress_image"]


@dataclass
class _Frame:
    """A synchronised camera frame waiting for its pose; ``frame`` is its optical frame id,
    ``camera`` its colour camera model; ``depth_frame`` the depth image's optical frame when it
    is another one (its TF to ``frame`` is looked up with the pose)."""

    image: Image
    info: CameraInfo
    depth: Image | None
    frame: str
    camera: CameraModel
    depth_info: CameraInfo | None = None
    depth_frame: str | None = None
    labels: Image | None = None
    label_confidence: Image | None = None


class CameraInputMixin(_NodeBase):
    """Camera inputs for a ``rclpy`` Node that provides the attributes annotated below.

    Call :meth:`_create_camera_inputs` from the node's build step once they exist.
    """

    p: NodeParams
    buffer: KeyframeBuffer
    ingest: FrameIngest
    tf_buffer: Any
    cb_ingest: Any
    cb_tf: Any
    input_stats: InputStats
    _bridge: Any
    _active: bool
    _latest_cam: CameraSpec | None
    _input_error: Callable[[str, str], None]
    _publish_buffer: Callable[[], None]
    _frame_labels: Callable[[Image, Image | None, Image | None], KeyframeLabels | None]

    def _create_camera_inputs(self) -> None:
        """The synchronised subscribers, the pose source, the queue of frames waiting for their
        pose (drained on a timer) and the pose topic."""
        p = self.p
        self._rect_hint_given = False
        in_qos = input_qos(p)
        subs = [message_filters.Subscriber(self, *self._image_input(),
                                           qos_profile=in_qos,
                                           callback_group=self.cb_ingest),
                message_filters.Subscriber(self, CameraInfo, p.topics_camera_info,
                                           qos_profile=in_qos,
                                           callback_group=self.cb_ingest)]
        if p.topics_depth:
            subs.append(message_filters.Subscriber(self, Image, p.topics_depth,
                                                   qos_profile=in_qos,
                                                   callback_group=self.cb_ingest))
        if p.topics_depth_camera_info:
            subs.append(message_filters.Subscriber(self, CameraInfo, p.topics_depth_camera_info,
                                                   qos_profile=in_qos,
                                                   callback_group=self.cb_ingest))
        for topic in label_topics(p):
            subs.append(message_filters.Subscriber(self, Image, topic, qos_profile=in_qos,
                                                   callback_group=self.cb_ingest))
        self._input_subs = subs
        self.sync = message_filters.ApproximateTimeSynchronizer(subs, p.sync_queue_size, p.sync_slop)
        self.sync.registerCallback(self._on_synced)
        self.pose_source = CameraPoseSource(self.tf_buffer, p, self._input_error)
        self.pending: PendingFrames[_Frame] = PendingFrames(
            p.frames_pending_frames, p.frames_tf_timeout, RequestError,
            lambda f, why: self._input_error("pose", why))
        self.time_jump = TimeJumpDetector(p.frames_time_jump_threshold)
        self.create_timer(0.05, self._drain_pending, callback_group=self.cb_ingest)
        if p.topics_pose:
            self.create_subscription(pose_message_type(p), p.topics_pose,
                                     self.pose_source.on_pose, in_qos,
                                     callback_group=self.cb_tf)

    def _image_input(self) -> tuple[type, str]:
        """(message class, topic) of the colour image: ``topics.image`` or, with
        ``topics.image_transport: compressed``, CompressedImage on ``<resolved image>/compressed``:
        the base name is resolved first (namespace and remapping, ``image:=/camera/image_raw``),
        then the transport's suffix is added, as image_transport does."""
        p = self.p
        if p.topics_image_transport == "compressed":
            base = self.resolve_topic_name(p.topics_image, only_expand=False)
            return CompressedImage, base.rstrip("/") + "/compressed"
        return Image, p.topics_image

    def input_problem(self) -> str | None:
        """Why no keyframe arrives, when the inputs say so (None when they look fine): nothing
        received on the image topic, or frames dropped (TF missing, bad data). Put first in
        the refusal of a render (see :meth:`RenderEngine.not_ready_message`)."""
        st = self.input_stats
        _cls, topic = self._image_input()
        topic = self.resolve_topic_name(topic)
        if st.frames_received == 0:
            pubs = {t: self.count_publishers(self.resolve_topic_name(t))
                    for t in (topic, self.p.topics_camera_info)}
            why = ("no publisher matched" if not pubs[topic] else
                   f"{pubs[topic]} publisher(s) on the image topic, "
                   f"{pubs[self.p.topics_camera_info]} on camera_info; check that their stamps "
                   f"agree within sync.slop={self.p.sync_slop} s")
            return f"0 frames received on {topic}: {why}"
        if st.last_error is not None and st.errors and len(self.buffer) == 0:
            return (f"{st.last_error[1]} ({st.errors} of {st.frames_received} frame(s) received "
                    f"on {topic} dropped, no keyframe)")
        return None

    def _on_synced(self, *msgs: Any) -> None:
        """Synchroniser callback: the messages in the order of the subscribers of
        :meth:`_create_camera_inputs` (image, camera_info, [depth], [depth camera_info],
        [labels], [label confidence])."""
        p = self.p
        it = iter(msgs)
        image, info = next(it), next(it)
        depth = next(it) if p.topics_depth else None
        depth_info = next(it) if p.topics_depth_camera_info else None
        labels = next(it) if p.topics_labels else None
        conf = next(it) if p.topics_label_confidence else None
        self._on_frame(image, info, depth, depth_info, labels, conf)

    def _on_frame(self, image: Image | CompressedImage, info: CameraInfo,
                  depth: Image | None = None, depth_info: CameraInfo | None = None,
                  labels: Image | None = None, label_confidence: Image | None = None) -> None:
        """Synchroniser callback: check the frame, then queue it until its pose is known."""
        if not self._active:
            return
        self.input_stats.record_frame()
        if isinstance(image, CompressedImage):
            try:
                image = decompress_image(image)
            except ImageFormatError as exc:
                self._input_error("compressed", str(exc))
                return
        stamp = convert.stamp_to_sec(image.header.stamp)
        back = self.time_jump.check(stamp)
        if back is not None:
            self._reset_for_time_jump(back, stamp)
        try:
            frame, camera = self._check_frame(image, info)
            depth_frame = self._depth_frame(image, depth, depth_info, frame)
        except (RequestError, ImageFormatError) as exc:
            self._input_error(type(exc).__name__, str(exc))
            return
        self.pending.push(_Frame(image, info, depth, frame, camera, depth_info, depth_frame,
                                 labels, label_confidence))
        self._drain_pending()

    def _frame_pose(self, f: _Frame) -> tuple[Any, Any]:
        """(c2w of the colour optical frame, depth frame -> colour frame or None) at the frame's
        stamp; RequestError while either TF is missing."""
        stamp = f.image.header.stamp
        c2w = self.pose_source.camera_pose(f.frame, stamp)
        moved = None
        if f.depth_frame is not None:
            moved = self.pose_source.lookup(f.frame, f.depth_frame, Time.from_msg(stamp),
                                            Duration(seconds=0))
        return c2w, moved

    def _drain_pending(self) -> None:
        """Ingest every waiting frame whose pose is available now (never waits)."""
        for f, pose in self.pending.ready(self._frame_pose):
            try:
                self._ingest(f, *pose)
            except (RequestError, ImageFormatError, CvBridgeError) as exc:
                self._input_error(type(exc).__name__, str(exc))

    def _reset_for_time_jump(self, back: float, stamp: float) -> None:
        n = self.buffer.clear()
        self.tf_buffer.clear()
        self.pose_source.clear()
        waiting = self.pending.clear()
        self._publish_buffer()
        self.get_logger().warning(
            f"time jump: input stamps went back {back:.1f} s (to {stamp:.3f}; a bag loop or a "
            f"clock reset); reset the keyframe buffer ({n} keyframes), the TF cache and "
            f"{waiting} waiting frame(s)")

    def _check_frame(self, image: Image, info: CameraInfo) -> tuple[str, CameraModel]:
        """Validate a frame's encoding, size and camera model; returns its optical frame id and
        camera model (the camera of render requests with all-zero intrinsics from now on)."""
        check_camera_encoding(image.encoding)
        check_image_matches_info(image.width, image.height, info.width, info.height)
        frame = self.p.frames_camera or image.header.frame_id
        if not frame:
            raise RequestError("image header.frame_id is empty; set it to the camera's optical "
                               "frame or set the frames.camera parameter")
        camera = convert.camera_model(info, frame)
        K = self.ingest.intrinsics(camera)
        self._latest_cam = CameraSpec(K, int(info.width), int(info.height))
        self._hint_rectified_input(camera)
        return frame, camera

    def _hint_rectified_input(self, camera: CameraModel) -> None:
        """Say once when a topic named like ``image_rect`` is about to be undistorted again."""
        if self._rect_hint_given or self.p.camera_input != "auto" or not camera.distorted:
            return
        topic = self.resolve_topic_name(self._image_input()[1])
        name = topic.removesuffix("/compressed").rsplit("/", 1)[-1]
        if "rect" in name:
            self._rect_hint_given = True
            self.get_logger().warning(
                f"'{topic}' looks rectified but its camera_info has distortion coefficients, so "
                "camera.input: auto undistorts it (again); set camera.input: rectified if it is "
                "image_proc's image_rect")

    def _depth_frame(self, image: Image | CompressedImage, depth: Image | None,
                     depth_info: CameraInfo | None, frame: str) -> str | None:
        """The depth's optical frame when it has its own camera_info and another frame than the
        colour image (its TF is then needed), else None."""
        if depth is None or depth_info is None:
            return None
        depth_frame = depth.header.frame_id or depth_info.header.frame_id
        if not depth_frame:
            raise RequestError("depth header.frame_id is empty; set it to the depth camera's "
                               "optical frame")
        return None if depth_frame in (frame, image.header.frame_id) else depth_frame

    def _ingest(self, f: _Frame, c2w: Any, colour_from_depth: Any = None) -> None:
        """Decode a frame whose pose is known and hand it to :attr:`ingest` when the keyframe
        policy wants it."""
        image, depth = f.image, f.depth
        stamp = convert.stamp_to_sec(image.header.stamp)
        if not self.ingest.wants(c2w, f.camera, stamp):
            return
        arr = self._bridge.imgmsg_to_cv2(image, desired_encoding="passthrough")
        rgb = to_rgb_tensor(arr, image.encoding)
        d = None
        if depth is not None:
            darr = self._bridge.imgmsg_to_cv2(depth, desired_encoding="passthrough")
            d = DepthFrame(to_depth_metres(darr, depth.encoding),
                           None if f.depth_info is None
                           else convert.camera_model(f.depth_info, f.depth_frame or f.frame),
                           colour_from_depth)
        kf, evicted = self.ingest.add(rgb, f.camera, c2w, stamp, f.frame, d,
                                      self._frame_labels(image, f.labels, f.label_confidence))
        if kf is not None:
            self.get_logger().debug(f"keyframe {kf.id} added ({len(self.buffer)} in buffer, "
                                    f"{len(evicted)} evicted)")
            self._publish_buffer()


def decompress_image(msg: CompressedImage) -> Image:
    """A JPEG/PNG ``CompressedImage`` decoded with OpenCV to an ``rgb8`` Image (same header).

    Raises :class:`ImageFormatError` naming the format when the data cannot be decoded."""
    data = bytes(msg.data)
    try:
        arr, encoding = decode_compressed(data, msg.format)
    except ImageFormatError as exc:
        if not data:
            raise
        raise ImageFormatError(f"{exc} ({len(data)} bytes); publish JPEG or PNG data "
                               "(image_transport 'compressed')") from exc
    rgb = to_rgb_array(arr, encoding)
    if rgb.dtype != np.uint8:
        raise ImageFormatError(f"CompressedImage decodes to {rgb.dtype}, not 8-bit colour")
    return convert.array_to_image(rgb, "rgb8", msg.header)
