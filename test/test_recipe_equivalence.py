"""Temporary: every stage of config/recipes/*.yaml resolves to exactly the config of the stage
file it replaces (config/train_cpu*.yaml, config/train_procedural*.yaml), the run paths
between stages aside, which the recipe derives (<run_dir>/<stage>, the previous stage's final
or best checkpoint at the same step)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gsnerf_ros.config import load_config, to_dict
from gsnerf_ros.train.config import TrainConfig
from gsnerf_ros.train.recipe import load_stages

ROOT = Path(__file__).resolve().parents[1]
OLD = {
    "cpu": [("train_cpu.yaml", ["optim.stop_at=600"]),   # the command its header gave
            *[(f"train_cpu_stage{i}.yaml", []) for i in range(2, 8)]],
    "procedural": [("train_procedural.yaml", []), ("train_procedural_stage2.yaml", []),
                   ("train_procedural_stage3.yaml", [])],
}


@pytest.mark.parametrize("recipe", sorted(OLD))
def test_recipe_stages_equal_the_old_stage_files(recipe: str) -> None:
    stages = load_stages(ROOT / "config" / "recipes" / f"{recipe}.yaml")
    old = [load_config(TrainConfig, ROOT / "config" / f, o) for f, o in OLD[recipe]]
    assert len(stages) == len(old)
    new_dir = {o.run_dir: s.config.run_dir for o, s in zip(old, stages)}
    for o, s in zip(old, stages):
        mine, theirs = to_dict(s.config), to_dict(o)
        assert mine.pop("run_dir") == f"runs/{recipe}/{s.name}"
        theirs.pop("run_dir")
        init_new, init_old = mine.pop("init_checkpoint"), theirs.pop("init_checkpoint")
        assert mine == theirs, s.name
        if not init_old:
            assert not init_new, s.name
            continue
        prev, rest = init_old.split("/checkpoints/") if "/checkpoints/" in init_old else \
            init_old.rsplit("/", 1)
        expected = f"{new_dir[prev]}/{'checkpoints/' if '/checkpoints/' in init_old else ''}{rest}"
        assert init_new.removesuffix(".safetensors") == expected.removesuffix(".safetensors")
