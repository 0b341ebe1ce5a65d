"""The 2D segmenter's score on a dataset (gsnerf_ros/train/segmenter_score.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gsnerf_ros.data.formats import open_scenes
from gsnerf_ros.model import GSNeRF
from gsnerf_ros.train.segmenter_score import main, score_segmenter
from helpers.rooms import write_room_and_tiny_checkpoint


@pytest.fixture(scope="module")
def room_and_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("segscore")
    return root / "rooms", write_room_and_tiny_checkpoint(root, 24, 32)


class _Constant(torch.nn.Module):
    """A segmenter that calls every pixel class ``k``."""

    def __init__(self, names: list[str], k: int) -> None:
        super().__init__()
        self.class_names, self.k = names, k
        self.w = torch.nn.Parameter(torch.zeros(1))

    def segment_2d(self, images: torch.Tensor) -> torch.Tensor:
        return torch.full((images.shape[0], *images.shape[-2:]), self.k, dtype=torch.long)


def test_the_score_accumulates_over_every_frame(room_and_checkpoint: tuple[Path, Path]) -> None:
    """A segmenter that says "wall" everywhere: the accumulated IoU of wall is the wall pixels'
    share, every other class present scores 0, and the mean runs over the classes present."""
    rooms, ckpt = room_and_checkpoint
    names = GSNeRF.from_checkpoint(ckpt).class_names
    labels = torch.stack([s.frame(i).labels for s in open_scenes(rooms, "replica")
                          for i in range(len(s))])
    valid = labels[labels != 255]
    present = torch.unique(valid)
    wall = float((valid == 0).float().mean()) * 100
    s = score_segmenter(_Constant(names, 0), rooms, batch=3)   # 8 frames: batches of 3, 3, 2
    assert s["n_images"] == len(labels) == 8
    assert s["mIoU_accumulated"] == pytest.approx(wall / len(present), rel=1e-6)
    assert s["acc_accumulated"] == pytest.approx(wall, rel=1e-6)
    assert s["per_class_iou"]["wall"] == pytest.approx(wall, rel=1e-6)
    assert all(s["per_class_iou"][names[int(c)]] == 0 for c in present if c != 0)
    absent = [n for i, n in enumerate(names) if i not in set(present.tolist()) and i != 0]
    assert absent and all(s["per_class_iou"][n] is None for n in absent)


def test_the_command_scores_a_checkpoint_and_writes_json(room_and_checkpoint: tuple[Path, Path],
                                                          tmp_path: Path) -> None:
    rooms, ckpt = room_and_checkpoint
    out = tmp_path / "score.json"
    assert main(["--checkpoint", str(ckpt), "--data", str(rooms), "--json", str(out),
                 "--threads", "1"]) == 0
    got = json.loads(out.read_text())["scores"][str(rooms)]
    direct = score_segmenter(GSNeRF.from_checkpoint(ckpt), rooms)
    assert got["mIoU_accumulated"] == pytest.approx(direct["mIoU_accumulated"])
    assert 0 <= got["mIoU_accumulated"] <= 100 and got["n_images"] == 8
    with pytest.raises(SystemExit):
        main(["--checkpoint", str(ckpt), "--data", str(rooms), "--batch", "0"])
    with pytest.raises(FileNotFoundError):
        main(["--checkpoint", str(ckpt), "--data", str(tmp_path / "nowhere")])


def test_a_dataset_with_its_own_class_list_is_scored_by_name(
        room_and_checkpoint: tuple[Path, Path], tmp_path: Path) -> None:
    """The same rooms with their scene.json class list reversed (label id i now names the
    model's class C-1-i): the ids are matched to the model's classes by name, as gsnerf-eval
    does, so "wall everywhere" scores the pixels of the id that now names the wall; a class
    the model does not know is refused."""
    import shutil

    from gsnerf_ros.data.class_mapping import ClassMatchError

    rooms, ckpt = room_and_checkpoint
    names = GSNeRF.from_checkpoint(ckpt).class_names
    copy = tmp_path / "rooms"
    shutil.copytree(rooms, copy)
    for side in copy.glob("*/scene.json"):
        meta = json.loads(side.read_text())
        assert meta["class_names"] == list(names)
        meta["class_names"] = list(reversed(names))
        side.write_text(json.dumps(meta))
    labels = torch.stack([s.frame(i).labels for s in open_scenes(copy, "replica")
                          for i in range(len(s))])
    valid = labels[labels != 255]
    wall_id = len(names) - 1                              # "wall" in the reversed list
    wall = float((valid == wall_id).float().mean()) * 100
    s = score_segmenter(_Constant(names, 0), copy)
    assert s["acc_accumulated"] == pytest.approx(wall, rel=1e-6)
    assert s["per_class_iou"]["wall"] == pytest.approx(wall, rel=1e-6)
    for side in copy.glob("*/scene.json"):
        meta = json.loads(side.read_text())
        meta["class_names"][0] = "spaceship"
        side.write_text(json.dumps(meta))
    with pytest.raises(ClassMatchError, match="spaceship"):
        score_segmenter(_Constant(names, 0), copy)
