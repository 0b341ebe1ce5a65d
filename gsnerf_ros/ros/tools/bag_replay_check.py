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
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from gsnerf_ros.ros.tools.replay_node import (BAG_RATE_HZ, BAG_START, NEVER_ENCODED_SETTLE_S,
                                              ReplayError, frame_of_stamp, never_encoded,
                                              node_parameters, node_renders)
from gsnerf_ros.runtime.checkpoint_lookup import DEFAULT_CHECKPOINT

__all__ = ["ReplayError", "build_parser", "run_check", "main", "node_parameters",
           "frame_of_stamp", "never_encoded", "print_table", "BAG_START", "BAG_RATE_HZ",
           "NEVER_ENCODED_SETTLE_S"]

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
    renders, facts = node_renders(args, scene, Path(ckpt), dev.type, targets, kept, bag,
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
