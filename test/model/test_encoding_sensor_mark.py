"""The host-side mark of sensor depth on encodings (``has_sensor_depth``): set by
``with_sensor_depth``, carried by every copy, and what lets an RGB render skip D_T's
measured-depth passes without reading the device (model/encoding.py, model/gsnerf.py)."""

from __future__ import annotations

import functools

import pytest
import torch

import gsnerf_ros.model.gsnerf as gs
import gsnerf_ros.model.target_depth as td
from gsnerf_ros.geometry import look_at
from gsnerf_ros.model import GSNeRF, GSNeRFConfig, SourceEncoding

V, H, W = 3, 24, 32
UP = torch.tensor([0.0, -1.0, 0.0])


@pytest.fixture(scope="module")
def rig():  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = GSNeRF(GSNeRFConfig.tiny(4)).eval()
    c2w = torch.stack([look_at(torch.tensor([0.3 * i - 0.3, 0.0, 0.0]), torch.tensor([0.0, 0.0, 2.5]),
                               UP) for i in range(V)])
    K = torch.tensor([[28.0, 0.0, (W - 1) / 2], [0.0, 28.0, (H - 1) / 2], [0.0, 0.0, 1.0]]
                     ).expand(V, 3, 3).clone()
    with torch.no_grad():
        enc = model.encode_sources(torch.rand(V, 3, H, W), K, c2w, 0.5, 5.0)
    depth = torch.full((V, H, W), 2.5)
    depth[:, :, :6] = 0.0                                         # a sensor hole
    tgt = look_at(torch.tensor([0.1, 0.05, 0.2]), torch.tensor([0.0, 0.0, 2.5]), UP)
    return model, enc, enc.with_sensor_depth(depth), K, tgt


def test_the_mark_is_set_by_sensor_depth_and_carried_by_every_copy(rig) -> None:  # type: ignore[no-untyped-def]
    _, enc, rgbd, _, _ = rig
    assert enc.has_sensor_depth is False and not enc.depth_measured.any()
    assert rgbd.has_sensor_depth is True
    for copy in (rgbd.subset([2, 0]), rgbd.detach(), rgbd.to("cpu"), rgbd.with_floor(-1.0),
                 rgbd.view(1), rgbd.view(1).detach()):
        assert copy.has_sensor_depth is True
    for copy in (enc.subset([1]), enc.view(0), enc.with_floor(-1.0), enc.detach()):
        assert copy.has_sensor_depth is False
    assert enc.view(0).with_sensor_depth(torch.full((H, W), 2.0)).has_sensor_depth is True
    mixed = SourceEncoding.stack([enc.view(0), rgbd.view(1)])
    assert mixed.has_sensor_depth is True and mixed.depth_measured[1].any()
    assert SourceEncoding.stack([enc.view(0), enc.view(2)]).has_sensor_depth is False


def test_rgb_render_passes_no_measured_mask_to_target_depth(rig, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """GSNeRF.target_depth gives D_T the measured mask only for a set with sensor depth."""
    model, enc, rgbd, K, tgt = rig
    seen: list[object] = []

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(kwargs.get("src_measured"))
        return td.estimate_target_depth(*args, **kwargs)

    monkeypatch.setattr(gs, "estimate_target_depth", spy)
    model.target_depth(enc, K[0], tgt, H, W, 0.5, 5.0)
    model.target_depth(rgbd, K[0], tgt, H, W, 0.5, 5.0)
    assert seen[0] is None
    assert isinstance(seen[1], torch.Tensor) and torch.equal(seen[1], rgbd.depth_measured)


def test_gpu_schedule_runs_no_measured_passes_for_rgb(rig, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """On the synchronisation-free schedule (the GPU's, forced here on the CPU) and with
    version 5's measured-depth rules, an RGB render runs the z-buffer and fill rounds of the
    plain rules (no centre splat, the same count of neighbour reads, the same D_T); an RGB-D
    render runs the measured ones."""
    model, enc, rgbd, K, tgt = rig
    cfg = model.config.target_depth
    old = (cfg.footprint_depth, cfg.measured_fill_iterations)
    calls: list[str] = []
    real_zbuffer, real_neighbours = td._zbuffer, td._neighbours

    def zbuffer(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append("centre splat" if args[11] is not None else "splat")
        return real_zbuffer(*args, **kwargs)

    def neighbours(x):  # type: ignore[no-untyped-def]
        calls.append("fill round")
        return real_neighbours(x)

    monkeypatch.setattr(td, "_zbuffer", zbuffer)
    monkeypatch.setattr(td, "_neighbours", neighbours)
    monkeypatch.setattr(gs, "estimate_target_depth",
                        functools.partial(td.estimate_target_depth, sync_free=True))
    try:
        plain = model.target_depth(enc, K[0], tgt, H, W, 0.5, 5.0)
        c_plain = list(calls)
        cfg.footprint_depth, cfg.measured_fill_iterations = "measured_centre", 32
        calls.clear()
        v5 = model.target_depth(enc, K[0], tgt, H, W, 0.5, 5.0)
        c_v5 = list(calls)
        calls.clear()
        model.target_depth(rgbd, K[0], tgt, H, W, 0.5, 5.0)
        c_rgbd = list(calls)
    finally:
        cfg.footprint_depth, cfg.measured_fill_iterations = old
    assert "splat" in c_plain and "centre splat" not in c_plain
    assert c_v5 == c_plain
    assert torch.equal(v5[0].nan_to_num(-1.0), plain[0].nan_to_num(-1.0))
    assert torch.equal(v5[1], plain[1])
    assert "centre splat" in c_rgbd
    assert c_rgbd.count("fill round") > c_plain.count("fill round")


def test_depth_from_measured_publishes_the_measurement_and_changes_nothing_else(rig) -> None:  # type: ignore[no-untyped-def]
    """``renderer.depth_from_measured``: an RGB-D render's depth is D_T where its surface is
    measured, the rendered depth elsewhere;
    colour and D_T are the same; an RGB render is bit-identical."""
    model, enc, rgbd, K, tgt = rig
    with torch.no_grad():
        plain = model.render(rgbd, K[0], tgt, H, W, near=0.5, far=5.0)
        plain_rgb = model.render(enc, K[0], tgt, H, W, near=0.5, far=5.0)
        model.config.renderer.depth_from_measured = True
        try:
            out = model.render(rgbd, K[0], tgt, H, W, near=0.5, far=5.0)
            out_rgb = model.render(enc, K[0], tgt, H, W, near=0.5, far=5.0)
        finally:
            model.config.renderer.depth_from_measured = False
    assert torch.equal(out.rgb, plain.rgb) and torch.equal(out.target_depth, plain.target_depth)
    assert torch.equal(out_rgb.depth, plain_rgb.depth) and torch.equal(out_rgb.rgb, plain_rgb.rgb)
    dev_K, dev_c2w = K[0].float(), tgt.float()
    _, _, measured = td.estimate_target_depth_measured(
        rgbd.depth, rgbd.depth_K, rgbd.c2w, dev_K, dev_c2w, H, W, 0.5, 5.0,
        model.config.target_depth, src_measured=rgbd.depth_measured)
    assert measured.float().mean() > 0.5
    assert torch.equal(out.depth, torch.where(measured, out.target_depth, plain.depth))
    assert not torch.equal(out.depth, plain.depth)


def test_rgbd_render_with_depth_from_measured_has_no_host_device_synchronisation(rig) -> None:  # type: ignore[no-untyped-def]
    """On the synchronisation-free schedule (the GPU's), an RGB-D render with version 5's
    measured-depth rules and ``depth_from_measured`` reads nothing back to the host."""
    from helpers.sync_detector import SyncDetector

    model, _, rgbd, K, tgt = rig
    cfg = model.config
    old = (cfg.target_depth.footprint_depth, cfg.target_depth.measured_fill_iterations,
           cfg.target_depth.centre_mean_tolerance)
    cfg.target_depth.footprint_depth, cfg.target_depth.measured_fill_iterations = "measured_centre", 32
    cfg.target_depth.centre_mean_tolerance = 0.05
    cfg.renderer.depth_from_measured = True
    real = (td.estimate_target_depth, td.estimate_target_depth_measured)
    gs.estimate_target_depth = functools.partial(real[0], sync_free=True)
    gs.estimate_target_depth_measured = functools.partial(real[1], sync_free=True)
    det = SyncDetector()
    try:
        with det, torch.no_grad():
            model.render(rgbd, K[0], tgt, H, W, near=0.5, far=5.0, chunk=256)
    finally:
        gs.estimate_target_depth, gs.estimate_target_depth_measured = real
        (cfg.target_depth.footprint_depth, cfg.target_depth.measured_fill_iterations,
         cfg.target_depth.centre_mean_tolerance) = old
        cfg.renderer.depth_from_measured = False
    assert det.found == []


def test_measured_colour_views_apply_to_sets_with_sensor_depth_only(rig) -> None:  # type: ignore[no-untyped-def]
    """``renderer.measured_colour_views``: -1 keeps ``colour_views`` for both kinds of set; a
    count applies to a set with sensor depth, and an RGB set keeps ``colour_views``."""
    model, enc, rgbd, _, tgt = rig
    rc = model.config.renderer
    old = (rc.colour_views, rc.measured_colour_views)
    try:
        rc.colour_views, rc.measured_colour_views = 1, -1
        one = model.colour_view_mask(enc, tgt)
        assert one is not None and int(one.sum()) == 1
        assert torch.equal(model.colour_view_mask(rgbd, tgt), one)
        rc.measured_colour_views = 2
        assert torch.equal(model.colour_view_mask(enc, tgt), one)
        two = model.colour_view_mask(rgbd, tgt)
        assert two is not None and int(two.sum()) == 2 and bool(two[one].all())
        rc.measured_colour_views = 0                  # every view lends colour
        assert model.colour_view_mask(rgbd, tgt) is None
    finally:
        rc.colour_views, rc.measured_colour_views = old
    with pytest.raises(ValueError, match="measured_colour_views"):
        type(rc)(measured_colour_views=-2)
