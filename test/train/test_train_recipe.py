"""Training recipes (gsnerf_ros.train.recipe, ``gsnerf-train --config RECIPE [--stage NAME]``):
a stage is the base with its own changes, runs in <run_dir>/<name> from the previous stage's
final (or best) checkpoint, and a rerun skips what finished and resumes what did not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from gsnerf_ros.config import ConfigError, to_dict
from gsnerf_ros.train.recipe import finished_step, load_stages
from helpers.rooms import SMALL_ROOMS_HW

H, W = SMALL_ROOMS_HW


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _recipe(**stages_and_base) -> dict:
    base = {"run_dir": "runs/r", "seed": 5, "optim": {"steps": 10, "lr": 1.0e-3},
            "data": {"height": 60, "width": 80}}
    base.update(stages_and_base.pop("base", {}))
    return {"base": base, "stages": stages_and_base.pop("stages", [
        {"name": "one", "optim": {"steps": 4, "stop_at": 3}},
        {"name": "two", "data": {"height": 120}, "optim": {"lr": 5.0e-4}},
        {"name": "three", "init_from": "best", "seed": 9}])}


def test_a_stage_is_the_base_with_its_changes_chained_by_run_folder(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.yaml", _recipe())
    one, two, three = load_stages(path)
    assert [s.name for s in (one, two, three)] == ["one", "two", "three"]
    # the base with each stage's own keys; a later stage does not inherit an earlier one's
    assert (one.config.optim.steps, one.config.optim.stop_at, one.config.optim.lr) == (4, 3, 1e-3)
    assert (two.config.optim.steps, two.config.optim.stop_at, two.config.optim.lr) == (10, 0, 5e-4)
    assert (two.config.data.height, two.config.data.width) == (120, 80)
    assert (three.config.data.height, three.config.seed, two.config.seed) == (60, 9, 5)
    # run folders and starts derive from the recipe's run_dir: no run path written twice
    assert [s.config.run_dir for s in (one, two, three)] == ["runs/r/one", "runs/r/two",
                                                             "runs/r/three"]
    assert one.config.init_checkpoint == "" and one.previous is None
    assert two.config.init_checkpoint == "runs/r/one/checkpoints/step_0000003.safetensors"
    assert two.previous is one and three.previous is two
    assert three.config.init_checkpoint == "runs/r/two/best.safetensors"


def test_command_line_names_the_run_folder_the_first_start_and_each_stages_values(
        tmp_path: Path) -> None:
    path = _write(tmp_path / "r.yaml", _recipe())
    stages = load_stages(path, ["run_dir=out/x", "optim.lr=0.01", "init_checkpoint=w.safetensors"])
    assert [s.config.run_dir for s in stages] == ["out/x/one", "out/x/two", "out/x/three"]
    assert all(s.config.optim.lr == 0.01 for s in stages)          # over the stage's own value
    assert stages[0].config.init_checkpoint == "w.safetensors"
    assert stages[1].config.init_checkpoint.startswith("out/x/one/checkpoints/")
    # --stage NAME: that stage alone, from the stage before it unless init_checkpoint= is given
    (two,) = load_stages(path, ["run_dir=out/x"], "two")
    assert two.config.init_checkpoint == "out/x/one/checkpoints/step_0000003.safetensors"
    assert two.previous is not None and two.previous.config.run_dir == "out/x/one"
    (two,) = load_stages(path, ["init_checkpoint=w"], "two")
    assert two.config.init_checkpoint == "w" and two.previous is None
    assert len(load_stages(path, [], "all")) == 3


def test_a_plain_config_file_is_one_unnamed_stage(tmp_path: Path) -> None:
    path = _write(tmp_path / "plain.yaml", {"run_dir": "runs/p", "optim": {"steps": 7}})
    (stage,) = load_stages(path, ["seed=3"])
    assert stage.name == "" and stage.previous is None
    assert (stage.config.run_dir, stage.config.optim.steps, stage.config.seed) == ("runs/p", 7, 3)
    with pytest.raises(ConfigError, match="--stage needs a recipe"):
        load_stages(path, [], "one")


@pytest.mark.parametrize("change, message", [
    ({"extra": 1}, "exactly the keys base"),
    ({"stages": []}, "non-empty list"),
    ({"stages": [{"optim": {"steps": 2}}]}, "with a name"),
    ({"stages": [{"name": "a"}, {"name": "a"}]}, "must be unique"),
    ({"stages": [{"name": "a/b"}]}, "plain"),
    ({"stages": [{"name": "a"}, {"name": "b", "run_dir": "elsewhere"}]}, "set by the recipe"),
    ({"stages": [{"name": "a"}, {"name": "b", "init_checkpoint": "w"}]}, "set by the recipe"),
    ({"stages": [{"name": "a", "init_from": "best"}]}, "first stage"),
    ({"stages": [{"name": "a"}, {"name": "b", "init_from": "last"}]}, "init_from"),
    ({"stages": [{"name": "a", "optim": {"stepz": 2}}]}, "stage a: .*unknown keys"),
    ({"stages": [{"name": "a", "optim": {"lr": -1.0}}]}, "stage a: .*lr"),
])
def test_malformed_recipes_are_refused_with_the_reason(tmp_path: Path, change: dict,
                                                       message: str) -> None:
    data = _recipe()
    data.update(change)
    with pytest.raises(ConfigError, match=message):
        load_stages(_write(tmp_path / "bad.yaml", data))


def test_unknown_stage_and_resume_are_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.yaml", _recipe())
    with pytest.raises(ConfigError, match=r"no stage 'four'; its stages are \['one', 'two'"):
        load_stages(path, [], "four")
    with pytest.raises(ConfigError, match="resumes from its own run folder"):
        load_stages(path, ["resume=auto"])


def _tiny_recipe(rooms: Path, run_dir: Path) -> dict:
    from gsnerf_ros.data.replica import ReplicaScene, find_scene_dirs
    from gsnerf_ros.model import GSNeRFConfig

    classes = ReplicaScene(find_scene_dirs(rooms / "train")[0]).num_classes
    base = {"run_dir": str(run_dir), "seed": 7, "device": "cpu", "threads": 1,
            "model": to_dict(GSNeRFConfig.tiny(classes)),
            "data": {"train_root": str(rooms / "train"), "val_root": str(rooms / "val"),
                     "height": H, "width": W, "num_sources": 3, "val_images_per_scene": 1},
            "optim": {"steps": 2, "warmup_steps": 1, "rays_per_step": 64, "lr": 3.0e-3},
            "log": {"val_every": 2, "ckpt_every": 1, "tensorboard": False, "progress": False,
                    "panels": 0}}
    return {"base": base, "stages": [
        {"name": "first"},
        {"name": "second", "freeze": ["encoder"], "optim": {"lr": 1.0e-3}}]}


def test_recipe_runs_in_order_skips_what_finished_and_resumes_what_stopped(
        rooms: Path, tmp_path: Path, capsys) -> None:
    from safetensors.torch import load_file

    from gsnerf_ros.train.cli import train_main

    run = tmp_path / "run"
    path = _write(tmp_path / "tiny.yaml", _tiny_recipe(rooms, run))
    # the second stage alone cannot start before the first has finished: refused, nothing made
    with pytest.raises(SystemExit) as exc:
        train_main(["--config", str(path), "--stage", "second"])
    assert exc.value.code == 2 and "first, which has not finished" in capsys.readouterr().err
    assert not (run / "second").exists()
    # a first stage cut short (stop_at below its end) has not finished ...
    assert train_main(["--config", str(path), "--stage", "first", "optim.stop_at=1"]) == 0
    first_cfg = load_stages(path, [], "first")[0].config
    assert finished_step(first_cfg) is None
    assert json.loads((run / "first" / "summary.json").read_text())["steps"] == 1
    capsys.readouterr()
    # ... so the whole recipe resumes it (from its step 1) and then runs the second stage
    assert train_main(["--config", str(path)]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert [(x["stage"], x["steps"]) for x in lines] == [("first", 2), ("second", 2)]
    assert finished_step(first_cfg) == 2
    saved = yaml.safe_load((run / "second" / "config.yaml").read_text())
    assert saved["init_checkpoint"] == str(run / "first" / "checkpoints" /
                                           "step_0000002.safetensors")
    start = load_file(str(run / "first" / "checkpoints" / "step_0000002.safetensors"))
    end = load_file(str(run / "second" / "checkpoints" / "step_0000002.safetensors"))
    enc = [k for k in start if k.startswith("encoder.")]
    assert enc and all((start[k] == end[k]).all() for k in enc)   # from stage 1's final step
    # a rerun finds both finished and trains nothing
    stamps = {p: p.stat().st_mtime_ns for p in run.rglob("*.safetensors")}
    assert train_main(["--config", str(path)]) == 0
    captured = capsys.readouterr()
    assert "stage first finished at step 2" in captured.err
    assert "stage second finished at step 2" in captured.err and "{" not in captured.out
    assert stamps == {p: p.stat().st_mtime_ns for p in run.rglob("*.safetensors")}
    # --print-config: the resolved stage, a plain config that gsnerf-train reads as it is
    assert train_main(["--config", str(path), "--stage", "second", "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["run_dir"] == str(run / "second") and printed["freeze"] == ["encoder"]
