"""Checkpoints: safetensors weights + a JSON sidecar (never pickle).

``<stem>.safetensors`` holds the state dict; ``<stem>.json`` holds ``format``, ``model_config``
(:func:`gsnerf_ros.config.to_dict` of the :class:`GSNeRFConfig`), ``class_names``, ``palette``
(uint8 [C, 3] as lists), ``num_parameters`` and free ``metadata`` (training data, metrics,
``metadata.inference``: the inference settings chosen for the weights, see
:class:`gsnerf_ros.model.inference.InferenceConfig`).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gsnerf_ros.config import from_dict, to_dict
from gsnerf_ros.model.config import GSNeRFConfig
from gsnerf_ros.model.inference import InferenceConfig, apply_inference

if TYPE_CHECKING:
    import torch

    from gsnerf_ros.model.gsnerf import GSNeRF

__all__ = ["CHECKPOINT_FORMAT", "LEGACY_COST_VOLUME", "checkpoint_paths", "read_sidecar",
           "sidecar_config", "sidecar_inference", "save_checkpoint", "load_checkpoint"]

CHECKPOINT_FORMAT = "gsnerf_ros/2"
LEGACY_COST_VOLUME: dict[str, dict[str, Any]] = {
    "gsnerf_ros/1": {"spacing": "linear", "correlation": "dot", "photometric": False}}
"""Cost-volume options that checkpoints of an older format were trained with, where their sidecar
predates the option (format 1: linear planes, dot-product correlation, no photometric cost)."""


def checkpoint_paths(path: str | Path) -> tuple[Path, Path]:
    """Weights and sidecar paths of a checkpoint given by either file's path or the stem."""
    p = Path(path)
    base = p.with_suffix("") if p.suffix in (".safetensors", ".json") else p
    return base.with_name(base.name + ".safetensors"), base.with_name(base.name + ".json")


def read_sidecar(path: str | Path) -> dict[str, Any]:
    """The sidecar of a checkpoint (both files must exist; it must have ``model_config``)."""
    wpath, jpath = checkpoint_paths(path)
    if not wpath.is_file() or not jpath.is_file():
        raise FileNotFoundError(f"checkpoint needs both {wpath} and {jpath}")
    side = json.loads(jpath.read_text())
    if "model_config" not in side:
        raise ValueError(f"{jpath} has no 'model_config'; not a gsnerf_ros checkpoint")
    return side


def sidecar_config(side: dict[str, Any]) -> GSNeRFConfig:
    """The :class:`GSNeRFConfig` a sidecar stores, with the options of its format where the
    sidecar predates them (:data:`LEGACY_COST_VOLUME`)."""
    cfg_dict = side["model_config"]
    legacy = LEGACY_COST_VOLUME.get(side.get("format", CHECKPOINT_FORMAT), {})
    if legacy:
        cv = dict(cfg_dict.get("cost_volume", {}))
        cfg_dict = {**cfg_dict, "cost_volume": {**legacy, **cv}}
    return from_dict(GSNeRFConfig, cfg_dict)


def sidecar_inference(side: dict[str, Any]) -> InferenceConfig:
    """The inference settings a sidecar lists in ``metadata.inference`` (chosen for the weights
    after training; an empty :class:`InferenceConfig` where there are none)."""
    return InferenceConfig.from_sidecar((side.get("metadata") or {}).get("inference") or {})


def save_checkpoint(model: "GSNeRF", path: str | Path,
                    metadata: dict[str, Any] | None = None) -> Path:
    """Write ``<path>.safetensors`` (weights) and ``<path>.json`` (model config, class names,
    palette, free ``metadata``). Returns the weights path."""
    from safetensors.torch import save_file

    wpath, jpath = checkpoint_paths(path)
    wpath.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(wpath), metadata={"format": CHECKPOINT_FORMAT})
    sidecar = {"format": CHECKPOINT_FORMAT, "model_config": to_dict(model.config),
               "class_names": model.class_names, "palette": model.palette.tolist(),
               "num_parameters": model.num_parameters(), "metadata": metadata or {}}
    jpath.write_text(json.dumps(sidecar, indent=2))
    return wpath


def load_checkpoint(cls: type["GSNeRF"], path: str | Path,
                    device: "str | torch.device" = "cpu") -> "GSNeRF":
    """A ``cls`` model with the checkpoint's config, classes, palette and weights (strict), in
    eval mode on ``device``, with ``.metadata`` from the sidecar. The sidecar's
    ``metadata.inference`` settings (:func:`sidecar_inference`) are applied to the config, so the
    model renders with them wherever it is loaded; ``.inference`` keeps them (with the depth
    range ``near_far_m`` they were chosen at, which the caller passes to the render calls)."""
    from safetensors.torch import load_file

    side = read_sidecar(path)
    inference = sidecar_inference(side)
    config = apply_inference(sidecar_config(side), inference)
    # The checkpoint carries every weight: build without reading the pretrained backbone's
    # package weights (they would be overwritten), then record the config as trained.
    built = replace(config, encoder=replace(config.encoder, pretrained=False))
    model = cls(built, class_names=side.get("class_names"), palette=side.get("palette"))
    model.config = config
    model.load_state_dict(load_file(str(checkpoint_paths(path)[0]), device="cpu"), strict=True)
    model.metadata = side.get("metadata", {})  # type: ignore[assignment]
    model.inference = inference  # type: ignore[assignment]
    return model.to(device).eval()
