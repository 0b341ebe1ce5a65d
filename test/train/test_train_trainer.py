"""Trainer: short run learns, resume is bit-exact (also across loader worker counts), DDP with 2 gloo processes, CLIs."""

from __future__ import annotations

import json
import math
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from gsnerf_ros.config import load_config, to_dict
from gsnerf_ros.train.checkpoint import latest_checkpoint
from gsnerf_ros.train.config import TrainConfig
from gsnerf_ros.train.trainer import Trainer, lr_at
from helpers.rooms import SMALL_ROOMS_HW

H, W = SMALL_ROOMS_HW  # the size of the `rooms` fixture's images (conftest)


def tiny_cfg(rooms: Path, run_dir: Path, *extra: str) -> TrainConfig:
    from gsnerf_ros.data.replica import ReplicaScene, find_scene_dirs

    C = ReplicaScene(find_scene_dirs(rooms / "train")[0]).num_classes
    tiny = to_dict(__import__("gsnerf_ros.model", fromlist=["GSNeRFConfig"]).GSNeRFConfig.tiny(C))
    cfg = load_config(TrainConfig, None, [
        f"run_dir={run_dir}", f"data.train_root={rooms / 'train'}",
        f"data.val_root={rooms / 'val'}", f"data.height={H}", f"data.width={W}",
        "data.num_sources=3", "data.val_images_per_scene=1", "optim.rays_per_step=128",
        "optim.warmup_steps=2", "optim.lr=3e-3", "log.tensorboard=false", "log.progress=false",
        "log.panels=0", "device=cpu", "seed=7", *extra])
    cfg.model = from_tiny(tiny)
    return cfg


def from_tiny(d: dict):
    from gsnerf_ros.config import from_dict
    from gsnerf_ros.model import GSNeRFConfig
    return from_dict(GSNeRFConfig, d)


def test_lr_schedule_warmup_then_cosine():
    assert lr_at(0, 100, 1e-3, 1e-5, 10) == pytest.approx(1e-4)
    assert lr_at(9, 100, 1e-3, 1e-5, 10) == pytest.approx(1e-3)
    assert lr_at(10, 100, 1e-3, 1e-5, 10) == pytest.approx(1e-3)
    assert lr_at(55, 100, 1e-3, 1e-5, 10) == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5))
    assert lr_at(100, 100, 1e-3, 1e-5, 10) == pytest.approx(1e-5)


def test_lr_schedule_follows_the_clock_when_it_is_further_along():
    """optim.anneal_by_time: the decay takes the later of the step and the time fraction, and
    warm-up stays by steps."""
    assert lr_at(10, 100, 1e-3, 1e-5, 10, time_fraction=0.5) == pytest.approx(
        1e-5 + 0.5 * (1e-3 - 1e-5))
    assert lr_at(55, 100, 1e-3, 1e-5, 10, time_fraction=0.1) == lr_at(55, 100, 1e-3, 1e-5, 10)
    assert lr_at(20, 100, 1e-3, 1e-5, 10, time_fraction=1.7) == pytest.approx(1e-5)
    assert lr_at(3, 100, 1e-3, 1e-5, 10, time_fraction=0.9) == pytest.approx(4e-4)


def _fixed_loss(tr: Trainer, n: int = 3) -> float:
    """Mean loss over n fixed samples and rays (no update)."""
    tot = 0.0
    with torch.no_grad():
        for i in range(n):
            torch.manual_seed(1000 + i)
            sample = {k: (v if not isinstance(v, torch.Tensor) else v)
                      for k, v in tr.train_set[i].items()}
            uv = tr.rays_for_step(H, W)
            loss, _ = tr.step_module(sample, uv, 10 ** 6)
            tot += float(loss)
    return tot / n


def _train_miou(tr: Trainer) -> float:
    from gsnerf_ros.train.data_setup import eval_views, load_scenes
    from gsnerf_ros.train.evaluate import EvalOptions, evaluate

    views = eval_views(load_scenes(tr.cfg.data.train_root), 3, H, W, max_targets=2)
    res = evaluate(tr.model, views, EvalOptions(baseline=False, lpips=False, progress=False))
    tr.model.train()
    return res["mIoU"]


def test_short_training_lowers_loss_and_improves_miou(rooms, tmp_path):
    torch.set_num_threads(1)
    cfg = tiny_cfg(rooms, tmp_path / "run", "optim.steps=25", "log.val_every=25",
                   "log.ckpt_every=25")
    tr = Trainer(cfg)
    loss0, miou0 = _fixed_loss(tr), _train_miou(tr)
    summary = tr.fit()
    loss1, miou1 = _fixed_loss(tr), _train_miou(tr)
    assert loss1 < 0.9 * loss0, (loss0, loss1)
    assert miou1 > miou0, (miou0, miou1)
    assert summary["val_history"] and (tmp_path / "run" / "best.safetensors").exists()
    side = json.loads((tmp_path / "run" / "best.json").read_text())
    assert side["metadata"]["selected_on"] == "validation split"


def test_checkpoint_resume_is_bit_exact(rooms, tmp_path):
    torch.set_num_threads(1)
    straight = tiny_cfg(rooms, tmp_path / "a", "optim.steps=4", "log.val_every=1000",
                        "log.ckpt_every=2")
    Trainer(straight).fit()
    first = tiny_cfg(rooms, tmp_path / "b", "optim.steps=2", "log.val_every=1000",
                     "log.ckpt_every=2")
    Trainer(first).fit()
    # the resumed half reads through 2 loader workers: same samples as in-process loading
    resumed = tiny_cfg(rooms, tmp_path / "b", "optim.steps=4", "log.val_every=1000",
                       "log.ckpt_every=2", "resume=auto", "data.num_workers=2")
    tr = Trainer(resumed)
    assert tr.start_step == 2
    # the checkpoint loads back exactly
    w2 = load_file(str(tmp_path / "b" / "checkpoints" / "step_0000002.safetensors"))
    for k, v in tr.model.state_dict().items():
        assert torch.equal(v, w2[k]), k
    tr.fit()
    a = load_file(str(latest_checkpoint(tmp_path / "a" / "checkpoints")))
    b = load_file(str(latest_checkpoint(tmp_path / "b" / "checkpoints")))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after resume"
    oa = load_file(str(tmp_path / "a" / "checkpoints" / "step_0000004.optim.safetensors"))
    ob = load_file(str(tmp_path / "b" / "checkpoints" / "step_0000004.optim.safetensors"))
    assert all(torch.equal(oa[k], ob[k]) for k in oa)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, cfg_dict: dict, out: str) -> None:
    import torch.distributed as dist

    from gsnerf_ros.config import from_dict
    from gsnerf_ros.train.trainer import Trainer as T

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        tr = T(from_dict(TrainConfig, cfg_dict), rank=rank, world_size=world)
        tr.fit()
        flat = torch.cat([p.detach().reshape(-1) for p in tr.model.parameters()])
        torch.save(flat, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_ddp_two_cpu_processes_gloo(rooms, tmp_path):
    # with the lr following the clock (optim.anneal_by_time), which the ranks must share
    cfg = tiny_cfg(rooms, tmp_path / "ddp", "optim.steps=3", "log.val_every=3",
                   "log.ckpt_every=3", "optim.warmup_steps=1", "optim.time_limit_s=20",
                   "optim.anneal_by_time=true")
    mp.spawn(_ddp_worker, args=(2, _free_port(), to_dict(cfg), str(tmp_path)), nprocs=2,
             join=True)
    p0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    p1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert torch.equal(p0, p1)  # gradients were averaged: replicas stay identical
    assert (tmp_path / "ddp" / "checkpoints" / "step_0000003.safetensors").exists()


def test_cli_train_then_eval_writes_schema(rooms, tmp_path):
    from gsnerf_ros.train.cli import eval_main, train_main

    cfg = tiny_cfg(rooms, tmp_path / "cli", "optim.steps=1")
    yaml_path = tmp_path / "cfg.yaml"
    from gsnerf_ros.config import save_config
    save_config(cfg, yaml_path)
    assert train_main(["--config", str(yaml_path), "log.val_every=1", "log.ckpt_every=1"]) == 0
    ckpt = tmp_path / "cli" / "best.safetensors"
    assert ckpt.exists()
    out = tmp_path / "eval.json"
    assert eval_main(["--checkpoint", str(ckpt), "--data", str(rooms / "val"), "--json",
                      str(out), "--height", str(H), "--width", str(W), "--num-sources", "3",
                      "--max-targets", "1", "--panels", str(tmp_path / "panels"),
                      "--device", "cpu"]) == 0
    res = json.loads(out.read_text())
    for k in ("mIoU", "acc", "class_acc", "psnr", "ssim", "lpips", "depth_abs_rel",
              "depth_rmse", "n_images", "per_scene", "baseline", "lpips_reason",
              "mIoU_accumulated"):
        assert k in res, k
    assert res["n_images"] == 1 and 0 <= res["mIoU"] <= 100
    assert res["lpips"] is None or res["lpips"] >= 0
    assert out.with_suffix(".md").read_text().startswith("# gsnerf-eval")
    assert res["segmenter_on_target"]["n_images"] == 1      # the semantics' 2D reference
    assert "2D segmenter on the true target image" in out.with_suffix(".md").read_text()
    assert any((tmp_path / "panels").glob("*.png"))
    assert not math.isnan(res["baseline"]["psnr"])
    assert res["num_neighbors"] == cfg.model.cost_volume.num_neighbors
    assert res["consistency_tolerance"] == cfg.model.target_depth.consistency_tolerance > 0
    # Inference overrides of the checkpoint's settings are applied and recorded; bad ones refused.
    out2 = tmp_path / "eval_overrides.json"
    common = ["--checkpoint", str(ckpt), "--data", str(rooms / "val"), "--height", str(H),
              "--width", str(W), "--num-sources", "3", "--max-targets", "1", "--device", "cpu",
              "--no-lpips"]
    assert res["colour_views"] == cfg.model.renderer.colour_views
    assert eval_main(common + ["--json", str(out2), "--num-neighbors", "1",
                               "--consistency-tolerance", "0", "--colour-views", "2"]) == 0
    res2 = json.loads(out2.read_text())
    assert res2["num_neighbors"] == 1 and res2["consistency_tolerance"] == 0.0
    assert res2["colour_views"] == 2
    for bad in (["--num-neighbors", "0"], ["--consistency-tolerance", "-0.1"],
                ["--colour-views", "-1"]):
        with pytest.raises(SystemExit) as exc:
            eval_main(common + bad)
        assert exc.value.code == 2


def test_ablation_semantics_study_runs_all_table_a3_rows(rooms, tmp_path):
    """The Table A3 study evaluates four semantic/sampling settings of one checkpoint."""
    from gsnerf_ros.model import GSNeRF, GSNeRFConfig
    from gsnerf_ros.train.ablations import main as ablations

    from gsnerf_ros.data.replica import ReplicaScene, find_scene_dirs
    scene = ReplicaScene(find_scene_dirs(rooms / "val")[0])
    torch.manual_seed(0)
    model = GSNeRF(GSNeRFConfig.tiny(scene.num_classes), scene.class_names, scene.palette)
    ckpt = model.save_checkpoint(tmp_path / "m")
    out = tmp_path / "sem.json"
    assert ablations(["semantics", "--checkpoint", str(ckpt), "--data", str(rooms / "val"),
                      "--height", str(H), "--width", str(W), "--num-sources", "3",
                      "--max-targets", "1", "--json", str(out), "--device", "cpu"]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["setting"][0] for r in rows] == ["A", "B", "C", "f"]
    assert all(0 <= r["mIoU"] <= 100 for r in rows)


def test_finetune_config_starts_from_checkpoint_on_one_scene(rooms, tmp_path):
    """Paper B.1: init_checkpoint + data.finetune_scene trains on that scene only."""
    from gsnerf_ros.data.replica import find_scene_dirs
    from gsnerf_ros.model import GSNeRF

    torch.set_num_threads(1)
    base = tiny_cfg(rooms, tmp_path / "base")
    init = GSNeRF(base.model, Trainer(base).train_set.class_names).save_checkpoint(
        tmp_path / "init")
    scene_dir = find_scene_dirs(rooms / "val")[0]
    cfg = tiny_cfg(rooms, tmp_path / "ft", "optim.steps=1", f"init_checkpoint={init}",
                   f"data.finetune_scene={scene_dir}", "log.val_every=1")
    tr = Trainer(cfg)
    w0 = load_file(str(init))
    assert all(torch.equal(v, w0[k]) for k, v in tr.model.state_dict().items())
    assert {s.name for s in tr.train_set.scenes} == {scene_dir.name}
    assert tr.val_views and all(v.scene == scene_dir.name for v in tr.val_views)
    tr.fit()
    assert (tmp_path / "ft" / "best.safetensors").exists()


def test_init_checkpoint_takes_the_runs_options_and_refuses_other_architectures(rooms, tmp_path):
    """The run's model section governs options without parameters (semantic.label_skip here);
    a checkpoint whose weights do not fit the section is refused with a clear message."""
    from gsnerf_ros.model import GSNeRF

    torch.set_num_threads(1)
    base = tiny_cfg(rooms, tmp_path / "base")
    init = GSNeRF(base.model, Trainer(base).train_set.class_names).save_checkpoint(
        tmp_path / "init")
    cfg = tiny_cfg(rooms, tmp_path / "skip", f"init_checkpoint={init}")
    cfg.model.semantic.label_skip = True
    tr = Trainer(cfg)
    assert tr.model.config.semantic.label_skip
    w0 = load_file(str(init))
    assert all(torch.equal(v, w0[k]) for k, v in tr.model.state_dict().items())
    wide = tiny_cfg(rooms, tmp_path / "wide", f"init_checkpoint={init}")
    wide.model.renderer.d_model *= 2
    with pytest.raises(ValueError, match="another architecture"):
        Trainer(wide)


def test_time_limit_stops_with_a_checkpoint(rooms, tmp_path, monkeypatch) -> None:
    """optim.time_limit_s: the run stops early, validates and writes the checkpoint of the step
    it stopped at (a device session's budget), and the summary says how far it got."""
    import gsnerf_ros.train.trainer as trainer_mod

    run = tmp_path / "run"
    cfg = tiny_cfg(rooms, run, "optim.steps=50", "optim.time_limit_s=10", "log.val_every=1000",
                   "log.ckpt_every=1000")
    clock = iter(range(0, 100_000, 4))                      # 4 "seconds" per call
    monkeypatch.setattr(trainer_mod.time, "time", lambda: float(next(clock)))
    summary = trainer_mod.Trainer(cfg).fit()
    assert 1 <= summary["steps"] < 50
    ckpts = sorted((run / "checkpoints").glob("step_*.safetensors"))
    assert ckpts and ckpts[-1].name == f"step_{summary['steps']:07d}.safetensors"


def test_time_limit_with_anneal_by_time_ends_at_lr_min(rooms, tmp_path, monkeypatch) -> None:
    """optim.anneal_by_time: a run cut by its time limit long before optim.steps has still
    decayed its learning rate to about lr_min by the last step; without it the lr is still
    near its peak. A time limit is required."""
    import gsnerf_ros.train.trainer as trainer_mod

    lrs = {}
    for by_time in (True, False):
        clock = iter(range(0, 100_000, 1))                   # 1 "second" per call
        monkeypatch.setattr(trainer_mod.time, "time", lambda: float(next(clock)))
        cfg = tiny_cfg(rooms, tmp_path / f"run_{by_time}", "optim.steps=1000",
                       "optim.time_limit_s=12", "optim.warmup_steps=1", "optim.lr=1e-3",
                       "optim.lr_min=1e-5", f"optim.anneal_by_time={str(by_time).lower()}",
                       "log.val_every=100000", "log.ckpt_every=100000")
        summary = trainer_mod.Trainer(cfg).fit()
        assert summary["steps"] < 1000
        lrs[by_time] = summary["last"]["lr"]
    assert lrs[True] < 1e-4 < 9e-4 < lrs[False]
    with pytest.raises(ValueError, match="anneal_by_time needs optim.time_limit_s"):
        tiny_cfg(rooms, tmp_path / "bad", "optim.anneal_by_time=true")


def test_trainer_warns_when_its_threads_share_a_busy_cpu(rooms, tmp_path, monkeypatch, capsys):
    """threads > 1 beside other busy processes is the 20x slowdown of a shared CPU: the trainer
    says so on stderr and runs anyway; on an idle machine it says nothing."""
    import gsnerf_ros.device as device_mod

    cores, before = device_mod._usable_cores(), torch.get_num_threads()
    monkeypatch.setattr(device_mod.os, "getloadavg", lambda: (float(cores), 0.0, 0.0))
    Trainer(tiny_cfg(rooms, tmp_path / "busy", "threads=2"))
    assert "gsnerf-train: warning: threads=2" in capsys.readouterr().err
    monkeypatch.setattr(device_mod.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    Trainer(tiny_cfg(rooms, tmp_path / "idle", f"threads={min(2, cores)}"))
    assert "warning" not in capsys.readouterr().err
    torch.set_num_threads(before)


def test_bench_times_training_steps_of_a_config(rooms, tmp_path):
    """gsnerf-bench --train-config: seconds per step of the real trainer on the config's data;
    a missing init checkpoint is timed from fresh weights (and said so); missing data or a bad
    step count is refused with exit status 2 and nothing written."""
    from gsnerf_ros.bench.cli import main as bench
    from gsnerf_ros.config import save_config

    cfg = tiny_cfg(rooms, tmp_path / "unused", "init_checkpoint=runs/absent/step_0000001")
    yaml_path = tmp_path / "cfg.yaml"
    save_config(cfg, yaml_path)
    out = tmp_path / "steps.json"
    assert bench(["--train-config", str(yaml_path), "--train-steps", "2", "--train-warmup", "1",
                  "--train-overrides", "optim.rays_per_step=64", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["steps"] == 2 and r["rays_per_step"] == 64 and r["num_sources"] == 3
    assert 0 < r["s_per_step_min"] <= r["s_per_step"] <= r["s_per_step_max"]
    assert r["init_checkpoint_missing"] == "runs/absent/step_0000001"
    assert r["device"] == "cpu" and r["peak_rss_mib"] > 0
    assert not (tmp_path / "unused").exists()           # a temporary run folder, removed
    bad = tmp_path / "bad.json"
    assert bench(["--train-config", str(yaml_path), "--train-overrides",
                  f"data.train_root={tmp_path / 'nowhere'}", "--json", str(bad)]) == 2
    assert bench(["--train-config", str(yaml_path), "--train-steps", "0", "--json",
                  str(bad)]) == 2
    assert bench(["--train-config", str(tmp_path / "none.yaml"), "--json", str(bad)]) == 2
    # a recipe: the stage named, as the recipe resolves it (its start is missing: fresh weights)
    import yaml
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"base": {**to_dict(cfg), "init_checkpoint": ""},
                                      "stages": [{"name": "a"}, {"name": "b", "optim": {
                                          "rays_per_step": 32}}]}))
    assert bench(["--train-config", str(recipe), "--train-stage", "b", "--train-steps", "1",
                  "--train-warmup", "0", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["stage"] == "b" and r["rays_per_step"] == 32
    assert r["init_checkpoint_missing"] == str(
        tmp_path / "unused" / "a" / "checkpoints" / f"step_{cfg.optim.steps:07d}.safetensors")
    assert bench(["--train-config", str(recipe), "--json", str(bad)]) == 2   # which stage?
    assert not bad.exists()


def test_init_modules_takes_the_named_modules_and_leaves_the_rest() -> None:
    """``init_modules``: a new 2D encoder beside a checkpoint's cost volume and renderers. The
    named modules come over bit for bit, the encoder keeps its own weights, and a module that
    does not fit is refused with the key or shape that differs."""
    from gsnerf_ros.model import GSNeRF, GSNeRFConfig
    from gsnerf_ros.train.trainer import load_modules

    torch.manual_seed(0)
    src = GSNeRF(GSNeRFConfig.tiny(5))
    torch.manual_seed(1)
    dst = GSNeRF(GSNeRFConfig.tiny(5))
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    n = load_modules(dst, src.state_dict(), ["cost_volume", "volume_renderer"])
    assert n == sum(1 for k in before if k.startswith(("cost_volume.", "volume_renderer.")))
    for k, v in dst.state_dict().items():
        if k.startswith(("cost_volume.", "volume_renderer.")):
            assert torch.equal(v, src.state_dict()[k]), k
        else:
            assert torch.equal(v, before[k]), k                # encoder, semantic renderer: own
    assert any(not torch.equal(before[k], src.state_dict()[k]) for k in before
               if k.startswith("encoder."))                   # the two inits differ at all
    with pytest.raises(ValueError, match="no parameter under 'decoder'"):
        load_modules(dst, src.state_dict(), ["decoder"])
    wide = GSNeRFConfig.tiny(5)
    wide.renderer.d_model *= 2
    with pytest.raises(ValueError, match="volume_renderer"):
        load_modules(GSNeRF(wide), src.state_dict(), ["volume_renderer"])


def test_init_modules_fills_a_module_from_another_under_its_names() -> None:
    """``DST=SRC``: an own semantic stem taken from the checkpoint's backbone (which has more
    blocks than the copy), beside the plain prefix ``encoder`` that leaves the stem to it."""
    from gsnerf_ros.model import GSNeRF, GSNeRFConfig
    from gsnerf_ros.model.config import EncoderConfig
    from gsnerf_ros.train.trainer import load_modules

    def lite(stem: str) -> GSNeRFConfig:
        cfg = GSNeRFConfig.tiny(5)
        cfg.encoder = EncoderConfig(backbone="efficientnet_lite0", fpn_channels=[4, 8, 8],
                                    decoder_channels=[16, 16, 8, 8, 8], groups=4,
                                    semantic_stem=stem)
        return cfg

    torch.manual_seed(0)
    src = GSNeRF(lite("shared"))
    torch.manual_seed(1)
    dst = GSNeRF(lite("own"))
    state = src.state_dict()
    n = load_modules(dst, state, ["encoder", "encoder.semantic_stem=encoder.backbone"])
    own = dst.state_dict()
    stem = [k for k in own if k.startswith("encoder.semantic_stem.")]
    assert stem and n == sum(k.startswith("encoder.") for k in own)
    for k in stem:
        assert torch.equal(own[k], state[k.replace("semantic_stem", "backbone")]), k
    for k in own:
        if k.startswith("encoder.") and k not in stem:
            assert torch.equal(own[k], state[k]), k
    with pytest.raises(ValueError, match="other weights"):        # the stem is not in src
        load_modules(dst, state, ["encoder"])
    with pytest.raises(ValueError, match="has no"):
        load_modules(dst, state, ["encoder.semantic_stem=encoder.fpn_lateral0"])
    with pytest.raises(ValueError, match="no parameter under 'encoder.nothing'"):
        load_modules(dst, state, ["encoder.semantic_stem=encoder.nothing"])
