"""A robot's own bags (written by rosbags' writer in the RealSense / robot_state_publisher
layout: odom root, two /tf_static messages, bgr8 or JPEG) through every offline entry point:
BagScene, discovery, folders of bags, gsnerf-eval --format bag and gsnerf-train data.format=bag
(self-supervised fine-tuning without labels)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from helpers.robot_bag import (BASE_TO_CAMERA_LINK, CAMERA_LINK_TO_OPTICAL, COMPRESSED_TOPIC,
                               IMAGE_TOPIC, INFO_TOPIC, OPTICAL_FRAME, room_ground_truth,
                               write_robot_bag)

from gsnerf_ros.data.bag_discovery import (BagDiscoveryError, discover, find_bags, pick_topics,
                                           tf_world_frame)
from gsnerf_ros.data.rosbag import BagConfig, BagScene

H, W, N = 24, 32, 10
ALL_FRAMES = dict(keyframe_translation=0.0, keyframe_rotation_deg=0.0)


@pytest.fixture(scope="module")
def room(tmp_path_factory) -> dict:
    """Ground truth from one small procedural room: RGB uint8, K, optical-frame poses."""
    return room_ground_truth(tmp_path_factory.mktemp("room"), N, H, W)


@pytest.fixture(scope="module")
def bags(room, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bags")
    out = {}
    for name, storage, mode in [("mcap_raw", "mcap", "raw"), ("sqlite_raw", "sqlite3", "raw"),
                                ("mcap_jpeg", "mcap", "compressed"),
                                ("sqlite_both", "sqlite3", "both")]:
        out[name] = write_robot_bag(root / name, room["images"], room["K"], room["c2w"],
                                    storage=storage, image_mode=mode)
    return out


@pytest.fixture(scope="module")
def bag_folder(bags, tmp_path_factory) -> Path:
    """A folder of two bags (one mcap, one sqlite3), as a robot's recordings directory."""
    root = tmp_path_factory.mktemp("recordings")
    for name in ("mcap_raw", "sqlite_raw"):
        shutil.copytree(bags[name], root / name)
    return root


def _rot_err_deg(A: np.ndarray, B: np.ndarray) -> float:
    """Angle between two rotations, well conditioned near 0: |Ra - Rb|_F = 2 sqrt(2) sin(a/2)."""
    d = np.linalg.norm(A[:3, :3] - B[:3, :3]) / (2 * math.sqrt(2))
    return math.degrees(2 * math.asin(min(1.0, d)))


@pytest.mark.parametrize("name", ["mcap_raw", "sqlite_raw", "mcap_jpeg", "sqlite_both"])
def test_poses_and_colours_match_ground_truth_with_auto_world_frame(bags, room, name) -> None:
    b = BagScene(bags[name], BagConfig(**ALL_FRAMES))
    assert b.world_frame == "odom"  # the root of the TF tree, found without being told
    assert b.image_topic == (COMPRESSED_TOPIC if name == "mcap_jpeg" else IMAGE_TOPIC)
    assert b.camera_info_topic == INFO_TOPIC
    assert len(b) == N and b.stats["without_pose"] == 0
    for i in range(N):
        f = b.frame(i)
        T = f.c2w.double().numpy()
        # float32 c2w; the truth is float64
        assert np.abs(T[:3, 3] - room["c2w"][i][:3, 3]).max() <= 1e-3
        assert _rot_err_deg(T, room["c2w"][i]) <= 0.01
        assert np.allclose(f.K.numpy(), room["K"], atol=1e-5)
        rgb = (f.image.permute(1, 2, 0).numpy() * 255).round()
        err = np.abs(rgb - room["images"][i].astype(np.float64))
        if name == "mcap_jpeg":  # lossy, but the channels must not be swapped
            assert err.mean() < 6.0, err.mean()
            swapped = np.abs(rgb[..., ::-1] - room["images"][i]).mean()
            assert swapped > 2 * err.mean() or swapped > 10
        else:  # bgr8 read back as RGB, exactly
            assert err.max() == 0


def test_discover_keeps_every_static_message_and_finds_the_layout(bags) -> None:
    lay = discover(bags["sqlite_both"])
    assert (lay.world_frame, lay.world_frame_source) == ("odom", "tf root")
    assert (lay.image_topic, lay.camera_info_topic, lay.compressed) == (IMAGE_TOPIC, INFO_TOPIC,
                                                                         False)
    assert lay.camera_frame == OPTICAL_FRAME
    st = {(s.parent, s.child): s for s in lay.static_transforms}
    assert set(st) == {("base_link", "camera_link"), ("camera_link", OPTICAL_FRAME)}
    assert np.allclose(st["base_link", "camera_link"].matrix, BASE_TO_CAMERA_LINK, atol=1e-12)
    assert np.allclose(st["camera_link", OPTICAL_FRAME].matrix, CAMERA_LINK_TO_OPTICAL,
                       atol=1e-12)
    assert st["base_link", "camera_link"].translation[2] == pytest.approx(1.2)
    q = np.array(st["camera_link", OPTICAL_FRAME].quaternion)
    assert np.allclose(np.abs(q), 0.5, atol=1e-9)  # the optical rotation (-0.5, 0.5, -0.5, 0.5)
    jpg = discover(bags["mcap_jpeg"], world_frame="base_link")
    assert jpg.compressed and jpg.world_frame_source == "given"
    assert discover(bags["sqlite_both"], image_topic=COMPRESSED_TOPIC).compressed


def test_discovery_command_prints_each_bag(bag_folder, capsys) -> None:
    from gsnerf_ros.data.bag_discovery import main

    assert main([str(bag_folder)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [o["world_frame"] for o in out] == ["odom", "odom"]
    assert len(out[0]["static_transforms"]) == 2
    with pytest.raises(SystemExit) as e:
        main([str(bag_folder), "--image-topic", "/nope"])
    assert e.value.code == 2 and "/nope" in capsys.readouterr().err


def test_no_pose_error_gives_the_times(bags) -> None:
    # the old default: a map frame this robot never had
    with pytest.raises(ValueError, match=r"no image has a pose.*odom -> base_link") as e:
        BagScene(bags["mcap_raw"], BagConfig(world_frame="map"))
    assert "images 1700000000.250.." in str(e.value)


def test_explicit_world_frame_wins(bags) -> None:
    b = BagScene(bags["mcap_raw"], BagConfig(world_frame="base_link", **ALL_FRAMES,
                                             max_frames=2))
    assert b.world_frame == "base_link"
    # the camera does not move in base_link: every pose is the fixed extrinsic
    assert np.allclose(b.frame(0).c2w.double().numpy(),
                       BASE_TO_CAMERA_LINK @ CAMERA_LINK_TO_OPTICAL, atol=1e-6)


def test_world_frame_errors_name_the_trees() -> None:
    tree = {"base_link": {"odom"}, "camera_link": {"base_link"}, "cam": {"camera_link"}}
    assert tf_world_frame(tree, "cam") == "odom"
    assert tf_world_frame({**tree, "odom": {"map"}}, "/cam") == "map"
    # robot_state_publisher's base_link -> camera_link missing: two trees, never a silent pick
    split = {"base_link": {"odom"}, "cam": {"camera_link"}}
    with pytest.raises(BagDiscoveryError, match="2 unconnected trees") as e:
        tf_world_frame(split, "cam")
    assert "'odom'" in str(e.value) and "'camera_link'" in str(e.value)
    assert "--world-frame" in str(e.value)
    with pytest.raises(BagDiscoveryError, match="more than one parent"):
        tf_world_frame({**tree, "base_link": {"odom", "map"}}, "cam")
    with pytest.raises(BagDiscoveryError, match="in no /tf"):
        tf_world_frame(tree, "lidar")
    with pytest.raises(BagDiscoveryError, match="no /tf or /tf_static"):
        tf_world_frame({}, "cam")


def test_topics_are_picked_when_unambiguous() -> None:
    I, C, CI = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage",
                "sensor_msgs/msg/CameraInfo")
    both = {IMAGE_TOPIC: I, COMPRESSED_TOPIC: C, INFO_TOPIC: CI,
            "/camera/depth/image_rect_raw": I, "/camera/depth/camera_info": CI}
    assert pick_topics(both) == (IMAGE_TOPIC, INFO_TOPIC, False)
    assert pick_topics({COMPRESSED_TOPIC: C, INFO_TOPIC: CI}) == (COMPRESSED_TOPIC, INFO_TOPIC,
                                                                   True)
    two = {**both, "/left/image_raw": I, "/left/camera_info": CI}
    with pytest.raises(BagDiscoveryError, match="candidates") as e:
        pick_topics(two)
    assert "/left/image_raw" in str(e.value) and "--image-topic" in str(e.value)
    assert pick_topics(two, image_topic="/left/image_raw")[1] == "/left/camera_info"
    with pytest.raises(BagDiscoveryError, match="not found"):
        pick_topics(both, image_topic="/nope")


def test_folder_of_bags(bags, bag_folder, tmp_path) -> None:
    from gsnerf_ros.data.formats import open_scenes

    assert [p.name for p in find_bags(bag_folder)] == ["mcap_raw", "sqlite_raw"]
    mcap_file = next(bags["mcap_raw"].glob("*.mcap"))
    assert find_bags(mcap_file) == [bags["mcap_raw"]]
    scenes = open_scenes(bag_folder, "bag", cfg=BagConfig(max_frames=3))
    assert [s.name for s in scenes] == ["mcap_raw", "sqlite_raw"]
    assert all(s.world_frame == "odom" and len(s) == 3 for s in scenes)
    with pytest.raises(ValueError, match="holds 2 bags"):
        BagScene(bag_folder)
    loose = tmp_path / "loose"
    loose.mkdir()
    shutil.copy(mcap_file, loose / "rec.mcap")
    with pytest.raises(FileNotFoundError, match="reindex"):
        find_bags(loose)


# --- gsnerf-eval and gsnerf-train on bags ----------------------------------------------------
@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """An untrained tiny model with the procedural classes (what matters is the plumbing)."""
    from gsnerf_ros.data.classes import PROCEDURAL_CLASSES, PROCEDURAL_PALETTE
    from gsnerf_ros.model import GSNeRF, GSNeRFConfig

    torch.manual_seed(0)
    m = GSNeRF(GSNeRFConfig.tiny(len(PROCEDURAL_CLASSES)), class_names=PROCEDURAL_CLASSES,
               palette=PROCEDURAL_PALETTE)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    m.save_checkpoint(path, metadata={})
    return path


def _eval(ckpt: Path, data: Path, out: Path, *extra: str) -> dict:
    from gsnerf_ros.train.cli import eval_main

    torch.set_num_threads(1)
    assert eval_main(["--checkpoint", str(ckpt), "--data", str(data), "--format", "bag",
                      "--json", str(out), "--height", str(H), "--width", str(W),
                      "--num-sources", "3", "--max-targets", "1", "--no-lpips", "--device",
                      "cpu", *extra]) == 0
    return json.loads(out.read_text())


def test_eval_on_a_folder_of_bags_writes_its_json(tiny_checkpoint, bag_folder, tmp_path) -> None:
    res = _eval(tiny_checkpoint, bag_folder, tmp_path / "eval.json")
    assert res["n_images"] == 2 and set(res["per_scene"]) == {"mcap_raw", "sqlite_raw"}
    assert res["mIoU"] is None  # no labels in a robot's bag: nothing semantic is scored
    assert res["psnr"] is not None and math.isfinite(res["psnr"])
    assert res["bags"]["mcap_raw"]["world_frame"] == "odom"
    assert res["bags"]["sqlite_raw"]["image_topic"] == IMAGE_TOPIC


def test_eval_names_topics_and_frame(tiny_checkpoint, bags, tmp_path) -> None:
    res = _eval(tiny_checkpoint, bags["sqlite_both"], tmp_path / "e.json", "--image-topic",
                COMPRESSED_TOPIC, "--camera-info-topic", INFO_TOPIC, "--world-frame", "odom",
                "--no-baseline")
    assert res["bags"]["sqlite_both"]["image_topic"] == COMPRESSED_TOPIC
    from gsnerf_ros.train.cli import eval_main
    with pytest.raises(SystemExit) as e:
        eval_main(["--checkpoint", str(tiny_checkpoint), "--data", str(bags["mcap_raw"]),
                   "--format", "bag", "--json", str(tmp_path / "x.json"), "--world-frame",
                   "map", "--device", "cpu", "--no-lpips"])
    assert e.value.code == 2 and not (tmp_path / "x.json").exists()


def _train_cfg(tmp_path: Path, ckpt: Path, data: Path, *extra: str) -> list[str]:
    from gsnerf_ros.config import to_dict
    from gsnerf_ros.model import GSNeRFConfig

    cfg = {"model": to_dict(GSNeRFConfig.tiny(17)),
           "data": {"format": "bag", "finetune_scene": str(data), "height": H, "width": W,
                    "num_sources": 3, "val_images_per_scene": 1},
           "loss": {"depth_mode": "self_supervised", "semantic": 0.0, "semantic_2d": 0.0},
           "optim": {"steps": 3, "rays_per_step": 64, "warmup_steps": 1, "lr": 1e-3},
           "log": {"val_every": 3, "ckpt_every": 3, "select_metric": "psnr",
                   "tensorboard": False, "progress": False, "panels": 0}}
    path = tmp_path / "bag_tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return ["--config", str(path), f"run_dir={tmp_path / 'run'}", "device=cpu", "threads=1",
            f"init_checkpoint={ckpt}", *extra]


def test_train_self_supervised_on_unlabelled_bags_keeps_the_semantics(
        tiny_checkpoint, bag_folder, tmp_path) -> None:
    from safetensors.torch import load_file

    from gsnerf_ros.model import GSNeRF
    from gsnerf_ros.train.cli import train_main

    # the model section comes from the checkpoint (this num_classes would not fit it)
    assert train_main(_train_cfg(tmp_path, tiny_checkpoint, bag_folder, "model.num_classes=3",
                                 "model_from_checkpoint=true",
                                 "freeze=[encoder,semantic_renderer]")) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == 3 and math.isfinite(summary["last"]["depth_ss"])
    out = GSNeRF.from_checkpoint(tmp_path / "run" / "best.safetensors")
    src = load_file(str(tiny_checkpoint))
    new = out.state_dict()
    assert out.class_names == GSNeRF.from_checkpoint(tiny_checkpoint).class_names
    frozen = [k for k in src if k.startswith(("encoder.", "semantic_renderer."))]
    assert frozen and all(torch.equal(src[k], new[k]) for k in frozen)
    trained = [k for k in src if k.startswith(("cost_volume.", "volume_renderer."))]
    assert any(not torch.equal(src[k], new[k]) for k in trained)


def test_train_on_unlabelled_bag_without_checkpoint_says_what_to_do(
        tiny_checkpoint, bags, tmp_path) -> None:
    from gsnerf_ros.train.config import TrainConfig
    from gsnerf_ros.config import load_config
    from gsnerf_ros.train.trainer import Trainer

    args = _train_cfg(tmp_path, tiny_checkpoint, bags["mcap_raw"])
    cfg = load_config(TrainConfig, args[1], args[2:-1])
    with pytest.raises(ValueError, match="no labels.*init_checkpoint"):
        Trainer(cfg)
    cfg = load_config(TrainConfig, args[1], args[2:] + ["log.select_metric=mIoU"])
    with pytest.raises(ValueError, match="select_metric=psnr"):
        Trainer(cfg)
    with pytest.raises(ValueError, match="no parameter under 'decoder'"):
        Trainer(load_config(TrainConfig, args[1], args[2:] + ["freeze=[decoder]"]))
    with pytest.raises(ValueError, match="data.format=bag only"):
        load_config(TrainConfig, None, ["data.format=replica", "data.world_frame=odom"])
    from gsnerf_ros.train.cli import train_main
    with pytest.raises(SystemExit) as e:  # the command line says it without a traceback
        train_main(args[:-1])
    assert e.value.code == 2


def test_shipped_bag_finetune_config_runs_on_a_robot_bag(bags, tmp_path) -> None:
    """config/train_bag_finetune.yaml as shipped (the shipped checkpoint, its own model
    section), shrunk to one step at the bag's 32x24."""
    from gsnerf_ros.model import GSNeRF
    from gsnerf_ros.train.cli import train_main

    root = Path(__file__).resolve().parents[2]
    ckpt = root / "models" / "gsnerf_cpu.safetensors"
    assert train_main(["--config", str(root / "config" / "train_bag_finetune.yaml"),
                       f"init_checkpoint={ckpt}", f"data.finetune_scene={bags['mcap_jpeg']}",
                       f"run_dir={tmp_path / 'run'}", f"data.height={H}", f"data.width={W}",
                       "data.num_sources=3", "data.val_images_per_scene=1", "optim.steps=1",
                       "optim.rays_per_step=32", "log.val_every=1", "log.ckpt_every=1",
                       "log.tensorboard=false", "log.progress=false", "device=cpu",
                       "threads=1"]) == 0
    out = GSNeRF.from_checkpoint(tmp_path / "run" / "best.safetensors")
    assert out.class_names == GSNeRF.from_checkpoint(ckpt).class_names
