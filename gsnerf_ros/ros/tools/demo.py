"""``gsnerf-demo`` (``make demo``): the whole robot loop end to end, with real processes.

1. generates a held-out procedural test room (or takes a ROS 2 bag with ``--bag``);
2. starts the real node with launch/gsnerf.launch.py (evaluated by the launch shim here, as
   ``ros2 launch`` would) and the shipped checkpoint;
3. starts ``gsnerf_player``, which publishes the room's frames as a robot camera would (Image,
   CameraInfo, /tf, /tf_static), except every ``--holdout`` frame;
4. waits until the buffer holds the keyframes and all are encoded (``/diagnostics``);
5. calls ``~/render_view`` at the held-out poses the camera never visited (for a bag: poses
   between keyframes, shifted sideways), and compares with ground truth where it exists;
   With ``--labels`` the player also publishes the room's labels as a 2D segmenter would
   (``--label-noise F``: F of each map wrong, in blobs) and the node renders their vote
   (``semantic.source: labels``) instead of the model's classes;
6. writes PNG panels and ``summary.json`` (latency, mIoU, PSNR, depth error) to ``--out``,
   prints a short summary, stops every child process and exits.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from gsnerf_ros.data.bag_discovery import add_layout_arguments
from gsnerf_ros.ros.tools.node_harness import NodeHarness, own_ros_domain
from gsnerf_ros.runtime.checkpoint_lookup import DEFAULT_CHECKPOINT

__all__ = ["main", "run_demo", "DemoError", "build_parser", "StallWatch", "keyframe_capacity"]

class DemoError(RuntimeError):
    """The demo could not run; the message says why and what to do."""


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``gsnerf-demo``."""
    ap = argparse.ArgumentParser(prog="gsnerf-demo", description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT)
    ap.add_argument("--bag", default="", help="play this ROS 2 bag instead of a procedural room")
    ap.add_argument("--out", default="demo_output")
    ap.add_argument("--seed", type=int, default=0, help="test-split room seed")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--height", type=int, default=96)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--holdout", default="every:5", help="frames the player never publishes")
    ap.add_argument("--max-views", type=int, default=8, help="held-out views rendered")
    ap.add_argument("--device", default="cuda", help="node device (cpu fallback with a warning)")
    ap.add_argument("--rate", type=float, default=None,
                    help="player frames per second (room, default 10) or playback speed factor "
                         "(bag, default 1: the recorded pace)")
    add_layout_arguments(ap.add_argument_group("bag layout (default: found in the bag)"),
                         "; the node's frames.world and the frame of every render request")
    ap.add_argument("--stall-timeout", type=float, default=30.0,
                    help="seconds after the player starts by which the node must have a "
                         "keyframe or a reason why not (nothing received, TF missing): the demo "
                         "then fails with that reason")
    ap.add_argument("--min-translation", type=float, default=0.15)
    ap.add_argument("--min-rotation-deg", type=float, default=10.0)
    ap.add_argument("--capacity", type=int, default=None,
                    help="the node's keyframes.capacity (default for a procedural room: at least "
                         "every frame the player publishes, so the held-out views are rendered "
                         "from the keyframes around them, whichever the buffer would have "
                         "evicted first; for a bag: the node's)")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds for the whole demo")
    ap.add_argument("--labels", action="store_true",
                    help="the player publishes the room's labels as a 2D segmenter's (class ids "
                         "+ LabelInfo) and the node renders their vote across the keyframes "
                         "(semantic.source: labels)")
    ap.add_argument("--label-noise", type=float, default=0.0,
                    help="with --labels: this share of each label map wrong, in blobs")
    ap.add_argument("--rgbd", action="store_true",
                    help="the player also publishes depth (an RGB-D camera) and the node uses it "
                         "for the render geometry (model.use_sensor_depth)")
    return ap


def keyframe_capacity(args: argparse.Namespace, room_frames: int | None) -> int | None:
    """The node's ``keyframes.capacity`` for the demo: ``--capacity``, else for a procedural
    room of ``room_frames`` frames at least every frame the player publishes (at least the
    node's default 32), else (a bag) None, the node's own. A sliding buffer smaller than the
    room evicts the first keyframes, and which survive depends on timing: the held-out views
    near the start were then rendered from the end of the trajectory (docs/RESULTS.md §8)."""
    from gsnerf_ros.ros.tools.player import parse_holdout

    if args.capacity is not None:
        if args.capacity < 1:
            raise DemoError(f"--capacity must be >= 1, got {args.capacity}")
        return args.capacity
    if room_frames is None:
        return None
    return max(32, room_frames - len(parse_holdout(args.holdout, room_frames)))


def _panel(gt_rgb: np.ndarray | None, rgb: np.ndarray, gt_lab: np.ndarray | None,
           lab: np.ndarray, lab_color: np.ndarray, class_names: list[str], palette: torch.Tensor,
           gt_depth: np.ndarray | None, depth: np.ndarray, conf: np.ndarray) -> np.ndarray:
    """Rendered RGB, semantics, depth and confidence, under the ground truth when there is one
    (its row ends with the class legend; without ground truth the legend ends the one row),
    over a depth colour bar in metres shared by both depth tiles. No empty tile."""
    from gsnerf_ros.imaging import class_legend, colorize_depth, colorize_labels, depth_colorbar
    from gsnerf_ros.train.panels import caption_tiles

    H, W = rgb.shape[:2]
    scale = max(1, 240 // H)            # small renders are enlarged (nearest) to stay readable
    up = lambda a: np.repeat(np.repeat(a, scale, 0), scale, 1)  # noqa: E731
    both = [d for d in (gt_depth, depth) if d is not None]
    finite = np.concatenate([d[np.isfinite(d) & (d > 0)] for d in both])
    vmax = float(finite.max()) if finite.size else 1.0
    cd = lambda d: colorize_depth(torch.from_numpy(d), 0.0, vmax)  # noqa: E731
    conf_img = (np.clip(np.nan_to_num(conf), 0, 1)[..., None].repeat(3, -1) * 255).astype(np.uint8)
    ids = sorted({int(i) for i in np.unique(lab)} |
                 ({int(i) for i in np.unique(gt_lab)} if gt_lab is not None else set()))
    legend = class_legend(class_names, palette, H * scale, W * scale, ids=ids)
    bottom = [up(rgb), up(lab_color), up(cd(depth)), up(conf_img)]
    names = ["rendered RGB", "rendered semantics", "rendered depth", "confidence"]
    if gt_rgb is not None:
        top = [gt_rgb, colorize_labels(torch.from_numpy(gt_lab), palette) if gt_lab is not None
               else np.zeros_like(rgb), cd(gt_depth) if gt_depth is not None else np.zeros_like(rgb)]
        rows = [[*[up(t) for t in top], legend], bottom]
        captions = [["GT RGB", "GT semantics" if gt_lab is not None else "(no GT labels)",
                     "GT depth" if gt_depth is not None else "(no GT depth)", ""], names]
    else:
        rows, captions = [bottom + [legend]], [names + [""]]
    panel = np.concatenate([np.concatenate(r, 1) for r in rows], 0)
    panel = caption_tiles(np.ascontiguousarray(panel), H * scale, W * scale, captions)
    bar = depth_colorbar(0.0, vmax, max(24, H * scale // 6), panel.shape[1])
    return np.concatenate([panel, bar], 0)


def _class_info(ckpt: Path) -> tuple[list[str], torch.Tensor]:
    """Class names and palette from the checkpoint's JSON sidecar (what the node renders with)."""
    stem = ckpt.with_suffix("") if ckpt.suffix in (".safetensors", ".json") else ckpt
    meta = json.loads(stem.with_name(stem.name + ".json").read_text())
    return list(meta["class_names"]), torch.tensor(meta["palette"], dtype=torch.uint8)


def _bag_layout(args: argparse.Namespace) -> Any:
    """The bag's layout by :func:`~gsnerf_ros.data.bag_discovery.discover` (world frame = root
    of its TF tree, topics when there is one of a kind), or :class:`DemoError` saying what to
    name."""
    from gsnerf_ros.data.bag_discovery import BagDiscoveryError, discover, find_bags

    try:
        bags = find_bags(args.bag)
        if len(bags) != 1:
            raise DemoError(f"{args.bag} holds {len(bags)} bags ({', '.join(map(str, bags))}); "
                            "the demo plays one: pass BAG=<one of them>")
        return discover(bags[0], args.world_frame or None, args.image_topic or None,
                        args.camera_info_topic or None)
    except (BagDiscoveryError, FileNotFoundError) as exc:
        raise DemoError(f"{exc} (make demo: WORLD_FRAME=, IMAGE_TOPIC=, CAMERA_INFO_TOPIC=)"
                        ) from exc


class StallWatch:
    """Fails the demo early, with the cause: the player exited with an error, or ``stall`` s
    after the player started the node has no keyframe and its diagnostics say why (nothing
    received on ``topic``, TF missing, frames dropped)."""

    def __init__(self, run: NodeHarness, player: Any, stall: float, topic: str) -> None:
        self.run, self.player, self.stall, self.topic = run, player, stall, topic
        self.t0 = time.monotonic()

    def __call__(self) -> None:
        rc = self.player.poll()
        if rc not in (None, 0):
            log = self.run.log_dir / "player.log"
            tail = [ln for ln in log.read_text().splitlines() if ln.strip()][-3:] \
                if log.exists() else []
            raise DemoError(f"the player failed (exit {rc}): {' | '.join(tail)}; see {log}")
        if time.monotonic() - self.t0 < self.stall:
            return
        d = self.run.diag
        if d and int(d.get("buffer_size", 0)) == 0:
            why = d.get("input_problem") or (f"0 frames received on {self.topic}"
                                             if d.get("frames_received") == "0" else "")
            if why:
                raise DemoError(f"no keyframe {self.stall:g} s after the player started: {why}; "
                                f"see {self.run.node_log}")


def run_demo(args: argparse.Namespace) -> dict[str, Any]:
    """Run the demo; returns the summary dict (also written to ``args.out/summary.json``)."""
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    from gsnerf_ros.imaging import decode_raw
    from gsnerf_ros.msg import KeyframeBufferState
    from gsnerf_ros.ros import convert
    from gsnerf_ros.ros.node import resolve_checkpoint
    from gsnerf_ros.ros.tools.player import make_scene, parse_holdout, save_scene_file
    from gsnerf_ros.srv import RenderView
    from gsnerf_ros.train.metrics import confusion_matrix, psnr, scores_from_confusion
    from gsnerf_ros.train.panels import save_png

    t_start = time.monotonic()
    try:
        ckpt = resolve_checkpoint(args.checkpoint)
    except FileNotFoundError as exc:
        raise DemoError(f"{exc}. The demo needs the shipped model: train it with `make train` "
                        "(or pass --checkpoint PATH)") from exc
    class_names, palette = _class_info(Path(ckpt))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gsnerf_demo_"))
    scene = None
    held: list[int] = []
    world, transport, image_topic = args.world_frame or "map", "raw", "image"
    if args.bag:
        lay = _bag_layout(args)
        world, transport = lay.world_frame, "compressed" if lay.compressed else "raw"
        image_topic += "/compressed" if lay.compressed else ""
        print(f"[demo] bag {lay.path}: world frame {world!r} ({lay.world_frame_source}), "
              f"{lay.image_topic} -> /{image_topic}, {lay.camera_info_topic}, camera frame "
              f"{lay.camera_frame!r}, {len(lay.static_transforms)} static transform(s)", flush=True)
        player_cmd = ["--bag", str(lay.path), "--world-frame", world, "--image-topic",
                      lay.image_topic, "--camera-info-topic", lay.camera_info_topic]
    else:
        print(f"[demo] generating held-out test room {args.seed} ({args.frames} frames, "
              f"{args.width}x{args.height}) ...", flush=True)
        scene = make_scene(args.seed, "test", args.frames, args.height, args.width)
        scene_file = save_scene_file(scene, work / "scene.safetensors")
        held = sorted(parse_holdout(args.holdout, len(scene)))[: args.max_views]
        player_cmd = ["--scene-file", str(scene_file), "--holdout", args.holdout,
                      "--world-frame", world]
    if args.rate is not None:
        player_cmd += ["--rate", str(args.rate)]
    if args.rgbd:
        player_cmd += ["--depth-topic", "depth"]
    if args.label_noise and not args.labels:
        raise DemoError("--label-noise needs --labels")
    if args.labels:
        if args.bag:
            raise DemoError("--labels needs a procedural room (the player publishes its labels)")
        player_cmd += ["--labels-topic", "labels", "--label-info-topic", "label_info",
                       "--label-noise", str(args.label_noise)]

    extra: dict[str, Any] = {"keyframes.min_translation": args.min_translation,
             "keyframes.min_rotation_deg": args.min_rotation_deg,
             # the player is faster than real time: no keyframe rate cap, every keyframe waits
             "keyframes.min_interval": 0.0, "keyframes.max_pending": 0,
             "render.width": args.width, "render.height": args.height,
             "frames.world": world, "topics.image_transport": transport}
    capacity = keyframe_capacity(args, len(scene) if scene is not None else None)
    if capacity is not None:
        extra["keyframes.capacity"] = capacity
    if args.rgbd:
        extra["topics.depth"] = "depth"
    if args.labels:
        extra.update({"topics.labels": "labels", "topics.label_info": "label_info",
                      "semantic.source": "labels"})
    print("[demo] starting gsnerf_node (launch/gsnerf.launch.py) ...", flush=True)
    with NodeHarness(ckpt, args.device, extra, work, out, t_start + args.timeout,
                     error=DemoError, client_name="gsnerf_demo", poll=0.1) as run:
        state: dict[str, Any] = {}
        run.client.create_subscription(KeyframeBufferState, "/gsnerf/keyframes",
                                       lambda m: state.update(msg=m), QoSProfile(
                                           depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                                           reliability=ReliabilityPolicy.RELIABLE))
        label_info: dict[str, Any] = {}
        if args.labels:
            from vision_msgs.msg import LabelInfo

            run.client.create_subscription(
                LabelInfo, "/gsnerf/label_info",
                lambda m: label_info.update(names={c.class_id: c.class_name
                                                   for c in m.class_map}),
                QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                           reliability=ReliabilityPolicy.RELIABLE))
        spin_until, cli = run.spin_until, run.render_view
        run.wait_for_service()
        print("[demo] starting gsnerf_player ...", flush=True)
        player = run.start_player(player_cmd)
        run.watch = StallWatch(run, player, args.stall_timeout, "/" + image_topic)
        spin_until(lambda: player.poll() is not None, args.timeout, "the player to finish")
        run.watch()
        time.sleep(0.5)
        n_kf = run.wait_until_encoded()
        run.watch = None
        print(f"[demo] buffer: {n_kf} keyframes, all encoded", flush=True)

        # --- target poses ------------------------------------------------------------------
        targets: list[tuple[str, torch.Tensor, torch.Tensor | None, int, int, int | None]] = []
        if scene is not None:
            for i in held:
                f = scene.frame(i)
                targets.append((f"frame{i:03d}", f.c2w, f.K, scene.width, scene.height, i))
        else:
            spin_until(lambda: "msg" in state, 10, "the keyframe state")
            kfs = state["msg"].keyframes
            for j in range(min(len(kfs) - 1, args.max_views)):
                a = convert.pose_to_c2w(kfs[j].pose)
                b = convert.pose_to_c2w(kfs[j + 1].pose)
                c2w = a.clone()
                c2w[:3, 3] = 0.5 * (a[:3, 3] + b[:3, 3]) + 0.05 * a[:3, 0]
                targets.append((f"between{j:03d}", c2w, None, 0, 0, None))

        C = None
        cm = None
        psnrs, lat, abs_rel, per_view = [], [], [], []
        for name, c2w, K, w, h, idx in targets:
            req = RenderView.Request()
            req.pose.header.frame_id = world
            req.pose.pose = convert.c2w_to_pose(c2w.double())
            if K is not None:
                req.camera_info = convert.make_camera_info(K.double(), w, h, req.pose.header)
            fut = cli.call_async(req)
            spin_until(lambda: fut.done(), 300, f"the render of {name}")
            r = fut.result()
            if not r.success:
                raise DemoError(f"render at {name} failed: {r.message}")
            lat.append(r.latency_ms)
            img = lambda m: decode_raw(m.encoding, m.height, m.width, m.step, m.data,  # noqa: E731
                                       bool(m.is_bigendian))
            rgb, lab, labc, dep, conf = (img(r.rgb), img(r.semantic), img(r.semantic_color),
                                         img(r.depth), img(r.confidence))
            view: dict[str, Any] = {"name": name, "latency_ms": round(r.latency_ms, 1),
                                    "sources": list(r.source_keyframe_ids),
                                    "mean_confidence": round(float(conf.mean()), 3)}
            gt_rgb = gt_lab = gt_dep = None
            if scene is not None and idx is not None:
                f = scene.frame(idx)
                C = scene.num_classes
                gt_rgb = (f.image.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
                p = psnr(torch.from_numpy(rgb).float() / 255, f.image.permute(1, 2, 0))
                psnrs.append(p)
                view["psnr"] = round(p, 2)
                if f.labels is not None:
                    gt_lab = f.labels.numpy()
                    c = confusion_matrix(torch.from_numpy(lab.astype(np.int64)), f.labels, C)
                    cm = c if cm is None else cm + c
                    view["mIoU"] = round(scores_from_confusion(c)["mIoU"], 2)
                if f.depth is not None:
                    gt_dep = f.depth.numpy()
                    m = (gt_dep > 0) & (dep > 0)
                    if m.any():
                        ar = float(np.mean(np.abs(dep[m] - gt_dep[m]) / gt_dep[m]))
                        abs_rel.append(ar)
                        view["depth_abs_rel"] = round(ar, 4)
            save_png(out / f"panel_{name}.png", _panel(gt_rgb, rgb, gt_lab, lab, labc,
                                                       class_names, palette, gt_dep, dep, conf))
            per_view.append(view)
            print(f"[demo] {name}: {r.latency_ms:.0f} ms" +
                  (f", PSNR {view['psnr']:.2f} dB" if "psnr" in view else "") +
                  (f", mIoU {view['mIoU']:.1f}%" if "mIoU" in view else ""), flush=True)

        sem = scores_from_confusion(cm) if cm is not None else None
        summary = {
            "checkpoint": str(ckpt), "source": args.bag or f"procedural test room {args.seed}",
            "world_frame": world, "image_transport": transport,
            "device_requested": args.device, "device": run.diag.get("device"),
            "rgbd": bool(args.rgbd), "keyframes": n_kf,
            "keyframes_capacity": extra.get("keyframes.capacity"), "views": len(per_view),
            "semantic_source": "labels" if args.labels else "model",
            "label_noise": args.label_noise if args.labels else None,
            "label_info_classes": len(label_info.get("names", {})) if args.labels else None,
            "latency_ms": {"mean": float(np.mean(lat)), "median": float(np.median(lat)),
                           "max": float(np.max(lat))} if lat else None,
            "mIoU": sem["mIoU"] if sem else None, "acc": sem.get("acc") if sem else None,
            "psnr": float(np.mean(psnrs)) if psnrs else None,
            "depth_abs_rel": float(np.mean(abs_rel)) if abs_rel else None,
            "per_view": per_view,
            "wall_time_s": round(time.monotonic() - t_start, 1),
        }
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        return summary


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``gsnerf-demo``."""
    args = build_parser().parse_args(argv)
    try:
        with own_ros_domain():
            s = run_demo(args)
    except DemoError as exc:
        print(f"gsnerf-demo: {exc}", file=sys.stderr, flush=True)
        return 2
    fmt = lambda v, f: "n/a" if v is None else f.format(v)  # noqa: E731
    print("\n=== gsnerf-demo summary ===")
    print(f"source      : {s['source']} (world frame {s['world_frame']}, "
          f"{s['image_transport']} images)")
    print(f"checkpoint  : {s['checkpoint']} on {s['device']}")
    print(f"keyframes   : {s['keyframes']}   novel views rendered: {s['views']}")
    lat = s["latency_ms"] or {}
    print(f"latency     : mean {fmt(lat.get('mean'), '{:.0f}')} ms, "
          f"max {fmt(lat.get('max'), '{:.0f}')} ms")
    print(f"mIoU        : {fmt(s['mIoU'], '{:.1f}')} %   PSNR: {fmt(s['psnr'], '{:.2f}')} dB   "
          f"depth AbsRel: {fmt(s['depth_abs_rel'], '{:.3f}')}")
    if s.get("semantic_source") == "labels":
        print(f"classes     : the player's segmenter labels (noise {s['label_noise']:.0%}) voted "
              f"across the keyframes; {s['label_info_classes']} names on ~/label_info")
    print(f"outputs     : {args.out}/summary.json and {s['views']} panel PNGs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
