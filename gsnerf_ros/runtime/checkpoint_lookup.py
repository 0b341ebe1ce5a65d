"""Where the node finds its model: a checkpoint path resolved against the places it may live.

A checkpoint is ``<name>.safetensors`` with its ``<name>.json`` sidecar; ``model.checkpoint``
(launch argument ``checkpoint:=...``) may name either file or the bare ``<name>``.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DEFAULT_CHECKPOINT", "resolve_checkpoint"]

DEFAULT_CHECKPOINT = "models/gsnerf_lite0.safetensors"
"""The shipped model (models/MODEL_CARD.md): the default of the node, demo, soak and benchmarks.
It was trained on 0.25-10 m, the node's default ``model.near``/``model.far``."""


def resolve_checkpoint(path: str) -> Path:
    """An absolute checkpoint path: as given, else under the package share dir, the working
    directory or the source checkout. Raises FileNotFoundError naming every place tried."""
    p = Path(os.path.expanduser(path))
    if p.is_absolute():
        candidates = [p]
    else:
        candidates = []
        try:
            from ament_index_python.packages import get_package_share_directory

            candidates.append(Path(get_package_share_directory("gsnerf_ros")) / p)
        except Exception:  # noqa: BLE001 - not installed as a ROS package
            pass
        candidates += [Path.cwd() / p, Path(__file__).resolve().parents[2] / p]
    for c in candidates:
        stem = c.with_suffix("") if c.suffix in (".safetensors", ".json") else c
        if stem.with_name(stem.name + ".safetensors").is_file():
            return c
    raise FileNotFoundError(f"checkpoint {path!r} not found (tried {[str(c) for c in candidates]}); "
                            "set model.checkpoint (launch argument checkpoint:=...) to a "
                            "<name>.safetensors with its <name>.json sidecar")
