"""gsnerf-bench: runs on CPU at a tiny size with the tiny config and writes valid JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from gsnerf_ros.bench.cli import main
from gsnerf_ros.bench.instrument import StageRecorder
from gsnerf_ros.bench.scene import make_bench_scene
from gsnerf_ros.bench.timing import loglog_slope, measure
from gsnerf_ros.geometry import unproject_depth, world_to_pixels
from gsnerf_ros.model import GSNeRF, GSNeRFConfig

TOP_KEYS = {"schema", "created", "command", "environment", "model", "settings", "stages",
            "modes", "variants", "sweeps", "accuracy", "precision", "node", "targets"}
STAGES = {"keyframe_encode", "view_selection", "target_depth", "target_depth_rgbd",
          "sampling_gathering", "volume_renderer", "semantic_renderer", "other", "ros_conversion"}


def test_cli_tiny_cpu_writes_valid_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    rc = main(["--device", "cpu", "--tiny", "--height", "12", "--width", "16", "--views", "3",
               "--repeats", "2", "--warmup", "0", "--sweep", "all", "--resolutions", "16x12",
               "24x18", "--samples", "4", "8", "--view-counts", "2", "3", "--ray-budget", "0",
               "--json", str(out), "--plots", str(tmp_path / "img"), "--quiet"])
    assert rc == 0
    res = json.loads(out.read_text())  # strict JSON: no NaN
    assert TOP_KEYS <= set(res)
    assert res["schema"] == "gsnerf-bench/1"
    assert res["environment"]["device"] == "cpu"
    assert STAGES <= set(res["stages"])
    for name in STAGES - {"ros_conversion"}:
        st = res["stages"][name]
        assert st["median_ms"] is not None and st["median_ms"] >= 0, name
    ros = res["stages"]["ros_conversion"]
    assert ros["median_ms"] is not None or ros["skipped"]
    enc = res["stages"]["keyframe_encode"]
    assert enc["repeats"] == 2 and len(enc["samples_ms"]) == 2 and enc["iqr_ms"] >= 0
    assert enc["min_ms"] <= enc["median_ms"] <= enc["max_ms"]

    modes = res["modes"]
    assert set(modes) == {"depth_guided", "released", "uniform", "hierarchical"}
    assert modes["released"]["samples"] == 128 and modes["released"]["semantic_points"] == 128
    assert modes["depth_guided"]["samples"] == GSNeRFConfig.tiny().sampling.num_guided + 1
    assert modes["depth_guided"]["extrapolated"] is False
    assert modes["released"]["speedup_vs_released"] == pytest.approx(1.0)
    for m in modes.values():
        assert m["median_ms"] > 0
        assert set(m["breakdown"]["stages_ms"]) == {"target_depth", "sampling_gathering",
                                                   "volume_renderer", "semantic_renderer",
                                                   "other"}

    lab = res["variants"]["labels_source"]        # semantic.source: labels, vote included
    assert lab["median_ms"] > 0 and lab["with_semantics"]["median_ms"] > 0
    # the JSON's medians are rounded to 1e-4 ms (bench/timing.py), the ratio is not: a
    # millisecond-scale tiny render puts that rounding at about 1e-4 of the ratio
    assert lab["speedup_vs_with_semantics"] == pytest.approx(
        lab["with_semantics"]["median_ms"] / lab["median_ms"], rel=1e-4)
    assert "speedup_vs_eager" not in lab

    sw = res["sweeps"]
    assert [p["pixels"] for p in sw["resolution"]["points"]] == [12 * 16, 18 * 24]
    assert math.isfinite(sw["resolution"]["exponent_render_vs_pixels"])
    assert [p["samples"] for p in sw["samples"]["modes"]["depth_guided"]["points"]] == [4, 8]
    assert [p["views"] for p in sw["views"]["points"]] == [2, 3]
    assert res["accuracy"]["median_ms"] is None and "checkpoint" in res["accuracy"]["skipped"]
    assert res["precision"]["skipped"]
    names = {t["target"] for t in res["targets"]}
    assert {"cpu_speedup_vs_released", "gpu_render_320x240_ms", "exponent_pixels"} <= names
    assert sorted(p.name for p in (tmp_path / "img").iterdir()) == [
        "bench_modes.png", "bench_resolution.png", "bench_samples.png", "bench_views.png"]


def test_ray_budget_extrapolates_whole_view(tmp_path: Path) -> None:
    out = tmp_path / "b.json"
    assert main(["--device", "cpu", "--tiny", "--height", "16", "--width", "16", "--views", "2",
                 "--repeats", "1", "--warmup", "0", "--modes", "depth_guided", "released",
                 "--ray-budget", "64", "--no-accuracy", "--flops", "--json", str(out),
                 "--quiet"]) == 0
    res = json.loads(out.read_text())
    fl = res["flops"]
    assert fl["keyframe_encode_gflop"] > 0 and fl["rays_counted"] == 64
    per = fl["render_gflop_per_view"]
    # 128 samples with semantics at every one vs 9 samples: far more arithmetic per view.
    assert per["released"] > 5 * per["depth_guided"] > 0
    assert res["stages"]["view_selection"]["cached_set"]["median_ms"] >= 0
    d = res["modes"]["depth_guided"]
    assert d["extrapolated"] is True and d["rays_timed"] == 64
    expected = d["target_depth_ms"] + 256 / 64 * d["batch_ms"]["median_ms"]
    assert d["median_ms"] == pytest.approx(expected, rel=1e-3)
    assert "whole views" in res["variants"]["labels_source"]["skipped"]


def test_bad_arguments_fail_with_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--device", "cpu", "--tiny", "--views", "0", "--quiet"]) == 2
    assert "views" in capsys.readouterr().err


def test_measure_statistics_and_slope() -> None:
    calls = []
    st = measure(lambda: calls.append(1), "cpu", repeats=4, warmup=2)
    assert len(calls) == 6 and st.repeats == 4 and len(st.samples_ms) == 4
    assert st.min_ms <= st.median_ms <= st.max_ms and st.iqr_ms >= 0
    assert loglog_slope([1, 2, 4, 8], [3, 6, 12, 24]) == pytest.approx(1.0)
    assert loglog_slope([1, 2, 4], [5, 20, 80]) == pytest.approx(2.0)
    assert loglog_slope([1], [1]) is None


def test_stage_recorder_covers_render_and_restores() -> None:
    import gsnerf_ros.model.volume_renderer as vr

    torch.manual_seed(0)
    model = GSNeRF(GSNeRFConfig.tiny()).eval()
    scene = make_bench_scene(12, 16, 2)
    with torch.no_grad():
        enc = model.encode_sources(scene.images, scene.K, scene.c2w, scene.near, scene.far)
    orig = vr.sample_maps
    with StageRecorder(model, "cpu") as rec:
        model.render(enc, scene.target_K, scene.target_c2w, 12, 16)
    assert vr.sample_maps is orig and "target_depth" not in vars(model)
    bd = rec.breakdown(total_ms=1e9)
    for k in ("target_depth", "sampling_gathering", "volume_renderer", "semantic_renderer"):
        assert bd[k] > 0, k
    assert rec.calls["target_depth"] == 1


def test_bench_scene_depth_is_consistent_across_views() -> None:
    s = make_bench_scene(24, 32, 3)
    assert s.images.shape == (3, 3, 24, 32) and float(s.images.min()) >= 0
    # Points of view 0 seen by view 1 land at view 1's depth (exact geometry).
    pts = unproject_depth(s.depths[0], s.K[0], s.c2w[0]).reshape(-1, 3)
    uv, z = world_to_pixels(pts[None], s.K[1:2], s.c2w[1:2])
    uv, z = uv[0], z[0]
    ok = (uv[:, 0] >= 0) & (uv[:, 0] <= 31) & (uv[:, 1] >= 0) & (uv[:, 1] <= 23) & (z > 0)
    assert int(ok.sum()) > 200
    ui, vi = uv[ok, 0].round().long(), uv[ok, 1].round().long()
    err = (s.depths[1][vi, ui] - z[ok]).abs()
    assert float(err.median()) < 0.05


def test_accuracy_default_vs_released_on_heldout_rooms(tmp_path: Path) -> None:
    from gsnerf_ros.data.classes import PROCEDURAL_CLASSES

    torch.manual_seed(0)
    ckpt = GSNeRF(GSNeRFConfig.tiny(num_classes=len(PROCEDURAL_CLASSES))).save_checkpoint(
        tmp_path / "tiny")
    out = tmp_path / "acc.json"
    assert main(["--device", "cpu", "--checkpoint", str(ckpt), "--height", "24", "--width", "32",
                 "--views", "3", "--repeats", "1", "--warmup", "0", "--modes", "depth_guided",
                 "released", "--accuracy-scenes", "1", "--accuracy-targets", "1",
                 "--accuracy-rays", "100", "--lowp-accuracy-on-cpu", "--json", str(out),
                 "--quiet"]) == 0
    res = json.loads(out.read_text())
    prec = res["precision"]
    assert prec["dtype"] == "bf16" and prec["device"] == "cpu" and "proxy" in prec["autocast"]
    assert 0 <= prec["label_agreement_pct"] <= 100 and math.isfinite(prec["psnr_diff_db"])
    assert math.isfinite(prec["miou_diff_points"])
    acc = res["accuracy"]
    assert res["model"]["trained"] is True and acc["views"] == 1
    assert acc["scenes"][0].startswith("test_")          # held-out split, never trained on
    for m in ("depth_guided", "released"):
        assert 0 < acc[m]["psnr"] < 100 and 0 <= acc[m]["mIoU"] <= 100
    assert acc["psnr_diff_db"] == pytest.approx(acc["depth_guided"]["psnr"]
                                                - acc["released"]["psnr"])
    t = {x["target"]: x for x in res["targets"]}
    assert t["psnr_vs_released"]["met"] == (abs(acc["psnr_diff_db"]) <= 1.0)


@pytest.mark.slow
@pytest.mark.ros
def test_node_round_trip_with_real_rclpy(tmp_path: Path, ros_domain: int) -> None:
    pytest.importorskip("rclpy")
    out = tmp_path / "node.json"
    assert main(["--device", "cpu", "--tiny", "--height", "24", "--width", "32", "--views", "2",
                 "--repeats", "1", "--warmup", "0", "--modes", "depth_guided", "--no-accuracy",
                 "--ray-budget", "0", "--node", "--node-calls", "3", "--node-size", "32x24",
                 "--json", str(out), "--quiet"]) == 0
    node = json.loads(out.read_text())["node"]
    assert node.get("skipped") is None, node.get("skipped")
    assert node["calls"] == 3 and node["keyframes"] > 0
    rt, handler = node["round_trip_ms"]["median_ms"], node["server_handler_ms"]["median_ms"]
    assert rt >= handler > 0          # the client waits at least as long as the node works


@pytest.mark.parametrize("smoke", [False, True])
def test_gpu_check_commands_parse_with_the_real_parsers(smoke: bool, tmp_path: Path,
                                                        capsys) -> None:
    """Every step of tools/gpu_check.sh is accepted by the CLI it calls, so a session lent a
    GPU does not spend its minutes on a typo (the smoke run executes the same steps on the
    CPU: ``bash tools/gpu_check.sh --smoke``)."""
    from gsnerf_ros.bench.cli import build_parser
    from gsnerf_ros.bench.gpu_check import plan
    from gsnerf_ros.data.procedural.cli import build_parser as synth_parser
    from gsnerf_ros.train.cli import train_main

    steps = {s.name: s for s in plan(tmp_path, smoke)}
    assert list(steps) == ["cuda_tests", "bench_fp32", "bench_bf16", "bench_accuracy",
                           "train_data", "train_cuda", "bench_cuda_graphs"]
    for name, s in steps.items():
        args = s.argv[3:]                          # after: python -m module
        if name.startswith("bench_"):
            a = build_parser().parse_args(args)
            assert a.json == s.json_out and a.ray_budget == 0 and a.max_memory_mb == 2048
            assert a.device == ("cpu" if smoke else "cuda")
        elif name == "train_data":
            synth_parser().parse_args(args)
        elif name == "train_cuda":
            assert train_main([*args, "--print-config"]) == 0
            assert ("device: cpu" if smoke else "device: cuda") in capsys.readouterr().out
    fp32 = build_parser().parse_args(steps["bench_fp32"].argv[3:])
    if not smoke:
        assert fp32.resolutions == [(120, 160), (240, 320), (480, 640)] and fp32.repeats >= 10
        assert "-m" in steps["cuda_tests"].argv and "cuda" in steps["cuda_tests"].argv
