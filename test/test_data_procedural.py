"""Procedural rooms: geometry/label consistency, determinism, splits, Replica-layout output."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gsnerf_ros.data.classes import PROCEDURAL_CLASSES
from gsnerf_ros.data.procedural import SynthConfig, generate_scene, scene_seed
from gsnerf_ros.data.procedural.cli import main as synth_main
from gsnerf_ros.data.procedural.layout import CLASS_ID, sample_room
from gsnerf_ros.data.procedural.primitives import SHELL, cast_rays, signed_distance
from gsnerf_ros.data.procedural.renderer import RoomRenderer
from gsnerf_ros.data.procedural.trajectory import TrajectoryConfig, sample_trajectory
from gsnerf_ros.data.replica import ReplicaScene, find_scene_dirs
from gsnerf_ros.geometry import unproject_depth

TINY = SynthConfig(frames=3, height=24, width=32, shadow_res=16)


def _label_surface_distance(room, points: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Distance (m) from each point to the nearest surface that carries the point's label."""
    P = room.prims
    sd = signed_distance(P, points).abs()  # [M,N]
    lab_ok = P.label[:, None] == labels[None]
    sd = torch.where(lab_ok & (P.kind[:, None] != SHELL), sd, torch.full_like(sd, float("inf")))
    best = sd.min(0).values
    c, h = P.center[0], P.size[0]
    q = points - c
    floor_d = (q[:, 2] + h[2]).abs()
    ceil_d = (q[:, 2] - h[2]).abs()
    wall_d = torch.stack([(q[:, 0] - h[0]).abs(), (q[:, 0] + h[0]).abs(),
                          (q[:, 1] - h[1]).abs(), (q[:, 1] + h[1]).abs()]).min(0).values
    fl, ce, wa = P.shell_labels
    best = torch.where(labels == fl, torch.minimum(best, floor_d), best)
    best = torch.where(labels == ce, torch.minimum(best, ceil_d), best)
    best = torch.where(labels == wa, torch.minimum(best, wall_d), best)
    return best


@pytest.mark.parametrize("seed", [0, 7])
def test_depth_unprojects_onto_surface_with_its_label(seed: int) -> None:
    room = sample_room(scene_seed(seed, "train"))
    c2w = sample_trajectory(room, 3, np.random.default_rng(seed))
    r = RoomRenderer(room, shadow_res=16)
    from gsnerf_ros.data.procedural import intrinsics_from_fov
    K = intrinsics_from_fov(24, 32, 90.0)
    for i in range(3):
        out = r.render(K, c2w[i], 24, 32)
        assert bool((out.depth > 0.05).all())
        pts = unproject_depth(out.depth, K, c2w[i]).reshape(-1, 3)
        d = _label_surface_distance(room, pts, out.labels.reshape(-1))
        assert float((d < 2e-3).float().mean()) > 0.995, float(d.max())
        # the label is the hit primitive's label (shell faces aside)
        prim = out.prim.reshape(-1)
        solid = room.prims.kind[prim] != SHELL
        assert torch.equal(out.labels.reshape(-1)[solid], room.prims.label[prim][solid])


def test_png_depth_round_trip_stays_on_surfaces(tmp_path) -> None:
    scene = generate_scene(TINY, 3, "train")
    from gsnerf_ros.data.procedural import write_replica_layout
    write_replica_layout(scene, tmp_path / scene.name)
    disk = ReplicaScene(tmp_path / scene.name)
    room = sample_room(scene_seed(3, "train"))
    for i in range(len(disk)):
        f = disk.frame(i)
        assert torch.allclose(f.c2w, scene.c2w[i], atol=1e-6)
        assert torch.equal(f.labels, scene.labels[i])
        assert float((f.depth - scene.depths[i]).abs().max()) <= 0.0005 + 1e-6
        assert float((f.image - scene.images[i]).abs().max()) <= 1 / 255 + 1e-6
        pts = unproject_depth(f.depth, f.K, f.c2w).reshape(-1, 3)
        d = _label_surface_distance(room, pts, f.labels.reshape(-1))
        assert float((d < 5e-3).float().mean()) > 0.99


def test_generation_is_deterministic_per_seed_and_differs_between_seeds() -> None:
    a = generate_scene(TINY, 5, "train")
    b = generate_scene(TINY, 5, "train")
    c = generate_scene(TINY, 6, "train")
    assert torch.equal(a.images, b.images) and torch.equal(a.depths, b.depths)
    assert torch.equal(a.labels, b.labels) and torch.equal(a.c2w, b.c2w)
    assert not torch.equal(a.c2w, c.c2w)
    assert float((a.images.mean((1, 2, 3)) - c.images.mean((1, 2, 3))).abs().max()) > 0 or \
        not torch.equal(a.labels, c.labels)


def test_splits_use_disjoint_seeds() -> None:
    assert scene_seed(0, "train") != scene_seed(0, "val") != scene_seed(0, "test")
    ranges = {s: {scene_seed(k, s) for k in (0, 1, 999_999)} for s in ("train", "val", "test")}
    assert not (ranges["train"] & ranges["val"]) and not (ranges["val"] & ranges["test"])
    with pytest.raises(ValueError):
        scene_seed(0, "holdout")


def test_rooms_are_varied_and_furnished() -> None:
    sizes, n_classes = set(), set()
    for s in range(12):
        room = sample_room(s)
        sizes.add(tuple(round(v, 2) for v in room.size))
        labels = set(room.prims.label.tolist()) | set(room.prims.shell_labels)
        n_classes |= labels
        furniture = [p for p in room.pieces if p["type"] not in ("door", "window", "l_cut")]
        assert 3 <= len(furniture) <= 16
        assert {CLASS_ID["door"], CLASS_ID["window"]} <= labels
    assert len(sizes) == 12
    assert len(n_classes) >= 12 and n_classes <= set(range(len(PROCEDURAL_CLASSES)))


def test_trajectory_is_smooth_and_at_robot_height() -> None:
    room = sample_room(11)
    cfg = TrajectoryConfig()
    c2w = sample_trajectory(room, 60, np.random.default_rng(1), cfg)
    z = c2w[:, 2, 3]
    assert float(z.min()) >= cfg.min_height - 1e-4 and float(z.max()) <= cfg.max_height + 1e-4
    step = (c2w[1:, :3, 3] - c2w[:-1, :3, 3]).norm(dim=-1)
    assert float(step.max()) < 0.3
    R = c2w[:, :3, :3]
    assert torch.allclose(R @ R.transpose(1, 2), torch.eye(3).expand(60, 3, 3), atol=1e-4)
    assert bool((c2w[:, 2, 1] < 0).all()), "image y axis must point down (world -z)"
    clearance = signed_distance(room.prims, c2w[:, :3, 3]).min(0).values
    assert float(clearance.min()) > 0.1


def test_cast_rays_hits_box_face_at_expected_depth() -> None:
    room = sample_room(0)
    P = room.prims
    bi = int(torch.nonzero(P.kind == 1)[0])
    c = P.center[bi]
    axis = P.R[bi][:, 0]
    o = (c + axis * (P.size[bi, 0] + 0.5))[None]
    hits = cast_rays(P, o, -axis[None], subset=torch.tensor([bi]), include_shell=False)
    assert int(hits.prim[0]) == bi
    assert abs(float(hits.t[0]) - 0.5) < 1e-4


def test_cli_writes_train_val_test_sets(tmp_path) -> None:
    rc = synth_main([str(tmp_path), "--scenes", "1", "--frames", "2", "--height", "12",
                     "--width", "16", "--seed", "4", "--split", "all", "--fov", "80"])
    assert rc == 0
    dirs = find_scene_dirs(tmp_path)
    assert [d.parent.name for d in dirs] == ["test", "train", "val"]
    for d in dirs:
        meta = json.loads((d / "scene.json").read_text())
        for key in ("K", "height", "width", "class_names", "palette", "near", "far", "seed",
                    "split"):
            assert key in meta
        assert meta["split"] == d.parent.name and meta["seed"] == 4
        assert (d / "rgb" / "rgb_1.png").is_file() and (d / "depth" / "depth_1.png").is_file()
        assert (d / "semantic_class" / "semantic_class_1.png").is_file()
        assert len((d / "traj_w_c.txt").read_text().strip().splitlines()) == 2
        K = torch.tensor(meta["K"])
        assert abs(float(K[0, 0]) - 8 / np.tan(np.radians(40))) < 1e-3
    with pytest.raises(SystemExit):
        synth_main([str(tmp_path), "--frames", "0"])
