"""Typed configuration of the GSNeRF model: one dataclass per stage, nested in :class:`GSNeRFConfig`.

Load from YAML / ``key=value`` with :func:`gsnerf_ros.config.load_config`; the checkpoint sidecar
stores :func:`gsnerf_ros.config.to_dict` of it and restores it with ``from_dict``.

The inference settings that may override a checkpoint's are in
:mod:`gsnerf_ros.model.inference`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gsnerf_ros.config import check as _check
from gsnerf_ros.geometry.triangulation import NEIGHBOUR_RULES
from gsnerf_ros.model.sampling_modes import SAMPLING_MODES

__all__ = [
    "EncoderConfig",
    "CostVolumeConfig",
    "TargetDepthConfig",
    "RendererConfig",
    "SemanticConfig",
    "SamplingConfig",
    "GSNeRFConfig",
    "SAMPLING_MODES",
    "NORMS",
    "BACKBONES",
    "FOOTPRINT_DEPTHS",
]

NORMS = ("group", "instance", "none")
BACKBONES = ("scratch", "efficientnet_lite0")
SEMANTIC_STEMS = ("shared", "own")
SEMANTIC_DECODERS = ("unet", "fpn")


@dataclass
class EncoderConfig:
    """2D encoder-decoder shared by all source views (feature pyramid + semantic feature + 2D
    logits)."""

    backbone: str = "scratch"
    """``scratch``: a U-Net of ``channels`` trained from scratch (checkpoints of format
    gsnerf_ros/1 and /2); ``efficientnet_lite0``: an EfficientNet-Lite0 (ImageNet weights with
    ``pretrained``) under the paper's MVS feature pyramid and a U-Net semantic decoder of
    ``decoder_channels`` (model/encoder.py)."""
    pretrained: bool = False
    """Initialise the backbone with its ImageNet weights when the model is built (needs the
    weights package; ``efficientnet_lite0`` only). A checkpoint's weights replace them."""
    channels: list[int] = field(default_factory=lambda: [16, 32, 64, 128])
    """``scratch``: U-Net widths at strides 1, 2, 4, 8 (the input is padded to a multiple of 8
    internally)."""
    decoder_channels: list[int] = field(default_factory=lambda: [128, 64, 48, 32, 16])
    """``efficientnet_lite0`` with ``semantic_decoder: unet``: semantic-decoder widths at strides
    16, 8, 4, 2, 1 (the input is padded to a multiple of 32 internally)."""
    semantic_decoder: str = "unet"
    """``efficientnet_lite0``: ``unet``, a U-Net of ``decoder_channels`` up to full resolution;
    ``fpn``, a feature pyramid of ``semantic_fpn_channels`` over the five taps whose stride-2 map
    is upsampled bilinearly (lighter, and it learns these rooms' classes faster and carries them
    to unseen materials better: docs/METHOD.md §9)."""
    semantic_fpn_channels: int = 64
    """``semantic_decoder: fpn``: width of its laterals and of its 3x3 head."""
    fpn_channels: list[int] = field(default_factory=lambda: [8, 16, 32])
    """Feature-pyramid widths at scales 1, 1/2, 1/4 (the cost-volume features)."""
    semantic_channels: int = 0
    """Width of the semantic feature map; 0 means ``num_classes`` (as in the released code)."""
    semantic_stem: str = "shared"
    """``efficientnet_lite0``: ``shared``, the semantic decoder and the feature pyramid read one
    backbone; ``own``, the semantic path has its own copy of the stem and blocks 0-2 (the part
    the pyramid reads), so the 2D segmenter trains whole without changing the geometry
    (model/encoder.py)."""
    norm: str = "group"
    """``group`` | ``instance`` | ``none``: all behave identically in train and eval."""
    groups: int = 8
    depth_prior: bool = False
    """``efficientnet_lite0``: a single-view depth head on the semantic path's taps
    (:class:`~gsnerf_ros.model.depth_prior.MonoDepthHead`), whose prior the cost volume uses
    with ``cost_volume.depth_prior_weight`` > 0 (model/depth_prior.py)."""
    depth_prior_channels: int = 32
    """Width of the depth head's feature pyramid."""

    def __post_init__(self) -> None:
        _check(self.backbone in BACKBONES,
               f"encoder.backbone must be one of {BACKBONES}, got {self.backbone!r}")
        _check(not self.pretrained or self.backbone != "scratch",
               "encoder.pretrained needs a pretrained backbone (encoder.backbone: "
               "efficientnet_lite0)")
        _check(len(self.channels) == 4, "encoder.channels needs 4 widths (strides 1, 2, 4, 8)")
        _check(len(self.decoder_channels) == 5 and all(c > 0 for c in self.decoder_channels),
               "encoder.decoder_channels needs 5 widths > 0 (strides 16, 8, 4, 2, 1)")
        _check(len(self.fpn_channels) == 3, "encoder.fpn_channels needs 3 widths (1, 1/2, 1/4)")
        _check(all(c > 0 for c in self.channels + self.fpn_channels), "encoder widths must be > 0")
        _check(self.semantic_channels >= 0, "encoder.semantic_channels must be >= 0")
        _check(self.norm in NORMS, f"encoder.norm must be one of {NORMS}, got {self.norm!r}")
        _check(self.semantic_stem in SEMANTIC_STEMS,
               f"encoder.semantic_stem must be one of {SEMANTIC_STEMS}, got {self.semantic_stem!r}")
        _check(self.semantic_decoder in SEMANTIC_DECODERS,
               f"encoder.semantic_decoder must be one of {SEMANTIC_DECODERS}, got "
               f"{self.semantic_decoder!r}")
        _check(self.semantic_decoder == "unet" or self.backbone != "scratch",
               "encoder.semantic_decoder: fpn needs a pretrained backbone (encoder.backbone: "
               "efficientnet_lite0); the scratch encoder has its own U-Net")
        _check(self.semantic_fpn_channels > 0, "encoder.semantic_fpn_channels must be > 0")
        _check(not self.depth_prior or self.backbone != "scratch",
               "encoder.depth_prior needs a pretrained backbone (encoder.backbone: "
               "efficientnet_lite0)")
        _check(self.depth_prior_channels > 0, "encoder.depth_prior_channels must be > 0")
        _check(self.semantic_stem == "shared" or self.backbone != "scratch",
               "encoder.semantic_stem: own needs a pretrained backbone (encoder.backbone: "
               "efficientnet_lite0)")


@dataclass
class CostVolumeConfig:
    """Cascade MVS cost volume per source view (stages coarse -> fine at scales 1/4, 1/2, 1)."""

    num_planes: list[int] = field(default_factory=lambda: [48, 32, 8])
    interval_ratios: list[float] = field(default_factory=lambda: [4.0, 2.0, 1.0])
    num_neighbors: int = 3
    neighbour_rule: str = "nearest"
    """How each source view's ``num_neighbors`` are chosen among the others: ``nearest`` (pose
    distance, the paper's) or ``triangulation`` (the angle they subtend at the scene depth,
    :mod:`gsnerf_ros.geometry.triangulation`; for cameras that move along their axis)."""
    groups: int = 8
    """Group-wise correlation groups; must divide every fpn channel count."""
    reg_channels: list[int] = field(default_factory=lambda: [8, 16, 32, 64])
    """3D U-Net widths; ``len - 1`` stride-2 levels."""
    volume_channels: int = 8
    """Channels of the regularised 3D volume feature kept for rendering (per stage)."""
    norm: str = "group"
    spacing: str = "inverse"
    """Planes evenly spaced in ``inverse`` depth (1/z: a plane step is about the same pixel
    shift at any distance, planes concentrate where matching can tell them apart) or in
    ``linear`` depth (the paper and checkpoints of format gsnerf_ros/1)."""
    correlation: str = "cosine"
    """``cosine``: group correlation of unit-length features (brightness-invariant);
    ``dot``: the paper's mean product per group (gsnerf_ros/1 checkpoints)."""
    photometric: bool = True
    """Add a parameter-free matching cost (negative 3x3 SAD of the colours) as one more
    cost-volume channel: a matching signal that works before any training."""
    photometric_patch: int = 3
    photometric_scale: float = 4.0
    """Multiplier of the photometric channel (SAD of [0,1] colours is small)."""
    depth_prior_weight: float = 0.0
    """Weight of the encoder's single-view depth prior (``encoder.depth_prior``) in the first
    stage's depth logits (:func:`~gsnerf_ros.model.depth_prior.prior_logits`; 1 = the product
    of the two distributions, 0 = off, and the head is not run)."""
    depth_prior_stages: int = 1
    """How many cascade stages, from the first, take the prior (1-3)."""

    def __post_init__(self) -> None:
        _check(self.spacing in ("inverse", "linear"), "cost_volume.spacing: inverse | linear")
        _check(self.correlation in ("cosine", "dot"), "cost_volume.correlation: cosine | dot")
        _check(self.photometric_patch in (1, 3, 5), "cost_volume.photometric_patch: 1 | 3 | 5")
        _check(len(self.num_planes) == 3 and all(d >= 2 for d in self.num_planes),
               "cost_volume.num_planes needs 3 stages of >= 2 planes each")
        _check(len(self.interval_ratios) == 3 and all(r > 0 for r in self.interval_ratios),
               "cost_volume.interval_ratios needs 3 positive ratios")
        _check(self.num_neighbors >= 0, "cost_volume.num_neighbors must be >= 0")
        _check(self.neighbour_rule in NEIGHBOUR_RULES,
               f"cost_volume.neighbour_rule must be one of {NEIGHBOUR_RULES}")
        _check(len(self.reg_channels) >= 2, "cost_volume.reg_channels needs >= 2 widths")
        _check(self.norm in NORMS, f"cost_volume.norm must be one of {NORMS}")
        _check(self.depth_prior_weight >= 0, "cost_volume.depth_prior_weight must be >= 0")
        _check(1 <= self.depth_prior_stages <= 3, "cost_volume.depth_prior_stages must be 1-3")


FOOTPRINT_DEPTHS = ("point", "centre", "measured_centre")
"""``target_depth.footprint_depth``: the depth a splatted point's footprint gives its pixels."""


@dataclass
class TargetDepthConfig:
    """Target-view depth estimation (paper Algorithm 1 with a z-buffer)."""

    max_splat_radius: int = 2
    """Largest footprint radius (px) of a splatted point; 0 splats every point to one pixel."""
    footprint_depth: str = "point"
    """What a pixel that a point's footprint covers gets: ``point``, the point's own depth (the
    nearest footprint wins: on a slanted surface every pixel takes the nearest of its
    neighbours' depths, biased towards the camera); ``centre``, footprints decide only which
    surface the pixel sees, its depth is that of the points nearest its centre when they lie
    within ``leak_tolerance`` of that surface, and it is filled from its neighbours otherwise;
    ``measured_centre``, ``centre`` for the measured points (RGB-D: footprints of about a
    pixel, at the camera's resolution) and ``point`` for the estimated ones (a model trained on
    ``point`` D_T from its cost volume's coarse maps), per pixel by which surface it sees (a
    depth camera's holes, filled by the estimate, keep the rule elsewhere). One of
    :data:`FOOTPRINT_DEPTHS`."""
    centre_mean_tolerance: float = 0.0
    """With a centre rule (``centre``, ``measured_centre``): a pixel's depth is the mean of
    the centre points that lie within this relative distance of the nearest of them, instead
    of that nearest (0). The nearest of several noisy measurements of one surface is biased
    towards the camera by about the noise (a depth camera's ~1 %); their mean is not."""
    leak_filter: bool = True
    """Drop z-buffer pixels where most neighbours are clearly nearer (background leaking through
    gaps of a forward-splatted foreground)."""
    leak_tolerance: float = 0.05
    """Relative depth gap that counts as 'clearly nearer'."""
    fill_iterations: int = 8
    """Rounds of 3x3 masked-mean hole filling; pixels still empty are invalid."""
    measured_fill_iterations: int = -1
    """Rounds of hole filling for holes whose neighbours are all measured (RGB-D): past
    ``fill_iterations``, a round fills only such holes (measured depth is exact enough to be
    carried farther than an estimate); -1 (or anything <= ``fill_iterations``) = no more
    rounds than ``fill_iterations``."""
    smooth: bool = True
    smooth_range: float = 0.05
    """Edge-preserving 3x3 bilateral smoothing: range sigma relative to depth."""
    consistency_tolerance: float = 0.02
    """Multi-view geometric consistency (relative depth agreement) of the source depths: points
    that at least ``consistency_min_views`` other sources confirm are splatted first, the rest
    only where no confirmed point reaches. 0 turns the check off (every point counts alike)."""
    consistency_min_views: int = 1
    """Other sources that must confirm a point for the first tier."""

    def __post_init__(self) -> None:
        _check(self.fill_iterations >= 0 and self.max_splat_radius >= 0,
               "target_depth.fill_iterations and max_splat_radius must be >= 0")
        _check(self.measured_fill_iterations >= -1,
               "target_depth.measured_fill_iterations must be >= 0 (-1 = fill_iterations)")
        _check(self.footprint_depth in FOOTPRINT_DEPTHS,
               f"target_depth.footprint_depth must be one of {FOOTPRINT_DEPTHS}, got "
               f"{self.footprint_depth!r}")
        _check(self.consistency_tolerance >= 0 and self.consistency_min_views >= 1,
               "target_depth.consistency_tolerance must be >= 0 and consistency_min_views >= 1")
        _check(self.leak_tolerance >= 0 and self.smooth_range > 0,
               "target_depth tolerances must be positive")
        _check(0 <= self.centre_mean_tolerance < 1,
               "target_depth.centre_mean_tolerance must lie in [0, 1) (0 = the nearest)")


@dataclass
class RendererConfig:
    """Volume renderer (paper Eq. 9-11)."""

    d_model: int = 32
    num_heads: int = 4
    num_layers: int = 4
    ff_mult: int = 2
    density_channels: int = 128
    density_blocks: int = 3
    """Residual 1D-conv blocks along the ray (kernel 3, no pooling: any sample count works)."""
    occlusion_threshold: float = 0.2
    """A sample is occluded in a view when it lies behind that view's depth by more than this
    fraction of the view's finest cost-volume band (released: 0.2)."""
    occlusion_min: float = 0.02
    """...and by more than this many metres."""
    alpha_mode: str = "opacity"
    """``opacity``: alpha = 1 - exp(-sigma) (GeoNeRF / released); ``delta``: 1 - exp(-sigma dt)."""
    normalise_colour: bool = True
    """Colour = sum_s w_s c_s / sum_s w_s, as the depth already is: an indoor ray ends on a
    surface inside its sampled band, so opacity the density left unspent is not black. With
    ``false`` (GeoNeRF / released) a ray with accumulated opacity 0.83 comes out 17 % dark; on
    held-out rooms at 320x240 that cost the first CPU stage 5.1 dB (docs/METHOD.md §4)."""
    colour_views: int = 0
    """Colour blended from the ``colour_views`` source views nearest the target (by
    :func:`geometry.pose_distance`); a farther view lends colour only to samples that none of
    those sees or, failing that, lands in. 0 = every source view (the paper). The density, D_T
    and the semantics always use every view. An inference setting (docs/METHOD.md §11)."""
    measured_colour_views: int = -1
    """``colour_views`` for a source set with sensor depth (``SourceEncoding.has_sensor_depth``),
    whose D_T is a measurement, so farther views may colour as well as near ones; -1 = the same
    as ``colour_views``. An inference setting; nothing changes from RGB."""
    depth_from_measured: bool = False
    """Where the surface a target pixel sees is measured (an RGB-D source's depth decided D_T
    there), the output depth is D_T itself, not the volume-rendered depth (which spreads over
    the depth-guided samples within ``sampling.sensor_sigma`` of it); elsewhere the rendered
    depth. An inference setting; nothing changes from RGB."""

    def __post_init__(self) -> None:
        _check(self.d_model % self.num_heads == 0, "renderer.d_model must be divisible by num_heads")
        _check(self.colour_views >= 0, "renderer.colour_views must be >= 0 (0 = every view)")
        _check(self.measured_colour_views >= -1, "renderer.measured_colour_views must be >= 0 "
               "(0 = every view) or -1 (= colour_views)")
        _check(self.alpha_mode in ("opacity", "delta"), "renderer.alpha_mode: opacity | delta")
        _check(self.num_layers >= 0 and self.density_blocks >= 0, "renderer layer counts >= 0")


VOTE_WEIGHTS = ("mean", "proximity")
"""``semantic.vote_weights``: how the ``label_skip`` vote weighs the visible source views."""


@dataclass
class SemanticConfig:
    """Semantic renderer (paper Eq. 12-14) and per-pixel confidence."""

    d_model: int = 32
    num_heads: int = 4
    num_layers: int = 4
    ff_mult: int = 2
    neighbourhood: int = 3
    """Semantic features gathered on a k x k pixel neighbourhood (1 or 3)."""
    mode: str = "surface"
    """``surface``: one point per ray at D_T (paper); ``volume``: composite over all samples."""
    confidence_min_views: int = 2
    """Confidence is scaled by min(1, visible views / this)."""
    invalid_depth_confidence: float = 0.5
    """Confidence factor where the target depth had no support (hole)."""
    label_skip: bool = False
    """Add the mean over the visible views of the 2D segmenter's log-probabilities at the
    point's projection to the head's output (a skip connection; no parameters). The renderer
    then starts from, and learns a correction to, the vote of the source views' 2D labels
    (what the reprojection baseline does). ``False``: the paper's renderer."""
    vote_weights: str = "mean"
    """How ``label_skip`` weighs the visible views: ``mean`` (each alike) or ``proximity``
    (view v by 1 / (``geometry.pose_distance`` to the target + 0.05 m), the reprojection
    baseline's weights: a source posed like the target sees the point at the target's scale
    and angle)."""
    view_geometry: bool = False
    """Give the renderer how each view sees the surface point (:data:`GEOMETRY_FEATURES` per
    view: the ray angle, the depth residual against the view's own depth, the distance ratio,
    the 2D segmenter's entropy there) and let it learn a per-view factor on the vote's
    weights (``label_skip`` needed; surface mode). Both start as no-ops (zero-initialised
    output layers), so a renderer trained without them is continued from where it was.
    ``False``: no such inputs (every checkpoint before them)."""

    def __post_init__(self) -> None:
        _check(self.d_model % self.num_heads == 0, "semantic.d_model must be divisible by num_heads")
        _check(not self.view_geometry or (self.label_skip and self.mode == "surface"),
               "semantic.view_geometry needs label_skip: true and mode: surface")
        _check(self.vote_weights in VOTE_WEIGHTS,
               f"semantic.vote_weights must be one of {' | '.join(VOTE_WEIGHTS)}")
        _check(self.neighbourhood in (1, 3), "semantic.neighbourhood must be 1 or 3")
        _check(self.mode in ("surface", "volume"), "semantic.mode must be surface | volume")
        _check(self.confidence_min_views >= 1, "semantic.confidence_min_views must be >= 1")


@dataclass
class SamplingConfig:
    """Samples along the rays; ``mode`` picks the strategy (model/sampling_modes.py lists them,
    model/sampling.py draws them)."""

    mode: str = "depth_guided"
    num_guided: int = 8
    """depth_guided: K Gaussian samples around D_T (+1 exactly on it)."""
    sigma: float = 0.05
    sigma_mode: str = "relative"
    """``relative``: std = sigma * D_T; ``absolute``: std = sigma metres."""
    sigma_min: float = 0.01
    sensor_sigma: float = 0.01
    """``sigma`` where every source's depth is measured (RGB-D; evaluation ``--sensor-depth``,
    the node with a depth topic): D_T from a depth camera is good to about 1 %, and samples
    spread at the cost volume's 5 % mix colours of other depths into the pixel."""
    num_uniform: int = 64
    """uniform: samples per ray (stratified in training)."""
    num_coarse: int = 32
    num_fine: int = 32
    """hierarchical: coarse pass then fine samples from its weights."""
    mixed_num_samples: int = 16
    mixed_uniform_fraction: float = 0.5
    mixed_switch_step: int = 125_000
    """mixed (paper A.4): half uniform / half guided before this step, then all guided."""
    released_uniform: int = 96
    released_guided: int = 32
    released_sigma: float = 0.5
    """released: 96 uniform + 31 Gaussian (sigma 0.5 m) + 1 surface, semantics at all samples."""
    chunk: int = 4096
    """Rays per chunk in :meth:`GSNeRF.render`."""

    def __post_init__(self) -> None:
        _check(self.mode in SAMPLING_MODES, f"sampling.mode must be one of {SAMPLING_MODES}")
        _check(self.sigma_mode in ("relative", "absolute"), "sampling.sigma_mode: relative | absolute")
        _check(self.sigma > 0 and self.sigma_min >= 0 and self.sensor_sigma > 0,
               "sampling.sigma and sensor_sigma must be > 0")
        _check(min(self.num_guided, self.num_coarse, self.num_fine, self.chunk) >= 1
               and self.num_uniform >= 2 and self.mixed_num_samples >= 2,
               "sampling counts must be positive (num_uniform, mixed_num_samples >= 2)")
        _check(0.0 <= self.mixed_uniform_fraction < 1.0,
               "sampling.mixed_uniform_fraction must be in [0, 1)")
        _check(self.released_uniform >= 2 and self.released_guided >= 1,
               "sampling.released counts must be positive")


@dataclass
class GSNeRFConfig:
    """Whole-model configuration (what the checkpoint sidecar stores)."""

    num_classes: int = 20
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    cost_volume: CostVolumeConfig = field(default_factory=CostVolumeConfig)
    target_depth: TargetDepthConfig = field(default_factory=TargetDepthConfig)
    renderer: RendererConfig = field(default_factory=RendererConfig)
    semantic: SemanticConfig = field(default_factory=SemanticConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    geometry_max_pixels: int = 0
    """Largest image (H x W pixels) the Semantic Geo-Reasoner (encoder, cost volume, 2D
    semantics) works at; 0 = the input size. Larger inputs are encoded at the first pyramid
    level (``model.pyramid.geometry_level``) that fits, while rendering still samples the
    full-resolution source colours. A checkpoint trained at 80x60 sets 4800: its matching and
    3D regularisation have learned receptive fields of that scale, and at 320x240 the same
    weights see a quarter of the context (docs/METHOD.md §9)."""
    semantic_max_pixels: int = -1
    """Largest image (H x W pixels) the 2D semantic features and logits are computed at: the
    first pyramid level that fits (``model.pyramid.semantic_level``), never coarser than the
    geometry level; 0 = the input size; -1 = the geometry level (one encoder pass for both, the
    behaviour of checkpoints without this key). A finer level runs the 2D encoder a second time
    on that level's image for the semantic maps only; the feature pyramid, cost volumes and
    depths stay at the geometry level (docs/METHOD.md §9)."""
    semantic_fuse_max_pixels: int = -1
    """Largest image (pixels) of a second pass of the 2D semantic path whose maps are fused
    with those of ``semantic_max_pixels`` (multi-scale inference of the 2D segmenter): its
    level (``model.pyramid.semantic_levels``; 0 = input size) when it differs from the semantic
    level, the two passes' features and logits averaged on the finer level's grid (the coarser
    ones resampled bilinearly). -1 = one pass (checkpoints without this key). The 2D eye sees
    each scene at two scales: objects that are small at one are larger at the other
    (docs/METHOD.md §9)."""

    def __post_init__(self) -> None:
        _check(self.num_classes >= 1, "num_classes must be >= 1")
        _check(self.geometry_max_pixels >= 0, "geometry_max_pixels must be >= 0 (0 = input size)")
        _check(self.semantic_max_pixels >= -1,
               "semantic_max_pixels must be >= -1 (-1 = the geometry level, 0 = input size)")
        _check(self.semantic_fuse_max_pixels >= -1,
               "semantic_fuse_max_pixels must be >= -1 (-1 = one semantic pass, 0 = input size)")
        for c in self.encoder.fpn_channels:
            _check(c % self.cost_volume.groups == 0,
                   f"cost_volume.groups={self.cost_volume.groups} must divide every "
                   f"encoder.fpn_channels entry ({self.encoder.fpn_channels})")

    @property
    def semantic_channels(self) -> int:
        """Channels of the semantic feature map."""
        return self.encoder.semantic_channels or self.num_classes

    @classmethod
    def tiny(cls, num_classes: int = 4) -> "GSNeRFConfig":
        """Narrow, few-plane configuration for tests and CI (~60k parameters)."""
        return cls(
            num_classes=num_classes,
            encoder=EncoderConfig(channels=[8, 8, 16, 16], fpn_channels=[4, 8, 8], groups=4),
            cost_volume=CostVolumeConfig(num_planes=[16, 8, 4], num_neighbors=2, groups=4,
                                         reg_channels=[4, 8, 8], volume_channels=4),
            renderer=RendererConfig(d_model=16, num_heads=2, num_layers=1, density_channels=16,
                                    density_blocks=1),
            semantic=SemanticConfig(d_model=16, num_heads=2, num_layers=1),
            sampling=SamplingConfig(num_guided=6, num_uniform=16, num_coarse=8, num_fine=8,
                                    mixed_num_samples=8, chunk=1024),
        )
