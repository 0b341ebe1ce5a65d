"""Scenes, training set and evaluation views for the trainer and ``gsnerf-eval``.

Glue between :mod:`gsnerf_ros.data` (readers, :class:`GSNeRFDataset`, view selection) and the
training code: which folders hold which split, at which size, with how many sources.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gsnerf_ros.train.config import TrainConfig
from gsnerf_ros.train.evaluate import EvalView

__all__ = ["load_scenes", "build_train_set", "build_val_views", "eval_views"]


def load_scenes(root: str | Path, fmt: str = "replica", names: list[str] | None = None,
                height: int | None = None, width: int | None = None) -> list[Any]:
    """Every scene under ``root`` (or ``root`` itself if it is one), optionally only ``names``
    (matched against the scene name or its folder name). Sizes are applied later, per sample."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"data root {root} does not exist")
    if fmt == "replica":
        from gsnerf_ros.data.replica import ReplicaScene, find_scene_dirs
        dirs = [root] if (root / "traj_w_c.txt").is_file() else find_scene_dirs(root)
        scenes = [ReplicaScene(d) for d in dirs]
    elif fmt == "scannet":
        from gsnerf_ros.data.scannet import ScanNetScene
        if (root / "pose").is_dir():
            dirs = [root]
        else:
            dirs = sorted(p.parent for p in root.glob("*/pose"))
        kw = {} if height is None else {"height": height, "width": width}
        try:
            scenes = [ScanNetScene(d, **kw) for d in dirs]
        except TypeError:
            scenes = [ScanNetScene(d) for d in dirs]
    elif fmt == "bag":
        from gsnerf_ros.data.rosbag import BagScene
        scenes = [BagScene(root)]
    else:
        raise ValueError(f"unknown data format {fmt!r}; use replica | scannet | bag")
    if names:
        wanted = set(names)
        scenes = [s for s in scenes if s.name in wanted or
                  Path(getattr(s, "root", getattr(s, "path", ""))).name in wanted]
        missing = wanted - {s.name for s in scenes} - {
            Path(getattr(s, "root", getattr(s, "path", ""))).name for s in scenes}
        if missing:
            raise ValueError(f"scenes {sorted(missing)} not found under {root}")
    return scenes


def build_train_set(cfg: TrainConfig) -> Any:
    """The training :class:`GSNeRFDataset` (``class_names`` and ``palette`` attached)."""
    from gsnerf_ros.data.dataset import DatasetConfig, GSNeRFDataset
    from gsnerf_ros.data.view_selection import TrainViewConfig

    d = cfg.data
    if d.finetune_scene:
        scenes = load_scenes(d.finetune_scene, d.format)
    else:
        scenes = load_scenes(d.train_root, d.format, d.train_scenes or None)
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


def eval_views(scenes: list[Any], num_sources: int, height: int, width: int,
               max_targets: int | None = None, near: float | None = None,
               far: float | None = None) -> list[EvalView]:
    """Evaluation views of the data package's protocol, resized to ``height`` x ``width``."""
    from gsnerf_ros.data.dataset import DatasetConfig, GSNeRFDataset
    from gsnerf_ros.data.view_selection import EvalProtocol

    proto = EvalProtocol(num_sources=num_sources)
    if max_targets is not None:
        proto.max_targets = max_targets
    out: list[EvalView] = []
    for s in scenes:
        ds = GSNeRFDataset([s], DatasetConfig(height=height, width=width, mode="eval",
                                              eval_protocol=proto, cache_frames=0,
                                              near=near, far=far))
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
        scenes = load_scenes(d.finetune_scene, d.format)
    else:
        if not d.val_root or not Path(d.val_root).exists():
            return []
        scenes = load_scenes(d.val_root, d.format, d.val_scenes or None)
    return eval_views(scenes, d.num_sources, d.height, d.width, d.val_images_per_scene,
                      d.near or None, d.far or None)
