"""The background thread that encodes the keyframe buffer's pending keyframes (ROS-free).

Which keyframe is encoded next, against which neighbours, and when a first encoding is
upgraded: :mod:`gsnerf_ros.runtime.keyframes` (``KeyframeBuffer.next_pending``).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from gsnerf_ros.runtime.keyframes import Keyframe, KeyframeBuffer

__all__ = ["EncodingWorker"]


@dataclass
class EncodingWorker:
    """Encodes pending keyframes in a background thread.

    ``encode_fn(keyframe, neighbours) -> encoding`` runs under ``device_lock`` (the same lock the
    renders take, so the device does one thing at a time). Errors are reported through
    ``on_error`` and the keyframe is dropped from the pending set by marking it failed (a failed
    upgrade keeps the earlier encoding). ``min_neighbors`` (None = ``num_neighbors``): the
    neighbours a first encoding needs; keyframes encoded against fewer than ``num_neighbors``
    are upgraded later (module docstring).
    """

    buffer: KeyframeBuffer
    encode_fn: Callable[[Keyframe, list[Keyframe]], Any]
    num_neighbors: int
    device_lock: threading.Lock = field(default_factory=threading.Lock)
    on_encoded: Callable[[Keyframe], None] | None = None
    on_error: Callable[[Keyframe, Exception], None] | None = None
    min_neighbors: int | None = None
    depth_fn: Callable[[Any], float | None] | None = None
    """Median depth (m) of an encoding, stored as the keyframe's ``scene_depth`` (the
    triangulation neighbour rule's scene depth); None: not known."""

    def __post_init__(self) -> None:
        if self.min_neighbors is None or self.min_neighbors > self.num_neighbors:
            self.min_neighbors = self.num_neighbors
        if self.min_neighbors < 0:
            raise ValueError(f"min_neighbors must be >= 0, got {self.min_neighbors}")
        self.buffer.encode_min_neighbors = self.min_neighbors
        self.buffer.encode_want_neighbors = self.num_neighbors
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="gsnerf-encoder", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.buffer.notify()
        if self._thread is not None:
            self._thread.join(timeout)

    def step(self) -> bool:
        """Encode one pending keyframe if one is ready; True when something was encoded."""
        job = self.buffer.next_pending(int(self.min_neighbors or 0), self.num_neighbors)
        if job is None:
            return False
        kf, nbrs = job
        t0 = time.perf_counter()
        try:
            with self.device_lock:
                enc = self.encode_fn(kf, nbrs)
        except Exception as exc:  # noqa: BLE001 - reported, the worker keeps running
            self.buffer.mark_failed(kf.id, neighbors=len(nbrs))
            if self.on_error is not None:
                self.on_error(kf, exc)
            return False
        ms = (time.perf_counter() - t0) * 1e3
        depth = self.depth_fn(enc) if self.depth_fn is not None else None
        if (self.buffer.set_encoding(kf.id, enc, ms, len(nbrs), depth)
                and self.on_encoded is not None):
            self.on_encoded(kf)
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self.step():
                v = self.buffer.version
                self.buffer.wait_for(lambda b: b.version != v or self._stop.is_set(), 0.5)
