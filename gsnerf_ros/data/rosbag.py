"""Read (and write) ROS 2 bags, mcap or sqlite3, with ``rosbags`` only (no ROS install).

Reading (:class:`BagScene`) turns a recording into keyframes of a :class:`Scene`:

- colour: ``sensor_msgs/Image`` (8- or 16-bit colour or grey: rgb8, bgr8, rgba8, bgra8, mono8,
  mono16, rgb16, ...; a generic 8UC3 is taken in its stored order) or
  ``sensor_msgs/CompressedImage`` (jpeg/png); intrinsics from ``sensor_msgs/CameraInfo``
  (``k``, rescaled if the image size differs);
- topics and world frame named in :class:`BagConfig` or found by the rules of
  :mod:`~gsnerf_ros.data.bag_discovery` (the one colour / CameraInfo topic; the root of the TF
  tree, or the pose topic's frame);
- camera pose at each image's header stamp: from ``/tf`` + every ``/tf_static`` message
  (``world_frame`` -> the image's ``frame_id``, interpolated: linear translation, slerp
  rotation), or from a
  ``geometry_msgs/PoseStamped`` / ``nav_msgs/Odometry`` topic (interpolated; the pose is that
  of the camera optical frame unless ``camera_in_body`` gives the camera in the pose's body
  frame);
- optional depth (16UC1 mm or 32FC1 m) and labels (mono8/mono16/8UC1/16UC1) topics, matched
  to the colour stamp within ``sync_tolerance`` seconds (nearest);
- keyframes: a frame is kept when the camera moved ``keyframe_translation`` m or turned
  ``keyframe_rotation_deg`` since the last keyframe (the first posed frame is always kept).

Two passes over the bag: the first reads stamps, transforms and camera info (image payloads
are not decoded); the second decodes only the keyframes' images.

Writing (:func:`write_bag`, in :mod:`~gsnerf_ros.data.bag_writer`, re-exported here) records a
:class:`Scene` as such a bag; tests and the ROS demo use it. Message decoding and stamps live in
:mod:`~gsnerf_ros.data.bag_messages`, TF trees and pose interpolation in
:mod:`~gsnerf_ros.data.bag_poses`.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

from gsnerf_ros.data.bag_discovery import find_bags, pick_topics, tf_world_frame
from gsnerf_ros.data.bag_messages import (
    ODOMETRY, POSE_STAMPED, decode_image, encode_image, stamp_seconds,
)
from gsnerf_ros.data.bag_poses import TfTree, TransformTrack, tq_to_matrix
from gsnerf_ros.data.bag_writer import write_bag
from gsnerf_ros.data.classes import IGNORE_INDEX, make_palette
from gsnerf_ros.data.scene import Frame, Scene
from gsnerf_ros.geometry import scale_intrinsics

__all__ = ["BagConfig", "BagScene", "write_bag", "decode_image", "encode_image"]


@dataclass
class BagConfig:
    """What to read from a bag. Topics and world frame left ``None`` are found where
    unambiguous (:mod:`~gsnerf_ros.data.bag_discovery`)."""

    image_topic: str | None = None
    camera_info_topic: str | None = None
    depth_topic: str | None = None
    label_topic: str | None = None
    pose_topic: str | None = None
    """PoseStamped or Odometry topic; None = use /tf and /tf_static."""
    world_frame: str | None = None
    """Frame the poses are expressed in; None = the root of the bag's TF tree (or the pose
    topic's ``frame_id``)."""
    camera_frame: str | None = None
    """Camera optical frame for TF lookups; None = each image's header frame_id."""
    camera_in_body: list[float] | None = None
    """Row-major 4x4 pose of the camera optical frame in the pose topic's body frame."""
    sync_tolerance: float = 0.03
    """Max |stamp difference| (s) for matching depth/labels and extrapolating poses."""
    keyframe_translation: float = 0.05
    keyframe_rotation_deg: float = 5.0
    max_frames: int = 0
    """Stop after this many keyframes (0 = all)."""
    class_names: list[str] = field(default_factory=list)
    """Names of the label ids (when a label topic is used)."""
    near: float = 0.1
    far: float = 10.0


def _nearest(times: list[float], t: float, tol: float) -> int | None:
    if not times:
        return None
    i = bisect.bisect_left(times, t)
    best = None
    for j in (i - 1, i):
        if 0 <= j < len(times) and abs(times[j] - t) <= tol:
            if best is None or abs(times[j] - t) < abs(times[best] - t):
                best = j
    return best


# --- reader --------------------------------------------------------------------------------
class BagScene(Scene):
    """Keyframes of one ROS 2 bag (mcap or sqlite3 directory, or one of its ``.mcap``/``.db3``
    files). A folder of several bags is several scenes: :func:`~gsnerf_ros.data.formats.open_scenes`.

    After loading, ``image_topic``, ``camera_info_topic``, ``world_frame`` and ``stats`` say
    what was read."""

    def __init__(self, path: str | Path, cfg: BagConfig | None = None, name: str | None = None) -> None:
        from rosbags.highlevel import AnyReader
        from rosbags.typesys import Stores, get_typestore

        self.cfg = cfg = cfg or BagConfig()
        bags = find_bags(path)
        if len(bags) != 1:
            raise ValueError(f"{path} holds {len(bags)} bags; read each as its own scene "
                             f"(gsnerf_ros.data.formats.open_scenes(path, 'bag'))")
        p = bags[0]
        self.path = p
        self.name = name or p.name
        self.near, self.far = cfg.near, cfg.far
        ts = get_typestore(Stores.ROS2_HUMBLE)
        self.stats: dict[str, int] = {}
        with AnyReader([p], default_typestore=ts) as reader:
            conns = {c.topic: c for c in reader.connections}
            img_topic, info_topic, _ = pick_topics({t: c.msgtype for t, c in conns.items()},
                                                   cfg.image_topic, cfg.camera_info_topic, str(p))
            self.image_topic, self.camera_info_topic = img_topic, info_topic
            for t in (cfg.depth_topic, cfg.label_topic, cfg.pose_topic):
                if t is not None and t not in conns:
                    raise ValueError(f"bag {p}: topic {t!r} not found; topics: {sorted(conns)}")
            # pass 1: stamps, camera info, poses
            tf = TfTree()
            pose_track = TransformTrack()
            pose_body = None
            infos: list[tuple[float, np.ndarray, int, int]] = []
            img_meta: list[tuple[float, str, int]] = []  # (stamp, frame_id, log time)
            side: dict[str, list[tuple[float, int]]] = {"depth": [], "labels": []}
            side_topics = {"depth": cfg.depth_topic, "labels": cfg.label_topic}
            want = [c for c in reader.connections if c.topic in
                    {img_topic, info_topic, cfg.depth_topic, cfg.label_topic, cfg.pose_topic,
                     "/tf", "/tf_static"}]
            for c, logt, raw in reader.messages(connections=want):
                msg = reader.deserialize(raw, c.msgtype)
                if c.topic == img_topic:
                    img_meta.append((stamp_seconds(msg), msg.header.frame_id.lstrip("/"), logt))
                elif c.topic == info_topic:
                    infos.append((stamp_seconds(msg),
                                  np.asarray(msg.k, dtype=np.float64).reshape(3, 3),
                                  int(msg.height), int(msg.width)))
                elif c.topic in ("/tf", "/tf_static"):
                    tf.add(msg, static=c.topic == "/tf_static")
                elif c.topic == cfg.pose_topic:
                    if c.msgtype == ODOMETRY:
                        pose = msg.pose.pose
                    elif c.msgtype == POSE_STAMPED:
                        pose = msg.pose
                    else:
                        raise ValueError(f"pose topic {c.topic!r} has type {c.msgtype}; "
                                         "use PoseStamped or Odometry")
                    pose_body = msg.header.frame_id
                    pose_track.add(stamp_seconds(msg),
                                   tq_to_matrix(pose.position, pose.orientation))
                for k, t in side_topics.items():
                    if t is not None and c.topic == t:
                        side[k].append((stamp_seconds(msg), logt))
            if not img_meta:
                raise ValueError(f"bag {p}: no messages on image topic {img_topic!r}")
            if not infos:
                raise ValueError(f"bag {p}: no CameraInfo on {info_topic!r}")
            for k in side:
                side[k].sort()
            world = self._world_frame(tf, pose_body, img_meta, p)
            self.world_frame = world
            cam_in_body = (np.asarray(cfg.camera_in_body, dtype=np.float64).reshape(4, 4)
                           if cfg.camera_in_body is not None else np.eye(4))
            # poses at image stamps and keyframe selection
            img_meta.sort()
            selected: list[tuple[float, str, int, np.ndarray]] = []
            n_noposes = 0
            for stamp, frame_id, logt in img_meta:
                if cfg.pose_topic is not None:
                    Tb = pose_track.at(stamp, cfg.sync_tolerance)
                    T = None if Tb is None else Tb @ cam_in_body
                    if pose_body and pose_body.lstrip("/") != world and T is not None:
                        Tw = tf.lookup(world, pose_body, stamp, cfg.sync_tolerance)
                        T = None if Tw is None else Tw @ T
                else:
                    T = tf.lookup(world, cfg.camera_frame or frame_id, stamp, cfg.sync_tolerance)
                if T is None:
                    n_noposes += 1
                    continue
                if selected:
                    last = selected[-1][3]
                    dt = np.linalg.norm(T[:3, 3] - last[:3, 3])
                    cos = (np.trace(last[:3, :3].T @ T[:3, :3]) - 1) / 2
                    ang = math.degrees(math.acos(max(-1.0, min(1.0, cos))))
                    if dt < cfg.keyframe_translation and ang < cfg.keyframe_rotation_deg:
                        continue
                selected.append((stamp, frame_id, logt, T))
                if cfg.max_frames and len(selected) >= cfg.max_frames:
                    break
            if not selected:
                tf_times = "; ".join(f"{par} -> {c} {t0:.3f}..{t1:.3f} s" for c, (par, t0, t1)
                                     in tf.dynamic_ranges().items()) or "none"
                raise ValueError(f"bag {p}: no image has a pose (0 of {len(img_meta)}; {world!r} "
                                 f"-> camera via {'the pose topic' if cfg.pose_topic else '/tf'}"
                                 f"); images {img_meta[0][0]:.3f}..{img_meta[-1][0]:.3f} s, /tf "
                                 f"{tf_times}; check world_frame / camera_frame / pose_topic")
            self.stats = {"images": len(img_meta), "without_pose": n_noposes,
                          "keyframes": len(selected)}
            # pass 2: decode the keyframes
            want_log = {s[2]: i for i, s in enumerate(selected)}
            side_log: dict[str, dict[int, int]] = {"depth": {}, "labels": {}}
            for k in side:
                times = [s for s, _ in side[k]]
                for i, (stamp, *_r) in enumerate(selected):
                    j = _nearest(times, stamp, cfg.sync_tolerance)
                    if j is not None:
                        side_log[k][side[k][j][1]] = i
            images: dict[int, np.ndarray] = {}
            extras: dict[str, dict[int, np.ndarray]] = {"depth": {}, "labels": {}}
            want2 = [c for c in reader.connections
                     if c.topic in {img_topic, cfg.depth_topic, cfg.label_topic}]
            for c, logt, raw in reader.messages(connections=want2):
                if c.topic == img_topic and logt in want_log:
                    images[want_log[logt]] = decode_image(reader.deserialize(raw, c.msgtype), "rgb")
                for k, t in side_topics.items():
                    if t is not None and c.topic == t and logt in side_log[k]:
                        extras[k][side_log[k][logt]] = decode_image(
                            reader.deserialize(raw, c.msgtype), k)
        info_t = [x[0] for x in infos]
        self._frames: list[Frame] = []
        for i, (stamp, frame_id, _logt, T) in enumerate(selected):
            img = images[i]
            H, W = img.shape[:2]
            j = max(0, bisect.bisect_right(info_t, stamp) - 1)
            _, K, ih, iw = infos[j]
            Kt = torch.from_numpy(K.copy()).float()
            if (ih, iw) != (H, W) and ih > 0 and iw > 0:
                Kt = scale_intrinsics(Kt, W / iw, H / ih)
            scale = 65535.0 if img.dtype == np.uint16 else 255.0
            image = torch.from_numpy(img.astype(np.float32) / scale).permute(2, 0, 1).contiguous()
            depth = extras["depth"].get(i)
            labels = extras["labels"].get(i)
            self._frames.append(Frame(
                image=image, K=Kt, c2w=torch.from_numpy(T).float(),
                depth=None if depth is None else torch.from_numpy(self._fit(depth, H, W, True)),
                labels=None if labels is None else torch.from_numpy(self._fit(labels, H, W, True)),
                frame_id=f"{frame_id}@{stamp:.6f}", stamp=stamp))
        self.height, self.width = self._frames[0].height, self._frames[0].width
        n_cls = len(cfg.class_names)
        if not n_cls and any(f.labels is not None for f in self._frames):
            ids = torch.cat([f.labels[f.labels != IGNORE_INDEX].flatten()
                             for f in self._frames if f.labels is not None])
            n_cls = int(ids.max()) + 1 if ids.numel() else 0
        self.class_names = list(cfg.class_names) or [f"class_{i}" for i in range(n_cls)]
        self.palette = make_palette(len(self.class_names))

    @staticmethod
    def _fit(arr: np.ndarray, H: int, W: int, nearest: bool) -> np.ndarray:
        if arr.shape[:2] == (H, W):
            return arr
        a = arr.astype(np.float32) if arr.dtype == np.int64 else arr
        out = cv2.resize(a, (W, H), interpolation=cv2.INTER_NEAREST)
        return out.astype(arr.dtype)

    def _world_frame(self, tf: TfTree, pose_body: str | None,
                     img_meta: list[tuple[float, str, int]], p: Path) -> str:
        """The configured world frame, else the pose topic's frame, else the TF tree's root."""
        cfg = self.cfg
        if cfg.world_frame:
            return cfg.world_frame.lstrip("/")
        if cfg.pose_topic is not None:
            if not pose_body:
                raise ValueError(f"bag {p}: no message on the pose topic {cfg.pose_topic!r}")
            return pose_body.lstrip("/")
        return tf_world_frame(tf.parents(), cfg.camera_frame or img_meta[0][1], str(p))

    def __len__(self) -> int:
        return len(self._frames)

    def frame(self, i: int) -> Frame:
        return self._frames[self._check_index(i)]

    def poses(self) -> Tensor:
        return torch.stack([f.c2w for f in self._frames])

    def intrinsics(self) -> Tensor:
        return torch.stack([f.K for f in self._frames])
