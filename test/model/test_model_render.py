"""Model rendering: masks, compositing, chunking, gradients, encodings, checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gsnerf_ros.geometry import camera_rays, look_at, nearest_views
from gsnerf_ros.model import GSNeRF, GSNeRFConfig, RenderResult, SourceEncoding, ViewEncoding
from gsnerf_ros.model.features import occlusion_mask, project_to_views
from gsnerf_ros.model.volume_renderer import composite
from gsnerf_ros.model.config import RendererConfig
from helpers.tolerance import assert_close_reordered

V, H, W, C = 4, 24, 32, 4
UP = torch.tensor([0.0, -1.0, 0.0])


def _cams(n: int = V) -> tuple[torch.Tensor, torch.Tensor]:
    xs = torch.linspace(-0.3, 0.3, n)
    c2w = torch.stack([look_at(torch.tensor([float(x), 0.05 * i, 0.0]), torch.tensor([0.0, 0.0, 2.5]), UP)
                       for i, x in enumerate(xs)])
    K = torch.tensor([[28.0, 0.0, (W - 1) / 2], [0.0, 28.0, (H - 1) / 2], [0.0, 0.0, 1.0]])
    return K.expand(n, 3, 3).clone(), c2w


@pytest.fixture(scope="module")
def setup() -> tuple[GSNeRF, SourceEncoding, torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = GSNeRF(GSNeRFConfig.tiny(C)).eval()
    K, c2w = _cams()
    images = torch.rand(V, 3, H, W)
    with torch.no_grad():
        enc = model.encode_sources(images, K, c2w, 0.5, 5.0)
    tgt = look_at(torch.tensor([0.05, 0.02, 0.1]), torch.tensor([0.0, 0.0, 2.5]), UP)
    return model, enc, images, K, c2w, tgt  # type: ignore[return-value]


def test_encoding_shapes_and_subset(setup) -> None:  # type: ignore[no-untyped-def]
    model, enc, images, K, c2w, _ = setup
    assert len(enc) == V and enc.image.shape == (V, 3, H, W)
    assert enc.semantic_logits_2d.shape == (V, C, H, W)
    sizes = [(H, W), (H // 2, W // 2), (H // 4, W // 4)]
    assert [tuple(d.shape[1:]) for d in enc.depth_levels] == sizes
    D = model.config.cost_volume.num_planes
    assert [v.shape[2] for v in enc.volumes] == [D[2], D[1], D[0]]
    assert ((enc.depth >= 0.5 - 1e-4) & (enc.depth <= 5.0 + 1e-4)).all()
    sub = enc.subset([2, 0])
    assert len(sub) == 2 and torch.equal(sub.image[0], enc.image[2])
    again = SourceEncoding.stack([enc.view(2), enc.view(0)])
    for a, b in zip(again.volumes, sub.volumes):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="out of range"):
        enc.subset([7])


def test_encode_view_matches_encode_sources(setup) -> None:  # type: ignore[no-untyped-def]
    """A keyframe encoded alone against the same neighbours equals its part of encode_sources."""
    model, enc, images, K, c2w, _ = setup
    from gsnerf_ros.geometry import nearest_views
    i = 1
    nb = nearest_views(c2w[i], c2w, model.config.cost_volume.num_neighbors, exclude=[i])
    with torch.no_grad():
        ve = model.encode_view(images[i], K[i], c2w[i], images[nb], K[nb], c2w[nb], 0.5, 5.0)
    assert isinstance(ve, ViewEncoding)
    ref = enc.view(i)
    # One view against a batch of V: the encoder's and cost volume's convolutions (3x3 over
    # <= 64 channels, 3x3x3 over <= 16) sum in another order.
    assert_close_reordered(ve.depth, ref.depth, fan_in=1024)
    assert_close_reordered(ve.volumes[0], ref.volumes[0], fan_in=1024)
    # A keyframe with no neighbours yet still encodes.
    with torch.no_grad():
        lone = model.encode_view(images[0], K[0], c2w[0], images[:0], K[:0], c2w[:0], 0.5, 5.0)
    assert torch.isfinite(lone.depth).all()


def test_neighbour_rule_nearest_is_the_default_and_bit_identical(setup) -> None:  # type: ignore[no-untyped-def]
    """``nearest`` (the default) encodes exactly as before the rule existed: each view against
    its ``nearest_views``; ``triangulation`` picks other neighbours on a forward-driving line
    and refuses an unknown rule."""
    from gsnerf_ros.model.config import CostVolumeConfig
    from gsnerf_ros.model.inference import InferenceConfig, apply_inference
    from gsnerf_ros.model.geo_reasoner import (encode_views, geometry_inputs, per_view_range,
                                               source_neighbours)

    model, enc, images, K, c2w, _ = setup
    assert CostVolumeConfig().neighbour_rule == "nearest"
    assert model.config.cost_volume.neighbour_rule == "nearest"
    M = model.config.cost_volume.num_neighbors
    with torch.no_grad():
        geo_images, geo_K = geometry_inputs(images, K, model.config.geometry_max_pixels)
        feats = model.encoder(geo_images)
        nbrs = [nearest_views(c2w[i], c2w, M, exclude=[i]) for i in range(V)]
        nr, fr = per_view_range(0.5, V, images.device), per_view_range(5.0, V, images.device)
        ref = SourceEncoding.stack(encode_views(model.cost_volume, feats, nbrs, images, K, c2w,
                                                nr, fr, [0.5] * V, [5.0] * V, geo_images,
                                                geo_K))
        again = model.encode_sources(images, K, c2w, 0.5, 5.0)
    for a, b, c in zip(ref.depth_levels + ref.volumes, enc.depth_levels + enc.volumes,
                       again.depth_levels + again.volumes):
        assert torch.equal(a, b) and torch.equal(a, c)
    # a robot driving along its axis (+z) past a parallel lane
    eye = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.3], [0.0, 0.0, -0.3], [0.5, 0.0, 0.1]])
    line = torch.stack([look_at(e, e + torch.tensor([0.0, 0.0, 1.0]), UP) for e in eye])
    cfg = GSNeRFConfig.tiny(C)
    cfg.cost_volume.num_neighbors = 1
    near = source_neighbours(cfg, K, line, (H, W), [0.5] * V, [5.0] * V)
    apply_inference(cfg, InferenceConfig(neighbour_rule="triangulation"))
    tri = source_neighbours(cfg, K, line, (H, W), [0.5] * V, [5.0] * V)
    assert near[0].tolist() in ([1], [2]) and tri[0].tolist() == [3]
    with pytest.raises(ValueError, match="neighbour_rule"):
        InferenceConfig(neighbour_rule="farthest")
    with pytest.raises(ValueError, match="neighbour_rule"):
        CostVolumeConfig(neighbour_rule="farthest")
    with torch.no_grad():   # a triangulation encoding runs and differs from the nearest one
        cfg_model = GSNeRF(GSNeRFConfig.tiny(C)).eval()
        cfg_model.load_state_dict(model.state_dict())
        cfg_model.config.cost_volume.neighbour_rule = "triangulation"
        e_tri = cfg_model.encode_sources(images, K, line, 0.5, 5.0)
        e_near = model.encode_sources(images, K, line, 0.5, 5.0)
    assert torch.isfinite(e_tri.depth).all()
    assert not torch.equal(e_tri.depth, e_near.depth)


def test_render_outputs(setup) -> None:  # type: ignore[no-untyped-def]
    model, enc, _, K, _, tgt = setup
    res = model.render(enc, K[0], tgt, H, W)
    assert isinstance(res, RenderResult)
    assert res.rgb.shape == (H, W, 3) and res.depth.shape == (H, W)
    assert res.semantic_logits.shape == (H, W, C) and res.labels.dtype == torch.int64
    assert res.target_depth.shape == (H, W) and res.confidence.shape == (H, W)
    assert (res.rgb >= 0).all() and (res.rgb <= 1).all()
    assert ((res.confidence >= 0) & (res.confidence <= 1)).all()
    assert torch.equal(res.labels, res.semantic_logits.argmax(-1))


@pytest.mark.parametrize("mode", ["depth_guided", "uniform", "hierarchical", "released"])
def test_chunked_equals_unchunked(setup, mode: str) -> None:  # type: ignore[no-untyped-def]
    model, enc, _, K, _, tgt = setup
    a = model.render(enc, K[0], tgt, H, W, mode=mode, chunk=97)
    b = model.render(enc, K[0], tgt, H, W, mode=mode, chunk=H * W)
    for f in ("rgb", "depth", "semantic_logits", "confidence", "target_depth"):
        # Chunks of 97 and of H*W rays: the MLPs' matrix products block the rays differently.
        assert_close_reordered(getattr(a, f), getattr(b, f), fan_in=256, msg=f)


def test_padded_chunks_and_reused_output_buffers_give_the_same_view(setup, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """CUDA graphs reuse their output memory at every replay (issue 12's --cuda-graphs crash):
    here render_rays writes each chunk into the same static buffers, padded to the chunk size,
    and the view must still come out right."""
    model, enc, _, K, _, tgt = setup
    ref = model.render(enc, K[0], tgt, H, W, chunk=H * W)
    real = model.render_rays
    static: dict[str, torch.Tensor] = {}
    sizes: list[int] = []

    def graph_like(*args, **kw):  # type: ignore[no-untyped-def]
        o = real(*args, **kw)
        sizes.append(o["rgb"].shape[0])
        for k, v in o.items():
            if k not in static or static[k].shape != v.shape:
                static[k] = torch.empty_like(v)
            static[k].copy_(v)
        return dict(static)

    monkeypatch.setattr(model, "render_rays", graph_like)
    out = model.render(enc, K[0], tgt, H, W, chunk=100, pad_chunks=True)
    assert sizes == [100] * -(-H * W // 100)          # every call has the static chunk shape
    for f in ("rgb", "depth", "semantic_logits", "confidence"):
        assert_close_reordered(getattr(out, f), getattr(ref, f), fan_in=256, msg=f)


def test_chunk_from_the_memory_cap(setup) -> None:  # type: ignore[no-untyped-def]
    from gsnerf_ros.model.memory import (MIN_CHUNK, auto_chunk, bytes_per_ray,
                                         chunk_for_budget, samples_per_ray)

    assert chunk_for_budget(1000, 500, 1.0) == 500                  # the whole view fits
    c = chunk_for_budget(1000, 10 ** 6, 1.0)                         # 1 MB / 1 kB per ray
    assert c == 1024 and c * 1000 <= 2 ** 20                          # a power of two
    assert chunk_for_budget(10 ** 6, 10 ** 6, 1.0) == MIN_CHUNK
    with pytest.raises(ValueError, match="max_memory_mb"):
        chunk_for_budget(1000, 100, 0.0)
    # the full model at 640x480, 8 views, default mode: the chunk's estimate fits 2 GB
    full = GSNeRF(GSNeRFConfig())
    spr = samples_per_ray(full, "depth_guided")
    per = bytes_per_ray(full, 8, spr["network_evals"], spr["semantic_points"])
    chunk = auto_chunk(full, 8, 640 * 480, max_memory_mb=2048)
    assert MIN_CHUNK <= chunk < 640 * 480 and chunk * per <= 2048 * 2 ** 20
    assert auto_chunk(full, 8, 640 * 480, max_memory_mb=2048, bytes_per_value=2) == 2 * chunk
    assert auto_chunk(full, 8, 640 * 480, "released", max_memory_mb=2048) < chunk


@pytest.mark.parametrize("mode", ["depth_guided", "hierarchical", "released"])
def test_render_without_semantics_skips_them_and_keeps_every_other_output(setup, mode: str,
                                                                          monkeypatch) -> None:  # type: ignore[no-untyped-def]
    model, enc, _, K, _, tgt = setup
    full = model.render(enc, K[0], tgt, H, W, mode=mode, chunk=200, floor_z=2.0)
    calls = {"semantic": 0}
    forward = type(model.semantic_renderer).forward

    def counted(self, *a, **kw):  # type: ignore[no-untyped-def]
        calls["semantic"] += 1
        return forward(self, *a, **kw)

    monkeypatch.setattr(type(model.semantic_renderer), "forward", counted)
    lean = model.render(enc, K[0], tgt, H, W, mode=mode, chunk=200, floor_z=2.0,
                        semantics=False)
    assert calls["semantic"] == 0
    for f in ("rgb", "depth", "target_depth", "target_depth_valid", "acc"):
        assert torch.equal(getattr(lean, f), getattr(full, f)), f
    assert lean.semantic_logits is None and lean.labels is None and lean.confidence is None
    assert model.render(enc, K[0], tgt, H, W, mode=mode, chunk=200, floor_z=2.0).labels is not None
    assert calls["semantic"] > 0                         # the default still runs them
    uv = torch.tensor([[3.0, 4.0], [10.0, 20.0]])
    rays = model.render_rays(enc, K[0], tgt, uv, H, W, mode=mode, training=False,
                             semantics=False)
    assert not {"semantic_logits", "confidence", "n_visible"} & rays.keys()


def test_volume_semantic_mode_and_any_sample_count(setup) -> None:  # type: ignore[no-untyped-def]
    model, enc, _, K, _, tgt = setup
    uv = torch.tensor([[3.0, 4.0], [10.0, 20.0], [31.0, 23.0]])
    for S in (1, 2, 5, 9, 13):
        out = model.render_rays(enc, K[0], tgt, uv, H, W, num_samples=S, training=False)
        assert out["weights"].shape == (3, S) and torch.isfinite(out["rgb"]).all()
    out = model.render_rays(enc, K[0], tgt, uv, H, W, semantic_mode="volume", training=False)
    assert out["semantic_logits"].shape == (3, C)


def test_compositing_weights_nonnegative_and_at_most_one(setup) -> None:  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(0)
    alpha = torch.rand(100, 17, generator=g)
    alpha[0] = 1.0
    w = composite(alpha)
    assert (w >= 0).all() and (w.sum(-1) <= 1 + 1e-6).all()
    assert torch.allclose(w[0, 0], torch.tensor(1.0)) and torch.allclose(w[0, 1:], torch.zeros(16))
    model, enc, _, K, _, tgt = setup
    out = model.render_rays(enc, K[0], tgt, torch.rand(50, 2) * 20, H, W, mode="uniform",
                            training=False)
    assert (out["weights"] >= 0).all() and (out["weights"].sum(-1) <= 1 + 1e-5).all()


def test_sample_behind_source_surface_is_masked(setup) -> None:  # type: ignore[no-untyped-def]
    """Set view 0's depth to a wall at 2 m: a point on its central ray at 1.5 m is visible there,
    one at 3 m is occluded; a point outside every image is in none."""
    model, enc, _, K, c2w, _ = setup
    e = enc.subset([0, 1, 2, 3])
    e.depth_levels[0] = torch.full_like(e.depth_levels[0], 2.0)
    o = c2w[0, :3, 3]
    d = c2w[0, :3, 2]
    pts = torch.stack([o + 1.5 * d, o + 3.0 * d, o - 1.0 * d])
    uv, z, in_img = project_to_views(pts, e)
    occ = occlusion_mask(e, uv, z, threshold=0.2, min_tolerance=0.05)
    vis = in_img & ~occ
    assert vis[0, 0] and not vis[1, 0]
    assert in_img[1, 0] and occ[1, 0]
    assert not in_img[2].any()


def test_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    model = GSNeRF(GSNeRFConfig.tiny(C)).train()
    K, c2w = _cams()
    images = torch.rand(V, 3, H, W)
    enc = model.encode_sources(images, K, c2w, 0.5, 5.0)
    uv = torch.rand(40, 2) * torch.tensor([W - 1, H - 1])
    out = model.render_rays(enc, K[0], c2w[0], uv, H, W, mode="mixed", step=0,
                            generator=torch.Generator().manual_seed(0))
    labels = torch.randint(0, C, (40,))
    loss = ((out["rgb"] - 0.5) ** 2).mean() + torch.nn.functional.cross_entropy(
        out["semantic_logits"], labels) + enc.semantic_logits_2d.mean() + sum(
        d.mean() for d in enc.depth_levels) + out["depth"].mean()
    loss.backward()
    # The last bias of the view-blend logits adds the same number to every view's logit, which
    # the softmax over views cancels: its gradient is zero up to rounding, by construction.
    shift_invariant = {"volume_renderer.colour.4.bias"}
    assert shift_invariant <= dict(model.named_parameters()).keys()
    missing = [n for n, p in model.named_parameters() if n not in shift_invariant and (
               p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().sum() == 0)]
    assert not missing, f"no gradient reaches {missing}"


def test_checkpoint_round_trip(tmp_path: Path, setup) -> None:  # type: ignore[no-untyped-def]
    model, enc, _, K, _, tgt = setup
    names = ["wall", "floor", "chair", "table"]
    m = GSNeRF(model.config, class_names=names, palette=[[1, 2, 3], [4, 5, 6], [7, 8, 9], [0, 0, 0]])
    m.load_state_dict(model.state_dict())
    wpath = m.save_checkpoint(tmp_path / "ckpt", metadata={"steps": 3})
    assert wpath.name == "ckpt.safetensors" and (tmp_path / "ckpt.json").is_file()
    side = json.loads((tmp_path / "ckpt.json").read_text())
    assert side["class_names"] == names and side["metadata"] == {"steps": 3}
    loaded = GSNeRF.from_checkpoint(wpath, device="cpu")
    assert loaded.class_names == names and loaded.palette.dtype == torch.uint8
    assert loaded.palette.tolist()[1] == [4, 5, 6] and loaded.config == model.config
    a = model.render(enc, K[0], tgt, H, W)
    b = loaded.render(enc, K[0], tgt, H, W)
    torch.testing.assert_close(a.rgb, b.rgb)
    torch.testing.assert_close(a.semantic_logits, b.semantic_logits)
    with pytest.raises(FileNotFoundError):
        GSNeRF.from_checkpoint(tmp_path / "missing")


def test_autocast_bf16_render_rays(setup) -> None:  # type: ignore[no-untyped-def]
    model, enc, _, K, _, tgt = setup
    uv = torch.rand(30, 2) * 20
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model.render_rays(enc, K[0], tgt, uv, H, W, training=False)
    assert out["weights"].dtype == torch.float32 and out["target_depth"].dtype == torch.float32
    assert torch.isfinite(out["rgb"]).all() and torch.isfinite(out["semantic_logits"]).all()


def test_bad_inputs_raise() -> None:
    model = GSNeRF(GSNeRFConfig.tiny(C))
    K, c2w = _cams()
    with pytest.raises(ValueError, match=r"\[V,3,H,W\]"):
        model.encode_sources(torch.rand(V, 4, H, W), K, c2w, 0.5, 5.0)
    with pytest.raises(ValueError, match="far > near"):
        model.encode_sources(torch.rand(V, 3, H, W), K, c2w, 5.0, 0.5)
    with pytest.raises(ValueError, match="class names"):
        GSNeRF(GSNeRFConfig.tiny(C), class_names=["a"])
    with pytest.raises(ValueError, match="groups"):
        GSNeRFConfig(encoder=GSNeRFConfig().encoder.__class__(fpn_channels=[6, 16, 32]))


def test_render_is_invariant_to_source_order(setup) -> None:  # type: ignore[no-untyped-def]
    """The ROS engine stacks cached sources in id order and reuses the stack for any order of
    the same set; that is only right if the model does not depend on the order of its views."""
    model, enc, _, K, _, tgt = setup
    a = model.render(enc, K[0], tgt, 12, 16, chunk=64)
    b = model.render(enc.subset([2, 0, 3, 1]), K[0], tgt, 12, 16, chunk=64)
    for f in ("rgb", "depth", "semantic_logits", "confidence", "target_depth"):
        # The views' attention and softmax sum over the views in another order.
        assert_close_reordered(getattr(b, f), getattr(a, f), fan_in=256, msg=f)
    assert torch.equal(a.target_depth_valid, b.target_depth_valid)


def test_colour_views_change_the_colour_alone(setup) -> None:  # type: ignore[no-untyped-def]
    """``renderer.colour_views = k`` keeps the k sources nearest the target for the colour; the
    depth, D_T and the semantics are those of every source; k = 0 or k >= V is the paper's
    all-view renderer, bit for bit."""
    model, enc, _, K, _, tgt = setup
    cfg = model.config.renderer
    assert model.colour_view_mask(enc, tgt) is None
    every = model.render(enc, K[0], tgt, 12, 16, chunk=64)
    try:
        cfg.colour_views = 2
        keep = model.colour_view_mask(enc, tgt)
        pref = model.render(enc, K[0], tgt, 12, 16, chunk=64)
        cfg.colour_views = V
        assert model.colour_view_mask(enc, tgt) is None
    finally:
        cfg.colour_views = 0
    assert keep.tolist() == [i in nearest_views(tgt, enc.c2w, 2).tolist() for i in range(V)]
    for f in ("depth", "semantic_logits", "target_depth", "confidence", "acc"):
        assert torch.equal(getattr(pref, f), getattr(every, f)), f
    assert not torch.allclose(pref.rgb, every.rgb, atol=1e-3)
    with pytest.raises(ValueError, match="colour_views"):
        RendererConfig(colour_views=-1)


def test_render_and_encode_have_no_host_device_synchronisation(setup, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """With the depth range given (as the node does) and the fixed-shape z-buffer schedule
    (the default on CUDA), rendering a view and encoding a keyframe dispatch no operator that
    reads device data back to the host (``.item()``/``float()``/``bool()`` of a tensor,
    ``nonzero``, boolean-mask indexing): no stalls on a GPU, and CUDA-graph capturable."""
    import functools

    import gsnerf_ros.model.gsnerf as gs
    from helpers.sync_detector import SyncDetector

    model, enc, images, K, c2w, tgt = setup
    monkeypatch.setattr(gs, "estimate_target_depth",
                        functools.partial(gs.estimate_target_depth, sync_free=True))
    det = SyncDetector()
    with det:
        model.render(enc, K[0], tgt, 12, 16, near=0.5, far=5.0, chunk=64)
        model.config.renderer.colour_views = 2          # the shipped model's colour rule
        try:
            model.render(enc, K[0], tgt, 12, 16, near=0.5, far=5.0, chunk=64)
        finally:
            model.config.renderer.colour_views = 0
        with torch.no_grad():
            model.encode_view(images[0], K[0], c2w[0], images[1:3], K[1:3], c2w[1:3], 0.5, 5.0)
    assert det.found == []
    # The detector does see a synchronisation when there is one.
    with det:
        float(enc.near.min())
    assert det.found == ["aten._local_scalar_dense.default"]


def test_sensor_depth_drives_target_depth_and_keeps_the_estimate_where_invalid(setup) -> None:  # type: ignore[no-untyped-def]
    """RGB-D input: with the sources' exact depth, D_T of a fronto-parallel wall seen from a new
    pose is that wall's depth; invalid measurements (0) keep the cost-volume estimate; a wrongly
    sized map is refused."""
    from gsnerf_ros.geometry import pixel_grid, camera_rays

    model, enc, _, K, c2w, tgt = setup
    # Exact z-depth of the plane Z = 3 (world) in every source camera.
    uv = pixel_grid(H, W).reshape(-1, 2)
    depth = []
    for i in range(V):
        o, d = camera_rays(uv, K[i], c2w[i])
        t = (3.0 - o[:, 2]) / d[:, 2]
        pts = o + t[:, None] * d
        z = (pts - c2w[i, :3, 3]) @ c2w[i, :3, 2]
        depth.append(z.reshape(H, W))
    depth = torch.stack(depth)
    holey = depth.clone()
    holey[:, :4] = 0.0
    rgbd = enc.with_sensor_depth(holey)
    assert torch.equal(rgbd.depth[:, 4:], depth[:, 4:])
    assert torch.equal(rgbd.depth[:, :4], enc.depth[:, :4])
    assert not enc.depth_measured.any()                  # the cost volume's estimate
    assert rgbd.depth_measured[:, 4:].all() and not rgbd.depth_measured[:, :4].any()
    assert torch.equal(rgbd.volumes[0], enc.volumes[0]) and rgbd.depth_levels[1] is enc.depth_levels[1]
    assert torch.equal(enc.view(1).with_sensor_depth(holey[1]).depth, rgbd.view(1).depth)
    d_t, valid = model.target_depth(enc.with_sensor_depth(depth), K[0], tgt, H, W, 0.5, 5.0)
    o, d = camera_rays(uv, K[0], tgt)
    z_true = ((o + ((3.0 - o[:, 2]) / d[:, 2])[:, None] * d - tgt[:3, 3]) @ tgt[:3, 2]).reshape(H, W)
    inner = valid[2:-2, 2:-2]
    assert inner.float().mean() > 0.9
    assert torch.allclose(d_t[2:-2, 2:-2][inner], z_true[2:-2, 2:-2][inner], rtol=0.02)
    with pytest.raises(ValueError, match="shape"):
        enc.with_sensor_depth(depth[:, :-1])


def test_label_skip_adds_the_vote_of_the_2d_segmenter() -> None:
    """semantic.label_skip: with the head's output zeroed, the rendered logits are exactly the
    masked mean of the visible views' 2D log-probabilities at the surface point; every
    semantic mode runs with it, and the old behaviour (False) is unchanged by the option."""
    from gsnerf_ros.config import from_dict, to_dict
    from gsnerf_ros.model.features import project_to_views, sample_maps

    torch.manual_seed(1)
    d = to_dict(GSNeRFConfig.tiny(C))
    d["semantic"]["label_skip"] = True
    model = GSNeRF(from_dict(GSNeRFConfig, d)).eval()
    last = model.semantic_renderer.head[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
    K, c2w = _cams()
    with torch.no_grad():
        enc = model.encode_sources(torch.rand(V, 3, H, W), K, c2w, 0.5, 5.0)
    tgt = look_at(torch.tensor([0.05, 0.02, 0.1]), torch.tensor([0.0, 0.0, 2.5]), UP)
    uv = torch.tensor([[3.0, 4.0], [16.0, 12.0], [30.0, 20.0]])
    with torch.no_grad():
        out = model.render_rays(enc, K[0], tgt, uv, H, W, near=0.5, far=5.0, training=False)
    o, dirs = camera_rays(uv, K[0], tgt)
    surf = o + out["target_depth"][:, None] * dirs
    uv_s, z_s, inside = project_to_views(surf, enc)
    vis = inside & ~occlusion_mask(enc, uv_s, z_s, model.config.renderer.occlusion_threshold,
                                   model.config.renderer.occlusion_min)
    logp = torch.log_softmax(sample_maps(enc.semantic_logits, uv_s), -1)
    m = vis.float()[..., None]
    expected = (logp * m).sum(1) / m.sum(1).clamp(min=1.0)
    assert vis.any()
    assert torch.allclose(out["semantic_logits"], expected, atol=1e-5)
    for kw in ({"semantic_mode": "volume"}, {"mode": "released"}):
        with torch.no_grad():
            o2 = model.render_rays(enc, K[0], tgt, uv, H, W, near=0.5, far=5.0, training=False, **kw)
        assert torch.isfinite(o2["semantic_logits"]).all()
    with pytest.raises(ValueError, match="label_skip"):
        model.semantic_renderer(torch.zeros(2, V, 9 * C), torch.ones(2, V, dtype=torch.bool))
