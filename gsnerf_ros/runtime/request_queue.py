"""The bounded, prioritised queue of render requests in front of the device (ROS-free).

One request runs at a time; at most ``capacity`` wait. A request that finds the queue full is
refused at once (``busy: N queued``), never left waiting. Waiting requests are served by
priority (lower first: the service before the action before the topic), then in arrival order.
A request whose deadline passes while it waits leaves the queue with a refusal that says so.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from contextlib import contextmanager
from typing import Iterator

from gsnerf_ros.runtime.requests import RequestError

__all__ = ["RequestQueue", "PRIORITY_SERVICE", "PRIORITY_ACTION", "PRIORITY_TOPIC"]

PRIORITY_SERVICE = 0
"""``~/render_view`` calls: a client is waiting for this answer."""
PRIORITY_ACTION = 1
"""Views of a ``~/render_views`` goal."""
PRIORITY_TOPIC = 2
"""``~/render_pose`` messages: fire-and-forget, served last."""


class RequestQueue:
    """Admission and ordering of requests for one device (thread-safe).

    Use ``with queue.slot(priority, timeout_s): ...`` around the work; it raises
    :class:`RequestError` when the queue is full or the wait passes ``timeout_s`` seconds.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"request queue capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._cond = threading.Condition()
        self._waiting: list[tuple[int, int]] = []       # heap of (priority, sequence)
        self._seq = itertools.count()
        self._running = False
        self.refused_busy = 0
        self.refused_deadline = 0

    @property
    def waiting(self) -> int:
        """Requests waiting now (not counting the running one)."""
        with self._cond:
            return len(self._waiting)

    @property
    def running(self) -> bool:
        with self._cond:
            return self._running

    @contextmanager
    def slot(self, priority: int, timeout_s: float) -> Iterator[float]:
        """Wait for the device; yields the seconds waited. Refuses when full or out of time."""
        t0 = time.monotonic()
        deadline = t0 + timeout_s
        with self._cond:
            if len(self._waiting) >= self.capacity:
                self.refused_busy += 1
                raise RequestError(
                    f"busy: {len(self._waiting)} queued and one rendering (render.queue_size="
                    f"{self.capacity}); retry later, or raise render.queue_size")
            me = (priority, next(self._seq))
            heapq.heappush(self._waiting, me)
            try:
                while self._running or self._waiting[0] != me:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        self.refused_deadline += 1
                        raise RequestError(
                            f"deadline passed: waited {time.monotonic() - t0:.1f} s in the render "
                            f"queue (render.request_timeout={timeout_s:g} s); the node is "
                            "overloaded, retry later or raise render.request_timeout")
                    self._cond.wait(remaining)
            except BaseException:
                self._waiting.remove(me)
                heapq.heapify(self._waiting)
                self._cond.notify_all()
                raise
            heapq.heappop(self._waiting)
            self._running = True
        try:
            yield time.monotonic() - t0
        finally:
            with self._cond:
                self._running = False
                self._cond.notify_all()
