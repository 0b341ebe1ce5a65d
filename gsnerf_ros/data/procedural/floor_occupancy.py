"""Floor occupancy grid (:class:`FloorOccupancy`, 5 cm cells) the room sampler uses to place
furniture, doors and windows without overlapping footprints.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["FloorOccupancy"]


class FloorOccupancy:
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

    def inside(self, pos, yaw, w, d) -> bool:
        """Whether the w x d footprint at ``pos`` turned by ``yaw`` lies within the room."""
        c, s = math.cos(yaw), math.sin(yaw)
        corners = np.array([[sx * w / 2, sy * d / 2] for sx in (-1, 1) for sy in (-1, 1)])
        xy = corners @ np.array([[c, s], [-s, c]]) + np.asarray(pos)[:2]
        return bool((np.abs(xy[:, 0]) <= -self.ox + 1e-6).all()
                    and (np.abs(xy[:, 1]) <= -self.oy + 1e-6).all())

    def free(self, pos, yaw, w, d, margin=0.05, inside: bool = True) -> bool:
        """No overlap with marked cells; with ``inside`` also wholly within the room."""
        if inside and not self.inside(pos, yaw, w, d):
            return False
        m = self.mask(pos, yaw, w, d, margin)
        return bool(m.any()) and not bool((m & self.occ).any())

    def mark(self, pos, yaw, w, d) -> None:
        self.occ |= self.mask(pos, yaw, w, d)
