"""Soak test: the real node for N minutes under a fast camera and a planner's load.

    python -m gsnerf_ros.ros.tools.soak --minutes 10 --json soak.json

Starts ``gsnerf_node`` from ``launch/gsnerf.launch.py`` (:class:`NodeHarness`) with the shipped
checkpoint and its default keyframe policy, and in this process:

- a **camera** circling a procedural room at ``--speed`` m/s (default 1.6) while turning at least
  60 deg/s, publishing ``image`` + ``camera_info`` and the TF ``map -> camera`` at ``--rate`` Hz
  with live stamps (the frames of one loop are rendered once and replayed);
- a **planner** calling ``~/render_view`` every ``--render-period`` s (one call at a time) at a
  new pose near the trajectory, at the render size (``--width`` x ``--height``).

It reports renders OK / refused (by reason), client round-trip and node latency percentiles, the
node's RSS over time and its growth after ``--warmup`` s (mean of the minute after warm-up
against the mean of the last minute), and the node's last diagnostics.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from gsnerf_ros.ros.tools.node_harness import NodeHarness
from gsnerf_ros.runtime.checkpoint_lookup import DEFAULT_CHECKPOINT

__all__ = ["SoakConfig", "run_soak", "main", "circle_trajectory", "rss_growth_percent"]


class SoakError(RuntimeError):
    """The soak could not run (node exited, timeout)."""


def circle_trajectory(radius: float, speed: float, rate: float, height: float = 1.4,
                      look_out_deg: float = 45.0) -> torch.Tensor:
    """c2w [N,4,4] of one loop of a circle of ``radius`` m around the origin at ``speed`` m/s,
    sampled at ``rate`` Hz; the camera looks ``look_out_deg`` off the direction of travel,
    outwards, so it turns at the loop's angular speed (speed / radius rad/s)."""
    from gsnerf_ros.geometry import look_at

    n = max(8, int(round(2 * math.pi * radius / speed * rate)))
    a = torch.arange(n, dtype=torch.float64) * (2 * math.pi / n)
    eye = torch.stack([radius * torch.cos(a), radius * torch.sin(a),
                       torch.full_like(a, height)], -1)
    tangent = torch.stack([-torch.sin(a), torch.cos(a), torch.zeros_like(a)], -1)
    outward = torch.stack([torch.cos(a), torch.sin(a), torch.zeros_like(a)], -1)
    b = math.radians(look_out_deg)
    return look_at(eye, eye + math.cos(b) * tangent + math.sin(b) * outward)


class SoakConfig:
    """The soak's settings (see :func:`build_parser`)."""

    def __init__(self, **kw: Any) -> None:
        self.minutes: float = kw.get("minutes", 10.0)
        self.width: int = kw.get("width", 64)
        self.height: int = kw.get("height", 48)
        self.rate: float = kw.get("rate", 10.0)
        self.speed: float = kw.get("speed", 1.6)
        self.render_period: float = kw.get("render_period", 1.0)
        self.warmup: float = kw.get("warmup", 120.0)
        self.seed: int = kw.get("seed", 3)
        self.device: str = kw.get("device", "cpu")
        self.checkpoint: str = kw.get("checkpoint", DEFAULT_CHECKPOINT)
        self.params: dict[str, Any] = kw.get("params", {})
        self.out: Path = Path(kw.get("out", tempfile.mkdtemp(prefix="gsnerf_soak_")))


def _percentiles(xs: Sequence[float]) -> dict[str, float] | None:
    if not xs:
        return None
    a = np.asarray(xs, dtype=np.float64)
    return {"n": int(a.size), "mean": round(float(a.mean()), 1),
            **{f"p{q}": round(float(np.percentile(a, q)), 1) for q in (50, 90, 95, 99)},
            "max": round(float(a.max()), 1)}


def _reason(message: str) -> str:
    """A refusal's kind: its text up to the first ':' or '(' with numbers blanked."""
    return re.sub(r"\d+(\.\d+)?", "#", re.split(r"[:(]", message, 1)[0]).strip()[:60]


def rss_growth_percent(rss: Sequence[tuple[float, int]], warmup: float,
                       window: float = 60.0) -> float | None:
    """Growth (%) of the mean RSS over the last ``window`` s against the mean over the
    ``window`` s right after ``warmup``; None when the run is too short for two windows."""
    t_end = rss[-1][0] if rss else 0.0
    first = [b for t, b in rss if warmup <= t < warmup + window]
    last = [b for t, b in rss if t >= max(t_end - window, warmup + window)]
    if not first or not last:
        return None
    return 100.0 * (float(np.mean(last)) - float(np.mean(first))) / float(np.mean(first))


def run_soak(cfg: SoakConfig) -> dict[str, Any]:
    """Run the soak; returns the report (see the module docstring)."""
    import psutil
    from geometry_msgs.msg import PoseStamped
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header

    from gsnerf_ros.data.procedural.generator import intrinsics_from_fov, scene_seed
    from gsnerf_ros.data.procedural.layout import sample_room
    from gsnerf_ros.data.procedural.renderer import RoomRenderer
    from gsnerf_ros.geometry import look_at
    from gsnerf_ros.ros import convert
    from gsnerf_ros.ros.ros_libs import tf2_ros
    from gsnerf_ros.runtime.checkpoint_lookup import resolve_checkpoint
    from gsnerf_ros.srv import RenderView

    cfg.out.mkdir(parents=True, exist_ok=True)
    H, W = cfg.height, cfg.width
    room = sample_room(scene_seed(cfg.seed, "test"))
    radius = min(1.2, 0.3 * min(room.size[0], room.size[1]))
    c2w = circle_trajectory(radius, cfg.speed, cfg.rate)
    K = intrinsics_from_fov(H, W, 90.0)
    renderer = RoomRenderer(room, "cpu", shadow_res=64)
    frames = [(renderer.render(K, c, H, W).rgb.permute(1, 2, 0).clamp(0, 1) * 255 + 0.5)
              .to(torch.uint8).numpy()
              for c in c2w.float()]
    loop_s = len(frames) / cfg.rate
    yaw_rate = 360.0 / loop_s
    print(f"[soak] camera: circle r={radius:.2f} m, {cfg.speed:.2f} m/s, {yaw_rate:.0f} deg/s, "
          f"{cfg.rate:g} Hz, {len(frames)} frames a loop, {W}x{H}", flush=True)

    params = {"render.width": W, "render.height": H, "log.throttle": 5.0,
              "publish.diagnostics_period": 1.0, **cfg.params}
    ckpt = resolve_checkpoint(cfg.checkpoint)
    t_end_budget = time.monotonic() + cfg.minutes * 60 + 600
    harness = NodeHarness(ckpt, cfg.device, params, cfg.out, cfg.out, t_end_budget,
                          error=SoakError, client_name="gsnerf_soak")
    rng = random.Random(cfg.seed)
    results: list[dict[str, Any]] = []
    rss: list[tuple[float, int]] = []
    with harness as run:
        client = run.client
        run.wait_for_service()
        node_proc = psutil.Process(run.procs[0].pid)
        pub_img = client.create_publisher(Image, "/image", 5)
        pub_info = client.create_publisher(CameraInfo, "/camera_info", 5)
        tf = tf2_ros.TransformBroadcaster(client)
        t0 = time.monotonic()
        end = t0 + cfg.minutes * 60
        next_frame, next_render, next_rss = t0, t0 + cfg.render_period, t0
        k = 0
        pending: tuple[Any, float, float] | None = None
        while time.monotonic() < end:
            now = time.monotonic()
            if now >= next_frame:                               # the camera
                stamp = client.get_clock().now().to_msg()
                i = k % len(frames)
                tf.sendTransform(convert.c2w_to_transform(c2w[i], "map", "camera_optical_frame",
                                                          stamp))
                hdr = Header(stamp=stamp, frame_id="camera_optical_frame")
                pub_img.publish(convert.array_to_image(frames[i], "rgb8", hdr))
                pub_info.publish(convert.make_camera_info(K.double(), W, H, hdr))
                k += 1
                next_frame += 1.0 / cfg.rate
                if next_frame < now:                            # fell behind: skip, keep rate
                    next_frame = now + 1.0 / cfg.rate
            if pending is None and now >= next_render:           # the planner
                a = rng.uniform(0, 2 * math.pi)
                eye = torch.tensor([radius * math.cos(a), radius * math.sin(a),
                                    1.4 + rng.uniform(-0.1, 0.1)], dtype=torch.float64)
                yaw = a + math.pi / 2 + math.radians(45 + rng.uniform(-15, 15))
                pose = look_at(eye, eye + torch.tensor([math.cos(yaw), math.sin(yaw), 0.0],
                                                       dtype=torch.float64))
                req = RenderView.Request()
                req.pose = PoseStamped(header=Header(frame_id="map"),
                                       pose=convert.c2w_to_pose(pose))
                pending = (run.render_view.call_async(req), time.perf_counter(), now - t0)
                next_render = now + cfg.render_period
            if pending is not None and pending[0].done():
                fut, ts, t_rel = pending
                r = fut.result()
                results.append({"t": round(t_rel, 2), "ok": bool(r.success),
                                "round_trip_ms": (time.perf_counter() - ts) * 1e3,
                                "node_ms": float(r.latency_ms), "message": r.message})
                pending = None
            if now >= next_rss:
                rss.append((now - t0, node_proc.memory_info().rss))
                next_rss += 5.0
            if run.procs[0].poll() is not None:
                raise SoakError(f"the node exited with {run.procs[0].returncode}; see "
                                f"{run.node_log}")
            run.executor.spin_once(timeout_sec=0.005)
        diag = dict(run.diag)
    ok = [r for r in results if r["ok"]]
    after = [r for r in results if r["t"] >= cfg.warmup]
    refused: dict[str, int] = {}
    for r in results:
        if not r["ok"]:
            refused[_reason(r["message"])] = refused.get(_reason(r["message"]), 0) + 1
    growth = rss_growth_percent(rss, cfg.warmup)
    report = {
        "minutes": cfg.minutes, "size": [W, H], "device": cfg.device, "checkpoint": str(ckpt),
        "camera": {"speed_m_s": cfg.speed, "yaw_rate_deg_s": round(yaw_rate, 1),
                   "rate_hz": cfg.rate, "radius_m": round(radius, 2), "frames_sent": k},
        "renders": len(results), "renders_ok": len(ok),
        "ok_percent": round(100.0 * len(ok) / max(1, len(results)), 1),
        "ok_percent_after_warmup": round(100.0 * sum(r["ok"] for r in after) / max(1, len(after)),
                                         1),
        "refused": refused, "warmup_s": cfg.warmup,
        "round_trip_ms": _percentiles([r["round_trip_ms"] for r in ok]),
        "node_latency_ms": _percentiles([r["node_ms"] for r in ok]),
        "overhead_ms": _percentiles([r["round_trip_ms"] - r["node_ms"] for r in ok]),
        "rss_mb": [[round(t, 1), round(b / 2**20, 1)] for t, b in rss],
        "rss_growth_after_warmup_percent": round(float(growth), 2) if growth is not None else None,
        "diagnostics": diag, "log": str(harness.node_log),
    }
    return report


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m gsnerf_ros.ros.tools.soak", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--height", type=int, default=48)
    ap.add_argument("--rate", type=float, default=10.0, help="camera and TF rate (Hz)")
    ap.add_argument("--speed", type=float, default=1.6, help="camera speed (m/s)")
    ap.add_argument("--render-period", type=float, default=1.0, help="s between planner calls")
    ap.add_argument("--warmup", type=float, default=120.0,
                    help="s before the buffer is full and RSS growth is measured (mean of the "
                         "minute after it against the mean of the last minute)")
    ap.add_argument("--seed", type=int, default=3, help="procedural test room")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT)
    ap.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE",
                    help="extra node parameter (repeatable)")
    ap.add_argument("--out", default="soak_output", help="folder for node.log and the report")
    ap.add_argument("--json", default="", help="write the report here too")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    params = dict(p.split(":=", 1) for p in args.param)
    cfg = SoakConfig(minutes=args.minutes, width=args.width, height=args.height, rate=args.rate,
                     speed=args.speed, render_period=args.render_period, warmup=args.warmup,
                     seed=args.seed, device=args.device, checkpoint=args.checkpoint,
                     params=params, out=args.out)
    try:
        report = run_soak(cfg)
    except SoakError as exc:
        print(f"soak failed: {exc}", flush=True)
        return 1
    text = json.dumps(report, indent=2)
    (cfg.out / "soak.json").write_text(text)
    if args.json:
        Path(args.json).write_text(text)
    brief = {k: report[k] for k in ("renders", "renders_ok", "ok_percent",
                                    "ok_percent_after_warmup", "refused", "round_trip_ms",
                                    "node_latency_ms", "overhead_ms",
                                    "rss_growth_after_warmup_percent")}
    print(json.dumps(brief, indent=2), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
