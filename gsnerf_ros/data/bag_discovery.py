"""What a ROS 2 bag holds, found without being told: the bags under a path, the colour image and
camera-info topics, the world frame (root of the bag's TF tree) and every static transform.

The same rules serve every entry point (``BagScene``, ``gsnerf-eval``, ``gsnerf-train`` and the
ROS player / demo), so a robot's own recording works with no options, and an explicit name
(``world_frame``, ``image_topic``, ``camera_info_topic``) always wins:

- **bags**: a rosbag2 directory (``metadata.yaml`` + ``.mcap`` / ``.db3``), one of its storage
  files, or a folder holding several such directories (:func:`find_bags`);
- **image topic**: the one ``sensor_msgs/Image`` or ``CompressedImage`` topic whose name does not
  say depth / labels; an image_transport pair ``X`` + ``X/compressed`` counts as one stream
  (the lossless ``X`` is read);
- **camera info**: the one ``CameraInfo`` topic, or the one beside the image topic;
- **world frame**: the root of the TF tree (``/tf`` + every ``/tf_static`` message) that holds
  the camera's frame. Several unconnected trees, or a frame with two parents, is an error that
  names them, as is a camera frame outside every tree.

:func:`discover` reads a bag once for these and returns a :class:`BagLayout`;
``python -m gsnerf_ros.data.bag_discovery PATH`` prints it for every bag under PATH.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gsnerf_ros.data.bag_messages import (
    CAMERA_INFO, COMPRESSED_IMAGE, IMAGE, ODOMETRY, POSE_STAMPED,
)
from gsnerf_ros.data.bag_poses import StaticTransform, TfTree
from gsnerf_ros.data.io import natural_key

__all__ = ["BagLayout", "StaticTransform", "BagDiscoveryError", "find_bags", "pick_topics",
           "tf_world_frame", "discover", "layout_summary", "add_layout_arguments", "HOW_TO_NAME"]

HOW_TO_NAME = ("name it with --world-frame / --image-topic / --camera-info-topic (gsnerf-eval, "
               "player, demo), data.world_frame / data.image_topic / data.camera_info_topic "
               "(gsnerf-train) or BagConfig")
"""How every entry point names the world frame and topics (quoted by the errors)."""

_NOT_COLOUR = ("depth", "label", "semantic", "disparity", "confidence")


class BagDiscoveryError(ValueError):
    """A bag's layout cannot be found unambiguously; the message says what to name."""


@dataclass
class BagLayout:
    """Where the camera, its calibration and its pose are in one bag."""

    path: Path
    topics: dict[str, str]
    """Every topic -> message type."""
    image_topic: str
    camera_info_topic: str
    compressed: bool
    """True when ``image_topic`` carries ``sensor_msgs/CompressedImage``."""
    camera_frame: str
    """``frame_id`` of the first image (the camera optical frame)."""
    world_frame: str
    world_frame_source: str
    """``"given"``, ``"tf root"`` or ``"pose topic"``."""
    static_transforms: list[StaticTransform] = field(default_factory=list)
    """The union of every ``/tf_static`` message (the latest transform per child frame)."""
    tf_parents: dict[str, set[str]] = field(default_factory=dict)
    """child frame -> parent frames seen on /tf and /tf_static."""


def find_bags(path: str | Path) -> list[Path]:
    """The rosbag2 directories at ``path``: itself (a bag directory, or one of its ``.mcap`` /
    ``.db3`` files) or every bag directory below it, naturally sorted.

    Raises ``FileNotFoundError`` when there is none, naming storage files that lack their
    ``metadata.yaml`` (``ros2 bag reindex DIR -s mcap`` writes it).
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"bag {p} does not exist")
    if p.is_file():
        if p.suffix in (".mcap", ".db3") and (p.parent / "metadata.yaml").is_file():
            return [p.parent]
        raise FileNotFoundError(
            f"{p} is not a rosbag2 bag: a bag is a directory with metadata.yaml and .mcap/.db3 "
            f"files{_reindex_hint([p])}")
    if (p / "metadata.yaml").is_file():
        return [p]
    bags = sorted({m.parent for m in p.rglob("metadata.yaml")}, key=lambda d: natural_key(str(d)))
    if not bags:
        loose = [f for f in p.rglob("*") if f.suffix in (".mcap", ".db3")]
        raise FileNotFoundError(f"no rosbag2 bag (a directory with metadata.yaml) under {p}"
                                f"{_reindex_hint(loose)}")
    return bags


def _reindex_hint(files: list[Path]) -> str:
    if not files:
        return ""
    names = ", ".join(str(f) for f in files[:5]) + (" ..." if len(files) > 5 else "")
    return (f"; storage files without metadata.yaml: {names} (restore it with `ros2 bag "
            f"reindex DIR -s mcap|sqlite3`, or put each file in its own folder with its "
            f"metadata.yaml)")


def _stream_base(topic: str) -> str:
    """``/cam/image_raw/compressed`` -> ``/cam/image_raw`` (image_transport sub-topic)."""
    return topic[: -len("/compressed")] if topic.endswith("/compressed") else topic


def _only(cands: list[str], what: str, topics: dict[str, str], where: str) -> str:
    """The single candidate, or an error listing them and how to name one."""
    if len(cands) != 1:
        raise BagDiscoveryError(
            f"{where}: cannot pick the {what} topic: "
            f"{'candidates ' + str(sorted(cands)) if cands else 'no such topic'} (topics: "
            f"{sorted(topics)}); {HOW_TO_NAME}")
    return cands[0]


def pick_topics(topics: dict[str, str], image_topic: str | None = None,
                camera_info_topic: str | None = None, where: str = "bag"
                ) -> tuple[str, str, bool]:
    """(image topic, camera-info topic, compressed) of a bag with ``topics`` (name -> type).

    Given names are checked; a missing one is picked when exactly one candidate fits (rules in
    the module docstring). Raises :class:`BagDiscoveryError` listing the candidates otherwise.
    """
    for t, role, types in ((image_topic, "image", (IMAGE, COMPRESSED_IMAGE)),
                           (camera_info_topic, "camera_info", (CAMERA_INFO,))):
        if t is not None and t not in topics:
            raise BagDiscoveryError(f"{where}: {role} topic {t!r} not found; topics: "
                                    f"{sorted(topics)}")
        if t is not None and topics[t] not in types:
            raise BagDiscoveryError(f"{where}: {role} topic {t!r} has type {topics[t]}, not "
                                    f"{' or '.join(types)}")
    if image_topic is None:
        cands = [t for t, ty in topics.items() if ty in (IMAGE, COMPRESSED_IMAGE)
                 and not any(w in t.lower() for w in _NOT_COLOUR)]
        raw = {t for t in cands if topics[t] == IMAGE}
        cands = [t for t in cands if not (topics[t] == COMPRESSED_IMAGE and _stream_base(t) in raw)]
        image_topic = _only(cands, "colour image (Image/CompressedImage)", topics, where)
    if camera_info_topic is None:
        infos = sorted(t for t, ty in topics.items() if ty == CAMERA_INFO)
        if len(infos) > 1:
            ns = _stream_base(image_topic).rsplit("/", 1)[0]
            infos = [t for t in infos if t.rsplit("/", 1)[0] == ns] or infos
        camera_info_topic = _only(infos, f"CameraInfo (for {image_topic})", topics, where)
    return image_topic, camera_info_topic, topics[image_topic] == COMPRESSED_IMAGE


def tf_world_frame(parents: dict[str, set[str]], camera_frame: str, where: str = "bag") -> str:
    """Root of the TF tree given as child -> parents; it must hold ``camera_frame``.

    Raises :class:`BagDiscoveryError` (naming the trees and their frames) when the transforms
    form several unconnected trees, a frame has two parents, or the camera is in no tree.
    """
    camera_frame = camera_frame.lstrip("/")
    if not parents:
        raise BagDiscoveryError(f"{where}: no /tf or /tf_static transforms, so no camera pose; "
                                f"record TF or give a pose topic (BagConfig.pose_topic)")
    twice = {c: sorted(p) for c, p in parents.items() if len(p) > 1}
    if twice:
        raise BagDiscoveryError(f"{where}: frames with more than one parent on /tf: {twice}; "
                                f"the world frame is ambiguous; {HOW_TO_NAME}")
    parent = {c: next(iter(p)) for c, p in parents.items()}
    frames = set(parent) | set(parent.values())

    def root(f: str) -> str:
        seen = set()
        while f in parent and f not in seen:
            seen.add(f)
            f = parent[f]
        return f

    trees: dict[str, list[str]] = {}
    for f in sorted(frames):
        trees.setdefault(root(f), []).append(f)
    desc = "; ".join(f"root {r!r} with frames {fs}" for r, fs in sorted(trees.items()))
    if camera_frame not in frames:
        raise BagDiscoveryError(f"{where}: the camera frame {camera_frame!r} is in no /tf or "
                                f"/tf_static transform (TF trees: {desc})")
    if len(trees) > 1:
        raise BagDiscoveryError(
            f"{where}: TF has {len(trees)} unconnected trees ({desc}); the camera "
            f"{camera_frame!r} is in the tree of {root(camera_frame)!r}. A transform between "
            f"them is missing; or, if that tree is the world, {HOW_TO_NAME}")
    return root(camera_frame)


def discover(path: str | Path, world_frame: str | None = None, image_topic: str | None = None,
             camera_info_topic: str | None = None, pose_topic: str | None = None) -> BagLayout:
    """Read one bag (a path :func:`find_bags` resolves to exactly one bag) for its layout.

    Reads the topic list, every ``/tf`` and ``/tf_static`` message, and the first image header
    (and the first pose message when ``pose_topic`` is given: its ``frame_id`` is then the
    default world frame). Raises :class:`BagDiscoveryError` with the candidates when ambiguous.
    """
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    bags = find_bags(path)
    if len(bags) != 1:
        raise BagDiscoveryError(f"{path} holds {len(bags)} bags ({[str(b) for b in bags]}); "
                                f"discover one at a time")
    bag = bags[0]
    with AnyReader([bag], default_typestore=get_typestore(Stores.ROS2_HUMBLE)) as reader:
        topics = {c.topic: c.msgtype for c in reader.connections}
        img, info, compressed = pick_topics(topics, image_topic, camera_info_topic, str(bag))
        tf = TfTree()
        camera_frame = pose_frame = None
        for c, _t, raw in reader.messages(connections=[c for c in reader.connections
                                                       if c.topic == img]):
            camera_frame = reader.deserialize(raw, c.msgtype).header.frame_id.lstrip("/")
            break  # the first image's header is enough; payloads are not read further
        want = [c for c in reader.connections if c.topic in ("/tf", "/tf_static", pose_topic)]
        for c, _t, raw in reader.messages(connections=want):
            msg = reader.deserialize(raw, c.msgtype)
            if c.topic == pose_topic:
                if c.msgtype not in (POSE_STAMPED, ODOMETRY):
                    raise BagDiscoveryError(f"{bag}: pose topic {pose_topic!r} has type "
                                            f"{c.msgtype}; use PoseStamped or Odometry")
                pose_frame = pose_frame or msg.header.frame_id.lstrip("/")
            else:
                tf.add(msg, static=c.topic == "/tf_static")
    if camera_frame is None:
        raise BagDiscoveryError(f"{bag}: no message on the image topic {img!r}")
    if world_frame:
        world, source = world_frame.lstrip("/"), "given"
    elif pose_topic is not None:
        if pose_frame is None:
            raise BagDiscoveryError(f"{bag}: no message on the pose topic {pose_topic!r}")
        world, source = pose_frame, "pose topic"
    else:
        world, source = tf_world_frame(tf.parents(), camera_frame, str(bag)), "tf root"
    return BagLayout(path=bag, topics=topics, image_topic=img, camera_info_topic=info,
                     compressed=compressed, camera_frame=camera_frame, world_frame=world,
                     world_frame_source=source, static_transforms=tf.static_transforms(),
                     tf_parents=tf.parents())


def add_layout_arguments(parser: Any, world_help: str = "") -> None:
    """``--world-frame``, ``--image-topic`` and ``--camera-info-topic`` (default None: found by
    :func:`discover`) on an argparse parser or group: the same options in every entry point."""
    parser.add_argument("--world-frame", default=None, help="frame of the camera poses (default: "
                        "the root of the bag's TF tree)" + world_help)
    parser.add_argument("--image-topic", default=None, help="Image or CompressedImage topic "
                        "(default: the bag's only colour topic)")
    parser.add_argument("--camera-info-topic", default=None, help="CameraInfo topic (default: "
                        "the only one, or the one beside the image topic)")


def layout_summary(lay: BagLayout) -> dict:
    """A JSON-ready summary of a :class:`BagLayout` (what a player or reader will use)."""
    return {"bag": str(lay.path), "world_frame": lay.world_frame,
            "world_frame_source": lay.world_frame_source, "image_topic": lay.image_topic,
            "compressed": lay.compressed, "camera_info_topic": lay.camera_info_topic,
            "camera_frame": lay.camera_frame,
            "static_transforms": [{"parent": s.parent, "child": s.child,
                                   "translation": s.translation, "quaternion_xyzw": s.quaternion}
                                  for s in lay.static_transforms]}


def main(argv: list[str] | None = None) -> int:
    """``python -m gsnerf_ros.data.bag_discovery PATH``: print, per bag, the world frame, topics
    and static transforms every entry point would use (exit 2 with the reason if ambiguous)."""
    import argparse
    import json

    p = argparse.ArgumentParser(prog="python -m gsnerf_ros.data.bag_discovery",
                                description=main.__doc__)
    p.add_argument("path", help="a bag, one of its storage files, or a folder of bags")
    add_layout_arguments(p)
    args = p.parse_args(argv)
    try:
        out = [layout_summary(discover(b, args.world_frame, args.image_topic,
                                       args.camera_info_topic)) for b in find_bags(args.path)]
    except (ValueError, FileNotFoundError) as exc:
        p.exit(2, f"{p.prog}: error: {exc}\n")
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
