"""A depth camera's holes and noise: ``data.sensor_holes.depth_holes`` / ``depth_noise`` and
``gsnerf-eval --sensor-depth --sensor-holes F --sensor-noise S`` (the model's estimate stands in
for the dropped measurements)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gsnerf_ros.data.sensor_holes import depth_holes, depth_noise
from helpers.rooms import eval_tiny_room, write_room_and_tiny_checkpoint

H, W = 24, 32


@pytest.mark.parametrize("fraction", [0.05, 0.2])
def test_depth_holes_drop_the_share_in_blobs(fraction: float) -> None:
    depth = torch.full((60, 80), 2.5)
    depth[:6, :6] = 0.0                                       # already no measurement
    out = depth_holes(depth, fraction, np.random.default_rng(0))
    valid = depth > 0
    dropped = valid & (out == 0)
    share = float(dropped.sum()) / float(valid.sum())
    assert fraction <= share <= fraction + 0.1
    assert torch.equal(out[valid & ~dropped], depth[valid & ~dropped])   # the rest untouched
    assert (out[~valid] == 0).all() and torch.equal(depth[6:, 6:], torch.full((54, 74), 2.5))
    h = dropped.numpy()       # blobs: dropped pixels have dropped 4-neighbours (scattered
    inner = h[1:-1, 1:-1]     # single pixels at 5-20 % would have two in 1-15 % of cases)
    neigh = h[:-2, 1:-1].astype(int) + h[2:, 1:-1] + h[1:-1, :-2] + h[1:-1, 2:]
    assert (neigh[inner] >= 2).mean() > 0.9
    assert torch.equal(out, depth_holes(depth, fraction, np.random.default_rng(0)))  # seeded
    assert torch.equal(depth_holes(depth, 0.0, np.random.default_rng(0)), depth)
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="fraction"):
            depth_holes(depth, bad, np.random.default_rng(0))


def test_depth_noise_is_relative_seeded_and_keeps_invalid_pixels() -> None:
    depth = torch.full((100, 100), 4.0)
    depth[:10] = 0.0
    out = depth_noise(depth, 0.01, np.random.default_rng(0))
    rel = (out[10:] - 4.0) / 4.0
    assert abs(float(rel.std()) - 0.01) < 0.001 and abs(float(rel.mean())) < 0.001
    assert (out[:10] == 0).all()
    assert torch.equal(out, depth_noise(depth, 0.01, np.random.default_rng(0)))
    assert torch.equal(depth_noise(depth, 0.0, np.random.default_rng(0)), depth)
    with pytest.raises(ValueError, match="sigma"):
        depth_noise(depth, -0.01, np.random.default_rng(0))


@pytest.fixture(scope="module")
def room(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("holes")
    write_room_and_tiny_checkpoint(root, H, W)
    return {"root": root, "data": root / "rooms", "ckpt": root / "tiny.safetensors"}


def _eval(room: dict, out: Path, *extra: str) -> int:
    return eval_tiny_room(room["root"], out, H, W, *extra)


def test_eval_with_sensor_holes(room, tmp_path, capsys) -> None:
    """The holes change D_T (the estimate fills them) and are the same in every run; noise
    makes it worse; without --sensor-depth, or out of range, either option is refused."""
    runs = {}
    for name, extra in (("full", []), ("holes", ["--sensor-holes", "0.3"]),
                        ("again", ["--sensor-holes", "0.3"]),
                        ("noise", ["--sensor-noise", "0.02"])):
        assert _eval(room, tmp_path / f"{name}.json", "--sensor-depth", *extra) == 0
        runs[name] = json.loads((tmp_path / f"{name}.json").read_text())
    assert runs["full"]["sensor_holes"] == 0.0 and runs["holes"]["sensor_holes"] == 0.3
    assert runs["holes"]["target_depth_abs_rel"] != runs["full"]["target_depth_abs_rel"]
    assert runs["holes"]["target_depth_abs_rel"] == runs["again"]["target_depth_abs_rel"]
    assert runs["noise"]["sensor_noise"] == 0.02
    assert runs["noise"]["target_depth_abs_rel"] > runs["full"]["target_depth_abs_rel"]
    for extra in (["--sensor-holes", "0.2"], ["--sensor-depth", "--sensor-holes", "1.5"],
                  ["--sensor-noise", "0.01"], ["--sensor-depth", "--sensor-noise", "-0.1"]):
        with pytest.raises(SystemExit) as e:
            _eval(room, tmp_path / "x.json", *extra)
        assert e.value.code == 2
        assert "--sensor-" in capsys.readouterr().err
