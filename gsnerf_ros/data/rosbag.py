"""Read (and write) ROS 2 bags, mcap or sqlite3, with ``rosbags`` only (no ROS install).

Reading (:class:`BagScene`) turns a recording into keyframes of a :class:`Scene`:

- colour: ``sensor_msgs/Image`` (rgb8, bgr8, rgba8, bgra8, mono8, mono16) or
  ``sensor_msgs/CompressedImage`` (jpeg/png); intrinsics from ``sensor_msgs/CameraInfo``
  (``k``, rescaled if the image size differs);
- camera pose at each image's header stamp: from ``/tf`` + ``/tf_static`` (``world_frame`` ->
  the image's ``frame_id``, interpolated: linear translation, slerp rotation), or from a
  ``geometry_msgs/PoseStamped`` / ``nav_msgs/Odometry`` topic (interpolated; the pose is that
  of the camera optical frame unless ``camera_in_body`` gives the camera in the pose's body
  frame);
- optional depth (16UC1 mm or 32FC1 m) and labels (mono8/mono16/8UC1/16UC1) topics, matched
  to the colour stamp within ``sync_tolerance`` seconds (nearest);
- keyframes: a frame is kept when the camera moved ``keyframe_translation`` m or turned
  ``keyframe_rotation_deg`` since the last keyframe (the first posed frame is always kept).

Two passes over the bag: the first reads stamps, transforms and camera info (image payloads
are not decoded); the second decodes only the keyframes' images.

Writing (:func:`write_bag`) records a :class:`Scene` as such a bag; tests and the ROS demo use it.
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

from gsnerf_ros.data.classes import IGNORE_INDEX, make_palette
from gsnerf_ros.data.scene import Frame, Scene
from gsnerf_ros.geometry import matrix_to_quat, quat_to_matrix, scale_intrinsics

__all__ = ["BagConfig", "BagScene", "write_bag", "decode_image", "encode_image"]

_IMAGE = "sensor_msgs/msg/Image"
_CIMAGE = "sensor_msgs/msg/CompressedImage"
_INFO = "sensor_msgs/msg/CameraInfo"
_TF = "tf2_msgs/msg/TFMessage"
_POSE = "geometry_msgs/msg/PoseStamped"
_ODOM = "nav_msgs/msg/Odometry"


@dataclass
class BagConfig:
    """What to read from a bag. Topics left ``None`` are auto-detected where unambiguous."""

    image_topic: str | None = None
    camera_info_topic: str | None = None
    depth_topic: str | None = None
    label_topic: str | None = None
    pose_topic: str | None = None
    """PoseStamped or Odometry topic; None = use /tf and /tf_static."""
    world_frame: str = "map"
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


# --- image conversion ----------------------------------------------------------------------
def decode_image(msg: object, kind: str = "rgb") -> np.ndarray:
    """Decode an Image / CompressedImage message.

    ``kind="rgb"`` -> uint8/uint16 [H,W,3] RGB; ``"depth"`` -> float32 [H,W] m (0 = invalid);
    ``"labels"`` -> int64 [H,W].
    """
    if hasattr(msg, "encoding"):
        enc = msg.encoding.lower()
        h, w, step = int(msg.height), int(msg.width), int(msg.step)
        raw = np.asarray(msg.data, dtype=np.uint8)
        chans = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "8uc1": 1,
                 "mono16": 1, "16uc1": 1, "32fc1": 1, "8uc3": 3}
        if enc not in chans:
            raise ValueError(f"unsupported image encoding {msg.encoding!r}")
        dtype = {"mono16": np.uint16, "16uc1": np.uint16, "32fc1": np.float32}.get(enc, np.uint8)
        itemsize = np.dtype(dtype).itemsize
        rows = raw.reshape(h, step)[:, : w * chans[enc] * itemsize]
        big = bool(getattr(msg, "is_bigendian", 0))
        arr = np.frombuffer(rows.tobytes(), dtype=np.dtype(dtype).newbyteorder(">" if big else "<"))
        arr = arr.astype(dtype).reshape(h, w, chans[enc]) if chans[enc] > 1 else arr.astype(dtype).reshape(h, w)
    else:  # CompressedImage
        buf = np.frombuffer(np.asarray(msg.data, dtype=np.uint8).tobytes(), dtype=np.uint8)
        if "compresseddepth" in str(getattr(msg, "format", "")).lower():
            raise ValueError("compressedDepth images are not supported; record raw depth")
        arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        if arr is None:
            raise ValueError(f"cannot decode CompressedImage of format {msg.format!r}")
        enc = "bgr8" if arr.ndim == 3 else ("16uc1" if arr.dtype == np.uint16 else "mono8")
        if arr.ndim == 3 and arr.shape[2] == 4:
            arr, enc = arr[..., :3], "bgr8"
    if kind == "rgb":
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=-1)
        if enc.startswith("bgr"):
            arr = arr[..., 2::-1]
        return np.ascontiguousarray(arr[..., :3])
    if kind == "depth":
        if arr.ndim != 2:
            raise ValueError(f"depth must be single-channel, got encoding {enc!r}")
        d = arr.astype(np.float32) / (1000.0 if arr.dtype == np.uint16 else 1.0)
        return np.where(np.isfinite(d) & (d > 0), d, 0.0).astype(np.float32)
    if kind == "labels":
        if arr.ndim != 2:
            raise ValueError(f"labels must be single-channel ids, got encoding {enc!r}")
        return arr.astype(np.int64)
    raise ValueError(f"kind must be rgb, depth or labels, got {kind!r}")


def encode_image(typestore, array: np.ndarray, encoding: str, stamp: float, frame_id: str):
    """Build a ``sensor_msgs/Image`` from an array (row-major, little endian)."""
    Image = typestore.types[_IMAGE]
    arr = np.ascontiguousarray(array)
    h, w = arr.shape[:2]
    return Image(header=_header(typestore, stamp, frame_id), height=h, width=w, encoding=encoding,
                 is_bigendian=0, step=arr.strides[0],
                 data=np.frombuffer(arr.tobytes(), dtype=np.uint8))


def _header(ts, stamp: float, frame_id: str):
    Header = ts.types["std_msgs/msg/Header"]
    Time = ts.types["builtin_interfaces/msg/Time"]
    sec = int(math.floor(stamp))
    return Header(stamp=Time(sec=sec, nanosec=int(round((stamp - sec) * 1e9))), frame_id=frame_id)


def _stamp(msg: object) -> float:
    s = msg.header.stamp
    return float(s.sec) + float(s.nanosec) * 1e-9


# --- poses ---------------------------------------------------------------------------------
def _tq_to_matrix(t, q) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = quat_to_matrix(torch.tensor([q.x, q.y, q.z, q.w], dtype=torch.float64)).numpy()
    T[:3, 3] = [t.x, t.y, t.z]
    return T


def _interp_pose(Ta: np.ndarray, Tb: np.ndarray, a: float) -> np.ndarray:
    """Interpolate rigid transforms: linear translation, slerp rotation (a in [0,1])."""
    qa = matrix_to_quat(torch.from_numpy(Ta[:3, :3])).numpy()
    qb = matrix_to_quat(torch.from_numpy(Tb[:3, :3])).numpy()
    d = float(np.dot(qa, qb))
    if d < 0:
        qb, d = -qb, -d
    if d > 0.9995:
        q = qa + a * (qb - qa)
    else:
        th = math.acos(min(d, 1.0))
        q = (math.sin((1 - a) * th) * qa + math.sin(a * th) * qb) / math.sin(th)
    T = np.eye(4)
    T[:3, :3] = quat_to_matrix(torch.from_numpy(q / np.linalg.norm(q))).numpy()
    T[:3, 3] = (1 - a) * Ta[:3, 3] + a * Tb[:3, 3]
    return T


class _Track:
    """Time series of one transform (parent <- child), interpolated at query times."""

    def __init__(self) -> None:
        self.t: list[float] = []
        self.T: list[np.ndarray] = []

    def add(self, t: float, T: np.ndarray) -> None:
        i = bisect.bisect(self.t, t)
        self.t.insert(i, t)
        self.T.insert(i, T)

    def at(self, t: float, tol: float) -> np.ndarray | None:
        if not self.t:
            return None
        i = bisect.bisect_left(self.t, t)
        if i < len(self.t) and abs(self.t[i] - t) < 1e-9:
            return self.T[i]
        if 0 < i < len(self.t):
            a = (t - self.t[i - 1]) / (self.t[i] - self.t[i - 1])
            return _interp_pose(self.T[i - 1], self.T[i], a)
        j = 0 if i == 0 else len(self.t) - 1
        return self.T[j] if abs(self.t[j] - t) <= tol else None


class _TfTree:
    """/tf and /tf_static as a tree (each child has one parent)."""

    def __init__(self) -> None:
        self.static: dict[str, tuple[str, np.ndarray]] = {}
        self.dynamic: dict[str, tuple[str, _Track]] = {}

    def add(self, msg: object, static: bool) -> None:
        for tr in msg.transforms:
            parent = tr.header.frame_id.lstrip("/")
            child = tr.child_frame_id.lstrip("/")
            T = _tq_to_matrix(tr.transform.translation, tr.transform.rotation)
            if static:
                self.static[child] = (parent, T)
            else:
                if child not in self.dynamic:
                    self.dynamic[child] = (parent, _Track())
                self.dynamic[child][1].add(_stamp(tr), T)

    def lookup(self, target: str, source: str, t: float, tol: float) -> np.ndarray | None:
        """Pose of ``source`` in ``target`` (maps source coordinates to target) at time t."""
        def chain(frame: str) -> list[tuple[str, np.ndarray | None, str]] | None:
            out = []
            seen = set()
            while frame not in seen:
                seen.add(frame)
                if frame in self.static:
                    parent, T = self.static[frame]
                elif frame in self.dynamic:
                    parent, track = self.dynamic[frame]
                    T = track.at(t, tol)
                    if T is None:
                        return None
                else:
                    return out
                out.append((frame, T, parent))
                frame = parent
            return out

        target, source = target.lstrip("/"), source.lstrip("/")
        up_s, up_t = chain(source), chain(target)
        if up_s is None or up_t is None:
            return None
        roots_s = [source] + [p for _, _, p in up_s]
        roots_t = [target] + [p for _, _, p in up_t]
        common = next((f for f in roots_s if f in roots_t), None)
        if common is None:
            return None
        T_s = np.eye(4)  # common <- source
        for frame, T, parent in up_s:
            if frame == common:
                break
            T_s = T @ T_s
        T_t = np.eye(4)  # common <- target
        for frame, T, parent in up_t:
            if frame == common:
                break
            T_t = T @ T_t
        return np.linalg.inv(T_t) @ T_s


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
    """Keyframes of a ROS 2 bag (mcap or sqlite3 directory, or a ``.mcap``/``.db3`` file)."""

    def __init__(self, path: str | Path, cfg: BagConfig | None = None, name: str | None = None) -> None:
        from rosbags.highlevel import AnyReader
        from rosbags.typesys import Stores, get_typestore

        self.cfg = cfg = cfg or BagConfig()
        p = Path(path)
        if p.is_file() and p.suffix in (".mcap", ".db3"):
            p = p.parent
        if not p.exists():
            raise FileNotFoundError(f"bag {path} does not exist")
        self.path = p
        self.name = name or p.name
        self.near, self.far = cfg.near, cfg.far
        ts = get_typestore(Stores.ROS2_HUMBLE)
        self.stats: dict[str, int] = {}
        with AnyReader([p], default_typestore=ts) as reader:
            conns = {c.topic: c for c in reader.connections}
            img_topic = cfg.image_topic or self._auto(conns, (_IMAGE, _CIMAGE),
                                                     avoid=("depth", "label", "semantic"))
            info_topic = cfg.camera_info_topic or self._auto(conns, (_INFO,), prefer=img_topic)
            for t in (img_topic, info_topic, cfg.depth_topic, cfg.label_topic, cfg.pose_topic):
                if t is not None and t not in conns:
                    raise ValueError(f"bag {p}: topic {t!r} not found; topics: {sorted(conns)}")
            # pass 1: stamps, camera info, poses
            tf = _TfTree()
            pose_track = _Track()
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
                    img_meta.append((_stamp(msg), msg.header.frame_id.lstrip("/"), logt))
                elif c.topic == info_topic:
                    infos.append((_stamp(msg), np.asarray(msg.k, dtype=np.float64).reshape(3, 3),
                                  int(msg.height), int(msg.width)))
                elif c.topic in ("/tf", "/tf_static"):
                    tf.add(msg, static=c.topic == "/tf_static")
                elif c.topic == cfg.pose_topic:
                    if c.msgtype == _ODOM:
                        pose = msg.pose.pose
                    elif c.msgtype == _POSE:
                        pose = msg.pose
                    else:
                        raise ValueError(f"pose topic {c.topic!r} has type {c.msgtype}; "
                                         "use PoseStamped or Odometry")
                    pose_body = msg.header.frame_id
                    pose_track.add(_stamp(msg), _tq_to_matrix(pose.position, pose.orientation))
                for k, t in side_topics.items():
                    if t is not None and c.topic == t:
                        side[k].append((_stamp(msg), logt))
            if not img_meta:
                raise ValueError(f"bag {p}: no messages on image topic {img_topic!r}")
            if not infos:
                raise ValueError(f"bag {p}: no CameraInfo on {info_topic!r}")
            for k in side:
                side[k].sort()
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
                    if pose_body and pose_body.lstrip("/") != cfg.world_frame and T is not None:
                        Tw = tf.lookup(cfg.world_frame, pose_body, stamp, cfg.sync_tolerance)
                        T = None if Tw is None else Tw @ T
                else:
                    T = tf.lookup(cfg.world_frame, cfg.camera_frame or frame_id, stamp,
                                  cfg.sync_tolerance)
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
                raise ValueError(f"bag {p}: no image has a pose ({cfg.world_frame!r} -> camera "
                                 f"via {'the pose topic' if cfg.pose_topic else '/tf'}); "
                                 "check world_frame / camera_frame / pose_topic")
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

    @staticmethod
    def _auto(conns: dict, types: tuple[str, ...], avoid: tuple[str, ...] = (),
              prefer: str | None = None) -> str:
        cands = [t for t, c in conns.items() if c.msgtype in types
                 and not any(a in t.lower() for a in avoid)]
        if prefer is not None:
            base = prefer.rsplit("/", 1)[0]
            same = [t for t in cands if t.startswith(base)]
            cands = same or cands
        if len(cands) != 1:
            raise ValueError(f"cannot pick a {'/'.join(types)} topic automatically from "
                             f"{sorted(cands) or 'none'}; set it in BagConfig")
        return cands[0]

    def __len__(self) -> int:
        return len(self._frames)

    def frame(self, i: int) -> Frame:
        return self._frames[self._check_index(i)]

    def poses(self) -> Tensor:
        return torch.stack([f.c2w for f in self._frames])

    def intrinsics(self) -> Tensor:
        return torch.stack([f.K for f in self._frames])


# --- writer --------------------------------------------------------------------------------
def write_bag(scene: Scene, path: str | Path, storage: str = "mcap", rate_hz: float = 10.0,
              image_topic: str = "/camera/color/image_raw",
              camera_info_topic: str = "/camera/color/camera_info",
              depth_topic: str | None = "/camera/depth/image_raw",
              label_topic: str | None = None, pose_mode: str = "tf",
              pose_topic: str = "/camera/pose", world_frame: str = "map",
              base_frame: str = "base_link", camera_frame: str = "camera_color_optical_frame",
              compressed: bool = False, depth_encoding: str = "16UC1",
              start_time: float = 1_700_000_000.0) -> Path:
    """Record ``scene`` as a ROS 2 bag directory at ``path`` (must not exist).

    ``pose_mode``: ``"tf"`` (dynamic ``world -> base_frame`` on /tf plus a fixed
    ``base_frame -> camera_frame`` on /tf_static), ``"pose"`` (PoseStamped of the camera in
    ``world_frame``) or ``"odometry"`` (Odometry, same pose). ``storage``: ``"mcap"`` or
    ``"sqlite3"``. Depth as 16UC1 mm or 32FC1 m; labels mono8 (mono16 above 255 classes).
    """
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    if storage not in ("mcap", "sqlite3"):
        raise ValueError(f"storage must be 'mcap' or 'sqlite3', got {storage!r}")
    if pose_mode not in ("tf", "pose", "odometry"):
        raise ValueError(f"pose_mode must be tf, pose or odometry, got {pose_mode!r}")
    if depth_encoding not in ("16UC1", "32FC1"):
        raise ValueError(f"depth_encoding must be 16UC1 or 32FC1, got {depth_encoding!r}")
    ts = get_typestore(Stores.ROS2_HUMBLE)
    T_ = ts.types
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    # fixed base -> camera extrinsic: camera 10 cm forward, 20 cm up, optical axes
    base_cam = np.array([[0, 0, 1, 0.1], [-1, 0, 0, 0.0], [0, -1, 0, 0.2], [0, 0, 0, 1.0]])

    def tf_stamped(stamp, parent, child, T):
        q = matrix_to_quat(torch.from_numpy(T[:3, :3])).numpy()
        return T_["geometry_msgs/msg/TransformStamped"](
            header=_header(ts, stamp, parent), child_frame_id=child,
            transform=T_["geometry_msgs/msg/Transform"](
                translation=T_["geometry_msgs/msg/Vector3"](x=T[0, 3], y=T[1, 3], z=T[2, 3]),
                rotation=T_["geometry_msgs/msg/Quaternion"](x=q[0], y=q[1], z=q[2], w=q[3])))

    def pose_msg(T):
        q = matrix_to_quat(torch.from_numpy(T[:3, :3])).numpy()
        return T_["geometry_msgs/msg/Pose"](
            position=T_["geometry_msgs/msg/Point"](x=T[0, 3], y=T[1, 3], z=T[2, 3]),
            orientation=T_["geometry_msgs/msg/Quaternion"](x=q[0], y=q[1], z=q[2], w=q[3]))

    path = Path(path)
    with Writer(path, version=9, storage_plugin=plugin) as w:
        img_type = _CIMAGE if compressed else _IMAGE
        c_img = w.add_connection(image_topic, img_type, typestore=ts)
        c_info = w.add_connection(camera_info_topic, _INFO, typestore=ts)
        c_depth = w.add_connection(depth_topic, _IMAGE, typestore=ts) if depth_topic else None
        c_lab = w.add_connection(label_topic, _IMAGE, typestore=ts) if label_topic else None
        if pose_mode == "tf":
            c_tf = w.add_connection("/tf", _TF, typestore=ts)
            c_static = w.add_connection("/tf_static", _TF, typestore=ts)
            static = T_[_TF](transforms=[tf_stamped(start_time, base_frame, camera_frame, base_cam)])
            w.write(c_static, int(start_time * 1e9), ts.serialize_cdr(static, _TF))
        else:
            ptype = _POSE if pose_mode == "pose" else _ODOM
            c_pose = w.add_connection(pose_topic, ptype, typestore=ts)
        for i in range(len(scene)):
            f = scene.frame(i)
            stamp = start_time + i / rate_hz
            ns = int(round(stamp * 1e9))
            c2w = f.c2w.double().numpy()
            if pose_mode == "tf":
                T_wb = c2w @ np.linalg.inv(base_cam)
                msg = T_[_TF](transforms=[tf_stamped(stamp, world_frame, base_frame, T_wb)])
                w.write(c_tf, ns, ts.serialize_cdr(msg, _TF))
            elif pose_mode == "pose":
                msg = T_[_POSE](header=_header(ts, stamp, world_frame), pose=pose_msg(c2w))
                w.write(c_pose, ns, ts.serialize_cdr(msg, _POSE))
            else:
                cov = np.zeros(36, dtype=np.float64)
                msg = T_[_ODOM](
                    header=_header(ts, stamp, world_frame), child_frame_id=camera_frame,
                    pose=T_["geometry_msgs/msg/PoseWithCovariance"](pose=pose_msg(c2w),
                                                                   covariance=cov),
                    twist=T_["geometry_msgs/msg/TwistWithCovariance"](
                        twist=T_["geometry_msgs/msg/Twist"](
                            linear=T_["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=0.0),
                            angular=T_["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=0.0)),
                        covariance=cov))
                w.write(c_pose, ns, ts.serialize_cdr(msg, _ODOM))
            rgb = (f.image.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
            if compressed:
                ok, buf = cv2.imencode(".png", rgb[..., ::-1])
                msg = T_[_CIMAGE](header=_header(ts, stamp, camera_frame), format="png",
                                  data=np.frombuffer(buf.tobytes(), dtype=np.uint8))
            else:
                msg = encode_image(ts, rgb, "rgb8", stamp, camera_frame)
            w.write(c_img, ns + 1000, ts.serialize_cdr(msg, img_type))
            K = f.K.double().numpy()
            info = T_[_INFO](
                header=_header(ts, stamp, camera_frame), height=f.height, width=f.width,
                distortion_model="plumb_bob", d=np.zeros(5), k=K.reshape(9),
                r=np.eye(3).reshape(9),
                p=np.concatenate([K, np.zeros((3, 1))], 1).reshape(12),
                binning_x=0, binning_y=0,
                roi=T_["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0,
                                                          width=0, do_rectify=False))
            w.write(c_info, ns + 1000, ts.serialize_cdr(info, _INFO))
            if c_depth is not None and f.depth is not None:
                d = f.depth.numpy()
                arr = (np.round(d * 1000).clip(0, 65535).astype(np.uint16)
                       if depth_encoding == "16UC1" else d.astype(np.float32))
                w.write(c_depth, ns + 2000, ts.serialize_cdr(
                    encode_image(ts, arr, depth_encoding,
                                 stamp + 0.002, camera_frame), _IMAGE))
            if c_lab is not None and f.labels is not None:
                lab = f.labels.numpy()
                enc = "mono8" if lab.max() <= 255 else "mono16"
                arr = lab.astype(np.uint8 if enc == "mono8" else np.uint16)
                w.write(c_lab, ns + 3000, ts.serialize_cdr(
                    encode_image(ts, arr, enc, stamp, camera_frame), _IMAGE))
    return path
