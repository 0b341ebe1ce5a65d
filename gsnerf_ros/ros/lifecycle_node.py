"""``gsnerf_lifecycle_node``: the render node as a managed (lifecycle) node.

Same topics, services and parameters as :mod:`~gsnerf_ros.ros.node`, driven by
``ros2 lifecycle set /gsnerf <transition>``:

- configure: load the model (``model.*``), create the buffer, TF, subscriptions, publishers and
  the render service/action; frames are ignored and requests refused until activated;
- activate: start the keyframe encoder, accept frames and requests;
- deactivate: stop, drop the keyframes and their cached encodings, free device memory (the
  model stays loaded; renders are refused with the reason);
- cleanup / shutdown: destroy the topics and services and drop the model (device memory freed).
"""

from __future__ import annotations

from typing import Any

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from gsnerf_ros.ros.node import GSNeRFCore, executor_threads
from gsnerf_ros.ros.process import spin_node
from gsnerf_ros.runtime.engine import Renderer

__all__ = ["GSNeRFLifecycleNode", "main"]


class GSNeRFLifecycleNode(GSNeRFCore, LifecycleNode):
    """The managed render node. ``renderer`` replaces the checkpoint at each configure."""

    def __init__(self, renderer: Renderer | None = None, **kwargs: Any) -> None:
        LifecycleNode.__init__(self, "gsnerf", **kwargs)
        self._renderer_override = renderer
        self._init_core()

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._load_renderer(self._renderer_override)
        except (FileNotFoundError, ValueError, RuntimeError) as exc:
            self.get_logger().error(f"configure failed: {exc}")
            return TransitionCallbackReturn.FAILURE
        self._build()
        self.get_logger().info(f"configured: model {self.model_name} loaded")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._start()
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_work()
        self.get_logger().info("deactivated: keyframes dropped, device memory freed")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._teardown()
        self.get_logger().info("cleaned up: model unloaded")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self._active:
            self._stop_work()
        if self._entities:
            self._teardown()
        return TransitionCallbackReturn.SUCCESS


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``gsnerf_lifecycle_node``; starts unconfigured, exits 0 on SIGINT/SIGTERM."""
    return spin_node(GSNeRFLifecycleNode, lambda n: executor_threads(n.p),
                     "gsnerf_lifecycle_node", argv)


if __name__ == "__main__":
    raise SystemExit(main())
