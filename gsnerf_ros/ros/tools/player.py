"""``gsnerf_player``: publishes a scene as a robot camera would (Image, CameraInfo, /tf, /tf_static).

Two sources:
- a procedural room (``--seed/--split/--frames/--height/--width``, or a ``--scene-file`` written by
  :func:`save_scene_file`): every frame not held out (``--holdout``) is published with the current
  time as stamp; the camera pose goes out as ``world -> base_link`` on /tf plus a static
  ``base_link -> camera optical frame`` on /tf_static (so the node resolves a real TF chain);
- a ROS 2 bag (``--bag PATH``, MCAP or sqlite3, read with ``rosbags``): every message of the
  image / camera_info / depth / tf topics is republished with its recorded stamps at the recorded
  pace (``--rate`` scales it).
"""

from __future__ import annotations

import argparse
import importlib
import json
import threading
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import rclpy
import torch
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from gsnerf_ros.data.scene import InMemoryScene, Scene
from gsnerf_ros.geometry import invert_pose, make_pose
from gsnerf_ros.ros import convert
from gsnerf_ros.ros.process import stop_on_signals
from gsnerf_ros.ros.ros_libs import tf2_ros

__all__ = ["Player", "main", "save_scene_file", "load_scene_file", "BODY_T_OPTICAL",
           "make_scene", "parse_holdout"]

BODY_T_OPTICAL = make_pose(torch.tensor([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]],
                                        dtype=torch.float64),
                           torch.tensor([0.1, 0.0, 0.05], dtype=torch.float64))
"""Pose of the camera optical frame in ``base_link`` (REP 103 body axes; 10 cm forward, 5 cm up)."""


def save_scene_file(scene: Scene, path: str | Path) -> Path:
    """Write a scene (images, K, c2w, depths, labels, classes) to one safetensors file + json."""
    from safetensors.torch import save_file

    from gsnerf_ros.data.scene import materialize

    s = scene if isinstance(scene, InMemoryScene) else materialize(scene)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {"images": s.images.contiguous(), "K": s.K.contiguous(), "c2w": s.c2w.contiguous(),
               "palette": s.palette.contiguous()}
    if s.depths is not None:
        tensors["depths"] = s.depths.contiguous()
    if s.labels is not None:
        tensors["labels"] = s.labels.contiguous()
    save_file(tensors, str(path), metadata={"meta": json.dumps(
        {"name": s.name, "class_names": s.class_names, "near": s.near, "far": s.far})})
    return path


def load_scene_file(path: str | Path) -> InMemoryScene:
    """Read a file written by :func:`save_scene_file`."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = json.loads(f.metadata()["meta"])
        t = {k: f.get_tensor(k) for k in f.keys()}
    return InMemoryScene(name=meta["name"], images=t["images"], K=t["K"], c2w=t["c2w"],
                         class_names=meta["class_names"], palette=t["palette"], near=meta["near"],
                         far=meta["far"], depths=t.get("depths"), labels=t.get("labels"))


def make_scene(seed: int, split: str, frames: int, height: int, width: int,
               fov_deg: float = 90.0) -> InMemoryScene:
    """The procedural room ``seed`` of ``split`` (deterministic)."""
    from gsnerf_ros.data.procedural.generator import SynthConfig, generate_scene

    return generate_scene(SynthConfig(frames=frames, height=height, width=width, fov_deg=fov_deg,
                                      shadow_res=64), seed, split)


def parse_holdout(text: str, n: int) -> set[int]:
    """``"every:5"`` (indices 2, 7, 12, ...: every 5th, offset to the middle) or ``"3,8,11"``."""
    text = text.strip()
    if not text:
        return set()
    if text.startswith("every:"):
        k = int(text.split(":", 1)[1])
        if k < 2:
            raise ValueError("--holdout every:K needs K >= 2")
        return set(range(k // 2, n, k))
    return {int(v) for v in text.split(",") if v.strip()}


class Player(Node):
    """Publishes frames of a :class:`Scene` (see module docstring)."""

    def __init__(self, image_topic: str = "image", camera_info_topic: str = "camera_info",
                 depth_topic: str = "", world_frame: str = "map", base_frame: str = "base_link",
                 camera_frame: str = "camera_optical_frame", encoding: str = "rgb8") -> None:
        super().__init__("gsnerf_player")
        self.world_frame, self.base_frame, self.camera_frame = world_frame, base_frame, camera_frame
        self.encoding = encoding
        self.pub_image = self.create_publisher(Image, image_topic, qos_profile_sensor_data)
        self.pub_info = self.create_publisher(CameraInfo, camera_info_topic, qos_profile_sensor_data)
        self.pub_depth = (self.create_publisher(Image, depth_topic, qos_profile_sensor_data)
                          if depth_topic else None)
        self.tf = tf2_ros.TransformBroadcaster(self)
        self.tf_static = tf2_ros.StaticTransformBroadcaster(self)
        self._static_sent = False

    def send_static(self) -> None:
        stamp = self.get_clock().now().to_msg()
        self.tf_static.sendTransform(convert.c2w_to_transform(
            BODY_T_OPTICAL, self.base_frame, self.camera_frame, stamp))
        self._static_sent = True

    def publish_frame(self, image: torch.Tensor, K: torch.Tensor, c2w: torch.Tensor,
                      depth: torch.Tensor | None = None) -> Any:
        """Publish one frame now: /tf first, then image, camera_info (and depth). Returns the stamp.

        ``image`` [3,H,W] in [0,1]; ``K`` [3,3]; ``c2w`` [4,4] world <- optical; ``depth`` [H,W] m.
        """
        if not self._static_sent:
            self.send_static()
        stamp = self.get_clock().now().to_msg()
        world_T_base = c2w.double() @ invert_pose(BODY_T_OPTICAL)
        self.tf.sendTransform(convert.c2w_to_transform(world_T_base, self.world_frame,
                                                       self.base_frame, stamp))
        header = Header(stamp=stamp, frame_id=self.camera_frame)
        rgb = (image.permute(1, 2, 0).clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
        arr = rgb if self.encoding == "rgb8" else np.ascontiguousarray(rgb[..., ::-1])
        H, W = rgb.shape[:2]
        self.pub_image.publish(convert.array_to_image(arr, self.encoding, header))
        self.pub_info.publish(convert.make_camera_info(K.double(), W, H, header))
        if depth is not None and self.pub_depth is not None:
            mm = np.clip(depth.numpy() * 1000.0 + 0.5, 0, 65535).astype(np.uint16)
            self.pub_depth.publish(convert.array_to_image(mm, "16UC1", header))
        return stamp


def _msg_class(typename: str) -> Any:
    """``sensor_msgs/msg/Image`` -> the rclpy message class."""
    pkg, _, name = typename.split("/")
    return getattr(importlib.import_module(f"{pkg}.msg"), name)


def play_bag(node: Node, bag: str, topics: dict[str, str], rate: float, loop: bool,
             stop: threading.Event | None = None) -> int:
    """Republish the bag's image / camera_info / depth / tf messages at the recorded pace."""
    from rclpy.serialization import deserialize_message
    from rosbags.highlevel import AnyReader

    pubs: dict[str, Any] = {}
    count = 0
    while True:
        with AnyReader([Path(bag)]) as reader:
            conns = [c for c in reader.connections if c.topic in topics]
            if not conns:
                raise ValueError(f"bag {bag} has none of the topics {sorted(topics)}; it has "
                                 f"{sorted({c.topic for c in reader.connections})}")
            t_first, w_first = None, time.monotonic()
            for conn, t_ns, raw in reader.messages(connections=conns):
                cls = _msg_class(conn.msgtype)
                out = topics[conn.topic]
                if out not in pubs:
                    from rclpy.qos import DurabilityPolicy, QoSProfile
                    qos: Any = qos_profile_sensor_data
                    if out == "/tf_static":
                        qos = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
                    elif out == "/tf":
                        qos = QoSProfile(depth=100)
                    pubs[out] = node.create_publisher(cls, out, qos)
                t_first = t_ns if t_first is None else t_first
                delay = w_first + (t_ns - t_first) * 1e-9 / rate - time.monotonic()
                if stop is not None and stop.is_set():
                    return count
                if delay > 0:
                    time.sleep(delay)
                pubs[out].publish(deserialize_message(bytes(raw), cls))
                count += 1
        if not loop or (stop is not None and stop.is_set()):
            return count


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="gsnerf_player", description=__doc__.split("\n")[0])
    src = ap.add_argument_group("source")
    src.add_argument("--bag", default="", help="ROS 2 bag to play instead of a procedural room")
    src.add_argument("--scene-file", default="", help="scene written by save_scene_file")
    src.add_argument("--seed", type=int, default=0)
    src.add_argument("--split", default="test", choices=("train", "val", "test"))
    src.add_argument("--frames", type=int, default=60)
    src.add_argument("--height", type=int, default=96)
    src.add_argument("--width", type=int, default=128)
    src.add_argument("--fov", type=float, default=90.0)
    src.add_argument("--holdout", default="", help='frames never published: "every:5" or "3,8"')
    ap.add_argument("--rate", type=float, default=10.0,
                    help="frames per second (scene) or playback speed factor (bag)")
    ap.add_argument("--loop", action="store_true", help="start over at the end")
    ap.add_argument("--start-delay", type=float, default=0.5, help="seconds before the first frame")
    ap.add_argument("--wait-subscribers", type=float, default=30.0,
                    help="seconds to wait for a subscriber of the image and camera_info topics "
                         "before playing (0 = do not wait)")
    ap.add_argument("--image-topic", default="image")
    ap.add_argument("--camera-info-topic", default="camera_info")
    ap.add_argument("--depth-topic", default="", help="also publish 16UC1 depth here")
    ap.add_argument("--bag-image-topic", default="", help="bag topic republished on --image-topic")
    ap.add_argument("--bag-camera-info-topic", default="")
    ap.add_argument("--world-frame", default="map")
    ap.add_argument("--base-frame", default="base_link")
    ap.add_argument("--camera-frame", default="camera_optical_frame")
    ap.add_argument("--encoding", default="rgb8", choices=("rgb8", "bgr8"))
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``gsnerf_player``; exits 0 at the end of the data or on SIGINT/SIGTERM."""
    from rclpy.utilities import remove_ros_args

    raw = list(sys.argv if argv is None else ["gsnerf_player", *argv])
    args = _parser().parse_args(remove_ros_args(raw)[1:])
    rclpy.init(args=raw, signal_handler_options=SignalHandlerOptions.NO)
    stop = stop_on_signals()
    node: Player | None = None
    try:
        node = Player(args.image_topic, args.camera_info_topic, args.depth_topic,
                      args.world_frame, args.base_frame, args.camera_frame, args.encoding)
        log = node.get_logger()
        if args.wait_subscribers > 0 and not args.bag:
            deadline = time.monotonic() + args.wait_subscribers
            while not stop.is_set() and time.monotonic() < deadline and (
                    node.pub_image.get_subscription_count() == 0
                    or node.pub_info.get_subscription_count() == 0):
                stop.wait(0.05)
            if node.pub_image.get_subscription_count() == 0:
                log.warning(f"no subscriber on {node.pub_image.topic_name} after "
                            f"{args.wait_subscribers} s; playing anyway")
        stop.wait(args.start_delay)
        if args.bag:
            topics = {"/tf": "/tf", "/tf_static": "/tf_static"}
            if args.bag_image_topic:
                topics[args.bag_image_topic] = node.resolve_topic_name(args.image_topic)
            if args.bag_camera_info_topic:
                topics[args.bag_camera_info_topic] = node.resolve_topic_name(args.camera_info_topic)
            if len(topics) == 2:
                topics.update(_guess_bag_topics(args.bag, node, args))
            n = play_bag(node, args.bag, topics, args.rate, args.loop, stop)
            log.info(f"bag {args.bag}: {n} messages published")
            return 0
        scene = (load_scene_file(args.scene_file) if args.scene_file else
                 make_scene(args.seed, args.split, args.frames, args.height, args.width, args.fov))
        skip = parse_holdout(args.holdout, len(scene))
        order = [i for i in range(len(scene)) if i not in skip]
        log.info(f"playing {scene.name}: {len(order)} of {len(scene)} frames at {args.rate} Hz "
                 f"({len(skip)} held out)")
        while not stop.is_set():
            for i in order:
                if stop.is_set():
                    break
                f = scene.frame(i)
                node.publish_frame(f.image, f.K, f.c2w, f.depth if args.depth_topic else None)
                stop.wait(1.0 / args.rate)
            if not args.loop:
                break
        log.info("all frames published")
        return 0
    except (KeyboardInterrupt, ExternalShutdownException):
        return 0
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


def _guess_bag_topics(bag: str, node: Node, args: argparse.Namespace) -> dict[str, str]:
    """Map the bag's first Image and CameraInfo topics onto the player's output topics."""
    from rosbags.highlevel import AnyReader

    out: dict[str, str] = {}
    with AnyReader([Path(bag)]) as reader:
        for c in reader.connections:
            if c.msgtype == "sensor_msgs/msg/Image" and "depth" not in c.topic and \
                    node.resolve_topic_name(args.image_topic) not in out.values():
                out[c.topic] = node.resolve_topic_name(args.image_topic)
            elif c.msgtype == "sensor_msgs/msg/CameraInfo" and \
                    node.resolve_topic_name(args.camera_info_topic) not in out.values():
                out[c.topic] = node.resolve_topic_name(args.camera_info_topic)
    if len(out) < 2:
        raise ValueError(f"bag {bag} needs an Image and a CameraInfo topic; pass "
                         "--bag-image-topic and --bag-camera-info-topic")
    return out


if __name__ == "__main__":
    sys.exit(main())
