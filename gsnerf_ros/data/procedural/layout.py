"""Random indoor rooms: shell, L-shaped cut-outs, doors, windows, furniture, materials, lights.

Everything is drawn from one ``numpy.random.Generator``, so a room is a pure function of its
seed and its setting (:class:`~.distribution.SceneDistribution`: sizes, materials, lights).
Coordinates: world z up, the floor at z = 0, the room centred on x = y = 0. A piece of
furniture is built in its own frame (x across, y towards the room, z up, origin on the floor at
its footprint centre) and placed with a position and a yaw.

The furniture builders live in :mod:`~gsnerf_ros.data.procedural.furniture`, the primitive /
material collector in :mod:`~gsnerf_ros.data.procedural.room_builder` and the floor occupancy
grid in :mod:`~gsnerf_ros.data.procedural.floor_occupancy`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from gsnerf_ros.data.procedural.distribution import SceneDistribution
from gsnerf_ros.data.procedural.floor_occupancy import FloorOccupancy
from gsnerf_ros.data.procedural.furniture import (
    add_bed,
    add_cabinet,
    add_chair,
    add_lamp,
    add_plant,
    add_shelf,
    add_small_objects,
    add_sofa,
    add_table,
    add_tv,
)
from gsnerf_ros.data.procedural.primitives import SHELL, PrimitiveSet
from gsnerf_ros.data.procedural.lighting import Light, WindowSpot, sample_lights
from gsnerf_ros.data.procedural.room_builder import CLASS_ID, RoomBuilder, hsv_color, rot_z
from gsnerf_ros.data.procedural.textures import TEXTURES, MaterialTable

__all__ = ["Light", "Room", "sample_room", "sample_room_size", "CLASS_ID"]


@dataclass
class Room:
    """A sampled room ready to render."""

    prims: PrimitiveSet
    materials: MaterialTable
    lights: list[Light]
    ambient: np.ndarray
    size: tuple[float, float, float]
    occupancy: np.ndarray
    """[Gx,Gy] bool, floor cells covered by furniture (5 cm cells, rugs excluded)."""
    grid_origin: tuple[float, float]
    grid_res: float
    pieces: list[dict] = field(default_factory=list)
    focus_points: list[np.ndarray] = field(default_factory=list)
    """Centres of furniture, for look-at targets and close-ups."""
    surfaces: dict[str, str] = field(default_factory=dict)
    """Texture family of the wall, floor and ceiling."""


_ROOM_TYPES = {
    "living": (["sofa", "table_low", "rug", "cabinet_tv"],
               ["lamp", "plant", "shelf", "picture", "chair", "picture", "cabinet", "objects"]),
    "bedroom": (["bed", "cabinet_small", "rug"],
                ["lamp", "shelf", "picture", "plant", "desk", "cabinet", "chair", "objects"]),
    "office": (["table", "chair", "chair", "shelf"],
               ["chair", "cabinet", "plant", "lamp", "picture", "cabinet_tv", "sofa", "objects"]),
}


def sample_room_size(rng: np.random.Generator, dist: SceneDistribution) -> tuple[float, float, float]:
    """Room box (lx, ly, height) m: the shorter side from ``room.short_side`` (within
    ``room.side``), the longer side at least that, either side along x."""
    r = dist.room
    short = rng.uniform(max(r.short_side[0], r.side[0]), min(r.short_side[1], r.side[1]))
    long_ = rng.uniform(max(short, r.side[0]), r.side[1])
    lx, ly = (short, long_) if rng.uniform() < 0.5 else (long_, short)
    return float(lx), float(ly), float(rng.uniform(*r.height))


def sample_room(seed: int, dist: SceneDistribution | None = None) -> Room:
    """Sample a complete room for ``seed`` from setting ``dist`` (default: the training
    setting); deterministic."""
    dist = dist or SceneDistribution()
    rng = np.random.default_rng(seed)
    b = RoomBuilder(rng, dist.materials)
    lx, ly, hz = sample_room_size(rng, dist)
    # shell materials
    wall = b.surface("wall", (0.05, 0.4), (0.55, 0.95))
    floor = b.surface("floor", (0.0, 0.45), (0.3, 0.85))
    ceil = b.surface("ceiling", (0.0, 0.12), (0.75, 0.95))
    surfaces = {k: TEXTURES[b.mats[m][0]] for k, m in (("wall", wall), ("floor", floor),
                                                       ("ceiling", ceil))}
    b._add(SHELL, [0, 0, hz / 2], [lx / 2, ly / 2, hz / 2], "wall", wall, world=True)
    fl = FloorOccupancy(lx, ly)
    pieces: list[dict] = []
    focus: list[np.ndarray] = []
    blocked: list[tuple[float, float, float, float]] = []
    windows: list[WindowSpot] = []
    # L-shaped cut-out
    if rng.uniform() < dist.room.l_shape_prob:
        cx, cy = rng.uniform(0.25, 0.4) * lx, rng.uniform(0.25, 0.4) * ly
        sx, sy = rng.choice([-1, 1]), rng.choice([-1, 1])
        c = [sx * (lx / 2 - cx / 2), sy * (ly / 2 - cy / 2), hz / 2]
        b.box(c, [cx / 2, cy / 2, hz / 2], "wall", wall, world=True)
        fl.mark(c[:2], 0.0, cx, cy)
        blocked.append((float(c[0]), float(c[1]), cx / 2, cy / 2))
        pieces.append({"type": "l_cut", "pos": [float(c[0]), float(c[1])]})
    walls = [(0, -ly / 2, lx), (1, lx / 2, ly), (2, ly / 2, lx), (3, -lx / 2, ly)]

    def wall_pose(side: int, along: float, inset: float) -> tuple[np.ndarray, float]:
        yaw = side * math.pi / 2
        if side == 0:
            return np.array([along, -ly / 2 + inset]), yaw
        if side == 1:
            return np.array([lx / 2 - inset, along]), yaw
        if side == 2:
            return np.array([-along, ly / 2 - inset]), yaw
        return np.array([-lx / 2 + inset, -along]), yaw

    def wall_len(side: int) -> float:
        return lx if side in (0, 2) else ly

    reserved: list[tuple[int, float, float]] = []  # (side, along_min, along_max) for door/window

    def wall_item_fits(side: int, a0: float, a1: float) -> bool:
        for s, r0, r1 in reserved:
            if s == side and a0 < r1 + 0.1 and a1 > r0 - 0.1:
                return False
        return True

    # door(s)
    door_wood = b.wood() if rng.uniform() < 0.6 else b.painted()
    for _ in range(1 if rng.uniform() < 0.75 else 2):
        for _try in range(20):
            side = int(rng.integers(0, 4))
            dw = rng.uniform(0.8, 1.0)
            L = wall_len(side)
            a = rng.uniform(-L / 2 + dw / 2 + 0.2, L / 2 - dw / 2 - 0.2)
            pos, yaw = wall_pose(side, a, 0.0)
            if not wall_item_fits(side, a - dw / 2, a + dw / 2) or not fl.free(pos, yaw, dw, 0.5, 0.0,
                                                                               inside=False):
                continue
            dh = rng.uniform(2.0, min(2.2, hz - 0.15))
            b.begin_piece(np.array([pos[0], pos[1], 0.0]), yaw)
            b.box([0, 0.0, dh / 2], [dw / 2, 0.03, dh / 2], "door", door_wood)
            b.ell([dw / 2 - 0.1, 0.05, 1.0], [0.03, 0.03, 0.03], "door", b.metal())
            fl.mark(pos + 0.4 * np.array([-math.sin(yaw), math.cos(yaw)]), yaw, dw, 0.8)
            reserved.append((side, a - dw / 2, a + dw / 2))
            pieces.append({"type": "door", "side": side})
            break
    # windows
    frame_m = b.mat("plaster", [0.95, 0.95, 0.93], [0.85, 0.85, 0.82], 0.2)
    sky = b.mat("sky", hsv_color(rng.uniform(0.53, 0.62), rng.uniform(0.3, 0.6), 1.0),
                [1.0, 1.0, 1.0], rng.uniform(0.8, 2.0), emissive=True)
    for _ in range(int(rng.integers(1, 3))):
        for _try in range(20):
            side = int(rng.integers(0, 4))
            ww = rng.uniform(0.8, 1.6)
            L = wall_len(side)
            if L < ww + 0.6:
                continue
            a = rng.uniform(-L / 2 + ww / 2 + 0.2, L / 2 - ww / 2 - 0.2)
            if not wall_item_fits(side, a - ww / 2, a + ww / 2):
                continue
            pos, yaw = wall_pose(side, a, 0.0)
            if not fl.free(pos, yaw, ww, 0.3, 0.0, inside=False):
                continue
            wh = rng.uniform(0.8, min(1.4, hz - 1.2))
            z0 = rng.uniform(0.8, 1.0)
            b.begin_piece(np.array([pos[0], pos[1], 0.0]), yaw)
            b.box([0, 0.0, z0 + wh / 2], [ww / 2, 0.04, wh / 2], "window", frame_m)
            b.box([0, 0.01, z0 + wh / 2], [ww / 2 - 0.05, 0.04, wh / 2 - 0.05], "window", sky)
            b.box([0, 0.05, z0 + wh / 2], [0.02, 0.01, wh / 2 - 0.05], "window", frame_m)
            b.box([0, 0.05, z0 + wh / 2], [ww / 2 - 0.05, 0.01, 0.02], "window", frame_m)
            b.box([0, 0.06, z0 - 0.02], [ww / 2 + 0.05, 0.06, 0.02], "window", frame_m)
            reserved.append((side, a - ww / 2, a + ww / 2))
            pieces.append({"type": "window", "side": side})
            windows.append(WindowSpot(np.array([pos[0], pos[1], z0 + wh / 2]),
                                      np.array([-math.sin(yaw), math.cos(yaw)])))
            break

    lamps: list[Light] = []
    rtype = list(_ROOM_TYPES)[int(rng.integers(0, len(_ROOM_TYPES)))]
    must, extra = _ROOM_TYPES[rtype]
    area = lx * ly - sum(4 * hx * hy for _cx, _cy, hx, hy in blocked)
    lo, hi = dist.room.furniture_count
    n_pieces = int(np.clip(round(area * rng.uniform(*dist.room.furniture_per_m2)), lo, hi))
    wanted = list(must) + [extra[int(i)] for i in rng.integers(0, len(extra), size=max(0, n_pieces - len(must)))]
    table_pos: list[tuple[np.ndarray, float, float, float]] = []

    def place(kind: str, w: float, d: float, against_wall: bool, tall: bool = False,
              corner: bool = False) -> tuple[np.ndarray, float] | None:
        for _try in range(60):
            if against_wall or corner:
                side = int(rng.integers(0, 4))
                L = wall_len(side)
                if L < w + 0.3:
                    continue
                a = (rng.choice([-1, 1]) * (L / 2 - w / 2 - 0.05) if corner
                     else rng.uniform(-L / 2 + w / 2 + 0.05, L / 2 - w / 2 - 0.05))
                if tall and not wall_item_fits(side, a - w / 2, a + w / 2):
                    continue
                pos, yaw = wall_pose(side, a, d / 2 + 0.03)
            else:
                pos = np.array([rng.uniform(-lx / 2 + 0.6, lx / 2 - 0.6),
                                rng.uniform(-ly / 2 + 0.6, ly / 2 - 0.6)])
                yaw = rng.uniform(-0.25, 0.25) + (math.pi / 2) * int(rng.integers(0, 4))
            if fl.free(pos, yaw, w, d):
                return pos, yaw
        return None

    for kind in wanted:
        if kind == "picture":
            for _try in range(20):
                side = int(rng.integers(0, 4))
                pw, ph = rng.uniform(0.35, 1.0), rng.uniform(0.3, 0.8)
                L = wall_len(side)
                if L < pw + 0.4:
                    continue
                a = rng.uniform(-L / 2 + pw / 2 + 0.1, L / 2 - pw / 2 - 0.1)
                if not wall_item_fits(side, a - pw / 2, a + pw / 2):
                    continue
                pos, yaw = wall_pose(side, a, 0.0)
                if fl.mask(pos + 0.1 * np.array([-math.sin(yaw), math.cos(yaw)]), yaw, pw, 0.1).__and__(fl.occ).any():
                    continue
                z = rng.uniform(1.3, min(1.8, hz - ph / 2 - 0.2))
                b.begin_piece(np.array([pos[0], pos[1], 0.0]), yaw)
                fm = b.wood()
                b.box([0, 0.015, z], [pw / 2, 0.015, ph / 2], "picture", fm)
                b.box([0, 0.032, z], [pw / 2 - 0.04, 0.003, ph / 2 - 0.04], "picture",
                      b.mat("painting", hsv_color(rng.uniform(), 0.6, 0.8),
                            hsv_color(rng.uniform(), 0.5, 0.6), rng.uniform(0.15, 0.5)))
                reserved.append((side, a - pw / 2, a + pw / 2))
                pieces.append({"type": "picture"})
                focus.append(np.array([pos[0], pos[1], z]))
                break
            continue
        if kind == "rug":
            w, d = rng.uniform(1.2, min(2.8, lx - 1.0)), rng.uniform(1.0, min(2.2, ly - 1.0))
            pos = np.array([rng.uniform(-0.3, 0.3) * (lx - w), rng.uniform(-0.3, 0.3) * (ly - d)])
            b.begin_piece(np.array([pos[0], pos[1], 0.0]), 0.0)
            b.box([0, 0, 0.006], [w / 2, d / 2, 0.006], "rug", b.fabric(0.8))
            pieces.append({"type": "rug"})
            continue
        spec = {
            "sofa": (rng.uniform(1.5, 2.2), 0.95, True, False, False),
            "table": (rng.uniform(1.0, 1.6), rng.uniform(0.7, 0.9), False, False, False),
            "table_low": (rng.uniform(0.8, 1.2), rng.uniform(0.5, 0.7), False, False, False),
            "desk": (rng.uniform(1.0, 1.4), rng.uniform(0.6, 0.7), True, False, False),
            "chair": (0.5, 0.5, False, False, False),
            "bed": (rng.uniform(1.0, 1.8), rng.uniform(2.0, 2.1), True, False, False),
            "cabinet": (rng.uniform(0.6, 1.2), rng.uniform(0.4, 0.55), True, True, False),
            "cabinet_tv": (rng.uniform(1.2, 1.8), 0.45, True, False, False),
            "cabinet_small": (0.5, 0.45, True, False, True),
            "shelf": (rng.uniform(0.8, 1.2), 0.35, True, True, False),
            "lamp": (0.45, 0.45, False, False, True),
            "plant": (0.5, 0.5, False, False, True),
            "objects": (0.5, 0.5, False, False, False),
        }[kind]
        w, d, wall_ok, tall, corner = spec
        pose = None
        if kind == "chair" and table_pos and rng.uniform() < 0.8:
            tp, tyaw, tw, td = table_pos[int(rng.integers(0, len(table_pos)))]
            for _try in range(8):
                k = int(rng.integers(0, 4))
                off = [(0, -(td / 2 + 0.3)), (0, td / 2 + 0.3), (-(tw / 2 + 0.3), 0), (tw / 2 + 0.3, 0)][k]
                yaw_c = tyaw + [0.0, math.pi, -math.pi / 2, math.pi / 2][k] + rng.uniform(-0.3, 0.3)
                p = tp + rot_z(tyaw)[:2, :2] @ np.array(off)
                if fl.free(p, yaw_c, w, d, 0.02):
                    pose = (p, yaw_c)
                    break
        if pose is None:
            pose = place(kind, w, d, wall_ok, tall, corner)
        if pose is None:
            continue
        pos, yaw = pose
        fl.mark(pos, yaw, w, d)
        b.begin_piece(np.array([pos[0], pos[1], 0.0]), yaw)
        top = None
        if kind in ("table", "desk", "table_low"):
            h = rng.uniform(0.4, 0.5) if kind == "table_low" else rng.uniform(0.72, 0.78)
            top = add_table(b, w, d, h)["top"]
            table_pos.append((pos, yaw, w, d))
        elif kind == "chair":
            add_chair(b)
        elif kind == "sofa":
            add_sofa(b, w)
        elif kind == "bed":
            add_bed(b, w, d)
        elif kind in ("cabinet", "cabinet_tv", "cabinet_small"):
            h = {"cabinet": rng.uniform(0.8, min(1.9, hz - 0.5)), "cabinet_tv": rng.uniform(0.45, 0.6),
                 "cabinet_small": rng.uniform(0.45, 0.6)}[kind]
            top = add_cabinet(b, w, d, h)["top"]
            if kind == "cabinet_tv":
                add_tv(b, top)
            elif kind == "cabinet_small" and rng.uniform() < 0.7:
                b.begin_piece(np.array([pos[0], pos[1], 0.0]), yaw)
                ztop = add_lamp(b, floor=False, base_z=top)
                lamps.append(Light(np.array([pos[0], pos[1], ztop + 0.25]),
                                   np.array([1.0, 0.85, 0.65]), float(rng.uniform(0.3, 0.6))))
            elif h < 1.3 and rng.uniform() < 0.6:
                add_small_objects(b, top, w, d, int(rng.integers(1, 3)))
        elif kind == "shelf":
            add_shelf(b, w, d, rng.uniform(1.5, min(2.1, hz - 0.3)))
        elif kind == "lamp":
            ztop = add_lamp(b, floor=True)
            lamps.append(Light(np.array([pos[0], pos[1], min(ztop + 0.3, hz - 0.15)]),
                               np.array([1.0, 0.85, 0.65]), float(rng.uniform(0.5, 1.0))))
        elif kind == "plant":
            add_plant(b)
        elif kind == "objects":
            add_small_objects(b, 0.0, w, d, int(rng.integers(1, 3)))
        pieces.append({"type": kind, "pos": [float(pos[0]), float(pos[1])], "yaw": float(yaw)})
        focus.append(np.array([pos[0], pos[1], (top or 0.5)]))

    lights, ambient = sample_lights(rng, dist.lights, (lx, ly, hz), lamps, windows, blocked)
    prims, mats = b.build((CLASS_ID["floor"], CLASS_ID["ceiling"], CLASS_ID["wall"]),
                          (floor, ceil, wall))
    return Room(prims=prims, materials=mats, lights=lights, ambient=ambient, size=(lx, ly, hz),
                occupancy=fl.occ, grid_origin=(fl.ox, fl.oy), grid_res=fl.res, pieces=pieces,
                focus_points=focus, surfaces=surfaces)
