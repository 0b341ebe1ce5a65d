"""Reader for the Replica layout of the Semantic-NeRF renders (and of ``gsnerf-synth`` output).

```
<seq>/rgb/rgb_{i}.png
<seq>/depth/depth_{i}.png                   uint16 millimetres
<seq>/semantic_class/semantic_class_{i}.png  class ids
<seq>/traj_w_c.txt                           one row-major 4x4 camera-to-world per line
<seq>/scene.json                             (generated scenes only) K, class_names, palette, near, far
```

Without ``scene.json`` (real Replica renders) the reader applies the GSNeRF protocol: labels
through :func:`gsnerf_ros.data.classes.replica_lut` (19 classes) and the renders' pinhole
intrinsics, 90 deg horizontal FOV: fx = fy = W/2, cx = (W-1)/2, cy = (H-1)/2, i.e. 320, 319.5,
239.5 at 640x480. (The released code has cy = 229.5, a typo; fixed here.) near/far 0.1/6 m.
Files are matched by their index and ordered naturally; frame ``i`` uses line ``i`` of the
trajectory.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from torch import Tensor

from gsnerf_ros.data.classes import (
    make_palette, replica_class_names, replica_lut,
)
from gsnerf_ros.data.io import natural_key, read_depth_png, read_label_png, read_rgb, read_traj
from gsnerf_ros.data.scene import Frame, Scene

__all__ = ["ReplicaScene", "replica_intrinsics", "find_scene_dirs", "REPLICA_NEAR", "REPLICA_FAR"]

SCENE_JSON_KEYS = ("K", "height", "width", "class_names", "palette", "near", "far")
"""Keys of gsnerf-synth's ``scene.json``."""

REPLICA_NEAR = 0.1
REPLICA_FAR = 6.0


def replica_intrinsics(height: int, width: int) -> Tensor:
    """Intrinsics of the Semantic-NeRF Replica renders (90 deg HFOV) at ``height`` x ``width``."""
    f = width / 2.0
    return torch.tensor([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1]],
                        dtype=torch.float32)


def _index_files(folder: Path, prefix: str) -> dict[int, Path]:
    pat = re.compile(rf"^{re.escape(prefix)}_(\d+)\.(png|jpg|jpeg)$", re.IGNORECASE)
    out: dict[int, Path] = {}
    if folder.is_dir():
        for p in sorted(folder.iterdir(), key=lambda q: natural_key(q.name)):
            m = pat.match(p.name)
            if m:
                out[int(m.group(1))] = p
    return out


class ReplicaScene(Scene):
    """One Replica sequence (or generated room) as a :class:`Scene`.

    ``unlisted``: for real Replica, ``"merge"`` (paper protocol: other ids -> class 6) or
    ``"ignore"`` (-> 255). ``load_depth`` / ``load_labels`` switch the optional modalities.
    """

    def __init__(self, root: str | Path, unlisted: str = "merge", load_depth: bool = True,
                 load_labels: bool = True, name: str | None = None) -> None:
        self.root = Path(root)
        if not (self.root / "traj_w_c.txt").is_file():
            raise FileNotFoundError(f"{self.root}: not a Replica sequence (no traj_w_c.txt)")
        self._c2w = read_traj(self.root / "traj_w_c.txt")
        rgb = _index_files(self.root / "rgb", "rgb")
        if not rgb:
            raise FileNotFoundError(f"{self.root}/rgb: no rgb_<i>.png files")
        self._ids = sorted(rgb)
        if self._ids[-1] >= self._c2w.shape[0]:
            raise ValueError(f"{self.root}: rgb_{self._ids[-1]} has no pose; traj_w_c.txt has "
                             f"{self._c2w.shape[0]} lines")
        self._rgb = rgb
        self._depth = _index_files(self.root / "depth", "depth") if load_depth else {}
        self._sem = (_index_files(self.root / "semantic_class", "semantic_class")
                     if load_labels else {})
        meta_path = self.root / "scene.json"
        self.meta: dict = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        if meta_path.is_file():
            self._check_meta(meta_path)
        self.name = name or self.meta.get("name") or self._default_name()
        probe = read_rgb(rgb[self._ids[0]])
        self.height, self.width = int(probe.shape[1]), int(probe.shape[2])
        if self.meta:
            self._K = torch.tensor(self.meta["K"], dtype=torch.float32)
            if (self.meta.get("height"), self.meta.get("width")) != (self.height, self.width):
                raise ValueError(f"{meta_path}: size {self.meta.get('width')}x"
                                 f"{self.meta.get('height')} does not match the images "
                                 f"{self.width}x{self.height}")
            self.class_names = list(self.meta["class_names"])
            self.palette = torch.tensor(self.meta["palette"], dtype=torch.uint8)
            self.near, self.far = float(self.meta["near"]), float(self.meta["far"])
            self._lut = None
        else:
            self._K = replica_intrinsics(self.height, self.width)
            names = self._info_semantic_names()
            self.class_names = replica_class_names(names)
            self.palette = make_palette(len(self.class_names))
            self.near, self.far = REPLICA_NEAR, REPLICA_FAR
            self._lut = torch.from_numpy(replica_lut(unlisted))

    def _check_meta(self, meta_path: Path) -> None:
        """A scene.json must be gsnerf-synth's schema; another one is a clear error."""
        keys = SCENE_JSON_KEYS
        missing = [k for k in keys if k not in self.meta] if isinstance(self.meta, dict) else keys
        if missing:
            found = sorted(self.meta) if isinstance(self.meta, dict) else type(self.meta).__name__
            raise ValueError(
                f"{meta_path} is not a gsnerf-synth scene.json: it lacks {missing} (it has "
                f"{found}); the schema is {list(keys)} (K 3x3 pixels for height x width, "
                f"class_names in label-id order, palette [C,3] uint8, near/far metres). Convert "
                f"it to that schema, or remove it to read the folder as a Semantic-NeRF Replica "
                f"render (GSNeRF 19-class protocol)")

    def _default_name(self) -> str:
        parts = self.root.resolve().parts
        return "/".join(parts[-2:]) if parts[-1].lower().startswith("sequence") else parts[-1]

    def _info_semantic_names(self) -> dict[int, str] | None:
        """Class names from a Replica ``info_semantic.json`` next to or above the sequence."""
        for p in (self.root / "info_semantic.json", self.root.parent / "info_semantic.json",
                  self.root.parent / "habitat" / "info_semantic.json"):
            if p.is_file():
                data = json.loads(p.read_text())
                return {int(c["id"]): str(c["name"]) for c in data.get("classes", [])}
        return None

    def __len__(self) -> int:
        return len(self._ids)

    def frame_index(self, i: int) -> int:
        """File index (``rgb_<index>.png``) of frame ``i``."""
        return self._ids[self._check_index(i)]

    def frame(self, i: int) -> Frame:
        idx = self.frame_index(i)
        image = read_rgb(self._rgb[idx])
        depth = read_depth_png(self._depth[idx]) if idx in self._depth else None
        labels = None
        if idx in self._sem:
            raw = read_label_png(self._sem[idx])
            labels = raw if self._lut is None else self._lut[raw.clamp(0, self._lut.numel() - 1)]
        return Frame(image=image, K=self._K.clone(), c2w=self._c2w[idx].clone(), depth=depth,
                     labels=labels, frame_id=str(idx), stamp=float(idx))

    def poses(self) -> Tensor:
        return self._c2w[self._ids]

    def intrinsics(self) -> Tensor:
        return self._K.expand(len(self), 3, 3).clone()


def find_scene_dirs(root: str | Path) -> list[Path]:
    """All sequence folders (holding ``traj_w_c.txt``) under ``root``, naturally sorted."""
    root = Path(root)
    found = [p.parent for p in root.rglob("traj_w_c.txt")]
    return sorted(found, key=lambda p: natural_key(str(p)))


