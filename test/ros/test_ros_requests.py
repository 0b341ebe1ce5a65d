"""Every render request is answered: bounded queue, immediate refusals, deadlines, priorities.

The queue itself is tested without ROS; the burst test sends 50 concurrent ``~/render_view``
calls from 50 real rclpy clients to the node (in this process, with a fake renderer), from a
planner in its own participant and from one composed into the node's own executor.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any, Iterator

import pytest

from gsnerf_ros.runtime.request_queue import (
    PRIORITY_ACTION, PRIORITY_SERVICE, PRIORITY_TOPIC, RequestQueue,
)
from gsnerf_ros.runtime.requests import RequestError
from helpers.ros_nodes import render_request


@contextlib.contextmanager
def _device_busy(q: RequestQueue) -> Iterator[None]:
    """One request holds the device for the body of the ``with``."""
    release, started = threading.Event(), threading.Event()

    def hold() -> None:
        with q.slot(PRIORITY_SERVICE, 10.0):
            started.set()
            release.wait(10.0)

    runner = threading.Thread(target=hold)
    runner.start()
    started.wait(5.0)
    try:
        yield
    finally:
        release.set()
        runner.join(10.0)


def _wait_once(q: RequestQueue) -> None:
    with q.slot(PRIORITY_SERVICE, 10.0):
        pass


def test_full_queue_refuses_at_once_with_the_count() -> None:
    q = RequestQueue(capacity=2)
    with _device_busy(q):
        waiters = [threading.Thread(target=_wait_once, args=(q,)) for _ in range(2)]
        for w in waiters:
            w.start()
        deadline = time.monotonic() + 5.0
        while q.waiting < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        t0 = time.monotonic()
        with pytest.raises(RequestError, match=r"^busy: 2 queued"):
            with q.slot(PRIORITY_SERVICE, 10.0):
                pass
        refused_after = time.monotonic() - t0
    assert q.refused_busy == 1 and refused_after < 5.0   # not after the 10 s deadline
    for w in waiters:
        w.join(5.0)


def test_waiting_past_the_deadline_is_refused_and_leaves_the_queue() -> None:
    q = RequestQueue(capacity=4)
    with _device_busy(q):
        with pytest.raises(RequestError, match="deadline passed"):
            with q.slot(PRIORITY_SERVICE, 0.2):
                pass
        assert q.waiting == 0 and q.refused_deadline == 1


def test_service_requests_are_served_before_action_and_topic_requests() -> None:
    q = RequestQueue(capacity=8)
    order: list[str] = []

    def request(name: str, prio: int) -> None:
        with q.slot(prio, 10.0):
            order.append(name)

    threads = []
    with _device_busy(q):
        for name, prio in (("topic", PRIORITY_TOPIC), ("action", PRIORITY_ACTION),
                           ("service", PRIORITY_SERVICE)):
            threads.append(threading.Thread(target=request, args=(name, prio)))
            threads[-1].start()
            while q.waiting < len(threads):
                time.sleep(0.01)
    for t in threads:
        t.join(5.0)
    assert order == ["service", "action", "topic"]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("planner_in", ["own participant", "node's executor"])
def test_fifty_concurrent_service_calls_are_all_answered(planner_in: str) -> None:
    """50 clients, one call each, all at once: every call is answered. The clients use
    RENDER_CLIENT_QOS (keep-all): with the default services QoS the answers for the other 49
    clients push a client's own out of its reader (see gsnerf_ros.ros.render_client)."""
    pytest.importorskip("rclpy")
    from gsnerf_ros.ros.render_client import create_render_client
    from helpers.fakes import FakeRenderer
    from helpers.ros_nodes import InProcessNode, SpinningNode, call_until_answered, wait_until

    renderer = FakeRenderer(delay=0.05)
    with InProcessNode(renderer, **{"render.min_keyframes": 2}) as run:
        run.fill_buffer(3)
        # A planner in a process of its own, or composed into the node's own executor and
        # context (InProcessNode's peer node).
        planner = SpinningNode("planner") if planner_in == "own participant" else None
        client_node = planner.node if planner else run.peer
        clients = [create_render_client(client_node) for _ in range(50)]
        wait_until(lambda: all(c.service_is_ready() for c in clients), 120, "50 clients")
        req = render_request()
        # service_is_ready() means the server reads a client's requests; its response reader may
        # still be unmatched for a while after 50 clients appear at once, and Fast DDS drops a
        # response to a reader it has not matched within 100 ms (rmw_fastrtps#467). A planner's
        # long-lived client is matched: make each of ours so by one answered call before the
        # burst (a call whose answer was dropped during discovery is sent again).
        for c in clients:
            call_until_answered(c, req, "a warm-up answer")
        renders_before = renderer.renders
        t0 = time.monotonic()
        futures = [c.call_async(req) for c in clients]
        try:
            # Bounded by the queue: 9 renders of 0.05 s and 41 immediate refusals; the bound
            # only stops a hung test.
            wait_until(lambda: all(f.done() for f in futures), 120, "50 answers")
        finally:
            q = run.node.engine.queue
            print(f"{planner_in}: {sum(f.done() for f in futures)} of 50 answered; the server "
                  f"rendered {renderer.renders - renders_before}, refused {q.refused_busy} busy, "
                  f"{q.refused_deadline} past the deadline", flush=True)
        answered_s = time.monotonic() - t0
        results = [f.result() for f in futures]
        if planner:
            planner.close()
    ok = [r for r in results if r.success]
    refused = [r.message for r in results if not r.success]
    print(f"50 calls: {len(ok)} rendered, {len(refused)} refused, all answered in "
          f"{answered_s:.1f} s")
    assert len(ok) + len(refused) == 50
    assert len(ok) >= 9                    # the running one + render.queue_size (8) queued
    assert all(m.startswith("busy: ") for m in refused), refused[:3]
    assert renderer.max_active == 1


def _base_pose(x: float, y: float, yaw_deg: float) -> Any:
    """c2w [4,4] float64 of a robot base (REP 103: x forward, z up) at (x, y) turned yaw."""
    import math

    import torch

    c, s = math.cos(math.radians(yaw_deg)), math.sin(math.radians(yaw_deg))
    T = torch.eye(4, dtype=torch.float64)
    T[:2, :2] = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    T[0, 3], T[1, 3] = x, y
    return T


def _camera_mount() -> Any:
    """base_link -> camera optical frame: 0.2 m ahead, 0.5 m up, looking forward (optical z =
    base x, optical x = -base y, optical y = -base z)."""
    import torch

    T = torch.eye(4, dtype=torch.float64)
    T[:3, :3] = torch.tensor([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]],
                             dtype=torch.float64)
    T[:3, 3] = torch.tensor([0.2, 0.0, 0.5], dtype=torch.float64)
    return T


@pytest.mark.timeout(180)
def test_a_base_pose_request_renders_what_the_mounted_camera_sees() -> None:
    """With frames.request_body=base_link, or a request's own body_frame, a request gives the
    robot's pose; the node renders at base pose x mount (static TF base_link -> the keyframes'
    optical frame 'cam'), the same view as the equivalent optical-frame request, over the
    service, the topic and the action."""
    pytest.importorskip("rclpy")
    import torch
    from geometry_msgs.msg import PoseStamped
    from rclpy.parameter import Parameter
    from rclpy.time import Time
    from tf2_msgs.msg import TFMessage

    from gsnerf_ros.action import RenderViews
    from gsnerf_ros.ros import convert
    from gsnerf_ros.ros.render_client import create_render_client, create_render_views_client
    from helpers.fakes import FakeRenderer
    from helpers.ros_nodes import InProcessNode, call_until_answered, wait_until
    from gsnerf_ros.ros.visualisation import LATCHED

    renderer = FakeRenderer()
    with InProcessNode(renderer, **{"render.min_keyframes": 2}) as run:
        run.fill_buffer(3)                                 # keyframes in the frame "cam"
        static = run.peer.create_publisher(TFMessage, "/tf_static", LATCHED)
        static.publish(TFMessage(transforms=[convert.c2w_to_transform(
            _camera_mount(), "base_link", "cam", Time().to_msg())]))
        wait_until(lambda: run.node.tf_buffer.can_transform("base_link", "cam", Time()), 30,
                   "the static mount in the node's TF buffer")
        client = create_render_client(run.peer)

        def render(c2w: Any) -> Any:
            req = render_request()
            req.pose.pose = convert.c2w_to_pose(c2w)
            answer = call_until_answered(client, req, "the render_view answer")
            assert answer.success, answer.message
            return answer, renderer.c2ws[-1].double()

        base = _base_pose(1.0, 2.0, 30.0)
        optical = base @ _camera_mount()
        r_cam, c2w_cam = render(optical)                   # frames.request_body "" (default)
        assert torch.allclose(c2w_cam, optical, atol=1e-5)
        assert run.node.set_parameters([Parameter("frames.request_body",
                                                  value="base_link")])[0].successful
        r_base, c2w_base = render(base)
        assert torch.allclose(c2w_base, c2w_cam, atol=1e-5)       # the same camera pose
        assert not torch.allclose(c2w_base, base, atol=1e-2)     # not the base's own
        assert list(r_base.source_keyframe_ids) == list(r_cam.source_keyframe_ids)
        assert bytes(r_base.rgb.data) == bytes(r_cam.rgb.data)
        # the camera looks along the base's x axis, from 0.5 m above the base
        assert torch.allclose(c2w_base[:3, 2], base[:3, 0], atol=1e-6)
        assert c2w_base[2, 3] == pytest.approx(0.5)

        # the topic and the action give no intrinsics: those of the last camera frame
        from gsnerf_ros.runtime.requests import CameraSpec
        run.node._latest_cam = CameraSpec(convert.camera_info_K(render_request().camera_info),
                                          16, 12)
        # ~/render_pose: the same base pose, rendered at the same camera pose
        pub = run.peer.create_publisher(PoseStamped, "/gsnerf/render_pose", 5)
        wait_until(lambda: pub.get_subscription_count() > 0, 30, "render_pose subscriber")
        n = renderer.renders
        msg = PoseStamped()
        msg.header.frame_id = "map"
        msg.pose = convert.c2w_to_pose(base)
        pub.publish(msg)
        wait_until(lambda: renderer.renders > n, 60, "the topic request's render")
        assert torch.allclose(renderer.c2ws[-1].double(), c2w_cam, atol=1e-5)

        # ~/render_views: the view's pose is the camera's, in the world frame
        action = create_render_views_client(run.peer)
        assert action.wait_for_server(timeout_sec=60.0)
        goal = RenderViews.Goal(poses=[msg], return_images=False)
        fut = action.send_goal_async(goal)
        handle = wait_until(lambda: fut.done() and fut.result(), 60, "goal acceptance")
        rfut = handle.get_result_async()
        wait_until(rfut.done, 60, "the action result")
        view = rfut.result().result.views[0]
        assert view.success and view.pose.header.frame_id == "map"
        assert torch.allclose(convert.pose_to_c2w(view.pose.pose).double(), c2w_cam, atol=1e-5)

        # without a mount in TF the request is refused with the reason
        assert run.node.set_parameters([Parameter("frames.request_body",
                                                  value="other_base")])[0].successful
        refusal = call_until_answered(client, render_request(), "the refusal")
        assert not refusal.success and "other_base -> cam" in refusal.message

        # per request: body_frame names the frame of this request's pose, whatever the node's
        # frames.request_body; the optical-frame client beside it is unaffected
        assert run.node.set_parameters([Parameter("frames.request_body",
                                                  value="")])[0].successful
        req = render_request()
        req.pose.pose = convert.c2w_to_pose(base)
        req.body_frame = "base_link"
        r_req = call_until_answered(client, req, "the body_frame answer")
        assert r_req.success, r_req.message
        assert torch.allclose(renderer.c2ws[-1].double(), c2w_cam, atol=1e-5)
        assert bytes(r_req.rgb.data) == bytes(r_cam.rgb.data)
        r_opt, c2w_opt = render(optical)                    # no body_frame: the optical frame
        assert torch.allclose(c2w_opt, optical, atol=1e-5)
        goal = RenderViews.Goal(poses=[msg], return_images=False, body_frame="base_link")
        fut = action.send_goal_async(goal)
        handle = wait_until(lambda: fut.done() and fut.result(), 60, "goal acceptance")
        rfut = handle.get_result_async()
        wait_until(rfut.done, 60, "the action result")
        view = rfut.result().result.views[0]
        assert view.success
        assert torch.allclose(convert.pose_to_c2w(view.pose.pose).double(), c2w_cam, atol=1e-5)
        req.body_frame = "other_base"
        refusal = call_until_answered(client, req, "the body_frame refusal")
        assert not refusal.success and "other_base -> cam" in refusal.message


@pytest.mark.timeout(180)
def test_a_goal_with_a_failed_view_is_aborted_with_its_results() -> None:
    pytest.importorskip("rclpy")
    import math

    from action_msgs.msg import GoalStatus
    from geometry_msgs.msg import PoseStamped

    from gsnerf_ros.action import RenderViews
    from gsnerf_ros.ros.render_client import create_render_views_client
    from helpers.ros_nodes import InProcessNode, wait_until

    with InProcessNode(**{"render.min_keyframes": 2}) as run:
        run.fill_buffer(3)
        action = create_render_views_client(run.peer)
        assert action.wait_for_server(timeout_sec=60.0)
        poses = []
        for bad in (False, True, False):
            p = PoseStamped()
            p.header.frame_id = "map"
            p.pose.orientation.w = math.nan if bad else 1.0
            poses.append(p)

        def run_goal(goal: Any) -> Any:
            fut = action.send_goal_async(goal)
            handle = wait_until(lambda: fut.done() and fut.result(), 60, "goal acceptance")
            assert handle.accepted
            rfut = handle.get_result_async()
            wait_until(rfut.done, 60, "the action result")
            return rfut.result()

        info = render_request().camera_info
        failed = run_goal(RenderViews.Goal(poses=poses, camera_info=info, return_images=False))
        assert failed.status == GoalStatus.STATUS_ABORTED
        res = failed.result
        assert not res.success and "1 of 3 views failed (indices [1])" in res.message
        assert [v.success for v in res.views] == [True, False, True]   # results attached
        assert "NaN" in res.views[1].message
        ok = run_goal(RenderViews.Goal(poses=[poses[0], poses[2]], camera_info=info,
                                       return_images=False))
        assert ok.status == GoalStatus.STATUS_SUCCEEDED and ok.result.success
