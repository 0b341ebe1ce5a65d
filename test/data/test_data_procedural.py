"""Procedural rooms: geometry/label consistency, determinism, splits, Replica-layout output, and
the distribution each setting promises (room sizes, materials, lights, camera paths, a
test_novel setting disjoint from train)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from gsnerf_ros.config import from_dict
from gsnerf_ros.data.classes import PROCEDURAL_CLASSES
from gsnerf_ros.data.procedural import (
    SynthConfig,
    generate_scene,
    intrinsics_from_fov,
    load_synth_config,
    scene_seed,
)
from gsnerf_ros.data.procedural.cli import main as synth_main
from gsnerf_ros.data.procedural.distribution import TrajectoryConfig
from gsnerf_ros.data.procedural.layout import CLASS_ID, sample_room, sample_room_size
from gsnerf_ros.data.procedural.primitives import SHELL, cast_rays, signed_distance
from gsnerf_ros.data.procedural.renderer import CUBE_FACES, RoomRenderer
from gsnerf_ros.data.procedural.textures import TEXTURES, MaterialTable, shade_albedo
from gsnerf_ros.data.procedural.trajectory import sample_trajectory
from gsnerf_ros.data.replica import ReplicaScene, find_scene_dirs
from gsnerf_ros.geometry import camera_rays, pixel_grid, unproject_depth
from gsnerf_ros.geometry.pose import rotation_angle

TINY = SynthConfig(frames=3, height=24, width=32, shadow_res=16)
BASE = SynthConfig().settings["base"]
NOVEL = SynthConfig().settings["novel"]
HELD_OUT = {"marble", "dots", "bricks"}


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


@pytest.mark.parametrize("seed,split", [(0, "train"), (7, "train"), (1, "test_novel")])
def test_depth_unprojects_onto_surface_with_its_label(seed: int, split: str) -> None:
    dist = SynthConfig().setting(split)[1]
    room = sample_room(scene_seed(seed, split), dist)
    c2w = sample_trajectory(room, 3, np.random.default_rng(seed), dist.camera).c2w
    r = RoomRenderer(room, shadow_res=16)
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


def test_a_render_cut_short_leaves_no_scene_that_readers_find(tmp_path, monkeypatch) -> None:
    """The trajectory, by which find_scene_dirs finds scenes, is written after every frame and
    scene.json: a gsnerf-synth killed by a session's time limit leaves only complete scenes."""
    import gsnerf_ros.data.procedural.writer as writer
    from gsnerf_ros.data.replica import find_scene_dirs

    scene = generate_scene(TINY, 3, "train")
    out = tmp_path / scene.name
    real = writer.write_traj

    def traj_last(path, poses):
        assert (out / "scene.json").is_file()
        assert len(list((out / "rgb").glob("*.png"))) == len(scene)
        real(path, poses)

    monkeypatch.setattr(writer, "write_traj", traj_last)
    writer.write_replica_layout(scene, out)
    assert find_scene_dirs(tmp_path) == [out]

    def killed(path, poses):
        raise KeyboardInterrupt("time limit")

    monkeypatch.setattr(writer, "write_traj", killed)
    with pytest.raises(KeyboardInterrupt):
        writer.write_replica_layout(scene, tmp_path / "cut")
    assert find_scene_dirs(tmp_path) == [out]


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
    splits = ("train", "val", "test", "test_novel")
    ranges = {s: {scene_seed(k, s) for k in (0, 1, 999_999)} for s in splits}
    for i, a in enumerate(splits):
        for b in splits[i + 1:]:
            assert not (ranges[a] & ranges[b]), (a, b)
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
        assert 3 <= len(furniture) <= BASE.room.furniture_count[1]
        assert {CLASS_ID["door"], CLASS_ID["window"]} <= labels
    assert len(sizes) == 12
    assert len(n_classes) >= 12 and n_classes <= set(range(len(PROCEDURAL_CLASSES)))


@pytest.mark.parametrize("mode", ["handheld", "robot"])
def test_camera_paths_have_their_height_speed_and_turn_rate(mode: str) -> None:
    cfg = TrajectoryConfig(robot_prob=1.0 if mode == "robot" else 0.0)
    lo, hi = cfg.robot_height if mode == "robot" else cfg.handheld_height
    for seed in (11, 12, 13):
        room = sample_room(seed)
        path = sample_trajectory(room, 40, np.random.default_rng(seed), cfg)
        c2w = path.c2w
        assert path.mode == mode
        z = c2w[:, 2, 3]
        assert float(z.min()) >= lo - 1e-4 and float(z.max()) <= hi + 1e-4
        if mode == "robot":  # a fixed mount
            assert float(z.max() - z.min()) < 1e-4
        # consecutive frames about a node keyframe apart: 0.10-0.20 m, at most 10 deg turned
        step = (c2w[1:, :3, 3] - c2w[:-1, :3, 3]).norm(dim=-1)
        assert cfg.speed[0] * 0.9 <= path.speed <= cfg.speed[1] + 1e-6
        assert abs(float(step.mean()) - path.speed) < 0.01 and float(step.max()) < 0.3
        turn = torch.rad2deg(rotation_angle(c2w[1:, :3, :3], c2w[:-1, :3, :3]))
        assert float(turn.max()) <= cfg.max_turn_deg * 1.05
        R = c2w[:, :3, :3]
        assert torch.allclose(R @ R.transpose(1, 2), torch.eye(3).expand(40, 3, 3), atol=1e-4)
        assert bool((c2w[:, 2, 1] < 0).all()), "image y axis must point down (world -z)"
        clearance = signed_distance(room.prims, c2w[:, :3, 3]).min(0).values
        assert float(clearance.min()) >= cfg.clearance - 1e-4
        assert abs(path.min_clearance - float(clearance.min())) < 1e-4


def test_room_sizes_and_heights_honour_each_setting() -> None:
    rng = np.random.default_rng(0)
    for dist in (BASE, NOVEL):
        r = dist.room
        sizes = np.array([sample_room_size(rng, dist) for _ in range(400)])
        short, long_ = sizes[:, :2].min(1), sizes[:, :2].max(1)
        assert (sizes[:, :2] >= r.side[0]).all() and (sizes[:, :2] <= r.side[1]).all()
        assert (short >= r.short_side[0]).all() and (short <= r.short_side[1]).all()
        assert (sizes[:, 2] >= r.height[0]).all() and (sizes[:, 2] <= r.height[1]).all()
        # the ranges are used, not just respected: both ends and both orientations occur
        assert short.min() < r.short_side[0] + 0.3 and long_.max() > r.side[1] - 0.3
        assert sizes[:, 2].min() < r.height[0] + 0.1 and sizes[:, 2].max() > r.height[1] - 0.1
        assert 0.3 < float((sizes[:, 0] < sizes[:, 1]).mean()) < 0.7
    assert BASE.room.side == (2.5, 8.0) and BASE.room.height == (2.3, 3.5)
    for seed in (3, 4):  # sample_room uses that size
        room = sample_room(scene_seed(seed, "test_novel"), NOVEL)
        assert min(room.size[:2]) >= NOVEL.room.short_side[0]


def _families(room) -> set[str]:
    return {TEXTURES[int(t)] for t in room.materials.tex}


def test_materials_and_lights_follow_the_setting() -> None:
    base_rooms = [sample_room(s, BASE) for s in range(24)]
    novel_rooms = [sample_room(scene_seed(s, "test_novel"), NOVEL) for s in range(6)]
    walls = {r.surfaces["wall"] for r in base_rooms}
    floors = {r.surfaces["floor"] for r in base_rooms}
    used = set().union(*(_families(r) for r in base_rooms))
    # low-texture, gradient, wood, fabric and patterned surfaces all occur in training rooms
    assert {"plain", "gradient", "wood", "fabric", "checker", "stripes", "tiles"} <= used
    assert {"plain", "gradient"} <= walls and {"wood", "checker"} & floors
    assert not used & HELD_OUT
    for r in novel_rooms:
        assert r.surfaces["wall"] in HELD_OUT and r.surfaces["floor"] in HELD_OUT
    for rooms, dist in ((base_rooms, BASE), (novel_rooms, NOVEL)):
        allowed = set(dist.lights.placements) | {"lamp"}
        counts = []
        for r in rooms:
            lx, ly, hz = r.size
            assert 1 <= len(r.lights) <= dist.lights.max_lights
            counts.append(sum(l.placement != "lamp" for l in r.lights))
            for light in r.lights:
                assert light.placement in allowed
                assert abs(light.position[0]) < lx / 2 and abs(light.position[1]) < ly / 2
                assert 0 < light.position[2] < hz and light.power > 0
                # never inside a solid (the L-shaped room's wall block included)
                sd = signed_distance(r.prims, torch.tensor(light.position[None], dtype=torch.float32))
                assert float(sd[1:].min()) > 0.0 and float(sd[0].min()) > 0.0
            assert dist.lights.ambient[0] - 1e-6 <= float(r.ambient.max()) <= dist.lights.ambient[1] + 1e-6
        assert min(counts) >= dist.lights.count[0] - 1 and max(counts) <= dist.lights.count[1]
        assert len(set(counts)) > 1
    placements = {l.placement for r in base_rooms for l in r.lights}
    assert {"ceiling", "corner"} <= placements


def test_texture_families_have_their_character() -> None:
    """plain is nearly flat, gradient smooth but varying, checker/stripes/dots have strong
    edges; every family gives valid colours."""
    n = 64
    a = torch.linspace(0, 2.0, n)
    yy, zz = torch.meshgrid(a, a, indexing="ij")
    p = torch.stack([torch.zeros_like(yy), yy, zz], -1).reshape(-1, 3)  # a wall, x = 0
    nrm = torch.tensor([[1.0, 0.0, 0.0]]).expand_as(p)
    names = [t for t in TEXTURES if t != "sky"]
    k = len(names)
    mats = MaterialTable(tex=torch.tensor([TEXTURES.index(t) for t in names]),
                         color_a=torch.tensor([[0.8, 0.7, 0.6]]).expand(k, 3),
                         color_b=torch.tensor([[0.2, 0.3, 0.4]]).expand(k, 3),
                         scale=torch.full((k,), 0.5), seed=torch.arange(k) + 3,
                         emissive=torch.zeros(k, dtype=torch.bool))
    stats = {}
    for i, name in enumerate(names):
        img = shade_albedo(mats, torch.full((p.shape[0],), i), p, nrm).reshape(n, n, 3)
        assert bool(torch.isfinite(img).all()) and float(img.min()) >= 0 and float(img.max()) <= 1
        g = img.mean(-1)
        stats[name] = (float(g.std()), float((g[1:] - g[:-1]).abs().mean()))
    assert stats["plain"][0] < 0.02
    assert stats["gradient"][0] > 0.05 and stats["gradient"][1] < 0.02
    for name in ("checker", "stripes", "dots", "bricks", "tiles", "wood", "marble"):
        assert stats[name][0] > 2 * stats["plain"][0] and stats[name][1] > stats["gradient"][1]


def test_novel_setting_is_disjoint_from_training_and_config_round_trips(tmp_path) -> None:
    cfg = load_synth_config("config/synth.yaml")
    assert cfg == SynthConfig()
    assert set(cfg.novel_aspects()) == {"room_size", "materials", "lights"}
    assert cfg.splits == {"train": "base", "val": "base", "test": "base", "test_novel": "novel"}
    with pytest.raises(ValueError, match="not novel"):
        SynthConfig(splits={"train": "base", "test_novel": "base"})
    with pytest.raises(ValueError, match="unknown texture"):
        load_synth_config(None, ["settings.base.materials.wall=[granite]"])
    with pytest.raises(ValueError, match="lacks"):
        SynthConfig(splits={"train": "nope"})
    # an override widens one setting only
    c2 = load_synth_config("config/synth.yaml", ["settings.novel.room.short_side=[6.5,8]"])
    assert c2.settings["novel"].room.short_side == (6.5, 8.0) and c2.settings["base"] == BASE


def test_tiled_and_face_culled_casting_match_full_casting() -> None:
    room = sample_room(scene_seed(2, "test_novel"), NOVEL)
    r = RoomRenderer(room, shadow_res=12, tile_rays=250)  # 3 x 3 tiles
    K = intrinsics_from_fov(40, 56, 90.0)
    c2w = sample_trajectory(room, 4, np.random.default_rng(0), NOVEL.camera).c2w
    for i in range(4):
        o, d = camera_rays(pixel_grid(40, 56).reshape(-1, 2), K, c2w[i])
        t, prim = r._cast_tiled(K, c2w[i], o, d, 40, 56)
        full = cast_rays(room.prims, o, d)
        assert torch.equal(prim, full.prim) and float((t - full.t).abs().max()) < 1e-3
    S = 12
    a = (torch.arange(S, dtype=torch.float32) + 0.5) / S * 2 - 1
    vv, uu = torch.meshgrid(a, a, indexing="ij")
    f = CUBE_FACES
    dirs = f[:, None, None, 0] + uu[None, ..., None] * f[:, None, None, 1] \
        + vv[None, ..., None] * f[:, None, None, 2]
    d = (dirs / dirs.norm(dim=-1, keepdim=True)).reshape(-1, 3)
    for li, light in enumerate(r.light_pos):
        full = cast_rays(room.prims, light.expand_as(d), d, include_shell=False).t.reshape(6, S, S)
        got = r.shadow_maps[li]
        assert torch.equal(torch.isinf(full), torch.isinf(got))
        fin = torch.isfinite(full)
        assert float((full[fin] - got[fin]).abs().max()) < 1e-3


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


def test_cli_writes_train_val_test_and_novel_sets(tmp_path) -> None:
    rc = synth_main([str(tmp_path), "--scenes", "1", "--frames", "2", "--height", "12",
                     "--width", "16", "--seed", "4", "--split", "all", "--fov", "80",
                     "shadow_res=8"])
    assert rc == 0
    dirs = find_scene_dirs(tmp_path)
    assert [d.parent.name for d in dirs] == ["test", "test_novel", "train", "val"]
    for d in dirs:
        meta = json.loads((d / "scene.json").read_text())
        for key in ("K", "height", "width", "class_names", "palette", "near", "far", "seed",
                    "split", "setting", "setting_config", "camera", "surfaces", "lights"):
            assert key in meta
        assert meta["split"] == d.parent.name and meta["seed"] == 4
        assert meta["class_names"] == list(PROCEDURAL_CLASSES)
        split = json.loads((d.parent / "split.json").read_text())
        assert split["split"] == d.parent.name and split["scenes"] == [d.name]
        assert split["setting"] == meta["setting"] == ("novel" if split["split"] == "test_novel"
                                                       else "base")
        assert split["config"]["shadow_res"] == 8 and split["config"]["fov_deg"] == 80.0
        assert split["rng_seeds"] == [scene_seed(4, split["split"])]
        disk = ReplicaScene(d)
        assert len(disk) == 2 and disk.frame(1).image.shape == (3, 12, 16)
        assert disk.class_names == list(PROCEDURAL_CLASSES)
        # the config saved in split.json regenerates the scene
        again = generate_scene(from_dict(SynthConfig, split["config"]), 4, split["split"])
        assert torch.equal(again.labels[1], disk.frame(1).labels)
        assert float((again.images[1] - disk.frame(1).image).abs().max()) <= 1 / 255 + 1e-6
        assert (d / "rgb" / "rgb_1.png").is_file() and (d / "depth" / "depth_1.png").is_file()
        assert (d / "semantic_class" / "semantic_class_1.png").is_file()
        assert len((d / "traj_w_c.txt").read_text().strip().splitlines()) == 2
        K = torch.tensor(meta["K"])
        assert abs(float(K[0, 0]) - 8 / np.tan(np.radians(40))) < 1e-3
    novel = json.loads((tmp_path / "test_novel" / "split.json").read_text())
    assert set(novel["novel_against_train"]) == {"room_size", "materials", "lights"}
    with pytest.raises(SystemExit):
        synth_main([str(tmp_path), "--frames", "0"])
    with pytest.raises(SystemExit, match="another config"):  # nothing mixed into a split
        synth_main([str(tmp_path / "train"), "--frames", "3", "--height", "12", "--width", "16",
                    "--seed", "4"])
    # more scenes of the same config join the split's record
    assert synth_main([str(tmp_path / "train"), "--frames", "2", "--height", "12", "--width",
                       "16", "--seed", "5", "--fov", "80", "shadow_res=8"]) == 0
    train = json.loads((tmp_path / "train" / "split.json").read_text())
    assert train["scenes"] == ["train_000004", "train_000005"] and train["first_seed"] == 4


def test_same_seed_writes_byte_identical_files(tmp_path) -> None:
    args = ["--scenes", "1", "--frames", "2", "--height", "12", "--width", "16", "--seed", "9",
            "--split", "all", "--val-scenes", "0", "--test-scenes", "0", "--novel-scenes", "1",
            "shadow_res=8"]
    for out in ("a", "b"):
        assert synth_main([str(tmp_path / out), *args]) == 0
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*")
                   if p.is_file() and p.name != "synth_log.json")
    assert len(files) >= 2 * (3 * 2 + 2) + 2
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


def test_robot_paths_flag_draws_only_robot_base_paths_of_the_same_rooms(tmp_path) -> None:
    # 4 seeds per setting: with the config's mix (robot_prob 0.4) some of them are hand-held
    args = ["--scenes", "4", "--frames", "6", "--height", "12", "--width", "16", "--seed",
            "100", "shadow_res=8"]
    for split in ("test", "test_novel"):
        assert synth_main([str(tmp_path / "robot" / split), "--split", split, "--paths",
                           "robot", *args]) == 0
        assert synth_main([str(tmp_path / "mixed" / split), "--split", split, *args]) == 0
    modes = {"robot": [], "mixed": []}
    for kind in modes:
        for d in find_scene_dirs(tmp_path / kind):
            scene = ReplicaScene(d)
            meta = json.loads((d / "scene.json").read_text())
            modes[kind].append(meta["camera"]["mode"])
            if kind != "robot":
                continue
            c2w = scene.poses()
            z = c2w[:, 2, 3]
            assert float(z.min()) >= 0.3 - 1e-4 and float(z.max()) <= 0.6 + 1e-4
            # forward-looking: the optical axis is near horizontal (pitch -5..20 deg) and the
            # camera moves along it
            assert float(c2w[:, 2, 2].abs().max()) < math.sin(math.radians(21))
            step = c2w[1:, :3, 3] - c2w[:-1, :3, 3]
            ahead = (step * c2w[:-1, :3, 2]).sum(-1) / step.norm(dim=-1).clamp(min=1e-9)
            assert float(ahead.median()) > 0.7
            # the same room as the seed's mixed-path scene
            other = json.loads((tmp_path / "mixed" / d.parent.name / d.name /
                                "scene.json").read_text())
            assert other["room_size"] == meta["room_size"]
            assert other["surfaces"] == meta["surfaces"]
        rec = json.loads((tmp_path / kind / "test" / "split.json").read_text())
        assert rec["config"]["settings"]["base"]["camera"]["robot_prob"] == (
            1.0 if kind == "robot" else 0.4)
    assert modes["robot"] == ["robot"] * 8
    assert "handheld" in modes["mixed"]
    with pytest.raises(SystemExit):
        synth_main([str(tmp_path / "bad"), "--paths", "drone", *args])
