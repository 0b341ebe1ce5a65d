"""Furniture builders for procedural rooms: tables, chairs, sofas, beds, cabinets, shelves,
lamps, plants, TVs and small objects (cups, balls, boxes, vases, books).

Each builder adds primitives to a :class:`~gsnerf_ros.data.procedural.room_builder.RoomBuilder`
in the current piece's own frame (x across, y towards the room, z up, origin on the floor at its
footprint centre), drawing sizes, colours and materials from the builder's generator; the room
sampler places the piece with ``RoomBuilder.begin_piece``.
"""

from __future__ import annotations

import math

from gsnerf_ros.data.procedural.room_builder import RoomBuilder, hsv_color, rot_z

__all__ = ["add_table", "add_chair", "add_sofa", "add_bed", "add_cabinet", "add_shelf", "add_lamp",
           "add_plant", "add_tv", "add_small_objects"]


def add_small_objects(b: RoomBuilder, top_z: float, w: float, d: float, n: int) -> None:
    """Cups, balls, boxes, vases and books on a surface of size w x d at height top_z."""
    rng = b.rng
    for _ in range(n):
        x = rng.uniform(-0.4, 0.4) * w
        y = rng.uniform(-0.35, 0.35) * d
        k = int(rng.integers(0, 4))
        m = b.mat("plaster" if rng.uniform() < 0.5 else "speckle",
                  hsv_color(rng.uniform(), rng.uniform(0.4, 0.9), rng.uniform(0.5, 0.95)),
                  hsv_color(rng.uniform(), rng.uniform(0.2, 0.6), rng.uniform(0.3, 0.8)),
                  rng.uniform(0.03, 0.1))
        if k == 0:
            r, h = rng.uniform(0.03, 0.06), rng.uniform(0.05, 0.09)
            b.cyl([x, y, top_z + h], r, h, "object", m)
        elif k == 1:
            r = rng.uniform(0.05, 0.1)
            b.ell([x, y, top_z + r], [r, r, r], "object", m)
        elif k == 2:
            hx, hy, hz = rng.uniform(0.05, 0.14), rng.uniform(0.04, 0.1), rng.uniform(0.02, 0.08)
            b.box([x, y, top_z + hz], [hx, hy, hz], "object", m, R=rot_z(rng.uniform(0, math.pi)))
        else:
            r, h = rng.uniform(0.04, 0.07), rng.uniform(0.08, 0.15)
            b.cyl([x, y, top_z + h], r, h, "object", m)
            b.ell([x, y, top_z + 2 * h + 0.6 * r], [r * 1.2, r * 1.2, r], "object", m)


def add_table(b: RoomBuilder, w: float, d: float, h: float) -> dict:
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
    add_small_objects(b, h, w, d, n_obj)
    return {"top": h}


def add_chair(b: RoomBuilder) -> None:
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


def add_sofa(b: RoomBuilder, w: float) -> None:
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
              R=rot_z(rng.uniform(-0.3, 0.3)))


def add_bed(b: RoomBuilder, w: float, length: float) -> None:
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


def add_cabinet(b: RoomBuilder, w: float, d: float, h: float) -> dict:
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


def add_shelf(b: RoomBuilder, w: float, d: float, h: float) -> None:
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
            books = b.mat("stripes", hsv_color(rng.uniform(), 0.7, 0.7),
                          hsv_color(rng.uniform(), 0.5, 0.9), rng.uniform(0.03, 0.07))
            b.box([x0, 0.0, z + t + bh], [bw, d / 2 - 0.04, bh], "object", books)


def add_lamp(b: RoomBuilder, floor: bool, base_z: float = 0.0) -> float:
    """A lamp; returns the height of its shade top."""
    rng = b.rng
    metal = b.metal()
    shade = b.mat("fabric", hsv_color(rng.uniform(0.05, 0.15), 0.3, 0.95), [1.0, 0.95, 0.85], 0.05,
                  emissive=True)
    pole = rng.uniform(1.3, 1.6) if floor else rng.uniform(0.25, 0.4)
    b.cyl([0, 0, base_z + 0.015], 0.12 if floor else 0.07, 0.015, "lamp", metal)
    b.cyl([0, 0, base_z + 0.03 + pole / 2], 0.015, pole / 2, "lamp", metal)
    r = 0.2 if floor else 0.12
    hh = 0.13 if floor else 0.09
    b.cyl([0, 0, base_z + 0.03 + pole + hh * 0.6], r, hh, "lamp", shade)
    return base_z + 0.03 + pole + hh * 1.6


def add_plant(b: RoomBuilder) -> None:
    rng = b.rng
    pot = b.mat("speckle", hsv_color(rng.uniform(0.02, 0.08), 0.6, 0.6), [0.3, 0.2, 0.15], 0.1)
    leaf = b.mat("speckle", hsv_color(rng.uniform(0.25, 0.38), 0.6, 0.45),
                 hsv_color(rng.uniform(0.2, 0.33), 0.7, 0.7), rng.uniform(0.04, 0.1))
    r = rng.uniform(0.12, 0.2)
    ph = rng.uniform(0.15, 0.25)
    b.cyl([0, 0, ph], r, ph, "plant", pot)
    for i in range(int(rng.integers(2, 4))):
        rr = r * rng.uniform(1.2, 2.0)
        b.ell([rng.uniform(-r, r) * 0.5, rng.uniform(-r, r) * 0.5, 2 * ph + rr * (0.7 + 0.8 * i)],
              [rr, rr, rr * rng.uniform(0.9, 1.4)], "plant", leaf)


def add_tv(b: RoomBuilder, z: float) -> None:
    rng = b.rng
    w = rng.uniform(0.8, 1.3)
    h = w * 9 / 16
    frame = b.mat("speckle", [0.08, 0.08, 0.09], [0.2, 0.2, 0.22], 0.05)
    screen = b.mat("painting", hsv_color(rng.uniform(), 0.5, 0.4),
                   hsv_color(rng.uniform(), 0.4, 0.3), rng.uniform(0.3, 0.6), emissive=True)
    b.box([0, 0, z + 0.05], [0.12, 0.06, 0.05], "tv", frame)
    b.box([0, 0, z + 0.1 + h / 2], [w / 2, 0.025, h / 2], "tv", frame)
    b.box([0, 0.026, z + 0.1 + h / 2], [w / 2 - 0.02, 0.003, h / 2 - 0.02], "tv", screen)
