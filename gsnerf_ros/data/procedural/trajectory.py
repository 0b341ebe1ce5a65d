"""Robot / hand-held camera paths through a room.

A path is a Catmull-Rom spline through 4-7 free-space waypoints (ordered around the room so
it sweeps it), resampled at constant speed. The camera height drifts smoothly in
[0.8, 1.8] m. It looks at a smoothly moving target (furniture, walls) with a slow yaw
oscillation (look-around), and some waypoints are close-ups near a piece of furniture.
Every pose keeps a clearance from all solids (checked with the signed distance functions).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import Tensor

from gsnerf_ros.geometry import look_at
from gsnerf_ros.data.procedural.layout import Room
from gsnerf_ros.data.procedural.primitives import signed_distance

__all__ = ["TrajectoryConfig", "sample_trajectory"]


@dataclass
class TrajectoryConfig:
    """Camera path parameters (metres, degrees)."""

    min_height: float = 0.8
    max_height: float = 1.8
    clearance: float = 0.3
    """Minimum distance from the camera centre to any surface (m)."""
    look_around_deg: float = 25.0
    """Amplitude of the yaw oscillation around the look-at target."""
    closeup_prob: float = 0.35
    """Probability that a waypoint is a close-up of a piece of furniture."""
    max_pitch_deg: float = 35.0
    speed: float = 0.07
    """Target path length per frame (m); the path is shortened or lengthened accordingly."""
    attempts: int = 40


def _catmull_rom(pts: np.ndarray, samples_per_seg: int = 40) -> np.ndarray:
    """Dense points along a centripetal-free (uniform) Catmull-Rom spline through ``pts`` [K,D]."""
    p = np.concatenate([pts[:1] * 2 - pts[1:2], pts, pts[-1:] * 2 - pts[-2:-1]], 0)
    out = []
    for i in range(1, len(p) - 2):
        t = np.linspace(0, 1, samples_per_seg, endpoint=False)[:, None]
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        out.append(0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
                          + (-p0 + 3 * p1 - 3 * p2 + p3) * t ** 3))
    out.append(p[-2:-1])
    return np.concatenate(out, 0)


def _resample(curve: np.ndarray, n: int, length_xy: np.ndarray) -> np.ndarray:
    s = np.concatenate([[0.0], np.cumsum(length_xy)])
    targets = np.linspace(0, s[-1], n)
    return np.stack([np.interp(targets, s, curve[:, k]) for k in range(curve.shape[1])], -1)


def sample_trajectory(room: Room, n_frames: int, rng: np.random.Generator,
                      cfg: TrajectoryConfig | None = None) -> Tensor:
    """Camera-to-world poses [n_frames,4,4] (OpenCV optical frame) for ``room``."""
    cfg = cfg or TrajectoryConfig()
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    lx, ly, hz = room.size
    res = room.grid_res
    k = int(math.ceil(cfg.clearance / res)) * 2 + 1
    occ = cv2.dilate(room.occupancy.astype(np.uint8), np.ones((k, k), np.uint8)).astype(bool)
    margin = int(math.ceil((cfg.clearance + 0.1) / res))
    occ[:margin] = occ[-margin:] = True
    occ[:, :margin] = occ[:, -margin:] = True
    free = np.argwhere(~occ)
    if len(free) < 8:
        raise ValueError("room has no free floor space for a camera path")
    ox, oy = room.grid_origin
    cells_xy = np.stack([ox + (free[:, 0] + 0.5) * res, oy + (free[:, 1] + 0.5) * res], -1)
    focus = [f for f in room.focus_points] or [np.array([0.0, 0.0, 1.0])]
    prims = room.prims
    best, best_bad = None, None
    max_h = min(cfg.max_height, hz - cfg.clearance - 0.05)
    for _attempt in range(cfg.attempts):
        nw = int(rng.integers(4, 8))
        way = cells_xy[rng.integers(0, len(cells_xy), size=nw)]
        targets = []
        for i in range(nw):
            if rng.uniform() < cfg.closeup_prob:
                f = focus[int(rng.integers(0, len(focus)))]
                d = np.linalg.norm(cells_xy - f[:2], axis=-1)
                near = np.nonzero((d > 0.6) & (d < 1.2))[0]
                if len(near):
                    way[i] = cells_xy[near[int(rng.integers(0, len(near)))]]
                    targets.append(f.copy())
                    continue
            if rng.uniform() < 0.6:
                targets.append(focus[int(rng.integers(0, len(focus)))].copy())
            else:
                a = rng.uniform(0, 2 * math.pi)
                targets.append(np.array([math.cos(a) * lx / 2, math.sin(a) * ly / 2,
                                         rng.uniform(0.3, hz - 0.3)]))
        ang = np.arctan2(way[:, 1], way[:, 0])
        order = np.argsort(ang)
        rot = int(rng.integers(0, nw))
        order = np.roll(order, rot)
        if rng.uniform() < 0.5:
            order = order[::-1]
        way = way[order]
        targets = np.array(targets)[order]
        dense = _catmull_rom(np.concatenate([way, targets], -1))
        seg = np.linalg.norm(np.diff(dense[:, :2], axis=0), axis=-1)
        total = float(seg.sum())
        want = cfg.speed * max(n_frames - 1, 1)
        if total > want * 1.5:  # keep overlap: trim the path to about the wanted length
            s = np.concatenate([[0.0], np.cumsum(seg)])
            keep = s <= want * 1.2
            keep[:2] = True
            dense, seg = dense[keep], seg[keep[1:]][: keep.sum() - 1]
        res_pts = _resample(dense, n_frames, seg) if n_frames > 1 else dense[:1]
        pos_xy, tgt = res_pts[:, :2], res_pts[:, 2:]
        u = np.linspace(0, 1, n_frames)
        ph = rng.uniform(0, 2 * math.pi, size=2)
        z = (cfg.min_height + max_h) / 2 + (max_h - cfg.min_height) / 2 * (
            0.7 * np.sin(2 * math.pi * u * rng.uniform(0.5, 1.5) + ph[0]))
        eye = np.concatenate([pos_xy, z[:, None]], -1)
        look = tgt - eye
        yaw_off = math.radians(cfg.look_around_deg) * np.sin(
            2 * math.pi * u * rng.uniform(1.0, 2.5) + ph[1])
        c, s_ = np.cos(yaw_off), np.sin(yaw_off)
        look = np.stack([c * look[:, 0] - s_ * look[:, 1], s_ * look[:, 0] + c * look[:, 1],
                         look[:, 2]], -1)
        horiz = np.linalg.norm(look[:, :2], axis=-1).clip(min=1e-3)
        lim = math.tan(math.radians(cfg.max_pitch_deg))
        look[:, 2] = np.clip(look[:, 2], -lim * horiz, lim * 0.6 * horiz)
        eye_t = torch.tensor(eye, dtype=torch.float32)
        sd = signed_distance(prims, eye_t)  # [M,N]
        bad = int((sd.min(0).values < cfg.clearance).sum())
        if best is None or bad < best_bad:
            best, best_bad = (eye, look), bad
        if bad == 0:
            break
    eye, look = best  # type: ignore[misc]
    eye_t = torch.tensor(eye, dtype=torch.float32)
    return look_at(eye_t, eye_t + torch.tensor(look, dtype=torch.float32))

