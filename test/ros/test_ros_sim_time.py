"""Stamps in simulated time (node in this process, fake renderer, real rclpy): with
``use_sim_time`` and a ``/clock`` publisher (a bag replay), a render request with a zero stamp is
answered with the node clock's time, and so are /diagnostics and the keyframe buffer topics:
never the wall clock."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from tf2_msgs.msg import TFMessage  # noqa: E402

from gsnerf_ros.msg import KeyframeBufferState  # noqa: E402
from gsnerf_ros.ros import convert  # noqa: E402
from helpers.ros_nodes import InProcessNode, wait_until
from gsnerf_ros.srv import RenderView  # noqa: E402

SIM_START = 1234.5
"""Seconds on the simulated clock at the start: far from the wall clock (~1.7e9 s)."""


def _in_sim_time(stamp: object, now: float) -> bool:
    t = convert.stamp_to_sec(stamp)
    return SIM_START <= t <= now + 1e-6


def test_zero_stamp_requests_and_topics_use_the_sim_clock() -> None:
    with InProcessNode(**{"use_sim_time": True, "render.min_keyframes": 2,
                          "publish.diagnostics_period": 0.1}) as run:
        node, peer = run.node, run.peer
        sim = [SIM_START]
        clock = peer.create_publisher(Clock, "/clock", 10)

        def tick() -> None:
            sim[0] += 0.05
            clock.publish(Clock(clock=convert.sec_to_stamp(sim[0])))

        peer.create_timer(0.02, tick)            # the peer's own clock is the wall clock
        wait_until(lambda: node.get_clock().now().nanoseconds * 1e-9 >= SIM_START, 10,
                   "the node to follow /clock")
        diags: list[DiagnosticArray] = []
        states: list[KeyframeBufferState] = []
        tf_stamps: list[object] = []
        peer.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 10)
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                             reliability=ReliabilityPolicy.RELIABLE)
        peer.create_subscription(KeyframeBufferState, "/gsnerf/keyframes", states.append, latched)
        peer.create_subscription(TFMessage, "/tf", lambda m: tf_stamps.extend(
            t.header.stamp for t in m.transforms), 10)
        run.fill_buffer(2)
        node._publish_buffer()

        req = RenderView.Request()
        req.pose.header.frame_id = "map"                       # stamp left at zero
        req.pose.pose.orientation.w = 1.0
        req.camera_info = convert.make_camera_info(
            torch.tensor([[20.0, 0, 7.5], [0, 20.0, 5.5], [0, 0, 1]]), 16, 12, req.pose.header)
        cli = peer.create_client(RenderView, "/gsnerf/render_view")
        assert cli.wait_for_service(timeout_sec=20.0)
        fut = cli.call_async(req)
        wait_until(fut.done, 30, "the render_view answer")
        res = fut.result()
        assert res.success, res.message
        for msg in (res.camera_info, res.rgb, res.depth):
            assert _in_sim_time(msg.header.stamp, sim[0]), convert.stamp_to_sec(msg.header.stamp)
        wait_until(lambda: tf_stamps, 10, "the virtual camera's TF")
        assert _in_sim_time(tf_stamps[-1], sim[0])
        wait_until(lambda: diags and states, 10, "diagnostics and the keyframe state")
        assert _in_sim_time(diags[-1].header.stamp, sim[0])
        assert _in_sim_time(states[-1].header.stamp, sim[0])
