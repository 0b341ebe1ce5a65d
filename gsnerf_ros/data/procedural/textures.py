"""Procedural textures (solid / triplanar, evaluated in each primitive's local frame).

Texture detail is what lets a multi-view network match pixels, so every material carries
noise at several scales. All functions are deterministic functions of the local point, so
a surface looks the same from every view (Lambertian, view-independent albedo).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["TEXTURES", "MaterialTable", "value_noise", "fbm", "shade_albedo"]

TEXTURES = ["plaster", "wood", "tiles", "fabric", "stripes", "sky", "speckle", "painting"]
"""Texture type names; a material's ``tex`` is an index into this list."""


@dataclass
class MaterialTable:
    """Materials of a scene, K entries.

    ``tex`` [K] int64 index into :data:`TEXTURES`; ``color_a``, ``color_b`` [K,3] sRGB in [0,1];
    ``scale`` [K] pattern size in m; ``seed`` [K] int64 noise seed; ``emissive`` [K] bool (not lit,
    e.g. the sky seen through windows, lamp shades).
    """

    tex: Tensor
    color_a: Tensor
    color_b: Tensor
    scale: Tensor
    seed: Tensor
    emissive: Tensor

    def to(self, device: torch.device | str) -> "MaterialTable":
        return MaterialTable(*(getattr(self, f).to(device) for f in
                               ("tex", "color_a", "color_b", "scale", "seed", "emissive")))


_TABLE_BITS = 6
_TABLE: dict[torch.device, Tensor] = {}


def _table(device: torch.device) -> Tensor:
    """Random lattice values, a fixed 64^3 table (period 64 noise cells), per device."""
    if device not in _TABLE:
        g = torch.Generator().manual_seed(1234567)
        _TABLE[device] = torch.rand(1 << (3 * _TABLE_BITS), generator=g).to(device)
    return _TABLE[device]


def _hash(ix: Tensor, iy: Tensor, iz: Tensor, seed: Tensor) -> Tensor:
    """Lattice value in [0,1) for integer coordinates and a per-point seed (all int64)."""
    m = (1 << _TABLE_BITS) - 1
    sx, sy, sz = seed * 13, seed * 29, seed * 7
    idx = ((((ix + sx) & m) << (2 * _TABLE_BITS)) | (((iy + sy) & m) << _TABLE_BITS)
           | ((iz + sz) & m))
    return _table(ix.device)[idx]


def value_noise(p: Tensor, seed: Tensor | int = 0) -> Tensor:
    """Smooth value noise in [0,1]. Shape: ``p`` (N,3), ``seed`` (N,) or int -> (N,)."""
    if not isinstance(seed, Tensor):
        seed = torch.full(p.shape[:1], int(seed), dtype=torch.long, device=p.device)
    fl = torch.floor(p)
    f = p - fl
    i = fl.long()
    w = f * f * (3 - 2 * f)
    m = (1 << _TABLE_BITS) - 1
    b = _TABLE_BITS
    x0 = (i[:, 0] + seed * 13) & m
    y0 = (i[:, 1] + seed * 29) & m
    z0 = (i[:, 2] + seed * 7) & m
    xs = (x0 << (2 * b), ((x0 + 1) & m) << (2 * b))
    ys = (y0 << b, ((y0 + 1) & m) << b)
    zs = (z0, (z0 + 1) & m)
    table = _table(p.device)
    wx, wy, wz = w.unbind(-1)
    out = torch.zeros(p.shape[0], device=p.device)
    for dx in (0, 1):
        ax = wx if dx else 1 - wx
        for dy in (0, 1):
            axy = ax * (wy if dy else 1 - wy)
            xy = xs[dx] | ys[dy]
            out = out + axy * ((1 - wz) * table[xy | zs[0]] + wz * table[xy | zs[1]])
    return out


def fbm(p: Tensor, seed: Tensor | int = 0, octaves: int = 3) -> Tensor:
    """Fractal sum of :func:`value_noise`, normalised to about [0,1]. (N,3) -> (N,)."""
    total = torch.zeros(p.shape[0], device=p.device)
    amp, norm = 1.0, 0.0
    for o in range(octaves):
        s = seed + 101 * o if isinstance(seed, int) else seed + 101 * o
        total = total + amp * value_noise(p * (2.0 ** o) + 17.3 * o, s)
        norm += amp
        amp *= 0.5
    return total / norm


def _triplanar_uv(p: Tensor, n: Tensor) -> Tensor:
    """Pick the two local coordinates across the dominant normal axis. (N,3),(N,3) -> (N,2)."""
    ax = n.abs().argmax(-1)
    u = torch.where(ax == 0, p[:, 1], p[:, 0])
    v = torch.where(ax == 2, p[:, 1], p[:, 2])
    return torch.stack([u, v], -1)


def _mix(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    return a + (b - a) * t[:, None]


def _tex_plaster(p, n, a, b, s, seed):
    q = p / s[:, None]
    t = fbm(q * 3.0, seed, 4)
    g = value_noise(q * 40.0, seed + 7)
    return _mix(a, b, (t - 0.2).clamp(0, 1) * 1.4) * (0.9 + 0.2 * g[:, None])


def _tex_wood(p, n, a, b, s, seed):
    q = p / s[:, None]
    warp = fbm(q * torch.tensor([0.3, 2.0, 2.0], device=p.device), seed, 3)
    r = torch.sqrt(q[:, 1] ** 2 + (q[:, 2] + 3.1) ** 2) * 6.0 + 4.0 * warp
    ring = 0.5 + 0.5 * torch.sin(2 * math.pi * r)
    grain = value_noise(q * torch.tensor([2.0, 60.0, 60.0], device=p.device), seed + 3)
    return _mix(a, b, ring ** 2) * (0.8 + 0.35 * grain[:, None])


def _tex_tiles(p, n, a, b, s, seed):
    uv = _triplanar_uv(p, n) / s[:, None]
    cell = torch.floor(uv)
    f = uv - cell
    edge = torch.minimum(torch.minimum(f[:, 0], 1 - f[:, 0]), torch.minimum(f[:, 1], 1 - f[:, 1]))
    ci = cell.long()
    h = _hash(ci[:, 0], ci[:, 1], torch.zeros_like(ci[:, 0]), seed)
    tile = _mix(a, b, h) * (0.85 + 0.3 * fbm(p / s[:, None] * 6.0, seed + 5, 2))[:, None]
    grout = a * 0.35 + 0.25
    return torch.where((edge < 0.04)[:, None], grout, tile)


def _tex_fabric(p, n, a, b, s, seed):
    uv = _triplanar_uv(p, n) / s[:, None]
    weave = 0.5 + 0.5 * torch.sin(2 * math.pi * uv[:, 0] * 8) * torch.sin(2 * math.pi * uv[:, 1] * 8)
    mott = fbm(p / s[:, None] * 2.0, seed, 3)
    return _mix(a, b, 0.35 * weave + 0.65 * mott)


def _tex_stripes(p, n, a, b, s, seed):
    uv = _triplanar_uv(p, n) / s[:, None]
    ph = uv[:, 0] + 0.15 * fbm(p * 2.0, seed, 2)
    st = ((torch.sin(2 * math.pi * ph) > 0.0).float() * 0.8
          + 0.2 * (torch.sin(6 * math.pi * ph) > 0.3).float())
    return _mix(a, b, st) * (0.88 + 0.24 * fbm(p / s[:, None] * 4.0, seed + 9, 3))[:, None]


def _tex_sky(p, n, a, b, s, seed):
    q = p / s[:, None]
    cloud = (fbm(q * 1.5, seed, 4) - 0.45).clamp(0, 1) * 2.0
    grad = (0.5 + 0.5 * torch.tanh(p[:, 2] * 2.0))[:, None]
    sky = a * (0.8 + 0.3 * grad)
    return _mix(sky, b, cloud.clamp(0, 1))


def _tex_speckle(p, n, a, b, s, seed):
    q = p / s[:, None]
    sp = (value_noise(q * 25.0, seed) > 0.72).float()
    base = a * (0.85 + 0.3 * fbm(q * 3.0, seed + 1, 3))[:, None]
    return _mix(base, b, sp * 0.8)


def _tex_painting(p, n, a, b, s, seed):
    q = p / s[:, None] * 3.0
    rgb = torch.stack([fbm(q + 1.7, seed, 3), fbm(q + 5.3, seed + 1, 3),
                       fbm(q + 9.1, seed + 2, 3)], -1)
    rgb = ((rgb - 0.5) * 2.2 + 0.5).clamp(0, 1)
    return 0.5 * rgb + 0.25 * a + 0.25 * b


_FUNCS = [_tex_plaster, _tex_wood, _tex_tiles, _tex_fabric, _tex_stripes, _tex_sky,
          _tex_speckle, _tex_painting]


def shade_albedo(mats: MaterialTable, mat_idx: Tensor, p_local: Tensor, n_local: Tensor) -> Tensor:
    """Albedo (sRGB, [0,1]) of surface points. Shape: ``mat_idx`` (N,), ``p_local``, ``n_local``
    (N,3) -> (N,3)."""
    out = torch.zeros(mat_idx.shape[0], 3, device=p_local.device)
    tex = mats.tex[mat_idx]
    for k, fn in enumerate(_FUNCS):
        m = tex == k
        if not bool(m.any()):
            continue
        mi = mat_idx[m]
        out[m] = fn(p_local[m], n_local[m], mats.color_a[mi], mats.color_b[mi],
                    mats.scale[mi], mats.seed[mi])
    return out.clamp(0, 1)
