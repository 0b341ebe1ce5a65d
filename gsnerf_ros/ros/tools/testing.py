"""Helpers for real-rclpy tests and scripts: a client node spun in a background thread, bounded
waits, child processes that are always stopped, and a tiny untrained checkpoint."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable

import rclpy
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node

ROOT = Path(__file__).resolve().parents[3]


class SpinningNode:
    """A node in its own context, spun by a MultiThreadedExecutor in a daemon thread."""

    def __init__(self, name: str) -> None:
        self.context = rclpy.Context()
        self.context.init()
        self.node = Node(name, context=self.context)
        self.executor = MultiThreadedExecutor(num_threads=2, context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # noqa: BLE001 - shutdown races end the thread
            pass

    def call(self, client: Any, request: Any, timeout: float = 120.0) -> Any:
        assert client.wait_for_service(timeout_sec=60.0), f"service {client.srv_name} not available"
        fut = client.call_async(request)
        wait_until(fut.done, timeout, f"response of {client.srv_name}")
        return fut.result()

    def close(self) -> None:
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


def make_tiny_checkpoint(path: Path, num_classes: int = 17) -> Path:
    """An untrained tiny GSNeRF checkpoint with the procedural classes (structure tests)."""
    import torch

    from gsnerf_ros.data.classes import PROCEDURAL_CLASSES, PROCEDURAL_PALETTE
    from gsnerf_ros.model import GSNeRF, GSNeRFConfig

    torch.manual_seed(0)
    model = GSNeRF(GSNeRFConfig.tiny(num_classes), class_names=PROCEDURAL_CLASSES,
                   palette=PROCEDURAL_PALETTE)
    return model.save_checkpoint(path)
