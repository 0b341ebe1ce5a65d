"""Typed training configuration (``gsnerf-train --config FILE key=value ...``).

One dataclass per concern, nested in :class:`TrainConfig`; loaded with
:func:`gsnerf_ros.config.load_config` and saved beside every checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gsnerf_ros.config import check as _check
from gsnerf_ros.model.config import GSNeRFConfig

__all__ = ["DataConfig", "LossConfig", "OptimConfig", "LogConfig", "TrainConfig"]

DATA_FORMATS = ("replica", "scannet", "bag")
SELECT_METRICS = ("mIoU", "psnr", "acc", "class_acc", "ssim", "segmenter_mIoU", "depth_abs_rel")
"""Validation metrics a run can keep its best weights by (``segmenter_mIoU``: the model's 2D
segmenter on the true target images, ``segmenter_on_target`` of gsnerf-eval;
``depth_abs_rel``: the rendered depth's error, lower is better)."""
LOWER_IS_BETTER = ("depth_abs_rel",)
"""The :data:`SELECT_METRICS` that are errors (the best weights have the lowest)."""
OBJECTIVES = ("gsnerf", "segmenter", "depth_prior")


@dataclass
class DataConfig:
    """Where the scenes are and how samples are drawn."""

    format: str = "replica"
    """On-disk layout: ``replica`` (also what gsnerf-synth writes) | ``scannet`` | ``bag`` (ROS 2
    bags, mcap or sqlite3: a bag, or a folder of bags, one scene per bag)."""
    train_root: str = "data/procedural/train"
    """Folder of training scenes (every scene folder under it unless ``train_scenes``)."""
    val_root: str = "data/procedural/val"
    """Folder of validation scenes used for model selection (never the test split)."""
    train_scenes: list[str] = field(default_factory=list)
    val_scenes: list[str] = field(default_factory=list)
    finetune_scene: str = ""
    """Paper B.1: train on this one scene (a folder) only; validation then uses held-out frames
    of the same scene."""
    height: int = 240
    width: int = 320
    num_sources: int = 8
    pool_ratio: int = 2
    """Sources drawn at random from the ``num_sources * pool_ratio`` nearest frames (training)."""
    val_images_per_scene: int = 4
    num_workers: int = 0
    """DataLoader worker processes reading and resizing frames while the device trains (0 = in
    the training process). Samples are identical for any count (gsnerf_ros.train.loader)."""
    source_strides: list[int] = field(default_factory=lambda: [1])
    """Training sources from every k-th frame, k drawn from this list (see
    ``TrainViewConfig.source_strides``); [1] = every frame."""
    near: float = 0.0
    far: float = 0.0
    """Depth range (m) for every scene; 0 = the scene's own (scene.json ``near``/``far``)."""
    world_frame: str | None = None
    """Bags: frame the camera poses are expressed in; None = the root of the bag's TF tree."""
    image_topic: str | None = None
    """Bags: colour topic (Image or CompressedImage); None = the bag's only colour topic."""
    camera_info_topic: str | None = None
    """Bags: CameraInfo topic; None = the only one, or the one beside the image topic."""
    colour_jitter: float = 0.0
    """``objective`` segmenter or depth_prior only: each frame's colours are varied at random by up to this
    fraction (brightness, contrast, saturation, and a per-channel gain of half of it, a white
    balance), so the 2D segmenter sees other light than the training rooms'
    (train/segmenter_objective.py). 0 = off."""

    def __post_init__(self) -> None:
        _check(self.format in DATA_FORMATS, f"data.format must be one of {DATA_FORMATS}")
        _check(0.0 <= self.colour_jitter < 1.0, "data.colour_jitter must be in [0, 1)")
        _check(self.height > 0 and self.width > 0, "data.height/width must be positive")
        _check(self.num_sources >= 2, "data.num_sources must be >= 2")
        _check(self.pool_ratio >= 1, "data.pool_ratio must be >= 1")
        _check(len(self.source_strides) >= 1 and min(self.source_strides) >= 1,
               "data.source_strides needs strides >= 1")
        _check(self.near >= 0 and self.far >= 0 and (self.far == 0 or self.far > self.near),
               "data.near/far must be >= 0 with far > near (0 = the scene's)")
        _check(self.format == "bag" or not (self.world_frame or self.image_topic
                                            or self.camera_info_topic),
               "data.world_frame / image_topic / camera_info_topic apply to data.format=bag only")
        _check(self.num_workers >= 0, "data.num_workers must be >= 0")


@dataclass
class LossConfig:
    """Loss weights (paper Eq. 6/7/16/17; released-code values as defaults)."""

    rgb: float = 1.0
    semantic: float = 0.5
    semantic_2d: float = 0.5
    depth_mode: str = "supervised"
    """``supervised`` (GT depth, Eq. 6) | ``self_supervised`` (Eq. 7 / A.1) | ``none``."""
    depth_src: float = 1.0
    depth_ray: float = 0.1
    level_weights: list[float] = field(default_factory=lambda: [2.0, 1.0, 0.5])
    smooth_l1_beta: float = 1.0
    class_weights: list[float] = field(default_factory=list)
    """Explicit per-class weights (length C); empty = from ``background_*``."""
    background_classes: list[int] = field(default_factory=list)
    background_weight: float = 1.0
    ss_weight: float = 0.1
    """Self-supervised: overall weight of the RC-MVSNet term."""
    ss_recon: float = 12.0
    ss_ssim: float = 6.0
    ss_smooth: float = 0.18
    ss_neighbours: int = 3
    ss_ray_to_target: float = 0.05
    """Self-supervised: SmoothL1(rendered depth, detached D_T) weight."""

    def __post_init__(self) -> None:
        _check(self.depth_mode in ("supervised", "self_supervised", "none"),
               "loss.depth_mode must be supervised | self_supervised | none")
        _check(len(self.level_weights) >= 1, "loss.level_weights needs at least one weight")


@dataclass
class OptimConfig:
    """Adam with linear warm-up and cosine decay (paper A.5, released code)."""

    steps: int = 250_000
    lr: float = 5e-4
    lr_min: float = 1e-5
    weight_decay: float = 1e-5
    warmup_steps: int = 500
    clip_mode: str = "value"
    """``value`` (released code, 2.0) | ``norm`` | ``none``."""
    clip: float = 2.0
    rays_per_step: int = 1024
    stop_at: int = 0
    """Stop after this many steps (0 = ``steps``); the lr schedule still spans ``steps``, so a
    time-boxed run resumed later continues exactly as an uninterrupted one."""
    time_limit_s: float = 0.0
    """Stop (validate and checkpoint) once this many seconds of training have passed (0 = no
    limit): a run sized to a device session. Resuming continues the schedule."""
    anneal_by_time: bool = False
    """With ``time_limit_s``: the cosine decay follows whichever is further along, the steps
    or the clock (elapsed / ``time_limit_s``), so a time-boxed run whose step count is unknown
    in advance (a first run on a new device) still ends at ``lr_min``. The steps it took are in
    the run's summary.json; bit-exact resume is not kept (the schedule depends on speed)."""

    def __post_init__(self) -> None:
        _check(0 <= self.stop_at, "optim.stop_at must be >= 0")
        _check(self.time_limit_s >= 0, "optim.time_limit_s must be >= 0")
        _check(not self.anneal_by_time or self.time_limit_s > 0,
               "optim.anneal_by_time needs optim.time_limit_s > 0")
        _check(self.steps >= 1 and self.rays_per_step >= 1, "optim.steps/rays_per_step >= 1")
        _check(self.lr > 0 and 0 <= self.lr_min <= self.lr, "need 0 <= optim.lr_min <= optim.lr")
        _check(self.clip_mode in ("value", "norm", "none"), "optim.clip_mode: value|norm|none")


@dataclass
class LogConfig:
    """TensorBoard, validation and checkpoint cadence (in steps)."""

    log_every: int = 50
    val_every: int = 1000
    ckpt_every: int = 1000
    panels: int = 1
    """Image panels written to TensorBoard at each validation."""
    tensorboard: bool = True
    progress: bool = True
    """tqdm progress bar; when false, one plain log line goes to stdout every ``log_every``
    steps (and after the first step), so a run without a terminal still shows progress."""
    select_metric: str = "mIoU"
    """Validation metric (higher is better) that picks ``best.safetensors``: mIoU | psnr | acc."""

    def __post_init__(self) -> None:
        _check(self.select_metric in SELECT_METRICS,
               f"log.select_metric must be one of {' | '.join(SELECT_METRICS)}")
        _check(min(self.log_every, self.val_every, self.ckpt_every) >= 1,
               "log.*_every must be >= 1")


@dataclass
class TrainConfig:
    """Everything a training run needs; saved as ``config.yaml`` in ``run_dir``."""

    run_dir: str = "runs/default"
    seed: int = 123
    device: str = "auto"
    """``auto`` (CUDA if available), ``cpu``, ``cuda``, ``cuda:1``..."""
    bf16: bool = True
    """bf16 autocast for the forward pass on CUDA (ignored on CPU)."""
    resume: str = ""
    """``auto`` = the latest checkpoint in ``run_dir`` if any; or a checkpoint path."""
    init_checkpoint: str = ""
    """Start from these weights (fine-tuning, paper B.1); the optimiser starts fresh. Training
    data without labels (a robot's bag) keeps this checkpoint's classes."""
    init_modules: list[str] = field(default_factory=list)
    """Module prefixes (e.g. ``cost_volume``, ``volume_renderer``) taken from
    ``init_checkpoint``; empty = every weight (strict). With prefixes, the rest of the model
    keeps its own initialisation (e.g. a new, pretrained 2D encoder beside the shipped cost
    volume and renderers), and each named module must fit the checkpoint's exactly."""
    model_from_checkpoint: bool = False
    """Take the whole model section (architecture and options) from ``init_checkpoint``'s
    sidecar instead of ``model``, so a fine-tuning config fits whichever checkpoint it is given."""
    freeze: list[str] = field(default_factory=list)
    """Module prefixes whose weights stay fixed (e.g. ``encoder``, ``semantic_renderer``):
    self-supervised fine-tuning on unlabelled bags freezes what feeds the semantics
    (docs/METHOD.md)."""
    threads: int = 0
    """torch.set_num_threads on CPU (0 = leave PyTorch's default)."""
    objective: str = "gsnerf"
    """``gsnerf``: the whole model with GSNeRF's losses; ``segmenter``: the 2D segmenter alone
    on batches of single frames of many rooms (:mod:`gsnerf_ros.train.segmenter_objective`);
    ``depth_prior``: the encoder's single-view depth head alone, on the same batches
    (:mod:`gsnerf_ros.train.depth_prior_objective`)."""
    model: GSNeRFConfig = field(default_factory=GSNeRFConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def __post_init__(self) -> None:
        _check(self.objective in OBJECTIVES,
               f"objective must be one of {' | '.join(OBJECTIVES)}")
        _check(self.objective != "gsnerf" or self.data.colour_jitter == 0.0,
               "data.colour_jitter applies to objectives segmenter and depth_prior only (a "
               "GSNeRF step's target "
               "and sources must keep one light)")
