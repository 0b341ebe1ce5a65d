"""The collector a procedural room is built with: :class:`RoomBuilder` gathers primitives and
materials into a ``PrimitiveSet`` / ``MaterialTable``; also the semantic class ids primitives are
labelled with (``CLASS_ID``) and the rotation / colour helpers (:func:`rot_z`, :func:`hsv_color`)
shared by the furniture builders, the lights and the room sampler.
"""

from __future__ import annotations

import colorsys
import math

import numpy as np
import torch

from gsnerf_ros.data.classes import PROCEDURAL_CLASSES
from gsnerf_ros.data.procedural.distribution import MaterialConfig
from gsnerf_ros.data.procedural.primitives import BOX, CYLINDER, ELLIPSOID, PrimitiveSet
from gsnerf_ros.data.procedural.textures import TEXTURES, MaterialTable

__all__ = ["CLASS_ID", "RoomBuilder", "rot_z", "hsv_color"]

CLASS_ID = {n: i for i, n in enumerate(PROCEDURAL_CLASSES)}
_TEX = {n: i for i, n in enumerate(TEXTURES)}


def rot_z(yaw: float) -> np.ndarray:
    """Rotation about the world z axis (up) by ``yaw`` radians. Shape: (3, 3)."""
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def hsv_color(h: float, s: float, v: float) -> list[float]:
    """An RGB colour in [0, 1] from hue (wrapped), saturation and value (clamped to [0, 1])."""
    return list(colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0)))


_SCALE = {  # pattern size range (m) per texture family
    "plaster": (0.15, 0.6), "speckle": (0.1, 0.5), "stripes": (0.1, 0.5), "tiles": (0.2, 0.6),
    "checker": (0.15, 0.6), "fabric": (0.08, 0.3), "plain": (0.5, 2.0), "gradient": (0.4, 1.5),
    "marble": (0.3, 1.0), "dots": (0.08, 0.3), "bricks": (0.2, 0.35), "painting": (0.15, 0.5),
}


class RoomBuilder:
    """Collects primitives and materials; ``materials`` (a ``MaterialConfig``) names the texture
    families each kind of surface draws from (``None``: the defaults)."""

    def __init__(self, rng: np.random.Generator, materials: MaterialConfig | None = None) -> None:
        self.materials = materials or MaterialConfig()
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
        a = hsv_color(h, self.rng.uniform(0.45, 0.75), v * 0.6)
        b = hsv_color(h + 0.01, self.rng.uniform(0.35, 0.6), v)
        return self.mat("wood", a, b, self.rng.uniform(0.3, 0.8))

    def surface(self, role: str, sat: tuple[float, float] = (0.05, 0.5),
                val: tuple[float, float] = (0.45, 0.95)) -> int:
        """A material for a surface of kind ``role`` (a ``MaterialConfig`` field): its texture
        family drawn from that list, colours around one hue with saturation / value in the given
        ranges (``b`` darker and less saturated than ``a``)."""
        names = getattr(self.materials, role)
        tex = names[int(self.rng.integers(0, len(names)))]
        if tex == "wood":
            return self.wood()
        h = self.rng.uniform()
        a = hsv_color(h, self.rng.uniform(*sat), self.rng.uniform(*val))
        b = hsv_color(h + self.rng.uniform(-0.1, 0.1), self.rng.uniform(sat[0], sat[1] * 0.8),
                 self.rng.uniform(val[0] * 0.7, val[1] * 0.9))
        return self.mat(tex, a, b, self.rng.uniform(*_SCALE[tex]))

    def fabric(self, sat: float = 0.5) -> int:
        """Upholstery (sofas, beds, seats, rugs); ``sat``: upper saturation."""
        return self.surface("upholstery", (0.1, sat + 0.2), (0.35, 0.95))

    def painted(self) -> int:
        return self.surface("furniture")

    def metal(self) -> int:
        v = self.rng.uniform(0.2, 0.8)
        return self.mat("speckle", [v, v, v * 1.02], [v * 0.7] * 3, self.rng.uniform(0.05, 0.2))

    # primitives --------------------------------------------------------------------------
    def begin_piece(self, pos: np.ndarray, yaw: float) -> None:
        self.piece_id += 1
        self.frame = (np.asarray(pos, dtype=np.float64), rot_z(yaw))

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
