"""The shipped checkpoint's sidecar (models/gsnerf_cpu.json) as the training-config tests read it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from gsnerf_ros.config import apply_overrides, from_dict, to_dict
from gsnerf_ros.model.config import GSNeRFConfig

SHIPPED_SIDECAR = Path(__file__).resolve().parents[2] / "models" / "gsnerf_cpu.json"


def shipped_sidecar() -> dict[str, Any]:
    """The whole sidecar: ``model_config``, ``metadata`` and the rest; ``model_config`` as
    ``GSNeRF.from_checkpoint`` reads it (a setting added to the model config after the
    checkpoint was written, e.g. ``encoder.backbone``, takes its default)."""
    side = json.loads(SHIPPED_SIDECAR.read_text())
    side["model_config"] = to_dict(from_dict(GSNeRFConfig, side["model_config"]))
    return side


def with_shipped_inference(model: dict[str, Any]) -> dict[str, Any]:
    """A copy of a training config's ``model`` section (``to_dict``) with the inference settings
    the shipped sidecar lists in ``metadata.inference`` (dotted keys, chosen on validation after
    training, e.g. ``renderer.colour_views``) set on top with the training CLI's own
    :func:`gsnerf_ros.config.apply_overrides`; keys that are not model settings
    (``near_far_m``) are skipped. Equal to the sidecar's ``model_config`` when the config trains
    the shipped architecture."""
    inference = shipped_sidecar()["metadata"]["inference"]
    return apply_overrides(copy.deepcopy(model), [f"{key}={json.dumps(value)}"
                                                  for key, value in inference.items()
                                                  if key.split(".")[0] in model])
