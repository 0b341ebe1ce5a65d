"""The sampling modes: names, what each needs, and how many samples it costs (the one home).

Every other place that names or sizes a mode reads it here: the config check
(:class:`~gsnerf_ros.model.config.SamplingConfig`), the sampler (:mod:`.sampling`), the renderer
(:meth:`GSNeRF.render_rays`), the memory estimate and chunk size (:mod:`.memory`), the benchmark
(``gsnerf-bench --modes``) and the node's ``render.sampling_mode`` parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gsnerf_ros.model.config import SamplingConfig

__all__ = ["ModeSpec", "MODES", "SAMPLING_MODES", "BENCH_MODES", "mode_spec", "sample_counts"]


@dataclass(frozen=True)
class ModeSpec:
    """What a sampling mode is and needs."""

    name: str
    summary: str
    needs_target_depth: bool
    """Samples are placed around the target-depth estimate D_T."""
    semantics_at_samples: bool
    """The semantic features are gathered at every sample (released), not at one surface point."""
    two_pass: bool
    """A coarse pass then fine samples from its weights (the network runs twice)."""
    distinct_at_inference: bool
    """False where inference renders exactly like another mode (mixed = depth_guided)."""


MODES: dict[str, ModeSpec] = {m.name: m for m in (
    ModeSpec("depth_guided", "K Gaussian samples around D_T + 1 on it (paper Eq. 8)",
             True, False, False, True),
    ModeSpec("mixed", "uniform + guided before mixed_switch_step, then all guided (paper A.4)",
             True, False, False, False),
    ModeSpec("uniform", "evenly spaced (stratified in training), GeoNeRF-style",
             False, False, False, True),
    ModeSpec("hierarchical", "coarse uniform pass, fine samples from its weights (NeRF)",
             False, False, True, True),
    ModeSpec("released", "the released code: 96 uniform + 31 Gaussian + 1 surface, "
             "semantics at every sample", True, True, False, True),
)}
SAMPLING_MODES: tuple[str, ...] = tuple(MODES)
BENCH_MODES: tuple[str, ...] = tuple(m for m, s in MODES.items() if s.distinct_at_inference)


def mode_spec(mode: str) -> ModeSpec:
    """The :class:`ModeSpec` of ``mode``; ``ValueError`` naming the modes for an unknown one."""
    try:
        return MODES[mode]
    except KeyError:
        raise ValueError(f"unknown sampling mode {mode!r}; use one of {SAMPLING_MODES}") from None


def sample_counts(cfg: "SamplingConfig", mode: str, num_samples: int | None = None
                  ) -> dict[str, int]:
    """Per ray at inference: ``samples`` (depths composited), ``first_pass`` (depths drawn by
    :func:`.sampling.sample_along_rays`; the coarse pass of hierarchical), ``network_evals``
    (samples the view transformer runs on, both passes of hierarchical), ``semantic_points``.

    ``num_samples`` overrides the mode's main count exactly as :func:`.sampling.sample_along_rays`
    reads it (depth_guided/mixed/uniform: total; hierarchical: coarse; released: fixed).
    """
    spec = mode_spec(mode)
    sem = 0
    if mode == "depth_guided":
        n = evals = num_samples or cfg.num_guided + 1
    elif mode == "mixed":
        n = evals = num_samples or cfg.mixed_num_samples
    elif mode == "uniform":
        n = evals = num_samples or cfg.num_uniform
    elif mode == "hierarchical":
        c = num_samples or cfg.num_coarse
        n, evals = c + cfg.num_fine, 2 * c + cfg.num_fine
    else:  # released
        n = evals = sem = cfg.released_uniform + cfg.released_guided
    return {"samples": n, "first_pass": num_samples or cfg.num_coarse if spec.two_pass else n,
            "network_evals": evals, "semantic_points": sem if spec.semantics_at_samples else 1}
