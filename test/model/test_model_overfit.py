"""The full tiny model overfits one small analytic scene on CPU.

Scene: a textured back wall (Z = 3 m, two classes split at X = 0) and a textured box face in
front of it (Z = 1.8 m, a third class), ray-cast analytically for 4 source views and 1 target.
Training the whole model (encoder, cost volumes, renderers) on the target's rays with RGB MSE,
semantic cross-entropy, 2D cross-entropy on the sources and source-depth SmoothL1 for 60 Adam
steps must cut the RGB loss by >= 3x and the semantic loss by >= 3x (mean of the first 5 steps
vs. the last 5).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gsnerf_ros.geometry import camera_rays, look_at, pixel_grid, world_to_pixels
from gsnerf_ros.model import GSNeRF, GSNeRFConfig

H, W, C = 24, 32, 3
UP = torch.tensor([0.0, -1.0, 0.0])


def _planes() -> list[dict]:
    return [
        {"z": 3.0, "x": (-4.0, 4.0), "y": (-4.0, 4.0), "freq": (6.0, 4.0), "phase": 0.0},
        {"z": 1.8, "x": (-0.35, 0.45), "y": (-0.3, 0.35), "freq": (13.0, 9.0), "phase": 1.3},
    ]


def render_scene(K: torch.Tensor, c2w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Ray-cast the scene. -> image [3,H,W] in [0,1], z-depth [H,W] m, labels [H,W] int64."""
    uv = pixel_grid(H, W).reshape(-1, 2)
    o, d = camera_rays(uv, K, c2w)
    best_t = torch.full((H * W,), float("inf"))
    img = torch.zeros(H * W, 3)
    lab = torch.zeros(H * W, dtype=torch.long)
    for i, p in enumerate(_planes()):
        t = (p["z"] - o[:, 2]) / d[:, 2]
        X = o + t[:, None] * d
        hit = (t > 0) & (X[:, 0] >= p["x"][0]) & (X[:, 0] <= p["x"][1]) & \
              (X[:, 1] >= p["y"][0]) & (X[:, 1] <= p["y"][1]) & (t < best_t)
        fx, fy = p["freq"]
        col = torch.stack([0.5 + 0.4 * torch.sin(fx * X[:, 0] + p["phase"]),
                           0.5 + 0.4 * torch.cos(fy * X[:, 1] - p["phase"]),
                           0.5 + 0.4 * torch.sin(fx * X[:, 0] * X[:, 1] + 2 * p["phase"])], -1)
        cls = torch.where(X[:, 0] < 0, 0, 1) if i == 0 else torch.full_like(lab, 2)
        best_t = torch.where(hit, t, best_t)
        img = torch.where(hit[:, None], col, img)
        lab = torch.where(hit, cls, lab)
    z = world_to_pixels((o + best_t[:, None] * d)[None], K[None], c2w[None])[1][0]
    return img.T.reshape(3, H, W), z.reshape(H, W), lab.reshape(H, W)


def _scene() -> tuple[torch.Tensor, ...]:
    K = torch.tensor([[26.0, 0.0, (W - 1) / 2], [0.0, 26.0, (H - 1) / 2], [0.0, 0.0, 1.0]])
    eyes = [(-0.3, -0.15, 0.0), (0.3, -0.15, 0.0), (-0.3, 0.15, 0.05), (0.3, 0.15, 0.05),
            (0.05, 0.02, 0.1)]
    c2w = torch.stack([look_at(torch.tensor(e), torch.tensor([0.0, 0.0, 2.5]), UP) for e in eyes])
    views = [render_scene(K, c) for c in c2w]
    imgs = torch.stack([v[0] for v in views])
    depths = torch.stack([v[1] for v in views])
    labels = torch.stack([v[2] for v in views])
    return K, c2w, imgs, depths, labels


def test_scene_is_what_it_claims() -> None:
    K, c2w, imgs, depths, labels = _scene()
    assert set(labels.unique().tolist()) == {0, 1, 2}
    assert torch.isfinite(depths).all() and (depths > 1.5).all() and (depths < 3.5).all()
    assert (imgs >= 0).all() and (imgs <= 1).all()


def test_tiny_model_overfits_one_scene() -> None:
    torch.manual_seed(0)
    K, c2w, imgs, depths, labels = _scene()
    src = slice(0, 4)
    tgt = 4
    model = GSNeRF(GSNeRFConfig.tiny(C)).train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    uv_all = pixel_grid(H, W).reshape(-1, 2)
    rgb_hist, sem_hist = [], []
    for step in range(60):
        enc = model.encode_sources(imgs[src], K.expand(4, 3, 3), c2w[src], 1.0, 4.0)
        idx = torch.randint(0, H * W, (192,), generator=gen)
        uv = uv_all[idx]
        out = model.render_rays(enc, K, c2w[tgt], uv, H, W, mode="depth_guided", step=step,
                                generator=gen)
        gt_rgb = imgs[tgt].reshape(3, -1).T[idx]
        gt_lab = labels[tgt].reshape(-1)[idx]
        l_rgb = F.mse_loss(out["rgb"], gt_rgb)
        l_sem = F.cross_entropy(out["semantic_logits"], gt_lab)
        l_2d = F.cross_entropy(enc.semantic_logits_2d, labels[src])
        l_depth = sum(w * F.smooth_l1_loss(d, F.interpolate(depths[src][:, None], size=d.shape[-2:],
                                                            mode="nearest")[:, 0])
                      for w, d in zip((2.0, 1.0, 0.5), enc.depth_levels))
        loss = l_rgb + 0.5 * l_sem + 0.5 * l_2d + l_depth
        opt.zero_grad()
        loss.backward()
        opt.step()
        rgb_hist.append(float(l_rgb.detach()))
        sem_hist.append(float(l_sem.detach()))
    first_rgb, last_rgb = sum(rgb_hist[:5]) / 5, sum(rgb_hist[-5:]) / 5
    first_sem, last_sem = sum(sem_hist[:5]) / 5, sum(sem_hist[-5:]) / 5
    assert last_rgb < first_rgb / 3, f"RGB loss {first_rgb:.4f} -> {last_rgb:.4f}"
    assert last_sem < first_sem / 3, f"semantic loss {first_sem:.4f} -> {last_sem:.4f}"
    # The learned source depths approach the analytic ones.
    with torch.no_grad():
        model.eval()
        enc = model.encode_sources(imgs[src], K.expand(4, 3, 3), c2w[src], 1.0, 4.0)
        err = (enc.depth - depths[src]).abs().mean()
    assert float(err) < 0.35, f"source depth error {float(err):.3f} m"
