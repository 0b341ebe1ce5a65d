"""Node level: ``~/render_view`` round trip (real rclpy, separate processes) beside render time.

Starts the real node (``launch/gsnerf.launch.py`` evaluated like ``gsnerf-demo`` does) on the
benchmark's model (saved to a temporary checkpoint) and the ``gsnerf_player`` feeding a held-out
procedural room as a robot camera would; waits until every keyframe is encoded; then calls
``~/render_view`` at poses the camera never visited and measures, in this client process,
request sent -> response received (``time.perf_counter`` around ``call_async`` until the
future is done). Beside it: the node's own ``latency_ms`` (service handler time: render +
message building) and the pure render time the node logs (``render X ms``). Round trip minus
handler time is the ROS overhead (DDS transport of ~5 images, (de)serialisation, executors).
"""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path
from typing import Any

from gsnerf_ros.bench.stages import skipped
from gsnerf_ros.bench.timing import Stats

__all__ = ["measure_node_latency"]

_RENDER_LOG = re.compile(r"in ([0-9.]+) ms \(render ([0-9.]+) ms")


def _stats(xs: list[float]) -> dict[str, Any]:
    return Stats.from_samples(xs).to_dict()


def measure_node_latency(cfg: Any, model: Any, frames: int = 20, size: tuple[int, int] = (48, 64),
                         timeout: float = 600.0) -> dict[str, Any]:
    """Round-trip statistics of ``cfg.node_calls`` render_view calls (see module docstring)."""
    try:
        from gsnerf_ros.ros import convert
        from gsnerf_ros.ros.tools.node_harness import NodeHarness
        from gsnerf_ros.ros.tools.player import make_scene, parse_holdout, save_scene_file
        from gsnerf_ros.srv import RenderView
    except Exception as e:  # noqa: BLE001 - no ROS here
        return skipped(f"ROS 2 node pieces unavailable ({type(e).__name__}: {e})")
    h, w = size
    work = Path(tempfile.mkdtemp(prefix="gsnerf_bench_node_"))
    ckpt = model.save_checkpoint(work / "bench_model", metadata={"purpose": "gsnerf-bench --node"})
    scene = make_scene(cfg.seed, "test", frames, h, w)
    scene_file = save_scene_file(scene, work / "scene.safetensors")
    held = sorted(parse_holdout("every:5", len(scene)))
    extra = {"keyframes.min_translation": 0.15, "keyframes.min_rotation_deg": 10.0,
             "keyframes.min_interval": 0.0, "keyframes.max_pending": 0,
             "render.width": w, "render.height": h}
    harness = NodeHarness(ckpt, cfg.device, extra, work, work, time.monotonic() + timeout,
                          client_name="gsnerf_bench_client")
    node_log = harness.node_log
    try:
        with harness as run:
            run.wait_for_service()
            player = run.start_player(["--scene-file", str(scene_file), "--holdout", "every:5",
                                       "--rate", "10"])
            run.spin_until(lambda: player.poll() is not None, timeout, "the player to finish")
            n_kf = run.wait_until_encoded()
            rt, handler = [], []
            for j in range(cfg.node_calls + 1):          # first call = warm-up, not counted
                f = scene.frame(held[j % len(held)])
                req = RenderView.Request()
                req.pose.header.frame_id = "map"
                req.pose.pose = convert.c2w_to_pose(f.c2w.double())
                req.camera_info = convert.make_camera_info(f.K.double(), w, h, req.pose.header)
                t0 = time.perf_counter()
                fut = run.render_view.call_async(req)
                run.spin_until(lambda: fut.done(), 300, "a render_view response")
                dt = (time.perf_counter() - t0) * 1e3
                r = fut.result()
                if not r.success:
                    return skipped(f"render_view failed: {r.message}")
                if j > 0:
                    rt.append(dt)
                    handler.append(float(r.latency_ms))
    except (TimeoutError, RuntimeError, StopIteration) as e:
        return skipped(f"node run failed: {e}")
    renders = [float(m.group(2)) for m in _RENDER_LOG.finditer(node_log.read_text())][1:]
    out = {"height": h, "width": w, "calls": len(rt), "keyframes": n_kf, "device": cfg.device,
           "round_trip_ms": _stats(rt), "server_handler_ms": _stats(handler),
           "server_render_ms": _stats(renders) if renders else None,
           "overhead_vs_handler_ms": _stats([a - b for a, b in zip(rt, handler)]),
           "log": str(node_log)}
    if renders:
        out["overhead_vs_render_ms"] = _stats([a - b for a, b in zip(rt, renders[-len(rt):])])
    return out
