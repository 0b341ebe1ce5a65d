"""Hand-held and robot-base camera paths through a room.

A path is a random walk of free-space waypoints (each straight leg 0.8-2.5 m, clear of the
furniture footprints, no U-turns), smoothed by a Catmull-Rom spline and resampled at a constant
speed drawn per path (default 0.10-0.20 m per frame: consecutive frames are about as far apart
as the keyframes the node keeps, 0.15 m / 10 deg). Two kinds of camera:

- ``handheld`` (1.2-1.7 m, bobbing a few cm): looks at a smoothly moving target (furniture,
  wall points) with a slow yaw oscillation; some waypoints are close-ups 0.6-1.2 m from a piece.
- ``robot`` (0.3-0.6 m, fixed mount): looks along the direction of travel with a slow pan and a
  fixed upward tilt.

The viewing direction turns at most ``max_turn_deg`` per frame. Every camera centre keeps a
clearance from all solids (checked with the signed distance functions).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
from torch import Tensor

from gsnerf_ros.geometry import look_at
from gsnerf_ros.data.procedural.distribution import TrajectoryConfig
from gsnerf_ros.data.procedural.primitives import signed_distance

if TYPE_CHECKING:
    from gsnerf_ros.data.procedural.layout import Room

__all__ = ["CameraPath", "sample_trajectory", "limit_turn_rate"]


@dataclass
class CameraPath:
    """A sampled path: ``c2w`` [F,4,4] (OpenCV optical frame), ``mode`` ("handheld" |
    "robot"), ``speed`` its mean camera-centre step (m per frame; the drawn speed unless the
    free space was too small for the path), ``min_clearance`` m it achieved."""

    c2w: Tensor
    mode: str
    speed: float
    min_clearance: float


def _catmull_rom(pts: np.ndarray, samples_per_seg: int = 40) -> np.ndarray:
    """Dense points along a uniform Catmull-Rom spline through ``pts`` [K,D] (K >= 2)."""
    p = np.concatenate([pts[:1] * 2 - pts[1:2], pts, pts[-1:] * 2 - pts[-2:-1]], 0)
    out = []
    for i in range(1, len(p) - 2):
        t = np.linspace(0, 1, samples_per_seg, endpoint=False)[:, None]
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        out.append(0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
                          + (-p0 + 3 * p1 - 3 * p2 + p3) * t ** 3))
    out.append(p[-2:-1])
    return np.concatenate(out, 0)


def _resample(curve: np.ndarray, n: int, length: float) -> np.ndarray:
    """``n`` points at equal xy arc-length steps over the first ``length`` m of ``curve`` [P,D]."""
    seg = np.linalg.norm(np.diff(curve[:, :2], axis=0), axis=-1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    targets = np.linspace(0, min(length, s[-1]), n)
    return np.stack([np.interp(targets, s, curve[:, k]) for k in range(curve.shape[1])], -1)


def _smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian low-pass of a sequence [F] (``sigma`` in samples, edges reflected)."""
    if sigma <= 0 or len(x) < 3:
        return x
    r = int(math.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    xp = np.pad(x, r, mode="reflect" if len(x) > r else "edge")
    return np.convolve(xp, k / k.sum(), mode="valid")


def limit_turn_rate(dirs: np.ndarray, max_turn_rad: float, smooth: float = 0.0) -> np.ndarray:
    """Follow the wanted viewing directions ``dirs`` [F,3] (world z up, not vertical) while
    turning at most ``max_turn_rad`` per step: the (yaw, pitch) step towards each wanted
    direction is shortened to that length, which bounds the rotation between the upright
    cameras of consecutive frames (to first order). ``smooth``: Gaussian low-pass (sigma in
    frames) of yaw and pitch first. -> [F,3] unit."""
    d = dirs / np.linalg.norm(dirs, axis=-1, keepdims=True).clip(min=1e-9)
    yaw = _smooth(np.unwrap(np.arctan2(d[:, 1], d[:, 0])), smooth)
    pitch = _smooth(np.arcsin(np.clip(d[:, 2], -1.0, 1.0)), smooth)
    y, p = yaw.copy(), pitch.copy()
    for i in range(1, len(d)):
        dy = (yaw[i] - y[i - 1] + math.pi) % (2 * math.pi) - math.pi
        dp = pitch[i] - p[i - 1]
        step = math.hypot(dy, dp)
        k = 1.0 if step <= max_turn_rad else max_turn_rad / step
        y[i], p[i] = y[i - 1] + k * dy, p[i - 1] + k * dp
    return np.stack([np.cos(y) * np.cos(p), np.sin(y) * np.cos(p), np.sin(p)], -1)


class _FreeSpace:
    """Floor cells where the camera centre may go (furniture footprints dilated by the
    clearance, a margin along the walls) and straight-leg checks on them."""

    def __init__(self, room: "Room", clearance: float) -> None:
        res = room.grid_res
        k = int(math.ceil(clearance / res)) * 2 + 1
        occ = cv2.dilate(room.occupancy.astype(np.uint8), np.ones((k, k), np.uint8)).astype(bool)
        margin = int(math.ceil((clearance + 0.1) / res))
        occ[:margin] = occ[-margin:] = True
        occ[:, :margin] = occ[:, -margin:] = True
        self.free = ~occ
        self.res = res
        self.origin = np.array(room.grid_origin)
        cells = np.argwhere(self.free)
        self.xy = self.origin + (cells + 0.5) * res

    def leg_is_free(self, a: np.ndarray, b: np.ndarray) -> bool:
        n = max(2, int(np.linalg.norm(b - a) / (self.res * 0.5)) + 1)
        pts = a + (b - a) * np.linspace(0, 1, n)[:, None]
        idx = np.floor((pts - self.origin) / self.res).astype(int)
        shape = np.array(self.free.shape)
        if bool(((idx < 0) | (idx >= shape)).any()):
            return False
        return bool(self.free[idx[:, 0], idx[:, 1]].all())


def _random_walk(fs: _FreeSpace, want: float, cfg: TrajectoryConfig, rng: np.random.Generator,
                 focus: list[np.ndarray], closeups: bool) -> tuple[np.ndarray, list[int]]:
    """Waypoints [K,2] of at least ``want`` m (when the room allows) and, per waypoint, the
    index of the furniture it is a close-up of (-1: none)."""
    cells = fs.xy
    way = [cells[int(rng.integers(0, len(cells)))]]
    close = [-1]
    length, heading = 0.0, None
    while length < want * 1.1 + 0.3 and len(way) < 64:
        cur = way[-1]
        fi = -1
        cand = cells[rng.integers(0, len(cells), size=128)]
        if closeups and focus and rng.uniform() < cfg.closeup_prob:
            fi = int(rng.integers(0, len(focus)))
            dist_f = np.linalg.norm(cells - focus[fi][:2], axis=-1)
            near = np.nonzero((dist_f > 0.6) & (dist_f < 1.2))[0]
            if len(near):
                cand = cells[near[rng.integers(0, len(near), size=min(128, len(near)))]]
            else:
                fi = -1
        step = cand - cur
        d = np.linalg.norm(step, axis=-1)
        ok = (d >= cfg.leg[0]) & (d <= cfg.leg[1])
        if heading is not None:
            ok &= (step @ heading) > -0.3 * d
        chosen = None
        for j in np.nonzero(ok)[0]:
            if fs.leg_is_free(cur, cand[j]):
                chosen = j
                break
        if chosen is None:  # a dead end: accept any free leg of at least 0.2 m
            for j in np.nonzero(d >= 0.2)[0]:
                if fs.leg_is_free(cur, cand[j]):
                    chosen = j
                    break
        if chosen is None:
            break
        heading = step[chosen] / d[chosen]
        length += float(d[chosen])
        way.append(cand[chosen])
        close.append(fi)
    return np.array(way), close


def _look_targets(room: "Room", way: np.ndarray, close: list[int], rng: np.random.Generator,
                  focus: list[np.ndarray]) -> np.ndarray:
    """A hand-held camera's look target per waypoint [K,3]: the close-up piece, else a piece of
    furniture (60 %) or a wall point."""
    lx, ly, hz = room.size
    out = []
    for fi in close:
        if fi >= 0:
            out.append(focus[fi].copy())
        elif rng.uniform() < 0.6:
            out.append(focus[int(rng.integers(0, len(focus)))].copy())
        else:
            a = rng.uniform(0, 2 * math.pi)
            out.append(np.array([math.cos(a) * lx / 2, math.sin(a) * ly / 2,
                                 rng.uniform(0.3, hz - 0.3)]))
    return np.array(out)


def _path_once(room: "Room", fs: _FreeSpace, n: int, robot: bool, speed: float,
               cfg: TrajectoryConfig, rng: np.random.Generator,
               focus: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, float]:
    """One candidate path: eye positions [n,3], viewing directions [n,3], its length (m)."""
    hz = room.size[2]
    want = speed * max(n - 1, 1)
    way, close = _random_walk(fs, want, cfg, rng, focus, closeups=not robot)
    if len(way) < 2:  # no free leg at all: stand still and look around
        way = np.concatenate([way, way + 1e-3], 0)
        close = close + [-1]
    cols = [way]
    if not robot:
        cols.append(_look_targets(room, way, close, rng, focus))
    dense = _catmull_rom(np.concatenate(cols, -1))
    pts = _resample(dense, n, want) if n > 1 else dense[:1]
    pos_xy = pts[:, :2]
    u = np.linspace(0, 1, n)
    ph = rng.uniform(0, 2 * math.pi, size=2)
    top = hz - cfg.clearance - 0.05
    osc = math.radians(cfg.look_around_deg) * np.sin(
        2 * math.pi * u * rng.uniform(1.0, 2.5) + ph[1])
    if robot:
        z = np.full(n, min(rng.uniform(*cfg.robot_height), top))
        tang = np.gradient(pos_xy, axis=0) if n > 1 else np.zeros((1, 2))
        yaw = np.arctan2(tang[:, 1], tang[:, 0])
        still = np.linalg.norm(tang, axis=-1) < 1e-6
        if bool(still.all()):
            yaw[:] = rng.uniform(-math.pi, math.pi)
        yaw = np.unwrap(yaw) + osc
        pitch = math.radians(rng.uniform(*cfg.robot_pitch_deg))
        look = np.stack([np.cos(yaw) * math.cos(pitch), np.sin(yaw) * math.cos(pitch),
                         np.full(n, math.sin(pitch))], -1)
    else:
        h0 = rng.uniform(*cfg.handheld_height)
        z = np.clip(h0 + cfg.handheld_bob * np.sin(2 * math.pi * u * rng.uniform(0.5, 1.5)
                                                   + ph[0]), cfg.handheld_height[0],
                    min(cfg.handheld_height[1], top))
        eye0 = np.concatenate([pos_xy, z[:, None]], -1)
        look = pts[:, 2:] - eye0
        c, s = np.cos(osc), np.sin(osc)
        look = np.stack([c * look[:, 0] - s * look[:, 1], s * look[:, 0] + c * look[:, 1],
                         look[:, 2]], -1)
        horiz = np.linalg.norm(look[:, :2], axis=-1).clip(min=1e-3)
        lim = math.tan(math.radians(cfg.max_pitch_deg))
        look[:, 2] = np.clip(look[:, 2], -lim * horiz, lim * 0.6 * horiz)
    eye = np.concatenate([pos_xy, z[:, None]], -1)
    length = float(np.linalg.norm(np.diff(pos_xy, axis=0), axis=-1).sum())
    look = limit_turn_rate(look, math.radians(cfg.max_turn_deg), cfg.turn_smoothing)
    return eye, look, length


def sample_trajectory(room: "Room", n_frames: int, rng: np.random.Generator,
                      cfg: TrajectoryConfig | None = None) -> CameraPath:
    """A hand-held or robot camera path of ``n_frames`` poses through ``room``: of the
    attempts, the first that keeps the clearance and reaches the drawn length, else the
    longest that keeps the clearance, else the one with the largest clearance."""
    cfg = cfg or TrajectoryConfig()
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    fs = _FreeSpace(room, cfg.clearance)
    if len(fs.xy) < 8:
        raise ValueError("room has no free floor space for a camera path")
    robot = bool(rng.uniform() < cfg.robot_prob)
    speed = float(rng.uniform(*cfg.speed))
    focus = list(room.focus_points) or [np.array([0.0, 0.0, 1.0])]
    want = speed * max(n_frames - 1, 1)
    best, best_key = None, None
    for _attempt in range(cfg.attempts):
        eye, look, length = _path_once(room, fs, n_frames, robot, speed, cfg, rng, focus)
        clear = float(signed_distance(room.prims, torch.tensor(eye, dtype=torch.float32))
                      .min(0).values.min())
        ok = clear >= cfg.clearance
        key = (ok, min(length, want) if ok else clear)
        if best_key is None or key > best_key:
            best, best_key = (eye, look, length, clear), key
        if ok and (n_frames == 1 or length >= 0.95 * want):
            break
    eye, look, length, best_clear = best  # type: ignore[misc]
    eye_t = torch.tensor(eye, dtype=torch.float32)
    c2w = look_at(eye_t, eye_t + torch.tensor(look, dtype=torch.float32))
    return CameraPath(c2w=c2w, mode="robot" if robot else "handheld",
                      speed=length / max(n_frames - 1, 1), min_clearance=best_clear)
