"""Rigid poses: quaternions (ROS order x, y, z, w), look-at cameras and pose distances.

Pure torch, batched over leading dimensions ``*B``. Poses are 4x4 camera-to-world (``c2w``) in
metres with the OpenCV optical frame (x right, y down, z forward).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "quat_to_matrix",
    "matrix_to_quat",
    "make_pose",
    "look_at",
    "rotation_angle",
    "pose_distance",
    "proximity_weights",
    "lateral_baseline_share",
    "nearest_views",
    "neighbour_lateral_shares",
]


def quat_to_matrix(q: Tensor) -> Tensor:
    """Unit quaternion ``(x, y, z, w)`` to a rotation matrix.

    Shape: (*B, 4) -> (*B, 3, 3). The quaternion is normalised first; a zero quaternion raises.
    """
    norm = q.norm(dim=-1, keepdim=True)
    if bool((norm <= 1e-12).any()):
        raise ValueError("quaternion has zero norm")
    x, y, z, w = (q / norm).unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
    ], dim=-1).reshape(*q.shape[:-1], 3, 3)


def matrix_to_quat(R: Tensor) -> Tensor:
    """Rotation matrix to unit quaternion ``(x, y, z, w)`` with ``w >= 0``.

    Shape: (*B, 3, 3) -> (*B, 4). Numerically stable branch selection (Shepperd's method).
    """
    m = R.reshape(-1, 3, 3)
    out = torch.empty(m.shape[0], 4, dtype=R.dtype, device=R.device)
    tr = m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2]
    diag = torch.stack([m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]], dim=-1)
    for i in range(m.shape[0]):
        mi = m[i]
        if tr[i] > 0:
            s = torch.sqrt(tr[i] + 1.0) * 2
            w, x = 0.25 * s, (mi[2, 1] - mi[1, 2]) / s
            y, z = (mi[0, 2] - mi[2, 0]) / s, (mi[1, 0] - mi[0, 1]) / s
        else:
            k = int(torch.argmax(diag[i]))
            if k == 0:
                s = torch.sqrt(1.0 + mi[0, 0] - mi[1, 1] - mi[2, 2]) * 2
                w, x = (mi[2, 1] - mi[1, 2]) / s, 0.25 * s
                y, z = (mi[0, 1] + mi[1, 0]) / s, (mi[0, 2] + mi[2, 0]) / s
            elif k == 1:
                s = torch.sqrt(1.0 + mi[1, 1] - mi[0, 0] - mi[2, 2]) * 2
                w, x = (mi[0, 2] - mi[2, 0]) / s, (mi[0, 1] + mi[1, 0]) / s
                y, z = 0.25 * s, (mi[1, 2] + mi[2, 1]) / s
            else:
                s = torch.sqrt(1.0 + mi[2, 2] - mi[0, 0] - mi[1, 1]) * 2
                w, x = (mi[1, 0] - mi[0, 1]) / s, (mi[0, 2] + mi[2, 0]) / s
                y, z = (mi[1, 2] + mi[2, 1]) / s, 0.25 * s
        q = torch.stack([x, y, z, w])
        out[i] = q * (1.0 if q[3] >= 0 else -1.0)
    return out.reshape(*R.shape[:-2], 4)


def make_pose(R: Tensor, t: Tensor) -> Tensor:
    """Assemble 4x4 transforms. Shape: ``R`` (*B, 3, 3), ``t`` (*B, 3) -> (*B, 4, 4)."""
    T = torch.zeros(*R.shape[:-2], 4, 4, dtype=R.dtype, device=R.device)
    T[..., :3, :3] = R
    T[..., :3, 3] = t
    T[..., 3, 3] = 1.0
    return T


def look_at(eye: Tensor, target: Tensor, up: Tensor | None = None) -> Tensor:
    """Camera-to-world pose of an optical-frame camera at ``eye`` looking at ``target``.

    Shape: ``eye``, ``target`` (*B, 3) m; ``up`` (3,) world up (default +z) -> (*B, 4, 4).
    The camera's y axis (image down) points as close to ``-up`` as possible.
    """
    if up is None:
        up = eye.new_tensor([0.0, 0.0, 1.0])
    z = target - eye
    z = z / z.norm(dim=-1, keepdim=True).clamp(min=1e-9)
    x = torch.cross(z, up.expand_as(z), dim=-1)  # right = forward x up
    bad = x.norm(dim=-1, keepdim=True) < 1e-6
    alt = eye.new_tensor([1.0, 0.0, 0.0]).expand_as(z)
    x = torch.where(bad, torch.cross(z, alt, dim=-1), x)
    x = x / x.norm(dim=-1, keepdim=True)
    y = torch.cross(z, x, dim=-1)
    R = torch.stack([x, y, z], dim=-1)
    return make_pose(R, eye)


def rotation_angle(R_a: Tensor, R_b: Tensor) -> Tensor:
    """Geodesic angle between rotations in radians. Shape: (*B, 3, 3), (*B, 3, 3) -> (*B,)."""
    R = R_a.transpose(-1, -2) @ R_b
    cos = ((R[..., 0, 0] + R[..., 1, 1] + R[..., 2, 2]) - 1.0) / 2.0
    return torch.arccos(cos.clamp(-1.0, 1.0))


def pose_distance(c2w_a: Tensor, c2w_b: Tensor, angle_weight: float = 1.0 / math.pi) -> Tensor:
    """Camera-centre distance (m) plus ``angle_weight`` times the viewing-direction angle (rad).

    Shape: (*B, 4, 4), (*B, 4, 4) -> (*B,). The viewing direction is the optical (+z) axis.
    """
    dist = (c2w_a[..., :3, 3] - c2w_b[..., :3, 3]).norm(dim=-1)
    za, zb = c2w_a[..., :3, 2], c2w_b[..., :3, 2]
    cos = (za * zb).sum(-1) / (za.norm(dim=-1) * zb.norm(dim=-1)).clamp(min=1e-9)
    return dist + angle_weight * torch.arccos(cos.clamp(-1.0, 1.0))


def proximity_weights(c2w: Tensor, c2w_target: Tensor, offset: float = 0.05) -> Tensor:
    """Weights of views ``c2w`` [V, 4, 4] for a target at ``c2w_target`` [4, 4]:
    1 / (:func:`pose_distance` + ``offset`` m), so the view posed most like the target weighs
    most (the reprojection baseline's weights, and the semantic vote's with
    ``semantic.vote_weights: proximity``). [V]."""
    return 1.0 / (pose_distance(c2w, c2w_target.to(c2w).expand_as(c2w)) + offset)


def lateral_baseline_share(c2w_a: Tensor, c2w_b: Tensor) -> Tensor:
    """How much of the baseline from camera a to camera b is sideways to a's optical axis.

    ``|b_perp| / (|b_perp| + |b . z_a|)`` with ``b`` the centre difference (m) and ``z_a`` a's
    unit +z axis: 0 for motion along the axis (a forward-driving robot: no parallax near the
    focus of expansion, so matching cannot place those pixels), 1 for purely sideways motion,
    0.5 at 45 degrees. Shape: (*B, 4, 4), (*B, 4, 4) -> (*B,); NaN where the centres coincide.
    """
    b = c2w_b[..., :3, 3] - c2w_a[..., :3, 3]
    z = c2w_a[..., :3, 2]
    z = z / z.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    axial = (b * z).sum(-1, keepdim=True)
    lateral = (b - axial * z).norm(dim=-1)
    total = lateral + axial.squeeze(-1).abs()
    return torch.where(total > 1e-12, lateral / total.clamp(min=1e-12),
                       torch.full_like(total, float("nan")))


def nearest_views(target_c2w: Tensor, pool_c2w: Tensor, k: int,
                  exclude: Tensor | list[int] | None = None,
                  angle_weight: float = 1.0 / math.pi) -> Tensor:
    """Indices of the ``k`` pool poses closest to ``target_c2w`` by :func:`pose_distance`.

    Shape: ``target_c2w`` (4, 4), ``pool_c2w`` (N, 4, 4) -> (min(k, N - excluded),) int64,
    nearest first; ties broken by index, so the result is deterministic. ``exclude`` lists pool
    indices that may not be chosen (e.g. the target itself).
    """
    d = pose_distance(target_c2w.expand_as(pool_c2w), pool_c2w, angle_weight)
    if exclude is not None:
        ex = torch.as_tensor(exclude, dtype=torch.long, device=d.device)
        d = d.clone()
        d[ex] = float("inf")
        n_ok = int(torch.isfinite(d).sum())
    else:
        n_ok = d.shape[0]
    order = torch.argsort(d, stable=True)
    return order[: min(k, n_ok)]


def neighbour_lateral_shares(c2w: Tensor, num_neighbors: int) -> Tensor:
    """:func:`lateral_baseline_share` of every (view, neighbour) pair of a set of views, each
    paired with its ``num_neighbors`` nearest others by :func:`nearest_views` (the rule of
    ``GSNeRF.encode_sources``). ``c2w`` [V, 4, 4] -> [P], P <= V * min(num_neighbors, V - 1):
    pairs whose centres coincide have no baseline and are left out; empty for one view. The
    median is a set's sideways-ness: low for a camera driving forward."""
    V = c2w.shape[0]
    if V < 2 or num_neighbors < 1:
        return c2w.new_zeros(0)
    out = []
    for i in range(V):
        nb = nearest_views(c2w[i], c2w, num_neighbors, exclude=[i])
        out.append(lateral_baseline_share(c2w[i].expand(len(nb), 4, 4), c2w[nb]))
    shares = torch.cat(out)
    return shares[torch.isfinite(shares)]
