"""Command lines: ``gsnerf-train --config FILE key=value ...`` and ``gsnerf-eval ...``.

``gsnerf-train`` runs single-process, or distributed under ``torchrun --nproc_per_node N``.
``gsnerf-eval`` writes the evaluation JSON, a Markdown summary, PNG panels and the
confusion matrices beside the JSON (``<json stem>_confusion.png``).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from gsnerf_ros.train.recipe import Stage

__all__ = ["train_main", "eval_main"]


def train_main(argv: list[str] | None = None) -> int:
    """Entry point of ``gsnerf-train``."""
    from gsnerf_ros.config import load_config, to_dict
    from gsnerf_ros.train.config import TrainConfig
    from gsnerf_ros.train.recipe import Stage, load_stages

    p = argparse.ArgumentParser(
        prog="gsnerf-train", description="Train GSNeRF (generalizable semantic NeRF). "
        "Options are fields of TrainConfig given as key=value (e.g. optim.steps=1000 "
        "model.num_classes=17); run under torchrun for multi-GPU/CPU DDP.")
    p.add_argument("--config", help="YAML file: a TrainConfig (config/train_*.yaml) or a recipe "
                   "of stages (config/recipes/*.yaml)")
    p.add_argument("--stage", default=None, metavar="NAME",
                   help="recipes: the stage to run, or all (the default). Each stage runs in "
                        "<run_dir>/<name> from the previous stage's final checkpoint; a stage "
                        "that has finished is skipped, so rerunning a recipe resumes it")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved config (of each selected stage), exit")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. optim.lr=1e-4")
    args = p.parse_args(argv)
    try:
        if args.config is None:
            if args.stage is not None:
                p.error("--stage needs --config RECIPE")
            stages = [Stage("", load_config(TrainConfig, None, args.overrides))]
        else:
            stages = load_stages(args.config, args.overrides, args.stage)
    except (ValueError, FileNotFoundError) as exc:
        p.error(str(exc))
    if args.print_config:
        import yaml
        print("---\n".join(yaml.safe_dump(to_dict(s.config), sort_keys=False) for s in stages),
              end="")
        return 0
    ended: dict[str, int] = {}      # run folder -> step it ended at, for stages run here
    for stage in stages:
        try:
            summary = _run_stage(stage, ended)
        except (ValueError, FileNotFoundError) as exc:  # data, classes, config: what to fix
            p.exit(2, f"gsnerf-train: error: {exc}\n")
        if summary is None:
            continue
        if int(os.environ.get("RANK", "0")) == 0:
            best = summary["best_score"]
            print(json.dumps({**({"stage": stage.name} if stage.name else {}),
                              "steps": summary["steps"], "wall_s": summary["wall_s"],
                              "select_metric": summary["select_metric"],
                              "best_score": best if best != float("-inf") else None}))
        if stage.name and ended.get(stage.config.run_dir) is None:
            print(f"gsnerf-train: stage {stage.name} stopped at step {summary['steps']} before "
                  f"its end (time limit); rerun to continue it", file=sys.stderr)
            return 0
    return 0


def _run_stage(stage: "Stage", ended: dict[str, int]) -> dict | None:
    """Train one stage (or a plain config); None if a recipe stage had already finished.

    A recipe stage resumes from its own run folder (``resume=auto``) and, when it continues
    another stage, starts from where that one ended (this process's run of it, or its folder).
    ``ended`` records the end step of every stage that finished here."""
    from gsnerf_ros.train.recipe import finished_step, planned_steps, stage_start
    from gsnerf_ros.train.trainer import train

    cfg = stage.config
    if not stage.name:
        return train(cfg)
    done = finished_step(cfg)
    if done is not None:
        ended[cfg.run_dir] = done
        if int(os.environ.get("RANK", "0")) == 0:
            print(f"gsnerf-train: stage {stage.name} finished at step {done} ({cfg.run_dir}): "
                  f"skipped", file=sys.stderr, flush=True)
        return None
    if stage.previous is not None:
        before = stage.previous
        step = ended.get(before.config.run_dir)
        if step is None:
            step = finished_step(before.config)
        if step is None:
            raise ValueError(f"stage {stage.name} continues stage {before.name}, which has not "
                             f"finished in {before.config.run_dir}: run --stage {before.name} "
                             f"(or all) first, or give init_checkpoint=")
        cfg.init_checkpoint = stage_start(before.config.run_dir, stage.init_from, step)
    cfg.resume = "auto"
    summary = train(cfg)
    if summary["steps"] >= planned_steps(cfg.optim) or cfg.optim.anneal_by_time:
        ended[cfg.run_dir] = int(summary["steps"])
    return summary


def eval_main(argv: list[str] | None = None) -> int:
    """Entry point of ``gsnerf-eval``."""
    from gsnerf_ros.model import GSNeRF
    from gsnerf_ros.data.class_mapping import load_class_map
    from gsnerf_ros.data.rosbag import BagConfig
    from gsnerf_ros.data.bag_discovery import add_layout_arguments
    from gsnerf_ros.train.data_setup import (attach_segmenter_labels, class_label_maps,
                                             eval_views, load_scenes)
    from gsnerf_ros.train.evaluate import (EvalOptions, evaluate, write_confusion_png, write_json,
                                           write_markdown)
    from gsnerf_ros.device import resolve_device
    from gsnerf_ros.model.inference import (
        add_inference_arguments,
        apply_inference,
        inference_from_args,
    )

    p = argparse.ArgumentParser(prog="gsnerf-eval",
                                description="Evaluate a GSNeRF checkpoint on held-out scenes "
                                "against the reprojection baseline.")
    p.add_argument("--checkpoint", required=True, help="model .safetensors (with .json sidecar)")
    p.add_argument("--data", required=True, help="a scene folder or bag, or a folder of scenes "
                   "or of bags (one scene per bag)")
    p.add_argument("--format", default="replica", choices=["replica", "scannet", "bag"])
    p.add_argument("--scenes", nargs="*", default=None, help="scene names under --data")
    p.add_argument("--json", required=True, help="output JSON path")
    p.add_argument("--markdown", default=None, help="Markdown summary (default: JSON path .md)")
    p.add_argument("--panels", default=None, help="folder for PNG panels (default: none)")
    p.add_argument("--panels-per-scene", type=int, default=2)
    p.add_argument("--num-sources", type=int, default=8)
    p.add_argument("--max-targets", type=int, default=None, help="targets per scene (default: "
                   "all of the protocol)")
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--mode", default=None, help="sampling mode override (depth_guided, uniform,"
                   " mixed, hierarchical, released)")
    p.add_argument("--num-samples", type=int, default=None, help="samples per ray override")
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument("--no-lpips", action="store_true")
    p.add_argument("--sensor-depth", action="store_true",
                   help="RGB-D setting: the sources' ground-truth depth replaces the cost-volume "
                        "depth for D_T and occlusion (never the target's depth)")
    p.add_argument("--sensor-holes", type=float, default=0.0, metavar="F",
                   help="with --sensor-depth: drop this share of each source's measured depth "
                        "in blobs, as a depth camera's holes (seeded; the model's estimate "
                        "stands in there)")
    p.add_argument("--sensor-noise", type=float, default=0.0, metavar="S",
                   help="with --sensor-depth: relative Gaussian noise on each source's measured "
                        "depth (seeded)")
    p.add_argument("--class-map", default=None, metavar="FILE",
                   help="YAML/JSON 'data class name: checkpoint class name' aliases (null = leave "
                        "that class unscored); classes are otherwise matched by name and a "
                        "mismatch is refused")
    seg = p.add_argument_group("a 2D segmenter's labels (semantic source 'labels')")
    seg.add_argument("--labels-from", default=None, nargs="+", metavar="DIR",
                     help="render the vote of the sources' segmenter labels instead of the "
                          "model's classes: DIR mirrors --data with "
                          "<scene>/semantic_class/semantic_class_<i>.png class-id images (255 / "
                          "65535 = unknown), e.g. --data itself (ground truth as the segmenter) "
                          "or a copy from python -m gsnerf_ros.data.label_corruption; the "
                          "segmenter is scored on the source views too; more DIRs are voted "
                          "and scored beside the first from the same renders (label_sources)")
    seg.add_argument("--label-angle-sigma", type=float, default=0.0, metavar="DEG",
                     help="view weight of the vote: exp(-theta^2/2 sigma^2) of the angle between "
                          "the target ray and the source's ray (0 = off, the node's "
                          "semantic.label_angle_sigma)")
    seg.add_argument("--label-depth-search", type=float, default=0.25, metavar="R",
                     help="depth hypotheses of the vote over [D_T/(1+R), D_T*(1+R)], the one the "
                          "views agree on most kept (0 = D_T alone; the node's "
                          "semantic.label_depth_search)")
    bag = p.add_argument_group("bags (--format bag)")
    add_layout_arguments(bag)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0, help="torch threads on CPU (0 = default)")
    add_inference_arguments(p)
    args = p.parse_args(argv)
    inference = inference_from_args(p, args)
    if args.format != "bag" and (args.world_frame or args.image_topic or args.camera_info_topic):
        p.error("--world-frame / --image-topic / --camera-info-topic need --format bag")
    for flag, value in (("--sensor-holes", args.sensor_holes),
                        ("--sensor-noise", args.sensor_noise)):
        if value and not args.sensor_depth:
            p.error(f"{flag} needs --sensor-depth")
        if not 0.0 <= value < 1.0:
            p.error(f"{flag} must lie in [0, 1), got {value}")

    device = resolve_device(args.device)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    model = GSNeRF.from_checkpoint(args.checkpoint, device=device)
    apply_inference(model.config, inference)
    bag_cfg = BagConfig(world_frame=args.world_frame, image_topic=args.image_topic,
                        camera_info_topic=args.camera_info_topic)
    try:
        scenes = load_scenes(args.data, args.format, args.scenes, bag_cfg)
        aliases = load_class_map(args.class_map) if args.class_map else None
        label_maps = class_label_maps(scenes, model.class_names, aliases)
    except (ValueError, FileNotFoundError) as exc:
        p.exit(2, f"gsnerf-eval: error: {exc}\n")
    sampling: dict = {}
    if args.mode:
        sampling["mode"] = args.mode
    if args.num_samples:
        sampling["num_samples"] = args.num_samples
    views = eval_views(scenes, args.num_sources, args.height, args.width, args.max_targets,
                       near=inference.near, far=inference.far, label_maps=label_maps)
    if args.labels_from:
        try:
            for d in args.labels_from:
                attach_segmenter_labels(views, scenes, args.data, d, label_maps)
        except (ValueError, FileNotFoundError) as exc:
            p.exit(2, f"gsnerf-eval: error: {exc}\n")
    res = evaluate(model, views, EvalOptions(
        sampling=sampling, baseline=not args.no_baseline, panels_dir=args.panels,
        panels_per_scene=args.panels_per_scene, lpips=not args.no_lpips,
        sensor_depth=args.sensor_depth, sensor_holes=args.sensor_holes,
        sensor_noise=args.sensor_noise,
        floor_z=inference.floor_z,
        semantic_source="labels" if args.labels_from else "model",
        label_angle_sigma=args.label_angle_sigma,
        label_depth_search=args.label_depth_search), device=device,
        total=len(views))
    res["checkpoint"] = str(args.checkpoint)
    res["data"] = str(args.data)
    res["num_sources"] = args.num_sources
    res["resolution"] = [args.width, args.height]
    res["sensor_depth"] = bool(args.sensor_depth)
    res["sensor_holes"] = args.sensor_holes
    res["sensor_noise"] = args.sensor_noise
    res["labels_from"] = args.labels_from
    res["label_angle_sigma"] = args.label_angle_sigma
    res["label_depth_search"] = args.label_depth_search
    res["floor_z"] = inference.floor_z
    res["geometry_max_pixels"] = model.config.geometry_max_pixels
    res["semantic_max_pixels"] = model.config.semantic_max_pixels
    res["num_neighbors"] = model.config.cost_volume.num_neighbors
    res["consistency_tolerance"] = model.config.target_depth.consistency_tolerance
    res["colour_views"] = model.config.renderer.colour_views
    res["class_mapping"] = {s.name: {s.class_names[i]: (model.class_names[j] if j < len(
        model.class_names) else None) for i, j in m.items()} for s, m in zip(scenes, label_maps)
        if m is not None}
    if args.format == "bag":
        res["bags"] = {s.name: {"path": str(s.path), "world_frame": s.world_frame,
                                "image_topic": s.image_topic,
                                "camera_info_topic": s.camera_info_topic, **s.stats}
                       for s in scenes}
    res["command"] = "gsnerf-eval " + " ".join(shlex.quote(a) for a in (
        argv if argv is not None else sys.argv[1:]))
    png = Path(args.json).with_name(Path(args.json).stem + "_confusion.png")
    res["confusion_png"] = png.name if write_confusion_png(res, png) is not None else None
    write_json(res, args.json)
    md = args.markdown or str(Path(args.json).with_suffix(".md"))
    write_markdown(res, md, title=f"gsnerf-eval: {Path(args.checkpoint).name}")
    keys = ("mIoU", "acc", "class_acc", "psnr", "ssim", "depth_abs_rel", "n_images")
    print(json.dumps({k: res.get(k) for k in keys}))
    if "baseline" in res:
        print("baseline:", json.dumps({k: res["baseline"].get(k) for k in keys}))
    for name, r in res.get("label_sources", {}).items():
        print(f"labels from {name}: vote mIoU {r['mIoU']}, segmenter on the source views mIoU "
              f"{r['segmenter']['mIoU']}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(train_main())
