"""``gsnerf_lifecycle_node``: the render node as a managed (lifecycle) node.

Same topics, services and parameters as :mod:`~gsnerf_ros.ros.node`, driven by
``ros2 lifecycle set /gsnerf <transition>`` (the ``~/change_state`` and ``~/get_state``
services of lifecycle_msgs):

- unconfigured: parameters may be set (``ros2 param set``); they are read at configure;
- configure: read the parameters, load the model (``model.*``), create the buffer, TF,
  subscriptions, publishers and the render service/action; frames are ignored and requests
  refused until activated. Parameters other than the live ones are then refused, with the reason;
- activate: start the keyframe encoder, accept frames and requests, enable the publishers
  (every output is a lifecycle publisher: nothing is published while inactive) and send the
  latched class map and legend;
- deactivate: stop, drop the keyframes and their cached encodings, free device memory (the
  model stays loaded; renders are refused with the reason);
- cleanup / shutdown: destroy the topics and services and drop the model (device memory freed);
  after cleanup the parameters may be set again, so cleanup -> set ``model.checkpoint`` ->
  configure loads another model.
"""

from __future__ import annotations

from typing import Any

from lifecycle_msgs.msg import State
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from gsnerf_ros.ros.node import GSNeRFCore, executor_threads
from gsnerf_ros.ros.param_declaration import read_node_parameters
from gsnerf_ros.ros.process import spin_node
from gsnerf_ros.runtime.engine import Renderer

__all__ = ["GSNeRFLifecycleNode", "main"]


class GSNeRFLifecycleNode(GSNeRFCore, LifecycleNode):
    """The managed render node. ``renderer`` replaces the checkpoint at each configure."""

    def __init__(self, renderer: Renderer | None = None, **kwargs: Any) -> None:
        LifecycleNode.__init__(self, "gsnerf", **kwargs)
        self._renderer_override = renderer
        self._outputs_managed = False
        self._init_core(managed=True)

    def lifecycle_state(self) -> tuple[int, str]:
        """(id, label) of the current lifecycle state (lifecycle_msgs/State ids)."""
        state_id, label = self._state_machine.current_state
        return int(state_id), str(label)

    def _parameters_fixed_because(self) -> str | None:
        state_id, label = self.lifecycle_state()
        if state_id == State.PRIMARY_STATE_UNCONFIGURED:
            return None
        return (f"the node is {label}: they are read at configure; deactivate and clean up "
                "the node (ros2 lifecycle set /gsnerf cleanup), set them, then configure")

    def create_publisher(self, *args: Any, **kwargs: Any) -> Any:
        """While the node configures, every publisher it creates (outputs, TF, diagnostics) is
        a lifecycle publisher, enabled only while active; rclpy's own (parameter events) are
        not."""
        if getattr(self, "_outputs_managed", False):     # False in LifecycleNode.__init__
            return self.create_lifecycle_publisher(*args, **kwargs)
        return super().create_publisher(*args, **kwargs)

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.p = read_node_parameters(self)
            self._load_renderer(self._renderer_override)
        except (FileNotFoundError, ValueError, RuntimeError) as exc:
            self.get_logger().error(f"configure failed: {exc}")
            return TransitionCallbackReturn.FAILURE
        self._outputs_managed = True
        try:
            self._build()
        finally:
            self._outputs_managed = False
        self.get_logger().info(f"configured: model {self.model_name} loaded")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        ret = super().on_activate(state)            # enables the lifecycle publishers
        if ret == TransitionCallbackReturn.SUCCESS:
            self._start()
        return ret

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_work()
        self.get_logger().info("deactivated: keyframes dropped, device memory freed")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._teardown()
        self.get_logger().info("cleaned up: model unloaded")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self._active:           # as deactivate does: callbacks still running then publish
            self._stop_work()      # into disabled publishers, never into destroyed ones
            super().on_deactivate(state)
        if self._entities:
            self._teardown()
        return TransitionCallbackReturn.SUCCESS


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``gsnerf_lifecycle_node``; starts unconfigured, exits 0 on SIGINT/SIGTERM."""
    return spin_node(GSNeRFLifecycleNode, lambda n: executor_threads(n.p),
                     "gsnerf_lifecycle_node", argv)


if __name__ == "__main__":
    raise SystemExit(main())
