"""Real-rclpy test helpers: the node in this process (with :class:`~helpers.fakes.FakeRenderer`
by default) and a peer, a client node spun in a background thread, bounded waits, calls resent
until answered, and child processes that are always stopped. rclpy is imported where it is used."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable

from helpers.fakes import FakeRenderer

ROOT = Path(__file__).resolve().parents[2]


def spin_until_closed(executor: Any, closing: threading.Event) -> None:
    """Spin ``executor`` until it is shut down (a daemon thread's target).

    Tearing down a context while the executor is still waiting can make ``spin`` raise
    (rclpy's ``InvalidHandle`` on a destroyed wait set); that race ends the thread quietly once
    ``closing`` is set. Any other error, while the test is still running, is raised, so a failing
    callback is not hidden.
    """
    try:
        executor.spin()
    except Exception:
        if not closing.is_set():
            raise


class InProcessNode:
    """``node_class`` (default ``GSNeRFNode``; with ``renderer``, default a
    :class:`FakeRenderer`; ``checkpoint=True``: none, the node loads ``model.checkpoint``) and
    a ``peer`` node in one fresh context, spun by a MultiThreadedExecutor in a daemon thread.
    Context manager. ``node_kwargs`` go to the node's constructor (``namespace``, ``cli_args``
    with remappings...)."""

    def __init__(self, renderer: Any = None, threads: int | None = None,
                 node_class: Any = None, checkpoint: bool = False,
                 node_kwargs: dict[str, Any] | None = None, **params: Any) -> None:
        import rclpy
        from rclpy.executors import MultiThreadedExecutor
        from rclpy.node import Node
        from rclpy.parameter import Parameter

        from gsnerf_ros.ros.node import GSNeRFNode, executor_threads

        self.context = rclpy.Context()
        self.context.init()
        self.renderer = None if checkpoint else renderer if renderer is not None else FakeRenderer()
        self.node = (node_class or GSNeRFNode)(
            renderer=self.renderer, context=self.context,
            parameter_overrides=[Parameter(k, value=v) for k, v in params.items()],
            **(node_kwargs or {}))
        self.peer = Node("peer", context=self.context)
        self.executor = MultiThreadedExecutor(
            num_threads=threads or executor_threads(self.node.p), context=self.context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.peer)
        self._closing = threading.Event()
        self._thread = threading.Thread(target=spin_until_closed,
                                        args=(self.executor, self._closing), daemon=True)
        self._thread.start()

    def __enter__(self) -> "InProcessNode":
        return self

    def __exit__(self, *exc: Any) -> None:
        self._closing.set()
        self.node.close()                            # encoder off, requests refused
        self.executor.shutdown(timeout_sec=5.0)      # waits for running callbacks
        self._thread.join(5.0)
        self.node.destroy_node()
        self.peer.destroy_node()
        self.context.try_shutdown()

    def fill_buffer(self, n: int, spacing: float = 0.5, size: tuple[int, int] = (12, 16)) -> None:
        """Put ``n`` keyframes along x into the buffer and wait until they are encoded."""
        import torch

        h, w = size
        K = torch.tensor([[20.0, 0, (w - 1) / 2], [0, 20.0, (h - 1) / 2], [0, 0, 1]])
        for i in range(n):
            c2w = torch.eye(4)
            c2w[0, 3] = spacing * i
            self.node.buffer.add(torch.rand(3, h, w), K, c2w, float(i), "cam", force=True)
        self.node.buffer.notify()
        wait_until(lambda: self.node.buffer.num_encoded() >= n, 30, f"{n} encoded keyframes")


class SpinningNode:
    """A node in its own context, spun by a MultiThreadedExecutor in a daemon thread."""

    def __init__(self, name: str) -> None:
        import rclpy
        from rclpy.executors import MultiThreadedExecutor
        from rclpy.node import Node

        self.context = rclpy.Context()
        self.context.init()
        self.node = Node(name, context=self.context)
        self.executor = MultiThreadedExecutor(num_threads=2, context=self.context)
        self.executor.add_node(self.node)
        self._closing = threading.Event()
        self._thread = threading.Thread(target=spin_until_closed,
                                        args=(self.executor, self._closing), daemon=True)
        self._thread.start()

    def call(self, client: Any, request: Any, timeout: float = 120.0) -> Any:
        assert client.wait_for_service(timeout_sec=60.0), f"service {client.srv_name} not available"
        fut = client.call_async(request)
        wait_until(fut.done, timeout, f"response of {client.srv_name}")
        return fut.result()

    def close(self) -> None:
        self._closing.set()
        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        self.context.try_shutdown()
        self._thread.join(5.0)


def wait_until(cond: Callable[[], Any], timeout: float, what: str, period: float = 0.05) -> Any:
    """Poll ``cond`` until truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(period)


def call_until_answered(client: Any, request: Any, what: str, tries: int = 20,
                        per_try: float = 5.0) -> Any:
    """Send ``request`` until an answer comes back (at most ``tries`` sends); its result.

    A server may not yet have matched a new client's response reader when the client sees the
    service, and Fast DDS then drops that answer (rmw_fastrtps#467): only for calls that may be
    repeated (a render, a query), not for a lifecycle transition."""
    assert client.wait_for_service(timeout_sec=120.0), f"service {client.srv_name} not available"
    for _attempt in range(tries):
        fut = client.call_async(request)
        try:
            wait_until(fut.done, per_try, what)
            return fut.result()
        except AssertionError:
            client.remove_pending_request(fut)
    raise AssertionError(f"no answer of {client.srv_name} to {tries} sends ({what})")


def stop_process(p: subprocess.Popen, timeout: float = 15.0) -> int:
    """SIGINT, then SIGKILL after ``timeout``; returns the exit code."""
    if p.poll() is None:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
    return p.returncode


def render_request() -> Any:
    """A ``RenderView`` request in ``map`` at the identity pose for a 16x12 virtual camera
    (fx = fy = 20 px, principal point at the centre)."""
    from gsnerf_ros.srv import RenderView

    req = RenderView.Request()
    req.pose.header.frame_id = "map"
    req.pose.pose.orientation.w = 1.0
    req.camera_info.width, req.camera_info.height = 16, 12
    req.camera_info.k = [20.0, 0.0, 7.5, 0.0, 20.0, 5.5, 0.0, 0.0, 1.0]
    return req
