"""Replica and ScanNet readers on fixtures written in the real on-disk layouts."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from gsnerf_ros.data.classes import IGNORE_INDEX, REPLICA_KEPT_IDS, REPLICA_MERGE_CLASS
from gsnerf_ros.data.replica import ReplicaScene
from gsnerf_ros.data.scannet import ScanNetScene, register_depth
from gsnerf_ros.geometry import look_at


def _poses(n: int) -> torch.Tensor:
    eye = torch.stack([torch.arange(n) * 0.2, torch.zeros(n), torch.full((n,), 1.2)], -1).float()
    return look_at(eye, eye + torch.tensor([0.0, 1.0, 0.0]))


def _write_replica(seq: Path, n: int = 3, H: int = 24, W: int = 32) -> torch.Tensor:
    rng = np.random.default_rng(0)
    for sub in ("rgb", "depth", "semantic_class"):
        (seq / sub).mkdir(parents=True)
    for i in range(n):
        cv2.imwrite(str(seq / "rgb" / f"rgb_{i}.png"), rng.integers(0, 255, (H, W, 3), np.uint8))
        cv2.imwrite(str(seq / "depth" / f"depth_{i}.png"),
                    np.full((H, W), 1500 + i, np.uint16))
        sem = np.full((H, W), 40, np.uint8)
        sem[:, :8] = 93
        sem[:, 8:16] = 0
        sem[0, 0] = 50  # an unlisted id
        cv2.imwrite(str(seq / "semantic_class" / f"semantic_class_{i}.png"), sem)
    c2w = _poses(n)
    np.savetxt(seq / "traj_w_c.txt", c2w.reshape(n, 16).numpy())
    return c2w


def test_replica_reader_protocol_and_intrinsics(tmp_path) -> None:
    seq = tmp_path / "room_0" / "Sequence_1"
    c2w = _write_replica(seq, n=12)
    sc = ReplicaScene(seq)
    assert len(sc) == 12 and sc.name == "room_0/Sequence_1"
    # natural order: rgb_2 before rgb_10
    assert [sc.frame_index(i) for i in range(12)] == list(range(12))
    f = sc.frame(10)
    assert torch.allclose(f.c2w, c2w[10], atol=1e-6)
    assert abs(float(f.depth[0, 0]) - 1.510) < 1e-6
    K = f.K
    assert float(K[0, 0]) == 16.0 and float(K[0, 2]) == 15.5 and float(K[1, 2]) == 11.5  # cy fixed
    assert int(f.labels[5, 20]) == REPLICA_KEPT_IDS.index(40)
    assert int(f.labels[5, 2]) == REPLICA_KEPT_IDS.index(93)
    assert int(f.labels[5, 10]) == REPLICA_MERGE_CLASS and int(f.labels[0, 0]) == REPLICA_MERGE_CLASS
    assert len(sc.class_names) == 19 and (sc.near, sc.far) == (0.1, 6.0)
    ign = ReplicaScene(seq, unlisted="ignore").frame(0)
    assert int(ign.labels[0, 0]) == IGNORE_INDEX and int(ign.labels[5, 2]) == 16


def test_replica_640x480_intrinsics_match_renders() -> None:
    from gsnerf_ros.data.replica import replica_intrinsics
    K = replica_intrinsics(480, 640)
    assert K.tolist() == [[320.0, 0, 319.5], [0, 320.0, 239.5], [0, 0, 1]]


def test_replica_reader_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        ReplicaScene(tmp_path)
    seq = tmp_path / "s"
    _write_replica(seq, n=3)
    np.savetxt(seq / "traj_w_c.txt", _poses(2).reshape(2, 16).numpy())
    with pytest.raises(ValueError, match="no pose"):
        ReplicaScene(seq)


TSV_HEADER = ("id\traw_category\tcategory\tcount\tnyu40id\teigen13id\tnyuClass\tnyu40class\t"
              "eigen13class\tModelNet40\tModelNet\tShapeNetCore55\tsynsetoffset\twnsynsetid\t"
              "wnsynsetkey\tmpcat40index\tmpcat40")


def _write_scannet(root: Path, ids=(0, 3, 7, 12), bad_pose_id: int = 7) -> torch.Tensor:
    scene = root / "scene0000_00"
    for sub in ("color", "depth", "pose", "intrinsic", "label-filt"):
        (scene / sub).mkdir(parents=True)
    rows = [(1, "wall", 1), (2, "chair", 5), (3, "floor", 2), (5, "otherprop", 40),
            (9, "bookshelf", 10), (40, "trash can", 39)]
    with (root / "scannetv2-labels.combined.tsv").open("w") as fh:
        fh.write(TSV_HEADER + "\n")
        for rid, name, nyu in rows:
            fh.write(f"{rid}\t{name}\t{name}\t10\t{nyu}\t0\t{name}\t{name}\t\t\t\t\t\t\t\t0\tx\n")
    Hc, Wc, Hd, Wd = 48, 64, 24, 32
    Kc = np.array([[60.0, 0, 31.5, 0], [0, 60.0, 23.5, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    Kd = np.array([[30.0, 0, 15.5, 0], [0, 30.0, 11.5, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    np.savetxt(scene / "intrinsic" / "intrinsic_color.txt", Kc)
    np.savetxt(scene / "intrinsic" / "intrinsic_depth.txt", Kd)
    c2w = _poses(len(ids))
    for k, fid in enumerate(ids):
        cv2.imwrite(str(scene / "color" / f"{fid}.jpg"), np.full((Hc, Wc, 3), 30 * k, np.uint8))
        d = np.zeros((Hd, Wd), np.uint16)
        d[:, : Wd // 2] = 1000
        d[:, Wd // 2:] = 2000
        cv2.imwrite(str(scene / "depth" / f"{fid}.png"), d)
        pose = c2w[k].numpy().copy()
        if fid == bad_pose_id:
            pose[0, 0] = np.inf
        np.savetxt(scene / "pose" / f"{fid}.txt", pose)
        lab = np.zeros((Hd, Wd), np.uint16)
        lab[:8] = 1
        lab[8:12] = 2
        lab[12:16] = 5
        lab[16:20] = 40
        cv2.imwrite(str(scene / "label-filt" / f"{fid}.png"), lab)
    return c2w


def test_scannet_reader(tmp_path) -> None:
    c2w = _write_scannet(tmp_path)
    sc = ScanNetScene(tmp_path / "scene0000_00")
    assert len(sc) == 3 and sc.frame_ids == [0, 3, 12]  # 7 skipped: inf pose
    assert torch.allclose(sc.poses()[2], c2w[3])
    f = sc.frame(1)
    assert f.frame_id == "3" and f.image.shape == (3, 48, 64)
    assert f.depth.shape == (48, 64) and f.labels.shape == (48, 64)
    # registration: left half of the colour view sees the 1 m half of the depth map
    assert abs(float(f.depth[20, 10]) - 1.0) < 1e-6 and abs(float(f.depth[20, 50]) - 2.0) < 1e-6
    lab = f.labels
    assert int(lab[2, 5]) == 0  # wall
    assert int(lab[18, 5]) == 4  # chair (nyu 5 -> class 4)
    assert int(lab[26, 5]) == IGNORE_INDEX  # otherprop (nyu 40)
    assert int(lab[34, 5]) == 19  # otherfurniture (nyu 39)
    assert int(lab[45, 5]) == IGNORE_INDEX  # raw id 0 = unlabelled
    g = ScanNetScene(tmp_path / "scene0000_00", protocol="gsnerf").frame(1).labels
    assert int(g[34, 5]) == 6 and int(g[26, 5]) == 19 and int(g[45, 5]) == 19
    assert (sc.near, sc.far) == (0.1, 10.0) and len(sc.class_names) == 20


def test_scannet_missing_tsv_is_a_clear_error(tmp_path) -> None:
    _write_scannet(tmp_path)
    (tmp_path / "scannetv2-labels.combined.tsv").unlink()
    with pytest.raises(FileNotFoundError, match="scannetv2-labels"):
        ScanNetScene(tmp_path / "scene0000_00")
    assert ScanNetScene(tmp_path / "scene0000_00", load_labels=False).frame(0).labels is None


def test_register_depth_identity_when_intrinsics_match() -> None:
    d = torch.rand(6, 8)
    K = torch.tensor([[5.0, 0, 3.5], [0, 5.0, 2.5], [0, 0, 1]])
    assert torch.equal(register_depth(d, K, K, 6, 8), d)


def test_open_scenes_finds_each_format(tmp_path) -> None:
    from gsnerf_ros.data.formats import open_scenes
    _write_replica(tmp_path / "rep" / "room_0" / "Sequence_1", n=3)
    _write_replica(tmp_path / "rep" / "room_1" / "Sequence_1", n=3)
    _write_scannet(tmp_path / "sn")
    assert len(open_scenes(tmp_path / "rep", "replica")) == 2
    assert [s.name for s in open_scenes(tmp_path / "sn", "scannet")] == ["scene0000_00"]
    with pytest.raises(ValueError, match="format"):
        open_scenes(tmp_path, "kitti")
    with pytest.raises(ValueError, match="not found"):
        open_scenes(tmp_path / "sn", "scannet", names=["scene9999_00"])
