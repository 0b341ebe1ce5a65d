"""Random indoor rooms: shell, L-shaped cut-outs, doors, windows, furniture, materials, lights.

Everything is drawn from one ``numpy.random.Generator``, so a room is a pure function of its
seed. Coordinates: world z up, the floor at z = 0, the room centred on x = y = 0. A piece of
furniture is built in its own frame (x across, y towards the room, z up, origin on the floor at
its footprint centre) and placed with a position and a yaw.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from gsnerf_ros.data.classes import PROCEDURAL_CLASSES
from gsnerf_ros.data.procedural.primitives import BOX, CYLINDER, ELLIPSOID, SHELL, PrimitiveSet
from gsnerf_ros.data.procedural.textures import TEXTURES, MaterialTable

__all__ = ["Light", "Room", "sample_room", "CLASS_ID"]

CLASS_ID = {n: i for i, n in enumerate(PROCEDURAL_CLASSES)}
_TEX = {n: i for i, n in enumerate(TEXTURES)}


@dataclass
class Light:
    """A point light: ``position`` (3,) m, ``color`` (3,) linear RGB, ``power`` (irradiance at
    1 m), ``radius`` m of the soft falloff."""

    position: np.ndarray
    color: np.ndarray
    power: float


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


def _rz(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _rx(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _hsv(h: float, s: float, v: float) -> list[float]:
    return list(colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0)))


class _Builder:
    """Collects primitives and materials."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.kind: list[int] = []
        self.center: list[np.ndarray] = []
        self.R: list[np.ndarray] = []
        self.size: list[np.ndarray] = []
        self.label: list[int] = []
        self.material: list[int] = []
        self.piece: list[int] = []
        self.mats: list[tuple] = []
        self.piece_id = -1
        self.frame = (np.zeros(3), np.eye(3))

    # materials ---------------------------------------------------------------------------
    def mat(self, tex: str, a, b, scale: float, emissive: bool = False) -> int:
        seed = int(self.rng.integers(0, 2**30))
        self.mats.append((_TEX[tex], np.clip(a, 0, 1), np.clip(b, 0, 1), scale, seed, emissive))
        return len(self.mats) - 1

    def wood(self) -> int:
        h = self.rng.uniform(0.04, 0.11)
        v = self.rng.uniform(0.3, 0.75)
        a = _hsv(h, self.rng.uniform(0.45, 0.75), v * 0.6)
        b = _hsv(h + 0.01, self.rng.uniform(0.35, 0.6), v)
        return self.mat("wood", a, b, self.rng.uniform(0.3, 0.8))

    def fabric(self, sat: float = 0.5) -> int:
        h = self.rng.uniform()
        a = _hsv(h, self.rng.uniform(0.2, sat + 0.2), self.rng.uniform(0.35, 0.8))
        b = _hsv(h + self.rng.uniform(-0.06, 0.06), self.rng.uniform(0.1, sat), self.rng.uniform(0.5, 0.95))
        tex = "fabric" if self.rng.uniform() < 0.7 else "stripes"
        return self.mat(tex, a, b, self.rng.uniform(0.08, 0.3))

    def painted(self) -> int:
        h = self.rng.uniform()
        a = _hsv(h, self.rng.uniform(0.05, 0.5), self.rng.uniform(0.45, 0.95))
        b = _hsv(h, self.rng.uniform(0.0, 0.3), self.rng.uniform(0.3, 0.8))
        tex = ["plaster", "speckle", "stripes"][int(self.rng.integers(0, 3))]
        return self.mat(tex, a, b, self.rng.uniform(0.1, 0.5))

    def metal(self) -> int:
        v = self.rng.uniform(0.2, 0.8)
        return self.mat("speckle", [v, v, v * 1.02], [v * 0.7] * 3, self.rng.uniform(0.05, 0.2))

    # primitives --------------------------------------------------------------------------
    def begin_piece(self, pos: np.ndarray, yaw: float) -> None:
        self.piece_id += 1
        self.frame = (np.asarray(pos, dtype=np.float64), _rz(yaw))

    def _add(self, kind: int, c, half, label: str, mat: int, R: np.ndarray | None = None,
             world: bool = False) -> None:
        c = np.asarray(c, dtype=np.float64)
        Rl = np.eye(3) if R is None else R
        if world:
            cw, Rw = c, Rl
        else:
            p0, Rp = self.frame
            cw, Rw = p0 + Rp @ c, Rp @ Rl
        self.kind.append(kind)
        self.center.append(cw)
        self.R.append(Rw)
        self.size.append(np.asarray(half, dtype=np.float64))
        self.label.append(CLASS_ID[label])
        self.material.append(mat)
        self.piece.append(self.piece_id if not world else -1)

    def box(self, c, half, label, mat, R=None, world=False) -> None:
        self._add(BOX, c, half, label, mat, R, world)

    def cyl(self, c, radius, half_h, label, mat, R=None, world=False) -> None:
        self._add(CYLINDER, c, [radius, radius, half_h], label, mat, R, world)

    def ell(self, c, radii, label, mat, R=None, world=False) -> None:
        self._add(ELLIPSOID, c, radii, label, mat, R, world)

    def build(self, shell_labels, shell_mats) -> tuple[PrimitiveSet, MaterialTable]:
        f32 = torch.float32
        prims = PrimitiveSet(
            kind=torch.tensor(self.kind, dtype=torch.long),
            center=torch.tensor(np.array(self.center), dtype=f32),
            R=torch.tensor(np.array(self.R), dtype=f32),
            size=torch.tensor(np.array(self.size), dtype=f32),
            label=torch.tensor(self.label, dtype=torch.long),
            material=torch.tensor(self.material, dtype=torch.long),
            piece=torch.tensor(self.piece, dtype=torch.long),
            shell_labels=shell_labels, shell_materials=shell_mats)
        m = self.mats
        mats = MaterialTable(
            tex=torch.tensor([x[0] for x in m], dtype=torch.long),
            color_a=torch.tensor(np.array([x[1] for x in m]), dtype=f32),
            color_b=torch.tensor(np.array([x[2] for x in m]), dtype=f32),
            scale=torch.tensor([x[3] for x in m], dtype=f32),
            seed=torch.tensor([x[4] for x in m], dtype=torch.long),
            emissive=torch.tensor([x[5] for x in m], dtype=torch.bool))
        return prims, mats


# --- furniture ---------------------------------------------------------------------------
def _small_objects(b: _Builder, top_z: float, w: float, d: float, n: int) -> None:
    """Cups, balls, boxes, vases and books on a surface of size w x d at height top_z."""
    rng = b.rng
    for _ in range(n):
        x = rng.uniform(-0.4, 0.4) * w
        y = rng.uniform(-0.35, 0.35) * d
        k = int(rng.integers(0, 4))
        m = b.mat("plaster" if rng.uniform() < 0.5 else "speckle",
                  _hsv(rng.uniform(), rng.uniform(0.4, 0.9), rng.uniform(0.5, 0.95)),
                  _hsv(rng.uniform(), rng.uniform(0.2, 0.6), rng.uniform(0.3, 0.8)),
                  rng.uniform(0.03, 0.1))
        if k == 0:
            r, h = rng.uniform(0.03, 0.06), rng.uniform(0.05, 0.09)
            b.cyl([x, y, top_z + h], r, h, "object", m)
        elif k == 1:
            r = rng.uniform(0.05, 0.1)
            b.ell([x, y, top_z + r], [r, r, r], "object", m)
        elif k == 2:
            hx, hy, hz = rng.uniform(0.05, 0.14), rng.uniform(0.04, 0.1), rng.uniform(0.02, 0.08)
            b.box([x, y, top_z + hz], [hx, hy, hz], "object", m, R=_rz(rng.uniform(0, math.pi)))
        else:
            r, h = rng.uniform(0.04, 0.07), rng.uniform(0.08, 0.15)
            b.cyl([x, y, top_z + h], r, h, "object", m)
            b.ell([x, y, top_z + 2 * h + 0.6 * r], [r * 1.2, r * 1.2, r], "object", m)


def _table(b: _Builder, w: float, d: float, h: float) -> dict:
    rng = b.rng
    top = b.wood() if rng.uniform() < 0.75 else b.painted()
    legm = top if rng.uniform() < 0.6 else b.metal()
    t = rng.uniform(0.02, 0.04)
    b.box([0, 0, h - t], [w / 2, d / 2, t], "table", top)
    lr = rng.uniform(0.02, 0.035)
    round_legs = rng.uniform() < 0.5
    for sx in (-1, 1):
        for sy in (-1, 1):
            c = [sx * (w / 2 - 0.07), sy * (d / 2 - 0.07), (h - 2 * t) / 2]
            if round_legs:
                b.cyl(c, lr, (h - 2 * t) / 2, "table", legm)
            else:
                b.box(c, [lr, lr, (h - 2 * t) / 2], "table", legm)
    n_obj = int(rng.integers(0, 4))
    _small_objects(b, h, w, d, n_obj)
    return {"top": h}


def _chair(b: _Builder) -> None:
    rng = b.rng
    s = rng.uniform(0.2, 0.25)
    sh = rng.uniform(0.42, 0.48)
    frame = b.wood() if rng.uniform() < 0.6 else b.metal()
    seat = b.fabric() if rng.uniform() < 0.5 else frame
    b.box([0, 0, sh], [s, s, 0.025], "chair", seat)
    bh = rng.uniform(0.18, 0.25)
    b.box([0, -s + 0.02, sh + 0.025 + bh], [s, 0.02, bh], "chair", seat)
    for sx in (-1, 1):
        for sy in (-1, 1):
            b.cyl([sx * (s - 0.03), sy * (s - 0.03), (sh - 0.025) / 2], 0.018, (sh - 0.025) / 2,
                  "chair", frame)


def _sofa(b: _Builder, w: float) -> None:
    rng = b.rng
    fab = b.fabric(0.6)
    d = rng.uniform(0.8, 0.95)
    b.box([0, 0, 0.2], [w / 2, d / 2, 0.2], "sofa", fab)
    b.box([0, -d / 2 + 0.1, 0.55], [w / 2, 0.1, 0.35], "sofa", fab)
    for sx in (-1, 1):
        b.box([sx * (w / 2 - 0.08), 0.05, 0.5], [0.08, d / 2 - 0.05, 0.1], "sofa", fab)
    cush = b.fabric(0.7)
    n = 2 if w < 1.9 else 3
    cw = (w - 0.32) / n
    for i in range(n):
        x = -w / 2 + 0.16 + cw * (i + 0.5)
        b.box([x, 0.05, 0.45], [cw / 2 - 0.01, d / 2 - 0.15, 0.06], "sofa", cush)
    if rng.uniform() < 0.7:
        pm = b.fabric(0.8)
        b.ell([-w / 2 + 0.35, -d / 2 + 0.28, 0.68], [0.18, 0.07, 0.15], "sofa", pm,
              R=_rz(rng.uniform(-0.3, 0.3)))


def _bed(b: _Builder, w: float, length: float) -> None:
    rng = b.rng
    frame = b.wood()
    b.box([0, 0, 0.15], [w / 2, length / 2, 0.15], "bed", frame)
    mattress = b.mat("fabric", [0.92, 0.92, 0.9], [0.8, 0.82, 0.85], 0.1)
    b.box([0, 0.0, 0.4], [w / 2 - 0.03, length / 2 - 0.03, 0.1], "bed", mattress)
    blanket = b.fabric(0.7)
    b.box([0, 0.22 * length, 0.51], [w / 2 - 0.01, length * 0.3, 0.02], "bed", blanket)
    b.box([0, -length / 2 - 0.03, 0.6], [w / 2, 0.04, 0.6], "bed", frame)
    pil = b.fabric(0.3)
    n = 2 if w > 1.2 else 1
    for i in range(n):
        x = 0 if n == 1 else (i - 0.5) * w * 0.5
        b.ell([x, -length / 2 + 0.3, 0.56], [min(0.3, w / (2 * n) - 0.05), 0.18, 0.07], "bed", pil)


def _cabinet(b: _Builder, w: float, d: float, h: float) -> dict:
    rng = b.rng
    body = b.wood() if rng.uniform() < 0.5 else b.painted()
    front = b.painted() if rng.uniform() < 0.5 else body
    handle = b.metal()
    b.box([0, 0, h / 2], [w / 2, d / 2, h / 2], "cabinet", body)
    rows = max(1, int(round(h / 0.4)))
    cols = 2 if w > 0.7 else 1
    for r in range(rows):
        for c in range(cols):
            cx = -w / 2 + w / cols * (c + 0.5)
            cz = h / rows * (r + 0.5)
            b.box([cx, d / 2 + 0.008, cz], [w / cols / 2 - 0.02, 0.008, h / rows / 2 - 0.02],
                  "cabinet", front)
            b.ell([cx + (0.0 if cols == 1 else (0.1 if c == 0 else -0.1)), d / 2 + 0.03, cz],
                  [0.02, 0.02, 0.02], "cabinet", handle)
    return {"top": h}


def _shelf(b: _Builder, w: float, d: float, h: float) -> None:
    rng = b.rng
    m = b.wood() if rng.uniform() < 0.7 else b.painted()
    t = 0.02
    for sx in (-1, 1):
        b.box([sx * (w / 2 - t), 0, h / 2], [t, d / 2, h / 2], "shelf", m)
    b.box([0, -d / 2 + 0.01, h / 2], [w / 2, 0.01, h / 2], "shelf", m)
    n = int(rng.integers(3, 6))
    for i in range(n + 1):
        z = t + (h - 2 * t) * i / n
        b.box([0, 0, z], [w / 2 - 2 * t, d / 2, t], "shelf", m)
        if i < n and rng.uniform() < 0.8:
            gap = (h - 2 * t) / n
            bh = gap * rng.uniform(0.5, 0.85) / 2
            bw = (w / 2 - 2 * t) * rng.uniform(0.4, 0.95)
            x0 = rng.uniform(-(w / 2 - 2 * t - bw), (w / 2 - 2 * t - bw) + 1e-6)
            books = b.mat("stripes", _hsv(rng.uniform(), 0.7, 0.7), _hsv(rng.uniform(), 0.5, 0.9),
                          rng.uniform(0.03, 0.07))
            b.box([x0, 0.0, z + t + bh], [bw, d / 2 - 0.04, bh], "object", books)


def _lamp(b: _Builder, floor: bool, base_z: float = 0.0) -> float:
    """A lamp; returns the height of its shade top."""
    rng = b.rng
    metal = b.metal()
    shade = b.mat("fabric", _hsv(rng.uniform(0.05, 0.15), 0.3, 0.95), [1.0, 0.95, 0.85], 0.05,
                  emissive=True)
    pole = rng.uniform(1.3, 1.6) if floor else rng.uniform(0.25, 0.4)
    b.cyl([0, 0, base_z + 0.015], 0.12 if floor else 0.07, 0.015, "lamp", metal)
    b.cyl([0, 0, base_z + 0.03 + pole / 2], 0.015, pole / 2, "lamp", metal)
    r = 0.2 if floor else 0.12
    hh = 0.13 if floor else 0.09
    b.cyl([0, 0, base_z + 0.03 + pole + hh * 0.6], r, hh, "lamp", shade)
    return base_z + 0.03 + pole + hh * 1.6


def _plant(b: _Builder) -> None:
    rng = b.rng
    pot = b.mat("speckle", _hsv(rng.uniform(0.02, 0.08), 0.6, 0.6), [0.3, 0.2, 0.15], 0.1)
    leaf = b.mat("speckle", _hsv(rng.uniform(0.25, 0.38), 0.6, 0.45),
                 _hsv(rng.uniform(0.2, 0.33), 0.7, 0.7), rng.uniform(0.04, 0.1))
    r = rng.uniform(0.12, 0.2)
    ph = rng.uniform(0.15, 0.25)
    b.cyl([0, 0, ph], r, ph, "plant", pot)
    for i in range(int(rng.integers(2, 4))):
        rr = r * rng.uniform(1.2, 2.0)
        b.ell([rng.uniform(-r, r) * 0.5, rng.uniform(-r, r) * 0.5, 2 * ph + rr * (0.7 + 0.8 * i)],
              [rr, rr, rr * rng.uniform(0.9, 1.4)], "plant", leaf)


def _tv(b: _Builder, z: float) -> None:
    rng = b.rng
    w = rng.uniform(0.8, 1.3)
    h = w * 9 / 16
    frame = b.mat("speckle", [0.08, 0.08, 0.09], [0.2, 0.2, 0.22], 0.05)
    screen = b.mat("painting", _hsv(rng.uniform(), 0.5, 0.4), _hsv(rng.uniform(), 0.4, 0.3),
                   rng.uniform(0.3, 0.6), emissive=True)
    b.box([0, 0, z + 0.05], [0.12, 0.06, 0.05], "tv", frame)
    b.box([0, 0, z + 0.1 + h / 2], [w / 2, 0.025, h / 2], "tv", frame)
    b.box([0, 0.026, z + 0.1 + h / 2], [w / 2 - 0.02, 0.003, h / 2 - 0.02], "tv", screen)


# --- room --------------------------------------------------------------------------------
_ROOM_TYPES = {
    "living": (["sofa", "table_low", "rug", "cabinet_tv"],
               ["lamp", "plant", "shelf", "picture", "chair", "picture", "cabinet", "objects"]),
    "bedroom": (["bed", "cabinet_small", "rug"],
                ["lamp", "shelf", "picture", "plant", "desk", "cabinet", "chair", "objects"]),
    "office": (["table", "chair", "chair", "shelf"],
               ["chair", "cabinet", "plant", "lamp", "picture", "cabinet_tv", "sofa", "objects"]),
}


class _Floor:
    """Occupancy grid of the floor (5 cm cells) for placing footprints without overlap."""

    def __init__(self, lx: float, ly: float, res: float = 0.05) -> None:
        self.res = res
        self.ox, self.oy = -lx / 2, -ly / 2
        self.occ = np.zeros((int(math.ceil(lx / res)), int(math.ceil(ly / res))), dtype=bool)
        xs = self.ox + (np.arange(self.occ.shape[0]) + 0.5) * res
        ys = self.oy + (np.arange(self.occ.shape[1]) + 0.5) * res
        self.X, self.Y = np.meshgrid(xs, ys, indexing="ij")

    def mask(self, pos, yaw, w, d, margin=0.0) -> np.ndarray:
        c, s = math.cos(yaw), math.sin(yaw)
        dx, dy = self.X - pos[0], self.Y - pos[1]
        lx = c * dx + s * dy
        ly = -s * dx + c * dy
        return (np.abs(lx) <= w / 2 + margin) & (np.abs(ly) <= d / 2 + margin)

    def free(self, pos, yaw, w, d, margin=0.05) -> bool:
        m = self.mask(pos, yaw, w, d, margin)
        return bool(m.any()) and not bool((m & self.occ).any())

    def mark(self, pos, yaw, w, d) -> None:
        self.occ |= self.mask(pos, yaw, w, d)


def sample_room(seed: int) -> Room:
    """Sample a complete room for ``seed`` (deterministic)."""
    rng = np.random.default_rng(seed)
    b = _Builder(rng)
    lx, ly = rng.uniform(3.2, 7.0), rng.uniform(3.0, 6.0)
    hz = rng.uniform(2.4, 3.1)
    # shell materials
    wall_h = rng.uniform()
    wall_tex = ["plaster", "stripes", "plaster", "tiles", "speckle"][int(rng.integers(0, 5))]
    wall = b.mat(wall_tex, _hsv(wall_h, rng.uniform(0.05, 0.35), rng.uniform(0.7, 0.95)),
                 _hsv(wall_h + rng.uniform(-0.1, 0.1), rng.uniform(0.05, 0.4), rng.uniform(0.5, 0.85)),
                 rng.uniform(0.15, 0.6))
    ftex = ["wood", "tiles", "speckle", "wood"][int(rng.integers(0, 4))]
    if ftex == "wood":
        floor = b.wood()
    else:
        fh = rng.uniform()
        floor = b.mat(ftex, _hsv(fh, rng.uniform(0.0, 0.4), rng.uniform(0.3, 0.8)),
                      _hsv(fh + 0.05, rng.uniform(0.0, 0.3), rng.uniform(0.4, 0.9)),
                      rng.uniform(0.3, 0.7))
    ceil = b.mat("speckle" if rng.uniform() < 0.5 else "plaster",
                 [0.92, 0.92, 0.9], _hsv(rng.uniform(), 0.1, 0.7), rng.uniform(0.2, 0.6))
    b._add(SHELL, [0, 0, hz / 2], [lx / 2, ly / 2, hz / 2], "wall", wall, world=True)
    fl = _Floor(lx, ly)
    pieces: list[dict] = []
    focus: list[np.ndarray] = []
    # L-shaped cut-out
    if rng.uniform() < 0.35:
        cx, cy = rng.uniform(0.25, 0.4) * lx, rng.uniform(0.25, 0.4) * ly
        sx, sy = rng.choice([-1, 1]), rng.choice([-1, 1])
        c = [sx * (lx / 2 - cx / 2), sy * (ly / 2 - cy / 2), hz / 2]
        b.box(c, [cx / 2, cy / 2, hz / 2], "wall", wall, world=True)
        fl.mark(c[:2], 0.0, cx, cy)
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
            if not wall_item_fits(side, a - dw / 2, a + dw / 2) or not fl.free(pos, yaw, dw, 0.5, 0.0):
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
    sky = b.mat("sky", _hsv(rng.uniform(0.53, 0.62), rng.uniform(0.3, 0.6), 1.0), [1.0, 1.0, 1.0],
                rng.uniform(0.8, 2.0), emissive=True)
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
            if not fl.free(pos, yaw, ww, 0.3, 0.0):
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
            break

    lights: list[Light] = []
    rtype = list(_ROOM_TYPES)[int(rng.integers(0, len(_ROOM_TYPES)))]
    must, extra = _ROOM_TYPES[rtype]
    n_pieces = int(rng.integers(5, 16))
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
                      b.mat("painting", _hsv(rng.uniform(), 0.6, 0.8), _hsv(rng.uniform(), 0.5, 0.6),
                            rng.uniform(0.15, 0.5)))
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
                p = tp + _rz(tyaw)[:2, :2] @ np.array(off)
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
            top = _table(b, w, d, h)["top"]
            table_pos.append((pos, yaw, w, d))
        elif kind == "chair":
            _chair(b)
        elif kind == "sofa":
            _sofa(b, w)
        elif kind == "bed":
            _bed(b, w, d)
        elif kind in ("cabinet", "cabinet_tv", "cabinet_small"):
            h = {"cabinet": rng.uniform(0.8, min(1.9, hz - 0.5)), "cabinet_tv": rng.uniform(0.45, 0.6),
                 "cabinet_small": rng.uniform(0.45, 0.6)}[kind]
            top = _cabinet(b, w, d, h)["top"]
            if kind == "cabinet_tv":
                _tv(b, top)
            elif kind == "cabinet_small" and rng.uniform() < 0.7:
                b.begin_piece(np.array([pos[0], pos[1], 0.0]), yaw)
                ztop = _lamp(b, floor=False, base_z=top)
                lights.append(Light(np.array([pos[0], pos[1], ztop + 0.25]),
                                    np.array([1.0, 0.85, 0.65]), float(rng.uniform(0.3, 0.6))))
            elif h < 1.3 and rng.uniform() < 0.6:
                _small_objects(b, top, w, d, int(rng.integers(1, 3)))
        elif kind == "shelf":
            _shelf(b, w, d, rng.uniform(1.5, min(2.1, hz - 0.3)))
        elif kind == "lamp":
            ztop = _lamp(b, floor=True)
            lights.append(Light(np.array([pos[0], pos[1], min(ztop + 0.3, hz - 0.15)]),
                                np.array([1.0, 0.85, 0.65]), float(rng.uniform(0.5, 1.0))))
        elif kind == "plant":
            _plant(b)
        elif kind == "objects":
            _small_objects(b, 0.0, w, d, int(rng.integers(1, 3)))
        pieces.append({"type": kind, "pos": [float(pos[0]), float(pos[1])], "yaw": float(yaw)})
        focus.append(np.array([pos[0], pos[1], (top or 0.5)]))

    # ceiling lights
    warm = rng.uniform()
    n_ceiling = int(rng.integers(1, 3))
    lights = lights[: max(0, 3 - n_ceiling)]  # at most 3 lights (one shadow map each)
    for _ in range(n_ceiling):
        p = np.array([rng.uniform(-0.3, 0.3) * lx, rng.uniform(-0.3, 0.3) * ly, hz - 0.25])
        col = np.array([1.0, 0.9 + 0.1 * (1 - warm), 0.75 + 0.25 * (1 - warm)])
        lights.append(Light(p, col, float(rng.uniform(1.2, 2.5))))
    ambient = np.array(_hsv(rng.uniform(0.5, 0.65), rng.uniform(0.0, 0.2), rng.uniform(0.18, 0.32)))
    prims, mats = b.build((CLASS_ID["floor"], CLASS_ID["ceiling"], CLASS_ID["wall"]),
                          (floor, ceil, wall))
    return Room(prims=prims, materials=mats, lights=lights, ambient=ambient, size=(lx, ly, hz),
                occupancy=fl.occ, grid_origin=(fl.ox, fl.oy), grid_res=fl.res, pieces=pieces,
                focus_points=focus)
