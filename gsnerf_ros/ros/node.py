"""``gsnerf_node``: keyframe buffer + render-on-demand ROS 2 node (node name ``gsnerf``).

Inputs: ``image`` + ``camera_info`` (+ optional ``depth``) synchronised by approximate time
(sensor-data QoS); the camera pose at the image stamp from TF (``frames.world`` -> the image's
optical frame, waiting up to ``frames.tf_timeout``) or from a PoseStamped/Odometry topic.
Outputs: service ``~/render_view``, topic ``~/render_pose`` -> ``~/rendered/*``, action
``~/render_views``, ``~/keyframe_markers`` (MarkerArray frusta), ``~/keyframes``
(KeyframeBufferState), the virtual camera's TF frame, and ``/diagnostics``.

Threading: image ingestion runs in its own mutually exclusive callback group, TF in a reentrant
one, requests in another reentrant one, all on a MultiThreadedExecutor; keyframes are encoded by
a worker thread; the device runs one render/encoding at a time and at most
``render.queue_size`` requests wait (see :class:`~gsnerf_ros.ros.engine.RenderEngine`).
"""

from __future__ import annotations

import collections
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
import torch
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import (
    FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult,
)
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.duration import Duration
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from gsnerf_ros.action import RenderViews
from gsnerf_ros.msg import Keyframe as KeyframeMsg
from gsnerf_ros.msg import KeyframeBufferState, RenderedView
from gsnerf_ros.ros import convert
from gsnerf_ros.ros.engine import (
    GSNeRFRenderer, RenderEngine, Renderer, RenderSettings, resize_frame, resolve_device,
)
from gsnerf_ros.ros.image_conversion import (
    ImageFormatError, to_depth_metres, to_rgb_tensor, undistort, undistort_depth,
)
from gsnerf_ros.ros.keyframes import KeyframeBuffer, KeyframePolicy
from gsnerf_ros.ros.params import PARAMETERS, NodeParams, params_from_values
from gsnerf_ros.ros.requests import (
    CameraSpec, RequestError, check_image_matches_info, check_intrinsics, resolve_camera,
)
from gsnerf_ros.ros.ros_libs import CvBridge, CvBridgeError, message_filters, tf2_ros
from gsnerf_ros.srv import RenderView

__all__ = ["GSNeRFNode", "main", "resolve_checkpoint", "RENDERED_TOPICS"]

RENDERED_TOPICS = ("rgb", "semantic", "semantic_color", "depth", "confidence")
_COLOUR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "8UC3", "8UC1")


def resolve_checkpoint(path: str) -> Path:
    """An absolute checkpoint path: as given, else under the package share dir, the working
    directory or the source checkout. Raises FileNotFoundError naming every place tried."""
    p = Path(os.path.expanduser(path))
    if p.is_absolute():
        candidates = [p]
    else:
        candidates = []
        try:
            from ament_index_python.packages import get_package_share_directory

            candidates.append(Path(get_package_share_directory("gsnerf_ros")) / p)
        except Exception:  # noqa: BLE001 - not installed as a ROS package
            pass
        candidates += [Path.cwd() / p, Path(__file__).resolve().parents[2] / p]
    for c in candidates:
        stem = c.with_suffix("") if c.suffix in (".safetensors", ".json") else c
        if stem.with_name(stem.name + ".safetensors").is_file():
            return c
    raise FileNotFoundError(f"checkpoint {path!r} not found (tried {[str(c) for c in candidates]}); "
                            "set model.checkpoint (launch argument checkpoint:=...) to a "
                            "<name>.safetensors with its <name>.json sidecar")


def _descriptor(spec: Any) -> ParameterDescriptor:
    text = spec.description + (f" One of {list(spec.choices)}." if spec.choices else "")
    d = ParameterDescriptor(description=text, read_only=spec.read_only)
    if spec.min is not None and isinstance(spec.default, float):
        d.floating_point_range = [FloatingPointRange(from_value=float(spec.min),
                                                     to_value=float(spec.max), step=0.0)]
    elif spec.min is not None and isinstance(spec.default, int):
        d.integer_range = [IntegerRange(from_value=int(spec.min), to_value=int(spec.max),
                                        step=int(spec.step or 1))]
    return d


class GSNeRFNode(Node):
    """The render node. ``renderer`` overrides the checkpoint (tests, other models)."""

    def __init__(self, renderer: Renderer | None = None, **kwargs: Any) -> None:
        super().__init__("gsnerf", **kwargs)
        for spec in PARAMETERS:
            self.declare_parameter(spec.name, spec.default, _descriptor(spec))
        self.p: NodeParams = params_from_values(
            {s.name: self.get_parameter(s.name).value for s in PARAMETERS})
        self.add_on_set_parameters_callback(self._on_set_parameters)
        p = self.p
        self._throttle: dict[str, float] = {}
        self._last_input_error: tuple[float, str] | None = None
        self._input_errors = 0
        self._frames_received = 0
        self._latest_cam: CameraSpec | None = None
        self._kf_size: tuple[int, int] | None = None
        self._bridge = CvBridge()
        self._last_render_log = ""

        # --- model ------------------------------------------------------------------------
        self.device_warning: str | None = None
        if renderer is None:
            device, self.device_warning = resolve_device(p.model_device)
            if self.device_warning:
                self.get_logger().warning(self.device_warning)
            ckpt = resolve_checkpoint(p.model_checkpoint)
            renderer = GSNeRFRenderer.from_checkpoint(
                str(ckpt), device=device, near=p.model_near, far=p.model_far,
                mode=p.render_sampling_mode, num_samples=p.render_num_samples or None,
                chunk=p.render_chunk, dtype=p.model_dtype)
            self.model_name = ckpt.name
        else:
            self.model_name = type(renderer).__name__
        self.renderer = renderer
        self.buffer = KeyframeBuffer(KeyframePolicy(
            p.keyframes_min_translation, p.keyframes_min_rotation_deg, p.keyframes_capacity,
            p.keyframes_eviction))
        self.engine = RenderEngine(renderer, self.buffer, RenderSettings(
            p.render_num_source_views, p.render_min_keyframes, p.render_queue_size))
        self.engine.worker.on_encoded = lambda kf: self._publish_buffer()
        self._closing = False
        self.engine.worker.on_error = lambda kf, exc: self._warn(
            "encode", f"encoding keyframe {kf.id} failed: {exc}")

        # --- callback groups ----------------------------------------------------------------
        self.cb_ingest = MutuallyExclusiveCallbackGroup()
        self.cb_tf = ReentrantCallbackGroup()
        self.cb_render = ReentrantCallbackGroup()
        self.cb_timer = MutuallyExclusiveCallbackGroup()

        # --- TF -----------------------------------------------------------------------------
        self.tf_buffer = tf2_ros.Buffer(cache_time=Duration(seconds=30.0), node=self)
        self.tf_listener = self._make_tf_listener()
        self.tf_broadcaster = tf2_ros.TransformBroadcaster(self)

        # --- inputs -------------------------------------------------------------------------
        subs = [message_filters.Subscriber(self, Image, p.topics_image,
                                           qos_profile=qos_profile_sensor_data,
                                           callback_group=self.cb_ingest),
                message_filters.Subscriber(self, CameraInfo, p.topics_camera_info,
                                           qos_profile=qos_profile_sensor_data,
                                           callback_group=self.cb_ingest)]
        if p.topics_depth:
            subs.append(message_filters.Subscriber(self, Image, p.topics_depth,
                                                   qos_profile=qos_profile_sensor_data,
                                                   callback_group=self.cb_ingest))
        self._input_subs = subs
        self.sync = message_filters.ApproximateTimeSynchronizer(subs, p.sync_queue_size, p.sync_slop)
        self.sync.registerCallback(self._on_frame)
        self._poses: collections.deque[tuple[int, torch.Tensor]] = collections.deque(maxlen=400)
        self._pose_lock = threading.Lock()
        if p.topics_pose:
            mtype = Odometry if p.topics_pose_type == "odometry" else PoseStamped
            self.create_subscription(mtype, p.topics_pose, self._on_pose, qos_profile_sensor_data,
                                     callback_group=self.cb_tf)

        # --- outputs ------------------------------------------------------------------------
        out_qos = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)
        self.pub_rendered = {k: self.create_publisher(Image, f"~/rendered/{k}", out_qos)
                             for k in RENDERED_TOPICS}
        self.pub_rendered_info = self.create_publisher(CameraInfo, "~/rendered/camera_info", out_qos)
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                             reliability=ReliabilityPolicy.RELIABLE)
        self.pub_markers = self.create_publisher(MarkerArray, "~/keyframe_markers", latched)
        self.pub_state = self.create_publisher(KeyframeBufferState, "~/keyframes", latched)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)

        # --- requests -----------------------------------------------------------------------
        self.srv = self.create_service(RenderView, "~/render_view", self._on_render_view,
                                       callback_group=self.cb_render)
        self.create_subscription(PoseStamped, "~/render_pose", self._on_render_pose, 5,
                                 callback_group=self.cb_render)
        self.action_server = ActionServer(
            self, RenderViews, "~/render_views", execute_callback=self._execute_render_views,
            goal_callback=self._on_goal, cancel_callback=lambda _g: CancelResponse.ACCEPT,
            callback_group=self.cb_render)
        self.create_timer(p.publish_diagnostics_period, self._publish_diagnostics,
                          callback_group=self.cb_timer)

        self.engine.start()
        self._publish_buffer()
        self.get_logger().info(
            f"gsnerf ready: model {self.model_name} ({getattr(renderer, 'description', '')}), "
            f"image '{self.resolve_topic_name(p.topics_image)}', camera_info "
            f"'{self.resolve_topic_name(p.topics_camera_info)}', world frame '{p.frames_world}', "
            f"pose from {'topic ' + p.topics_pose if p.topics_pose else 'TF'}")

    def _make_tf_listener(self) -> Any:
        try:
            return tf2_ros.TransformListener(self.tf_buffer, self, spin_thread=False,
                                             callback_group=self.cb_tf)
        except TypeError:  # older real tf2_ros without callback_group
            return tf2_ros.TransformListener(self.tf_buffer, self, spin_thread=False)

    def _on_set_parameters(self, params: list[Any]) -> SetParametersResult:
        return SetParametersResult(successful=False, reason="gsnerf parameters are read-only; "
                                   "restart the node (or relaunch) to change them")

    # ================================================================== logging helpers
    def _warn(self, key: str, text: str) -> None:
        """Log ``text`` at most once per ``log.throttle`` seconds per ``key``."""
        now = time.monotonic()
        if now - self._throttle.get(key, -1e9) >= self.p.log_throttle:
            self._throttle[key] = now
            self.get_logger().warning(text)

    def _input_error(self, key: str, text: str) -> None:
        self._input_errors += 1
        self._last_input_error = (time.monotonic(), text)
        self._warn("input:" + key, f"dropping camera frame: {text}")

    # ================================================================== ingestion
    def _on_pose(self, msg: Any) -> None:
        pose = msg.pose.pose if isinstance(msg, Odometry) else msg.pose
        try:
            c2w = convert.pose_to_c2w(pose, "pose topic")
        except RequestError as exc:
            self._input_error("pose", str(exc))
            return
        ns = Time.from_msg(msg.header.stamp).nanoseconds
        with self._pose_lock:
            self._poses.append((ns, c2w))

    def _camera_pose(self, frame: str, stamp: Any) -> torch.Tensor:
        """c2w [4,4] float64 of ``frame`` in the world at ``stamp``; RequestError when missing."""
        p = self.p
        t = Time.from_msg(stamp)
        timeout = Duration(seconds=p.frames_tf_timeout)
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
                c2w = c2w @ self._lookup(p.frames_pose_body, frame, Time(), timeout)
            return c2w
        return self._lookup(p.frames_world, frame, t, timeout)

    def _lookup(self, target: str, source: str, t: Time, timeout: Duration) -> torch.Tensor:
        try:
            tf = self.tf_buffer.lookup_transform(target, source, t, timeout=timeout)
        except tf2_ros.TransformException as exc:
            raise RequestError(f"no TF {target} -> {source} at t={t.nanoseconds * 1e-9:.3f}: "
                               f"{exc}; check that the camera's TF is published and current"
                               ) from exc
        return convert.transform_to_c2w(tf)

    def _on_frame(self, image: Image, info: CameraInfo, depth: Image | None = None) -> None:
        self._frames_received += 1
        try:
            self._ingest(image, info, depth)
        except (RequestError, ImageFormatError, CvBridgeError) as exc:
            key = type(exc).__name__ + str(exc)[:40]
            self._input_error(key, str(exc))

    def _ingest(self, image: Image, info: CameraInfo, depth: Image | None) -> None:
        p = self.p
        if image.encoding not in _COLOUR_ENCODINGS:
            raise ImageFormatError(f"image encoding {image.encoding!r} is not supported; publish "
                                   f"one of {list(_COLOUR_ENCODINGS[:5])}")
        check_image_matches_info(image.width, image.height, info.width, info.height)
        K = convert.camera_info_K(info)
        check_intrinsics(K, info.width, info.height, "camera_info")
        self._latest_cam = CameraSpec(K, int(info.width), int(info.height))
        frame = p.frames_camera or image.header.frame_id
        if not frame:
            raise RequestError("image header.frame_id is empty; set it to the camera's optical "
                               "frame or set the frames.camera parameter")
        c2w = self._camera_pose(frame, image.header.stamp)
        if not self.buffer.is_new_keyframe(c2w.float()):
            return
        arr = self._bridge.imgmsg_to_cv2(image, desired_encoding="passthrough")
        D = np.asarray(info.d, dtype=np.float64)
        arr = undistort(arr, K.numpy(), D, info.distortion_model)
        rgb = to_rgb_tensor(arr, image.encoding)
        d = None
        if depth is not None:
            check_image_matches_info(depth.width, depth.height, info.width, info.height, "depth")
            darr = self._bridge.imgmsg_to_cv2(depth, desired_encoding="passthrough")
            d = to_depth_metres(undistort_depth(darr, K.numpy(), D, info.distortion_model),
                                depth.encoding)
        if self._kf_size is None:
            self._kf_size = (p.keyframes_width or rgb.shape[-1], p.keyframes_height or rgb.shape[-2])
        rgb, Kf, d = resize_frame(rgb, K.float(), self._kf_size[0], self._kf_size[1], d)
        kf, evicted = self.buffer.add(rgb, Kf, c2w.float(), convert.stamp_to_sec(image.header.stamp),
                                      frame, d, force=True)
        if kf is not None:
            self.get_logger().debug(f"keyframe {kf.id} added ({len(self.buffer)} in buffer, "
                                    f"{len(evicted)} evicted)")
            self._publish_buffer()

    # ================================================================== buffer outputs
    def _publish_buffer(self) -> None:
        if self._closing or not self.context.ok():
            return
        kfs = self.buffer.keyframes()
        stamp = self.get_clock().now().to_msg()
        if self.p.publish_markers:
            self.pub_markers.publish(convert.frustum_markers(kfs, self.p.frames_world, stamp,
                                                             self.p.publish_frustum_scale))
        state = KeyframeBufferState()
        state.header.frame_id, state.header.stamp = self.p.frames_world, stamp
        state.capacity = self.buffer.policy.capacity
        state.keyframes = [KeyframeMsg(id=kf.id, stamp=convert.sec_to_stamp(kf.stamp),
                                       pose=convert.c2w_to_pose(kf.c2w), width=kf.width,
                                       height=kf.height) for kf in kfs]
        self.pub_state.publish(state)

    def _publish_diagnostics(self) -> None:
        p = self.p
        n, n_enc = len(self.buffer), self.buffer.num_encoded()
        st = DiagnosticStatus(name="gsnerf: render node", hardware_id=str(
            getattr(self.renderer, "device", p.model_device)))
        level, msgs = DiagnosticStatus.OK, []
        if n_enc < p.render_min_keyframes:
            level = DiagnosticStatus.WARN
            msgs.append(f"buffer warming up ({n_enc}/{p.render_min_keyframes} encoded keyframes)")
        err = self._last_input_error
        if err is not None and time.monotonic() - err[0] < 10.0:
            level = DiagnosticStatus.WARN
            msgs.append(f"input error: {err[1]}")
        if self.device_warning:
            msgs.append(self.device_warning)
        st.level = level
        st.message = "; ".join(msgs) or "ok"
        lat = self.engine.last_latency_ms
        vals = {
            "buffer_size": n, "encoded_keyframes": n_enc, "capacity": p.keyframes_capacity,
            "last_render_latency_ms": f"{lat:.1f}" if lat is not None else "n/a",
            "renders": self.engine.renders, "device": str(getattr(self.renderer, "device",
                                                                  p.model_device)),
            "model": self.model_name, "frames_received": self._frames_received,
            "input_errors": self._input_errors,
            "last_input_error": err[1] if err is not None else "",
        }
        st.values = [KeyValue(key=k, value=str(v)) for k, v in vals.items()]
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        arr.status = [st]
        self.pub_diag.publish(arr)

    # ================================================================== rendering
    def _serve(self, pose: PoseStamped, info: CameraInfo, publish: bool,
               with_images: bool = True) -> RenderedView:
        """Render one request into a RenderedView; never raises for bad input."""
        t0 = time.perf_counter()
        view = RenderedView()
        view.pose = pose
        try:
            c2w = convert.pose_to_c2w(pose.pose, "pose.pose")
            frame = pose.header.frame_id or self.p.frames_world
            if frame != self.p.frames_world:
                c2w = self._lookup(self.p.frames_world, frame, Time.from_msg(pose.header.stamp),
                                   Duration(seconds=self.p.frames_tf_timeout)) @ c2w
            K = convert.camera_info_K(info)
            cam = resolve_camera(K, int(info.width), int(info.height), self._latest_cam,
                                 self.p.render_width, self.p.render_height,
                                 self.p.render_max_width, self.p.render_max_height)
            res = self.engine.render(c2w.float(), cam.K.float(), cam.width, cam.height)
        except RequestError as exc:
            view.success, view.message = False, str(exc)
            view.latency_ms = (time.perf_counter() - t0) * 1e3
            self._warn("request:" + str(exc)[:40], f"render request refused: {exc}")
            return view
        except Exception as exc:  # noqa: BLE001 - a model failure must not kill the node
            view.success, view.message = False, f"render failed: {type(exc).__name__}: {exc}"
            view.latency_ms = (time.perf_counter() - t0) * 1e3
            self._warn("render-failure", view.message)
            return view
        stamp = pose.header.stamp
        if stamp.sec == 0 and stamp.nanosec == 0:
            stamp = self.get_clock().now().to_msg()
        header = Header(stamp=stamp, frame_id=self.p.frames_virtual_camera)
        view.header = header
        view.success, view.message = True, ""
        view.camera_info = convert.make_camera_info(cam.K, cam.width, cam.height, header)
        view.source_keyframe_ids = [int(i) for i in res.source_ids]
        view.mean_confidence = float(res.output.confidence.float().mean())
        if with_images or publish:
            imgs = convert.output_to_images(res.output, header, self.renderer.palette,
                                            len(self.renderer.class_names))
            if with_images:
                for k, m in imgs.items():
                    setattr(view, k, m)
            if publish:
                for k, m in imgs.items():
                    self.pub_rendered[k].publish(m)
                self.pub_rendered_info.publish(view.camera_info)
        self.tf_broadcaster.sendTransform(convert.c2w_to_transform(
            c2w, self.p.frames_world, self.p.frames_virtual_camera, stamp))
        view.latency_ms = (time.perf_counter() - t0) * 1e3
        xyz = ", ".join(f"{float(v):.2f}" for v in c2w[:3, 3])
        self.get_logger().info(
            f"rendered {cam.width}x{cam.height} at ({xyz}) from keyframes "
            f"{list(view.source_keyframe_ids)} in {view.latency_ms:.1f} ms (render {res.render_ms:.1f} ms, "
            f"queued {res.wait_ms:.1f} ms), mean confidence {view.mean_confidence:.2f}")
        return view

    def _on_render_view(self, request: Any, response: Any) -> Any:
        v = self._serve(request.pose, request.camera_info, request.publish)
        response.success, response.message = v.success, v.message
        if v.success:
            for k in RENDERED_TOPICS:
                setattr(response, k, getattr(v, k))
            response.camera_info = v.camera_info
            response.source_keyframe_ids = list(v.source_keyframe_ids)
        response.latency_ms = v.latency_ms
        return response

    def _on_render_pose(self, msg: PoseStamped) -> None:
        self._serve(msg, CameraInfo(), publish=True, with_images=False)

    def _on_goal(self, goal: Any) -> GoalResponse:
        if len(goal.poses) == 0:
            self._warn("goal-empty", "render_views goal with no poses rejected")
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _execute_render_views(self, goal_handle: Any) -> Any:
        goal = goal_handle.request
        result = RenderViews.Result()
        t0 = time.perf_counter()
        n = len(goal.poses)
        for i, pose in enumerate(goal.poses):
            if goal_handle.is_cancel_requested:
                goal_handle.canceled()
                result.success = False
                result.message = f"canceled after {i} of {n} views"
                result.total_latency_ms = (time.perf_counter() - t0) * 1e3
                return result
            v = self._serve(pose, goal.camera_info, goal.publish, with_images=goal.return_images)
            result.views.append(v)
            fb = RenderViews.Feedback(index=i, total=n, mean_confidence=v.mean_confidence,
                                      latency_ms=v.latency_ms)
            goal_handle.publish_feedback(fb)
        result.total_latency_ms = (time.perf_counter() - t0) * 1e3
        failed = [i for i, v in enumerate(result.views) if not v.success]
        result.success = not failed
        result.message = "" if not failed else (
            f"{len(failed)} of {n} views failed (indices {failed}); first error: "
            f"{result.views[failed[0]].message}")
        goal_handle.succeed()
        return result

    # ================================================================== lifecycle
    def close(self) -> None:
        """Stop the encoding worker (call before destroy_node)."""
        self._closing = True
        self.engine.stop()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``gsnerf_node``; exits 0 on SIGINT/SIGTERM after stopping its threads."""
    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    node: GSNeRFNode | None = None
    code = 0
    try:
        node = GSNeRFNode()
        executor = MultiThreadedExecutor(num_threads=4)
        executor.add_node(node)
        while rclpy.ok() and not stop.is_set():
            executor.spin_once(timeout_sec=0.1)
        node.get_logger().info("shutting down")
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (FileNotFoundError, ValueError) as exc:
        print(f"gsnerf_node: {exc}", file=sys.stderr, flush=True)
        code = 2
    finally:
        if node is not None:
            node.close()
            node.destroy_node()
        rclpy.try_shutdown()
    return code

if __name__ == "__main__":
    raise SystemExit(main())
