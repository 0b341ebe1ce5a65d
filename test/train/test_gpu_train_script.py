"""tools/gpu_train.sh, the one prepared GPU training session, run on the CPU at tiny sizes (so
a device session never finds it broken), and the summary it ends with
(gsnerf_ros.train.eval_summary)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch

from gsnerf_ros.config import load_config, to_dict
from gsnerf_ros.train.config import TrainConfig
from gsnerf_ros.train.recipe import load_stages
from gsnerf_ros.train.eval_summary import (by_camera, collect, main as summary_main, markdown,
                                           target_checks)
from helpers.shipped import shipped_sidecar, with_shipped_inference

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "gpu_train.sh"


def _env(tmp_path: Path, **kw: str) -> dict[str, str]:
    env = {**os.environ, "OUT": str(tmp_path / "out"), "WORK": str(tmp_path / "work"),
           "DATA": str(tmp_path / "rooms"),
           "PYTHON": sys.executable, "DEVICE": "cpu", "HEIGHT": "30", "WIDTH": "40",
           "SCENES": "2", "FRAMES": "10", "TEST_SCENES": "1", "TEST_FRAMES": "10",
           "TRAIN_SECONDS": "6", "TARGETS": "1", "OMP_NUM_THREADS": "1",
           "EXTRA": "data.height=30 data.width=40 optim.rays_per_step=32 data.num_workers=0 "
                    "threads=1"}
    env.update(kw)
    return env


def test_recipes_are_valid_configs_and_the_finetune_fits_the_shipped_weights(
        tmp_path: Path, capsys) -> None:
    """Every recipe of the script parses with its overrides; the fine-tune's model section is
    the shipped checkpoint's architecture (a strict load), with its geometry at 160x120. The
    renderers recipe is the CPU recipe's stage 7, written out by the script's own command."""
    from gsnerf_ros.train.cli import train_main

    text = SCRIPT.read_text()
    export = re.search(r'(--config config/recipes/cpu\.yaml --stage stage7 --print-config) \\\n'
                       r'\s+> "\$WORK/cpu_stage7\.yaml"', text)
    assert export, "the script writes the CPU recipe's stage 7 out as $WORK/cpu_stage7.yaml"
    assert train_main(export.group(1).split()) == 0
    (tmp_path / "cpu_stage7.yaml").write_text(capsys.readouterr().out)
    recipes = {name: (path.replace("$WORK", str(tmp_path)), rest.split()) for name, path, rest in
               re.findall(r'^\s+(\w+)\) echo "--config (\S+)([^"]*)" ;;$', text, re.M)}
    assert set(recipes) == {"finetune", "finetune80", "finetune_p32", "renderers", "paper"}
    for name, (path, overrides) in recipes.items():
        cfg = load_config(TrainConfig, ROOT / path, overrides + ["optim.time_limit_s=300"])
        assert cfg.optim.anneal_by_time, name
    ft = load_config(TrainConfig, ROOT / "config" / "train_gpu_finetune.yaml")
    shipped = shipped_sidecar()["model_config"]
    mine = to_dict(ft.model)
    assert mine["geometry_max_pixels"] == 160 * 120 == ft.data.height * ft.data.width
    assert with_shipped_inference(mine) == shipped   # geometry at 80x60, colour_views as shipped
    assert ft.init_checkpoint == "models/gsnerf_cpu"
    # renderers: the shipped architecture exactly (geometry at 80x60), on 320x240 rays, with
    # the Geo-Reasoner frozen, from the shipped weights
    path, overrides = recipes["renderers"]
    rd = load_config(TrainConfig, ROOT / path, overrides)
    assert with_shipped_inference(to_dict(rd.model)) == shipped
    assert (rd.data.height, rd.data.width) == (240, 320)
    assert set(rd.freeze) == {"encoder", "cost_volume"}
    assert rd.init_checkpoint == "models/gsnerf_cpu" and rd.optim.lr == 1e-3 == load_stages(
        ROOT / "config" / "recipes" / "cpu.yaml", [], "stage7")[0].config.optim.lr


def test_unknown_recipe_is_refused_before_any_work(tmp_path: Path) -> None:
    r = subprocess.run(["bash", str(SCRIPT)], env=_env(tmp_path, RECIPES="finetune nope"),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "unknown recipe nope" in r.stdout
    assert not (tmp_path / "rooms").exists()


def test_dry_run_on_cpu_trains_evaluates_and_summarises(tmp_path: Path) -> None:
    r = subprocess.run(["bash", str(SCRIPT)], env=_env(tmp_path, RECIPES="finetune renderers",
                                                       FLOOR_Z="0"),
                       capture_output=True, text=True, timeout=900)
    out = tmp_path / "out"
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    steps = (out / "steps.txt").read_text().split("\n")
    failed = [s for s in steps if s and " rc=0 " not in s]
    assert not failed, (failed, r.stdout[-3000:])
    names = {s.split()[0] for s in steps if s}
    assert {"synth_train", "synth_val", "synth_test", "synth_test_novel", "train_finetune",
            "eval_shipped_test_rgb", "eval_finetune_test_novel_rgbd",
            "probe_finetune_test"} <= names
    # the held-out rooms are made by the commands of docs/RESULTS.md: seed 0, own frames
    split = json.loads((tmp_path / "rooms" / "test" / "split.json").read_text())
    assert split["first_seed"] == 0 and split["config"]["frames"] == 10
    summary = json.loads((out / "summary.json").read_text())
    got = {(r["model"], r["split"], r["input"]) for r in summary["rows"]}
    assert got == {(m, s, i) for m in ("shipped", "finetune", "renderers")
                   for s in ("test", "test_novel") for i in ("rgb", "rgbd")}
    for row in summary["rows"]:
        assert row["mIoU"] is not None and row["baseline"]["psnr"] is not None
        assert (row["cost_volume_abs_rel"] is not None) == (row["input"] == "rgb")
    run = summary["runs"]["finetune"]
    assert run["steps"] >= 1 and (tmp_path / "work" / "finetune" / "best.safetensors").is_file()
    assert "| finetune | test | RGB |" in (out / "summary.md").read_text()
    # what a device hands back: at most 8 files of 16 MiB, no folders
    files = list(out.iterdir())
    assert len(files) <= 8 and all(f.is_file() and f.stat().st_size < 16 * 2**20 for f in files)
    assert {f.name for f in files} == {"summary.md", "summary.json", "steps.txt",
                                       "checkpoints.tar", "results.tar.gz"}
    with tarfile.open(out / "checkpoints.tar") as tar:
        tar.extractall(tmp_path / "back")
    from gsnerf_ros.model import GSNeRF
    model = GSNeRF.from_checkpoint(tmp_path / "back" / "finetune.safetensors")
    assert model.config.geometry_max_pixels == 160 * 120
    # the renderer-only recipe hands back the shipped Geo-Reasoner unchanged
    from safetensors.torch import load_file
    back = load_file(str(tmp_path / "back" / "renderers.safetensors"))
    shipped_w = load_file(str(ROOT / "models" / "gsnerf_cpu.safetensors"))
    geo = [k for k in shipped_w if k.startswith(("encoder.", "cost_volume."))]
    assert geo and all(torch.equal(back[k], shipped_w[k]) for k in geo)
    assert (tmp_path / "back" / "finetune_config.yaml").is_file()
    with tarfile.open(out / "results.tar.gz") as tar:
        names = set(tar.getnames())
    assert {"eval_shipped_test_rgb.json", "probe_finetune_test.json", "train_finetune.log",
            "left_out.txt"} <= names
    assert any(n.startswith("panels_finetune_test_rgb/") for n in names)
    # FLOOR_Z reaches every evaluation and probe
    work = tmp_path / "work"
    for f in ("eval_shipped_test_rgb.json", "eval_finetune_test_novel_rgbd.json",
              "probe_finetune_test.json"):
        assert json.loads((work / f).read_text())["floor_z"] == 0.0, f
    # every evaluation renders colour as the shipped sidecar does, trained models included
    for f in ("eval_shipped_test_rgb.json", "eval_finetune_test_novel_rgbd.json"):
        assert json.loads((work / f).read_text())["colour_views"] == 2, f


def _write_eval(folder: Path, name: str, miou: float, psnr: float, depth: float,
                b: tuple[float, float, float]) -> None:
    keys = ("mIoU", "psnr", "depth_abs_rel")
    (folder / name).write_text(json.dumps({**dict(zip(keys, (miou, psnr, depth))),
                                           "target_depth_abs_rel": b[2], "n_images": 2,
                                           "baseline": dict(zip(keys, b))}))


def test_summary_checks_issue_11_targets(tmp_path: Path) -> None:
    _write_eval(tmp_path, "eval_finetune_p32_test_novel_rgb.json", 40.0, 26.0, 0.11,
                (29.0, 24.0, 0.2))
    _write_eval(tmp_path, "eval_shipped_test_rgbd.json", 30.0, 30.0, 0.02, (29.0, 31.0, 0.02))
    (tmp_path / "probe_finetune_p32_test_novel.json").write_text(json.dumps(
        {"results": {"model_final/all": {"abs_rel": 0.125}}}))
    (tmp_path / "eval_notes.json").write_text("{}")           # not an eval file: ignored
    s = collect(tmp_path)
    rows = {(r["model"], r["split"], r["input"]): r for r in s["rows"]}
    assert set(rows) == {("finetune_p32", "test_novel", "rgb"), ("shipped", "test", "rgbd")}
    rgb = rows[("finetune_p32", "test_novel", "rgb")]
    assert rgb["cost_volume_abs_rel"] == 0.125
    assert target_checks(rgb) == {"depth<=0.12": True, "cost_volume<=0.12": False,
                                  "mIoU>=b+10": True, "psnr>=b+1.5": True}
    assert target_checks(rows[("shipped", "test", "rgbd")]) == {
        "mIoU>=b": True, "psnr>=b": False, "depth<=b": True}
    md = markdown(s)
    assert "3/4 (missed: cost_volume<=0.12)" in md and "2/3 (missed: psnr>=b)" in md


def test_summary_reports_the_robot_splits_apart_with_their_depth_target(tmp_path: Path) -> None:
    _write_eval(tmp_path, "eval_gsnerf_cpu_test_rgb.json", 40.0, 26.0, 0.13, (29.0, 24.0, 0.2))
    _write_eval(tmp_path, "eval_gsnerf_cpu_robot_test_rgb.json", 40.0, 26.0, 0.13,
                (29.0, 24.0, 0.2))
    _write_eval(tmp_path, "eval_tri_robot_test_novel_rgb.json", 40.0, 26.0, 0.16,
                (29.0, 24.0, 0.2))
    s = collect(tmp_path)
    rows = {(r["model"], r["split"]): r for r in s["rows"]}
    assert set(rows) == {("gsnerf_cpu", "test"), ("gsnerf_cpu", "robot_test"),
                         ("tri", "robot_test_novel")}
    assert target_checks(rows[("gsnerf_cpu", "test")])["depth<=0.12"] is False
    assert target_checks(rows[("gsnerf_cpu", "robot_test")])["depth<=0.15"] is True
    assert target_checks(rows[("tri", "robot_test_novel")])["depth<=0.15"] is False
    lines = [ln for ln in markdown(s).splitlines() if ln.startswith("| gsnerf_cpu") or
             ln.startswith("| tri")]
    assert [ln.split(" | ")[1] for ln in lines[:3]] == ["test", "robot_test", "robot_test_novel"]


def test_summary_tabulates_per_class_iou_with_the_baseline(tmp_path: Path) -> None:
    _write_eval(tmp_path, "eval_a_test_rgb.json", 40.0, 26.0, 0.11, (29.0, 24.0, 0.2))
    ev = json.loads((tmp_path / "eval_a_test_rgb.json").read_text())
    ev["per_class_iou"] = {"wall": 80.0, "sofa": None}
    ev["baseline"]["per_class_iou"] = {"wall": 70.5, "sofa": 0.0}
    (tmp_path / "eval_a_test_rgb.json").write_text(json.dumps(ev))
    _write_eval(tmp_path, "eval_old_test_rgb.json", 30.0, 25.0, 0.12, (29.0, 24.0, 0.2))
    md = markdown(collect(tmp_path))
    assert "| class | a test |" in md                  # only evaluations with per-class IoU
    assert "| wall | 80.0 (70.5) |" in md and "| sofa | – (0.0) |" in md


def test_summary_splits_rooms_by_camera_path(tmp_path: Path) -> None:
    """Robot-base and hand-held rooms apart, image-weighted, from each room's scene.json."""
    for name, mode in (("r0", "robot"), ("h0", "handheld"), ("h1", "handheld")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "scene.json").write_text(json.dumps({"camera": {"mode": mode}}))
    scene = {"r0": (20.0, 0.3, 2), "h0": (30.0, 0.05, 1), "h1": (27.0, 0.08, 2), "x": (25.0, 0.1, 1)}
    ev = {"data": str(tmp_path),
          "per_scene": {k: {"psnr": v[0], "depth_abs_rel": v[1], "n_images": v[2]}
                        for k, v in scene.items()},
          "baseline": {"per_scene": {k: {"psnr": v[0] - 1, "depth_abs_rel": v[1] + 0.01}
                                     for k, v in scene.items()}}}
    cams = by_camera(ev)
    assert set(cams) == {"robot", "handheld", "unknown"}
    assert cams["handheld"]["rooms"] == 2
    assert cams["handheld"]["psnr"] == pytest.approx((30.0 + 2 * 27.0) / 3)
    assert cams["handheld"]["baseline_depth_abs_rel"] == pytest.approx((0.06 + 2 * 0.09) / 3)
    assert cams["robot"]["depth_abs_rel"] == pytest.approx(0.3)
    assert cams["unknown"]["rooms"] == 1


def test_pack_caps_every_file_and_lists_what_it_left_out(tmp_path: Path) -> None:
    """Panels beyond the cap stay behind (named in left_out.txt); the checkpoint of a run
    without best.safetensors is its last step's weights, not the optimiser state."""
    from gsnerf_ros.train.device_outputs import pack, selected_weights

    work = tmp_path / "work"
    run = work / "r1"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("seed: 1\n")
    for step in (5, 10):
        (run / "checkpoints" / f"step_{step:07d}.safetensors").write_bytes(b"w" * 100)
        (run / "checkpoints" / f"step_{step:07d}.optim.safetensors").write_bytes(b"o" * 100)
        (run / "checkpoints" / f"step_{step:07d}.json").write_text("{}")
        (run / "checkpoints" / f"step_{step:07d}.state.json").write_text("{}")
    assert selected_weights(run).name == "step_0000010.safetensors"
    (work / "summary.md").write_text("| x |\n")
    (work / "eval_a_test_rgb.json").write_text("{}")
    (work / "panels").mkdir()
    for i in range(4):
        (work / "panels" / f"p{i}.png").write_bytes(os.urandom(300_000))
    files = pack(work, tmp_path / "out", max_mib=1.0)
    assert all(f.stat().st_size <= 2**20 for f in files)
    with tarfile.open(tmp_path / "out" / "checkpoints.tar") as tar:
        assert sorted(tar.getnames()) == ["r1.json", "r1.safetensors", "r1_config.yaml"]
        assert tar.extractfile("r1.safetensors").read() == b"w" * 100
    with tarfile.open(tmp_path / "out" / "results.tar.gz") as tar:
        names = tar.getnames()
        left = tar.extractfile("left_out.txt").read().decode().split()
    assert "eval_a_test_rgb.json" in names and "summary.md" in names
    kept = [n for n in names if n.endswith(".png")]
    assert 1 <= len(kept) < 4 and len(kept) + len(left) == 4
    with pytest.raises(FileNotFoundError):
        pack(tmp_path / "nowhere", tmp_path / "out")


def test_summary_cli_refuses_a_folder_without_evals(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        summary_main([str(tmp_path)])
    assert e.value.code == 2 and "no eval_" in capsys.readouterr().err
