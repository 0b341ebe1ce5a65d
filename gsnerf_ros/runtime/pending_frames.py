"""Camera frames waiting for their pose, and time-jump detection (ROS-free).

The node never sleeps in a callback waiting for TF (the model is isaac_ros_nvblox): a frame
whose pose is not available yet waits in :class:`PendingFrames`, a bounded queue that is retried
whenever a frame arrives and on a timer; a frame still without a pose ``max_wait`` seconds after
it arrived is dropped with the last reason. :class:`TimeJumpDetector` notices input stamps that
go backwards and stay there (a bag replayed in a loop, a simulator reset) so the node can reset
its buffer and TF cache once instead of dropping every later frame as an extrapolation; a single
stale frame is only dropped.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterator, TypeVar

__all__ = ["PendingFrames", "TimeJumpDetector", "Waiting"]

T = TypeVar("T")


@dataclass
class Waiting(Generic[T]):
    """A frame (``item``) waiting since ``arrived`` (``time.monotonic()``) with the last reason."""

    item: T
    arrived: float = field(default_factory=time.monotonic)
    reason: str = ""


class PendingFrames(Generic[T]):
    """Bounded FIFO of frames waiting for a pose (thread-safe).

    ``push`` adds a frame (dropping the oldest when ``capacity`` wait, reported through
    ``on_drop``); :meth:`ready` tries ``resolve(item)`` on each, yields ``(item, pose)`` for the
    ones that resolve and drops the ones older than ``max_wait`` s. ``resolve`` raises
    ``not_ready`` (an exception type) while the pose is missing.
    """

    def __init__(self, capacity: int, max_wait: float, not_ready: type[Exception],
                 on_drop: Callable[[T, str], None]) -> None:
        if capacity < 1:
            raise ValueError(f"pending frame capacity must be >= 1, got {capacity}")
        self.capacity, self.max_wait = capacity, max(0.0, max_wait)
        self.not_ready, self.on_drop = not_ready, on_drop
        self._q: collections.deque[Waiting[T]] = collections.deque()
        self._lock = threading.Lock()
        self.dropped = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._q)

    def push(self, item: T) -> None:
        with self._lock:
            self._q.append(Waiting(item))
            over = [self._q.popleft() for _ in range(len(self._q) - self.capacity)]
        for w in over:
            self._drop(w, f"more than {self.capacity} frames waited for their pose "
                          f"(last reason: {w.reason or 'not tried yet'})")

    def clear(self) -> int:
        with self._lock:
            n = len(self._q)
            self._q.clear()
            return n

    def ready(self, resolve: Callable[[T], Any]) -> Iterator[tuple[T, Any]]:
        """Yield ``(item, resolve(item))`` for each frame whose pose is available now, oldest
        first; drop the frames that waited longer than ``max_wait``."""
        with self._lock:
            waiting = list(self._q)
        now = time.monotonic()
        for w in waiting:
            try:
                pose = resolve(w.item)
            except self.not_ready as exc:
                w.reason = str(exc)
                if now - w.arrived >= self.max_wait:
                    self._remove(w)
                    self._drop(w, w.reason)
                continue
            self._remove(w)
            yield w.item, pose

    def _remove(self, w: Waiting[T]) -> None:
        with self._lock:
            try:
                self._q.remove(w)
            except ValueError:
                pass

    def _drop(self, w: Waiting[T], reason: str) -> None:
        self.dropped += 1
        self.on_drop(w.item, reason)


class TimeJumpDetector:
    """Notices input stamps (seconds) that go back more than ``threshold`` seconds and stay
    back: ``confirm`` frames in a row behind the latest stamp (one stale or late frame is not a
    time jump; the frames of a looped bag are)."""

    def __init__(self, threshold: float, confirm: int = 3) -> None:
        if confirm < 1:
            raise ValueError(f"confirm must be >= 1, got {confirm}")
        self.threshold, self.confirm = threshold, confirm
        self.latest: float | None = None
        self.jumps = 0
        self._behind = 0

    def check(self, stamp: float) -> float | None:
        """Record ``stamp``; returns how far the stamps went back (s) when this frame confirms
        a time jump, else None. After a jump the new stamps are the reference."""
        last = self.latest
        if last is not None and last - stamp > self.threshold:
            self._behind += 1
            if self._behind < self.confirm:
                return None
            self.latest, self._behind = stamp, 0
            self.jumps += 1
            return last - stamp
        self._behind = 0
        self.latest = stamp if last is None else max(last, stamp)
        return None
