"""In-tree equivalent of ROS 2 ``message_filters`` (Subscriber, TimeSynchronizer,
ApproximateTimeSynchronizer), used only where the real package is not installed.

Same API::

    image_sub = Subscriber(node, Image, "image", qos_profile=qos_profile_sensor_data)
    info_sub = Subscriber(node, CameraInfo, "camera_info", qos_profile=qos_profile_sensor_data)
    sync = ApproximateTimeSynchronizer([image_sub, info_sub], queue_size=10, slop=0.05)
    sync.registerCallback(callback)          # callback(image, camera_info)

The approximate policy is the one of the reference Python implementation (ros2/message_filters
``src/message_filters/__init__.py``): each arriving message is matched against the other queues'
messages within ``slop`` seconds of it (``<= slop``), closest first, and the first combination
whose whole spread is strictly below ``slop`` (``< slop``) is emitted and removed.
``allow_headerless`` stamps messages without a header with the current ROS time.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any, Callable

__all__ = ["SimpleFilter", "Subscriber", "Cache", "TimeSynchronizer",
           "ApproximateTimeSynchronizer"]


def _stamp_ns(msg: Any) -> int:
    st = msg.header.stamp
    return int(st.sec) * 1_000_000_000 + int(st.nanosec)


class SimpleFilter:
    """A message source with registered callbacks."""

    def __init__(self) -> None:
        self.callbacks: dict[int, tuple[Callable[..., Any], tuple[Any, ...]]] = {}

    def registerCallback(self, cb: Callable[..., Any], *args: Any) -> int:  # noqa: N802
        """Call ``cb(*msgs, *args)`` for every output; returns a handle."""
        conn = len(self.callbacks)
        self.callbacks[conn] = (cb, args)
        return conn

    def signalMessage(self, *msg: Any) -> None:  # noqa: N802
        for cb, args in list(self.callbacks.values()):
            cb(*(msg + args))


class Subscriber(SimpleFilter):
    """Wraps ``node.create_subscription``; extra keyword arguments (``callback_group``...) pass on."""

    def __init__(self, node: Any, msg_type: Any, topic: str, qos_profile: Any = 10,
                 **kwargs: Any) -> None:
        super().__init__()
        self.node = node
        self.topic = topic
        self.sub = node.create_subscription(msg_type, topic, self.callback, qos_profile, **kwargs)

    def callback(self, msg: Any) -> None:
        self.signalMessage(msg)

    def getTopic(self) -> str:  # noqa: N802
        return self.topic

    def __getattr__(self, key: str) -> Any:
        return getattr(self.sub, key)


class Cache(SimpleFilter):
    """Keeps the last ``cache_size`` messages of its input."""

    def __init__(self, f: SimpleFilter, cache_size: int = 1) -> None:
        super().__init__()
        self.cache_size = cache_size
        self.cache_msgs: list[Any] = []
        self.lock = threading.Lock()
        f.registerCallback(self.add)

    def add(self, msg: Any) -> None:
        with self.lock:
            self.cache_msgs.append(msg)
            del self.cache_msgs[:-self.cache_size]
        self.signalMessage(msg)

    def getLast(self) -> Any:  # noqa: N802
        with self.lock:
            return self.cache_msgs[-1] if self.cache_msgs else None


class TimeSynchronizer(SimpleFilter):
    """Emits sets of messages with exactly equal header stamps."""

    def __init__(self, fs: list[SimpleFilter], queue_size: int) -> None:
        super().__init__()
        if queue_size < 1:
            raise ValueError("queue_size must be >= 1")
        self.queue_size = queue_size
        self.lock = threading.Lock()
        self.queues: list[dict[int, Any]] = [{} for _ in fs]
        self.input_connections = [f.registerCallback(self.add, q, i)
                                  for i, (f, q) in enumerate(zip(fs, self.queues))]

    def add(self, msg: Any, my_queue: dict[int, Any], my_queue_index: int | None = None) -> None:
        out = None
        with self.lock:
            my_queue[_stamp_ns(msg)] = msg
            while len(my_queue) > self.queue_size:
                del my_queue[min(my_queue)]
            common = set.intersection(*[set(q) for q in self.queues])
            for t in sorted(common):
                out = [q[t] for q in self.queues]
                for q in self.queues:
                    for old in [s for s in q if s <= t]:
                        del q[old]
                break
        if out is not None:
            self.signalMessage(*out)


class ApproximateTimeSynchronizer(TimeSynchronizer):
    """Emits sets whose header stamps lie within ``slop`` seconds of each other."""

    def __init__(self, fs: list[SimpleFilter], queue_size: int, slop: float,
                 allow_headerless: bool = False) -> None:
        super().__init__(fs, queue_size)
        if slop < 0:
            raise ValueError("slop must be >= 0 seconds")
        self.allow_headerless = allow_headerless
        self.slop_ns = int(round(slop * 1e9))

    def add(self, msg: Any, my_queue: dict[int, Any], my_queue_index: int | None = None) -> None:
        if not hasattr(msg, "header") or not hasattr(msg.header, "stamp"):
            if not self.allow_headerless:
                import rclpy.logging

                rclpy.logging.get_logger("message_filters_approx").warning(
                    "can not use message filters messages without timestamp infomation when "
                    '"allow_headerless" is disabled.')
                return
            from rclpy.clock import ROSClock

            stamp = ROSClock().now().nanoseconds
        else:
            stamp = _stamp_ns(msg)
        out = None
        with self.lock:
            my_queue[stamp] = msg
            while len(my_queue) > self.queue_size:
                del my_queue[min(my_queue)]
            if my_queue_index is None:
                search = self.queues
            else:
                search = self.queues[:my_queue_index] + self.queues[my_queue_index + 1:]
            candidates: list[list[int]] = []
            for q in search:
                near = sorted((abs(s - stamp), s) for s in q if abs(s - stamp) <= self.slop_ns)
                if not near:
                    return
                candidates.append([s for _, s in near])
            for combo in itertools.product(*candidates):
                vv = list(combo)
                if my_queue_index is None:
                    vv.append(stamp)
                else:
                    vv.insert(my_queue_index, stamp)
                qt = list(zip(self.queues, vv))
                if max(vv) - min(vv) < self.slop_ns and all(t in q for q, t in qt):
                    out = [q[t] for q, t in qt]
                    for q, t in qt:
                        del q[t]
                    break
        if out is not None:
            self.signalMessage(*out)
