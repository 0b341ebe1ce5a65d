"""``gsnerf_player``: publishes a scene as a robot camera would (Image, CameraInfo, /tf, /tf_static).

Two sources:
- a procedural room (``--seed/--split/--frames/--height/--width``, or a ``--scene-file`` written by
  :func:`save_scene_file`): every frame not held out (``--holdout``) is published with the current
  time as stamp; the camera pose goes out as ``world -> base_link`` on /tf plus a static
  ``base_link -> camera optical frame`` on /tf_static (so the node resolves a real TF chain);
- a ROS 2 bag (``--bag PATH``, MCAP or sqlite3, read with ``rosbags``): its colour image
  (Image, or CompressedImage on ``<out>/compressed``), camera_info and /tf messages are
  republished with their recorded stamps at the recorded pace (``--rate`` scales it, default 1,
  as ``ros2 bag play``), after the union of every /tf_static message went out once on one
  latched publisher and every output topic has a subscriber (``--wait-subscribers`` s, else
  exit 2 with the reason). World frame and topics are found by
  :func:`~gsnerf_ros.data.bag_discovery.discover` unless ``--world-frame`` / ``--image-topic`` /
  ``--camera-info-topic`` name them. The camera topics go out best effort, as a camera driver
  publishes them; ``--reliable`` publishes every topic reliably, keeping each message until
  every subscriber acknowledged it, and exits only once they all did (``--ack-timeout`` s, else
  exit 2): a reliable subscriber with history for the whole bag then gets every frame, however
  late it reads them (what a check that needs all of them wants).

A room's ground-truth labels can stand in for a 2D segmenter the robot runs (``--labels-topic``:
mono8 class ids with the image's header, 255 = unknown; ``--label-info-topic``: its class names as
a latched ``vision_msgs/LabelInfo``), optionally corrupted in blobs like an imperfect segmenter
(``--label-noise F``: F of each map's pixels wrong, :mod:`gsnerf_ros.data.label_corruption`,
seeded by ``--label-noise-seed`` and the frame index).
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

from gsnerf_ros.data.bag_discovery import add_layout_arguments
from gsnerf_ros.data.scene import InMemoryScene, Scene
from gsnerf_ros.geometry import invert_pose, make_pose
from gsnerf_ros.ros import convert
from gsnerf_ros.ros.process import stop_on_signals
from gsnerf_ros.ros.ros_libs import tf2_ros

__all__ = ["Player", "BagPlayback", "PlaybackError", "static_tf_message", "segmenter_labels",
           "wait_for_subscribers", "main", "save_scene_file", "load_scene_file", "BODY_T_OPTICAL",
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
                 camera_frame: str = "camera_optical_frame", encoding: str = "rgb8",
                 with_camera: bool = True, labels_topic: str = "",
                 label_info_topic: str = "") -> None:
        super().__init__("gsnerf_player")
        self.world_frame, self.base_frame, self.camera_frame = world_frame, base_frame, camera_frame
        self.encoding = encoding
        self._static_sent = False
        if not with_camera:      # a bag: BagPlayback creates the publishers of its layout
            return
        self.pub_image = self.create_publisher(Image, image_topic, qos_profile_sensor_data)
        self.pub_info = self.create_publisher(CameraInfo, camera_info_topic, qos_profile_sensor_data)
        self.pub_depth = (self.create_publisher(Image, depth_topic, qos_profile_sensor_data)
                          if depth_topic else None)
        self.pub_labels = (self.create_publisher(Image, labels_topic, qos_profile_sensor_data)
                           if labels_topic else None)
        self.pub_label_info = None
        if label_info_topic:
            from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
            from vision_msgs.msg import LabelInfo

            self.pub_label_info = self.create_publisher(LabelInfo, label_info_topic, QoSProfile(
                depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                reliability=ReliabilityPolicy.RELIABLE))
        self.tf = tf2_ros.TransformBroadcaster(self)
        self.tf_static = tf2_ros.StaticTransformBroadcaster(self)

    def send_static(self) -> None:
        stamp = self.get_clock().now().to_msg()
        self.tf_static.sendTransform(convert.c2w_to_transform(
            BODY_T_OPTICAL, self.base_frame, self.camera_frame, stamp))
        self._static_sent = True

    def publish_label_info(self, class_names: Sequence[str]) -> None:
        """The segmenter's class names (id = position) on the latched label_info topic."""
        if self.pub_label_info is not None:
            header = Header(stamp=self.get_clock().now().to_msg(), frame_id=self.camera_frame)
            self.pub_label_info.publish(convert.label_info(class_names, header))

    def publish_frame(self, image: torch.Tensor, K: torch.Tensor, c2w: torch.Tensor,
                      depth: torch.Tensor | None = None,
                      labels: torch.Tensor | None = None) -> Any:
        """Publish one frame now: /tf first, then image, camera_info (and depth, and labels).
        Returns the stamp.

        ``image`` [3,H,W] in [0,1]; ``K`` [3,3]; ``c2w`` [4,4] world <- optical; ``depth`` [H,W] m;
        ``labels`` [H,W] class ids (< 0 or 255 = unknown), published as mono8 with the image's
        header (a segmenter copies it).
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
        if labels is not None and self.pub_labels is not None:
            lab = labels.numpy()
            ids = np.where((lab < 0) | (lab > 255), 255, lab).astype(np.uint8)
            self.pub_labels.publish(convert.array_to_image(ids, "mono8", header))
        return stamp


def segmenter_labels(labels: torch.Tensor | None, noise: float, seed: int,
                     index: int) -> torch.Tensor | None:
    """A frame's ground-truth labels as a segmenter's (255 -> unknown -1), with ``noise`` of
    the known pixels wrong in blobs (seeded by ``seed`` and the frame ``index``)."""
    if labels is None:
        return None
    lab = torch.where(labels == 255, torch.full_like(labels, -1), labels)
    if noise <= 0:
        return lab
    from gsnerf_ros.data.label_corruption import corrupt_blobs

    return corrupt_blobs(lab, noise, np.random.default_rng([seed, index]))


def _msg_class(typename: str) -> Any:
    """``sensor_msgs/msg/Image`` -> the rclpy message class."""
    pkg, _, name = typename.split("/")
    return getattr(importlib.import_module(f"{pkg}.msg"), name)


class PlaybackError(RuntimeError):
    """The bag cannot be played; the message says why and what to do."""


def static_tf_message(layout: Any, stamp: Any) -> Any:
    """One ``tf2_msgs/TFMessage`` holding the union of the bag's static transforms
    (``layout.static_transforms``: every /tf_static message, latest per child frame)."""
    from geometry_msgs.msg import TransformStamped
    from tf2_msgs.msg import TFMessage

    out = TFMessage()
    for st in layout.static_transforms:
        t = TransformStamped()
        t.header.stamp, t.header.frame_id, t.child_frame_id = stamp, st.parent, st.child
        (t.transform.translation.x, t.transform.translation.y,
         t.transform.translation.z) = st.translation
        (t.transform.rotation.x, t.transform.rotation.y, t.transform.rotation.z,
         t.transform.rotation.w) = st.quaternion
        out.transforms.append(t)
    return out


def wait_for_subscribers(pubs: Sequence[Any], timeout: float,
                         stop: threading.Event | None = None) -> None:
    """Wait until every publisher in ``pubs`` is matched by a subscription, so that no message
    is lost while the node's subscriptions are still being discovered.

    Raises :class:`PlaybackError` naming the unmatched topics after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        missing = [p.topic_name for p in pubs if p.get_subscription_count() == 0]
        if not missing or (stop is not None and stop.is_set()):
            return
        if time.monotonic() > deadline:
            raise PlaybackError(f"no subscriber on {', '.join(missing)} after {timeout:g} s; "
                                "start the node first and check its topics.* parameters "
                                "(and ROS_DOMAIN_ID)")
        time.sleep(0.05)


class BagPlayback:
    """Plays one bag as a camera driver + robot_state_publisher would.

    The layout comes from :func:`~gsnerf_ros.data.bag_discovery.discover` (the same rules as
    every other entry point); the colour image goes out on ``image_topic`` (a CompressedImage
    on ``image_topic + "/compressed"``, as image_transport names it), its CameraInfo on
    ``camera_info_topic``, /tf as recorded, and the union of every /tf_static message once, on
    one transient-local publisher created here (a late subscriber gets all of it).
    """

    def __init__(self, node: Node, bag: str, image_topic: str, camera_info_topic: str,
                 world_frame: str | None = None, bag_image_topic: str | None = None,
                 bag_camera_info_topic: str | None = None, reliable: bool = False) -> None:
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
        from tf2_msgs.msg import TFMessage

        from gsnerf_ros.data.bag_discovery import discover

        self.node, self.bag = node, bag
        self.layout = discover(bag, world_frame or None, bag_image_topic or None,
                               bag_camera_info_topic or None)
        lay = self.layout
        img_out = node.resolve_topic_name(image_topic)
        if lay.compressed:
            img_out += "/compressed"
        img_type = lay.topics[lay.image_topic]
        self.topics = {lay.image_topic: img_out,
                       lay.camera_info_topic: node.resolve_topic_name(camera_info_topic)}
        # --reliable: every message kept until each subscriber acknowledged it (no depth limit)
        keep_all = QoSProfile(depth=1, history=HistoryPolicy.KEEP_ALL,
                              reliability=ReliabilityPolicy.RELIABLE)
        camera_qos = keep_all if reliable else qos_profile_sensor_data
        self.pubs: dict[str, Any] = {
            img_out: node.create_publisher(_msg_class(img_type), img_out, camera_qos),
            self.topics[lay.camera_info_topic]: node.create_publisher(
                CameraInfo, self.topics[lay.camera_info_topic], camera_qos),
        }
        if "/tf" in lay.topics:
            self.topics["/tf"] = "/tf"
            self.pubs["/tf"] = node.create_publisher(
                TFMessage, "/tf", keep_all if reliable else QoSProfile(depth=100))
        self.pub_static = node.create_publisher(TFMessage, "/tf_static", QoSProfile(
            depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
            reliability=ReliabilityPolicy.RELIABLE))

    def describe(self) -> str:
        lay = self.layout
        kind = "CompressedImage" if lay.compressed else "Image"
        return (f"bag {lay.path}: {lay.image_topic} ({kind}) "
                f"-> {self.topics[lay.image_topic]}, {lay.camera_info_topic} -> "
                f"{self.topics[lay.camera_info_topic]}, world frame {lay.world_frame!r} "
                f"({lay.world_frame_source}), camera frame {lay.camera_frame!r}, "
                f"{len(lay.static_transforms)} static transform(s)")

    def send_static(self) -> None:
        """Publish the union of the static transforms (latched)."""
        now = self.node.get_clock().now().to_msg()
        self.pub_static.publish(static_tf_message(self.layout, now))

    def play(self, rate: float, loop: bool, stop: threading.Event | None = None) -> int:
        """Republish the image / camera_info / tf messages at ``rate`` x the recorded pace;
        returns the number of messages published."""
        from rclpy.serialization import deserialize_message
        from rosbags.highlevel import AnyReader

        if rate <= 0:
            raise PlaybackError(f"--rate must be > 0, got {rate}")
        count = 0
        while True:
            with AnyReader([self.layout.path]) as reader:
                conns = [c for c in reader.connections if c.topic in self.topics]
                t_first, w_first = None, time.monotonic()
                for conn, t_ns, raw in reader.messages(connections=conns):
                    if stop is not None and stop.is_set():
                        return count
                    cls = _msg_class(conn.msgtype)
                    t_first = t_ns if t_first is None else t_first
                    delay = w_first + (t_ns - t_first) * 1e-9 / rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    self.pubs[self.topics[conn.topic]].publish(deserialize_message(bytes(raw), cls))
                    count += 1
            if not loop or (stop is not None and stop.is_set()):
                return count

    def wait_acknowledged(self, timeout: float, stop: threading.Event | None = None) -> None:
        """Wait until every subscriber acknowledged every message published (the reliable
        publishers of ``reliable``; a best-effort one returns at once). Raises
        :class:`PlaybackError` naming the topics still unacknowledged after ``timeout`` s."""
        from rclpy.duration import Duration

        deadline = time.monotonic() + timeout
        waiting = list(self.pubs.items())
        while waiting and not (stop is not None and stop.is_set()):
            waiting = [(t, p) for t, p in waiting
                       if not p.wait_for_all_acked(Duration(seconds=0.1))]
            if waiting and time.monotonic() > deadline:
                raise PlaybackError(
                    f"{', '.join(t for t, _ in waiting)}: not every subscriber acknowledged the "
                    f"messages after {timeout:g} s")


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
    ap.add_argument("--rate", type=float, default=None,
                    help="procedural room: frames per second (default 10); bag: playback speed "
                         "factor (default 1, the recorded pace, as `ros2 bag play`)")
    ap.add_argument("--loop", action="store_true", help="start over at the end")
    ap.add_argument("--start-delay", type=float, default=0.5,
                    help="seconds between the subscribers matching and the first frame")
    ap.add_argument("--wait-subscribers", type=float, default=30.0,
                    help="seconds to wait until the image, camera_info (and, for a bag, /tf) "
                         "topics have a subscriber; a bag fails with the reason after that, "
                         "a procedural room plays anyway (0 = do not wait)")
    ap.add_argument("--reliable", action="store_true",
                    help="bag: publish every topic reliably, each message kept until every "
                         "subscriber acknowledged it, and exit once they all did (default: the "
                         "camera topics best effort, as a camera driver publishes them)")
    ap.add_argument("--ack-timeout", type=float, default=60.0,
                    help="with --reliable: seconds to wait at the end for the acknowledgements; "
                         "exit 2 with the unacknowledged topics after that")
    bag = ap.add_argument_group("bag layout (default: found in the bag, as every entry point)")
    add_layout_arguments(bag, "; a procedural room: the frame its poses are published in "
                              "(default map)")
    out = ap.add_argument_group("output")
    out.add_argument("--out-image-topic", default="image",
                     help="published Image topic (a bag's CompressedImage goes out on "
                          "<this>/compressed, as image_transport names it)")
    out.add_argument("--out-camera-info-topic", default="camera_info")
    out.add_argument("--depth-topic", default="", help="room: also publish 16UC1 depth here")
    out.add_argument("--labels-topic", default="",
                     help="room: also publish its labels (mono8 class ids, 255 = unknown) here, "
                          "as a 2D segmenter would")
    out.add_argument("--label-info-topic", default="",
                     help="room: the labels' class names as a latched vision_msgs/LabelInfo")
    out.add_argument("--label-noise", type=float, default=0.0,
                     help="room: make this share of each label map wrong, in blobs (an "
                          "imperfect segmenter)")
    out.add_argument("--label-noise-seed", type=int, default=0)
    out.add_argument("--base-frame", default="base_link")
    out.add_argument("--camera-frame", default="camera_optical_frame")
    out.add_argument("--encoding", default="rgb8", choices=("rgb8", "bgr8"))
    return ap


def _play_bag(node: Player, args: argparse.Namespace, stop: threading.Event) -> int:
    """Discover, wait for the node, play; returns the exit code (2 with the reason on error)."""
    from gsnerf_ros.data.bag_discovery import BagDiscoveryError

    log = node.get_logger()
    try:
        pb = BagPlayback(node, args.bag, args.out_image_topic, args.out_camera_info_topic,
                         args.world_frame, args.image_topic, args.camera_info_topic,
                         reliable=args.reliable)
        log.info(pb.describe())
        pb.send_static()
        if args.wait_subscribers > 0:
            wait_for_subscribers(list(pb.pubs.values()), args.wait_subscribers, stop)
        stop.wait(args.start_delay)
        rate = 1.0 if args.rate is None else args.rate
        n = pb.play(rate, args.loop, stop)
        if args.reliable:
            pb.wait_acknowledged(args.ack_timeout, stop)
    except (BagDiscoveryError, FileNotFoundError, PlaybackError) as exc:
        log.error(f"cannot play {args.bag}: {exc}")
        print(f"gsnerf_player: error: {exc}", file=sys.stderr, flush=True)
        return 2
    log.info(f"bag {args.bag}: {n} messages published at rate {rate:g}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``gsnerf_player``; exits 0 at the end of the data or on SIGINT/SIGTERM,
    2 with the reason when a bag cannot be played."""
    from rclpy.utilities import remove_ros_args

    raw = list(sys.argv if argv is None else ["gsnerf_player", *argv])
    ap = _parser()
    args = ap.parse_args(remove_ros_args(raw)[1:])
    if args.reliable and not args.bag:
        ap.error("--reliable plays a bag (--bag PATH)")
    rclpy.init(args=raw, signal_handler_options=SignalHandlerOptions.NO)
    stop = stop_on_signals()
    node: Player | None = None
    try:
        node = Player(args.out_image_topic, args.out_camera_info_topic,
                      "" if args.bag else args.depth_topic, args.world_frame or "map",
                      args.base_frame, args.camera_frame, args.encoding, with_camera=not args.bag,
                      labels_topic="" if args.bag else args.labels_topic,
                      label_info_topic="" if args.bag else args.label_info_topic)
        log = node.get_logger()
        if args.bag:
            return _play_bag(node, args, stop)
        if args.wait_subscribers > 0:
            try:
                wait_for_subscribers([node.pub_image, node.pub_info], args.wait_subscribers, stop)
            except PlaybackError as exc:
                log.warning(f"{exc}; playing anyway")
        stop.wait(args.start_delay)
        rate = 10.0 if args.rate is None else args.rate
        scene = (load_scene_file(args.scene_file) if args.scene_file else
                 make_scene(args.seed, args.split, args.frames, args.height, args.width, args.fov))
        node.publish_label_info(scene.class_names)
        skip = parse_holdout(args.holdout, len(scene))
        order = [i for i in range(len(scene)) if i not in skip]
        log.info(f"playing {scene.name}: {len(order)} of {len(scene)} frames at {rate} Hz "
                 f"({len(skip)} held out)")
        while not stop.is_set():
            for i in order:
                if stop.is_set():
                    break
                f = scene.frame(i)
                node.publish_frame(f.image, f.K, f.c2w, f.depth if args.depth_topic else None,
                                   segmenter_labels(f.labels, args.label_noise,
                                                    args.label_noise_seed, i)
                                   if args.labels_topic else None)
                stop.wait(1.0 / rate)
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


if __name__ == "__main__":
    sys.exit(main())
