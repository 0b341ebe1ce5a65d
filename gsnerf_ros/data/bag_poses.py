"""Camera poses from bag messages: translation + quaternion to 4x4 matrices, interpolation of
rigid transforms (linear translation, slerp rotation), time series of one transform
(:class:`TransformTrack`) and the ``/tf`` + ``/tf_static`` tree (:class:`TfTree`) with lookups at
a stamp. Every ``/tf_static`` message is kept: the tree holds their union (the latest transform per
child frame), as a late-joining tf2 listener of a latched ``/tf_static`` would.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np
import torch

from gsnerf_ros.data.bag_messages import stamp_seconds
from gsnerf_ros.geometry import matrix_to_quat, quat_to_matrix

__all__ = ["StaticTransform", "TfTree", "TransformTrack", "interpolate_pose", "tq_to_matrix"]


def tq_to_matrix(t, q) -> np.ndarray:
    """A message's translation ``t`` (x, y, z) and quaternion ``q`` (x, y, z, w) -> 4x4."""
    T = np.eye(4)
    T[:3, :3] = quat_to_matrix(torch.tensor([q.x, q.y, q.z, q.w], dtype=torch.float64)).numpy()
    T[:3, 3] = [t.x, t.y, t.z]
    return T


def interpolate_pose(Ta: np.ndarray, Tb: np.ndarray, a: float) -> np.ndarray:
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


class TransformTrack:
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
            return interpolate_pose(self.T[i - 1], self.T[i], a)
        j = 0 if i == 0 else len(self.t) - 1
        return self.T[j] if abs(self.t[j] - t) <= tol else None


@dataclass(frozen=True)
class StaticTransform:
    """One static transform: pose of ``child`` in ``parent`` (maps child coordinates to parent).

    ``matrix`` 4x4 float64, metres.
    """

    parent: str
    child: str
    matrix: np.ndarray

    @property
    def translation(self) -> tuple[float, float, float]:
        """(x, y, z) in metres."""
        return tuple(float(v) for v in self.matrix[:3, 3])  # type: ignore[return-value]

    @property
    def quaternion(self) -> tuple[float, float, float, float]:
        """(x, y, z, w), as in ``geometry_msgs/Quaternion``."""
        q = matrix_to_quat(torch.from_numpy(np.ascontiguousarray(self.matrix[:3, :3])))
        return tuple(float(v) for v in q)  # type: ignore[return-value]


class TfTree:
    """/tf and /tf_static as a tree (each child has one parent); static transforms are the union
    of every /tf_static message."""

    def __init__(self) -> None:
        self.static: dict[str, tuple[str, np.ndarray]] = {}
        self.dynamic: dict[str, tuple[str, TransformTrack]] = {}
        self._parents: dict[str, set[str]] = {}

    def parents(self) -> dict[str, set[str]]:
        """child frame -> every parent it had on /tf or /tf_static."""
        return {c: set(p) for c, p in self._parents.items()}

    def dynamic_ranges(self) -> dict[str, tuple[str, float, float]]:
        """child -> (parent, first stamp, last stamp) of every /tf transform (s)."""
        return {c: (p, tr.t[0], tr.t[-1]) for c, (p, tr) in sorted(self.dynamic.items())}

    def static_transforms(self) -> list[StaticTransform]:
        """The union of all /tf_static messages, one (the latest) per child frame."""
        return [StaticTransform(p, c, T.copy()) for c, (p, T) in sorted(self.static.items())]

    def add(self, msg: object, static: bool) -> None:
        for tr in msg.transforms:
            parent = tr.header.frame_id.lstrip("/")
            child = tr.child_frame_id.lstrip("/")
            self._parents.setdefault(child, set()).add(parent)
            T = tq_to_matrix(tr.transform.translation, tr.transform.rotation)
            if static:
                self.static[child] = (parent, T)
            else:
                if child not in self.dynamic:
                    self.dynamic[child] = (parent, TransformTrack())
                self.dynamic[child][1].add(stamp_seconds(tr), T)

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
