"""A shipped checkpoint's sidecar (``models/<name>.json``; default the scratch-encoder
``gsnerf_cpu``) as the training-config tests read it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from gsnerf_ros.config import from_dict, to_dict
from gsnerf_ros.model.checkpoint import sidecar_inference
from gsnerf_ros.model.config import GSNeRFConfig
from gsnerf_ros.model.inference import apply_inference

MODELS = Path(__file__).resolve().parents[2] / "models"


def shipped_sidecar(name: str = "gsnerf_cpu") -> dict[str, Any]:
    """The whole sidecar of ``models/<name>``: ``model_config``, ``metadata`` and the rest;
    ``model_config`` as ``GSNeRF.from_checkpoint`` reads it (a setting added to the model config after the
    checkpoint was written, e.g. ``encoder.backbone``, takes its default)."""
    side = json.loads((MODELS / f"{name}.json").read_text())
    side["model_config"] = to_dict(from_dict(GSNeRFConfig, side["model_config"]))
    return side


def with_shipped_inference(model: dict[str, Any], name: str = "gsnerf_cpu") -> dict[str, Any]:
    """A training config's ``model`` section (``to_dict``) with the inference settings of the
    shipped sidecar's ``metadata.inference`` (chosen on validation after training, e.g.
    ``renderer.colour_views``) applied as ``GSNeRF.from_checkpoint`` applies them
    (``sidecar_inference`` + ``apply_inference``). Equal to the sidecar's ``model_config`` when
    the config trains the shipped architecture."""
    config = from_dict(GSNeRFConfig, copy.deepcopy(model))
    return to_dict(apply_inference(config, sidecar_inference(shipped_sidecar(name))))
