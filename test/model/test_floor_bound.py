"""The floor-plane bound on depth (``floor_z``): a ground robot knows its floor, and no surface
lies below it. These tests check the ray-floor depth, that the bound changes only estimates
beyond the floor, and that a render with it never puts any depth (sources, D_T, rendered) below
the floor, while one without it does on the same views (so the bound is what holds it)."""

from __future__ import annotations

import math

import pytest
import torch

from gsnerf_ros.geometry import floor_depth, look_at, unproject_depth
from gsnerf_ros.model import GSNeRF, GSNeRFConfig
from gsnerf_ros.model.encoding import check_floor_z
from gsnerf_ros.model.pyramid import level_to_full
from helpers.rooms import protocol_views

H, W = 48, 64


def test_floor_depth_of_a_camera_looking_down() -> None:
    """A camera 1.5 m up looking at a floor point 2 m ahead: the optical axis meets the floor
    at z-depth 2.5 m; rows above the horizon never meet it; a camera below the floor never
    does; a raised floor is nearer."""
    h, w = 31, 41                                         # odd: the centre pixel is on the axis
    K = torch.tensor([[20.0, 0, (w - 1) / 2], [0, 20.0, (h - 1) / 2], [0, 0, 1]])
    c2w = look_at(torch.tensor([0.0, 0.0, 1.5]), torch.tensor([2.0, 0.0, 0.0]))
    d = floor_depth(K, c2w, h, w, 0.0)
    assert d.shape == (h, w)
    assert math.isclose(float(d[h // 2, w // 2]), 2.5, rel_tol=1e-5)
    assert torch.isinf(d[0]).all()                        # the top row looks up (f = 20 px)
    assert torch.isfinite(d[-1]).all()
    pts = unproject_depth(torch.where(torch.isfinite(d), d, torch.zeros_like(d)), K, c2w)
    assert pts[..., 2][torch.isfinite(d)].abs().max() < 1e-4   # every finite ray ends on z = 0
    assert (floor_depth(K, c2w, h, w, 0.5)[-1] < d[-1]).all()
    below = c2w.clone()
    below[2, 3] = -0.2
    assert torch.isinf(floor_depth(K, below, h, w, 0.0)).all()
    batched = floor_depth(K.expand(3, 3, 3), c2w.expand(3, 4, 4), h, w, 0.0)
    assert batched.shape == (3, h, w) and torch.equal(batched[1], d)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "floor", None])
def test_floor_z_must_be_a_finite_number(bad) -> None:
    with pytest.raises(ValueError, match="floor_z"):
        check_floor_z(bad)


@pytest.fixture(scope="module")
def robot_views():
    """A procedural room's sources and target, raised so the cameras sit 0.3 m above a floor at
    z = 1.2 m: the tiny untrained model's depths go far beyond that floor. Returns the model,
    the sources' encoding, K and c2w (target last), the floor's z, and the room's images and
    ground-truth depths."""
    images, depths, K, c2w, near, far = protocol_views(H, W, frames=24, seed=3, num_sources=4,
                                                       source_stride=3, with_target=True)
    floor_z = float(c2w[:, 2, 3].min()) - 0.3
    torch.manual_seed(0)
    model = GSNeRF(GSNeRFConfig.tiny(4)).eval()
    V = images.shape[0] - 1
    with torch.no_grad():
        enc = model.encode_sources(images[:V], K[:V], c2w[:V], near, far)
    return model, enc, K, c2w, floor_z, images, depths


def test_with_floor_bounds_only_the_estimates_beyond_the_floor(robot_views) -> None:
    model, enc, K, c2w, floor_z, *_ = robot_views
    bound = floor_depth(enc.geometry_K, enc.c2w, *enc.depth.shape[-2:], floor_z)
    beyond = enc.depth > bound
    assert beyond.any() and (~beyond).any()               # the case the bound exists for
    out = enc.with_floor(floor_z)
    assert torch.equal(out.depth[~beyond], enc.depth[~beyond])
    assert torch.allclose(out.depth[beyond], bound[beyond])
    assert torch.equal(out.with_floor(floor_z).depth, out.depth)          # idempotent
    assert torch.equal(enc.view(1).with_floor(floor_z).depth, out.view(1).depth)
    for a, b in zip(out.volumes + out.depth_levels[1:], enc.volumes + enc.depth_levels[1:]):
        assert a is b                                     # only the finest depth changes
    with pytest.raises(ValueError, match="floor_z"):
        enc.with_floor(float("nan"))


def test_render_never_puts_depth_below_the_floor(robot_views) -> None:
    model, enc, K, c2w, floor_z, *_ = robot_views
    V = enc.depth.shape[0]
    bound = floor_depth(K[V], c2w[V], H, W, floor_z)
    free = model.render(enc, K[V], c2w[V], H, W, chunk=1024)
    assert (free.depth > bound * 1.001).any()             # unbounded, the model goes below it
    res = model.render(enc, K[V], c2w[V], H, W, chunk=1024, floor_z=floor_z)
    assert (res.depth <= bound).all() and (res.target_depth <= bound).all()
    above = torch.isinf(bound)                            # rays that never reach the floor
    assert above.any()
    assert torch.isfinite(res.depth).all() and torch.isfinite(res.target_depth).all()
    with pytest.raises(ValueError, match="floor_z"):
        model.render(enc, K[V], c2w[V], H, W, floor_z=float("inf"))


def test_eval_and_probe_refuse_a_non_finite_floor(tmp_path) -> None:
    from gsnerf_ros.train.cli import eval_main
    from gsnerf_ros.train.depth_probe import main as probe_main

    for run in (lambda: eval_main(["--checkpoint", "x", "--data", str(tmp_path), "--json",
                                   str(tmp_path / "o.json"), "--floor-z", "nan"]),
                lambda: probe_main(["--data", str(tmp_path), "--floor-z", "inf"])):
        with pytest.raises(SystemExit) as exc:
            run()
        assert exc.value.code == 2
    assert not (tmp_path / "o.json").exists()


def test_node_renderer_bounds_by_the_floor_when_asked(robot_views) -> None:
    """The node's renderer (``model.floor_bound`` / ``model.floor_z``) passes the floor to
    every render; the parameters are checked like every other."""
    from gsnerf_ros.runtime.engine import GSNeRFRenderer
    from gsnerf_ros.runtime.keyframes import Keyframe
    from gsnerf_ros.runtime.params import params_from_values

    model, enc, K, c2w, floor_z, *_ = robot_views
    V = enc.depth.shape[0]
    images = enc.image
    kfs = [Keyframe(id=i, stamp=float(i), frame_id="cam", image=images[i], K=K[i], c2w=c2w[i],
                    encoding=enc.view(i)) for i in range(V)]
    bound = floor_depth(K[V], c2w[V], H, W, floor_z)
    free = GSNeRFRenderer(model, 0.25, 10.0, chunk=1024)
    assert free.floor_z is None
    assert (free.render(kfs, K[V], c2w[V], H, W).depth > bound * 1.001).any()
    bounded = GSNeRFRenderer(model, 0.25, 10.0, chunk=1024, floor_z=floor_z)
    assert "floor at z" in bounded.description
    assert (bounded.render(kfs, K[V], c2w[V], H, W).depth <= bound).all()
    with pytest.raises(ValueError, match="floor_z"):
        GSNeRFRenderer(model, 0.25, 10.0, floor_z=float("nan"))
    p = params_from_values({"model.floor_bound": True, "model.floor_z": -0.5})
    assert p.model_floor_bound and p.model_floor_z == -0.5
    assert not params_from_values({}).model_floor_bound
    with pytest.raises(ValueError, match="model.floor_z"):
        params_from_values({"model.floor_z": 5000.0})


def test_evaluation_bounds_the_model_and_the_baseline_alike(robot_views) -> None:
    """``EvalOptions.floor_z`` reaches the render, and the baseline reprojects with the same
    bounded source depths (its depth is the bounded D_T)."""
    from gsnerf_ros.train import evaluate as ev

    model, enc, K, c2w, floor_z, images, depths = robot_views
    view = ev.EvalView(scene="r", target_index=0, source_indices=[0, 1, 2, 3], images=images,
                       K=K, c2w=c2w, depths=depths, labels=None, near=0.25, far=10.0)
    seen: list = []
    real_render = model.render

    def spy(enc_, *a, **kw):
        seen.append((kw.get("floor_z"), enc_.depth.clone()))
        return real_render(enc_, *a, **kw)

    seen_base: list = []
    real_base = ev.reproject_to_target

    def spy_base(images_, labels_, src_depth, *a, **kw):
        seen_base.append(src_depth.clone())
        return real_base(images_, labels_, src_depth, *a, **kw)

    model.render = spy
    ev.reproject_to_target = spy_base
    try:
        ev.evaluate(model, [view], ev.EvalOptions(lpips=False, progress=False, floor_z=floor_z))
    finally:
        model.render = real_render
        ev.reproject_to_target = real_base
    (fz, src_depth), = seen
    bound = floor_depth(enc.geometry_K, enc.c2w, *enc.depth.shape[-2:], floor_z)
    assert fz == floor_z and (src_depth <= bound).all()
    full_bound = level_to_full(bound, enc.geometry_level, H, W)     # the baseline's pixels
    assert len(seen_base) == 1 and (seen_base[0] <= full_bound).all()
    assert (level_to_full(enc.depth, enc.geometry_level, H, W) > full_bound).any()
