"""Typed configuration: YAML + key=value overrides into nested dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import pytest

from gsnerf_ros.config import ConfigError, from_dict, load_config, save_config, to_dict


@dataclass
class Inner:
    planes: tuple[int, ...] = (48, 32, 8)
    sigma: float = 0.5
    mode: Literal["uniform", "depth_guided"] = "depth_guided"


@dataclass
class Outer:
    name: str = "run"
    steps: int = 10
    use_bf16: bool = False
    checkpoint: Optional[str] = None
    inner: Inner = field(default_factory=Inner)


def test_yaml_then_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("steps: 20\ninner:\n  sigma: 0.25\n")
    cfg = load_config(Outer, path, ["inner.planes=[16, 8]", "use_bf16=true", "checkpoint=a.st"])
    assert cfg.steps == 20 and cfg.inner.sigma == 0.25
    assert cfg.inner.planes == (16, 8) and cfg.use_bf16 is True and cfg.checkpoint == "a.st"
    assert cfg.inner.mode == "depth_guided" and cfg.name == "run"


def test_round_trip_through_yaml(tmp_path: Path) -> None:
    cfg = Outer(steps=3, inner=Inner(planes=(4,), mode="uniform"))
    save_config(cfg, tmp_path / "saved.yaml")
    assert load_config(Outer, tmp_path / "saved.yaml") == cfg
    assert to_dict(cfg)["inner"]["planes"] == [4]


@pytest.mark.parametrize("override, message", [
    (["stepz=3"], "unknown keys"),
    (["steps=three"], "integer"),
    (["inner.mode=random"], "not one of"),
    (["use_bf16=maybe"], "true/false"),
    (["steps"], "key=value"),
])
def test_bad_values_are_rejected_with_a_reason(override: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(Outer, None, override)


def test_int_float_coercion() -> None:
    cfg = from_dict(Outer, {"steps": 5.0, "inner": {"sigma": 1}})
    assert cfg.steps == 5 and isinstance(cfg.steps, int)
    assert cfg.inner.sigma == 1.0 and isinstance(cfg.inner.sigma, float)
    with pytest.raises(ConfigError):
        from_dict(Outer, {"steps": 5.5})
