"""A robot's own bags (rosbags' writer, RealSense layout: odom root, two /tf_static messages,
bgr8 or JPEG-only; test/helpers/robot_bag.py) on the live path: ``gsnerf-demo --bag`` (real
node process, real player process, world frame and topics found in the bag), the player's
latched union of /tf_static, its wait for subscribers, the node's CompressedImage input and
the refusal and failure messages that name the cause.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch

pytest.importorskip("rclpy")

from helpers.robot_bag import OPTICAL_FRAME, room_ground_truth, write_robot_bag  # noqa: E402
from rclpy.qos import (  # noqa: E402
    DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data,
)
from sensor_msgs.msg import CameraInfo, CompressedImage  # noqa: E402
from tf2_msgs.msg import TFMessage  # noqa: E402

from gsnerf_ros.imaging import ImageFormatError  # noqa: E402
from gsnerf_ros.ros import convert  # noqa: E402
from gsnerf_ros.ros.node import decompress_image  # noqa: E402
from gsnerf_ros.ros.tools.demo import DemoError, build_parser, run_demo  # noqa: E402
from helpers.fakes import make_tiny_checkpoint
from helpers.ros_nodes import ROOT, InProcessNode, SpinningNode, stop_process, wait_until
from gsnerf_ros.srv import RenderView  # noqa: E402

pytestmark = pytest.mark.ros

H, W, N = 24, 32, 12


@pytest.fixture(scope="module")
def bags(tmp_path_factory) -> dict[str, Path]:
    """A small procedural room as a robot's bags: bgr8 (mcap), JPEG only (sqlite3), and one
    whose camera static transform is missing."""
    root = tmp_path_factory.mktemp("robot_bags")
    room = room_ground_truth(root / "room", N, H, W)
    args = (room["images"], room["K"], room["c2w"])
    return {"raw": write_robot_bag(root / "raw", *args, storage="mcap", image_mode="raw"),
            "jpeg": write_robot_bag(root / "jpeg", *args, storage="sqlite3",
                                    image_mode="compressed"),
            "no_camera_tf": write_robot_bag(root / "no_camera_tf", *args, storage="mcap",
                                            camera_static=False)}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors")


def _demo_args(bag: Path, ckpt: Path, out: Path, *extra: str) -> argparse.Namespace:
    return build_parser().parse_args(["--bag", str(bag), "--checkpoint", str(ckpt), "--out", str(out),
                                 "--device", "cpu", "--height", str(H), "--width", str(W),
                                 "--min-translation", "0", "--min-rotation-deg", "0",
                                 "--timeout", "240", *extra])


@pytest.mark.parametrize("variant", ["raw", "jpeg"])
def test_demo_renders_views_of_a_robot_bag_with_no_options(bags, checkpoint, tmp_path,
                                                            variant) -> None:
    """odom world frame (no map), two static messages, bgr8 or JPEG only: found, played at
    the recorded pace after the node subscribed, and rendered between the keyframes."""
    views = 8 if variant == "raw" else 3
    s = run_demo(_demo_args(bags[variant], checkpoint, tmp_path, "--max-views", str(views)))
    assert s["keyframes"] >= views + 1
    assert s["views"] == views and len(list(tmp_path.glob("panel_*.png"))) == views
    assert s["device"] == "cpu" and s["world_frame"] == "odom"
    assert s["image_transport"] == ("compressed" if variant == "jpeg" else "raw")


def test_demo_without_camera_tf_fails_early_with_the_cause(bags, checkpoint, tmp_path) -> None:
    """The camera's static transform is missing: the demo stops at the stall timeout (not its
    overall timeout) and says that TF odom -> camera optical frame is missing."""
    with pytest.raises(DemoError) as e:
        run_demo(_demo_args(bags["no_camera_tf"], checkpoint, tmp_path, "--world-frame", "odom",
                            "--stall-timeout", "12"))
    msg = str(e.value)
    assert "no TF odom -> " + OPTICAL_FRAME in msg, msg
    assert msg.index("no TF odom -> " + OPTICAL_FRAME) < msg.index("see ")
    assert "timed out" not in msg


def test_demo_names_what_to_set_when_the_bag_has_no_camera_tf(bags, checkpoint, tmp_path) -> None:
    with pytest.raises(DemoError, match="camera frame 'camera_color_optical_frame' is in no"):
        run_demo(_demo_args(bags["no_camera_tf"], checkpoint, tmp_path))


def test_player_latches_every_static_transform_and_fails_without_subscribers(
        bags, child_env) -> None:
    """A subscriber that joins late gets both /tf_static messages of the bag in one latched
    message; with no node listening the player exits 2 naming the unmatched topics."""
    player = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "gsnerf_player"), "--bag", str(bags["raw"]),
         "--wait-subscribers", "4"], env=child_env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    peer = SpinningNode("late_tf_static")
    try:
        got: list[TFMessage] = []
        seen = threading.Event()
        wait_until(lambda: peer.node.count_publishers("/tf_static") > 0, 30, "the player")
        peer.node.create_subscription(
            TFMessage, "/tf_static", lambda m: (got.append(m), seen.set()),
            QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                       reliability=ReliabilityPolicy.RELIABLE))
        assert seen.wait(20), "no latched /tf_static"
        pairs = {(t.header.frame_id, t.child_frame_id) for t in got[0].transforms}
        assert pairs == {("base_link", "camera_link"), ("camera_link", OPTICAL_FRAME)}
        out, _ = player.communicate(timeout=60)
    finally:
        stop_process(player)
        peer.close()
    assert player.returncode == 2
    assert "no subscriber on /image" in out and "/camera_info" in out


def test_player_reliable_leaves_every_message_with_a_reliable_reader_that_reads_late(
        bags, child_env) -> None:
    """``--reliable``: a reliable subscriber (as the replay check's node) matches the camera
    topics, and once the player has exited, having waited for its acknowledgements, the
    subscriber holds every image, camera_info and /tf message of the bag though it read none
    while the bag played. Without it the camera topics are best effort, which no reliable
    subscriber matches: the player exits 2 naming them."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import Image

    ctx = rclpy.Context()
    ctx.init()
    node = rclpy.create_node("late_reliable_reader", context=ctx)
    try:
        got = {"/image": 0, "/camera_info": 0, "/tf": 0}

        def count(topic: str) -> Any:
            return lambda _msg: got.__setitem__(topic, got[topic] + 1)

        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        for msg_type, topic in ((Image, "/image"), (CameraInfo, "/camera_info"),
                                (TFMessage, "/tf")):
            node.create_subscription(msg_type, topic, count(topic), qos)
        play = [sys.executable, str(ROOT / "scripts" / "gsnerf_player"), "--bag",
                str(bags["raw"])]
        best = subprocess.run([*play, "--wait-subscribers", "3"], env=child_env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        assert best.returncode == 2 and "no subscriber on /image, /camera_info" in best.stdout
        rel = subprocess.run([*play, "--reliable"], env=child_env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        assert rel.returncode == 0, rel.stdout
        executor = SingleThreadedExecutor(context=ctx)
        executor.add_node(node)
        want = {"/image": N, "/camera_info": N, "/tf": 2 * N - 1}   # /tf: odometry at 2x
        deadline = time.monotonic() + 30
        while got != want and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        assert got == want
        executor.shutdown()
    finally:
        node.destroy_node()
        ctx.try_shutdown()


def test_player_reliable_needs_a_bag(capsys) -> None:
    from gsnerf_ros.ros.tools.player import main as player_main

    with pytest.raises(SystemExit) as exc:
        player_main(["--reliable", "--frames", "2"])
    assert exc.value.code == 2 and "--reliable plays a bag" in capsys.readouterr().err


def test_refusal_names_missing_input_before_advising_motion() -> None:
    """Nothing published: both refusals (no camera yet; too few keyframes) start with it."""
    with InProcessNode() as h:
        r = h.peer.create_client(RenderView, "/gsnerf/render_view")
        assert r.wait_for_service(timeout_sec=30)
        explicit = RenderView.Request()
        explicit.camera_info = convert.make_camera_info(
            torch.tensor([[20.0, 0, 7.5], [0, 20.0, 5.5], [0, 0, 1]]), 16, 12,
            explicit.pose.header)
        msgs = []
        for req in (RenderView.Request(), explicit):
            fut = r.call_async(req)
            wait_until(fut.done, 30, "the refusal")
            assert not fut.result().success
            msgs.append(fut.result().message)
    for msg in msgs:
        assert msg.startswith("0 frames received on /image: no publisher matched"), msg
    assert "no camera_info has been received" in msgs[0]
    assert msgs[1].index("no publisher") < msgs[1].index("move the camera")


def _jpeg(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]),
                           [cv2.IMWRITE_JPEG_QUALITY, 98])
    assert ok
    return buf.tobytes()


def test_decompress_image_decodes_jpeg_colours_and_refuses_garbage() -> None:
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 200  # red: a bgr/rgb mix-up would make it blue
    msg = CompressedImage(format="rgb8; jpeg compressed bgr8", data=_jpeg(rgb))
    msg.header.frame_id = "cam"
    img = decompress_image(msg)
    assert (img.encoding, img.width, img.height, img.header.frame_id) == ("rgb8", 8, 8, "cam")
    px = np.frombuffer(bytes(img.data), np.uint8).reshape(8, 8, 3)
    assert abs(int(px[..., 0].mean()) - 200) < 4 and px[..., 2].max() < 10
    with pytest.raises(ImageFormatError, match="cannot decode"):
        decompress_image(CompressedImage(format="jpeg", data=b"not a jpeg at all"))
    with pytest.raises(ImageFormatError, match="empty"):
        decompress_image(CompressedImage(format="jpeg"))


def test_node_takes_compressed_input_and_survives_bad_data() -> None:
    """topics.image_transport=compressed: the node listens on image/compressed; garbage is
    logged as an input error naming the decode failure, a good JPEG is received after it."""
    with InProcessNode(**{"topics.image_transport": "compressed"}) as h:
        pub = h.peer.create_publisher(CompressedImage, "/image/compressed", qos_profile_sensor_data)
        info = h.peer.create_publisher(CameraInfo, "/camera_info", qos_profile_sensor_data)
        wait_until(lambda: pub.get_subscription_count() and info.get_subscription_count(), 30,
                   "the node's subscriptions")
        assert h.node.count_subscribers("/image") == 0
        K = np.array([[20.0, 0, 15.5], [0, 20.0, 11.5], [0, 0, 1]])
        header = convert.make_header("cam", 100.0)
        cam = convert.make_camera_info(torch.from_numpy(K), W, H, header)

        def send(data: bytes) -> None:
            pub.publish(CompressedImage(header=header, format="jpeg", data=data))
            info.publish(cam)

        wait_until(lambda: (send(b"\xff\xd8garbage"), h.node.input_stats.errors)[1], 30,
                   "the bad frame to be reported")
        assert "cannot decode" in h.node.input_stats.last_error[1]
        # a good JPEG is decoded, checked against camera_info and waits for its pose (no TF
        # here), so the next error is the missing TF, not the decoding
        good = _jpeg(np.full((H, W, 3), 90, np.uint8))
        wait_until(lambda: (send(good), "no TF map -> cam" in h.node.input_stats.last_error[1])[1],
                   30, "the good frame to wait for its TF")


def test_demo_watch_reports_a_player_crash_and_a_silent_node(tmp_path) -> None:
    """The demo's watch: a player that exits with an error fails the demo with its last log
    lines; a node that received nothing by the stall timeout fails it with that cause."""
    from types import SimpleNamespace

    from gsnerf_ros.ros.tools.demo import StallWatch

    (tmp_path / "player.log").write_text("starting\ngsnerf_player: error: bag has no /tf\n")
    run = SimpleNamespace(log_dir=tmp_path, node_log=tmp_path / "node.log", diag={})
    crashed = subprocess.Popen([sys.executable, "-c", "raise SystemExit(2)"])
    crashed.wait(30)
    with pytest.raises(DemoError, match=r"player failed \(exit 2\).*bag has no /tf"):
        StallWatch(run, crashed, 30.0, "/image")()
    ok = subprocess.Popen([sys.executable, "-c", "pass"])
    ok.wait(30)
    watch = StallWatch(run, ok, 0.0, "/image")
    run.diag.update(buffer_size="3", frames_received="40", input_problem="")
    watch()                                   # keyframes arrive: no failure
    run.diag.update(buffer_size="0", frames_received="0",
                    input_problem="0 frames received on /image: no publisher matched")
    with pytest.raises(DemoError, match="0 frames received on /image: no publisher matched"):
        watch()


def test_demo_keeps_every_keyframe_of_a_procedural_room() -> None:
    """The demo's buffer holds every frame the player publishes (none evicted, so the held-out
    views are rendered from the keyframes around them); --capacity overrides it and a bag keeps
    the node's own."""
    from gsnerf_ros.ros.tools.demo import DemoError, build_parser, keyframe_capacity

    parse = build_parser().parse_args
    assert keyframe_capacity(parse([]), 60) == 48                      # 60 frames, 12 held out
    assert keyframe_capacity(parse(["--holdout", "every:4"]), 16) == 32   # the node's default
    assert keyframe_capacity(parse(["--holdout", ""]), 100) == 100
    assert keyframe_capacity(parse(["--capacity", "8"]), 60) == 8
    assert keyframe_capacity(parse([]), None) is None                  # a bag
    with pytest.raises(DemoError, match="--capacity"):
        keyframe_capacity(parse(["--capacity", "0"]), 60)
