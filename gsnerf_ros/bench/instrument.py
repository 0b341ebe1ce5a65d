"""Per-stage timing inside one real ``GSNeRF.render_rays`` call.

The breakdown runs the model's own code path (no re-implementation of the renderer): while a
:class:`StageRecorder` is active it wraps the module-level helpers that the model's stage modules
(:data:`GATHER_MODULES`) call for sampling and feature gathering, hooks the forward of ``volume_renderer`` and
``semantic_renderer``, and wraps ``model.target_depth``. Each wrapped call is bracketed by device
synchronisation (so on CUDA the numbers add up to the wall time of the instrumented call; the
un-instrumented render is timed separately and is the number to quote). Whatever is not inside a
wrapped call (confidence, concatenation, Python overhead) is reported as ``other``.
Everything is restored on exit, also after an exception.
"""

from __future__ import annotations

import functools
import time
from collections import defaultdict
from types import ModuleType
from typing import Any, Callable

import torch
from torch import nn

from gsnerf_ros.bench.timing import synchronize

__all__ = ["StageRecorder", "GATHER_FUNCTIONS", "GATHER_MODULES", "STAGE_NAMES"]

GATHER_FUNCTIONS = ("camera_rays", "sample_along_rays", "fine_depths", "pdf_depths",
                    "merge_sorted", "project_to_views", "occlusion_mask", "sample_volumes",
                    "sample_maps", "direction_features", "semantic_neighbourhood")
"""Names whose time counts as 'sampling + feature gathering', wrapped wherever one of
:data:`GATHER_MODULES` calls them."""

GATHER_MODULES = ("gsnerf_ros.model.gsnerf", "gsnerf_ros.model.sampling",
                  "gsnerf_ros.model.volume_renderer", "gsnerf_ros.model.semantic_renderer")
"""The modules of the render path (the orchestrator and the stages that gather their inputs)."""

STAGE_NAMES = ("target_depth", "sampling_gathering", "volume_renderer", "semantic_renderer",
               "other")


class StageRecorder:
    """Context manager accumulating wall time (ms) per stage of the model's render path.

    Use one recorder per measured call: ``with StageRecorder(model, device) as rec: fn()``, then
    ``rec.breakdown(total_ms)``. Nested wrapped calls count once, in the outermost stage.
    """

    def __init__(self, model: nn.Module, device: torch.device | str) -> None:
        self.model = model
        self.device = torch.device(device)
        self.times: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._depth = 0
        self._patched: list[tuple[Any, str, Any, bool]] = []
        self._hooks: list[Any] = []
        self._starts: list[float] = []

    def _enter(self) -> None:
        if self._depth == 0:
            synchronize(self.device)
            self._starts.append(time.perf_counter())
        self._depth += 1

    def _exit(self, stage: str) -> None:
        self._depth -= 1
        if self._depth == 0:
            synchronize(self.device)
            self.times[stage] += (time.perf_counter() - self._starts.pop()) * 1e3
            self.calls[stage] += 1

    def _wrap(self, fn: Callable[..., Any], stage: str) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            self._enter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._exit(stage)
        return wrapped

    def _patch(self, owner: Any, name: str, stage: str) -> None:
        if not hasattr(owner, name):
            return
        had_own = isinstance(owner, ModuleType) or name in vars(owner)
        orig = getattr(owner, name)
        setattr(owner, name, self._wrap(orig, stage))
        self._patched.append((owner, name, orig, had_own))

    def __enter__(self) -> "StageRecorder":
        import importlib

        for module in GATHER_MODULES:
            mod = importlib.import_module(module)
            for name in GATHER_FUNCTIONS:
                self._patch(mod, name, "sampling_gathering")
        self._patch(self.model, "target_depth", "target_depth")
        for attr in ("volume_renderer", "semantic_renderer"):
            mod = getattr(self.model, attr, None)
            if isinstance(mod, nn.Module):
                self._hooks.append(mod.register_forward_pre_hook(lambda *_: self._enter()))
                self._hooks.append(mod.register_forward_hook(
                    lambda *_, _s=attr: self._exit(_s)))
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self._hooks:
            h.remove()
        for owner, name, orig, had_own in reversed(self._patched):
            if had_own:
                setattr(owner, name, orig)
            else:
                delattr(owner, name)
        self._hooks.clear()
        self._patched.clear()

    def breakdown(self, total_ms: float) -> dict[str, float]:
        """Stage -> ms of one instrumented call lasting ``total_ms``; ``other`` is the rest."""
        out = {k: float(self.times.get(k, 0.0)) for k in STAGE_NAMES if k != "other"}
        out["other"] = max(total_ms - sum(out.values()), 0.0)
        return out
