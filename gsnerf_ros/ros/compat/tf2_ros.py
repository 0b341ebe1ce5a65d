"""In-tree equivalent of ``tf2_ros`` (Buffer, TransformListener, broadcasters, exceptions).

Used only where the real tf2_ros is not installed (PyPI-wheel ROS here); on a robot the node
imports the real one. Same API for what the node uses::

    buf = Buffer(cache_time=Duration(seconds=10))
    TransformListener(buf, node)                       # fed by /tf and latched /tf_static
    t = buf.lookup_transform("map", "camera_optical", Time(), timeout=Duration(seconds=0.1))
    TransformBroadcaster(node).sendTransform(t)

``lookup_transform(target, source, time)`` returns the pose of ``source`` in ``target`` (it maps
points from ``source`` coordinates to ``target``): chains through any tree of frames, linear
interpolation of translations and slerp of rotations between stored samples, ``time == 0`` means
the latest time all links of the chain share, and a positive ``timeout`` waits (on a condition
variable, so the executor must deliver /tf in another thread) for the data to arrive.

Faithful to the real tf2 (geometry2 ``tf2/src/buffer_core.cpp``, ``tf2_ros_py``) where it
matters: ``set_transform`` returns None and **ignores** (logging an error, as tf2's
``TF_DENORMALIZED_QUATERNION`` / ``TF_NAN_INPUT`` / ``TF_SELF_TRANSFORM`` ...) a transform whose
quaternion has | |q|^2 - 1 | >= 0.01, NaN values or bad frame ids; ``TransformListener`` takes
no callback group (it makes its own reentrant one) but ``tf_topic`` / ``tf_static_topic``, and
``spin_thread=True`` spins the node in its own thread; a Buffer given a node clears itself when
the node's clock jumps back (sim time, a bag loop). Not provided: the ``tf2_frames`` service.
"""

from __future__ import annotations

import bisect
import threading
import time as _time
from typing import Any

import numpy as np

__all__ = [
    "Buffer", "TransformListener", "TransformBroadcaster", "StaticTransformBroadcaster",
    "TransformException", "LookupException", "ConnectivityException", "ExtrapolationException",
    "InvalidArgumentException", "TimeoutException",
]


class TransformException(Exception):
    """Base of every tf error."""


class LookupException(TransformException):
    """A frame does not exist in the buffer."""


class ConnectivityException(TransformException):
    """The two frames are not connected by the tree."""


class ExtrapolationException(TransformException):
    """The requested time lies outside the stored samples of a link."""


class InvalidArgumentException(TransformException):
    """A lookup argument is malformed (kept for API compatibility; bad transforms to store are
    logged and ignored, as tf2 does)."""

QUATERNION_NORMALIZATION_TOLERANCE = 10e-3
"""tf2's tolerance on | |q|^2 - 1 | of a stored transform (buffer_core.cpp)."""


def _log_error(text: str) -> None:
    try:
        import rclpy.logging

        rclpy.logging.get_logger("tf2_buffer").error(text)
    except Exception:  # noqa: BLE001 - no rclpy logging available
        import logging

        logging.getLogger("tf2_buffer").error(text)


class TimeoutException(TransformException):
    """Kept for API compatibility; lookups raise the specific cause after the timeout."""


def _to_ns(t: Any) -> int:
    """rclpy Time, builtin_interfaces/Time, float seconds or int ns -> int nanoseconds."""
    if t is None:
        return 0
    if hasattr(t, "nanoseconds"):
        return int(t.nanoseconds)
    if hasattr(t, "sec") and hasattr(t, "nanosec"):
        return int(t.sec) * 1_000_000_000 + int(t.nanosec)
    if isinstance(t, float):
        return int(round(t * 1e9))
    return int(t)


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array([aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw,
                     aw * bw - ax * bx - ay * by - az * bz])


def _quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    qv = np.array([v[0], v[1], v[2], 0.0])
    return _quat_mul(_quat_mul(q, qv), _quat_conj(q))[:3]


def _quat_conj(q: np.ndarray) -> np.ndarray:
    return np.array([-q[0], -q[1], -q[2], q[3]])


def _slerp(a: np.ndarray, b: np.ndarray, s: float) -> np.ndarray:
    d = float(np.dot(a, b))
    if d < 0.0:
        b, d = -b, -d
    if d > 0.9995:
        q = a + s * (b - a)
        return q / np.linalg.norm(q)
    th = np.arccos(min(d, 1.0))
    q = (np.sin((1 - s) * th) * a + np.sin(s * th) * b) / np.sin(th)
    return q / np.linalg.norm(q)


class _Tf:
    """A rigid transform as (translation (3,), unit quaternion xyzw (4,))."""

    __slots__ = ("t", "q")

    def __init__(self, t: np.ndarray, q: np.ndarray) -> None:
        self.t, self.q = t, q

    @staticmethod
    def identity() -> "_Tf":
        return _Tf(np.zeros(3), np.array([0.0, 0.0, 0.0, 1.0]))

    def __mul__(self, o: "_Tf") -> "_Tf":
        return _Tf(self.t + _quat_rotate(self.q, o.t), _quat_mul(self.q, o.q))

    def inverse(self) -> "_Tf":
        qi = _quat_conj(self.q)
        return _Tf(-_quat_rotate(qi, self.t), qi)


class _Link:
    """Samples of one child->parent edge: times (ns, sorted) and transforms parent_T_child."""

    def __init__(self, parent: str, static: bool) -> None:
        self.parent, self.static = parent, static
        self.times: list[int] = []
        self.tfs: list[_Tf] = []

    def insert(self, stamp: int, tf: _Tf, cache_ns: int) -> None:
        if self.static:
            self.times, self.tfs = [0], [tf]
            return
        i = bisect.bisect_left(self.times, stamp)
        if i < len(self.times) and self.times[i] == stamp:
            self.tfs[i] = tf
        else:
            self.times.insert(i, stamp)
            self.tfs.insert(i, tf)
        cut = bisect.bisect_left(self.times, self.times[-1] - cache_ns)
        if cut > 0:
            del self.times[:cut], self.tfs[:cut]

    def latest(self) -> int:
        return 0 if self.static else self.times[-1]

    def at(self, stamp: int, child: str) -> _Tf:
        if self.static:
            return self.tfs[0]
        if stamp == 0:
            return self.tfs[-1]
        if stamp < self.times[0] or stamp > self.times[-1]:
            if len(self.times) == 1 and stamp == self.times[0]:
                return self.tfs[0]
            raise ExtrapolationException(
                f"Lookup would require extrapolation: requested time {stamp * 1e-9:.9f} but the "
                f"data of {self.parent} -> {child} spans [{self.times[0] * 1e-9:.9f}, "
                f"{self.times[-1] * 1e-9:.9f}]")
        i = bisect.bisect_left(self.times, stamp)
        if self.times[i] == stamp:
            return self.tfs[i]
        t0, t1 = self.times[i - 1], self.times[i]
        s = (stamp - t0) / (t1 - t0)
        a, b = self.tfs[i - 1], self.tfs[i]
        return _Tf(a.t + s * (b.t - a.t), _slerp(a.q, b.q, s))


class Buffer:
    """Stores transforms from /tf and /tf_static and answers chained, interpolated lookups."""

    def __init__(self, cache_time: Any = None, node: Any = None) -> None:
        self._cache_ns = _to_ns(cache_time) if cache_time is not None else 10_000_000_000
        self._links: dict[str, _Link] = {}
        self._cond = threading.Condition()
        self.jump_handle = None
        if node is not None:                      # as tf2_ros: clear on a jump back in time
            from rclpy.duration import Duration
            from rclpy.clock import JumpThreshold

            self.clock = node.get_clock()
            self.jump_handle = self.clock.create_jump_callback(
                JumpThreshold(min_forward=None, min_backward=Duration(seconds=-1),
                              on_clock_change=True), post_callback=self.time_jump_callback)

    def time_jump_callback(self, time_jump: Any) -> None:
        """Clock jumped back (sim time, bag loop): forget everything, like tf2_ros."""
        _log_error("Detected jump back in time. Clearing tf buffer.")
        self.clear()

    # --- writing ------------------------------------------------------------------------
    def set_transform(self, transform: Any, authority: str) -> None:
        """Store one dynamic ``geometry_msgs/TransformStamped`` (a bad one is logged, ignored)."""
        self._set(transform, authority, static=False)

    def set_transform_static(self, transform: Any, authority: str) -> None:
        """Store one static transform (valid at every time)."""
        self._set(transform, authority, static=True)

    def _set(self, msg: Any, authority: str, static: bool) -> bool:
        parent = msg.header.frame_id.lstrip("/")
        child = msg.child_frame_id.lstrip("/")
        tr, ro = msg.transform.translation, msg.transform.rotation
        t = np.array([tr.x, tr.y, tr.z], dtype=np.float64)
        q = np.array([ro.x, ro.y, ro.z, ro.w], dtype=np.float64)
        errors = []
        if parent and parent == child:
            errors.append(f"TF_SELF_TRANSFORM: Ignoring transform from authority \"{authority}\" "
                          f"with frame_id and child_frame_id \"{child}\" because they are the same")
        if not child:
            errors.append(f"TF_NO_CHILD_FRAME_ID: Ignoring transform from authority "
                          f"\"{authority}\" because child_frame_id not set")
        if not parent:
            errors.append(f"TF_NO_FRAME_ID: Ignoring transform with child_frame_id \"{child}\" "
                          f"from authority \"{authority}\" because frame_id not set")
        if np.isnan(t).any() or np.isnan(q).any():
            errors.append(f"TF_NAN_INPUT: Ignoring transform for child_frame_id \"{child}\" from "
                          f"authority \"{authority}\" because of a nan value in the transform "
                          f"{tuple(t)} {tuple(q)}")
        elif not abs(float(q @ q) - 1.0) < QUATERNION_NORMALIZATION_TOLERANCE:
            errors.append(f"TF_DENORMALIZED_QUATERNION: Ignoring transform for child_frame_id "
                          f"\"{child}\" from authority \"{authority}\" because of an invalid "
                          f"quaternion in the transform {tuple(q)}")
        if errors:
            for e in errors:
                _log_error(e)
            return False
        n = float(np.linalg.norm(q))
        with self._cond:
            link = self._links.get(child)
            if link is None or link.static != static or link.parent != parent:
                link = _Link(parent, static)
                self._links[child] = link
            link.insert(_to_ns(msg.header.stamp), _Tf(t, q / n), self._cache_ns)
            self._cond.notify_all()
        return True

    def clear(self) -> None:
        """Forget every transform."""
        with self._cond:
            self._links.clear()

    # --- reading ------------------------------------------------------------------------
    def all_frames_as_string(self) -> str:
        with self._cond:
            return "\n".join(f"Frame {c} exists with parent {l.parent}."
                             for c, l in sorted(self._links.items()))

    def _path_to_root(self, frame: str) -> list[str]:
        path = [frame]
        while path[-1] in self._links:
            path.append(self._links[path[-1]].parent)
            if len(path) > 1000:
                raise ConnectivityException(f"tf tree has a loop through {frame!r}")
        return path

    def _frame_exists(self, f: str) -> bool:
        return f in self._links or any(l.parent == f for l in self._links.values())

    def _compute(self, target: str, source: str, stamp: int) -> tuple[_Tf, int]:
        target, source = target.lstrip("/"), source.lstrip("/")
        for f in (target, source):
            if not self._frame_exists(f):
                raise LookupException(f'"{f}" passed to lookupTransform argument '
                                      f'{"target" if f == target else "source"}_frame does not '
                                      "exist. ")
        if target == source:
            return _Tf.identity(), stamp
        up_s, up_t = self._path_to_root(source), self._path_to_root(target)
        common = next((f for f in up_s if f in set(up_t)), None)
        if common is None:
            raise ConnectivityException(
                f"Could not find a connection between '{target}' and '{source}' because they "
                "are not part of the same tree. Tf has two or more unconnected trees.")
        chain_s = up_s[: up_s.index(common)]
        chain_t = up_t[: up_t.index(common)]
        if stamp == 0:
            dyn = [self._links[c].latest() for c in chain_s + chain_t if not self._links[c].static]
            stamp = min(dyn) if dyn else 0
        common_T_source = _Tf.identity()
        for c in chain_s:
            common_T_source = self._links[c].at(stamp, c) * common_T_source
        common_T_target = _Tf.identity()
        for c in chain_t:
            common_T_target = self._links[c].at(stamp, c) * common_T_target
        return common_T_target.inverse() * common_T_source, stamp

    def can_transform(self, target_frame: str, source_frame: str, time: Any,
                      timeout: Any = None, return_debug_tuple: bool = False) -> Any:
        """Whether :meth:`lookup_transform` would succeed (waiting up to ``timeout``)."""
        try:
            self._wait_compute(target_frame, source_frame, _to_ns(time), _to_ns(timeout))
            ok, err = True, ""
        except TransformException as exc:
            ok, err = False, str(exc)
        return (ok, err) if return_debug_tuple else ok

    def _wait_compute(self, target: str, source: str, stamp: int, timeout_ns: int) -> tuple[_Tf, int]:
        deadline = _time.monotonic() + max(timeout_ns, 0) * 1e-9
        with self._cond:
            while True:
                try:
                    return self._compute(target, source, stamp)
                except TransformException:
                    remaining = deadline - _time.monotonic()
                    if remaining <= 0:
                        raise
                    self._cond.wait(timeout=min(remaining, 0.05))

    def lookup_transform(self, target_frame: str, source_frame: str, time: Any,
                         timeout: Any = None) -> Any:
        """``geometry_msgs/TransformStamped``: pose of ``source_frame`` in ``target_frame``."""
        from geometry_msgs.msg import TransformStamped

        tf, stamp = self._wait_compute(target_frame, source_frame, _to_ns(time), _to_ns(timeout))
        msg = TransformStamped()
        msg.header.frame_id = target_frame
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
        msg.child_frame_id = source_frame
        msg.transform.translation.x, msg.transform.translation.y, msg.transform.translation.z = (
            float(v) for v in tf.t)
        (msg.transform.rotation.x, msg.transform.rotation.y, msg.transform.rotation.z,
         msg.transform.rotation.w) = (float(v) for v in tf.q)
        return msg


DEFAULT_TF_TOPIC = "/tf"
DEFAULT_STATIC_TF_TOPIC = "/tf_static"


class TransformListener:
    """Subscribes to /tf and latched /tf_static (in its own reentrant callback group, so a
    lookup waiting in another callback still gets data) and feeds a :class:`Buffer`."""

    def __init__(self, buffer: Buffer, node: Any, *, spin_thread: bool = False,
                 qos: Any = None, static_qos: Any = None, tf_topic: str = DEFAULT_TF_TOPIC,
                 tf_static_topic: str = DEFAULT_STATIC_TF_TOPIC) -> None:
        from rclpy.callback_groups import ReentrantCallbackGroup
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile
        from tf2_msgs.msg import TFMessage

        if qos is None:
            qos = QoSProfile(depth=100, durability=DurabilityPolicy.VOLATILE,
                             history=HistoryPolicy.KEEP_LAST)
        if static_qos is None:
            static_qos = QoSProfile(depth=100, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                                    history=HistoryPolicy.KEEP_LAST)
        self.buffer = buffer
        self.node = node
        self.group = ReentrantCallbackGroup()
        self.tf_sub = node.create_subscription(TFMessage, tf_topic, self.callback, qos,
                                               callback_group=self.group)
        self.tf_static_sub = node.create_subscription(TFMessage, tf_static_topic,
                                                      self.static_callback, static_qos,
                                                      callback_group=self.group)
        if spin_thread:
            from rclpy.executors import SingleThreadedExecutor

            self.executor = SingleThreadedExecutor()

            def run_func() -> None:
                self.executor.add_node(self.node)
                self.executor.spin()
                self.executor.remove_node(self.node)

            self.dedicated_listener_thread = threading.Thread(target=run_func, daemon=True)
            self.dedicated_listener_thread.start()

    def callback(self, data: Any) -> None:
        for t in data.transforms:
            self.buffer.set_transform(t, "default_authority")

    def static_callback(self, data: Any) -> None:
        for t in data.transforms:
            self.buffer.set_transform_static(t, "default_authority")

    def unregister(self) -> None:
        self.node.destroy_subscription(self.tf_sub)
        self.node.destroy_subscription(self.tf_static_sub)


class TransformBroadcaster:
    """Publishes transforms on /tf."""

    def __init__(self, node: Any, qos: Any = None) -> None:
        from rclpy.qos import QoSProfile
        from tf2_msgs.msg import TFMessage

        self.pub_tf = node.create_publisher(TFMessage, "/tf", qos or QoSProfile(depth=100))

    def sendTransform(self, transform: Any) -> None:  # noqa: N802 (tf2_ros API name)
        from tf2_msgs.msg import TFMessage

        transforms = list(transform) if isinstance(transform, (list, tuple)) else [transform]
        self.pub_tf.publish(TFMessage(transforms=transforms))


class StaticTransformBroadcaster:
    """Publishes latched transforms on /tf_static (keeps every frame sent so far)."""

    def __init__(self, node: Any, qos: Any = None) -> None:
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile
        from tf2_msgs.msg import TFMessage

        qos = qos or QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                                history=HistoryPolicy.KEEP_LAST)
        self.pub_tf = node.create_publisher(TFMessage, "/tf_static", qos)
        self._net: dict[str, Any] = {}

    def sendTransform(self, transform: Any) -> None:  # noqa: N802 (tf2_ros API name)
        from tf2_msgs.msg import TFMessage

        for t in list(transform) if isinstance(transform, (list, tuple)) else [transform]:
            self._net[t.child_frame_id] = t
        self.pub_tf.publish(TFMessage(transforms=list(self._net.values())))
