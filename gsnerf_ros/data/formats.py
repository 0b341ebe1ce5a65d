"""Open every scene under a folder in one of the supported formats (for the CLIs).

``open_scenes(root, "replica")`` (also generated rooms), ``"scannet"`` (scene folders with a
``color/`` folder under ``root``, or ``root`` itself), ``"bag"`` (a bag directory or one of its
storage files, or every bag directory under ``root``: one scene per bag).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gsnerf_ros.data.io import natural_key
from gsnerf_ros.data.scene import Scene

__all__ = ["FORMATS", "open_scenes"]

FORMATS = ("replica", "scannet", "bag")


def open_scenes(root: str | Path, fmt: str, names: list[str] | None = None,
                **kwargs: Any) -> list[Scene]:
    """Scenes under ``root`` in format ``fmt``; ``names`` keeps only scenes with these names
    (or folder names). ``kwargs`` go to the reader (e.g. ``protocol=`` for ScanNet,
    ``cfg=BagConfig(...)`` for bags)."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"data root {root} does not exist")
    if fmt == "replica":
        from gsnerf_ros.data.replica import ReplicaScene, find_scene_dirs
        dirs = find_scene_dirs(root)
        make = ReplicaScene
    elif fmt == "scannet":
        from gsnerf_ros.data.scannet import ScanNetScene
        dirs = [root] if (root / "color").is_dir() else sorted(
            (p for p in root.iterdir() if (p / "color").is_dir()), key=lambda p: natural_key(p.name))
        make = ScanNetScene
    elif fmt == "bag":
        from gsnerf_ros.data.bag_discovery import find_bags
        from gsnerf_ros.data.rosbag import BagScene
        dirs = find_bags(root)
        make = BagScene
    else:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    scenes = []
    for d in dirs:
        if names and d.name not in names and str(d.relative_to(root)) not in names:
            continue
        scenes.append(make(d, **kwargs))
    if names:
        found = {s.name for s in scenes} | {Path(getattr(s, "root", "")).name for s in scenes}
        missing = [n for n in names if n not in found and not any(n in str(getattr(s, 'root', ''))
                                                                   for s in scenes)]
        if missing:
            raise ValueError(f"scenes {missing} not found under {root}")
    if not scenes:
        raise ValueError(f"no {fmt} scenes found under {root}")
    return scenes
