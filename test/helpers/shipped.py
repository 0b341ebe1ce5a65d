"""The shipped checkpoint's sidecar (models/gsnerf_cpu.json) as the training-config tests read it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

SHIPPED_SIDECAR = Path(__file__).resolve().parents[2] / "models" / "gsnerf_cpu.json"


def shipped_sidecar() -> dict[str, Any]:
    """The whole sidecar: ``model_config``, ``metadata`` and the rest."""
    return json.loads(SHIPPED_SIDECAR.read_text())


def with_shipped_inference(model: dict[str, Any]) -> dict[str, Any]:
    """A copy of a training config's ``model`` section (``to_dict``) with the inference settings
    the shipped sidecar lists in ``metadata.inference`` (dotted keys, chosen on validation after
    training, e.g. ``renderer.colour_views``) set on top; keys that are not model settings
    (``near_far_m``) are skipped. Equal to the sidecar's ``model_config`` when the config trains
    the shipped architecture."""
    out = copy.deepcopy(model)
    for key, value in shipped_sidecar()["metadata"]["inference"].items():
        *parents, leaf = key.split(".")
        node = out
        for name in parents:
            node = node.get(name, {})
        if leaf in node:
            node[leaf] = value
    return out
