"""The node side of the bag replay check (:mod:`gsnerf_ros.ros.tools.bag_replay_check`): the
bag's timing, the node's parameters for the check, the rule that tells keyframes that can never
be encoded, and the renders of the held-out poses through the real node's ``~/render_view``
(:func:`node_renders`: start the node, play the bag reliably, wait for every keyframe).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["BAG_START", "BAG_RATE_HZ", "NEVER_ENCODED_SETTLE_S", "ReplayError", "NodeRender",
           "node_parameters", "frame_of_stamp", "never_encoded", "node_renders"]

BAG_START = 1_700_000_000.0
"""Stamp (s) of the bag's first frame; bag frame ``j`` is stamped ``BAG_START + j / rate``."""
BAG_RATE_HZ = 10.0
"""Frames per second of the bag (the recorded pace the player keeps)."""
NEVER_ENCODED_SETTLE_S = 5.0
"""Seconds :func:`never_encoded` must hold, over the node's diagnostics, before the check fails
(a frame counted as received may still be on its way into the buffer in one message)."""


class ReplayError(RuntimeError):
    """The check could not run; the message says why."""


def node_parameters(args: argparse.Namespace, inference: Any, near: float, far: float,
                    height: int, width: int, frames: int, world: str, mode: str) -> dict[str, Any]:
    """The node's parameters for the check (``-p`` name -> value): the same inference settings,
    depth range, sampling and source count as the offline renders; every frame of the bag
    received (reliable input with history for all ``frames``, the player's ``--reliable``),
    none dropped while it waits for its TF, and every keyframe kept."""
    p: dict[str, Any] = {
        "frames.world": world, "topics.image_transport": "raw",
        # every frame arrives and waits for its pose, however late the node reads it
        "qos.input_reliability": "reliable", "qos.input_depth": min(1000, max(5, frames)),
        "sync.queue_size": min(100, max(10, frames)),
        "frames.pending_frames": min(256, max(8, frames)), "frames.tf_timeout": 10.0,
        # every keyframe the thresholds take waits for the encoder: no rate cap, no skipped frame
        "keyframes.min_interval": 0.0, "keyframes.max_pending": 0,
        "keyframes.capacity": int(args.capacity or max(32, frames)),
        "render.num_source_views": int(args.num_sources),
        "render.width": int(width), "render.height": int(height),
        "render.sampling_mode": mode, "render.num_samples": int(args.num_samples or 0),
        "model.near": float(near), "model.far": float(far),
        "model.geometry_max_pixels": -1 if inference.geometry_max_pixels is None
        else int(inference.geometry_max_pixels),
        "model.num_neighbors": -1 if inference.num_neighbors is None
        else int(inference.num_neighbors),
        "model.colour_views": -1 if inference.colour_views is None
        else int(inference.colour_views),
        "model.consistency_tolerance": -1.0 if inference.consistency_tolerance is None
        else float(inference.consistency_tolerance),
        "model.floor_bound": inference.floor_z is not None,
        "model.floor_z": float(inference.floor_z or 0.0),
        # each keyframe encoded once, against all its neighbours (never_encoded relies on it)
        "keyframes.encode_min_neighbors": -1,
    }
    if inference.neighbour_rule:            # (an empty value cannot be passed: the default)
        p["model.neighbour_rule"] = inference.neighbour_rule
    if args.min_translation is not None:
        p["keyframes.min_translation"] = float(args.min_translation)
    if args.min_rotation_deg is not None:
        p["keyframes.min_rotation_deg"] = float(args.min_rotation_deg)
    if args.eviction:
        p["keyframes.eviction"] = args.eviction
    return p


def frame_of_stamp(stamp: float, kept: Sequence[int], start: float = BAG_START,
                   rate_hz: float = BAG_RATE_HZ) -> int:
    """The room frame whose bag message carries ``stamp`` (s): bag frame ``j`` is room frame
    ``kept[j]``, stamped ``start + j / rate_hz``. ReplayError for a stamp of no bag frame."""
    j = round((stamp - start) * rate_hz)
    if not 0 <= j < len(kept) or abs(stamp - (start + j / rate_hz)) > 1e-3:
        raise ReplayError(f"keyframe stamp {stamp:.6f} s is no frame of the bag (frames at "
                          f"{start:.1f} + j / {rate_hz:g} s, j < {len(kept)})")
    return int(kept[j])


def never_encoded(diag: dict[str, str], frames: int, num_neighbors: int) -> str | None:
    """Why the node's keyframes can never be encoded, from its diagnostics (key -> value), or
    None while they still may be: every one of the bag's ``frames`` was received and none waits
    for its pose, yet the buffer holds at most ``num_neighbors`` keyframes and none is encoded;
    with ``keyframes.encode_min_neighbors`` -1 a keyframe is encoded only once
    ``num_neighbors`` others exist."""
    try:
        received, waiting = int(diag["frames_received"]), int(diag["frames_waiting_for_pose"])
        size, encoded = int(diag["buffer_size"]), int(diag["encoded_keyframes"])
    except (KeyError, ValueError):
        return None
    if received < frames or waiting or encoded or size > num_neighbors:
        return None
    last = diag.get("last_input_error") or "none"
    return (f"the node holds {size} keyframe(s) from the {frames} frames of the bag ({received} "
            f"received, {diag.get('input_errors', '?')} input error(s), last: {last}), and a "
            f"keyframe is encoded only once {num_neighbors} others (model.num_neighbors) exist: "
            "none ever will be (lower --num-neighbors or the keyframe thresholds)")


@dataclass
class NodeRender:
    """One render's depth [H, W] m (NaN: none) and the source frames it used."""

    depth: np.ndarray
    sources: list[int]


def node_renders(args: argparse.Namespace, scene: Any, ckpt: Path, device: str,
                  targets: list[int], kept: list[int], bag: Path, params: dict[str, Any],
                  num_neighbors: int, out: Path, deadline: float
                  ) -> tuple[dict[int, NodeRender], dict[str, Any]]:
    """Start the node, play the bag, render every target; (target -> render, node facts).
    ``num_neighbors``: the model's cost-volume neighbours (the node's too)."""
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    from gsnerf_ros.data.bag_discovery import discover
    from gsnerf_ros.imaging import decode_raw
    from gsnerf_ros.msg import KeyframeBufferState
    from gsnerf_ros.ros import convert
    from gsnerf_ros.ros.tools.demo import DemoError, StallWatch
    from gsnerf_ros.ros.tools.node_harness import NodeHarness
    from gsnerf_ros.srv import RenderView

    lay = discover(bag, None, None, None)
    world = lay.world_frame
    params = {**params, "frames.world": world}
    player_cmd = ["--bag", str(bag), "--world-frame", world, "--image-topic", lay.image_topic,
                  "--camera-info-topic", lay.camera_info_topic, "--rate", str(args.rate),
                  "--reliable"]
    work = Path(tempfile.mkdtemp(prefix="gsnerf_replay_"))
    renders: dict[int, NodeRender] = {}
    facts: dict[str, Any] = {"world_frame": world, "node_parameters": params}
    try:
        with NodeHarness(ckpt, device, params, work, out, deadline, error=ReplayError,
                         client_name="gsnerf_replay_check", poll=0.05) as run:
            state: dict[str, Any] = {}
            run.client.create_subscription(
                KeyframeBufferState, "/gsnerf/keyframes", lambda m: state.update(msg=m),
                QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                           reliability=ReliabilityPolicy.RELIABLE))
            run.wait_for_service()
            print(f"[replay] node up; playing {len(kept)} frames of {bag}", flush=True)
            player = run.start_player(player_cmd)
            stall = StallWatch(run, player, 60.0, "/image")
            run.watch = stall
            run.spin_until(lambda: player.poll() is not None, args.timeout, "the player to finish")
            time.sleep(0.5)
            since = [0.0]

            def watch() -> None:                  # no keyframe names its cause, and so do
                stall()                           # keyframes that can never be encoded
                why = never_encoded(run.diag, len(kept), num_neighbors)
                now = time.monotonic()
                since[0] = 0.0 if why is None else since[0] or now
                if why is not None and now - since[0] >= NEVER_ENCODED_SETTLE_S:
                    raise ReplayError(f"{why}; see {run.node_log}")

            run.watch = watch
            n_kf = run.wait_until_encoded()
            run.watch = None
            # the latest buffer state: the keyframes the renders below choose from
            run.spin_until(lambda: "msg" in state and len(state["msg"].keyframes) == n_kf, 30,
                           f"the keyframe state with {n_kf} keyframes")
            by_id = {int(k.id): frame_of_stamp(convert.stamp_to_sec(k.stamp), kept)
                     for k in state["msg"].keyframes}
            facts.update(keyframes=n_kf, keyframe_frames=sorted(by_id.values()),
                         device=run.diag.get("device"))
            print(f"[replay] {n_kf} keyframes, all encoded: frames {sorted(by_id.values())}",
                  flush=True)
            for t in targets:
                f = scene.frame(t)
                req = RenderView.Request()
                req.pose.header.frame_id = world
                req.pose.pose = convert.c2w_to_pose(f.c2w.double())
                req.camera_info = convert.make_camera_info(f.K.double(), scene.width,
                                                           scene.height, req.pose.header)
                req.body_frame = ""            # the pose is the camera optical frame's
                fut = run.render_view.call_async(req)
                run.spin_until(fut.done, args.render_timeout, f"the render of frame {t}")
                r = fut.result()
                if not r.success:
                    raise ReplayError(f"the node refused the render of frame {t}: {r.message}")
                m = r.depth
                depth = decode_raw(m.encoding, m.height, m.width, m.step, m.data,
                                   bool(m.is_bigendian))
                if depth.shape != (scene.height, scene.width):
                    raise ReplayError(f"frame {t}: the node rendered {depth.shape[1]}x"
                                      f"{depth.shape[0]}, asked {scene.width}x{scene.height}")
                unknown = [i for i in r.source_keyframe_ids if int(i) not in by_id]
                if unknown:
                    raise ReplayError(f"frame {t}: source keyframes {unknown} are not in the "
                                      "buffer state")
                renders[t] = NodeRender(depth.astype(np.float32),
                                     [by_id[int(i)] for i in r.source_keyframe_ids])
                facts.setdefault("latency_ms", {})[t] = round(float(r.latency_ms), 1)
    except DemoError as exc:                 # StallWatch's: the player failed, no input
        raise ReplayError(str(exc)) from exc
    return renders, facts
