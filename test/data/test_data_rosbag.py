"""ROS 2 bags written with rosbags (mcap and sqlite3) and read back as keyframes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gsnerf_ros.data.bag_poses import TransformTrack, interpolate_pose
from gsnerf_ros.data.rosbag import BagConfig, BagScene, write_bag
from gsnerf_ros.data.scene import InMemoryScene
from gsnerf_ros.geometry import look_at


@pytest.fixture(scope="module")
def scene() -> InMemoryScene:
    n, H, W = 8, 12, 16
    eye = torch.stack([torch.arange(n) * 0.1, torch.zeros(n), torch.full((n,), 1.0)], -1).float()
    eye[5:, 0] = eye[4, 0]  # the camera stops: frames 5..7 repeat frame 4's pose
    c2w = look_at(eye, eye + torch.tensor([0.0, 1.0, 0.2]))
    g = torch.Generator().manual_seed(0)
    return InMemoryScene(
        name="t", images=torch.rand(n, 3, H, W, generator=g),
        K=torch.tensor([[12.0, 0, 7.5], [0, 12.0, 5.5], [0, 0, 1]]).expand(n, 3, 3).clone(),
        c2w=c2w, depths=torch.rand(n, H, W, generator=g) * 4 + 0.5,
        labels=torch.randint(0, 6, (n, H, W), generator=g),
        class_names=[f"c{i}" for i in range(6)], palette=torch.zeros(6, 3, dtype=torch.uint8),
        near=0.1, far=10.0)


ALL = BagConfig(depth_topic="/camera/depth/image_raw", label_topic="/camera/semantic",
                keyframe_translation=0.0, keyframe_rotation_deg=0.0)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_round_trip_through_tf(tmp_path, scene, storage) -> None:
    path = write_bag(scene, tmp_path / "bag", storage=storage, label_topic="/camera/semantic")
    assert any(path.glob("*.mcap" if storage == "mcap" else "*.db3"))
    b = BagScene(path, ALL)
    assert len(b) == 8 and b.stats["without_pose"] == 0
    for i in range(8):
        f = b.frame(i)
        assert torch.allclose(f.c2w, scene.c2w[i], atol=1e-5)  # map->base_link->camera chain
        assert torch.allclose(f.K, scene.K[i])
        assert float((f.image - scene.images[i]).abs().max()) <= 0.5 / 255 + 1e-6
        assert float((f.depth - scene.depths[i]).abs().max()) <= 0.0005 + 1e-6  # 16UC1 mm
        assert torch.equal(f.labels, scene.labels[i])
    assert abs(b.frame(1).stamp - b.frame(0).stamp - 0.1) < 1e-6


@pytest.mark.parametrize("mode", ["pose", "odometry"])
def test_pose_topics_compressed_and_float_depth(tmp_path, scene, mode) -> None:
    path = write_bag(scene, tmp_path / "bag", pose_mode=mode, compressed=True,
                     depth_encoding="32FC1")
    cfg = BagConfig(pose_topic="/camera/pose", depth_topic="/camera/depth/image_raw",
                    keyframe_translation=0.0, keyframe_rotation_deg=0.0)
    b = BagScene(path, cfg)
    assert len(b) == 8
    for i in range(8):
        f = b.frame(i)
        assert torch.allclose(f.c2w, scene.c2w[i], atol=1e-5)
        assert torch.allclose(f.depth, scene.depths[i], atol=1e-6)
        assert f.labels is None


def test_keyframes_by_motion(tmp_path, scene) -> None:
    path = write_bag(scene, tmp_path / "bag")
    b = BagScene(path, BagConfig(keyframe_translation=0.15, keyframe_rotation_deg=30.0))
    # moves 0.1 m per frame until frame 4, then stands still: keep 0, 2, 4
    assert [round(float(f.c2w[0, 3]), 3) for f in b._frames] == [0.0, 0.2, 0.4]
    assert b.stats == {"images": 8, "without_pose": 0, "keyframes": 3}
    assert len(BagScene(path, BagConfig(keyframe_translation=0.0, max_frames=5))) == 5


def test_sync_tolerance_drops_unmatched_depth(tmp_path, scene) -> None:
    path = write_bag(scene, tmp_path / "bag")  # depth stamped 2 ms after colour
    loose = BagScene(path, BagConfig(depth_topic="/camera/depth/image_raw",
                                     keyframe_translation=0.0, sync_tolerance=0.01))
    tight = BagScene(path, BagConfig(depth_topic="/camera/depth/image_raw",
                                     keyframe_translation=0.0, sync_tolerance=0.001))
    assert loose.frame(0).depth is not None and tight.frame(0).depth is None


def test_wrong_world_frame_and_topic_are_clear_errors(tmp_path, scene) -> None:
    path = write_bag(scene, tmp_path / "bag")
    with pytest.raises(ValueError, match="no image has a pose"):
        BagScene(path, BagConfig(world_frame="odom"))
    with pytest.raises(ValueError, match="not found"):
        BagScene(path, BagConfig(depth_topic="/nope"))


def test_pose_interpolation_midpoint() -> None:
    tr = TransformTrack()
    Ta = look_at(torch.tensor([0.0, 0, 1]), torch.tensor([0.0, 1, 1])).double().numpy()
    Tb = look_at(torch.tensor([1.0, 0, 1]), torch.tensor([1.0, 0, 2]) + torch.tensor([0, 1.0, -1])
                 ).double().numpy()
    tr.add(0.0, Ta)
    tr.add(1.0, Tb)
    mid = tr.at(0.5, tol=0.0)
    assert np.allclose(mid[:3, 3], (Ta[:3, 3] + Tb[:3, 3]) / 2)
    ang = lambda A, B: math.degrees(math.acos(np.clip((np.trace(A[:3, :3].T @ B[:3, :3]) - 1) / 2, -1, 1)))
    assert abs(ang(Ta, mid) - ang(mid, Tb)) < 1e-6
    assert tr.at(1.02, tol=0.01) is None and tr.at(1.005, tol=0.01) is not None
    assert np.allclose(interpolate_pose(Ta, Tb, 0.0), Ta)
