"""The real node, in its own process, fed by the real player process; the test is the client.

One node + player pair serves the whole module (starting them dominates the cost). Every wait is
for a condition (a bound only stops a hung test), so the module passes while other jobs keep
the cores busy: best-effort camera frames the node may miss are sent again until it reports
them, and the clients keep every answer (gsnerf_ros.ros.render_client). The checkpoint
is the shipped one when present (then the label agreement with ground truth is asserted), else a
tiny untrained one made here (then only structure is asserted and that test is skipped).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
import torch

pytest.importorskip("rclpy")

from action_msgs.msg import GoalStatus  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from rclpy.qos import (  # noqa: E402
    DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data,
)
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from tf2_msgs.msg import TFMessage  # noqa: E402
from visualization_msgs.msg import MarkerArray  # noqa: E402

from gsnerf_ros.action import RenderViews  # noqa: E402
from gsnerf_ros.imaging import decode_raw  # noqa: E402
from gsnerf_ros.msg import KeyframeBufferState  # noqa: E402
from gsnerf_ros.ros import convert  # noqa: E402
from gsnerf_ros.ros.render_client import (  # noqa: E402
    create_render_client, create_render_views_client,
)
from gsnerf_ros.runtime.keyframes import KeyframeBuffer, KeyframePolicy  # noqa: E402
from gsnerf_ros.ros.tools.node_harness import child_env as make_child_env  # noqa: E402
from gsnerf_ros.ros.tools.player import make_scene, parse_holdout, save_scene_file  # noqa: E402
from helpers.fakes import make_tiny_checkpoint
from helpers.ros_nodes import ROOT, SpinningNode, stop_process, wait_until
from gsnerf_ros.srv import RenderView  # noqa: E402

SHIPPED = Path(os.environ.get("GSNERF_TEST_CHECKPOINT", ROOT / "models" / "gsnerf_cpu.safetensors"))
# Stated for the shipped CPU-trained checkpoint (models/MODEL_CARD.md): gsnerf_cpu (stage 7)
# measured 38.4% on these 64x48 held-out views against a 4.7% constant-class floor (stage 6
# 36.8%, stage 5 36.3%, stage 4 35.7%, stage 3 36.8%; the previous default, gsnerf_procedural,
# measured 19.2% when this test was written and 33.3% with today's node: near 0.25 m,
# normalised colour). The threshold keeps a margin below 36.8 (every gsnerf_cpu stage since 3
# passes it) for other CPUs: six frames of one room are a noisy measure (the held-out 320x240
# splits put stage 7 0.2-0.5 mIoU below stage 6, where these six frames show it 1.6 above).
MIN_MIOU_SHIPPED = 34.0
"""Stated label agreement (mIoU %, held-out views of a test room at 64x48) for the shipped model."""
H, W, FRAMES, HOLDOUT = 48, 64, 24, "every:4"
MIN_T, MIN_R = 0.1, 15.0
VIRTUAL = "gsnerf_virtual_camera_optical_frame"


class Harness:
    """Everything the tests share: processes, the client node, the scene and observations."""

    scene: Any
    held: list[int]
    node_proc: subprocess.Popen
    client: SpinningNode
    early_response: Any
    diag: dict[str, str]
    state: KeyframeBufferState | None
    markers: MarkerArray | None
    tf_frames: set[str]
    rendered: dict[str, Any]
    checkpoint: Path

    def request(self, c2w: torch.Tensor, K: torch.Tensor | None = None, w: int = 0, h: int = 0,
                publish: bool = False, stamp: tuple[int, int] = (0, 0)) -> RenderView.Request:
        req = RenderView.Request()
        req.pose.header.frame_id = "map"
        req.pose.header.stamp.sec, req.pose.header.stamp.nanosec = stamp
        req.pose.pose = convert.c2w_to_pose(c2w.double())
        if K is not None:
            req.camera_info = convert.make_camera_info(K.double(), w, h, req.pose.header)
        req.publish = publish
        return req

    def render(self, req: RenderView.Request) -> Any:
        return self.client.call(self.srv, req)


@pytest.fixture(scope="module")
def ros(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    tmp = tmp_path_factory.mktemp("ros_node")
    env = make_child_env()
    hs = Harness()
    hs.checkpoint = SHIPPED if SHIPPED.is_file() else make_tiny_checkpoint(tmp / "tiny")
    hs.scene = make_scene(0, "test", FRAMES, H, W)
    scene_file = save_scene_file(hs.scene, tmp / "scene.safetensors")
    hs.held = sorted(parse_holdout(HOLDOUT, FRAMES))
    node_cmd = [sys.executable, str(ROOT / "scripts" / "gsnerf_node"), "--ros-args",
                "--params-file", str(ROOT / "config" / "gsnerf.yaml"),
                "-p", f"model.checkpoint:={hs.checkpoint}", "-p", "model.device:=cuda",
                "-p", f"keyframes.min_translation:={MIN_T}",
                "-p", f"keyframes.min_rotation_deg:={MIN_R}",
                # the buffer's content is checked against the movement policy alone
                "-p", "keyframes.min_interval:=0.0", "-p", "keyframes.max_pending:=0",
                "-p", f"render.width:={W}", "-p", f"render.height:={H}",
                "-p", "render.max_width:=256", "-p", "render.max_height:=256",
                "-p", "frames.tf_timeout:=0.3", "-p", "log.throttle:=0.0",
                "-p", "publish.diagnostics_period:=0.3"]
    procs: list[subprocess.Popen] = []
    hs.client = SpinningNode("gsnerf_test_client")
    try:
        n = hs.client.node
        hs.diag, hs.state, hs.markers, hs.tf_frames, hs.rendered = {}, None, None, set(), {}
        n.create_subscription(DiagnosticArray, "/diagnostics", lambda m: hs.diag.update(
            {kv.key: kv.value for s in m.status if s.name.startswith("/gsnerf:") for kv in s.values}
            | {"_message": m.status[0].message}), 10)
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                             reliability=ReliabilityPolicy.RELIABLE)
        n.create_subscription(KeyframeBufferState, "/gsnerf/keyframes",
                              lambda m: setattr(hs, "state", m), latched)
        n.create_subscription(MarkerArray, "/gsnerf/keyframe_markers",
                              lambda m: setattr(hs, "markers", m), latched)
        n.create_subscription(TFMessage, "/tf", lambda m: hs.tf_frames.update(
            t.child_frame_id for t in m.transforms), 50)
        for k in ("rgb", "semantic", "semantic_color", "depth", "confidence"):
            n.create_subscription(Image, f"/gsnerf/rendered/{k}",
                                  lambda m, k=k: hs.rendered.__setitem__(k, m), 5)
        n.create_subscription(CameraInfo, "/gsnerf/rendered/camera_info",
                              lambda m: hs.rendered.__setitem__("camera_info", m), 5)
        hs.srv = create_render_client(n)
        hs.action = create_render_views_client(n)

        hs.node_proc = subprocess.Popen(node_cmd, env=env)
        procs.append(hs.node_proc)
        # start-up (imports, model load) takes seconds, minutes on busy cores
        wait_until(lambda: hs.srv.service_is_ready() or hs.node_proc.poll() is not None, 500,
                   "the node's render_view service")
        assert hs.node_proc.poll() is None, f"the node exited with {hs.node_proc.returncode}"
        # a request before any keyframe exists (explicit intrinsics, so the buffer is the issue)
        f0 = hs.scene.frame(0)
        hs.early_response = hs.render(hs.request(f0.c2w, f0.K, W, H))
        procs.append(subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "gsnerf_player"), "--scene-file",
             str(scene_file), "--holdout", HOLDOUT, "--rate", "8"], env=env))
        wait_until(lambda: procs[1].poll() is not None, 500, "the player to finish")
        assert procs[1].returncode == 0
        hs.diag.clear()
        wait_until(lambda: hs.diag.get("buffer_size", "0") != "0"
                   and hs.diag["buffer_size"] == hs.diag["encoded_keyframes"]
                   and hs.diag.get("provisional_keyframes") == "0", 500,
                   "every keyframe to be encoded")
        yield hs
    finally:
        codes = [stop_process(p) for p in procs]
        hs.client.close()
        if codes:
            assert codes[0] == 0, f"the node exited with {codes[0]} on SIGINT (expected 0)"


def _expected_keyframes(scene: Any, published: list[int]) -> list[int]:
    buf = KeyframeBuffer(KeyframePolicy(MIN_T, MIN_R, capacity=1000))
    return [i for i in published if buf.add(torch.zeros(3, 1, 1), scene.K[i], scene.c2w[i])[0]]


def _img(m: Image) -> np.ndarray:
    return decode_raw(m.encoding, m.height, m.width, m.step, m.data, bool(m.is_bigendian))


def test_request_before_enough_keyframes_is_refused(ros: Harness) -> None:
    r = ros.early_response
    assert not r.success
    assert "encoded keyframe(s) in the buffer" in r.message and "move the camera" in r.message


def test_buffer_fills_by_the_keyframe_policy(ros: Harness) -> None:
    published = [i for i in range(FRAMES) if i not in ros.held]
    expected = _expected_keyframes(ros.scene, published)
    wait_until(lambda: ros.state is not None and len(ros.state.keyframes) == len(expected), 120,
               "the keyframe state")
    got = torch.stack([convert.pose_to_c2w(k.pose) for k in ros.state.keyframes]).float()
    want = ros.scene.c2w[expected]
    # the poses went player -> /tf chain (map->base_link->optical) -> node: same poses back
    assert torch.allclose(got, want, atol=1e-4)
    assert ros.state.capacity == 32 and ros.state.header.frame_id == "map"
    wait_until(lambda: ros.markers is not None and len(ros.markers.markers) == len(expected) + 1,
               120, "frustum markers")
    assert all(len(m.points) == 16 for m in ros.markers.markers[1:])


def test_render_view_at_unvisited_pose(ros: Harness) -> None:
    i = ros.held[1]
    f = ros.scene.frame(i)
    r = ros.render(ros.request(f.c2w, f.K, W, H, stamp=(123, 456)))
    assert r.success, r.message
    want = {"rgb": "rgb8", "semantic": "mono8", "semantic_color": "rgb8", "depth": "32FC1",
            "confidence": "32FC1"}
    for k, enc in want.items():
        m = getattr(r, k)
        assert (m.encoding, m.width, m.height) == (enc, W, H), k
        assert m.header.frame_id == VIRTUAL and (m.header.stamp.sec, m.header.stamp.nanosec) == (123, 456)
    assert r.camera_info.header.frame_id == VIRTUAL and list(r.camera_info.k) == pytest.approx(
        f.K.double().reshape(-1).tolist())
    ids = {k.id for k in ros.state.keyframes}
    assert len(r.source_keyframe_ids) == 4 and set(r.source_keyframe_ids) <= ids
    depth, conf, lab = _img(r.depth), _img(r.confidence), _img(r.semantic)
    valid = np.isfinite(depth)                       # REP 118: NaN where there is no depth
    assert valid.mean() > 0.9 and (depth[valid] > 0).all()
    assert ((conf >= 0) & (conf <= 1)).all() and lab.max() < len(ros.scene.class_names)
    assert r.latency_ms > 0
    wait_until(lambda: VIRTUAL in ros.tf_frames, 60, "the virtual camera's TF")


def test_zero_intrinsics_use_the_camera_at_the_render_size(ros: Harness) -> None:
    r = ros.render(ros.request(ros.scene.c2w[ros.held[0]]))
    assert r.success, r.message
    assert (r.rgb.width, r.rgb.height) == (W, H)
    assert r.camera_info.k[0] == pytest.approx(float(ros.scene.K[0, 0, 0]), rel=1e-5)


def test_labels_agree_with_ground_truth_for_the_shipped_checkpoint(ros: Harness) -> None:
    if ros.checkpoint != SHIPPED:
        pytest.skip(f"label agreement needs the trained checkpoint {SHIPPED} (absent); "
                    "structure is tested with an untrained tiny model")
    from gsnerf_ros.train.metrics import confusion_matrix, scores_from_confusion

    C = len(ros.scene.class_names)
    cm = torch.zeros(C, C + 1, dtype=torch.long)
    for i in ros.held:
        f = ros.scene.frame(i)
        r = ros.render(ros.request(f.c2w, f.K, W, H))
        assert r.success, r.message
        cm += confusion_matrix(torch.from_numpy(_img(r.semantic).astype(np.int64)), f.labels, C)
    miou = scores_from_confusion(cm)["mIoU"]
    # The best constant prediction (every pixel the most frequent ground-truth class) as the floor.
    gt_counts = cm.sum(dim=1)
    const = torch.zeros_like(cm)
    const[:, int(gt_counts.argmax())] = gt_counts
    const_miou = scores_from_confusion(const)["mIoU"]
    print(f"held-out mIoU {miou:.1f}% (constant-class floor {const_miou:.1f}%)")
    assert miou > MIN_MIOU_SHIPPED, f"mIoU {miou:.1f}% on held-out views"
    assert miou > const_miou + 2.0, f"mIoU {miou:.1f}% is no better than a constant {const_miou:.1f}%"


def test_render_pose_topic_publishes_every_output(ros: Harness) -> None:
    ros.rendered.clear()
    pub = ros.client.node.create_publisher(PoseStamped, "/gsnerf/render_pose", 5)
    wait_until(lambda: pub.get_subscription_count() > 0, 60, "render_pose subscriber")
    msg = PoseStamped()
    msg.header.frame_id = "map"
    msg.header.stamp.sec = 77
    msg.pose = convert.c2w_to_pose(ros.scene.c2w[ros.held[2]].double())
    pub.publish(msg)
    wait_until(lambda: len(ros.rendered) == 6, 120, "all ~/rendered/* topics")
    assert ros.rendered["rgb"].header.stamp.sec == 77
    assert ros.rendered["semantic"].encoding == "mono8"
    assert ros.rendered["camera_info"].width == W
    ros.client.node.destroy_publisher(pub)


def test_action_reports_feedback_per_view_and_can_be_cancelled(ros: Harness) -> None:
    # DDS discovery of the action's five entities is slow on a loaded 2-core box: a CI run beside
    # two other jobs once missed 30 s, while the node's services answered
    assert ros.action.wait_for_server(timeout_sec=90), (
        f"render_views action not discovered in 90 s (node alive: {ros.node_proc.poll() is None})")
    goal = RenderViews.Goal()
    for i in ros.held[:3]:
        p = PoseStamped()
        p.header.frame_id = "map"
        p.pose = convert.c2w_to_pose(ros.scene.c2w[i].double())
        goal.poses.append(p)
    goal.return_images = False
    feedback: list[Any] = []
    fut = ros.action.send_goal_async(goal, feedback_callback=lambda m: feedback.append(m.feedback))
    handle = wait_until(lambda: fut.done() and fut.result(), 120, "goal acceptance")
    assert handle.accepted
    rfut = handle.get_result_async()
    wait_until(rfut.done, 120, "action result")
    res = rfut.result().result
    assert res.success, res.message
    assert len(res.views) == 3 and all(v.success for v in res.views)
    assert all(v.rgb.width == 0 for v in res.views)          # return_images=false: scores only
    assert all(0.0 <= v.mean_confidence <= 1.0 for v in res.views)
    assert [fb.index for fb in feedback] == [0, 1, 2] and feedback[0].total == 3

    goal.poses = goal.poses * 4                               # 12 views, cancelled early
    feedback.clear()
    fut = ros.action.send_goal_async(goal, feedback_callback=lambda m: feedback.append(m.feedback))
    handle = wait_until(lambda: fut.done() and fut.result(), 120, "goal acceptance")
    wait_until(lambda: feedback, 120, "first feedback")
    cfut = handle.cancel_goal_async()
    wait_until(cfut.done, 120, "cancel response")
    rfut = handle.get_result_async()
    wait_until(rfut.done, 120, "cancelled result")
    assert rfut.result().status == GoalStatus.STATUS_CANCELED
    assert len(rfut.result().result.views) < 12


@pytest.mark.parametrize("case,edit,expect", [
    ("nan quaternion", lambda q: setattr(q, "z", math.nan), "NaN"),
    ("zero quaternion", lambda q: (setattr(q, "w", 0.0), setattr(q, "x", 0.0),
                                   setattr(q, "y", 0.0), setattr(q, "z", 0.0)), "unit quaternion"),
    ("non-unit quaternion", lambda q: setattr(q, "w", q.w * 3 + 1), "unit quaternion"),
])
def test_bad_request_poses_are_refused(ros: Harness, case: str, edit: Any, expect: str) -> None:
    req = ros.request(ros.scene.c2w[ros.held[0]])
    edit(req.pose.pose.orientation)
    r = ros.render(req)
    assert not r.success and expect in r.message, (case, r.message)


def test_render_size_above_the_limit_is_refused(ros: Harness) -> None:
    f = ros.scene.frame(ros.held[0])
    r = ros.render(ros.request(f.c2w, f.K * 8, W * 8, H * 8))
    assert not r.success and "exceeds the limit 256x256" in r.message


def _bad_frame(stamp: Any, encoding: str = "rgb8", w: int = W, h: int = H, info_w: int = W,
               info_h: int = H, K: Any = None, frame: str = "camera_optical_frame") -> tuple[Image, CameraInfo]:
    from std_msgs.msg import Header

    img = convert.array_to_image(np.zeros((h, w, 3), np.uint8), "rgb8",
                                 Header(stamp=stamp, frame_id=frame))
    img.encoding = encoding
    info = convert.make_camera_info(K if K is not None else torch.tensor(
        [[40.0, 0, 31.5], [0, 40.0, 23.5], [0, 0, 1]]), info_w, info_h, img.header)
    return img, info


def test_bad_camera_inputs_are_reported_and_the_buffer_survives(ros: Harness) -> None:
    n = ros.client.node
    pub_i = n.create_publisher(Image, "/image", qos_profile_sensor_data)
    pub_c = n.create_publisher(CameraInfo, "/camera_info", qos_profile_sensor_data)
    wait_until(lambda: pub_i.get_subscription_count() > 0 and pub_c.get_subscription_count() > 0,
               60, "node subscriptions")
    before = ros.diag["buffer_size"]
    now = n.get_clock().now()
    cases = [
        (dict(encoding="yuv422"), "image encoding 'yuv422' is not supported"),
        (dict(info_w=W * 2), "camera_info says"),
        (dict(K=torch.zeros(3, 3)), "focal lengths"),
        (dict(K=torch.full((3, 3), math.nan)), "NaN"),
        (dict(frame="nowhere_frame"), "no TF map -> nowhere_frame"),
        # older than the TF the player left; less than frames.time_jump_threshold (1 s) back,
        # so sending it again is no bag loop (that would reset the buffer)
        (dict(stamp_offset=-0.5), "extrapolation"),
    ]
    for k, (kw, expect) in enumerate(cases):
        off = kw.pop("stamp_offset", 0.0)
        stamp = (now + rclpy_duration(off + 0.01 * k)).to_msg()
        img, info = _bad_frame(stamp, **kw)
        ros.diag.clear()

        def reported(img: Image = img, info: CameraInfo = info, expect: str = expect) -> bool:
            # The camera topics are best effort: a frame the node did not get (its reader not
            # yet matched to ours, a busy core) is sent again at every check until reported.
            if expect in ros.diag.get("last_input_error", ""):
                return True
            pub_c.publish(info)
            pub_i.publish(img)
            return False

        wait_until(reported, 120, f"diagnostics to report {expect!r}", period=0.5)
        assert ros.diag["buffer_size"] == before
    n.destroy_publisher(pub_i)
    n.destroy_publisher(pub_c)
    assert ros.node_proc.poll() is None
    f = ros.scene.frame(ros.held[0])
    r = ros.render(ros.request(f.c2w, f.K, W, H))
    assert r.success, r.message


def rclpy_duration(seconds: float) -> Any:
    from rclpy.duration import Duration

    return Duration(nanoseconds=int(seconds * 1e9))


def test_diagnostics_report_buffer_latency_device_and_model(ros: Harness) -> None:
    # A render of its own, so the latency is there whichever tests ran before.
    assert ros.render(ros.request(ros.scene.c2w[ros.held[0]])).success
    ros.diag.clear()
    wait_until(lambda: "last_render_latency_ms" in ros.diag, 60, "diagnostics")
    assert int(ros.diag["buffer_size"]) > 0
    assert ros.diag["last_render_latency_ms"] != "n/a"
    assert 0.0 <= float(ros.diag["last_render_lateral_baseline_share"]) <= 1.0
    assert ros.diag["device"] in ("cpu", "cuda", "cuda:0")
    assert ros.diag["model"].endswith(".safetensors")
