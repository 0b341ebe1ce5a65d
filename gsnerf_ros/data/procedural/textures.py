"""Procedural textures (solid / triplanar, evaluated in each primitive's local frame).

Most materials carry noise at several scales (texture is what multi-view matching uses); the
``plain`` and ``gradient`` families are deliberately low-texture, as painted walls and the
smooth surfaces of other renderers are. Families: plaster, wood (rings + grain), tiles, fabric
(weave), stripes, sky, speckle, painting, plain, gradient, checker, and three that the default
training setting holds out for the ``test_novel`` split: marble (veins), dots, bricks. All
functions are deterministic functions of the local point, so a surface looks the same from
every view (Lambertian, view-independent albedo).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["TEXTURES", "MaterialTable", "value_noise", "fbm", "shade_albedo"]

TEXTURES = ["plaster", "wood", "tiles", "fabric", "stripes", "sky", "speckle", "painting",
            "plain", "gradient", "checker", "marble", "dots", "bricks"]
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


def _seed_unit(seed: Tensor, k: int) -> Tensor:
    """A deterministic number in [0,1) per material seed (the k-th of a few). (N,) -> (N,)."""
    return ((seed * (2654435761 + 40503 * k)) % 1000003).float() / 1000003.0


def _tex_plain(p, n, a, b, s, seed):
    """Low texture: colour ``a`` with a faint (+-3 %) large-scale variation."""
    t = fbm(p / s[:, None] * 0.5, seed, 2)
    return a * (0.97 + 0.06 * t)[:, None]


def _tex_gradient(p, n, a, b, s, seed):
    """Smooth gradient between ``a`` and ``b`` along a per-material direction (period ~4 s)."""
    th = 2 * math.pi * _seed_unit(seed, 0)
    ph = math.pi * (_seed_unit(seed, 1) - 0.5)
    dirv = torch.stack([torch.cos(th) * torch.cos(ph), torch.sin(th) * torch.cos(ph),
                        torch.sin(ph)], -1)
    x = (p * dirv).sum(-1) / (4.0 * s) + _seed_unit(seed, 2)
    t = 0.5 + 0.5 * torch.sin(2 * math.pi * x)
    return _mix(a, b, t) * (0.99 + 0.02 * fbm(p * 2.0, seed + 3, 2))[:, None]


def _tex_checker(p, n, a, b, s, seed):
    uv = _triplanar_uv(p, n) / s[:, None]
    c = (torch.floor(uv[:, 0]) + torch.floor(uv[:, 1])).remainder(2)
    return _mix(a, b, c) * (0.92 + 0.16 * fbm(p / s[:, None] * 3.0, seed + 4, 2))[:, None]


def _tex_marble(p, n, a, b, s, seed):
    q = p / s[:, None]
    x = q[:, 0] + 0.6 * q[:, 1] + 0.3 * q[:, 2] + 4.0 * fbm(q * 1.2, seed, 4)
    vein = (1 - torch.sin(2 * math.pi * 0.5 * x).abs()) ** 6
    return _mix(a, b, vein) * (0.94 + 0.12 * fbm(q * 6.0, seed + 2, 2))[:, None]


def _tex_dots(p, n, a, b, s, seed):
    uv = _triplanar_uv(p, n) / s[:, None]
    row = torch.floor(uv[:, 1])
    uv = torch.stack([uv[:, 0] + 0.5 * row.remainder(2), uv[:, 1]], -1)
    f = uv - torch.floor(uv) - 0.5
    dot = (f.norm(dim=-1) < 0.28).float()
    return _mix(a, b, dot) * (0.95 + 0.1 * fbm(p / s[:, None] * 2.0, seed + 6, 2))[:, None]


def _tex_bricks(p, n, a, b, s, seed):
    uv = _triplanar_uv(p, n) / s[:, None] * torch.tensor([1.0, 2.0], device=p.device)
    row = torch.floor(uv[:, 1])
    u = uv[:, 0] + 0.5 * row.remainder(2)
    cell_u = torch.floor(u)
    fu, fv = u - cell_u, uv[:, 1] - row
    edge = torch.minimum(torch.minimum(fu, 1 - fu) * 0.5, torch.minimum(fv, 1 - fv))
    h = _hash(cell_u.long(), row.long(), torch.zeros_like(row.long()), seed)
    brick = _mix(a, b, 0.6 * h) * (0.85 + 0.3 * fbm(p / s[:, None] * 8.0, seed + 8, 2))[:, None]
    mortar = torch.full_like(brick, 0.75)
    return torch.where((edge < 0.05)[:, None], mortar, brick)


_FUNCS = [_tex_plaster, _tex_wood, _tex_tiles, _tex_fabric, _tex_stripes, _tex_sky,
          _tex_speckle, _tex_painting, _tex_plain, _tex_gradient, _tex_checker, _tex_marble,
          _tex_dots, _tex_bricks]


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
