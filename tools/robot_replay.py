"""Replay camera paths through the node's runtime (ROS-free) and score its renders.

    python tools/robot_replay.py --data runs/data/robot160replay --checkpoint \\
        models/gsnerf_cpu.safetensors --json runs/results_robot/replay.json \\
        [--policies oldest,redundant,baseline] [--rules nearest,triangulation] [--capacity 8]

Each room's frames go, in order, through a :class:`~gsnerf_ros.runtime.keyframes.KeyframeBuffer`
(the node's keyframe policy and the eviction policy under test) and its
:class:`~gsnerf_ros.runtime.engine.RenderEngine` with the checkpoint's model; every keyframe is
encoded as soon as it can be (the encoding worker stepped in this thread, so the run is
deterministic). Two kinds of held-out views are rendered, with the node's source choice (the
``--num-sources`` nearest encoded keyframes):

- ``ahead``: every ``--every``-th frame, before it enters the buffer (the view just ahead of
  the robot, from what the buffer holds then);
- ``revisit``: after the path, frames of its first third that never became keyframes (a
  place driven past earlier: what the buffer still remembers).

Per (neighbour rule, eviction policy) and room: depth abs-rel and PSNR against the rendered
ground truth (mean over views), keyframes added / evicted / encoded.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import torch

from gsnerf_ros.data.replica import ReplicaScene, find_scene_dirs
from gsnerf_ros.model import GSNeRF
from gsnerf_ros.runtime.engine import GSNeRFRenderer, RenderEngine, RenderSettings
from gsnerf_ros.runtime.keyframes import EVICTION_POLICIES, KeyframeBuffer, KeyframePolicy
from gsnerf_ros.train.metrics import depth_errors, psnr


def _score(engine: RenderEngine, frame: Any) -> dict[str, float]:
    res = engine.render(frame.c2w, frame.K, frame.width, frame.height)
    d = depth_errors(res.output.depth, frame.depth)
    return {"abs_rel": d["abs_rel"], "psnr": psnr(res.output.rgb, frame.image)}


def replay(model: GSNeRF, scene: ReplicaScene, rule: str, eviction: str, args: argparse.Namespace
           ) -> dict[str, Any]:
    """One room through the runtime with one neighbour rule and eviction policy."""
    renderer = GSNeRFRenderer(model, scene.near, scene.far, neighbour_rule=rule)
    buf = KeyframeBuffer(KeyframePolicy(args.min_translation, args.min_rotation_deg,
                                        args.capacity, eviction,
                                        coverage_weight=args.coverage_weight))
    engine = RenderEngine(renderer, buf, RenderSettings(num_source_views=args.num_sources,
                                                        min_keyframes=3))
    n = min(len(scene), args.frames) if args.frames else len(scene)
    ahead, keyframe_frames = [], set()
    t0 = time.perf_counter()
    for i in range(n):
        f = scene.frame(i)
        if i % args.every == args.every - 1 and buf.num_encoded() >= 3:
            ahead.append(_score(engine, f))
        kf, _ = buf.add(f.image, f.K, f.c2w, f.stamp)
        if kf is not None:
            keyframe_frames.add(i)
        while engine.worker.step():
            pass
    revisit = [_score(engine, scene.frame(i)) for i in range(1, n // 3, args.every)
               if i not in keyframe_frames]

    def mean(rows: list[dict[str, float]], k: str) -> float | None:
        v = [r[k] for r in rows if math.isfinite(r[k])]
        return sum(v) / len(v) if v else None

    return {"ahead": {"views": len(ahead), "abs_rel": mean(ahead, "abs_rel"),
                      "psnr": mean(ahead, "psnr")},
            "revisit": {"views": len(revisit), "abs_rel": mean(revisit, "abs_rel"),
                        "psnr": mean(revisit, "psnr")},
            "added": buf.stats.added, "evicted": buf.stats.evicted,
            "encoded": buf.stats.encoded, "seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="a folder of gsnerf-synth rooms")
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--policies", default=",".join(EVICTION_POLICIES))
    ap.add_argument("--rules", default="nearest,triangulation")
    ap.add_argument("--capacity", type=int, default=8)
    ap.add_argument("--min-translation", type=float, default=0.2)
    ap.add_argument("--min-rotation-deg", type=float, default=15.0)
    ap.add_argument("--num-sources", type=int, default=4, help="node default: 4")
    ap.add_argument("--every", type=int, default=8)
    ap.add_argument("--coverage-weight", type=float, default=0.1,
                    help="KeyframePolicy.coverage_weight of the baseline eviction")
    ap.add_argument("--frames", type=int, default=0, help="first N frames of each room (0 = all)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = GSNeRF.from_checkpoint(args.checkpoint, device="cpu")
    out: dict[str, Any] = {"args": vars(args), "rooms": {}}
    for d in find_scene_dirs(Path(args.data)):
        scene = ReplicaScene(d)
        rows = out["rooms"].setdefault(scene.name, {})
        for rule in args.rules.split(","):
            for pol in args.policies.split(","):
                r = replay(model, scene, rule, pol, args)
                rows[f"{rule}/{pol}"] = r
                print(f"{scene.name} {rule:13s} {pol:9s} ahead {r['ahead']} revisit "
                      f"{r['revisit']} evicted {r['evicted']} ({r['seconds']:.0f} s)", flush=True)
                Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
