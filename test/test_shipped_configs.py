"""The shipped training configs: every one parses, and the CPU recipe's stages chain into the
shipped checkpoint (models/gsnerf_cpu), so the recipe in its sidecar can be rerun as written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gsnerf_ros.config import load_config, to_dict
from gsnerf_ros.train.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
TRAIN_CONFIGS = sorted((ROOT / "config").glob("train*.yaml"))
SHIPPED = ROOT / "models" / "gsnerf_cpu.json"


def _recipe() -> list[Path]:
    """The stage configs the shipped sidecar names, in order."""
    recipe = json.loads(SHIPPED.read_text())["metadata"]["recipe"]
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
    shipped = json.loads(SHIPPED.read_text())
    # the last stage trains exactly the architecture that ships
    assert to_dict(cfgs[-1].model) == shipped["model_config"]
    assert shipped["metadata"]["stages"][str(len(stages))]["steps"] == cfgs[-1].optim.steps
    assert shipped["metadata"]["step"] == cfgs[-1].optim.steps
