"""Render requests of the node: service ``~/render_view``, topic ``~/render_pose`` and action
``~/render_views``, all answered by :meth:`RenderServicesMixin._serve`.

A request's pose is taken in ``frames.world`` (through TF when its header names another frame),
its camera from the request's camera_info, else the last input camera (see
:func:`~gsnerf_ros.runtime.requests.resolve_camera`). The pose is that of the virtual camera's
optical frame (x right, y down, z forward), or, when the request's ``body_frame`` (else the
node's ``frames.request_body``) names one (e.g. ``base_link``), that of the robot's body (REP
103: x forward, z up): the node then renders what the mounted camera would see with the robot
standing there, composing the pose with the latest TF body -> camera optical frame
(``frames.camera``, else the frame of the newest keyframe). The answer's ``pose`` is then the
camera's, in ``frames.world``. Every rendered view is stamped in
``frames.virtual_camera``, whose TF is broadcast at the rendered pose; ``publish`` requests also
go out on ``~/rendered/*``. Bad requests and model failures come back as ``success=false`` with a
message, never as an exception in the node.

Every request is answered: the service and the action keep ``render.request_qos_depth``
requests and responses (a burst of clients is not dropped by DDS history), the engine's bounded
queue refuses at once when full (``busy: N queued``) and refuses a request that waited past
``render.request_timeout``; service calls are served before action views, which come before
topic requests. At most ``render.max_goals`` goals execute at once; more are rejected. A goal
with a failed view is aborted, its result (every view, the failed ones with their message)
attached.

A client must keep every answer until its executor takes it: rmw_fastrtps delivers each answer
to every client of the service, so a client with the default services QoS (KEEP_LAST 10) loses
its own to a burst of other clients' answers (see :mod:`~gsnerf_ros.ros.render_client`, whose
clients keep all).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, Callable

from geometry_msgs.msg import PoseStamped
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.duration import Duration
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from gsnerf_ros.action import RenderViews
from gsnerf_ros.msg import RenderedView
from gsnerf_ros.ros import convert
from gsnerf_ros.runtime.engine import RenderEngine, Renderer
from gsnerf_ros.runtime.keyframes import KeyframeBuffer
from gsnerf_ros.runtime.params import NodeParams
from gsnerf_ros.ros.diagnostics import throttle_key
from gsnerf_ros.ros.pose_input import CameraPoseSource
from gsnerf_ros.runtime.request_queue import PRIORITY_ACTION, PRIORITY_SERVICE, PRIORITY_TOPIC
from gsnerf_ros.runtime.requests import CameraSpec, RequestError, resolve_camera
from gsnerf_ros.srv import RenderView

if TYPE_CHECKING:
    from rclpy.node import Node as _NodeBase
else:
    _NodeBase = object

__all__ = ["RenderServicesMixin", "RENDERED_TOPICS"]

RENDERED_TOPICS = ("rgb", "semantic", "semantic_color", "depth", "confidence")
"""The images of a rendered view: fields of RenderedView / RenderView and ``~/rendered/<name>``."""


class RenderServicesMixin(_NodeBase):
    """Render endpoints for a ``rclpy`` Node that provides the attributes annotated below.

    Call :meth:`_create_render_endpoints` from the node's ``__init__`` once they exist.
    """

    p: NodeParams
    engine: RenderEngine
    buffer: KeyframeBuffer
    renderer: Renderer
    semantic_output: Callable[[], tuple[Any, int]]
    pose_source: CameraPoseSource
    tf_broadcaster: Any
    cb_render: Any
    _latest_cam: CameraSpec | None
    input_problem: Callable[[], str | None]
    _active: bool
    _warn: Callable[[str, str], None]      # throttled warning (key, text)

    def _create_render_endpoints(self) -> None:
        """``~/rendered/*`` publishers, the service, the pose topic and the action server."""
        out_qos = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)
        self.pub_rendered = {k: self.create_publisher(Image, f"~/rendered/{k}", out_qos)
                             for k in RENDERED_TOPICS}
        self.pub_rendered_info = self.create_publisher(CameraInfo, "~/rendered/camera_info", out_qos)
        burst = QoSProfile(depth=self.p.render_request_qos_depth, history=HistoryPolicy.KEEP_LAST,
                           reliability=ReliabilityPolicy.RELIABLE)
        self.srv = self.create_service(RenderView, "~/render_view", self._on_render_view,
                                       qos_profile=burst, callback_group=self.cb_render)
        self.create_subscription(PoseStamped, "~/render_pose", self._on_render_pose, 5,
                                 callback_group=self.cb_render)
        self._goals_lock = threading.Lock()
        self._active_goals = 0
        self.action_server = ActionServer(
            self, RenderViews, "~/render_views", execute_callback=self._execute_render_views,
            goal_callback=self._on_goal, cancel_callback=lambda _g: CancelResponse.ACCEPT,
            callback_group=self.cb_render, goal_service_qos_profile=burst,
            result_service_qos_profile=burst, cancel_service_qos_profile=burst)

    def _serve(self, pose: PoseStamped, info: CameraInfo, publish: bool,
               with_images: bool = True, priority: int = PRIORITY_SERVICE,
               body_frame: str = "") -> RenderedView:
        """Render one request into a RenderedView; never raises for bad input. ``body_frame``:
        the frame whose pose ``pose`` gives (empty: ``frames.request_body``)."""
        t0 = time.perf_counter()
        view = RenderedView()
        view.pose = pose
        try:
            if not self._active:
                raise RequestError("the node is not active (lifecycle state inactive); activate "
                                   "it (ros2 lifecycle set /gsnerf activate) and retry")
            body = body_frame or self.p.frames_request_body
            c2w = self._request_c2w(pose, body)
            if body:                             # answer with the camera's pose, not the body's
                view.pose = PoseStamped(header=Header(stamp=pose.header.stamp,
                                                      frame_id=self.p.frames_world),
                                        pose=convert.c2w_to_pose(c2w))
            K = convert.camera_info_K(info)
            try:
                cam = resolve_camera(K, int(info.width), int(info.height), self._latest_cam,
                                     self.p.render_width, self.p.render_height,
                                     self.p.render_max_width, self.p.render_max_height)
            except RequestError as exc:   # no camera yet: say why first (nothing received...)
                cause = self.input_problem() if self._latest_cam is None else None
                raise RequestError(f"{cause}; so {exc}" if cause else str(exc)) from exc
            res = self.engine.render(c2w.float(), cam.K.float(), cam.width, cam.height,
                                     priority=priority)
        except RequestError as exc:
            view.success, view.message = False, str(exc)
            view.latency_ms = (time.perf_counter() - t0) * 1e3
            self._warn(throttle_key("request", str(exc)), f"render request refused: {exc}")
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
            imgs = convert.output_to_images(res.output, header, *self.semantic_output())
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

    def _request_c2w(self, pose: PoseStamped, body: str = "") -> Any:
        """c2w [4,4] float64 (m) of the virtual camera's optical frame in ``frames.world`` for a
        request's pose of frame ``body`` (empty: the optical frame itself); RequestError when the
        pose or a transform is unusable."""
        p = self.p
        c2w = convert.pose_to_c2w(pose.pose, "pose.pose")
        timeout = Duration(seconds=p.frames_tf_timeout)
        frame = pose.header.frame_id or p.frames_world
        if frame != p.frames_world:
            c2w = self.pose_source.lookup(p.frames_world, frame,
                                          Time.from_msg(pose.header.stamp), timeout) @ c2w
        if body:
            camera = self._mounted_camera_frame(body)
            if camera != body:               # the mount: body -> camera optical frame, latest
                c2w = c2w @ self.pose_source.lookup(body, camera, Time(), timeout)
        return c2w

    def _mounted_camera_frame(self, body: str) -> str:
        """The optical frame of the camera whose keyframes the node renders from."""
        if self.p.frames_camera:
            return self.p.frames_camera
        keyframes = self.buffer.keyframes()
        if not keyframes:
            raise RequestError(
                f"a pose of {body!r} (body_frame / frames.request_body): the camera's frame is not "
                "known before the first keyframe; set frames.camera or wait for keyframes")
        return max(keyframes, key=lambda kf: kf.id).frame_id

    def _on_render_view(self, request: Any, response: Any) -> Any:
        v = self._serve(request.pose, request.camera_info, request.publish,
                        body_frame=request.body_frame)
        response.success, response.message = v.success, v.message
        if v.success:
            for k in RENDERED_TOPICS:
                setattr(response, k, getattr(v, k))
            response.camera_info = v.camera_info
            response.source_keyframe_ids = list(v.source_keyframe_ids)
        response.latency_ms = v.latency_ms
        return response

    def _on_render_pose(self, msg: PoseStamped) -> None:
        self._serve(msg, CameraInfo(), publish=True, with_images=False, priority=PRIORITY_TOPIC)

    def _on_goal(self, goal: Any) -> GoalResponse:
        if len(goal.poses) == 0:
            self._warn("goal-empty", "render_views goal with no poses rejected")
            return GoalResponse.REJECT
        with self._goals_lock:
            if self._active_goals >= self.p.render_max_goals:
                self._warn("goal-busy", f"render_views goal rejected: busy, {self._active_goals} "
                           f"goals executing (render.max_goals={self.p.render_max_goals})")
                return GoalResponse.REJECT
            self._active_goals += 1
        return GoalResponse.ACCEPT

    def _execute_render_views(self, goal_handle: Any) -> Any:
        try:
            return self._render_goal(goal_handle)
        finally:
            with self._goals_lock:
                self._active_goals -= 1

    def _render_goal(self, goal_handle: Any) -> Any:
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
            v = self._serve(pose, goal.camera_info, goal.publish, with_images=goal.return_images,
                            priority=PRIORITY_ACTION, body_frame=goal.body_frame)
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
        if failed:
            goal_handle.abort()                  # the result, every view, goes with it
        else:
            goal_handle.succeed()
        return result
