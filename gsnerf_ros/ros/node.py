"""``gsnerf_node``: keyframe buffer + render-on-demand ROS 2 node (node name ``gsnerf``).

Inputs: ``image`` + ``camera_info`` (+ optional ``depth`` and its own ``depth_camera_info``,
+ optional segmenter ``labels`` and their confidence) synchronised by approximate time, the
camera pose at the image stamp from TF (``frames.world`` -> the image's optical frame) or from a
PoseStamped/Odometry topic (:mod:`~gsnerf_ros.ros.camera_input`); the segmenter's LabelInfo
(:mod:`~gsnerf_ros.ros.semantic_source`).
Outputs: service ``~/render_view``, topic ``~/render_pose`` -> ``~/rendered/*``, action
``~/render_views``, ``~/keyframe_markers`` (MarkerArray frusta), ``~/keyframes``
(KeyframeBufferState), the virtual camera's TF frame, and ``/diagnostics``.

Threading: image ingestion runs in its own mutually exclusive callback group, TF in a reentrant
one, requests in another reentrant one, all on a MultiThreadedExecutor; keyframes are encoded by
a worker thread; the device runs one render/encoding at a time and at most
``render.queue_size`` requests wait (see :class:`~gsnerf_ros.runtime.engine.RenderEngine`).

This module composes the node: its parameters (:mod:`~gsnerf_ros.ros.param_declaration`), the
model (:mod:`~gsnerf_ros.runtime.checkpoint_lookup`, :class:`~gsnerf_ros.runtime.engine.RenderEngine`),
and its parts: :mod:`~gsnerf_ros.ros.camera_input` (synchronised frames -> keyframes, with
:mod:`~gsnerf_ros.ros.pose_input` for the poses), :mod:`~gsnerf_ros.ros.semantic_source`
(``semantic.source``: the model's classes or a segmenter's labels, and their names),
:mod:`~gsnerf_ros.ros.render_services` (render requests), :mod:`~gsnerf_ros.ros.visualisation`
(buffer topics) and :mod:`~gsnerf_ros.ros.diagnostics`; and the node's life cycle (build, start,
stop, teardown), shared with :mod:`~gsnerf_ros.ros.lifecycle_node`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.duration import Duration
from rclpy.node import Node

from gsnerf_ros.device import device_or_cpu
from gsnerf_ros.ros.camera_input import CameraInputMixin, decompress_image
from gsnerf_ros.ros.diagnostics import InputStats, render_node_status, throttle_key
from gsnerf_ros.ros.param_declaration import (
    LIVE_PARAMETERS, check_parameter_changes, declare_node_parameters, read_node_parameters,
    warn_undeclared_overrides,
)
from gsnerf_ros.ros.process import spin_node
from gsnerf_ros.ros.render_services import RENDERED_TOPICS, RenderServicesMixin
from gsnerf_ros.ros.ros_libs import CvBridge, tf2_ros
from gsnerf_ros.ros.semantic_source import SemanticSourceMixin, check_renderer_source
from gsnerf_ros.ros.visualisation import KeyframeBufferPublisher
from gsnerf_ros.runtime.checkpoint_lookup import resolve_checkpoint
from gsnerf_ros.runtime.engine import GSNeRFRenderer, RenderEngine, Renderer, RenderSettings
from gsnerf_ros.runtime.ingest import FrameIngest
from gsnerf_ros.runtime.keyframes import KeyframeBuffer, KeyframePolicy
from gsnerf_ros.runtime.params import PARAMETERS, NodeParams
from gsnerf_ros.runtime.requests import CameraSpec

__all__ = ["GSNeRFNode", "GSNeRFCore", "main", "decompress_image", "resolve_checkpoint",
           "RENDERED_TOPICS", "executor_threads", "warn_undeclared_overrides",
           "free_device_memory"]
# decompress_image (camera_input), resolve_checkpoint (runtime.checkpoint_lookup) and
# warn_undeclared_overrides (param_declaration) stay importable from here.

if TYPE_CHECKING:
    from rclpy.node import Node as _NodeBase
else:
    _NodeBase = object


class GSNeRFCore(CameraInputMixin, SemanticSourceMixin, RenderServicesMixin, _NodeBase):
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
                vote_weights=p.model_vote_weights,
                colour_views=p.model_colour_views,
                depth_prior_weight=p.model_depth_prior_weight,
                consistency_tolerance=p.model_consistency_tolerance,
                floor_z=p.model_floor_z if p.model_floor_bound else None)
            self.model_name = ckpt.name
        else:
            self.model_name = type(renderer).__name__
        self.renderer = renderer
        check_renderer_source(p, renderer)

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

        # --- inputs: camera frames (with the segmenter's labels), poses, the segmenter's names
        self._create_camera_inputs()
        self._create_class_outputs()

        # --- outputs and requests -----------------------------------------------------------
        self.buffer_outputs = KeyframeBufferPublisher(self, p)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._create_render_endpoints()
        self.create_timer(p.publish_diagnostics_period, self._publish_diagnostics,
                          callback_group=self.cb_timer)
        after = _entities_of(self)
        self._entities = {k: [e for e in v if id(e) not in {id(b) for b in before[k]}]
                          for k, v in after.items()}

    def _start(self) -> None:
        """Start encoding and accept frames and requests."""
        self._closing = False
        self.engine.start()
        self._active = True
        self._publish_buffer()
        self._publish_class_names()
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
        self._add_segmenter_diagnostics(status)
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
