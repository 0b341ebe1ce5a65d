"""Inference settings that may override a checkpoint's: :class:`InferenceConfig`.

One field per setting, read by every path that renders with a checkpoint: the sidecar's
``metadata.inference`` (:func:`gsnerf_ros.model.checkpoint.sidecar_inference`), the CLIs'
options (:func:`add_inference_arguments`, :func:`inference_from_args`) and the node's parameters
(:meth:`InferenceConfig.from_sentinels`); :func:`apply_inference` sets them on a
:class:`~gsnerf_ros.model.config.GSNeRFConfig`.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field, fields
from typing import Any

from gsnerf_ros.config import check as _check
from gsnerf_ros.geometry.triangulation import NEIGHBOUR_RULES
from gsnerf_ros.model.config import FOOTPRINT_DEPTHS, VOTE_WEIGHTS, GSNeRFConfig

__all__ = ["InferenceConfig", "apply_inference", "add_inference_arguments", "inference_from_args"]


def _setting(config_key: str | None, flag: str, help: str, metavar: str) -> Any:
    """An :class:`InferenceConfig` field (default None = keep the checkpoint's): the dotted
    :class:`GSNeRFConfig` key it overrides (None: a setting of the render call, not of the
    model), its command-line flag and help."""
    return field(default=None, metadata={"config_key": config_key, "flag": flag, "help": help,
                                         "metavar": metavar})


@dataclass
class InferenceConfig:
    """Inference settings that may override a checkpoint's; None keeps the checkpoint's (or,
    for ``near``/``far``/``floor_z``, the caller's default). One field per setting, read by every
    path that renders with a checkpoint:

    - the checkpoint's sidecar: ``metadata.inference`` (:meth:`from_sidecar`; dotted
      :class:`GSNeRFConfig` keys, ``near_far_m``), applied by ``GSNeRF.from_checkpoint``;
    - the CLIs (``gsnerf-eval``, the depth probe): :func:`add_inference_arguments`,
      :func:`inference_from_args`;
    - the node (``runtime.engine.GSNeRFRenderer``): its parameters, -1 (or "" for a rule) =
      keep (:meth:`from_sentinels`).

    The model settings (those with a ``config_key``) are set on a :class:`GSNeRFConfig` by
    :func:`apply_inference`; ``near``/``far``/``floor_z`` are arguments of the render calls, which
    the caller passes (the sidecar's ``near_far_m`` records the depth range the settings were
    chosen at; ``GSNeRF.from_checkpoint`` keeps it in ``model.inference`` and applies nothing).
    """

    geometry_max_pixels: int | None = _setting(
        "geometry_max_pixels", "--geometry-max-pixels",
        "largest image (pixels) the encoder and cost volume work at (default: the "
        "checkpoint's model.geometry_max_pixels; 0 = the render size)", "N")
    semantic_max_pixels: int | None = _setting("semantic_max_pixels", "", "", "")
    """Largest image (pixels) the 2D semantic maps are computed at (``semantic_max_pixels``:
    0 = the render size, -1 = the geometry level); sidecar only, no CLI option or node
    parameter yet."""
    semantic_fuse_max_pixels: int | None = _setting("semantic_fuse_max_pixels", "", "", "")
    """Largest image (pixels) of the second 2D semantic pass fused with the first
    (``semantic_fuse_max_pixels``: -1 = one pass, 0 = the render size); sidecar only."""
    num_neighbors: int | None = _setting(
        "cost_volume.num_neighbors", "--num-neighbors",
        "views each source's cost volume matches against (default: the checkpoint's "
        "cost_volume.num_neighbors)", "N")
    neighbour_rule: str | None = _setting(
        "cost_volume.neighbour_rule", "--neighbour-rule",
        "how each source's cost-volume neighbours are chosen: nearest (pose distance) or "
        "triangulation (the angle they subtend at the scene; for robot cameras driving "
        "forward) (default: the checkpoint's cost_volume.neighbour_rule)", "RULE")
    depth_prior_weight: float | None = _setting(
        "cost_volume.depth_prior_weight", "--depth-prior-weight",
        "weight of the encoder's single-view depth prior in the cost volume's first stage "
        "(needs a checkpoint with encoder.depth_prior; 0 = off; default: the checkpoint's "
        "cost_volume.depth_prior_weight)", "W")
    depth_prior_stages: int | None = _setting("cost_volume.depth_prior_stages", "", "", "")
    """How many cascade stages take the depth prior (``cost_volume.depth_prior_stages``, 1-3);
    sidecar only."""
    consistency_tolerance: float | None = _setting(
        "target_depth.consistency_tolerance", "--consistency-tolerance",
        "relative depth agreement for the multi-view check of D_T (default: the checkpoint's "
        "target_depth.consistency_tolerance; 0 = off)", "T")
    footprint_depth: str | None = _setting("target_depth.footprint_depth", "", "", "")
    """What a splatted point's footprint gives the pixels of D_T (``target_depth.footprint_depth``:
    point | centre | measured_centre); sidecar only."""
    measured_fill_iterations: int | None = _setting(
        "target_depth.measured_fill_iterations", "", "", "")
    """Hole-filling rounds of D_T for holes between measured pixels
    (``target_depth.measured_fill_iterations``; -1 = ``fill_iterations``); sidecar only."""
    depth_from_measured: bool | None = _setting("renderer.depth_from_measured", "", "", "")
    """The output depth is D_T where its surface is measured (``renderer.depth_from_measured``);
    sidecar only."""
    centre_mean_tolerance: float | None = _setting(
        "target_depth.centre_mean_tolerance", "", "", "")
    """D_T's centre rule averages the points within this relative distance of the nearest
    (``target_depth.centre_mean_tolerance``; 0 = the nearest); sidecar only."""
    sensor_sigma: float | None = _setting("sampling.sensor_sigma", "", "", "")
    """Spread of the depth-guided samples around a D_T from measured source depth
    (``sampling.sensor_sigma``, relative); sidecar only."""
    colour_views: int | None = _setting(
        "renderer.colour_views", "--colour-views",
        "the colour is blended from the K source views nearest the target, a farther view only "
        "where none of those sees the sample (default: the checkpoint's renderer.colour_views; "
        "0 = every view)", "K")
    measured_colour_views: int | None = _setting("renderer.measured_colour_views", "", "", "")
    """``colour_views`` for sources with sensor depth (``renderer.measured_colour_views``; -1 =
    ``colour_views``); sidecar only."""
    normalise_colour: bool | None = _setting(
        "renderer.normalise_colour", "", "", "")
    """Colour normalised by the accumulated opacity (``renderer.normalise_colour``); no CLI
    option or node parameter (a property of the training)."""
    vote_weights: str | None = _setting(
        "semantic.vote_weights", "--vote-weights",
        "how the semantic renderer's vote of the sources' 2D labels (semantic.label_skip) "
        "weighs the views: mean (alike) or proximity (by pose distance to the target, as the "
        "reprojection baseline) (default: the checkpoint's semantic.vote_weights)", "HOW")
    near: float | None = _setting(
        None, "--near", "depth range (m) for every scene instead of the data's own (e.g. the "
        "range the checkpoint was trained with)", "M")
    far: float | None = _setting(None, "--far", "far end of --near's depth range (m)", "M")
    floor_z: float | None = _setting(
        None, "--floor-z",
        "height of the floor plane in the data's z-up world frame (0 for gsnerf-synth and "
        "tools/independent_rooms.py rooms): every depth is bounded by it (gsnerf-eval: the "
        "model's and so the baseline's; default: off)", "M")

    def __post_init__(self) -> None:
        _check(self.geometry_max_pixels is None or self.geometry_max_pixels >= 0,
               "geometry_max_pixels must be >= 0 (0 = the render size)")
        _check(self.semantic_max_pixels is None or self.semantic_max_pixels >= -1,
               "semantic_max_pixels must be >= -1 (-1 = the geometry level, 0 = the render size)")
        _check(self.semantic_fuse_max_pixels is None or self.semantic_fuse_max_pixels >= -1,
               "semantic_fuse_max_pixels must be >= -1 (-1 = one pass, 0 = the render size)")
        _check(self.num_neighbors is None or self.num_neighbors >= 1,
               "num_neighbors must be >= 1 (a cost volume needs a neighbour)")
        _check(self.neighbour_rule is None or self.neighbour_rule in NEIGHBOUR_RULES,
               f"neighbour_rule must be one of {NEIGHBOUR_RULES}, got {self.neighbour_rule!r}")
        _check(self.depth_prior_weight is None or (math.isfinite(self.depth_prior_weight)
                                                   and self.depth_prior_weight >= 0),
               f"depth_prior_weight must be >= 0 (0 = off), got {self.depth_prior_weight}")
        _check(self.depth_prior_stages is None or 1 <= self.depth_prior_stages <= 3,
               "depth_prior_stages must be 1-3")
        _check(self.consistency_tolerance is None or self.consistency_tolerance >= 0,
               "consistency_tolerance must be >= 0 (0 = off)")
        _check(self.footprint_depth is None or self.footprint_depth in FOOTPRINT_DEPTHS,
               f"footprint_depth must be one of {FOOTPRINT_DEPTHS}, got {self.footprint_depth!r}")
        _check(self.measured_fill_iterations is None or self.measured_fill_iterations >= -1,
               "measured_fill_iterations must be >= 0 (-1 = fill_iterations)")
        _check(self.centre_mean_tolerance is None or 0 <= self.centre_mean_tolerance < 1,
               "centre_mean_tolerance must lie in [0, 1) (0 = the nearest)")
        _check(self.sensor_sigma is None or (math.isfinite(self.sensor_sigma)
                                             and self.sensor_sigma > 0),
               f"sensor_sigma must be > 0, got {self.sensor_sigma}")
        _check(self.vote_weights is None or self.vote_weights in VOTE_WEIGHTS,
               f"vote_weights must be one of {VOTE_WEIGHTS}, got {self.vote_weights!r}")
        _check(self.colour_views is None or self.colour_views >= 0,
               "colour_views must be >= 0 (0 = every view)")
        _check(self.measured_colour_views is None or self.measured_colour_views >= -1,
               "measured_colour_views must be >= 0 (0 = every view) or -1 (= colour_views)")
        for name in ("near", "far"):
            v = getattr(self, name)
            _check(v is None or (math.isfinite(v) and v > 0), f"{name} must be > 0 m, got {v}")
        _check(self.near is None or self.far is None or self.near < self.far,
               f"near ({self.near}) must be < far ({self.far})")
        if self.floor_z is not None:
            from gsnerf_ros.model.encoding import check_floor_z

            check_floor_z(self.floor_z)

    def model_settings(self) -> dict[str, Any]:
        """The given model settings: dotted :class:`GSNeRFConfig` key -> value."""
        return {f.metadata["config_key"]: getattr(self, f.name) for f in fields(self)
                if f.metadata["config_key"] and getattr(self, f.name) is not None}

    # -- the sidecar's ``metadata.inference``
    def to_sidecar(self) -> dict[str, Any]:
        """``metadata.inference`` of a checkpoint sidecar: the given model settings under their
        dotted keys, ``near_far_m`` [near, far] and ``floor_z`` where given."""
        out: dict[str, Any] = dict(self.model_settings())
        if self.near is not None or self.far is not None:
            out["near_far_m"] = [self.near, self.far]
        if self.floor_z is not None:
            out["floor_z"] = self.floor_z
        return out

    @classmethod
    def from_sidecar(cls, inference: dict[str, Any]) -> "InferenceConfig":
        """Read a sidecar's ``metadata.inference`` (:meth:`to_sidecar`); an unknown key or a
        value of the wrong type is a ``ValueError`` naming it."""
        from gsnerf_ros.config import from_dict

        by_key = {f.metadata["config_key"]: f.name for f in fields(cls) if f.metadata["config_key"]}
        kw: dict[str, Any] = {}
        for key, value in inference.items():
            if key == "near_far_m":
                if not isinstance(value, (list, tuple)) or len(value) != 2:
                    raise ValueError(f"metadata.inference.near_far_m must be [near, far], got "
                                     f"{value!r}")
                kw["near"], kw["far"] = value
            elif key == "floor_z" or key in by_key:
                kw[by_key.get(key, key)] = value
            else:
                raise ValueError(f"metadata.inference: unknown setting {key!r}; known: "
                                 f"{sorted([*by_key, 'near_far_m', 'floor_z'])}")
        return from_dict(cls, kw, "metadata.inference")

    # -- the node's parameters
    @classmethod
    def from_sentinels(cls, **values: Any) -> "InferenceConfig":
        """The node's convention for the model settings: a negative value (-1), an empty string
        or None keeps the checkpoint's. ``values``: field names of the model settings."""
        model_fields = {f.name for f in fields(cls) if f.metadata["config_key"]}
        unknown = set(values) - model_fields
        if unknown:
            raise ValueError(f"not model inference settings: {sorted(unknown)}")
        return cls(**{k: v for k, v in values.items()
                      if v is not None and v != "" and not (
                          isinstance(v, (int, float)) and not isinstance(v, bool) and v < 0)})


_FIELD_TYPES = {"int | None": int, "float | None": float, "bool | None": bool,
                "str | None": str}
"""Command-line value type of each :class:`InferenceConfig` annotation (postponed, so strings)."""


def apply_inference(config: GSNeRFConfig, inference: InferenceConfig) -> GSNeRFConfig:
    """Set ``inference``'s model settings on ``config`` in place (the sub-configs stay the same
    objects, so a model built on ``config`` sees them at once); settings that are None keep
    ``config``'s. Returns ``config``. A depth-prior weight for a model without the depth head
    is a ``ValueError``, and nothing is set."""
    settings = inference.model_settings()
    if settings.get("cost_volume.depth_prior_weight", 0.0) > 0 and not config.encoder.depth_prior:
        raise ValueError("depth_prior_weight > 0 needs a checkpoint with a single-view depth head "
                         "(encoder.depth_prior, e.g. gsnerf_lite0 version 7); this one has none")
    for key, value in settings.items():
        node: Any = config
        *path, name = key.split(".")
        for part in path:
            node = getattr(node, part)
        setattr(node, name, value)
    return config


def add_inference_arguments(parser: argparse.ArgumentParser, neighbours_note: str = "") -> None:
    """Add the command-line options of :class:`InferenceConfig` (every field with a flag; default
    None: keep the checkpoint's, the data's depth range, no floor). ``neighbours_note`` is
    appended to ``--num-neighbors``' help."""
    for f in fields(InferenceConfig):
        if not f.metadata["flag"]:
            continue
        text = f.metadata["help"] + (neighbours_note if f.name == "num_neighbors" else "")
        parser.add_argument(f.metadata["flag"], dest=f.name, type=_FIELD_TYPES[f.type],
                            default=None, metavar=f.metadata["metavar"], help=text)


def inference_from_args(parser: argparse.ArgumentParser,
                        args: argparse.Namespace) -> InferenceConfig:
    """The :class:`InferenceConfig` of parsed :func:`add_inference_arguments` options; an
    out-of-range value exits through ``parser.error`` (status 2) naming the option."""
    kw = {f.name: getattr(args, f.name) for f in fields(InferenceConfig) if f.metadata["flag"]}
    for f in fields(InferenceConfig):
        if f.metadata["flag"] and kw[f.name] is not None:
            try:
                InferenceConfig(**{f.name: kw[f.name]})
            except ValueError as exc:
                parser.error(f"{f.metadata['flag']}: {exc}")
    try:
        return InferenceConfig(**kw)
    except ValueError as exc:
        parser.error(str(exc))
    raise AssertionError("unreachable")  # parser.error exits
