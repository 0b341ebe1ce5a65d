"""``gsnerf_node``: keyframe buffer + render-on-demand ROS 2 node (node name ``gsnerf``).

Inputs: ``image`` + ``camera_info`` (+ optional ``depth`` and its own ``depth_camera_info``,
+ optional segmenter ``labels`` and their confidence, :mod:`~gsnerf_ros.ros.segmenter_input`)
synchronised by approximate time (QoS from ``qos.*``); the image topic is resolved (namespace,
remapping) before image_transport's ``/compressed`` suffix is added. The camera pose at the
image stamp from TF (``frames.world`` -> the image's optical frame) or from a
PoseStamped/Odometry topic. A frame whose pose is not there yet waits
in a bounded queue (``frames.pending_frames``, up to ``frames.tf_timeout`` s) retried on every
frame and on a timer; no callback ever sleeps. Input stamps going back more than
``frames.time_jump_threshold`` s for three frames in a row (a bag loop) reset the buffer and the
TF cache, with one log line.
Outputs: service ``~/render_view``, topic ``~/render_pose`` -> ``~/rendered/*``, action
``~/render_views``, ``~/keyframe_markers`` (MarkerArray frusta), ``~/keyframes``
(KeyframeBufferState), the virtual camera's TF frame, and ``/diagnostics``.

Threading: image ingestion runs in its own mutually exclusive callback group, TF in a reentrant
one, requests in another reentrant one, all on a MultiThreadedExecutor; keyframes are encoded by
a worker thread; the device runs one render/encoding at a time and at most
``render.queue_size`` requests wait (see :class:`~gsnerf_ros.runtime.engine.RenderEngine`).

This module wires the node together and turns camera messages into frames for
:class:`~gsnerf_ros.runtime.ingest.FrameIngest` (camera model, rectification, depth registration,
keyframe policy); the other parts live in :mod:`~gsnerf_ros.ros.param_declaration`
(parameters), :mod:`~gsnerf_ros.runtime.checkpoint_lookup` (model file),
:mod:`~gsnerf_ros.ros.pose_input` (camera poses), :mod:`~gsnerf_ros.ros.render_services`
(render requests), :mod:`~gsnerf_ros.ros.visualisation`
(buffer topics) and :mod:`~gsnerf_ros.ros.diagnostics`.
"""

from __future__ import annotations

import difflib
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from gsnerf_ros.device import device_or_cpu
from gsnerf_ros.imaging import (
    ImageFormatError, check_camera_encoding, decode_compressed, to_depth_metres, to_rgb_array,
    to_rgb_tensor,
)
from gsnerf_ros.ros import convert
from gsnerf_ros.runtime.checkpoint_lookup import resolve_checkpoint
from gsnerf_ros.ros.diagnostics import (INPUT_ERROR_WARN_S, InputStats, render_node_status,
                                        throttle_key)
from gsnerf_ros.runtime.engine import GSNeRFRenderer, RenderEngine, Renderer, RenderSettings
from gsnerf_ros.runtime.ingest import CameraModel, DepthFrame, FrameIngest
from gsnerf_ros.runtime.keyframes import KeyframeBuffer, KeyframePolicy
from gsnerf_ros.ros.param_declaration import (
    LIVE_PARAMETERS, check_parameter_changes, declare_node_parameters, read_node_parameters,
)
from gsnerf_ros.runtime.params import PARAMETERS, NodeParams
from gsnerf_ros.runtime.pending_frames import PendingFrames, TimeJumpDetector
from gsnerf_ros.runtime.segmenter_labels import KeyframeLabels, LabelError, LabelSpace, id_palette
from gsnerf_ros.ros.segmenter_input import SegmenterInput
from gsnerf_ros.ros.process import spin_node
from gsnerf_ros.ros.pose_input import CameraPoseSource, input_qos, pose_message_type
from gsnerf_ros.ros.render_services import RENDERED_TOPICS, RenderServicesMixin
from gsnerf_ros.runtime.requests import CameraSpec, RequestError, check_image_matches_info
from gsnerf_ros.ros.ros_libs import CvBridge, CvBridgeError, message_filters, tf2_ros
from gsnerf_ros.ros.visualisation import ClassInfoPublisher, KeyframeBufferPublisher

__all__ = ["GSNeRFNode", "GSNeRFCore", "main", "decompress_image", "resolve_checkpoint", "RENDERED_TOPICS",
           "executor_threads", "warn_undeclared_overrides", "free_device_memory"]

if TYPE_CHECKING:
    from rclpy.node import Node as _NodeBase
else:
    _NodeBase = object


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


class GSNeRFCore(RenderServicesMixin, _NodeBase):
    """Everything of the render node except its rclpy base class, so that the plain node
    (:class:`GSNeRFNode`) and the managed one
    (:class:`~gsnerf_ros.ros.lifecycle_node.GSNeRFLifecycleNode`) share it.

    Order of use: :meth:`_init_core` (parameters), :meth:`_load_renderer` (the model),
    :meth:`_build` (buffer, engine, TF, topics, services), :meth:`_start` (encoder on, accept
    frames and requests); :meth:`_stop_work` and :meth:`_teardown` undo the last two.
    """

    def _init_core(self, managed: bool = False) -> None:
        """Declare the parameters (``managed``: settable until configure) and the state."""
        self.p: NodeParams = declare_node_parameters(self, managed)
        self.add_on_set_parameters_callback(self._check_parameters)
        self.add_post_set_parameters_callback(self._apply_live_parameters)
        self._throttle: dict[str, float] = {}
        self.input_stats = InputStats()
        self._latest_cam: CameraSpec | None = None
        self._bridge = CvBridge()
        self._closing = False
        self._active = False
        self._entities: dict[str, list[Any]] = {}
        self.renderer: Renderer | None = None
        self.device_warning: str | None = None
        self.model_name = ""
        warn_undeclared_overrides(self)

    def _load_renderer(self, renderer: Renderer | None) -> None:
        """The checkpoint's model on ``model.device`` (CPU fallback), or ``renderer``."""
        p = self.p
        if renderer is None:
            device, self.device_warning = device_or_cpu(p.model_device)
            if self.device_warning:
                self.get_logger().warning(self.device_warning)
            ckpt = resolve_checkpoint(p.model_checkpoint)
            renderer = GSNeRFRenderer.from_checkpoint(
                str(ckpt), device=device, near=p.model_near, far=p.model_far,
                mode=p.render_sampling_mode, num_samples=p.render_num_samples or None,
                chunk=p.render_chunk, dtype=p.model_dtype,
                use_sensor_depth=p.model_use_sensor_depth,
                max_memory_mb=p.render_max_memory_mb, kernel=p.render_kernel,
                semantic_source=p.semantic_source,
                label_angle_sigma=p.semantic_label_angle_sigma,
                label_depth_search=p.semantic_label_depth_search,
                geometry_max_pixels=p.model_geometry_max_pixels,
                num_neighbors=p.model_num_neighbors, neighbour_rule=p.model_neighbour_rule,
                colour_views=p.model_colour_views,
                consistency_tolerance=p.model_consistency_tolerance,
                floor_z=p.model_floor_z if p.model_floor_bound else None)
            self.model_name = ckpt.name
        else:
            self.model_name = type(renderer).__name__
        self.renderer = renderer
        if (p.semantic_source == "labels"
                and getattr(renderer, "semantic_source", "model") != "labels"):
            raise ValueError(f"semantic.source: labels, but the renderer "
                             f"{type(renderer).__name__} does not vote segmenter labels")

    def _build(self) -> None:
        """Buffer, engine, TF, inputs, outputs and request endpoints (nothing runs yet)."""
        p, renderer = self.p, self.renderer
        assert renderer is not None, "_load_renderer first"
        before = _entities_of(self)
        self.buffer = KeyframeBuffer(KeyframePolicy(
            p.keyframes_min_translation, p.keyframes_min_rotation_deg, p.keyframes_capacity,
            p.keyframes_eviction, p.keyframes_min_interval, p.keyframes_max_pending))
        self.engine = RenderEngine(renderer, self.buffer, RenderSettings(
            p.render_num_source_views, p.render_min_keyframes, p.render_queue_size,
            p.render_request_timeout),
            encode_min_neighbors=(None if p.keyframes_encode_min_neighbors < 0
                                  else p.keyframes_encode_min_neighbors))
        self.engine.input_problem = self.input_problem
        self.ingest = FrameIngest(self.buffer, p.camera_input, p.keyframes_width,
                                  p.keyframes_height)
        self._rect_hint_given = False
        self.engine.worker.on_encoded = lambda kf: self._publish_buffer()
        self.engine.worker.on_error = lambda kf, exc: self._warn(
            "encode", f"encoding keyframe {kf.id} failed: {exc}")

        # --- callback groups ----------------------------------------------------------------
        self.cb_ingest = MutuallyExclusiveCallbackGroup()
        self.cb_tf = ReentrantCallbackGroup()
        self.cb_render = ReentrantCallbackGroup()
        self.cb_timer = MutuallyExclusiveCallbackGroup()

        # --- TF -----------------------------------------------------------------------------
        self.tf_buffer = tf2_ros.Buffer(cache_time=Duration(seconds=30.0), node=self)
        self.tf_listener = tf2_ros.TransformListener(self.tf_buffer, self, spin_thread=False)
        self.tf_broadcaster = tf2_ros.TransformBroadcaster(self)

        # --- inputs -------------------------------------------------------------------------
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
        for topic in (p.topics_labels, p.topics_label_confidence):
            if topic:
                subs.append(message_filters.Subscriber(self, Image, topic, qos_profile=in_qos,
                                                       callback_group=self.cb_ingest))
        self._input_subs = subs
        self.sync = message_filters.ApproximateTimeSynchronizer(subs, p.sync_queue_size, p.sync_slop)
        self.sync.registerCallback(self._on_synced)
        self.segmenter = None
        if p.topics_labels:
            space = getattr(renderer, "label_space", None)
            self.segmenter = SegmenterInput(
                self, p, space if space is not None else LabelSpace(),
                relay=p.semantic_source == "labels", warn=self._warn,
                callback_group=self.cb_tf)
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

        # --- outputs and requests -----------------------------------------------------------
        self.buffer_outputs = KeyframeBufferPublisher(self, p)
        # The class names go out when the node starts (a managed node's publishers are enabled
        # at activate): the checkpoint's, or the segmenter's once it sends them.
        self.class_info = (None if p.semantic_source == "labels" else
                           ClassInfoPublisher(self, renderer.class_names, renderer.palette))
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._create_render_endpoints()
        self.create_timer(p.publish_diagnostics_period, self._publish_diagnostics,
                          callback_group=self.cb_timer)
        after = _entities_of(self)
        self._entities = {k: [e for e in v if id(e) not in {id(b) for b in before[k]}]
                          for k, v in after.items()}

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

    def _start(self) -> None:
        """Start encoding and accept frames and requests."""
        self._closing = False
        self.engine.start()
        self._active = True
        self._publish_buffer()
        if self.class_info is not None:
            self.class_info.publish(Header(stamp=self.get_clock().now().to_msg(),
                                           frame_id=self.p.frames_virtual_camera))
        elif self.segmenter is not None:
            self.segmenter.publish_names()
        p = self.p
        self.get_logger().info(
            f"gsnerf ready: model {self.model_name} "
            f"({getattr(self.renderer, 'description', '')}), "
            f"image '{self.resolve_topic_name(self._image_input()[1])}' "
            f"({p.topics_image_transport}), camera_info "
            f"'{self.resolve_topic_name(p.topics_camera_info)}', world frame '{p.frames_world}', "
            f"pose from {'topic ' + p.topics_pose if p.topics_pose else 'TF'}")

    def _stop_work(self) -> None:
        """Stop encoding and refuse frames and requests; drop the keyframes and their cached
        encodings (device memory)."""
        self._active = False
        self._closing = True
        self.engine.stop()
        self.buffer.clear()
        cache = getattr(self.renderer, "stack_cache", None)
        if cache is not None:                       # the stacked sources of the last render
            self.renderer.stack_cache = type(cache)()
        free_device_memory()

    def _teardown(self) -> None:
        """Destroy what :meth:`_build` created and drop the model."""
        destroy_pub = getattr(self, "destroy_lifecycle_publisher", self.destroy_publisher)
        destroy = {"subscriptions": self.destroy_subscription, "publishers": destroy_pub,
                   "services": self.destroy_service, "timers": self.destroy_timer,
                   "clients": self.destroy_client}
        for kind, items in self._entities.items():
            for e in items:
                if kind in destroy:
                    destroy[kind](e)
                elif hasattr(e, "destroy"):
                    e.destroy()
        self._entities = {}
        self.renderer = None
        free_device_memory()

    # ================================================================== parameters
    def _parameters_fixed_because(self) -> str | None:
        """Why the non-live parameters cannot change now (None: they can)."""
        return ("gsnerf_node runs (it reads them at start); relaunch it with the new value, "
                "or run gsnerf_lifecycle_node: deactivate, cleanup, set them, configure")

    def _check_parameters(self, params: list[Any]) -> Any:
        """``on_set_parameters`` callback: refuse, with the reason, a parameter that cannot
        change now or a value out of range (nothing changes then)."""
        current = {s.name: self.get_parameter(s.name).value for s in PARAMETERS}
        return check_parameter_changes(params, current, self._parameters_fixed_because())

    def _apply_live_parameters(self, params: list[Any]) -> None:
        """``post_set_parameters`` callback: live parameters take effect at once (the others
        are read at configure)."""
        if not any(p.name in LIVE_PARAMETERS for p in params):
            return
        new = read_node_parameters(self)
        for name in LIVE_PARAMETERS:
            attr = name.replace(".", "_")
            setattr(self.p, attr, getattr(new, attr))

    # ================================================================== logging helpers
    # (throttle_key: the same warning with other numbers in it - stamps, counts - is a repeat)
    def _warn(self, key: str, text: str) -> None:
        """Log ``text`` at most once per ``log.throttle`` seconds per ``key``."""
        now = time.monotonic()
        if now - self._throttle.get(key, -1e9) >= self.p.log_throttle:
            self._throttle[key] = now
            self.get_logger().warning(text)

    def _input_error(self, key: str, text: str) -> None:
        self.input_stats.record_error(text)
        self._warn(throttle_key("input:" + key, text), f"dropping camera frame: {text}")

    # ================================================================== semantic output
    def semantic_output(self) -> tuple[Any, int]:
        """(palette, number of ids) of ``semantic`` / ``semantic_color``: the model's classes,
        or with ``semantic.source: labels`` the segmenter's ids (mono8, or mono16 for 16-bit
        labels or ids above 254) with a palette keyed by id (a class keeps its colour when
        others appear; the unknown id is black)."""
        if self.p.semantic_source != "labels":
            return self.renderer.palette, len(self.renderer.class_names)
        n = self.renderer.label_space.unknown_value
        return id_palette(n), n

    # ================================================================== ingestion
    def _on_synced(self, *msgs: Any) -> None:
        """Synchroniser callback: the messages in the order of the subscribers of
        :meth:`_build` (image, camera_info, [depth], [depth camera_info], [labels],
        [label confidence])."""
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

    def _ingest(self, f: "_Frame", c2w: Any, colour_from_depth: Any = None) -> None:
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
                                      self._frame_labels(f))
        if kf is not None:
            self.get_logger().debug(f"keyframe {kf.id} added ({len(self.buffer)} in buffer, "
                                    f"{len(evicted)} evicted)")
            self._publish_buffer()

    def _frame_labels(self, f: "_Frame") -> KeyframeLabels | None:
        """The segmenter's labels of a frame that becomes a keyframe, or None (none sent, or
        refused: counted and logged, the keyframe is kept)."""
        if self.segmenter is None or f.labels is None:
            return None
        try:
            labels = self.segmenter.decode(f.image, f.labels, f.label_confidence, self._bridge)
        except (LabelError, CvBridgeError) as exc:
            self.segmenter.record(False, str(exc))
            return None
        self.segmenter.record(True)
        return labels

    # ================================================================== buffer outputs
    def _publish_buffer(self) -> None:
        if self._closing or not self.context.ok():
            return
        self.buffer_outputs.publish(self.buffer.keyframes(), self.buffer.policy.capacity,
                                    self.get_clock().now().to_msg())

    def _publish_diagnostics(self) -> None:
        self.input_stats.frames_waiting = len(self.pending)
        self.input_stats.time_jumps = self.time_jump.jumps
        self.input_stats.problem = self.input_problem() or ""
        status = render_node_status(self.p, self.buffer, self.engine, self.renderer,
                                    self.model_name, self.device_warning, self.input_stats,
                                    node_name=self.get_fully_qualified_name())
        if self.segmenter is not None:
            status.values.extend(KeyValue(key=k, value=v)
                                 for k, v in self.segmenter.diagnostics().items())
            why = self.segmenter.recent_problem(INPUT_ERROR_WARN_S)
            if why:
                status.level = max(status.level, DiagnosticStatus.WARN)
                status.message = why if status.message == "ok" else f"{status.message}; {why}"
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        arr.status = [status]
        self.pub_diag.publish(arr)

    # ================================================================== lifecycle
    def close(self) -> None:
        """Stop the encoding worker (call before destroy_node)."""
        self._closing = True
        self._active = False
        if hasattr(self, "engine"):
            self.engine.stop()


class GSNeRFNode(GSNeRFCore, Node):
    """The render node, running from construction. ``renderer`` overrides the checkpoint
    (tests, other models)."""

    def __init__(self, renderer: Renderer | None = None, **kwargs: Any) -> None:
        Node.__init__(self, "gsnerf", **kwargs)
        self._init_core()
        self._load_renderer(renderer)
        self._build()
        self._start()


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


def _entities_of(node: Any) -> dict[str, list[Any]]:
    return {k: list(getattr(node, k)) for k in
            ("subscriptions", "publishers", "services", "timers", "clients", "waitables")}


def free_device_memory() -> None:
    """Return cached CUDA memory to the device (no-op on the CPU)."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _closest_parameter(name: str, declared: list[str]) -> str | None:
    """The declared name sharing most words with ``name`` (``world_frame`` -> ``frames.world``),
    else the closest spelling."""
    def words(n: str) -> set[str]:
        return {w.rstrip("s") for w in re.split(r"[._]", n.lower()) if w}

    mine = words(name)
    best = max(declared, key=lambda d: (len(words(d) & mine), -len(d)))
    if words(best) & mine:
        return best
    close = difflib.get_close_matches(name, declared, n=1, cutoff=0.6)
    return close[0] if close else None


def warn_undeclared_overrides(node: Any) -> list[str]:
    """Warn once about parameter overrides (``-p``, parameter files) that name no declared
    parameter, e.g. ``world_frame`` for ``frames.world``; returns their names."""
    overrides = getattr(node, "_parameter_overrides", {}) or {}
    unknown = sorted(n for n in overrides if not node.has_parameter(n)
                     and not n.startswith("qos_overrides."))
    if unknown:
        declared = sorted(s.name for s in PARAMETERS)
        hints = []
        for n in unknown:
            close = _closest_parameter(n, declared)
            hints.append(f"{n} (did you mean {close}?)" if close else n)
        node.get_logger().warning(
            f"ignoring parameter override(s) the node does not declare: {', '.join(hints)}; "
            "see config/gsnerf.yaml or `ros2 param list /gsnerf` for the names")
    return unknown


def executor_threads(p: NodeParams) -> int:
    """Executor threads: one per request that may run or wait on the device (each blocks its
    thread), the action goals, plus spare threads that refuse at once when the queue is full and
    keep camera frames, TF and timers flowing."""
    return p.render_queue_size + 1 + p.render_max_goals + 3


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``gsnerf_node``; exits 0 on SIGINT/SIGTERM after stopping its threads."""
    return spin_node(GSNeRFNode, lambda n: executor_threads(n.p), "gsnerf_node", argv)


if __name__ == "__main__":
    raise SystemExit(main())
