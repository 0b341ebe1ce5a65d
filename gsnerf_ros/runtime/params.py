"""The node's parameters: one table of names, defaults, descriptions and ranges (ROS-free).

The node declares every entry of :data:`PARAMETERS` with a ``ParameterDescriptor`` (description
and range) and reads them back into :class:`NodeParams`. ``config/gsnerf.yaml`` sets them under
``/**/gsnerf: ros__parameters:`` (the node ``gsnerf`` in any namespace) with the same dotted names
as nested keys.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from gsnerf_ros.geometry import NEIGHBOUR_RULES
from gsnerf_ros.model.config import VOTE_WEIGHTS
from gsnerf_ros.model.fused_attention import KERNELS
from gsnerf_ros.runtime.checkpoint_lookup import DEFAULT_CHECKPOINT
from gsnerf_ros.runtime.ingest import CAMERA_INPUTS
from gsnerf_ros.model.label_vote import SEMANTIC_SOURCES
from gsnerf_ros.runtime.keyframes import EVICTION_POLICIES
from gsnerf_ros.model.sampling_modes import SAMPLING_MODES

__all__ = ["ParamSpec", "PARAMETERS", "NodeParams", "params_from_values"]


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: dotted ``name``, ``default`` (fixes the type), text, optional range/choices."""

    name: str
    default: Any
    description: str
    min: float | None = None
    max: float | None = None
    step: float | None = None
    choices: tuple[str, ...] | None = None
    read_only: bool = True
    """False: the node reads it at each use, so it may change while the node runs."""


PARAMETERS: tuple[ParamSpec, ...] = (
    # topics
    ParamSpec("topics.image", "image", "Input sensor_msgs/Image topic (rgb8, bgr8, rgba8, bgra8, mono8)."),
    ParamSpec("topics.camera_info", "camera_info", "Input sensor_msgs/CameraInfo topic."),
    ParamSpec("topics.image_transport", "raw", "How the image arrives: raw (sensor_msgs/Image on "
              "topics.image) or compressed (JPEG/PNG sensor_msgs/CompressedImage on "
              "<topics.image>/compressed, the image topic resolved and remapped first, as "
              "image_transport names it; decoded with OpenCV).",
              choices=("raw", "compressed")),
    ParamSpec("topics.depth", "", "Optional depth image topic (16UC1 mm or 32FC1 m); empty = none."),
    ParamSpec("topics.depth_camera_info", "", "Optional CameraInfo topic of the depth image; "
              "empty = the depth is the colour camera's (same size and model). When set and the "
              "depth camera is another (frame, intrinsics or size), the depth is registered to "
              "the colour camera through the TF depth frame -> colour frame at the stamp."),
    ParamSpec("topics.labels", "", "Optional class-id image of a 2D segmenter the robot runs "
              "(sensor_msgs/Image mono8 or mono16; 255 / 65535 = unknown) at the colour camera's "
              "size, stamped like the image it labels; synchronised with the image like depth. "
              "Each keyframe keeps its labels; semantic.source: labels renders them. Empty = "
              "none."),
    ParamSpec("topics.label_confidence", "", "Optional per-pixel confidence of topics.labels "
              "(32FC1 in [0, 1] or mono8 0-255), synchronised too; it weighs each keyframe's "
              "vote. Empty = every label weighs 1."),
    ParamSpec("topics.label_info", "", "Optional vision_msgs/LabelInfo of the segmenter "
              "(transient local): its class names, republished on ~/label_info with "
              "semantic.source: labels. Empty = ids without names."),
    ParamSpec("topics.pose", "", "Optional camera pose topic instead of TF; empty = use TF."),
    ParamSpec("topics.pose_type", "pose", "Message type of topics.pose.", choices=("pose", "odometry")),
    # frames
    ParamSpec("frames.world", "map", "World frame: keyframe poses, render requests and markers."),
    ParamSpec("frames.camera", "", "Camera optical frame; empty = the image header's frame_id."),
    ParamSpec("frames.pose_body", "", "Frame whose pose topics.pose gives; empty = the camera "
              "optical frame itself, else composed with TF pose_body -> camera."),
    ParamSpec("frames.request_body", "", "Frame whose pose a render request gives (~/render_view, "
              "~/render_views, ~/render_pose): empty = the camera's optical frame (x right, y "
              "down, z forward); a body frame such as base_link (REP 103: x forward, z up) = the "
              "robot's pose, and the node renders what its camera sees from there, composing "
              "the pose with the latest TF request_body -> camera optical frame "
              "(frames.camera, else the newest keyframe's frame). A request's own body_frame "
              "field, when not empty, wins.", read_only=False),
    ParamSpec("frames.virtual_camera", "gsnerf_virtual_camera_optical_frame",
              "TF frame broadcast at each rendered pose; the frame_id of every output image."),
    ParamSpec("frames.tf_timeout", 0.2, "Seconds a camera frame may wait (in a queue, never "
              "blocking a callback) for the TF at its stamp before it is dropped; also the TF "
              "wait of a render request posed in another frame.", 0.0, 10.0),
    ParamSpec("frames.pending_frames", 8, "Camera frames that may wait for their TF; the oldest "
              "is dropped when more arrive.", 1, 256, 1),
    ParamSpec("frames.time_jump_threshold", 1.0, "Seconds the input stamps may go backwards "
              "(three frames in a row) before it counts as a time jump (bag loop, clock reset): "
              "the keyframe buffer and TF cache are then reset.", 0.0, 3600.0),
    # camera model
    ParamSpec("camera.input", "auto", "How the images relate to their camera_info: raw "
              "(undistorted and rectified with K, D, R, P as image_proc does), rectified "
              "(image_rect: used as it is) or auto (rectified when every distortion coefficient "
              "is zero, raw otherwise). Keyframes get P's 3x3 intrinsics either way; an "
              "image_rect topic with the camera's own camera_info (D != 0) needs rectified.",
              choices=CAMERA_INPUTS),
    # input synchronisation
    ParamSpec("sync.slop", 0.05, "Approximate-time slop between image, camera_info and depth (s).",
              0.0, 1.0),
    ParamSpec("sync.queue_size", 10, "Approximate-time synchroniser queue length.", 1, 100, 1),
    # input QoS
    ParamSpec("qos.input_reliability", "best_effort", "Reliability of the image, camera_info, "
              "depth and pose subscriptions (best_effort also matches reliable publishers).",
              choices=("best_effort", "reliable")),
    ParamSpec("qos.input_depth", 5, "History depth of those subscriptions.", 1, 1000, 1),
    # keyframes
    ParamSpec("keyframes.min_translation", 0.2, "Metres moved since the last keyframe to add one.",
              0.0, 10.0),
    ParamSpec("keyframes.min_rotation_deg", 15.0, "Degrees turned since the last keyframe to add one.",
              0.0, 180.0),
    ParamSpec("keyframes.min_interval", 0.2, "Seconds (of image stamps) between keyframes at "
              "least: caps the keyframe rate of a fast camera; 0 = no cap.", 0.0, 60.0),
    ParamSpec("keyframes.max_pending", 2, "Keyframes that may wait for encoding; frames are "
              "skipped while that many wait, so the encoder keeps up; 0 = no cap.", 0, 64, 1),
    ParamSpec("keyframes.capacity", 32, "Maximum keyframes kept (bounded memory).", 1, 1024, 1),
    ParamSpec("keyframes.encode_min_neighbors", -1, "Other keyframes a keyframe needs before "
              "its first encoding; with fewer than the model's cost-volume neighbours "
              "(model.num_neighbors) it is encoded again once they exist, so renders start "
              "sooner. -1 = wait for all of them and encode once (the default: measured "
              "slightly better, docs/BENCHMARKS.md).", -1, 64, 1),
    ParamSpec("keyframes.eviction", "oldest", "Which keyframe leaves a full buffer: oldest "
              "(sliding window), redundant (nearest to another keyframe) or baseline (the one "
              "whose removal loses the least triangulation: keeps the sideways baselines a "
              "robot driving forward needs; docs/METHOD.md).",
              choices=EVICTION_POLICIES),
    ParamSpec("keyframes.width", 0, "Keyframe width in px for encoding (0 = camera width).", 0, 4096, 1),
    ParamSpec("keyframes.height", 0, "Keyframe height in px (0 = camera height).", 0, 4096, 1),
    # rendering
    ParamSpec("render.num_source_views", 4, "Source keyframes per render (nearest by pose).", 1, 16, 1),
    ParamSpec("render.min_keyframes", 3, "Encoded keyframes needed before renders are served.",
              1, 64, 1),
    ParamSpec("render.width", 160, "Render width when a request's camera_info is all zeros.",
              1, 4096, 1, read_only=False),
    ParamSpec("render.height", 120, "Render height when a request's camera_info is all zeros.",
              1, 4096, 1, read_only=False),
    ParamSpec("render.max_width", 1280, "Largest render width accepted.", 1, 8192, 1,
              read_only=False),
    ParamSpec("render.max_height", 960, "Largest render height accepted.", 1, 8192, 1,
              read_only=False),
    ParamSpec("render.sampling_mode", "depth_guided", "Ray sampling strategy.",
              choices=SAMPLING_MODES),
    ParamSpec("render.num_samples", 0, "Samples per ray (0 = the checkpoint's default).", 0, 1024, 1),
    ParamSpec("render.chunk", 0, "Rays per chunk; 0 = from render.max_memory_mb.", 0, 1 << 20, 1),
    ParamSpec("render.max_memory_mb", 2048.0, "Cap (MB) of a render's working memory on the "
              "device (on top of model and keyframe encodings); sets the chunk size.",
              64.0, 1048576.0),
    ParamSpec("render.kernel", "auto", "View transformer: auto (fused Triton kernel on CUDA "
              "when available) | eager | triton.", choices=KERNELS),
    ParamSpec("render.queue_size", 8, "Requests that may wait for the device; more are refused "
              "at once (busy: N queued).", 1, 64, 1),
    ParamSpec("render.request_timeout", 30.0, "Seconds a request may wait for the device before "
              "it is refused.", 0.1, 3600.0),
    ParamSpec("render.request_qos_depth", 100, "History depth of the render service and action "
              "(requests and responses held for a burst of clients).", 10, 10000, 1),
    ParamSpec("render.max_goals", 2, "render_views goals executing at once; more are rejected.",
              1, 16, 1),
    # model
    ParamSpec("model.checkpoint", DEFAULT_CHECKPOINT,
              "Checkpoint (.safetensors with its .json sidecar); relative paths are resolved "
              "against the package share directory, then the working directory."),
    ParamSpec("model.device", "cuda", "Torch device; falls back to cpu with a warning."),
    ParamSpec("model.dtype", "float32", "Compute dtype (float16/bfloat16 use autocast on CUDA).",
              choices=("float32", "float16", "bfloat16")),
    ParamSpec("model.near", 0.25, "Near depth bound in metres (stage-0 planes start here; the "
              "default checkpoint was trained on 0.25-10 m).",
              0.001, 100.0),
    ParamSpec("model.far", 10.0, "Far depth bound in metres.", 0.01, 1000.0),
    ParamSpec("model.use_sensor_depth", True, "With topics.depth set: a keyframe's measured "
              "depth replaces the cost-volume depth for the render geometry (target depth, "
              "occlusion) where it is valid."),
    ParamSpec("model.floor_bound", False, "Bound every depth by the floor plane at "
              "model.floor_z of the world frame (z up): no surface lies below a ground robot's "
              "floor, and the cost volume's guesses beyond it (a floor at a grazing angle, a "
              "repeating floor pattern) are pulled onto it (docs/METHOD.md §10)."),
    ParamSpec("model.floor_z", 0.0, "Height of the floor in the world frame, metres (0 in a "
              "ground robot's map or odom frame).", -1000.0, 1000.0),
    ParamSpec("model.geometry_max_pixels", -1, "Largest image (pixels) the encoder and cost "
              "volume work at; larger camera images are encoded at the first pyramid level that "
              "fits and rendered with full-resolution colours. -1 = the checkpoint's own "
              "(its training size), 0 = the camera size.", -1, 100_000_000, 1),
    ParamSpec("model.num_neighbors", -1, "Keyframes each keyframe's cost volume matches against "
              "(the encoder waits until the buffer holds that many others). -1 = the "
              "checkpoint's own (gsnerf_lite0: 5).", -1, 64, 1),
    ParamSpec("model.neighbour_rule", "", "How each keyframe's cost-volume neighbours are "
              "chosen: nearest (pose distance) or triangulation (the angle they subtend at the "
              "scene: for a robot camera driving forward; docs/METHOD.md). Empty = the "
              "checkpoint's own (gsnerf_lite0: nearest).", choices=("", *NEIGHBOUR_RULES)),
    ParamSpec("model.vote_weights", "", "How the semantic renderer's vote of the source "
              "keyframes' 2D labels weighs them: mean (alike) or proximity (by pose distance "
              "to the requested pose, as the reprojection baseline). Empty = the checkpoint's "
              "own (gsnerf_lite0: proximity).", choices=("", *VOTE_WEIGHTS)),
    ParamSpec("model.colour_views", -1, "The rendered colour is blended from this many "
              "source keyframes nearest the requested pose; a farther one only where "
              "none of those sees the sample. -1 = the checkpoint's own (gsnerf_lite0: 2), 0 = "
              "every source.", -1, 64, 1),
    ParamSpec("model.depth_prior_weight", -1.0, "Weight of the checkpoint's single-view depth "
              "prior in each keyframe's cost volume (it picks the plausible depth where "
              "matching is ambiguous: a robot driving at a striped wall; docs/METHOD.md §14). "
              "-1 = the checkpoint's own (gsnerf_lite0: 1.0), 0 = off; > 0 needs a checkpoint "
              "with the depth head.", -1.0, 100.0),
    ParamSpec("model.consistency_tolerance", -1.0, "Relative depth agreement of the "
              "multi-view check of the target depth: points of a keyframe's depth that another "
              "keyframe confirms within it are splatted first. -1 = the checkpoint's own "
              "(gsnerf_lite0: 0.02), 0 = off.", -1.0, 1.0),
    # semantics
    ParamSpec("semantic.source", "model", "Classes of the rendered semantic image: model (the "
              "checkpoint's classes) or labels (the segmenter of topics.labels: its labels of the "
              "source keyframes voted at the surface point, weighted by visibility and "
              "confidence, in its own class ids; confidence = the winning share of the vote; "
              "~/label_info republishes its names).", choices=SEMANTIC_SOURCES),
    ParamSpec("semantic.label_angle_sigma", 0.0, "With semantic.source: labels, weigh each "
              "keyframe's vote by exp(-theta^2 / 2 sigma^2) of the angle theta between the "
              "requested ray and the keyframe's ray to the surface point (degrees; 0 = every "
              "visible keyframe weighs the same).", 0.0, 180.0),
    ParamSpec("semantic.label_depth_search", 0.25, "With semantic.source: labels, the vote is "
              "also taken at depths D_T/(1+r) .. D_T*(1+r) (9 hypotheses) and each pixel keeps "
              "the one its keyframes agree on most: recovers thin objects whose depth the "
              "estimate missed (0 = D_T alone; 0.25 chosen on validation rooms, docs/RESULTS.md).",
              0.0, 2.0),
    ParamSpec("semantic.label_stamp_tolerance", 0.001, "Seconds the stamp of a label (or "
              "confidence) image may differ from the image's it is synchronised with; labels "
              "further away are refused (the keyframe is kept without them).", 0.0, 1.0),
    # outputs
    ParamSpec("publish.markers", True, "Publish keyframe frusta on ~/keyframe_markers.",
              read_only=False),
    ParamSpec("publish.frustum_scale", 0.15, "Frustum marker depth in metres.", 0.01, 5.0,
              read_only=False),
    ParamSpec("publish.diagnostics_period", 1.0, "Seconds between /diagnostics messages.", 0.1, 60.0),
    ParamSpec("publish.warn_lateral_share", 0.0, "/diagnostics turns WARN while the last "
              "render's sources have a lateral baseline share below this (they lie along the "
              "camera's axis, as a robot driving straight leaves them). 0 = never (default): on "
              "42 validation rooms the share was a weak predictor of poor depth, 0.4 flagging "
              "3 of the 5 bad rooms among 11 (docs/history/RESULTS.md §0.1b).", 0.0, 1.0,
              read_only=False),
    ParamSpec("log.throttle", 5.0, "Seconds between repeats of the same warning.", 0.0, 3600.0,
              read_only=False),
)
"""Every parameter of ``gsnerf_node``."""


@dataclass
class NodeParams:
    """Typed view of :data:`PARAMETERS` (dots become underscores)."""

    topics_image: str
    topics_camera_info: str
    topics_image_transport: str
    topics_depth: str
    topics_depth_camera_info: str
    topics_labels: str
    topics_label_confidence: str
    topics_label_info: str
    topics_pose: str
    topics_pose_type: str
    frames_world: str
    frames_camera: str
    frames_pose_body: str
    frames_request_body: str
    frames_virtual_camera: str
    frames_tf_timeout: float
    frames_pending_frames: int
    frames_time_jump_threshold: float
    camera_input: str
    sync_slop: float
    sync_queue_size: int
    qos_input_reliability: str
    qos_input_depth: int
    keyframes_min_translation: float
    keyframes_min_rotation_deg: float
    keyframes_min_interval: float
    keyframes_max_pending: int
    keyframes_capacity: int
    keyframes_encode_min_neighbors: int
    keyframes_eviction: str
    keyframes_width: int
    keyframes_height: int
    render_num_source_views: int
    render_min_keyframes: int
    render_width: int
    render_height: int
    render_max_width: int
    render_max_height: int
    render_sampling_mode: str
    render_num_samples: int
    render_chunk: int
    render_max_memory_mb: float
    render_kernel: str
    render_queue_size: int
    render_request_timeout: float
    render_request_qos_depth: int
    render_max_goals: int
    model_checkpoint: str
    model_device: str
    model_dtype: str
    model_near: float
    model_far: float
    model_use_sensor_depth: bool
    model_floor_bound: bool
    model_floor_z: float
    model_geometry_max_pixels: int
    model_num_neighbors: int
    model_neighbour_rule: str
    model_vote_weights: str
    model_colour_views: int
    model_depth_prior_weight: float
    model_consistency_tolerance: float
    semantic_source: str
    semantic_label_angle_sigma: float
    semantic_label_depth_search: float
    semantic_label_stamp_tolerance: float
    publish_markers: bool
    publish_frustum_scale: float
    publish_diagnostics_period: float
    publish_warn_lateral_share: float
    log_throttle: float


def params_from_values(values: dict[str, Any]) -> NodeParams:
    """Build :class:`NodeParams` from ``{dotted name: value}``, checking ranges and choices."""
    out: dict[str, Any] = {}
    for spec in PARAMETERS:
        v = values.get(spec.name, spec.default)
        if isinstance(spec.default, bool):
            v = bool(v)
        elif isinstance(spec.default, int):
            v = int(v)
        elif isinstance(spec.default, float):
            v = float(v)
        else:
            v = str(v)
        if spec.choices is not None and v not in spec.choices:
            raise ValueError(f"parameter {spec.name}={v!r} must be one of {list(spec.choices)}")
        if spec.min is not None and not isinstance(v, (bool, str)) and not spec.min <= v <= spec.max:
            raise ValueError(f"parameter {spec.name}={v} must lie in [{spec.min}, {spec.max}]")
        out[spec.name.replace(".", "_")] = v
    names = {f.name for f in fields(NodeParams)}
    if set(out) != names:
        raise RuntimeError(f"NodeParams and PARAMETERS disagree: {sorted(set(out) ^ names)}")
    p = NodeParams(**out)
    if not 0 < p.model_near < p.model_far:
        raise ValueError(f"model.near={p.model_near} must be < model.far={p.model_far}")
    if p.topics_depth_camera_info and not p.topics_depth:
        raise ValueError(f"topics.depth_camera_info={p.topics_depth_camera_info!r} needs "
                         "topics.depth (the depth image it describes)")
    if p.topics_label_confidence and not p.topics_labels:
        raise ValueError(f"topics.label_confidence={p.topics_label_confidence!r} needs "
                         "topics.labels (the label image it weighs)")
    if p.semantic_source == "labels" and not p.topics_labels:
        raise ValueError("semantic.source: labels needs topics.labels (a 2D segmenter's "
                         "class-id image topic)")
    if p.model_num_neighbors == 0:
        raise ValueError("model.num_neighbors=0: a cost volume needs at least 1 neighbour "
                         "(-1 = the checkpoint's)")
    if p.model_depth_prior_weight < 0 and p.model_depth_prior_weight != -1:
        raise ValueError(f"model.depth_prior_weight={p.model_depth_prior_weight} must be >= 0 "
                         f"(0 = off) or -1 (the checkpoint's)")
    if p.model_consistency_tolerance < 0 and p.model_consistency_tolerance != -1:
        raise ValueError(f"model.consistency_tolerance={p.model_consistency_tolerance} must be "
                         f">= 0 (0 = off) or -1 (the checkpoint's)")
    return p
