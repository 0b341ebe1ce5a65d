#!/usr/bin/env python3
"""Rooms from a second, independent renderer, for evaluating on data gsnerf-synth did not make.

Issue 11 opened with a new user's test: rooms from another renderer (walls up to about 5 m
away, smooth gradient and checker textures) on which the shipped model was no better than the
reprojection baseline. This script is such a renderer, written apart from
``gsnerf_ros.data.procedural`` on purpose: it imports only numpy and OpenCV, and shares no code,
texture, light model, layout rule, camera path or class order with gsnerf-synth.

What differs from gsnerf-synth:
- a box room of 4-8.5 x 4-8.5 m (height 2.4-3.2 m) with axis-aligned furniture against the
  walls (cabinets, shelves, a bed, a sofa) and a table in the middle for hand-held paths;
- materials in metres of the surface: smooth two-colour gradients and checkers of 0.2-0.6 m
  squares on walls and floor, plain or gradient ceilings and furniture;
- one point light with inverse-square falloff plus ambient, no shadows, sRGB gamma, and 2x2
  supersampled colour (depth and classes from the pixel centre);
- an elliptical walk around the room (hand-held, 1.3-1.6 m, looking 20-40 deg inward and
  10-20 deg down) or a robot base (0.35-0.5 m, nearly level), one loop over the frames;
- its own class ids (floor = 0, wall = 1, ...), named in scene.json, so an evaluation has to map
  classes by name.

Output: the Replica layout that ``gsnerf-eval`` reads (``rgb/rgb_i.png``,
``depth/depth_i.png`` in uint16 millimetres, ``semantic_class/semantic_class_i.png``,
``traj_w_c.txt`` with OpenCV camera-to-world poses, written last, and ``scene.json``).

    python tools/independent_rooms.py runs/data/independent --rooms 6 --frames 40 \
        --height 240 --width 320 --seed 0
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

CLASS_NAMES = ["floor", "wall", "ceiling", "table", "cabinet", "bed", "sofa", "shelf"]
PALETTE = [[120, 90, 60], [170, 170, 170], [230, 230, 230], [200, 120, 40], [60, 160, 200],
           [140, 60, 160], [60, 180, 90], [220, 200, 60]]
NEAR, FAR = 0.25, 10.0
HFOV_DEG = 90.0


@dataclass
class Material:
    """Albedo in [0, 1] over a face's two tangent coordinates (metres)."""

    kind: str                       # plain | gradient | checker
    a: np.ndarray                   # [3] first colour
    b: np.ndarray                   # [3] second colour
    scale: float = 1.0              # checker square (m) or gradient length (m)
    angle: float = 0.0              # gradient direction in the face plane (rad)

    def albedo(self, s: np.ndarray, t: np.ndarray) -> np.ndarray:
        """[N, 3] albedo at tangent coordinates ``s``, ``t`` [N] (m)."""
        if self.kind == "plain":
            return np.broadcast_to(self.a, (s.shape[0], 3)).copy()
        if self.kind == "checker":
            odd = (np.floor(s / self.scale) + np.floor(t / self.scale)) % 2
            return np.where(odd[:, None] > 0, self.b, self.a)
        w = (s * math.cos(self.angle) + t * math.sin(self.angle)) / self.scale
        w = 0.5 - 0.5 * np.cos(np.clip(w, 0.0, 1.0) * math.pi)          # smooth ramp
        return self.a * (1 - w[:, None]) + self.b * w[:, None]


@dataclass
class Box:
    lo: np.ndarray                  # [3] m
    hi: np.ndarray                  # [3] m
    label: int
    material: Material


@dataclass
class Room:
    size: np.ndarray                # [3] m (x, y, height); the floor at z = 0, centred on x, y
    surfaces: dict[str, Material]   # floor, wall, ceiling
    boxes: list[Box] = field(default_factory=list)
    light: np.ndarray = field(default_factory=lambda: np.zeros(3))
    light_power: float = 6.0
    ambient: float = 0.3


def _colour(rng: np.random.Generator, lo: float = 0.15, hi: float = 0.9) -> np.ndarray:
    return rng.uniform(lo, hi, 3)


def _material(rng: np.random.Generator, kinds: list[str]) -> Material:
    kind = str(rng.choice(kinds))
    a = _colour(rng)
    b = np.clip(a + rng.uniform(-0.5, 0.5, 3), 0.05, 0.95)
    scale = rng.uniform(0.2, 0.6) if kind == "checker" else rng.uniform(2.0, 6.0)
    return Material(kind, a, b, float(scale), float(rng.uniform(0, math.pi)))


def make_room(rng: np.random.Generator, robot: bool) -> Room:
    """A random room; furniture stands against the walls, a table in the middle unless the
    camera rides a robot base (which would drive through it)."""
    size = np.array([rng.uniform(4.0, 8.5), rng.uniform(4.0, 8.5), rng.uniform(2.4, 3.2)])
    room = Room(size=size, surfaces={
        "floor": _material(rng, ["checker", "gradient"]),
        "wall": _material(rng, ["gradient", "checker"]),
        "ceiling": _material(rng, ["plain", "gradient"])})
    hx, hy = size[0] / 2, size[1] / 2
    furniture = [("cabinet", (0.8, 1.4), (0.45, 0.6), (0.8, 1.2)),
                 ("shelf", (0.8, 1.2), (0.3, 0.4), (1.6, 2.0)),
                 ("bed", (1.9, 2.1), (1.4, 1.6), (0.45, 0.6)),
                 ("sofa", (1.6, 2.2), (0.8, 0.95), (0.45, 0.5)),
                 ("cabinet", (0.5, 0.9), (0.4, 0.5), (0.5, 0.9))]
    placed: list[tuple[np.ndarray, np.ndarray]] = []
    for name, (w0, w1), (d0, d1), (h0, h1) in furniture:
        for _ in range(20):
            w, d, h = rng.uniform(w0, w1), rng.uniform(d0, d1), rng.uniform(h0, h1)
            side = int(rng.integers(0, 4))               # against wall -x, +x, -y, +y
            along = hy if side < 2 else hx
            c = rng.uniform(-along + w / 2 + 0.1, along - w / 2 - 0.1)
            if side < 2:
                x = -hx + d / 2 if side == 0 else hx - d / 2
                lo, hi = np.array([x - d / 2, c - w / 2, 0]), np.array([x + d / 2, c + w / 2, h])
            else:
                y = -hy + d / 2 if side == 2 else hy - d / 2
                lo, hi = np.array([c - w / 2, y - d / 2, 0]), np.array([c + w / 2, y + d / 2, h])
            if all(np.any(lo >= q_hi - 1e-6) or np.any(hi <= q_lo + 1e-6)
                   for q_lo, q_hi in placed):
                placed.append((lo, hi))
                mat = _material(rng, ["plain", "gradient", "checker"])
                room.boxes.append(Box(lo, hi, CLASS_NAMES.index(name), mat))
                if name == "sofa":                        # a backrest on the wall side
                    blo, bhi = lo.copy(), hi.copy()
                    if side < 2:
                        blo[0], bhi[0] = (lo[0], lo[0] + 0.2) if side == 0 else (hi[0] - 0.2, hi[0])
                    else:
                        blo[1], bhi[1] = (lo[1], lo[1] + 0.2) if side == 2 else (hi[1] - 0.2, hi[1])
                    bhi[2] = h + 0.4
                    room.boxes.append(Box(blo, bhi, CLASS_NAMES.index("sofa"), mat))
                break
    if not robot:
        w, d = rng.uniform(0.8, 1.4), rng.uniform(0.6, 0.9)
        c = rng.uniform(-0.3, 0.3, 2)
        mat = _material(rng, ["plain", "gradient", "checker"])
        t = CLASS_NAMES.index("table")
        room.boxes.append(Box(np.array([c[0] - w / 2, c[1] - d / 2, 0.71]),
                              np.array([c[0] + w / 2, c[1] + d / 2, 0.75]), t, mat))
        for sx in (-1, 1):
            for sy in (-1, 1):
                px, py = c[0] + sx * (w / 2 - 0.05), c[1] + sy * (d / 2 - 0.05)
                room.boxes.append(Box(np.array([px - 0.025, py - 0.025, 0.0]),
                                      np.array([px + 0.025, py + 0.025, 0.71]), t, mat))
    room.light = np.array([rng.uniform(-hx / 2, hx / 2), rng.uniform(-hy / 2, hy / 2),
                           size[2] - 0.3])
    room.light_power = float(rng.uniform(3.0, 10.0))
    room.ambient = float(rng.uniform(0.15, 0.4))
    return room


def look_c2w(position: np.ndarray, yaw: float, pitch: float) -> np.ndarray:
    """OpenCV camera-to-world [4, 4] (x right, y down, z forward) at ``position``, looking at
    ``yaw`` about world z (up) and ``pitch`` above the horizon (rad)."""
    f = np.array([math.cos(pitch) * math.cos(yaw), math.cos(pitch) * math.sin(yaw),
                  math.sin(pitch)])
    right = np.cross(f, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(f, right)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, down, f, position
    return c2w


def trajectory(rng: np.random.Generator, room: Room, frames: int, robot: bool) -> np.ndarray:
    """[frames, 4, 4] poses on one loop of an ellipse around the room's centre."""
    rx, ry = 0.3 * room.size[0] / 2 + 0.4, 0.3 * room.size[1] / 2 + 0.4
    start = rng.uniform(0, 2 * math.pi)
    height = rng.uniform(0.35, 0.5) if robot else rng.uniform(1.3, 1.6)
    inward = math.radians(rng.uniform(20, 40))
    pitch = math.radians(rng.uniform(-3, 8) if robot else rng.uniform(-20, -10))
    poses = []
    for i in range(frames):
        th = start + 2 * math.pi * i / frames
        pos = np.array([rx * math.cos(th), ry * math.sin(th),
                        height + (0 if robot else 0.03 * math.sin(3 * th))])
        tangent = math.atan2(ry * math.cos(th), -rx * math.sin(th))
        poses.append(look_c2w(pos, tangent + inward, pitch))
    return np.stack(poses)


def clear_path(room: Room, centres: np.ndarray, clearance: float = 0.3) -> None:
    """Drop the furniture a camera centre [F, 3] would sit in or within ``clearance`` m of."""
    keep = []
    for b in room.boxes:
        lo, hi = b.lo - clearance, b.hi + clearance
        if not np.any(np.all((centres >= lo) & (centres <= hi), 1)):
            keep.append(b)
    room.boxes = keep


def intrinsics(height: int, width: int) -> np.ndarray:
    f = (width / 2) / math.tan(math.radians(HFOV_DEG) / 2)
    return np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1]])


def cast(room: Room, origin: np.ndarray, dirs: np.ndarray
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """First hit of rays ``origin`` [3] + t ``dirs`` [N, 3] (t = z-depth, dirs unnormalised).
    Returns t [N], label [N], normal axis [N] and the material index [N] (-1..-3: floor, wall,
    ceiling; >= 0: box)."""
    d = np.where(np.abs(dirs) < 1e-12, 1e-12, dirs)
    lo = np.array([-room.size[0] / 2, -room.size[1] / 2, 0.0])
    hi = np.array([room.size[0] / 2, room.size[1] / 2, room.size[2]])
    t_exit = np.maximum((lo - origin) / d, (hi - origin) / d)            # [N, 3]
    axis = np.argmin(t_exit, 1)
    t = t_exit[np.arange(len(d)), axis]
    up = d[np.arange(len(d)), 2] > 0
    label = np.where(axis < 2, 1, np.where(up, 2, 0))
    mat = np.where(axis < 2, -2, np.where(up, -3, -1))
    for bi, b in enumerate(room.boxes):
        t1, t2 = (b.lo - origin) / d, (b.hi - origin) / d
        tmin, tmax = np.minimum(t1, t2), np.maximum(t1, t2)
        t_in, t_out = tmin.max(1), tmax.min(1)
        hit = (t_in < t_out) & (t_in > 1e-4) & (t_in < t)
        t = np.where(hit, t_in, t)
        axis = np.where(hit, tmin.argmax(1), axis)
        label = np.where(hit, b.label, label)
        mat = np.where(hit, bi, mat)
    return t, label, axis, mat


def shade(room: Room, origin: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, ...]:
    """Colour [N, 3] in [0, 1] (sRGB), z-depth [N] m and label [N] of rays."""
    t, label, axis, mat = cast(room, origin, dirs)
    p = origin + t[:, None] * dirs
    normal = np.zeros_like(p)
    normal[np.arange(len(p)), axis] = -np.sign(dirs[np.arange(len(p)), axis])
    # tangent coordinates: the two world axes in the face's plane
    s = np.where(axis == 0, p[:, 1], p[:, 0])
    tt = np.where(axis == 2, p[:, 1], p[:, 2])
    alb = np.zeros_like(p)
    names = {-1: "floor", -2: "wall", -3: "ceiling"}
    for m in np.unique(mat):
        sel = mat == m
        material = room.surfaces[names[m]] if m < 0 else room.boxes[m].material
        alb[sel] = material.albedo(s[sel], tt[sel])
    to_l = room.light - p
    dist2 = (to_l ** 2).sum(1)
    lam = np.clip((normal * to_l).sum(1) / np.sqrt(dist2), 0, None)
    lin = alb * (room.ambient + room.light_power * lam / (1.0 + dist2))[:, None]
    rgb = np.clip(lin, 0, 1) ** (1 / 2.2)
    return rgb, t, label


def render_view(room: Room, c2w: np.ndarray, K: np.ndarray, height: int, width: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RGB uint8 [H, W, 3], z-depth [H, W] m and labels uint8 [H, W] of one camera."""
    Kinv = np.linalg.inv(K)
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    colour = np.zeros((height * width, 3))
    for du, dv in ((-0.25, -0.25), (0.25, -0.25), (-0.25, 0.25), (0.25, 0.25)):
        pix = np.stack([u.ravel() + du, v.ravel() + dv, np.ones(u.size)], 1)
        rgb, _, _ = shade(room, c2w[:3, 3], pix @ Kinv.T @ c2w[:3, :3].T)
        colour += rgb / 4
    pix = np.stack([u.ravel(), v.ravel(), np.ones(u.size)], 1)
    dirs = pix @ Kinv.T @ c2w[:3, :3].T
    t, label, _, _ = cast(room, c2w[:3, 3], dirs)
    return ((colour.reshape(height, width, 3) * 255 + 0.5).astype(np.uint8),
            t.reshape(height, width), label.reshape(height, width).astype(np.uint8))


def write_room(out: Path, name: str, seed: int, frames: int, height: int, width: int,
               robot: bool | None = None) -> Path:
    """Render and write one room; ``robot`` None draws the camera path (30 % robot base)."""
    rng = np.random.default_rng(seed)
    if robot is None:
        robot = bool(rng.uniform() < 0.3)
    room = make_room(rng, robot)
    poses = trajectory(rng, room, frames, robot)
    clear_path(room, poses[:, :3, 3])
    K = intrinsics(height, width)
    d = out / name
    for sub in ("rgb", "depth", "semantic_class"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    for i, c2w in enumerate(poses):
        rgb, depth, label = render_view(room, c2w, K, height, width)
        cv2.imwrite(str(d / "rgb" / f"rgb_{i}.png"), rgb[..., ::-1])
        mm = np.round(depth * 1000.0)
        cv2.imwrite(str(d / "depth" / f"depth_{i}.png"),
                    np.where((mm > 0) & (mm <= 65535), mm, 0).astype(np.uint16))
        cv2.imwrite(str(d / "semantic_class" / f"semantic_class_{i}.png"), label)
    meta = {"name": name, "K": K.tolist(), "height": height, "width": width,
            "class_names": CLASS_NAMES, "palette": PALETTE, "near": NEAR, "far": FAR,
            "renderer": "tools/independent_rooms.py", "seed": seed,
            "room_size": room.size.tolist(),
            "surfaces": {k: m.kind for k, m in room.surfaces.items()},
            "camera": {"mode": "robot" if robot else "handheld"}}
    (d / "scene.json").write_text(json.dumps(meta, indent=1))
    np.savetxt(d / "traj_w_c.txt", poses.reshape(len(poses), 16), fmt="%.9g")   # last
    return d


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--rooms", type=int, default=6)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--height", type=int, default=240)
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--camera", choices=["mixed", "handheld", "robot"], default="mixed")
    a = ap.parse_args(argv)
    if a.rooms < 1 or a.frames < 2 or a.height < 8 or a.width < 8:
        ap.error("need --rooms >= 1, --frames >= 2 and an image of at least 8x8")
    robot = {"mixed": None, "handheld": False, "robot": True}[a.camera]
    for r in range(a.rooms):
        seed = 7_000_000 + a.seed + r
        path = write_room(a.out, f"indep_{a.seed + r:04d}", seed, a.frames, a.height, a.width,
                          robot)
        print(path, json.loads((path / "scene.json").read_text())["camera"]["mode"], flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
