"""Render orchestration behind a small :class:`Renderer` protocol (ROS-free).

:class:`RenderEngine` owns the keyframe buffer's encoding worker and serves render requests:
view selection (the K nearest encoded keyframes), one render at a time on the device (a lock
shared with the encoder), and a bounded, prioritised queue of waiting requests with a deadline
each (:class:`~gsnerf_ros.runtime.request_queue.RequestQueue`: a full queue answers at once with
``busy: N queued`` instead of piling up). :class:`GSNeRFRenderer` adapts the model of
:mod:`gsnerf_ros.model`; tests can plug in any object with the same methods.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Protocol, Sequence

import torch
from torch import Tensor

from gsnerf_ros.geometry import neighbour_lateral_shares
from gsnerf_ros.runtime.encoding_worker import EncodingWorker
from gsnerf_ros.runtime.keyframes import Keyframe, KeyframeBuffer
from gsnerf_ros.runtime.request_queue import PRIORITY_SERVICE, RequestQueue
from gsnerf_ros.runtime.requests import RequestError

__all__ = ["RenderOutput", "Renderer", "GSNeRFRenderer", "RenderSettings", "RenderEngine",
           "EngineResult", "sources_lateral_share", "DTYPES"]

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass
class RenderOutput:
    """One rendered view. ``rgb`` [H,W,3] in [0,1]; ``depth`` [H,W] m (0 = invalid);
    ``labels`` [H,W] int64; ``confidence`` [H,W] in [0,1]."""

    rgb: Tensor
    depth: Tensor
    labels: Tensor
    confidence: Tensor


class Renderer(Protocol):
    """What the engine needs from a model."""

    class_names: list[str]
    palette: Tensor
    num_neighbors: int
    description: str

    def encode(self, keyframe: Keyframe, neighbours: list[Keyframe]) -> Any:
        """Cacheable encoding of one keyframe against its neighbours."""

    def render(self, sources: list[Keyframe], K: Tensor, c2w: Tensor, height: int,
               width: int) -> RenderOutput:
        """Render ``height`` x ``width`` at ``c2w`` [4,4] with ``K`` [3,3] from encoded sources."""


class GSNeRFRenderer:
    """Adapter from :class:`gsnerf_ros.model.GSNeRF` to :class:`Renderer`.

    ``use_sensor_depth``: a keyframe's measured depth (RGB-D input) replaces the cost-volume
    depth of its encoding where valid (``ViewEncoding.with_sensor_depth``).
    ``chunk`` None or 0: rays per chunk from the memory cap ``max_memory_mb``
    (:func:`gsnerf_ros.model.memory.auto_chunk`; never from the free memory of a shared GPU).
    ``kernel``: view-transformer implementation (``auto`` | ``eager`` | ``triton``).
    Inference settings of the checkpoint (:class:`gsnerf_ros.model.inference.InferenceConfig`,
    set on ``model.config`` by ``apply_inference``; None or -1 keeps the checkpoint's):
    ``geometry_max_pixels`` >= 0 (``GSNeRFConfig.geometry_max_pixels``), ``num_neighbors`` >= 1
    (``cost_volume.num_neighbors``: the keyframes each keyframe's cost volume matches against;
    the encoder waits until the buffer holds that many others), ``consistency_tolerance`` >= 0
    (``target_depth.consistency_tolerance``; 0 = off), ``colour_views`` >= 0
    (``renderer.colour_views``: the colour's nearest sources; 0 = every source) and
    ``neighbour_rule`` (``cost_volume.neighbour_rule``, None or "" keeps the checkpoint's: how
    each keyframe's cost-volume neighbours are chosen; the engine gives the keyframe buffer the
    same rule, :attr:`neighbour_rule`) and ``vote_weights`` (``semantic.vote_weights``, None or ""
    keeps the checkpoint's: how the semantic renderer's vote weighs the sources) and
    ``depth_prior_weight`` >= 0 (``cost_volume.depth_prior_weight``: the single-view depth prior
    in each keyframe's cost volume; 0 = off; > 0 needs a checkpoint with the depth head).
    Keyframe encodings stay on the model's device; ``dtype`` float16/bfloat16 runs the network
    under autocast on CUDA (float32 on the CPU, where autocast would only slow it down).

    The stacked source set of the last render is reused (``stack_cache``, a
    :class:`gsnerf_ros.model.StackCache`) while the nearest keyframes stay the same. Sources are
    stacked in keyframe-id order, so the same set in another order is a hit; the model is
    invariant to the order of its source views.
    """

    def __init__(self, model: Any, near: float, far: float, mode: str = "depth_guided",
                 num_samples: int | None = None, chunk: int | None = None,
                 dtype: str = "float32", use_sensor_depth: bool = True,
                 max_memory_mb: float = 2048.0, kernel: str = "auto",
                 geometry_max_pixels: int | None = None,
                 num_neighbors: int | None = None, floor_z: float | None = None,
                 colour_views: int | None = None,
                 consistency_tolerance: float | None = None,
                 semantic_source: str = "model", label_angle_sigma: float = 0.0,
                 label_depth_search: float = 0.0, neighbour_rule: str | None = None,
                 vote_weights: str | None = None,
                 depth_prior_weight: float | None = None) -> None:
        from gsnerf_ros.model import StackCache
        from gsnerf_ros.model.inference import InferenceConfig, apply_inference

        if not 0 < near < far:
            raise ValueError(f"depth range must satisfy 0 < near < far, got {near}, {far}")
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")
        if max_memory_mb <= 0:
            raise ValueError(f"max_memory_mb must be > 0, got {max_memory_mb}")
        inference = InferenceConfig.from_sentinels(
            geometry_max_pixels=geometry_max_pixels, num_neighbors=num_neighbors,
            consistency_tolerance=consistency_tolerance, colour_views=colour_views,
            neighbour_rule=neighbour_rule, vote_weights=vote_weights,
            depth_prior_weight=depth_prior_weight)
        self.model = model.eval().set_kernel(kernel)
        apply_inference(self.model.config, inference)
        self.max_memory_mb = float(max_memory_mb)
        self.near, self.far = float(near), float(far)
        self.mode, self.num_samples, self.chunk = mode, num_samples or None, chunk or None
        self.dtype = dtype
        self.use_sensor_depth = use_sensor_depth
        from gsnerf_ros.model.encoding import check_floor_z

        self.floor_z = None if floor_z is None else check_floor_z(floor_z)
        """Floor height (m, world z up) that bounds every depth (``GSNeRF.render``), or None."""
        self.class_names = list(model.class_names)
        self.palette = torch.as_tensor(model.palette, dtype=torch.uint8)
        self.num_neighbors = int(model.config.cost_volume.num_neighbors)
        self.neighbour_rule = str(model.config.cost_volume.neighbour_rule)
        self.device = model.device
        self.description = (f"GSNeRF {model.num_parameters()} params, {len(self.class_names)} "
                            f"classes, {mode}, {dtype} on {self.device}"
                            + (f", geometry <= {model.config.geometry_max_pixels} px"
                               if model.config.geometry_max_pixels else "")
                            + f", {self.num_neighbors} cost-volume neighbours"
                            + (f" by {self.neighbour_rule}"
                               if self.neighbour_rule != "nearest" else "")
                            + (f", colour from the {model.config.renderer.colour_views} "
                               "nearest sources" if model.config.renderer.colour_views else "")
                            + (f", floor at z = {self.floor_z} m" if self.floor_z is not None
                               else ""))
        self.stack_cache = StackCache()
        from gsnerf_ros.runtime.segmenter_labels import SEMANTIC_SOURCES, LabelSpace

        if semantic_source not in SEMANTIC_SOURCES:
            raise ValueError(f"semantic_source must be one of {SEMANTIC_SOURCES}, got "
                             f"{semantic_source!r}")
        if label_angle_sigma < 0:
            raise ValueError(f"label_angle_sigma must be >= 0 deg, got {label_angle_sigma}")
        self.semantic_source = semantic_source
        """``model``: the model's classes; ``labels``: the vote of the sources' segmenter labels
        (:meth:`vote_labels`), in the segmenter's ids (:attr:`label_space`)."""
        self.label_angle_sigma = float(label_angle_sigma)
        if label_depth_search < 0:
            raise ValueError(f"label_depth_search must be >= 0, got {label_depth_search}")
        self.label_depth_search = float(label_depth_search)
        self.label_space = LabelSpace()
        """The segmenter's class names (the node feeds its LabelInfo in)."""
        if semantic_source == "labels":
            self.description += (", classes: the sources' segmenter labels voted at the surface"
                                 + (f" (view weight sigma {label_angle_sigma} deg)"
                                    if label_angle_sigma else "")
                                 + (f", depth search +-{label_depth_search:.0%}"
                                    if label_depth_search else ""))

    @classmethod
    def from_checkpoint(cls, path: str, device: str | torch.device, **kw: Any) -> "GSNeRFRenderer":
        from gsnerf_ros.model import GSNeRF

        return cls(GSNeRF.from_checkpoint(path, device=device), **kw)

    def _autocast(self) -> Any:
        if self.dtype != "float32" and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=DTYPES[self.dtype])
        return contextlib.nullcontext()

    @torch.no_grad()
    def encode(self, keyframe: Keyframe, neighbours: list[Keyframe]) -> Any:
        dev = self.device
        H, W = keyframe.height, keyframe.width
        nb = [n for n in neighbours if (n.height, n.width) == (H, W)]
        nbr_images = (torch.stack([n.image for n in nb]) if nb
                      else torch.zeros(0, 3, H, W)).to(dev)
        nbr_K = (torch.stack([n.K for n in nb]) if nb else torch.zeros(0, 3, 3)).to(dev)
        nbr_c2w = (torch.stack([n.c2w for n in nb]) if nb else torch.zeros(0, 4, 4)).to(dev)
        with self._autocast():
            enc = self.model.encode_view(keyframe.image.to(dev), keyframe.K.to(dev),
                                         keyframe.c2w.to(dev), nbr_images, nbr_K, nbr_c2w,
                                         self.near, self.far)
        if self.use_sensor_depth and keyframe.depth is not None:
            enc = enc.with_sensor_depth(keyframe.depth.to(dev))
        return enc.detach()

    @staticmethod
    def median_depth(encoding: Any) -> float | None:
        """Median (m) of an encoding's finest depth (measured where RGB-D), or None when it
        holds no positive depth: a keyframe's scene depth for the triangulation rule."""
        d = encoding.depth
        d = d[torch.isfinite(d) & (d > 0)]
        return float(d.median()) if d.numel() else None

    def stacked(self, sources: list[Keyframe]) -> Any:
        """The :class:`SourceEncoding` of ``sources`` (in id order), reused from the previous
        call when it holds the very same encodings."""
        return self.stack_cache.get([s.encoding for s in sorted(sources, key=lambda s: s.id)])

    @torch.no_grad()
    def render(self, sources: list[Keyframe], K: Tensor, c2w: Tensor, height: int,
               width: int) -> RenderOutput:
        from gsnerf_ros.model.memory import auto_chunk

        enc = self.stacked(sources)
        lowp = self.dtype != "float32" and self.device.type == "cuda"
        chunk = self.chunk or auto_chunk(self.model, len(enc), height * width, self.mode,
                                         self.num_samples, self.max_memory_mb, 2 if lowp else 4)
        # Every source's depth measured (RGB-D): D_T is good to the sensor's accuracy, so the
        # depth-guided samples stay that close to it (sampling.sensor_sigma).
        measured = self.use_sensor_depth and all(s.depth is not None for s in sources)
        sigma = self.model.config.sampling.sensor_sigma if measured else None
        # With the labels source the classes are the vote's: the model's semantics are not run.
        labels_source = self.semantic_source == "labels"
        with self._autocast():
            res = self.model.render(enc, K.float().to(self.device), c2w.float().to(self.device),
                                    height, width, mode=self.mode, num_samples=self.num_samples,
                                    chunk=chunk, near=self.near, far=self.far,
                                    guided_sigma=sigma, floor_z=self.floor_z,
                                    semantics=not labels_source)
        if labels_source:
            labels, conf = self.vote_labels(enc, sources, K, c2w, res)
            return RenderOutput(rgb=res.rgb.float(), depth=res.depth.float(), labels=labels,
                                confidence=conf)
        return RenderOutput(rgb=res.rgb.float(), depth=res.depth.float(), labels=res.labels,
                            confidence=res.confidence.float())

    def vote_labels(self, enc: Any, sources: list[Keyframe], K: Tensor, c2w: Tensor,
                    res: Any) -> tuple[Tensor, Tensor]:
        """The sources' segmenter labels voted at the render's surface point
        (:func:`gsnerf_ros.model.label_vote.vote_labels`, D_T of ``res``), in the ids of the
        current LabelInfo: (labels [H, W] int64 with :attr:`LabelSpace.unknown_value` where no
        keyframe votes, confidence [H, W] = the winner's share)."""
        from gsnerf_ros.model.label_vote import vote_labels

        ordered = sorted(sources, key=lambda s: s.id)          # the order of stacked()
        maps = [None if s.labels is None else self.label_space.to_current(s.labels)
                for s in ordered]
        confs = [None if s.labels is None else s.labels.confidence for s in ordered]
        if self.floor_z is not None:                            # the render's occlusion depths
            enc = enc.with_floor(self.floor_z)
        vote = vote_labels(enc, maps, confs, K.float().to(self.device),
                           c2w.float().to(self.device), res.target_depth, res.target_depth_valid,
                           self.model.config.renderer, self.model.cost_volume.spacing,
                           angle_sigma_deg=self.label_angle_sigma,
                           depth_search=self.label_depth_search)
        labels = vote.labels.cpu()
        labels = torch.where(labels < 0, torch.full_like(labels, self.label_space.unknown_value),
                             labels)
        return labels, vote.confidence.float()


@dataclass
class RenderSettings:
    """Request-path limits. ``min_keyframes``: encoded keyframes needed before rendering;
    ``queue_size``: requests that may wait for the device; ``request_timeout``: seconds a
    request may wait before it is refused."""

    num_source_views: int = 4
    min_keyframes: int = 3
    queue_size: int = 8
    request_timeout: float = 30.0

    def __post_init__(self) -> None:
        if self.num_source_views < 1 or self.min_keyframes < 1 or self.queue_size < 1:
            raise ValueError("num_source_views, min_keyframes and queue_size must be >= 1")
        if not self.request_timeout > 0:
            raise ValueError(f"request_timeout must be > 0 s, got {self.request_timeout}")


@dataclass
class EngineResult:
    """A served request: the output, the source keyframe ids, and timings in ms."""

    output: RenderOutput
    source_ids: list[int]
    render_ms: float
    wait_ms: float


def sources_lateral_share(poses: Sequence[Tensor], num_neighbors: int) -> float | None:
    """Median ``geometry.neighbour_lateral_shares`` of source poses (``c2w`` [4, 4] each; None
    for fewer than 2, or when every pair shares a centre)."""
    if len(poses) < 2:
        return None
    shares = neighbour_lateral_shares(torch.stack([p.float() for p in poses]),
                                      max(1, num_neighbors))
    return float(shares.median()) if shares.numel() else None


class RenderEngine:
    """Serves renders from a :class:`KeyframeBuffer` with a :class:`Renderer`.

    Thread-safe: any number of threads may call :meth:`render`; at most one runs on the device and
    at most ``queue_size`` wait (served by priority, then arrival); the rest get a
    :class:`RequestError` immediately, and a request still waiting after ``request_timeout``
    seconds gets one too.
    """

    def __init__(self, renderer: Renderer, buffer: KeyframeBuffer,
                 settings: RenderSettings | None = None,
                 encode_min_neighbors: int | None = None) -> None:
        self.renderer = renderer
        self.buffer = buffer
        self.settings = settings or RenderSettings()
        self.device_lock = threading.Lock()
        self.queue = RequestQueue(self.settings.queue_size)
        rule = getattr(renderer, "neighbour_rule", None)
        if rule is not None:              # keyframes are matched by the model's rule
            buffer.policy = replace(buffer.policy, neighbour_rule=rule)
        near, far = getattr(renderer, "near", None), getattr(renderer, "far", None)
        if near is not None and far is not None:
            buffer.policy = replace(buffer.policy, depth_range=(float(near), float(far)))
        self.worker = EncodingWorker(buffer, renderer.encode, renderer.num_neighbors,
                                     self.device_lock, min_neighbors=encode_min_neighbors,
                                     depth_fn=getattr(renderer, "median_depth", None))
        self.last_latency_ms: float | None = None
        self._last_source_poses: list[Tensor] | None = None
        self.renders = 0
        self.input_problem: Callable[[], str | None] | None = None
        """Set by the node: why no keyframe arrives (nothing received, TF missing, frames
        dropped), or None; named first when a render is refused for want of keyframes."""

    @property
    def last_lateral_share(self) -> float | None:
        """Median lateral baseline share of the last render's sources, each against its
        ``num_neighbors`` nearest among them (:func:`sources_lateral_share`): below about 0.4
        the camera moved mostly along its axis and the depth is often poor
        (docs/history/RESULTS.md §0.1b). Computed when read (the diagnostics timer), not on the render path."""
        poses = self._last_source_poses
        return (sources_lateral_share(poses, self.renderer.num_neighbors)
                if poses is not None else None)

    def start(self) -> None:
        """Start the encoding worker thread."""
        self.worker.start()

    def stop(self) -> None:
        self.worker.stop()

    def select_sources(self, c2w: Tensor) -> list[Keyframe]:
        """The ``num_source_views`` encoded keyframes nearest to ``c2w`` [4,4]."""
        n_enc = self.buffer.num_encoded()
        need = self.settings.min_keyframes
        if n_enc < need:
            raise RequestError(self.not_ready_message(n_enc, need))
        return self.buffer.nearest(c2w, self.settings.num_source_views)

    def not_ready_message(self, n_enc: int, need: int) -> str:
        """Why a render is refused before ``need`` keyframes are encoded, and what helps."""
        n, pending = len(self.buffer), self.buffer.num_pending()
        pol = self.buffer.policy
        head = (f"only {n_enc} encoded keyframe(s) in the buffer, {need} needed "
                f"({n} received, {pending} waiting for encoding)")
        if n >= need:
            return (f"{head}; the encoder is catching up (each keyframe is encoded once, newest "
                    "first), retry in a moment")
        cause = self.input_problem() if self.input_problem is not None else None
        if cause:
            return (f"{cause}; so {head}; fix the input, then move the camera: a keyframe is "
                    f"added every {pol.min_translation} m or {pol.min_rotation_deg} deg")
        return (f"{head}; move the camera: a keyframe is added every {pol.min_translation} m or "
                f"{pol.min_rotation_deg} deg of motion (check that images, camera_info and the "
                "camera's TF arrive), then retry")

    def render(self, c2w: Tensor, K: Tensor, width: int, height: int,
               priority: int = PRIORITY_SERVICE, timeout_s: float | None = None) -> EngineResult:
        """Render one view. ``c2w`` [4,4] world <- virtual optical frame; ``K`` [3,3] px.

        ``priority``: lower is served first (see :mod:`~gsnerf_ros.runtime.request_queue`);
        ``timeout_s``: longest wait for the device (default ``settings.request_timeout``).
        """
        t0 = time.perf_counter()
        if self.buffer.num_encoded() < self.settings.min_keyframes:
            self.select_sources(c2w)              # refuses at once, without queueing
        with self.queue.slot(priority, timeout_s or self.settings.request_timeout):
            with self.device_lock:
                t1 = time.perf_counter()
                sources = self.select_sources(c2w)
                out = self.renderer.render(sources, K, c2w, height, width)
            t2 = time.perf_counter()
        self.last_latency_ms = (t2 - t0) * 1e3
        self._last_source_poses = [s.c2w for s in sources]
        self.renders += 1
        return EngineResult(out, [s.id for s in sources], (t2 - t1) * 1e3, (t1 - t0) * 1e3)
