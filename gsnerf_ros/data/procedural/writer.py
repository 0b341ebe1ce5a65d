"""Write a scene in the Replica (Semantic-NeRF render) layout plus ``scene.json``.

```
OUT/<scene>/rgb/rgb_{i}.png                      RGB, 8 bit
OUT/<scene>/depth/depth_{i}.png                  uint16 z-depth in millimetres (0 = invalid)
OUT/<scene>/semantic_class/semantic_class_{i}.png  uint8 class ids (255 = ignore)
OUT/<scene>/traj_w_c.txt                         one row-major 4x4 camera-to-world per line
OUT/<scene>/scene.json                           K, height, width, class_names, palette, near,
                                                 far, seed, split (+ generator metadata)
```
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gsnerf_ros.data.io import write_depth_png, write_label_png, write_rgb, write_traj
from gsnerf_ros.data.scene import Scene

__all__ = ["write_replica_layout"]


def write_replica_layout(scene: Scene, out_dir: str | Path,
                         extra: dict[str, Any] | None = None) -> Path:
    """Write every frame of ``scene`` under ``out_dir`` (created); returns ``out_dir``.

    All frames must share one intrinsics matrix (as in Replica renders). ``traj_w_c.txt`` is
    written last, so a folder that has it is complete.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    Ks = scene.intrinsics()
    if len(scene) and not bool((Ks - Ks[0]).abs().max() < 1e-4):
        raise ValueError(f"scene {scene.name!r}: the Replica layout holds one K for all frames")
    for i in range(len(scene)):
        f = scene.frame(i)
        write_rgb(out / "rgb" / f"rgb_{i}.png", f.image)
        if f.depth is not None:
            write_depth_png(out / "depth" / f"depth_{i}.png", f.depth)
        if f.labels is not None:
            write_label_png(out / "semantic_class" / f"semantic_class_{i}.png", f.labels)
    meta: dict[str, Any] = {
        "name": scene.name,
        "K": Ks[0].tolist() if len(scene) else None,
        "height": scene.height, "width": scene.width,
        "class_names": list(scene.class_names),
        "palette": scene.palette.tolist(),
        "near": scene.near, "far": scene.far,
        "num_frames": len(scene),
        "depth_scale": 1000.0,
        "ignore_index": 255,
    }
    meta.update(getattr(scene, "metadata", {}) or {})
    meta.update(extra or {})
    (out / "scene.json").write_text(json.dumps(meta, indent=1))
    # The trajectory last: readers find scenes by it (find_scene_dirs), so a render cut short
    # (a time-boxed device session) leaves no half-written scene that looks complete.
    write_traj(out / "traj_w_c.txt", scene.poses())
    return out
