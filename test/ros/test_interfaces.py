"""The package's ROS interfaces build, import, and cross process boundaries over real DDS."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy", reason="ROS 2 wheels not installed (run `make test`)")
srv = pytest.importorskip("gsnerf_ros.srv", reason="interfaces not built (run `make test`)")

from gsnerf_ros.action import RenderViews  # noqa: E402
from gsnerf_ros.msg import KeyframeBufferState, RenderedView  # noqa: E402
from gsnerf_ros.srv import RenderView  # noqa: E402

pytestmark = pytest.mark.ros
HELPER = Path(__file__).parents[1] / "helpers" / "render_view_echo_server.py"


def test_render_view_has_design_fields() -> None:
    req_fields = set(RenderView.Request.get_fields_and_field_types())
    res_fields = set(RenderView.Response.get_fields_and_field_types())
    # the contract's fields, and body_frame: a pose may be the robot base's (REP 103)
    assert req_fields == {"pose", "camera_info", "publish", "body_frame"}
    assert res_fields == {"success", "message", "rgb", "semantic", "semantic_color", "depth",
                          "confidence", "camera_info", "source_keyframe_ids", "latency_ms"}
    types = RenderView.Response.get_fields_and_field_types()
    assert types["rgb"] == "sensor_msgs/Image"
    assert types["source_keyframe_ids"] == "sequence<uint32>"


def test_action_and_messages_import() -> None:
    goal = RenderViews.Goal()
    assert hasattr(goal, "poses") and hasattr(goal, "return_images")
    assert goal.body_frame == ""                 # empty: the node's frames.request_body
    assert "views" in RenderViews.Result.get_fields_and_field_types()
    assert "mean_confidence" in RenderViews.Feedback.get_fields_and_field_types()
    assert "keyframes" in KeyframeBufferState.get_fields_and_field_types()
    assert "mean_confidence" in RenderedView.get_fields_and_field_types()


def _call(node, client, request, timeout: float = 20.0):
    future = client.call_async(request)
    rclpy.spin_until_future_complete(node, future, timeout_sec=timeout)
    assert future.done(), "service call timed out"
    return future.result()


def test_render_view_round_trip_between_processes(ros_domain: int, child_env: dict) -> None:
    child_env["ROS_DOMAIN_ID"] = str(ros_domain)
    server = subprocess.Popen([sys.executable, str(HELPER)], env=child_env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rclpy.init()
    node = rclpy.create_node("render_view_test_client")
    try:
        client = node.create_client(RenderView, "/render_view_echo_server/render_view")
        deadline = time.monotonic() + 30.0
        while not client.wait_for_service(timeout_sec=0.5):
            assert server.poll() is None, f"server died:\n{server.stdout.read()}"
            assert time.monotonic() < deadline, "server never came up"

        req = RenderView.Request()
        req.pose.header.frame_id = "world"
        req.pose.header.stamp.sec = 42
        req.pose.pose.position.x, req.pose.pose.position.y, req.pose.pose.position.z = 0.25, 1.5, 0.8
        req.pose.pose.orientation.w = 1.0
        req.camera_info.width, req.camera_info.height = 320, 240
        req.camera_info.k = [200.0, 0.0, 159.5, 0.0, 200.0, 119.5, 0.0, 0.0, 1.0]
        res = _call(node, client, req)
        assert res.success and res.message == ""
        assert list(res.semantic.data) == [25, 150, 80, 25, 150, 80]
        assert res.semantic.header.stamp.sec == 42 and res.semantic.header.frame_id == "world"
        assert res.camera_info.width == 320 and res.camera_info.k[2] == pytest.approx(159.5)
        assert list(res.source_keyframe_ids) == [7, 3]

        req.pose.pose.orientation.w = 2.0  # not a unit quaternion
        bad = _call(node, client, req)
        assert not bad.success and "unit quaternion" in bad.message
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def _field_comment(path: Path, field: str) -> str:
    """The comment block right above ``<type> <field>`` in an interface file (first match)."""
    lines = path.read_text().splitlines()
    i = next(i for i, line in enumerate(lines)
             if not line.startswith("#") and line.split()[1:2] == [field])
    block = []
    while i > 0 and lines[i - 1].startswith("#"):
        i -= 1
        block.insert(0, lines[i].lstrip("# "))
    return " ".join(block)


@pytest.mark.parametrize("interface", ["srv/RenderView.srv", "msg/RenderedView.msg"])
def test_interface_comments_name_the_encodings_the_node_publishes(interface: str) -> None:
    """Each image field's comment starts with the encoding convert.output_to_images gives it
    (mono16 noted for many classes); depth is documented as metres with NaN where invalid."""
    import torch
    from std_msgs.msg import Header

    from gsnerf_ros.ros.convert import output_to_images
    from gsnerf_ros.ros.render_services import RENDERED_TOPICS
    from gsnerf_ros.runtime.engine import RenderOutput

    out = RenderOutput(rgb=torch.rand(4, 5, 3), depth=torch.tensor([[0.0, 1.5] * 2 + [2.0]] * 4),
                       labels=torch.randint(0, 3, (4, 5)), confidence=torch.rand(4, 5))
    images = output_to_images(out, Header(), torch.randint(0, 255, (3, 3), dtype=torch.uint8), 3)
    assert set(images) == set(RENDERED_TOPICS)
    path = Path(__file__).parents[2] / interface
    for name, image in images.items():
        comment = _field_comment(path, name)
        assert comment.split()[0].rstrip(",.;:") == image.encoding, (interface, name, comment)
    assert "mono16" in _field_comment(path, "semantic")
    depth = _field_comment(path, "depth")
    assert "metres" in depth and "NaN" in depth and "0 = invalid" not in depth
    assert "[0, 1]" in _field_comment(path, "confidence")
