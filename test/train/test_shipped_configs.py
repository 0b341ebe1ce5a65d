"""The shipped training configs: every plain config and every recipe stage resolves, and the
CPU recipe's stages chain into the shipped checkpoint (models/gsnerf_cpu), so the recipe in its
sidecar can be rerun as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from gsnerf_ros.config import to_dict
from gsnerf_ros.train.recipe import load_stages
from gsnerf_ros.train.segmenter_objective import GEOMETRY_PATH
from helpers.rooms import SMALL_ROOMS_HW
from helpers.shipped import shipped_sidecar, with_shipped_inference

ROOT = Path(__file__).resolve().parents[2]
TRAIN_CONFIGS = sorted((ROOT / "config").glob("train*.yaml"))
RECIPES = sorted((ROOT / "config" / "recipes").glob("*.yaml"))
CPU_RECIPE = ROOT / "config" / "recipes" / "cpu.yaml"


def _recipe() -> list[tuple[Path, str]]:
    """The (recipe file, stage) pairs the shipped sidecar names, in order."""
    recipe = shipped_sidecar()["metadata"]["recipe"]
    return [(ROOT / m.group(1), m.group(2)) for m in
            (re.match(r"(config/\S+\.yaml) --stage (\S+) ", line) for line in recipe)]


@pytest.mark.parametrize("path", TRAIN_CONFIGS + RECIPES, ids=lambda p: p.name)
def test_every_training_config_and_recipe_stage_resolves(path: Path) -> None:
    stages = load_stages(path)
    assert stages and all(s.config.optim.steps > 0 and s.config.run_dir for s in stages)
    if path.parent.name == "recipes":
        assert all(s.name and s.config.run_dir.endswith("/" + s.name) for s in stages)


def test_cpu_recipe_stages_chain_into_the_shipped_checkpoint() -> None:
    named = _recipe()
    assert {path for path, _ in named} == {CPU_RECIPE}
    stages = load_stages(CPU_RECIPE)
    assert [name for _, name in named] == [s.name for s in stages] == [
        f"stage{i}" for i in range(1, 8)]
    assert not stages[0].config.init_checkpoint, "stage 1 starts from fresh weights"
    meta = shipped_sidecar()["metadata"]
    ran = [meta["stages"][str(i)]["steps"] for i in range(1, len(stages) + 1)]
    for stage, steps in zip(stages, ran):   # each stage ends at the step the sidecar lists
        assert (stage.config.optim.stop_at or stage.config.optim.steps) == steps, stage.name
    for prev, cur, steps in zip(stages, stages[1:], ran):
        # each stage starts from the final checkpoint of the stage before it
        assert cur.previous is prev and cur.init_from == "final", cur.name
        assert cur.config.init_checkpoint == (f"{prev.config.run_dir}/checkpoints/"
                                              f"step_{steps:07d}.safetensors"), cur.name
    shipped = shipped_sidecar()
    last = stages[-1].config
    # the last stage trains exactly the architecture that ships, with the inference settings
    # the sidecar lists (metadata.inference, chosen on validation after training) on top
    assert shipped["model_config"]["renderer"]["colour_views"] == 2
    assert last.model.renderer.colour_views == 0
    assert with_shipped_inference(to_dict(last.model)) == shipped["model_config"]
    assert meta["step"] == last.optim.steps == 400
    assert set(last.freeze) == {"encoder", "cost_volume"}
    assert (last.data.height, last.data.width) == (120, 160)


def test_renderer_stage_of_the_recipe_leaves_the_geo_reasoner_as_it_was(
        rooms: Path, tmp_path: Path) -> None:
    """The recipe's last stage (config/recipes/cpu.yaml, stage7) trains the colour and semantic
    renderers only: after a step from the shipped weights the encoder and cost volume (hence
    the depth, D_T, the 2D labels and the baseline built on them) are bit-identical, and the
    renderers have moved. Two steps on the small procedural rooms of conftest, as written
    otherwise."""
    from safetensors.torch import load_file

    from gsnerf_ros.train.cli import train_main

    assert _recipe()[-1] == (CPU_RECIPE, "stage7")
    h, w = SMALL_ROOMS_HW
    ckpt = ROOT / "models" / "gsnerf_cpu.safetensors"
    assert train_main(["--config", str(CPU_RECIPE), "--stage", "stage7", f"init_checkpoint={ckpt}",
                       f"data.train_root={rooms / 'train'}",
                       f"data.val_root={rooms / 'val'}", f"run_dir={tmp_path / 'run'}",
                       f"data.height={h}", f"data.width={w}", "data.num_sources=4",
                       "data.val_images_per_scene=1", "optim.steps=2", "optim.warmup_steps=1",
                       "optim.rays_per_step=64", "log.val_every=2", "log.ckpt_every=2",
                       "log.tensorboard=false", "log.progress=false", "log.panels=0",
                       "device=cpu", "threads=1"]) == 0
    before = load_file(str(ckpt))
    after = load_file(str(tmp_path / "run" / "stage7" / "checkpoints" /
                          "step_0000002.safetensors"))
    frozen = [k for k in before if k.startswith(("encoder.", "cost_volume."))]
    trained = [k for k in before if k.startswith(("volume_renderer.", "semantic_renderer."))]
    assert frozen and trained and len(frozen) + len(trained) == len(before)
    assert all(torch.equal(before[k], after[k]) for k in frozen)
    for module in ("volume_renderer.", "semantic_renderer."):
        assert any(not torch.equal(before[k], after[k]) for k in trained if k.startswith(module))


PRETRAINED_RECIPE = ROOT / "config" / "recipes" / "cpu_pretrained.yaml"
GEOMETRY_MODULES = {*GEOMETRY_PATH, "cost_volume", "volume_renderer", "semantic_renderer"}
"""The encoder's geometry path (train/segmenter_objective.py), the cost volume and both
renderers: what a stage that trains only the 2D segmenter copies in and freezes."""


PRIOR_MODULES = {"encoder", "cost_volume", "volume_renderer", "semantic_renderer",
                 "-encoder.depth_head"}
"""What the ``depth_prior`` stage copies in and freezes: everything but the new head."""


def test_pretrained_recipe_stages_chain_into_gsnerf_lite0() -> None:
    """models/gsnerf_lite0 is the last stage of config/recipes/cpu_pretrained.yaml: the stages
    its sidecar lists, in order, each from the final checkpoint of the one before, the first
    from gsnerf_cpu's cost volume and renderers; the architecture trained is the one that
    ships, with the sidecar's inference settings on top."""
    side = shipped_sidecar("gsnerf_lite0")
    meta = side["metadata"]
    named = [(ROOT / m.group(1), m.group(2)) for m in
             (re.match(r"(config/\S+\.yaml) --stage (\S+)", line) for line in meta["recipe"])]
    stages = load_stages(PRETRAINED_RECIPE)
    assert named == [(PRETRAINED_RECIPE, s.name) for s in stages]
    first = stages[0].config
    assert first.init_checkpoint == "models/gsnerf_cpu" and set(first.init_modules) == {
        "cost_volume", "volume_renderer", "semantic_renderer"}
    for prev, cur in zip(stages, stages[1:]):
        steps = meta["stages"][prev.name]["steps"]
        assert cur.previous is prev and cur.init_from == "final"
        assert cur.config.init_checkpoint == (f"{prev.config.run_dir}/checkpoints/"
                                              f"step_{steps:07d}.safetensors"), cur.name
        new_head = (cur.config.model.encoder.depth_prior
                    and not prev.config.model.encoder.depth_prior)
        if new_head:
            # a new module, the single-view depth head: every other weight comes over and stays
            # frozen, and the head alone trains
            assert cur.config.objective == "depth_prior", cur.name
            assert set(cur.config.init_modules) == set(cur.config.freeze) == PRIOR_MODULES
        elif cur.config.model.encoder != prev.config.model.encoder:
            # the change of architecture (an own semantic path under an FPN decoder): the
            # geometry's weights come over and stay frozen; the semantic path starts from the
            # ImageNet weights
            assert cur.config.model.encoder.pretrained, cur.name
            assert set(cur.config.init_modules) == GEOMETRY_MODULES, cur.name
            assert set(cur.config.freeze) == GEOMETRY_MODULES, cur.name
        else:
            assert not cur.config.init_modules, cur.name
    assert [s.config.objective for s in stages].count("segmenter") == 1
    assert [s.config.objective for s in stages].count("depth_prior") == 1
    last = stages[-1].config
    assert meta["step"] == meta["stages"][stages[-1].name]["steps"]
    assert with_shipped_inference(to_dict(last.model), "gsnerf_lite0") == side["model_config"]
    assert side["model_config"]["encoder"]["backbone"] == "efficientnet_lite0"
