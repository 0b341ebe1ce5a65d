"""Analytic solids and a batched PyTorch ray caster against them.

A room is one :class:`PrimitiveSet`: the room shell (an axis-aligned box seen from inside,
index 0), oriented boxes, capped cylinders (local z axis) and ellipsoids. Every primitive has
a centre ``c`` and a rotation ``R`` (columns = local axes in world), so a world point ``p`` has
local coordinates ``(p - c) @ R``. Ray parameters are in units of the ray direction, so rays
from :func:`gsnerf_ros.geometry.camera_rays` give t = z-depth directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["SHELL", "BOX", "CYLINDER", "ELLIPSOID", "PrimitiveSet", "RayHits", "cast_rays",
           "signed_distance", "local_normals"]

SHELL, BOX, CYLINDER, ELLIPSOID = 0, 1, 2, 3
_INF = float("inf")


@dataclass
class PrimitiveSet:
    """Solids of a scene. ``M`` primitives; index 0 must be the room shell.

    ``kind`` [M] int64 (SHELL/BOX/CYLINDER/ELLIPSOID); ``center`` [M,3] m; ``R`` [M,3,3]
    local-to-world rotation; ``size`` [M,3] m: box/shell half extents, cylinder (radius, radius,
    half height), ellipsoid radii; ``label`` [M] class id (the shell's faces are labelled
    separately: ``shell_labels`` = (floor, ceiling, wall)); ``material`` [M] material index
    (shell: ``shell_materials`` = (floor, ceiling, wall)); ``piece`` [M] furniture piece id
    (-1 for the room).
    """

    kind: Tensor
    center: Tensor
    R: Tensor
    size: Tensor
    label: Tensor
    material: Tensor
    piece: Tensor
    shell_labels: tuple[int, int, int]
    shell_materials: tuple[int, int, int]

    def __post_init__(self) -> None:
        if int(self.kind[0]) != SHELL or int((self.kind == SHELL).sum()) != 1:
            raise ValueError("PrimitiveSet needs exactly one room shell, at index 0")

    def __len__(self) -> int:
        return int(self.kind.shape[0])

    def to(self, device: torch.device | str) -> "PrimitiveSet":
        return PrimitiveSet(*(getattr(self, f).to(device) for f in
                              ("kind", "center", "R", "size", "label", "material", "piece")),
                            self.shell_labels, self.shell_materials)

    def bounding_radius(self) -> Tensor:
        """Radius of a sphere around each primitive, [M] m."""
        return self.size.norm(dim=-1)


@dataclass
class RayHits:
    """Nearest hit per ray: ``t`` [N] (inf = miss), ``prim`` [N] int64 (-1 = miss)."""

    t: Tensor
    prim: Tensor


def _to_local(o: Tensor, d: Tensor, c: Tensor, R: Tensor) -> tuple[Tensor, Tensor]:
    """Rays [N,3] into M local frames -> [M,N,3] origins and directions."""
    ol = torch.einsum("nj,mjk->mnk", o, R) - torch.einsum("mj,mjk->mk", c, R)[:, None]
    dl = torch.einsum("nj,mjk->mnk", d, R)
    return ol, dl


def _safe_inv(x: Tensor) -> Tensor:
    tiny = 1e-12
    return 1.0 / torch.where(x.abs() < tiny, torch.full_like(x, tiny), x)


def _hit_boxes(ol: Tensor, dl: Tensor, h: Tensor, eps: float) -> Tensor:
    """Entry t of rays into boxes from outside. [M,N,3], [M,N,3], [M,3] -> [M,N]."""
    inv = _safe_inv(dl)
    t1 = (-h[:, None] - ol) * inv
    t2 = (h[:, None] - ol) * inv
    tnear = torch.minimum(t1, t2).amax(-1)
    tfar = torch.maximum(t1, t2).amin(-1)
    ok = (tnear <= tfar) & (tnear > eps)
    return torch.where(ok, tnear, torch.full_like(tnear, _INF))


def _hit_shell(ol: Tensor, dl: Tensor, h: Tensor) -> Tensor:
    """Exit t of rays from inside a box. [1,N,3] -> [1,N]."""
    inv = _safe_inv(dl)
    t1 = (-h[:, None] - ol) * inv
    t2 = (h[:, None] - ol) * inv
    return torch.maximum(t1, t2).amin(-1)


def _hit_cylinders(ol: Tensor, dl: Tensor, size: Tensor, eps: float) -> Tensor:
    """Entry t into capped cylinders (local z axis). -> [M,N]."""
    r = size[:, None, 0]
    hh = size[:, None, 2]
    ox, oy, oz = ol.unbind(-1)
    dx, dy, dz = dl.unbind(-1)
    a = dx * dx + dy * dy
    b = 2 * (ox * dx + oy * dy)
    c = ox * ox + oy * oy - r * r
    disc = b * b - 4 * a * c
    sq = disc.clamp(min=0).sqrt()
    t_side = (-b - sq) / (2 * a).clamp(min=1e-12)
    z_side = oz + t_side * dz
    ok_side = (disc >= 0) & (a > 1e-12) & (z_side.abs() <= hh) & (t_side > eps)
    best = torch.where(ok_side, t_side, torch.full_like(t_side, _INF))
    inv = _safe_inv(dz)
    for sign in (-1.0, 1.0):
        tc = (sign * hh - oz) * inv
        xc, yc = ox + tc * dx, oy + tc * dy
        okc = (xc * xc + yc * yc <= r * r) & (tc > eps) & (dz.abs() > 1e-12)
        best = torch.where(okc & (tc < best), tc, best)
    return best


def _hit_ellipsoids(ol: Tensor, dl: Tensor, radii: Tensor, eps: float) -> Tensor:
    """Entry t into ellipsoids. -> [M,N]."""
    os_ = ol / radii[:, None]
    ds = dl / radii[:, None]
    a = (ds * ds).sum(-1)
    b = 2 * (os_ * ds).sum(-1)
    c = (os_ * os_).sum(-1) - 1
    disc = b * b - 4 * a * c
    t = (-b - disc.clamp(min=0).sqrt()) / (2 * a).clamp(min=1e-12)
    ok = (disc >= 0) & (t > eps)
    return torch.where(ok, t, torch.full_like(t, _INF))


def cast_rays(prims: PrimitiveSet, origins: Tensor, dirs: Tensor, subset: Tensor | None = None,
              include_shell: bool = True, eps: float = 1e-4, chunk: int = 8192) -> RayHits:
    """Nearest intersection of each ray with the primitives.

    Shape: ``origins``, ``dirs`` (N, 3) -> :class:`RayHits` with ``t`` (N,) in units of ``dirs``.
    ``subset`` (int64 indices) restricts the solids tested (culling); the shell is always tested
    when ``include_shell`` (rays start inside the room, so every ray then hits something).
    """
    device = origins.device
    idx = torch.arange(len(prims), device=device) if subset is None else subset.to(device)
    idx = idx[prims.kind[idx] != SHELL]
    groups = [(k, idx[prims.kind[idx] == k]) for k in (BOX, CYLINDER, ELLIPSOID)]
    t_all, p_all = [], []
    for s in range(0, origins.shape[0], chunk):
        o, d = origins[s:s + chunk], dirs[s:s + chunk]
        n = o.shape[0]
        best_t = torch.full((n,), _INF, device=device, dtype=o.dtype)
        best_p = torch.full((n,), -1, device=device, dtype=torch.long)
        if include_shell:
            ol, dl = _to_local(o, d, prims.center[:1], prims.R[:1])
            best_t = _hit_shell(ol, dl, prims.size[:1])[0]
            best_p = torch.zeros(n, device=device, dtype=torch.long)
        for kind, gi in groups:
            if gi.numel() == 0:
                continue
            ol, dl = _to_local(o, d, prims.center[gi], prims.R[gi])
            if kind == BOX:
                t = _hit_boxes(ol, dl, prims.size[gi], eps)
            elif kind == CYLINDER:
                t = _hit_cylinders(ol, dl, prims.size[gi], eps)
            else:
                t = _hit_ellipsoids(ol, dl, prims.size[gi], eps)
            tm, am = t.min(0)
            better = tm < best_t
            best_t = torch.where(better, tm, best_t)
            best_p = torch.where(better, gi[am], best_p)
        t_all.append(best_t)
        p_all.append(best_p)
    return RayHits(torch.cat(t_all), torch.cat(p_all))


def local_normals(kind: Tensor, p_local: Tensor, size: Tensor) -> Tensor:
    """Outward unit normals (inward for the shell) in local frames from local hit points.

    Shape: ``kind`` (N,), ``p_local`` (N,3), ``size`` (N,3) -> (N,3).
    """
    n = torch.zeros_like(p_local)
    q = p_local / size.clamp(min=1e-9)
    # boxes and shell: dominant normalised axis
    ax = q.abs().argmax(-1, keepdim=True)
    sgn = torch.sign(torch.gather(q, -1, ax))
    sgn = torch.where(sgn == 0, torch.ones_like(sgn), sgn)
    box_n = torch.zeros_like(p_local).scatter(-1, ax, sgn)
    n = torch.where((kind == BOX)[:, None], box_n, n)
    n = torch.where((kind == SHELL)[:, None], -box_n, n)
    # cylinders: cap or side
    rho = q[:, :2].norm(dim=-1)
    cap = q[:, 2].abs() >= rho
    side = torch.cat([p_local[:, :2], torch.zeros_like(p_local[:, :1])], -1)
    side = side / side.norm(dim=-1, keepdim=True).clamp(min=1e-9)
    capn = torch.zeros_like(p_local)
    capn[:, 2] = torch.sign(p_local[:, 2])
    cyl_n = torch.where(cap[:, None], capn, side)
    n = torch.where((kind == CYLINDER)[:, None], cyl_n, n)
    ell = p_local / size.clamp(min=1e-9) ** 2
    ell = ell / ell.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    n = torch.where((kind == ELLIPSOID)[:, None], ell, n)
    return n


def signed_distance(prims: PrimitiveSet, points: Tensor, subset: Tensor | None = None) -> Tensor:
    """Signed distance (m) from points to each primitive's surface (negative inside a solid;
    for the shell, positive inside the room). Ellipsoids use the usual first-order bound, exact
    on the surface.

    Shape: ``points`` (N,3) -> (M', N) for the ``subset`` (default all M primitives).
    """
    idx = torch.arange(len(prims), device=points.device) if subset is None else subset
    c, R, size, kind = prims.center[idx], prims.R[idx], prims.size[idx], prims.kind[idx]
    pl = torch.einsum("nj,mjk->mnk", points, R) - torch.einsum("mj,mjk->mk", c, R)[:, None]
    h = size[:, None]
    q = pl.abs() - h
    box = q.clamp(min=0).norm(dim=-1) + q.amax(-1).clamp(max=0)
    shell = -q.amax(-1)
    rho = pl[..., :2].norm(dim=-1)
    dc = torch.stack([rho - h[..., 0], pl[..., 2].abs() - h[..., 2]], -1)
    cyl = dc.clamp(min=0).norm(dim=-1) + dc.amax(-1).clamp(max=0)
    k0 = (pl / h).norm(dim=-1)
    k1 = (pl / h ** 2).norm(dim=-1).clamp(min=1e-12)
    ell = k0 * (k0 - 1) / k1
    k = kind[:, None].expand_as(box)
    return torch.where(k == SHELL, shell, torch.where(k == BOX, box,
                       torch.where(k == CYLINDER, cyl, ell)))
