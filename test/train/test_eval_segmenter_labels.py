"""gsnerf-eval --labels-from: a dataset's per-frame label images standing in for a 2D
segmenter, voted into the target views and scored beside the segmenter itself; and the blob
corruption tool that makes an imperfect segmenter of them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gsnerf_ros.data.label_corruption import corrupt_blobs, corrupt_dataset
from gsnerf_ros.data.segmenter_labels import read_segmenter_png, write_segmenter_png
from helpers.rooms import eval_tiny_room, write_room_and_tiny_checkpoint

H, W = 24, 32


def _two_class_map() -> torch.Tensor:
    lab = torch.zeros(60, 80, dtype=torch.int64)
    lab[:, 40:] = 3
    lab[:5, :5] = -1                                           # unknown stays unknown
    return lab


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.4])
def test_corruption_hits_the_fraction_in_blobs(fraction: float) -> None:
    lab = _two_class_map()
    bad = corrupt_blobs(lab, fraction, np.random.default_rng(0))
    known = lab >= 0
    wrong = (bad != lab) & known
    share = float(wrong.sum()) / float(known.sum())
    assert fraction <= share <= fraction + 0.006
    assert (bad[~known] == -1).all() and set(bad.unique().tolist()) <= {-1, 0, 3}
    # blobs, not salt and pepper: most wrong pixels have wrong 4-neighbours
    w = wrong.numpy()
    inner = w[1:-1, 1:-1]
    neigh = w[:-2, 1:-1].astype(int) + w[2:, 1:-1] + w[1:-1, :-2] + w[1:-1, 2:]
    assert (neigh[inner] >= 3).mean() > 0.8
    again = corrupt_blobs(lab, fraction, np.random.default_rng(0))
    assert torch.equal(bad, again)                             # seeded


def test_corrupted_copy_keeps_the_layout_and_the_unknown_value(tmp_path: Path) -> None:
    src = tmp_path / "data" / "room" / "semantic_class"
    lab = _two_class_map()
    write_segmenter_png(src / "semantic_class_0.png", lab)
    write_segmenter_png(src / "semantic_class_7.png", lab)
    assert torch.equal(read_segmenter_png(src / "semantic_class_0.png"), lab)
    rep = corrupt_dataset(tmp_path / "data", tmp_path / "bad", 0.2, seed=1)
    assert sorted(rep) == ["room/semantic_class/semantic_class_0.png",
                           "room/semantic_class/semantic_class_7.png"]
    out = read_segmenter_png(tmp_path / "bad" / "room" / "semantic_class" / "semantic_class_0.png")
    assert (out[:5, :5] == -1).all() and 0.2 <= rep["room/semantic_class/semantic_class_0.png"]
    with pytest.raises(FileNotFoundError):
        corrupt_dataset(tmp_path / "bad" / "nothing", tmp_path / "x", 0.2)


@pytest.fixture(scope="module")
def room(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("seg")
    write_room_and_tiny_checkpoint(root, H, W)
    corrupt_dataset(root / "rooms", root / "noisy", 0.3, seed=0)
    return {"root": root, "data": root / "rooms", "ckpt": root / "tiny.safetensors",
            "noisy": root / "noisy"}


def _eval(room: dict, out: Path, *extra: str) -> int:
    return eval_tiny_room(room["root"], out, H, W, *extra)


def test_eval_votes_each_segmenter_and_scores_it_on_the_sources(room, tmp_path,
                                                                monkeypatch) -> None:
    from gsnerf_ros.model.semantic_renderer import SemanticRenderer

    def refuse(*a, **kw):  # type: ignore[no-untyped-def]
        raise AssertionError("the semantic renderer ran with --labels-from")

    out = tmp_path / "r.json"
    monkeypatch.setattr(SemanticRenderer, "forward", refuse)   # the vote needs no semantics
    assert _eval(room, out, "--labels-from", str(room["data"]), str(room["noisy"]),
                 "--sensor-depth") == 0
    monkeypatch.undo()
    r = json.loads(out.read_text())
    assert r["semantic_source"] == "labels"
    gt, noisy = (r["label_sources"][str(room[k])] for k in ("data", "noisy"))
    assert gt["segmenter"]["mIoU"] == pytest.approx(100.0)     # ground truth scores itself
    assert noisy["segmenter"]["mIoU"] < 95.0
    assert r["mIoU"] == gt["mIoU"] and r["segmenter"]["mIoU"] == gt["segmenter"]["mIoU"]
    # measured depth: the vote of the true labels is right on most pixels, an untrained network
    # or not
    assert gt["acc"] > 85.0
    md = out.with_suffix(".md").read_text()
    assert "label vote" in md and "segmenter on the source views" in md
    # the model's own classes, as before, without --labels-from
    out2 = tmp_path / "m.json"
    assert _eval(room, out2, "--sensor-depth") == 0
    m = json.loads(out2.read_text())
    assert m["semantic_source"] == "model" and "label_sources" not in m
    for k in ("psnr", "ssim", "depth_abs_rel", "depth_rmse"):
        assert m[k] == r[k], k                                   # the same renders


def test_missing_label_images_are_a_clear_error(room, tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        _eval(room, tmp_path / "x.json", "--labels-from", str(tmp_path / "nowhere"))
    assert e.value.code == 2
    assert "no segmenter label image" in capsys.readouterr().err
