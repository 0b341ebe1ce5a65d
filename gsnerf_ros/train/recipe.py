"""Training recipes: one YAML file, a base config and the stages that continue it.

A recipe file (``config/recipes/*.yaml``) has two keys::

    base:                   # a TrainConfig; run_dir is the recipe's run directory
      run_dir: runs/cpu
      model: {...}
      ...
    stages:                 # in order; each is the base with these changes
      - name: stage1
        optim: {steps: 1200, stop_at: 600}
      - name: stage2
        init_from: final    # final (default) | best: which weights of the stage before
        optim: {steps: 900}

A stage's config is the base with the stage's own keys merged in (a mapping merges key by
key, any other value replaces), then the command line's ``key=value`` overrides on top. A
stage runs in ``<run_dir>/<name>``; the first stage starts from the base's
``init_checkpoint`` (empty: fresh weights), every later one from the previous stage's final
checkpoint (``checkpoints/step_N`` at the step it ended) or, with ``init_from: best``, its
``best.safetensors``. So no run path is written twice, and a stage that already finished is
found in its folder and skipped: rerunning the recipe resumes it.

On the command line ``run_dir=`` names the recipe's run directory and ``init_checkpoint=``
the weights the first *selected* stage starts from (``--stage NAME``); every other override
applies to each stage. A plain config file (no ``stages``) is one unnamed stage, as before.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gsnerf_ros.config import ConfigError, apply_overrides, from_dict, load_config, to_dict
from gsnerf_ros.train.config import OptimConfig, TrainConfig

__all__ = ["Stage", "INIT_FROM", "is_recipe", "load_stages", "planned_steps", "finished_step",
           "stage_start"]

INIT_FROM = ("final", "best")
"""Which weights of the previous stage a stage starts from."""

_STAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_RECIPE_KEYS = {"base", "stages"}
# set by the recipe itself, never by a stage: where it runs and what it starts from
_NOT_IN_STAGES = ("run_dir", "init_checkpoint", "resume")


@dataclass
class Stage:
    """One training run of a recipe (or the whole of a plain config file)."""

    name: str
    """The stage's name in the recipe; "" for a plain config file."""
    config: TrainConfig
    """The resolved config; ``run_dir`` is ``<recipe run_dir>/<name>``, ``init_checkpoint`` the
    previous stage's planned final checkpoint (or its best, or the base's / the command line's
    for the first selected stage)."""
    previous: Stage | None = None
    """The stage this one continues (None: it starts from ``init_checkpoint`` as given); when
    it runs, its start is taken from where that stage actually ended (:func:`stage_start`)."""
    init_from: str = "final"
    """Which weights of ``previous`` it starts from: ``final`` or ``best`` (:data:`INIT_FROM`)."""


def is_recipe(path: str | Path) -> bool:
    """Whether the YAML file at ``path`` is a recipe (top-level ``stages``)."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    return isinstance(data, dict) and "stages" in data


def planned_steps(optim: OptimConfig) -> int:
    """The step a run of these settings ends at unless its time limit comes first."""
    return min(optim.stop_at, optim.steps) if optim.stop_at else optim.steps


def finished_step(cfg: TrainConfig) -> int | None:
    """The step the run in ``cfg.run_dir`` finished at, or None while it has not finished.

    Finished: the trainer wrote ``summary.json`` (it does when a run ends) and the checkpoint
    of that step exists, and the run reached :func:`planned_steps` or its schedule followed the
    clock (``optim.anneal_by_time``: its time limit is its end). A run stopped early by a time
    limit alone, or by a ``stop_at`` lower than the stage's, has not finished: it resumes."""
    run = Path(cfg.run_dir)
    summary = run / "summary.json"
    if not summary.is_file():
        return None
    step = int(json.loads(summary.read_text())["steps"])
    if not (run / "checkpoints" / f"step_{step:07d}.safetensors").is_file():
        return None
    if step >= planned_steps(cfg.optim) or cfg.optim.anneal_by_time:
        return step
    return None


def stage_start(run_dir: str | Path, init_from: str, step: int) -> str:
    """The weights a stage starts from in the run folder of the stage before it, which ended
    at ``step``: ``checkpoints/step_<step>.safetensors`` or ``best.safetensors``."""
    run = Path(run_dir)
    if init_from == "best":
        return str(run / "best.safetensors")
    return str(run / "checkpoints" / f"step_{step:07d}.safetensors")


def load_stages(path: str | Path, overrides: list[str] | None = None,
                stage: str | None = None) -> list[Stage]:
    """The stages of the config file at ``path`` that ``stage`` selects (a name, ``all`` or
    None = all), resolved with the command line's ``overrides``. A plain config file gives one
    unnamed stage (``stage`` must then be None). Raises :class:`ConfigError` (a ValueError) on
    a malformed recipe, an unknown stage or a bad value, FileNotFoundError if there is no file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} not found")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    if "stages" not in data:
        if stage is not None:
            raise ConfigError(f"--stage needs a recipe (a file with base: and stages:); "
                              f"{path} is a plain config")
        return [Stage("", load_config(TrainConfig, path, overrides))]
    return _resolve_recipe(path, data, list(overrides or []), stage)


def _resolve_recipe(path: Path, data: dict[str, Any], overrides: list[str],
                    select: str | None) -> list[Stage]:
    unknown = set(data) - _RECIPE_KEYS
    if unknown or not isinstance(data.get("base"), dict):
        raise ConfigError(f"{path}: a recipe has exactly the keys base (a mapping) and stages "
                          f"(a list){f'; unknown: {sorted(unknown)}' if unknown else ''}")
    entries = data["stages"]
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: stages must be a non-empty list")
    names: list[str] = []
    for i, entry in enumerate(entries):
        where = f"{path}: stages[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ConfigError(f"{where}: each stage is a mapping with a name")
        if not _STAGE_NAME.match(entry["name"]) or entry["name"] in names:
            raise ConfigError(f"{where}: name {entry['name']!r} must be unique and a plain "
                              f"folder name (letters, digits, _ . -)")
        bad = [k for k in _NOT_IN_STAGES if k in entry]
        if bad:
            raise ConfigError(f"{where} ({entry['name']}): {bad} are set by the recipe (the "
                              f"stage runs in <run_dir>/{entry['name']} and starts from the "
                              f"previous stage's checkpoint), not by a stage")
        if entry.get("init_from", "final") not in INIT_FROM:
            raise ConfigError(f"{where} ({entry['name']}): init_from must be one of {INIT_FROM}")
        if i == 0 and "init_from" in entry:
            raise ConfigError(f"{where} ({entry['name']}): the first stage has no stage before "
                              f"it; give the base an init_checkpoint instead")
        names.append(entry["name"])
    if select not in (None, "all") and select not in names:
        raise ConfigError(f"{path}: no stage {select!r}; its stages are {names} (or all)")

    # the command line: run_dir and init_checkpoint belong to the recipe, the rest to each stage
    recipe_args: dict[str, Any] = {}
    stage_args: list[str] = []
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        if key in ("run_dir", "init_checkpoint"):
            apply_overrides(recipe_args, [item])
        elif key == "resume":
            raise ConfigError("resume= does not apply to a recipe: each stage resumes from its "
                              "own run folder by itself")
        else:
            stage_args.append(item)
    base = to_dict(TrainConfig())
    _merge(base, copy.deepcopy(data["base"]))
    run_dir = Path(str(recipe_args.get("run_dir", base["run_dir"])))
    first_init = str(recipe_args.get("init_checkpoint", base["init_checkpoint"]) or "")

    stages: list[Stage] = []
    previous: Stage | None = None
    selected = False
    for i, entry in enumerate(entries):
        name = entry["name"]
        delta = {k: copy.deepcopy(v) for k, v in entry.items() if k not in ("name", "init_from")}
        merged = copy.deepcopy(base)
        _merge(merged, delta)
        apply_overrides(merged, stage_args)
        merged["run_dir"] = str(run_dir / name)
        init_from = entry.get("init_from", "final")
        continues: Stage | None = None
        chosen = select in (None, "all", name)
        if previous is None or (chosen and not selected and "init_checkpoint" in recipe_args):
            merged["init_checkpoint"] = first_init      # the base's, or the command line's
        else:
            continues = previous
            merged["init_checkpoint"] = stage_start(
                previous.config.run_dir, init_from, planned_steps(previous.config.optim))
        try:
            cfg = from_dict(TrainConfig, merged)
        except ValueError as exc:
            raise ConfigError(f"{path}: stage {name}: {exc}") from exc
        current = Stage(name, cfg, continues, init_from)
        if chosen:
            stages.append(current)
            selected = True
        previous = current
    return stages


def _merge(base: dict[str, Any], new: dict[str, Any]) -> None:
    """Merge ``new`` into ``base`` in place: mappings key by key, other values replace."""
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v
