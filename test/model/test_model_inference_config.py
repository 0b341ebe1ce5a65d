"""InferenceConfig: one set of inference settings read from the sidecar, the CLIs and the node,
applied by one function; the shipped checkpoint loads strict with its sidecar's settings."""

from __future__ import annotations

import argparse
import copy
import inspect
import json
from dataclasses import fields
from pathlib import Path

import pytest
import torch

from gsnerf_ros.config import from_dict, to_dict
from gsnerf_ros.model import GSNeRF, GSNeRFConfig
from gsnerf_ros.model.checkpoint import checkpoint_paths, read_sidecar, sidecar_config
from gsnerf_ros.model.inference import (
    InferenceConfig,
    add_inference_arguments,
    apply_inference,
    inference_from_args,
)

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "gsnerf_cpu"
MODEL_FIELDS = [f.name for f in fields(InferenceConfig) if f.metadata["config_key"]]
SOME = InferenceConfig(geometry_max_pixels=1200, semantic_max_pixels=0, semantic_fuse_max_pixels=300,
                       num_neighbors=1,
                       consistency_tolerance=0.05,
                       colour_views=1, normalise_colour=False, near=0.3, far=7.5, floor_z=-0.1,
                       neighbour_rule="triangulation", vote_weights="proximity",
                       footprint_depth="centre", measured_fill_iterations=32,
                       sensor_sigma=0.005, centre_mean_tolerance=0.03, depth_from_measured=True,
                       depth_prior_weight=0.5, measured_colour_views=3,
                       depth_prior_stages=2)


def _tiny() -> GSNeRFConfig:
    """The tiny model with a (randomly initialised) depth head, so every setting applies."""
    from gsnerf_ros.model.config import EncoderConfig

    cfg = GSNeRFConfig.tiny(3)
    cfg.encoder = EncoderConfig(backbone="efficientnet_lite0", fpn_channels=[4, 8, 8], groups=4,
                                semantic_decoder="fpn", semantic_fpn_channels=8,
                                depth_prior=True, depth_prior_channels=8)
    return cfg


def _read(config: GSNeRFConfig, key: str) -> object:
    node: object = config
    for part in key.split("."):
        node = getattr(node, part)
    return node


def test_round_trips_through_the_sidecar_and_yaml() -> None:
    assert InferenceConfig.from_sidecar(SOME.to_sidecar()) == SOME
    assert from_dict(InferenceConfig, to_dict(SOME)) == SOME
    assert InferenceConfig.from_sidecar({}) == InferenceConfig() and InferenceConfig().to_sidecar() == {}
    shipped = json.loads(SHIPPED.with_suffix(".json").read_text())["metadata"]["inference"]
    assert InferenceConfig.from_sidecar(shipped).to_sidecar() == shipped
    for bad in ({"renderer.colour_view": 2}, {"near_far_m": [1.0]},
                {"renderer.colour_views": -1}, {"cost_volume.num_neighbors": "five"},
                {"cost_volume.neighbour_rule": "farthest"},
                {"target_depth.footprint_depth": "mean"},
                {"target_depth.measured_fill_iterations": -3},
                {"target_depth.centre_mean_tolerance": 1.5},
                {"sampling.sensor_sigma": 0.0}):
        with pytest.raises(ValueError):
            InferenceConfig.from_sidecar(bad)


def test_apply_sets_each_model_setting_and_keeps_the_rest() -> None:
    config = _tiny()
    before = copy.deepcopy(config)
    renderer = config.renderer
    assert apply_inference(config, InferenceConfig()) is config and config == before
    apply_inference(config, SOME)
    assert config.renderer is renderer                 # in place: a built model sees it
    for f in fields(InferenceConfig):
        key = f.metadata["config_key"]
        if key:
            assert _read(config, key) == getattr(SOME, f.name) != _read(before, key), key
    config.renderer.colour_views = before.renderer.colour_views
    apply_inference(config, InferenceConfig(colour_views=1))
    assert config.renderer.colour_views == 1 and config.geometry_max_pixels == 1200


def test_cli_options_and_node_parameters_apply_the_same_settings() -> None:
    """gsnerf-eval's / the depth probe's options and the node's parameters reach the same
    fields of the model config, and every CLI model setting has a node parameter."""
    from gsnerf_ros.runtime.engine import GSNeRFRenderer
    from gsnerf_ros.runtime.params import PARAMETERS, params_from_values

    values = {"geometry_max_pixels": 0, "num_neighbors": 3, "consistency_tolerance": 0.05,
              "colour_views": 1, "neighbour_rule": "triangulation", "vote_weights": "proximity",
              "depth_prior_weight": 0.5}
    cli_fields = [f for f in fields(InferenceConfig) if f.metadata["config_key"] and f.metadata["flag"]]
    assert sorted(f.name for f in cli_fields) == sorted(values)
    names = {s.name for s in PARAMETERS}
    renderer_args = inspect.signature(GSNeRFRenderer).parameters
    for f in cli_fields:
        assert f"model.{f.name}" in names and f.name in renderer_args, f.name

    p = argparse.ArgumentParser()
    add_inference_arguments(p)
    argv = [x for f in cli_fields for x in (f.metadata["flag"], str(values[f.name]))]
    cli_config = apply_inference(_tiny(), inference_from_args(p, p.parse_args(argv)))

    params = params_from_values({f"model.{k}": v for k, v in values.items()})
    model = GSNeRF(_tiny())
    GSNeRFRenderer(model, params.model_near, params.model_far, **{
        k: getattr(params, f"model_{k}") for k in values})
    assert model.config == cli_config != _tiny()

    # the defaults keep the checkpoint's settings on both paths
    keep = GSNeRF(_tiny())
    defaults = params_from_values({})
    GSNeRFRenderer(keep, 0.5, 5.0, **{k: getattr(defaults, f"model_{k}") for k in values})
    assert keep.config == _tiny()
    assert apply_inference(_tiny(), inference_from_args(p, p.parse_args([]))) \
        == _tiny()
    for bad in (["--num-neighbors", "0"], ["--consistency-tolerance", "-0.1"],
                ["--near", "2", "--far", "1"], ["--neighbour-rule", "farthest"]):
        with pytest.raises(SystemExit):
            inference_from_args(p, p.parse_args(bad))
    with pytest.raises(ValueError, match="model.consistency_tolerance"):
        params_from_values({"model.consistency_tolerance": -0.5})
    with pytest.raises(ValueError, match="model.neighbour_rule"):
        params_from_values({"model.neighbour_rule": "farthest"})


def test_sidecar_inference_is_applied_at_load(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = GSNeRF(_tiny())
    wpath = model.save_checkpoint(tmp_path / "m", metadata={"inference": SOME.to_sidecar()})
    assert read_sidecar(wpath)["model_config"] == to_dict(_tiny())
    loaded = GSNeRF.from_checkpoint(wpath)
    assert loaded.inference == SOME
    assert loaded.config == apply_inference(_tiny(), SOME) != _tiny()
    assert loaded.config.renderer is loaded.volume_renderer.cfg
    assert GSNeRF.from_checkpoint(model.save_checkpoint(tmp_path / "plain")).config == \
        _tiny()
    model.save_checkpoint(tmp_path / "bad", metadata={"inference": {"renderer.colour_view": 2}})
    with pytest.raises(ValueError, match="colour_view"):
        GSNeRF.from_checkpoint(tmp_path / "bad")


def test_shipped_checkpoint_loads_strict_with_its_selected_settings() -> None:
    """Every weight of models/gsnerf_cpu fits the architecture of its sidecar (strict: no
    missing, unexpected or reshaped key), and its selected inference settings are the ones its
    model_config already lists, so applying them at load changes no output."""
    from safetensors.torch import load_file

    side = read_sidecar(SHIPPED)
    weights = load_file(str(checkpoint_paths(SHIPPED)[0]))
    fresh = GSNeRF(sidecar_config(side)).state_dict()
    assert {k: v.shape for k, v in fresh.items()} == {k: v.shape for k, v in weights.items()}
    model = GSNeRF.from_checkpoint(SHIPPED)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in weights.items())
    assert model.config == sidecar_config(side)
    assert model.config.renderer.colour_views == 2 and model.inference.near == 0.25
    weights["extra.weight"] = torch.zeros(1)
    with pytest.raises(RuntimeError, match="extra.weight"):
        GSNeRF(sidecar_config(side)).load_state_dict(weights, strict=True)
