"""``python -m gsnerf_ros.ros.tools.bag_replay_check``: the real node, replaying a robot's bag,
against gsnerf-eval on the same held-out views (issue 29: the node's rendered depth within 10 %
of gsnerf-eval's).

1. reads one room in the Replica layout (e.g. ``gsnerf-synth OUT --paths robot``) and picks the
   held-out targets: gsnerf-eval's protocol targets (``--max-targets``, as gsnerf-eval) or the
   frames of ``--targets``;
2. writes every other frame as a ROS 2 bag with the project's bag writer
   (:func:`gsnerf_ros.data.bag_writer.write_bag`: rgb8 images, camera_info, ``map -> base_link``
   on /tf, ``base_link -> camera optical frame`` on /tf_static; no depth: an RGB camera);
3. starts the real node (launch/gsnerf.launch.py through :class:`NodeHarness`) with the
   checkpoint, the room's depth range (or ``--near/--far``), the inference settings given here,
   ``render.num_source_views = --num-sources`` and a buffer that keeps every keyframe (no rate
   cap, no skipped frames, capacity for every frame), plays the bag into it with
   ``gsnerf_player --bag --reliable`` and waits until every keyframe is encoded. Every frame
   reaches the node however busy the machine is (one lost frame changes the keyframes the
   renders are compared on): the player publishes reliably and exits once the node
   acknowledged every message; the node subscribes reliably with history, synchroniser and
   TF queue for the whole bag, and a frame waits up to 10 s for its TF. Keyframes that can
   never be encoded (at most ``num_neighbors`` of them once every frame is in) fail the check
   at once, with the node's counters (:func:`never_encoded`);
4. asks ``~/render_view`` for each target at its pose (the camera optical frame in the bag's
   world frame; ``body_frame`` empty) with the room's intrinsics and size, and scores the
   returned depth against the room's ground truth with gsnerf-eval's metric
   (:func:`gsnerf_ros.train.metrics.depth_errors`; pixels the node returns as NaN are left out
   and counted);
5. renders the same targets offline exactly as gsnerf-eval does
   (:func:`gsnerf_ros.train.evaluate.render_eval_view`, same checkpoint, settings and depth
   range): with the evaluation protocol's sources (``eval``), and with the keyframes the node
   rendered from (``offline_node_sources``: its ``source_keyframe_ids`` mapped to frames by
   their stamps), so a difference of source selection shows apart from one of the pipeline;
6. writes ``<out>/replay_check.json`` (per target and means; the settings) and prints a table.

Exit status 0, or 2 with the reason (node not up, no keyframes, a render refused, a timeout);
the node and the player are always stopped.

Where the node and gsnerf-eval differ by design: the node's sources are the
``num_source_views`` encoded keyframes nearest the pose (pose distance), its keyframes the frames
its motion thresholds took from those played; gsnerf-eval's are the nearest of every 5th frame
(``data.view_selection.EvalProtocol``). And each keyframe's cost volume matches the
``num_neighbors`` keyframes nearest it *in the buffer when it was encoded*, while gsnerf-eval
matches each source against the nearest of the render's own sources: ``offline_node_sources``
has the node's sources but gsnerf-eval's neighbours, so only when every keyframe is a source and
matches all the others (``--num-neighbors`` = keyframes - 1) are the two renders the same.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from gsnerf_ros.runtime.checkpoint_lookup import DEFAULT_CHECKPOINT

__all__ = ["ReplayError", "build_parser", "run_check", "main", "node_parameters",
           "frame_of_stamp", "never_encoded", "print_table", "BAG_START", "BAG_RATE_HZ",
           "NEVER_ENCODED_SETTLE_S"]

BAG_START = 1_700_000_000.0
"""Stamp (s) of the bag's first frame; bag frame ``j`` is stamped ``BAG_START + j / rate``."""
BAG_RATE_HZ = 10.0
"""Frames per second of the bag (the recorded pace the player keeps)."""
NEVER_ENCODED_SETTLE_S = 5.0
"""Seconds :func:`never_encoded` must hold, over the node's diagnostics, before the check fails
(a frame counted as received may still be on its way into the buffer in one message)."""


class ReplayError(RuntimeError):
    """The check could not run; the message says why."""


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    from gsnerf_ros.model.inference import add_inference_arguments

    ap = argparse.ArgumentParser(prog="python -m gsnerf_ros.ros.tools.bag_replay_check",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--room", required=True,
                    help="a room in the Replica layout (scene folder, or a folder holding one)")
    ap.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT)
    ap.add_argument("--out", required=True, help="folder for the bag, the logs and the JSON")
    tg = ap.add_mutually_exclusive_group()
    tg.add_argument("--max-targets", type=int, default=2,
                    help="held-out targets: the first N of gsnerf-eval's protocol (default 2, as "
                         "gsnerf-eval --max-targets 2)")
    tg.add_argument("--targets", default="",
                    help="held-out target frames instead, e.g. 3,17 (each with the protocol's "
                         "sources for gsnerf-eval)")
    ap.add_argument("--num-sources", type=int, default=8,
                    help="gsnerf-eval's --num-sources and the node's render.num_source_views")
    ap.add_argument("--mode", default=None,
                    help="sampling mode of both (default: the checkpoint's sampling.mode)")
    ap.add_argument("--node-mode", default=None,
                    help="the node's sampling mode alone (its render.sampling_mode), e.g. "
                         "depth_guided, the node's default, where the checkpoint's is another: "
                         "the node as shipped against gsnerf-eval (default: --mode)")
    ap.add_argument("--num-samples", type=int, default=None,
                    help="samples per ray of both (default: the checkpoint's)")
    kf = ap.add_argument_group("the node's keyframes (default: the node's parameters)")
    kf.add_argument("--min-translation", type=float, default=None)
    kf.add_argument("--min-rotation-deg", type=float, default=None)
    kf.add_argument("--eviction", default=None)
    kf.add_argument("--capacity", type=int, default=None,
                    help="keyframes.capacity (default: at least every frame of the bag, so none "
                         "is evicted)")
    ap.add_argument("--device", default="auto", help="torch device of the node and the offline "
                    "renders (auto: cuda when there is one)")
    ap.add_argument("--threads", type=int, default=0,
                    help="CPU threads of the node and the offline renders (0 = default)")
    ap.add_argument("--rate", type=float, default=1.0, help="playback speed factor")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds for the whole check")
    ap.add_argument("--render-timeout", type=float, default=300.0, help="seconds per render")
    add_inference_arguments(ap)
    return ap


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
class _Render:
    """One render's depth [H, W] m (NaN: none) and the source frames it used."""

    depth: np.ndarray
    sources: list[int]


def _score(depth: np.ndarray, gt: torch.Tensor) -> dict[str, Any]:
    """gsnerf-eval's depth errors of ``depth`` [H, W] m against ``gt`` [H, W] m over the pixels
    with ground truth, leaving out (and counting) those without a finite positive depth."""
    from gsnerf_ros.train.metrics import depth_errors

    d = torch.from_numpy(np.asarray(depth, dtype=np.float32))
    bad = ~torch.isfinite(d) | (d <= 0)
    g = gt.clone().float()
    g[bad] = 0.0
    e = depth_errors(torch.where(bad, torch.zeros_like(d), d), g)
    e["invalid_pixels"] = int((bad & (gt > 0)).sum())
    return e


def _rel_diff(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Mean and max of |a - b| / b over pixels where both are finite and positive."""
    m = np.isfinite(a) & np.isfinite(b) & (a > 0) & (b > 0)
    if not m.any():
        return {"mean": float("nan"), "max": float("nan")}
    r = np.abs(a[m].astype(np.float64) - b[m]) / b[m]
    return {"mean": float(r.mean()), "max": float(r.max())}


def _mean(rows: list[dict[str, Any]], key: str) -> float | None:
    """Pixel-weighted abs-rel over ``rows[*][key]`` (gsnerf-eval's accumulation)."""
    n = sum(r[key]["n"] for r in rows)
    return sum(r[key]["abs_rel_sum"] for r in rows) / n if n else None


def _targets(args: argparse.Namespace, scene: Any) -> list[int]:
    from gsnerf_ros.data.view_selection import EvalProtocol, evaluation_views

    n = len(scene)
    if args.targets:
        try:
            ts = sorted({int(v) for v in args.targets.split(",") if v.strip()})
        except ValueError as exc:
            raise ReplayError(f"--targets must be frame numbers like 3,17: {exc}") from exc
        bad = [t for t in ts if not 0 <= t < n]
        if bad or not ts:
            raise ReplayError(f"--targets {args.targets!r}: frames must be in 0..{n - 1}")
        return ts
    if args.max_targets < 1:
        raise ReplayError("--max-targets must be >= 1")
    views = evaluation_views(scene.poses(), EvalProtocol(num_sources=args.num_sources,
                                                         max_targets=args.max_targets))
    if not views:
        raise ReplayError(f"gsnerf-eval's protocol has no target in {n} frames")
    return [t for t, _ in views]


def _protocol_view(scene: Any, target: int, num_sources: int, near: float, far: float) -> Any:
    """gsnerf-eval's view of ``target``: its protocol sources, at the room's size."""
    from gsnerf_ros.data.view_selection import EvalProtocol
    from gsnerf_ros.train.data_setup import eval_views

    proto = EvalProtocol(num_sources=num_sources, target_offset=target,
                         target_stride=len(scene), max_targets=1)
    views = eval_views([scene], num_sources, scene.height, scene.width, near=near, far=far,
                       protocol=proto)
    assert len(views) == 1 and views[0].target_index == target
    return views[0]


def _with_sources(view: Any, scene: Any, sources: list[int]) -> Any:
    """``view`` (its target, last) with the room's frames ``sources`` as its sources (the room's
    size is the view's: frames are used as read)."""
    from gsnerf_ros.train.evaluate import EvalView

    fr = [scene.frame(i) for i in sources]
    V = view.images.shape[0] - 1
    has_d = view.depths is not None and all(f.depth is not None for f in fr)
    return EvalView(
        scene=view.scene, target_index=view.target_index, source_indices=list(sources),
        images=torch.cat([torch.stack([f.image for f in fr]).float(), view.images[V:]]),
        K=torch.cat([torch.stack([f.K for f in fr]).float(), view.K[V:]]),
        c2w=torch.cat([torch.stack([f.c2w for f in fr]).float(), view.c2w[V:]]),
        depths=torch.cat([torch.stack([f.depth for f in fr]).float(), view.depths[V:]])
        if has_d else None, labels=None, near=view.near, far=view.far)


def _node_renders(args: argparse.Namespace, scene: Any, ckpt: Path, device: str,
                  targets: list[int], kept: list[int], bag: Path, params: dict[str, Any],
                  num_neighbors: int, out: Path, deadline: float
                  ) -> tuple[dict[int, _Render], dict[str, Any]]:
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
    renders: dict[int, _Render] = {}
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
                renders[t] = _Render(depth.astype(np.float32),
                                     [by_id[int(i)] for i in r.source_keyframe_ids])
                facts.setdefault("latency_ms", {})[t] = round(float(r.latency_ms), 1)
    except DemoError as exc:                 # StallWatch's: the player failed, no input
        raise ReplayError(str(exc)) from exc
    return renders, facts


def run_check(args: argparse.Namespace) -> dict[str, Any]:
    """Run the check; returns the result dict (also written to ``<out>/replay_check.json``)."""
    from gsnerf_ros.data.bag_writer import write_bag
    from gsnerf_ros.data.replica import ReplicaScene, find_scene_dirs
    from gsnerf_ros.data.scene import InMemoryScene
    from gsnerf_ros.device import resolve_device
    from gsnerf_ros.model import GSNeRF
    from gsnerf_ros.model.inference import apply_inference, inference_from_args
    from gsnerf_ros.runtime.checkpoint_lookup import resolve_checkpoint
    from gsnerf_ros.train.evaluate import EvalOptions, render_eval_view

    t_start = time.monotonic()
    inference = inference_from_args(build_parser(), args)
    if not 1 <= args.num_sources <= 16:
        raise ReplayError("--num-sources must be 1..16 (the node's render.num_source_views)")
    try:
        ckpt = resolve_checkpoint(args.checkpoint)
    except FileNotFoundError as exc:
        raise ReplayError(str(exc)) from exc
    dirs = find_scene_dirs(args.room)
    if len(dirs) != 1:
        raise ReplayError(f"{args.room} holds {len(dirs)} rooms in the Replica layout; pass one")
    try:
        scene = ReplicaScene(dirs[0])
    except (ValueError, FileNotFoundError) as exc:
        raise ReplayError(str(exc)) from exc
    targets = _targets(args, scene)
    frames = [scene.frame(i) for i in range(len(scene))]
    if any(frames[t].depth is None for t in targets):
        raise ReplayError(f"{dirs[0]}: a target frame has no ground-truth depth")
    kept = [i for i in range(len(scene)) if i not in set(targets)]
    if len(kept) < 2:
        raise ReplayError(f"{len(kept)} frame(s) left to play after holding out {targets}")
    near = inference.near if inference.near is not None else scene.near
    far = inference.far if inference.far is not None else scene.far
    out = Path(args.out)
    bag = out / "replay_bag"
    if bag.exists():
        raise ReplayError(f"{bag} exists: pass a fresh --out")
    try:
        dev = resolve_device(args.device)
    except (ValueError, RuntimeError) as exc:
        raise ReplayError(f"--device {args.device}: {exc}") from exc
    if args.threads > 0:
        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)     # the node's (child env)
    model = GSNeRF.from_checkpoint(ckpt, device=dev)
    apply_inference(model.config, inference)
    mode = args.mode or model.config.sampling.mode
    sampling: dict[str, Any] = {"mode": mode}
    if args.num_samples:
        sampling["num_samples"] = args.num_samples
    options = EvalOptions(sampling=sampling, baseline=False, lpips=False, progress=False,
                          floor_z=inference.floor_z)

    out.mkdir(parents=True, exist_ok=True)
    sub = InMemoryScene.from_frames(scene.name, [frames[i] for i in kept], scene.class_names,
                                    scene.palette, scene.near, scene.far)
    write_bag(sub, bag, rate_hz=BAG_RATE_HZ, start_time=BAG_START, depth_topic=None)
    print(f"[replay] room {scene.name}: {len(scene)} frames {scene.width}x{scene.height}, "
          f"targets {targets} held out; bag {bag}", flush=True)
    params = node_parameters(args, inference, near, far, scene.height, scene.width, len(kept),
                             "map", args.node_mode or mode)
    renders, facts = _node_renders(args, scene, Path(ckpt), dev.type, targets, kept, bag,
                                   params, model.config.cost_volume.num_neighbors, out,
                                   t_start + args.timeout)

    rows: list[dict[str, Any]] = []
    for t in targets:
        view = _protocol_view(scene, t, args.num_sources, near, far)
        gt = view.depths[-1]
        node = renders[t]
        _, res = render_eval_view(model, view, options, dev)
        ev_depth = res.depth.float().cpu().numpy()
        _, res_n = render_eval_view(model, _with_sources(view, scene, node.sources), options, dev)
        off_depth = res_n.depth.float().cpu().numpy()
        row: dict[str, Any] = {
            "target": t,
            "node": {**_score(node.depth, gt), "sources": node.sources,
                     "latency_ms": facts.get("latency_ms", {}).get(t)},
            "eval": {**_score(ev_depth, gt), "sources": view.source_indices},
            "offline_node_sources": {**_score(off_depth, gt), "sources": sorted(node.sources),
                                     "depth_rel_diff_to_node": _rel_diff(node.depth,
                                                                          off_depth)},
            "same_sources": sorted(node.sources) == sorted(view.source_indices),
        }
        ev = row["eval"]["abs_rel"]
        row["ratio"] = row["node"]["abs_rel"] / ev if ev and math.isfinite(ev) else None
        rows.append(row)
    node_m, eval_m, off_m = (_mean(rows, k) for k in ("node", "eval", "offline_node_sources"))
    ratio = node_m / eval_m if node_m is not None and eval_m else None
    result = {
        "room": str(dirs[0]), "scene": scene.name, "size": [scene.width, scene.height],
        "frames": len(scene), "targets": targets, "bag": str(bag), "bag_frames": len(kept),
        "checkpoint": str(ckpt), "num_sources": args.num_sources, "near_far_m": [near, far],
        "sampling": sampling, "node_sampling_mode": args.node_mode or mode,
        "inference": {k: v for k, v in vars(inference).items() if v is not None},
        "num_neighbors": model.config.cost_volume.num_neighbors,
        "neighbour_rule": model.config.cost_volume.neighbour_rule,
        "geometry_max_pixels": model.config.geometry_max_pixels,
        "device": dev.type, **facts,
        "per_target": rows,
        "mean": {"node_abs_rel": node_m, "eval_abs_rel": eval_m,
                 "offline_node_sources_abs_rel": off_m, "ratio": ratio,
                 "within_10_percent": ratio is not None and abs(ratio - 1.0) <= 0.10},
        "command": "python -m gsnerf_ros.ros.tools.bag_replay_check " + " ".join(
            sys.argv[1:] if args.argv is None else args.argv),
        "wall_time_s": round(time.monotonic() - t_start, 1),
    }
    (out / "replay_check.json").write_text(json.dumps(result, indent=2, allow_nan=False,
                                                      default=_json_default))
    return result


def _json_default(v: Any) -> Any:
    raise TypeError(f"not JSON: {type(v).__name__}")


def _fmt(v: float | None, nd: int = 3) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:.{nd}f}"


def print_table(r: dict[str, Any]) -> None:
    """The short table of a result."""
    print(f"\n=== node replaying {r['scene']} ({r['bag_frames']} frames, {r['keyframes']} "
          f"keyframes) vs gsnerf-eval, {r['size'][0]}x{r['size'][1]}, {r['num_sources']} "
          f"sources, {r['num_neighbors']} cost-volume neighbours ===")
    print("target | node abs-rel | eval abs-rel | ratio | offline, node's sources | "
          "node vs offline (mean rel) | same sources")
    for row in r["per_target"]:
        print(f"{row['target']:6d} | {_fmt(row['node']['abs_rel']):>12} | "
              f"{_fmt(row['eval']['abs_rel']):>12} | {_fmt(row['ratio'], 2):>5} | "
              f"{_fmt(row['offline_node_sources']['abs_rel']):>23} | "
              f"{_fmt(row['offline_node_sources']['depth_rel_diff_to_node']['mean'], 4):>26} | "
              f"{row['same_sources']}")
    m = r["mean"]
    print(f"  mean | {_fmt(m['node_abs_rel']):>12} | {_fmt(m['eval_abs_rel']):>12} | "
          f"{_fmt(m['ratio'], 2):>5} | {_fmt(m['offline_node_sources_abs_rel']):>23} |")
    print(f"node within 10 % of gsnerf-eval: {m['within_10_percent']}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; 0, or 2 with the reason on stderr."""
    args = build_parser().parse_args(argv)
    args.argv = list(argv) if argv is not None else None
    from gsnerf_ros.ros.tools.node_harness import own_ros_domain

    try:
        with own_ros_domain():
            r = run_check(args)
    except ReplayError as exc:
        print(f"bag_replay_check: {exc}", file=sys.stderr, flush=True)
        return 2
    print_table(r)
    print(f"wrote {Path(args.out) / 'replay_check.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
