"""Room lights: point lights placed by a setting's :class:`~.distribution.LightConfig` (ceiling,
high corners, wall sconces, daylight at windows), plus the lamps the furniture brought, and the
ambient level. Room coordinates: z up, floor at z = 0, room centred on x = y = 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gsnerf_ros.data.procedural.distribution import LightConfig
from gsnerf_ros.data.procedural.room_builder import hsv_color

__all__ = ["Light", "WindowSpot", "sample_lights"]


@dataclass
class Light:
    """A point light: ``position`` (3,) m, ``color`` (3,) linear RGB, ``power`` (irradiance at
    1 m; it falls as 1/(1+d^2)), ``placement`` where it was put."""

    position: np.ndarray
    color: np.ndarray
    power: float
    placement: str = "lamp"


@dataclass
class WindowSpot:
    """A window's centre (3,) m and its unit normal (2,) pointing into the room."""

    center: np.ndarray
    inward: np.ndarray


_DAYLIGHT = np.array([0.85, 0.92, 1.0])


def _warm_color(w: float) -> np.ndarray:
    """Cool white (0) to warm (1), linear RGB."""
    return np.array([1.0, 0.9 + 0.1 * (1 - w), 0.75 + 0.25 * (1 - w)])


def _position(rng: np.random.Generator, kind: str, size: tuple[float, float, float],
              windows: list[WindowSpot]) -> tuple[np.ndarray, str]:
    lx, ly, hz = size
    if kind == "window" and windows:
        w = windows[int(rng.integers(0, len(windows)))]
        p = w.center.copy()
        p[:2] += 0.35 * w.inward
        return p, kind
    if kind in ("wall", "window"):  # a window light without windows becomes a sconce
        side = int(rng.integers(0, 4))
        along = rng.uniform(-0.4, 0.4) * (lx if side % 2 == 0 else ly)
        z = rng.uniform(1.6, min(2.1, hz - 0.3))
        inset = 0.2
        xy = {0: (along, -ly / 2 + inset), 1: (lx / 2 - inset, along),
              2: (along, ly / 2 - inset), 3: (-lx / 2 + inset, along)}[side]
        return np.array([xy[0], xy[1], z]), "wall"
    if kind == "corner":
        sx, sy = rng.choice([-1.0, 1.0], size=2)
        return np.array([sx * (lx / 2 - 0.4), sy * (ly / 2 - 0.4), hz - 0.35]), kind
    return np.array([rng.uniform(-0.35, 0.35) * lx, rng.uniform(-0.35, 0.35) * ly,
                     hz - 0.25]), "ceiling"


def sample_lights(rng: np.random.Generator, cfg: LightConfig, size: tuple[float, float, float],
                  lamps: list[Light], windows: list[WindowSpot],
                  blocked: list[tuple[float, float, float, float]]) -> tuple[list[Light], np.ndarray]:
    """Room lights and the ambient colour (3,) linear RGB.

    ``lamps``: lights of lamp pieces (kept, up to ``cfg.max_lights`` in all); ``blocked``: solid
    floor-to-ceiling blocks (cx, cy, half_x, half_y) m no light may sit inside.
    """
    lx, ly, _hz = size
    n_room = int(rng.integers(cfg.count[0], cfg.count[1] + 1))
    lights = list(lamps[: max(0, cfg.max_lights - n_room)])
    scale = float(np.clip(math.sqrt(lx * ly / 20.0), 0.8, 2.0))
    warmth = rng.uniform(*cfg.warmth)
    for _ in range(n_room):
        kind = cfg.placements[int(rng.integers(0, len(cfg.placements)))]
        for _try in range(10):
            p, placed = _position(rng, kind, size, windows)
            if not any(abs(p[0] - cx) < hx + 0.1 and abs(p[1] - cy) < hy + 0.1
                       for cx, cy, hx, hy in blocked):
                break
        else:
            continue
        power = rng.uniform(*cfg.power) * scale
        color = _DAYLIGHT if placed == "window" else _warm_color(warmth)
        lights.append(Light(p, color.copy(), float(power * (1.5 if placed == "window" else 1.0)),
                            placed))
    ambient = np.array(hsv_color(rng.uniform(0.5, 0.65), rng.uniform(0.0, 0.2),
                            rng.uniform(*cfg.ambient)))
    return lights, ambient
