"""A small analytic scene for timing: a textured box room seen by a ring of keyframes.

Rendering cost of GSNeRF depends on the image size, the number of source views, the samples per
ray and (a little) on geometry (target-depth holes, occlusion); the image content only matters for
accuracy, which the benchmark measures separately on held-out procedural rooms. This scene is
self-contained (ray-box intersection, world-space texture), deterministic for a seed, and
produces real overlapping views with exact depth, so the target-depth and occlusion code paths do
real work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from gsnerf_ros.geometry import camera_rays, look_at, pixel_grid

__all__ = ["BenchScene", "make_bench_scene", "intrinsics_for"]

ROOM_HALF = (2.5, 2.0, 1.4)
"""Half extents (m) of the box room, x, y, z (z up); the cameras sit near its centre."""


@dataclass
class BenchScene:
    """V source keyframes and one target camera of the same size.

    ``images`` [V, 3, H, W] in [0, 1]; ``depths`` [V, H, W] m (exact); ``K`` [V, 3, 3];
    ``c2w`` [V, 4, 4]; ``target_K`` [3, 3]; ``target_c2w`` [4, 4]; ``target_image``
    [3, H, W]; ``pool_c2w`` [P, 4, 4] poses of a larger keyframe buffer (view-selection timing);
    ``near``/``far`` m.
    """

    images: Tensor
    depths: Tensor
    K: Tensor
    c2w: Tensor
    target_K: Tensor
    target_c2w: Tensor
    target_image: Tensor
    pool_c2w: Tensor
    near: float
    far: float

    @property
    def height(self) -> int:
        return int(self.images.shape[-2])

    @property
    def width(self) -> int:
        return int(self.images.shape[-1])

    def __len__(self) -> int:
        return int(self.images.shape[0])


def intrinsics_for(height: int, width: int, hfov_deg: float = 70.0,
                   device: torch.device | str = "cpu") -> Tensor:
    """Pinhole K [3, 3] for an image of ``height`` x ``width`` px and horizontal FoV (degrees)."""
    f = 0.5 * width / math.tan(math.radians(hfov_deg) / 2)
    return torch.tensor([[f, 0.0, (width - 1) / 2], [0.0, f, (height - 1) / 2], [0.0, 0.0, 1.0]],
                        dtype=torch.float32, device=device)


def _box_hit(origins: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor]:
    """Exit distance from inside the room box. [N, 3] x2 -> t [N] (ray parameter), face [N]."""
    half = torch.tensor(ROOM_HALF, dtype=origins.dtype, device=origins.device)
    safe = torch.where(dirs.abs() < 1e-9, torch.full_like(dirs, 1e-9), dirs)
    t_axis = (torch.sign(safe) * half - origins) / safe                    # [N, 3], > 0 inside
    t, axis = t_axis.min(-1)
    face = axis * 2 + (torch.gather(safe, 1, axis[:, None])[:, 0] > 0).long()
    return t, face


def _texture(p: Tensor, face: Tensor, seed: int) -> Tensor:
    """Deterministic multi-scale world-space texture. [N, 3] m, [N] face -> RGB [N, 3]."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(6, 3, generator=g).to(p.device) * 0.6 + 0.2
    freq = (torch.rand(3, 3, generator=g) * 6 + 2).to(p.device)
    phase = (torch.rand(3, 3, generator=g) * 6.28).to(p.device)
    waves = torch.sin(p @ freq.T + phase[0]) * 0.12 + torch.sin(p @ (2.7 * freq).T + phase[1]) * 0.06
    cells = torch.floor(p * 2.0).sum(-1, keepdim=True).remainder(2.0) * 0.15
    return (base[face] + waves + cells - 0.07).clamp(0.0, 1.0)


def _render(K: Tensor, c2w: Tensor, height: int, width: int, seed: int) -> tuple[Tensor, Tensor]:
    uv = pixel_grid(height, width, K.device).reshape(-1, 2)
    o, d = camera_rays(uv, K, c2w)
    t, face = _box_hit(o, d)                        # t is the z-depth (camera_rays convention)
    rgb = _texture(o + t[:, None] * d, face, seed)
    return rgb.T.reshape(3, height, width).contiguous(), t.reshape(height, width)


def _ring_pose(angle: float, radius: float, height_m: float, device: torch.device) -> Tensor:
    eye = torch.tensor([radius * math.cos(angle), radius * math.sin(angle), height_m],
                       device=device)
    look = torch.tensor([math.cos(angle) * 3.0, math.sin(angle) * 3.0, height_m - 0.3],
                        device=device)
    return look_at(eye, look)


def make_bench_scene(height: int, width: int, views: int, device: torch.device | str = "cpu",
                     seed: int = 0, pool: int = 32) -> BenchScene:
    """``views`` keyframes on an arc (about 8 degrees apart, all facing outwards and overlapping),
    the target camera in the middle of the arc, and ``pool`` buffer poses on a full ring."""
    if height < 8 or width < 8 or views < 1:
        raise ValueError(f"bench scene needs height, width >= 8 and views >= 1, got "
                         f"{height}x{width}, {views} views")
    dev = torch.device(device)
    K = intrinsics_for(height, width, device=dev)
    step = math.radians(8.0)
    angles = [(i - (views - 1) / 2) * step for i in range(views)]
    radii = [0.5 + 0.15 * ((i * 7) % 3) for i in range(views)]
    c2w = torch.stack([_ring_pose(a, r, 0.1 * ((i % 2) - 0.5), dev)
                       for i, (a, r) in enumerate(zip(angles, radii))])
    imgs, deps = zip(*[_render(K, c2w[i], height, width, seed) for i in range(views)])
    t_c2w = _ring_pose(step * 0.37, 0.45, 0.02, dev)
    t_img, _ = _render(K, t_c2w, height, width, seed)
    pool_c2w = torch.stack([_ring_pose(2 * math.pi * i / pool, 0.6, 0.0, dev) for i in range(pool)])
    return BenchScene(images=torch.stack(imgs), depths=torch.stack(deps),
                      K=K.expand(views, 3, 3).clone(), c2w=c2w, target_K=K, target_c2w=t_c2w,
                      target_image=t_img, pool_c2w=pool_c2w, near=0.1, far=6.0)
