"""tools/independent_rooms.py: rooms from a renderer that shares no code with gsnerf-synth.

The evaluation on these rooms (docs/RESULTS.md §5) is only meaningful if the project reads
them as the renderer meant: these tests check the layout, the camera convention (OpenCV
camera-to-world, z-depth) through the project's own geometry, and the class mapping by name.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gsnerf_ros.data.class_mapping import match_classes
from gsnerf_ros.data.formats import open_scenes
from gsnerf_ros.geometry import unproject_depth, world_to_pixels
from helpers.shipped import shipped_sidecar

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "independent_rooms.py"


def _module():
    spec = importlib.util.spec_from_file_location("independent_rooms", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["independent_rooms"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def rooms(tmp_path_factory):
    out = tmp_path_factory.mktemp("indep")
    r = subprocess.run([sys.executable, str(SCRIPT), str(out), "--rooms", "2", "--frames", "12",
                        "--height", "48", "--width", "64", "--seed", "3"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return out


def test_independent_of_the_procedural_generator():
    src = SCRIPT.read_text()
    assert "gsnerf_ros" not in src.split('"""', 2)[2], "the renderer must not import the project"


def test_layout_reads_back(rooms):
    scenes = open_scenes(rooms, "replica")
    assert sorted(s.name for s in scenes) == ["indep_0003", "indep_0004"]
    for s in scenes:
        assert len(s) == 12
        meta = json.loads((rooms / s.name / "scene.json").read_text())
        f = s.frame(0)
        assert f.image.shape == (3, 48, 64) and f.depth is not None and f.labels is not None
        assert torch.allclose(f.K, torch.tensor(meta["K"], dtype=torch.float32))
        assert float(f.depth.min()) > 0 and float(f.depth.max()) < meta["far"]
        assert int(f.labels.max()) < len(meta["class_names"])
        assert s.class_names == meta["class_names"]
        # the room's own class order, so an evaluation has to map by name
        assert s.class_names[:2] == ["floor", "wall"]


def test_classes_map_by_name_onto_the_shipped_vocabulary(rooms):
    model_names = shipped_sidecar()["class_names"]
    scene = open_scenes(rooms, "replica")[0]
    remap = match_classes(scene.class_names, model_names)
    assert remap is not None
    assert remap[0] == model_names.index("floor") and remap[1] == model_names.index("wall")


def test_depth_and_poses_agree_with_the_project_geometry(rooms):
    """Lift frame 0 with its depth, project into frame 1 with the project's geometry: the z
    there matches frame 1's own depth wherever the point is visible (not occluded)."""
    s = open_scenes(rooms, "replica")[0]
    f0, f1 = s.frame(0), s.frame(1)
    pts = unproject_depth(f0.depth, f0.K, f0.c2w).reshape(1, -1, 3)
    uv, z = world_to_pixels(pts, f1.K[None], f1.c2w[None])
    uv, z = uv[0], z[0]
    H, W = f1.depth.shape
    ui, vi = uv[:, 0].round().long(), uv[:, 1].round().long()
    inside = (ui >= 0) & (ui < W) & (vi >= 0) & (vi < H) & (z > 0)
    assert int(inside.sum()) > 0.3 * H * W
    d1 = f1.depth[vi[inside], ui[inside]]
    rel = (d1 - z[inside]).abs() / d1
    # visible points agree to the depth PNG's millimetres and a pixel's rounding; occluded ones
    # (z far behind d1) are the minority on adjacent frames
    assert float((rel < 0.03).float().mean()) > 0.8


def test_camera_convention_is_opencv():
    mod = _module()
    c2w = mod.look_c2w(np.zeros(3), yaw=0.0, pitch=0.0)
    assert np.allclose(c2w[:3, 2], [1, 0, 0])          # z forward along the yaw
    assert np.allclose(c2w[:3, 1], [0, 0, -1])         # y down
    assert np.allclose(c2w[:3, 0], [0, -1, 0])         # x right
    assert np.isclose(np.linalg.det(c2w[:3, :3]), 1.0)


def test_room_surfaces_are_hit_where_the_box_says():
    """A camera at the centre looking along +x sees the +x wall at its distance."""
    mod = _module()
    room = mod.Room(size=np.array([6.0, 4.0, 3.0]),
                    surfaces={k: mod.Material("plain", np.full(3, 0.5), np.full(3, 0.5))
                              for k in ("floor", "wall", "ceiling")})
    K = mod.intrinsics(24, 32)
    _, depth, label = mod.render_view(room, mod.look_c2w(np.array([0.0, 0.0, 1.5]), 0.0, 0.0),
                                      K, 24, 32)
    assert abs(depth[11:13, 15:17].mean() - 3.0) < 0.05
    assert set(np.unique(label)) <= {0, 1, 2}
    assert label[0, 16] == mod.CLASS_NAMES.index("ceiling")
    assert label[-1, 16] == mod.CLASS_NAMES.index("floor")


def test_bad_arguments_are_refused(tmp_path):
    r = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "x"), "--rooms", "0"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--rooms" in r.stderr
    assert not (tmp_path / "x").exists()
