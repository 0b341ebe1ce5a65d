"""ROS conventions of the node (in this process, fake renderer, real rclpy): the lifecycle
variant's transitions driven by a lifecycle client (``~/change_state``, ``~/get_state``), its
parameters (settable while unconfigured, read at configure) and lifecycle publishers, ~/label_info and ~/semantic_legend (transient local), NaN depth
(REP 118), and the warning for parameter overrides the node does not declare."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import torch

pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from rcl_interfaces.msg import SetParametersResult  # noqa: E402
from rcl_interfaces.srv import SetParameters  # noqa: E402
from rclpy.lifecycle.publisher import LifecyclePublisher  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from vision_msgs.msg import LabelInfo  # noqa: E402

from gsnerf_ros.imaging import decode_raw  # noqa: E402
from gsnerf_ros.ros import convert  # noqa: E402
from gsnerf_ros.ros.lifecycle_node import GSNeRFLifecycleNode  # noqa: E402
from gsnerf_ros.ros.node import warn_undeclared_overrides  # noqa: E402
from gsnerf_ros.ros.render_client import create_render_client  # noqa: E402
from helpers.fakes import FakeRenderer, make_tiny_checkpoint
from helpers.ros_nodes import (
    InProcessNode, SpinningNode, call_until_answered, render_request, wait_until,
)
from gsnerf_ros.ros.visualisation import LATCHED  # noqa: E402
from gsnerf_ros.runtime.engine import RenderOutput  # noqa: E402
from gsnerf_ros.srv import RenderView  # noqa: E402


def _call(peer: Node, req: RenderView.Request) -> RenderView.Response:
    cli = create_render_client(peer)
    answer = call_until_answered(cli, req, "the render_view answer")
    peer.destroy_client(cli)
    return answer


class LifecycleManager:
    """What ``ros2 lifecycle`` and ``ros2 param`` do: a client in its own participant calling
    the node's ``~/change_state``, ``~/get_state`` and ``~/set_parameters`` services."""

    def __init__(self) -> None:
        self.spin = SpinningNode("lifecycle_manager")
        n = self.spin.node
        self.change = n.create_client(ChangeState, "/gsnerf/change_state")
        self.get = n.create_client(GetState, "/gsnerf/get_state")
        self.set_params = n.create_client(SetParameters, "/gsnerf/set_parameters")

    def connect(self) -> None:
        """Make sure each service answers before the test uses it. A server may not yet have
        matched a new client's response reader when the client sees the service (Fast DDS
        then drops the answer, rmw_fastrtps#467), so a first call is sent again until answered:
        calls that change nothing (get_state, an unknown transition, no parameters)."""
        unknown = ChangeState.Request()
        unknown.transition.label = "no_such_transition"
        for client, req in ((self.get, GetState.Request()), (self.change, unknown),
                            (self.set_params, SetParameters.Request())):
            call_until_answered(client, req, f"an answer of {client.srv_name}")

    def state(self) -> str:
        return self.spin.call(self.get, GetState.Request()).current_state.label

    def transition(self, label: str) -> bool:
        req = ChangeState.Request()
        req.transition.label = label
        return self.spin.call(self.change, req).success

    def set(self, name: str, value: object) -> SetParametersResult:
        req = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
        return self.spin.call(self.set_params, req).results[0]

    def close(self) -> None:
        self.spin.close()


@pytest.fixture
def manager() -> Iterator[LifecycleManager]:
    m = LifecycleManager()
    yield m
    m.close()


def _diag_stamps(run: InProcessNode) -> list[float]:
    """Stamps (s) of the node's /diagnostics messages the peer receives (a growing list)."""
    stamps: list[float] = []
    run.peer.create_subscription(
        DiagnosticArray, "/diagnostics",
        lambda m: stamps.extend(convert.stamp_to_sec(m.header.stamp) for s in m.status
                                if s.name.startswith("/gsnerf:")), 50)
    return stamps


@pytest.mark.timeout(240)
def test_lifecycle_transitions_over_the_lifecycle_services(manager: LifecycleManager) -> None:
    renderer = FakeRenderer()
    with InProcessNode(renderer, threads=8, node_class=GSNeRFLifecycleNode,
                       **{"render.min_keyframes": 2,
                          "publish.diagnostics_period": 0.1}) as run:
        node, peer = run.node, run.peer
        manager.connect()
        assert manager.state() == "unconfigured"
        assert node.renderer is None                                   # no model yet
        diag = _diag_stamps(run)
        labels: list[LabelInfo] = []
        peer.create_subscription(LabelInfo, "/gsnerf/label_info", labels.append, LATCHED)

        assert manager.transition("configure") and manager.state() == "inactive"
        assert node.renderer is renderer
        r = _call(peer, render_request())
        assert not r.success and "not active" in r.message             # inactive: refused
        outputs = [p for p in node.publishers if p.topic_name.startswith("/gsnerf/")
                   or p.topic_name in ("/diagnostics", "/tf")]
        assert len(outputs) >= 10
        assert all(isinstance(p, LifecyclePublisher) and not p.is_activated for p in outputs)
        node._publish_diagnostics()                       # an inactive node publishes nothing
        activated_at = convert.stamp_to_sec(node.get_clock().now().to_msg())

        assert manager.transition("activate") and manager.state() == "active"
        assert all(p.is_activated for p in outputs)
        wait_until(lambda: labels, 30, "label_info once active")
        wait_until(lambda: diag, 30, "diagnostics once active")
        assert min(diag) >= activated_at, "a diagnostics message was sent while inactive"
        run.fill_buffer(3)
        assert _call(peer, render_request()).success

        assert manager.transition("deactivate") and manager.state() == "inactive"
        assert len(node.buffer) == 0                                   # keyframes dropped
        assert not any(p.is_activated for p in outputs)
        r = _call(peer, render_request())
        assert not r.success and "not active" in r.message

        assert manager.transition("cleanup") and manager.state() == "unconfigured"
        assert node.renderer is None
        wait_until(lambda: not any(n.endswith("render_view") for n, _ in
                                   peer.get_service_names_and_types_by_node("gsnerf", "/")),
                   30, "the service to go")
        assert not (set(outputs) & node._managed_entities)            # destroyed, not managed
        assert manager.transition("configure") and manager.transition("activate")
        run.fill_buffer(3)
        assert _call(peer, render_request()).success
        assert manager.transition("shutdown") and manager.state() == "finalized"   # from active
        assert node.renderer is None and not node._active and not node._entities
        assert not manager.transition("configure")                     # finalized is final


@pytest.mark.timeout(240)
def test_parameters_are_set_while_unconfigured_and_read_at_configure(
        tmp_path: Path, manager: LifecycleManager) -> None:
    """cleanup -> set model.checkpoint -> configure loads the new model; while configured the
    model cannot change (refused with the reason), a live parameter can."""
    ckpt_a = make_tiny_checkpoint(tmp_path / "model_a")
    ckpt_b = make_tiny_checkpoint(tmp_path / "model_b")
    with InProcessNode(checkpoint=True, threads=8, node_class=GSNeRFLifecycleNode,
                       **{"model.checkpoint": str(ckpt_a), "model.device": "cpu"}) as run:
        node = run.node
        manager.connect()
        assert manager.set("model.checkpoint", str(ckpt_b)).successful      # unconfigured
        bad = manager.set("model.near", 50.0)                               # > model.far
        assert not bad.successful and "model.near=50.0 must be < model.far" in bad.reason
        assert not manager.set("render.queue_size", 16).successful          # sizes the executor
        assert manager.transition("configure")
        assert node.model_name == ckpt_b.name
        first = node.renderer

        refused = manager.set("model.checkpoint", str(ckpt_a))
        assert not refused.successful
        assert "model.checkpoint cannot change while the node is inactive" in refused.reason
        assert "cleanup" in refused.reason
        assert node.get_parameter("model.checkpoint").value == str(ckpt_b)  # nothing changed
        assert manager.set("render.width", 64).successful                   # live
        assert node.p.render_width == 64
        assert not manager.set("render.width", 0).successful                # out of range
        assert node.p.render_width == 64

        assert manager.transition("cleanup")
        assert manager.set("model.checkpoint", str(ckpt_a)).successful
        assert manager.transition("configure")
        assert node.model_name == ckpt_a.name and node.renderer is not first
        assert node.p.render_width == 64                                    # kept


def test_the_plain_node_refuses_fixed_parameters_and_takes_live_ones() -> None:
    with InProcessNode() as run:
        node = run.node
        fixed, live = node.set_parameters([Parameter("topics.image", value="other"),
                                           Parameter("frames.request_body", value="base_link")])
        assert not fixed.successful and "topics.image" in fixed.reason
        assert node.p.topics_image == "image"
        assert live.successful and node.p.frames_request_body == "base_link"


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
