"""Training checkpoints without pickle: weights, optimiser state and trainer state.

A checkpoint ``<dir>/step_0001000`` is four files:
- ``step_0001000.safetensors`` + ``step_0001000.json``: the model (``model.save_checkpoint``:
  weights + config/class names/palette sidecar), loadable by ``GSNeRF.from_checkpoint``;
- ``step_0001000.optim.safetensors``: every optimiser state tensor (``state/<i>/<name>``);
- ``step_0001000.state.json``: step, best validation score, optimiser param-group settings,
  the training config.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

__all__ = ["optimizer_to_tensors", "optimizer_from_tensors", "save_training_checkpoint",
           "load_training_state", "latest_checkpoint"]


def optimizer_to_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list]:
    """Split ``opt.state_dict()`` into safetensors-ready tensors and JSON param groups."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for pid, st in sd["state"].items():
        for name, val in st.items():
            t = val if isinstance(val, torch.Tensor) else torch.tensor(val)
            tensors[f"state/{pid}/{name}"] = t.detach().cpu().contiguous()
    return tensors, sd["param_groups"]


def optimizer_from_tensors(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                           param_groups: list) -> None:
    """Inverse of :func:`optimizer_to_tensors` (loads into ``opt`` in place)."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, t in tensors.items():
        _, pid, name = key.split("/", 2)
        state.setdefault(int(pid), {})[name] = t
    opt.load_state_dict({"state": state, "param_groups": param_groups})


def save_training_checkpoint(model: Any, opt: torch.optim.Optimizer, path_stem: str | Path,
                             step: int, extra: dict[str, Any]) -> Path:
    """Write the four files of a checkpoint; returns the model ``.safetensors`` path."""
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    weights = stem.with_suffix(".safetensors")
    model.save_checkpoint(weights, metadata={"step": step, **extra.get("metadata", {})})
    tensors, groups = optimizer_to_tensors(opt)
    save_file(tensors, str(stem.with_suffix(".optim.safetensors")))
    state = {"step": step, "param_groups": groups,
             **{k: v for k, v in extra.items() if k != "metadata"}}
    stem.with_suffix(".state.json").write_text(json.dumps(state, indent=1))
    return weights


def load_training_state(weights_path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Optimiser tensors and the state dict of the checkpoint whose weights are given."""
    w = Path(weights_path)
    stem = w.with_suffix("")
    optim_file = stem.with_suffix(".optim.safetensors")
    state_file = stem.with_suffix(".state.json")
    if not optim_file.exists() or not state_file.exists():
        raise FileNotFoundError(f"{w} is not a training checkpoint: {optim_file.name} or "
                                f"{state_file.name} is missing (use init_checkpoint= to start "
                                f"from weights only)")
    return load_file(str(optim_file)), json.loads(state_file.read_text())


def latest_checkpoint(ckpt_dir: str | Path) -> Path | None:
    """The ``step_*.safetensors`` with the highest step in ``ckpt_dir`` (None if none)."""
    d = Path(ckpt_dir)
    if not d.is_dir():
        return None
    cands = [p for p in d.glob("step_*.safetensors") if not p.name.endswith(".optim.safetensors")
             and p.with_suffix("").with_suffix(".state.json").exists()]
    return max(cands, key=lambda p: int(p.name.split("_")[1].split(".")[0]), default=None)
