"""The shipped training configs: every one parses, and the CPU recipe's stages chain into the
shipped checkpoint (models/gsnerf_cpu), so the recipe in its sidecar can be rerun as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from gsnerf_ros.config import load_config, to_dict
from gsnerf_ros.train.config import TrainConfig
from helpers.rooms import SMALL_ROOMS_HW
from helpers.shipped import shipped_sidecar, with_shipped_inference

ROOT = Path(__file__).resolve().parents[1]
TRAIN_CONFIGS = sorted((ROOT / "config").glob("train*.yaml"))


def _recipe() -> list[Path]:
    """The stage configs the shipped sidecar names, in order."""
    recipe = shipped_sidecar()["metadata"]["recipe"]
    return [ROOT / re.match(r"(config/\S+\.yaml)", line).group(1) for line in recipe]


@pytest.mark.parametrize("path", TRAIN_CONFIGS, ids=lambda p: p.name)
def test_every_training_config_parses(path: Path) -> None:
    cfg = load_config(TrainConfig, path)
    assert cfg.optim.steps > 0 and cfg.run_dir


def test_cpu_recipe_stages_chain_into_the_shipped_checkpoint() -> None:
    stages = _recipe()
    assert len(stages) >= 2 and all(p.exists() for p in stages), stages
    cfgs = [load_config(TrainConfig, p) for p in stages]
    assert not cfgs[0].init_checkpoint, "stage 1 starts from fresh weights"
    for prev, cur, path in zip(cfgs, cfgs[1:], stages[1:]):
        # each stage starts from a checkpoint of the stage before it
        assert cur.init_checkpoint.startswith(prev.run_dir.rstrip("/") + "/"), path.name
        assert cur.run_dir != prev.run_dir, path.name
    shipped = shipped_sidecar()
    # the last stage trains exactly the architecture that ships, with the inference settings
    # the sidecar lists (metadata.inference, chosen on validation after training) on top
    assert shipped["model_config"]["renderer"]["colour_views"] == 2
    assert cfgs[-1].model.renderer.colour_views == 0
    assert with_shipped_inference(to_dict(cfgs[-1].model)) == shipped["model_config"]
    assert shipped["metadata"]["stages"][str(len(stages))]["steps"] == cfgs[-1].optim.steps
    assert shipped["metadata"]["step"] == cfgs[-1].optim.steps


def test_renderer_stage_of_the_recipe_leaves_the_geo_reasoner_as_it_was(
        rooms: Path, tmp_path: Path) -> None:
    """The recipe's last stage (config/train_cpu_stage7.yaml) trains the colour and semantic
    renderers only: after a step from the shipped weights the encoder and cost volume (hence
    the depth, D_T, the 2D labels and the baseline built on them) are bit-identical, and the
    renderers have moved. Two steps on the small procedural rooms of conftest, as written
    otherwise."""
    from safetensors.torch import load_file

    from gsnerf_ros.train.cli import train_main

    stage = ROOT / "config" / "train_cpu_stage7.yaml"
    assert _recipe()[-1] == stage
    h, w = SMALL_ROOMS_HW
    ckpt = ROOT / "models" / "gsnerf_cpu.safetensors"
    assert train_main(["--config", str(stage), f"init_checkpoint={ckpt}",
                       f"data.train_root={rooms / 'train'}",
                       f"data.val_root={rooms / 'val'}", f"run_dir={tmp_path / 'run'}",
                       f"data.height={h}", f"data.width={w}", "data.num_sources=4",
                       "data.val_images_per_scene=1", "optim.steps=2", "optim.warmup_steps=1",
                       "optim.rays_per_step=64", "log.val_every=2", "log.ckpt_every=2",
                       "log.tensorboard=false", "log.progress=false", "log.panels=0",
                       "device=cpu", "threads=1"]) == 0
    before = load_file(str(ckpt))
    after = load_file(str(tmp_path / "run" / "checkpoints" / "step_0000002.safetensors"))
    frozen = [k for k in before if k.startswith(("encoder.", "cost_volume."))]
    trained = [k for k in before if k.startswith(("volume_renderer.", "semantic_renderer."))]
    assert frozen and trained and len(frozen) + len(trained) == len(before)
    assert all(torch.equal(before[k], after[k]) for k in frozen)
    for module in ("volume_renderer.", "semantic_renderer."):
        assert any(not torch.equal(before[k], after[k]) for k in trained if k.startswith(module))
