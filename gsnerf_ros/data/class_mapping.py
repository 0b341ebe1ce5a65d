"""Match a dataset's classes to a model's by name, so that ids are never scored across lists.

A checkpoint knows its class names; a scene knows its own (``scene.json``, the Replica or
ScanNet protocol, a bag's ``class_names``). :func:`match_classes` turns the two lists into a
label-id remap (data id -> model id), using a user's aliases (``--class-map FILE``: YAML or JSON,
``data name: model name``, or ``null`` to leave that class unscored). Names compare without case
and with ``_`` / ``-`` / spaces alike. A data class that matches nothing is an error
(:class:`ClassMatchError`) that lists both vocabularies; it is never scored as some other id.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import yaml

from gsnerf_ros.data.classes import IGNORE_INDEX

__all__ = ["ClassMatchError", "normalise_name", "load_class_map", "match_classes"]


class ClassMatchError(ValueError):
    """The data's classes cannot be matched to the model's by name."""


def normalise_name(name: str) -> str:
    """``"Wall_Plug"`` -> ``"wall plug"`` (case, ``_``, ``-`` and repeated spaces ignored)."""
    return re.sub(r"[\s_\-]+", " ", str(name)).strip().lower()


def load_class_map(path: str | Path) -> dict[str, str | None]:
    """Aliases ``data class name -> model class name | None`` from a YAML or JSON mapping."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"class map {p} does not exist")
    data = yaml.safe_load(p.read_text())
    if not isinstance(data, dict) or not all(
            isinstance(k, (str, int)) and (v is None or isinstance(v, str))
            for k, v in data.items()):
        raise ValueError(f"class map {p}: expected a mapping 'data class name: model class name' "
                         f"(or null to leave a class unscored), got {type(data).__name__}")
    return {str(k): v for k, v in data.items()}


def match_classes(data_names: Sequence[str], model_names: Sequence[str],
                  aliases: dict[str, str | None] | None = None, where: str = "data"
                  ) -> dict[int, int] | None:
    """Label remap data id -> model id (``IGNORE_INDEX`` for classes aliased to None), or None
    when both lists are identical (nothing to remap).

    Raises :class:`ClassMatchError` when a data class has no model class of the same (or
    aliased) name, and ``ValueError`` when an alias names a class the model does not have.
    """
    data_names, model_names = list(data_names), list(model_names)
    aliases = aliases or {}
    if data_names == model_names and not aliases:
        return None
    model_idx: dict[str, int] = {}
    for j, n in enumerate(model_names):
        model_idx.setdefault(normalise_name(n), j)
    norm_alias = {normalise_name(k): v for k, v in aliases.items()}
    for k, v in aliases.items():
        if v is not None and normalise_name(v) not in model_idx:
            raise ValueError(f"class map: {k!r} -> {v!r}, but the model has no class {v!r}; "
                             f"its classes are {model_names}")
    mapping: dict[int, int] = {}
    unmatched: list[str] = []
    for i, n in enumerate(data_names):
        key = normalise_name(n)
        if key in norm_alias:
            target = norm_alias[key]
            mapping[i] = IGNORE_INDEX if target is None else model_idx[normalise_name(target)]
        elif key in model_idx:
            mapping[i] = model_idx[key]
        else:
            unmatched.append(n)
    if unmatched:
        generic = all(re.fullmatch(r"(class|replica)_\d+", n) for n in data_names)
        hint = (" The data carries label ids without names (class_<i> / replica_<id>): give it "
                "names (scene.json class_names, BagConfig.class_names) or map the ids" if generic
                else " Map them")
        raise ClassMatchError(
            f"{where}: classes {unmatched} have no class of the same name in the model, so its "
            f"label ids cannot be scored (the model's classes: {model_names}; the data's: "
            f"{data_names}).{hint} with --class-map FILE, a YAML/JSON mapping "
            f"'data name: model name' (null leaves a class unscored).")
    if all(mapping.get(i) == i for i in range(len(data_names))):
        return None
    return mapping
