"""ROS conventions of the node (in this process, fake renderer, real rclpy): the lifecycle
variant's transitions, ~/label_info and ~/semantic_legend (transient local), NaN depth
(REP 118), and the warning for parameter overrides the node does not declare."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

pytest.importorskip("rclpy")

from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.node import Node  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from vision_msgs.msg import LabelInfo  # noqa: E402

from gsnerf_ros.imaging import decode_raw  # noqa: E402
from gsnerf_ros.ros import convert  # noqa: E402
from gsnerf_ros.ros.lifecycle_node import GSNeRFLifecycleNode  # noqa: E402
from gsnerf_ros.ros.node import warn_undeclared_overrides  # noqa: E402
from gsnerf_ros.ros.tools.testing import FakeRenderer, InProcessNode, wait_until  # noqa: E402
from gsnerf_ros.ros.visualisation import LATCHED  # noqa: E402
from gsnerf_ros.runtime.engine import RenderOutput  # noqa: E402
from gsnerf_ros.srv import RenderView  # noqa: E402


def _request() -> RenderView.Request:
    req = RenderView.Request()
    req.pose.header.frame_id = "map"
    req.pose.pose.orientation.w = 1.0
    req.camera_info.width, req.camera_info.height = 16, 12
    req.camera_info.k = [20.0, 0.0, 7.5, 0.0, 20.0, 5.5, 0.0, 0.0, 1.0]
    return req


def _call(peer: Node, req: RenderView.Request) -> RenderView.Response:
    cli = peer.create_client(RenderView, "/gsnerf/render_view")
    assert cli.wait_for_service(timeout_sec=20.0)
    fut = cli.call_async(req)
    wait_until(fut.done, 30, "the render_view answer")
    peer.destroy_client(cli)
    return fut.result()


def test_lifecycle_configure_activate_deactivate_cleanup() -> None:
    renderer = FakeRenderer()
    with InProcessNode(renderer, threads=8, node_class=GSNeRFLifecycleNode,
                       **{"render.min_keyframes": 2}) as run:
        node, peer = run.node, run.peer
        assert node.renderer is None                                   # unconfigured: no model
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.renderer is renderer
        r = _call(peer, _request())
        assert not r.success and "not active" in r.message             # inactive: refused
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        run.fill_buffer(3)
        assert _call(peer, _request()).success
        assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        assert len(node.buffer) == 0                                   # keyframes dropped
        r = _call(peer, _request())
        assert not r.success and "not active" in r.message
        assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
        assert node.renderer is None
        wait_until(lambda: not any(n.endswith("render_view") for n, _ in
                                   peer.get_service_names_and_types_by_node("gsnerf", "/")),
                   10, "the service to go")
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS   # configurable again


def test_label_info_and_legend_are_latched_for_late_subscribers() -> None:
    with InProcessNode() as run:
        got: dict[str, object] = {}
        run.peer.create_subscription(LabelInfo, "/gsnerf/label_info",
                                     lambda m: got.setdefault("info", m), LATCHED)
        run.peer.create_subscription(Image, "/gsnerf/semantic_legend",
                                     lambda m: got.setdefault("legend", m), LATCHED)
        wait_until(lambda: len(got) == 2, 20, "label_info and semantic_legend")
    info = got["info"]
    assert [(c.class_id, c.class_name) for c in info.class_map] == [(0, "a"), (1, "b")]
    legend = got["legend"]
    arr = decode_raw(legend.encoding, legend.height, legend.width, legend.step, legend.data,
                       bool(legend.is_bigendian))
    colours = {tuple(int(v) for v in px) for px in arr.reshape(-1, 3)}
    assert (255, 0, 0) in colours and (0, 255, 0) in colours        # both class swatches


def test_invalid_depth_is_nan_in_the_published_image() -> None:
    depth = torch.tensor([[1.5, 0.0], [float("inf"), 2.0]])
    out = RenderOutput(torch.zeros(2, 2, 3), depth, torch.zeros(2, 2, dtype=torch.long),
                       torch.ones(2, 2))
    imgs = convert.output_to_images(out, Header(frame_id="v"), torch.zeros(2, 3, dtype=torch.uint8), 2)
    d = imgs["depth"]
    arr = decode_raw(d.encoding, d.height, d.width, d.step, d.data, bool(d.is_bigendian))
    assert d.encoding == "32FC1" and arr[0, 0] == pytest.approx(1.5) and arr[1, 1] == 2.0
    assert math.isnan(arr[0, 1]) and math.isnan(arr[1, 0])
    assert not np.any(arr == 0.0)


def test_undeclared_parameter_override_is_warned_with_a_hint() -> None:
    with InProcessNode(**{"world_frame": "world"}) as run:
        warnings: list[str] = []

        class _Log:
            def warning(self, text: str) -> None:
                warnings.append(text)

        run.node.get_logger = lambda: _Log()  # type: ignore[method-assign]
        assert warn_undeclared_overrides(run.node) == ["world_frame"]
        assert run.node.p.frames_world == "map"
    assert len(warnings) == 1 and "world_frame (did you mean frames.world?)" in warnings[0]


def test_log_throttle_key_ignores_stamps_and_counts() -> None:
    from gsnerf_ros.ros.diagnostics import throttle_key

    a = throttle_key("input:pose", "no TF map -> cam at t=1712.300: Lookup would require "
                                   "extrapolation into the past 1712.300 < 1712.400")
    b = throttle_key("input:pose", "no TF map -> cam at t=1713.300: Lookup would require "
                                   "extrapolation into the past 1713.300 < 1713.400")
    assert a == b                                               # one warning per throttle period
    assert a != throttle_key("input:pose", "no TF map -> base at t=1.0: ...")
