"""Clients of the node's render service and action that never lose an answer.

A ROS 2 service is a request topic and a response topic. rmw_fastrtps (DDS's basic service
mapping) delivers every response of a service to every client of that service; each client's
rmw layer discards the others' answers only when its executor takes them, one at a time. With
the default services QoS (reliable, KEEP_LAST 10) a client's response reader therefore holds
the last 10 answers of *all* clients: when more than 10 answers for other clients arrive before
its executor takes its own (a burst of ``busy`` refusals, an executor busy with other callbacks,
such as a planner composed into the node's own executor), its answer is replaced in the reader's
history and its future never completes. The server sent it; DDS, being KEEP_LAST, dropped it.

Measured here (Kilted, rmw_fastrtps_cpp): 50 clients, one call each, default QoS: 8-11 of 50
answers lost per burst with the clients on the server's executor, 29-30 of 50 with the clients in
their own participant when the answers came at once; none with ``RENDER_CLIENT_QOS`` (KEEP_ALL:
the reader keeps every answer until it is taken, and reliable delivery holds the rest back).
The server's own QoS (``render.request_qos_depth``) cannot fix this: the history that overflows
is the client's.

Use :func:`create_render_client` / :func:`create_render_views_client` (or pass
:data:`RENDER_CLIENT_QOS` as the client's ``qos_profile``) for any client that may call while
other clients do: a planner, in its own process or composed into the node's executor.
"""

from __future__ import annotations

from typing import Any

from rclpy.action import ActionClient
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from gsnerf_ros.action import RenderViews
from gsnerf_ros.srv import RenderView

__all__ = ["RENDER_CLIENT_QOS", "create_render_client", "create_render_views_client"]

RENDER_CLIENT_QOS = QoSProfile(history=HistoryPolicy.KEEP_ALL, depth=1,
                               reliability=ReliabilityPolicy.RELIABLE,
                               durability=DurabilityPolicy.VOLATILE)
"""QoS of a render client: reliable, keep every answer until the executor takes it."""


def create_render_client(node: Any, service: str = "/gsnerf/render_view",
                         callback_group: Any = None) -> Any:
    """A ``RenderView`` client of ``node`` with :data:`RENDER_CLIENT_QOS`."""
    return node.create_client(RenderView, service, qos_profile=RENDER_CLIENT_QOS,
                              callback_group=callback_group)


def create_render_views_client(node: Any, action: str = "/gsnerf/render_views",
                               callback_group: Any = None) -> ActionClient:
    """A ``RenderViews`` action client of ``node`` whose goal, result and cancel services use
    :data:`RENDER_CLIENT_QOS` (the result is a service answer like any other)."""
    return ActionClient(node, RenderViews, action, callback_group=callback_group,
                        goal_service_qos_profile=RENDER_CLIENT_QOS,
                        result_service_qos_profile=RENDER_CLIENT_QOS,
                        cancel_service_qos_profile=RENDER_CLIENT_QOS)
