"""GSNeRF model in pure PyTorch: geo-reasoner, target depth, samplers, renderers.

Public API (docs/INTERFACES.md): :class:`GSNeRF`, :class:`GSNeRFConfig`,
:class:`SourceEncoding`, :class:`ViewEncoding`, :class:`RenderResult`, :class:`InferenceConfig`.
One file per paper stage: ``geo_reasoner`` (``encoder``, ``cost_volume``), ``target_depth``,
``sampling``, ``volume_renderer``, ``semantic_renderer``; ``gsnerf`` calls them in order;
``checkpoint`` reads and writes checkpoints.
"""

from gsnerf_ros.model.config import (
    CostVolumeConfig,
    EncoderConfig,
    GSNeRFConfig,
    RendererConfig,
    SamplingConfig,
    SemanticConfig,
    TargetDepthConfig,
)
from gsnerf_ros.model.inference import InferenceConfig
from gsnerf_ros.model.encoding import SourceEncoding, StackCache, ViewEncoding
from gsnerf_ros.model.gsnerf import CHECKPOINT_FORMAT, GSNeRF, RenderResult, default_palette
from gsnerf_ros.model.sampling import RaySamples, sample_along_rays
from gsnerf_ros.model.target_depth import estimate_target_depth, zbuffer_splat

__all__ = [
    "GSNeRF", "GSNeRFConfig", "SourceEncoding", "ViewEncoding", "StackCache", "RenderResult",
    "EncoderConfig", "CostVolumeConfig", "TargetDepthConfig", "RendererConfig", "SemanticConfig",
    "SamplingConfig", "RaySamples", "sample_along_rays", "estimate_target_depth", "zbuffer_splat",
    "default_palette", "CHECKPOINT_FORMAT", "InferenceConfig",
]
