"""Scenes, training set and evaluation views for the trainer and ``gsnerf-eval``.

Glue between :mod:`gsnerf_ros.data` (readers, :class:`GSNeRFDataset`, view selection) and the
training code: which folders hold which split, at which size, with how many sources.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from gsnerf_ros.data.formats import open_scenes
from gsnerf_ros.data.rosbag import BagConfig
from gsnerf_ros.train.config import DataConfig, TrainConfig
from gsnerf_ros.train.evaluate import EvalView

__all__ = ["load_scenes", "bag_config", "build_train_set", "build_val_views", "eval_views",
           "class_label_maps", "attach_segmenter_labels"]


def load_scenes(root: str | Path, fmt: str = "replica", names: list[str] | None = None,
                bag: BagConfig | None = None) -> list[Any]:
    """Every scene under ``root`` (or ``root`` itself if it is one), optionally only ``names``
    (matched against the scene name or its folder name); for ``fmt="bag"`` one scene per bag,
    read with ``bag`` (topics, world frame). Sizes are applied later, per sample."""
    return open_scenes(root, fmt, names, **({"cfg": bag} if fmt == "bag" and bag else {}))


def bag_config(d: DataConfig) -> BagConfig:
    """The bag reader's settings from the training config's data section."""
    return BagConfig(world_frame=d.world_frame, image_topic=d.image_topic,
                     camera_info_topic=d.camera_info_topic)


def build_train_set(cfg: TrainConfig) -> Any:
    """The training :class:`GSNeRFDataset` (``class_names`` and ``palette`` attached)."""
    from gsnerf_ros.data.dataset import DatasetConfig, GSNeRFDataset
    from gsnerf_ros.data.view_selection import TrainViewConfig

    d = cfg.data
    if d.finetune_scene:
        scenes = load_scenes(d.finetune_scene, d.format, bag=bag_config(d))
    else:
        scenes = load_scenes(d.train_root, d.format, d.train_scenes or None, bag_config(d))
    if not scenes:
        raise ValueError(f"no training scenes under {d.finetune_scene or d.train_root}; "
                         f"generate some with gsnerf-synth")
    ds = GSNeRFDataset(scenes, DatasetConfig(
        height=d.height, width=d.width, mode="train", seed=cfg.seed,
        near=d.near or None, far=d.far or None,
        train_views=TrainViewConfig(num_sources=d.num_sources,
                                    pool_ratios=tuple(range(1, d.pool_ratio + 1)),
                                    source_strides=tuple(d.source_strides))))
    ds.class_names = list(scenes[0].class_names)
    ds.palette = scenes[0].palette
    for s in scenes[1:]:
        if list(s.class_names) != ds.class_names:
            raise ValueError(f"scene {s.name} has other classes than {scenes[0].name}; all "
                             f"training scenes must share one class list")
    return ds


def class_label_maps(scenes: list[Any], model_names: list[str],
                     aliases: dict[str, str | None] | None = None) -> list[dict[int, int] | None]:
    """Per scene, the label remap onto the model's classes by name
    (:func:`~gsnerf_ros.data.class_mapping.match_classes`); None where nothing is remapped or the
    scene has no labels. Raises ``ClassMatchError`` when a labelled scene's classes do not
    match, so mismatched ids are never scored."""
    from gsnerf_ros.data.class_mapping import match_classes

    out: list[dict[int, int] | None] = []
    for s in scenes:
        if not s.class_names or s.frame(0).labels is None:
            out.append(None)
            continue
        out.append(match_classes(s.class_names, model_names, aliases, where=f"scene {s.name}"))
    return out


def eval_views(scenes: list[Any], num_sources: int, height: int, width: int,
               max_targets: int | None = None, near: float | None = None,
               far: float | None = None,
               label_maps: list[dict[int, int] | None] | None = None,
               protocol: Any = None) -> list[EvalView]:
    """Evaluation views of the data package's protocol, resized to ``height`` x ``width``;
    ``label_maps[i]`` remaps scene i's label ids (:func:`class_label_maps`). ``protocol``: an
    :class:`~gsnerf_ros.data.view_selection.EvalProtocol` to use instead of the default one
    with ``num_sources`` and ``max_targets`` (e.g. one target frame of one's choice)."""
    from gsnerf_ros.data.dataset import DatasetConfig, GSNeRFDataset
    from gsnerf_ros.data.view_selection import EvalProtocol

    proto = protocol if protocol is not None else EvalProtocol(num_sources=num_sources)
    if protocol is None and max_targets is not None:
        proto.max_targets = max_targets
    out: list[EvalView] = []
    for si, s in enumerate(scenes):
        ds = GSNeRFDataset([s], DatasetConfig(height=height, width=width, mode="eval",
                                              eval_protocol=proto, cache_frames=0,
                                              near=near, far=far,
                                              label_map=label_maps[si] if label_maps else None))
        for i in range(len(ds)):
            it = ds[i]
            out.append(EvalView(
                scene=it["scene"], target_index=int(it["target_index"]),
                source_indices=[int(x) for x in it["source_indices"]], images=it["images"],
                K=it["K"], c2w=it["c2w"], depths=it["depths"] if it["has_depth"] else None,
                labels=it["labels"] if it["has_labels"] else None,
                near=float(it["near"]), far=float(it["far"])))
    return out


def build_val_views(cfg: TrainConfig) -> list[EvalView]:
    """Validation views for model selection: the val split (never test); when fine-tuning,
    the evaluation-protocol targets of the fine-tuning scene."""
    d = cfg.data
    if d.finetune_scene:
        scenes = load_scenes(d.finetune_scene, d.format, bag=bag_config(d))
    else:
        if not d.val_root or not Path(d.val_root).exists():
            return []
        scenes = load_scenes(d.val_root, d.format, d.val_scenes or None, bag_config(d))
    return eval_views(scenes, d.num_sources, d.height, d.width, d.val_images_per_scene,
                      d.near or None, d.far or None)


def attach_segmenter_labels(views: list[EvalView], scenes: list[Any], data_root: str | Path,
                            labels_dir: str | Path,
                            label_maps: list[dict[int, int] | None] | None = None,
                            name: str | None = None) -> None:
    """Give every view its sources' segmenter labels from ``labels_dir`` (under ``name``, by
    default the folder as given; views keep the labels of other segmenters attached before)
    (:mod:`gsnerf_ros.data.segmenter_labels`: the dataset's layout, ids of the dataset's
    classes, remapped like its ground truth by ``label_maps``; unknown = -1), read at the
    files' own size. Raises FileNotFoundError / ValueError naming the file that is missing or
    wrong; a scene must be a folder (Replica layout)."""
    from gsnerf_ros.data.classes import remap_labels
    from gsnerf_ros.data.segmenter_labels import (read_segmenter_png, scene_relative_dir,
                                                  segmenter_label_path)

    by_name = {s.name: (i, s) for i, s in enumerate(scenes)}
    cache: dict[tuple[str, int], Any] = {}
    for view in views:
        si, scene = by_name[view.scene]
        root = getattr(scene, "root", None)
        if root is None or not Path(root).is_dir():
            raise ValueError(f"scene {view.scene}: segmenter labels need a scene folder "
                             "(Replica layout), not a bag")
        rel = scene_relative_dir(root, data_root)
        mapping = label_maps[si] if label_maps else None
        maps = []
        for i in view.source_indices:
            key = (view.scene, int(i))
            if key not in cache:
                lab = read_segmenter_png(segmenter_label_path(labels_dir, rel,
                                                              scene.frame_index(i)))
                if mapping is not None:
                    known = lab >= 0
                    lab = torch.where(known, remap_labels(lab.clamp(min=0), mapping, -1), lab)
                cache[key] = lab
            maps.append(cache[key])
        if view.source_label_maps is None:
            view.source_label_maps = {}
        view.source_label_maps[str(labels_dir) if name is None else name] = maps
