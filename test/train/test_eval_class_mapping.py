"""gsnerf-eval on other people's data (issue 11 §5): classes matched by name, aliases from
--class-map, a refusal instead of scoring mismatched ids, and a clear scene.json schema error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from gsnerf_ros.data.class_mapping import (ClassMatchError, load_class_map, match_classes,
                                           normalise_name)
from gsnerf_ros.data.classes import IGNORE_INDEX, PROCEDURAL_CLASSES
from helpers.rooms import write_room_and_tiny_checkpoint

H, W = 24, 32


def test_match_classes_by_name_with_aliases() -> None:
    model = ["wall", "floor", "chair"]
    assert match_classes(model, model) is None
    assert match_classes(["Floor", "wall"], model) == {0: 1, 1: 0}
    assert normalise_name(" Wall_plug-2 ") == "wall plug 2"
    assert match_classes(["muur", "vloer", "rommel"], model,
                         {"muur": "wall", "Vloer": "floor", "rommel": None}) == {
        0: 0, 1: 1, 2: IGNORE_INDEX}
    with pytest.raises(ClassMatchError, match=r"\['sofa'\].*--class-map"):
        match_classes(["wall", "sofa"], model)
    with pytest.raises(ClassMatchError, match="without names"):
        match_classes(["replica_12", "replica_40"], model)
    with pytest.raises(ValueError, match="no class 'table'"):
        match_classes(["wall"], model, {"wall": "table"})


def test_class_map_file_yaml_or_json(tmp_path) -> None:
    (tmp_path / "m.yaml").write_text("muur: wall\nrommel: null\n")
    (tmp_path / "m.json").write_text(json.dumps({"muur": "wall"}))
    assert load_class_map(tmp_path / "m.yaml") == {"muur": "wall", "rommel": None}
    assert load_class_map(tmp_path / "m.json") == {"muur": "wall"}
    (tmp_path / "bad.yaml").write_text("- wall\n- floor\n")
    with pytest.raises(ValueError, match="expected a mapping"):
        load_class_map(tmp_path / "bad.yaml")


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    """A tiny checkpoint with the procedural classes and one labelled procedural room."""
    root = tmp_path_factory.mktemp("cm")
    write_room_and_tiny_checkpoint(root, H, W)
    room = next(p.parent for p in (root / "rooms").rglob("scene.json"))
    return {"root": root, "room": room, "ckpt": root / "tiny.safetensors"}


def _variant(setup: dict, name: str) -> Path:
    dst = setup["root"] / "variants" / name / setup["room"].name
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(setup["room"], dst)
    return dst


def _run_eval(setup: dict, data: Path, out: Path, *extra: str, baseline: bool = False) -> int:
    from gsnerf_ros.train.cli import eval_main

    torch.set_num_threads(1)
    return eval_main(["--checkpoint", str(setup["ckpt"]), "--data", str(data), "--json", str(out),
                      "--height", str(H), "--width", str(W), "--num-sources", "3",
                      "--max-targets", "2", "--no-lpips", "--device", "cpu",
                      *([] if baseline else ["--no-baseline"]), *extra])


def test_permuted_class_list_is_remapped_and_scores_the_same(setup, tmp_path) -> None:
    assert _run_eval(setup, setup["room"], tmp_path / "ref.json") == 0
    ref = json.loads((tmp_path / "ref.json").read_text())
    # the same room, its class list reversed and its label ids rewritten to match
    room = _variant(setup, "permuted")
    meta = json.loads((room / "scene.json").read_text())
    C = len(meta["class_names"])
    perm = np.arange(C)[::-1]  # new id of old class c is perm[c]
    meta["class_names"] = [meta["class_names"][int(np.where(perm == i)[0][0])] for i in range(C)]
    meta["palette"] = meta["palette"][::-1]
    (room / "scene.json").write_text(json.dumps(meta))
    for p in (room / "semantic_class").glob("*.png"):
        lab = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        lut = np.arange(256, dtype=lab.dtype)
        lut[:C] = perm
        cv2.imwrite(str(p), lut[lab])
    assert _run_eval(setup, room, tmp_path / "perm.json") == 0
    res = json.loads((tmp_path / "perm.json").read_text())
    assert res["mIoU"] == pytest.approx(ref["mIoU"]) and res["acc"] == pytest.approx(ref["acc"])
    assert res["per_class_iou"] == pytest.approx(ref["per_class_iou"])   # by name, not by id
    assert ref["class_mapping"] == {}
    assert res["class_mapping"][meta["name"]]["wall"] == "wall"


def test_unmatched_names_are_refused_and_aliases_fix_them(setup, tmp_path, capsys) -> None:
    room = _variant(setup, "renamed")
    meta = json.loads((room / "scene.json").read_text())
    meta["class_names"] = ["muur" if n == "wall" else n for n in meta["class_names"]]
    (room / "scene.json").write_text(json.dumps(meta))
    with pytest.raises(SystemExit) as e:
        _run_eval(setup, room, tmp_path / "no.json")
    assert e.value.code == 2 and not (tmp_path / "no.json").exists()
    assert "['muur']" in capsys.readouterr().err
    (tmp_path / "map.yaml").write_text("muur: wall\n")
    assert _run_eval(setup, room, tmp_path / "yes.json", "--class-map",
                     str(tmp_path / "map.yaml")) == 0
    assert json.loads((tmp_path / "yes.json").read_text())["mIoU"] is not None


def test_foreign_room_without_names_is_refused_not_scored_as_one_class(setup, tmp_path,
                                                                       capsys) -> None:
    room = _variant(setup, "foreign")
    (room / "scene.json").unlink()  # another renderer's room: Replica layout, no class names
    with pytest.raises(SystemExit):
        _run_eval(setup, room.parent, tmp_path / "f.json")
    err = capsys.readouterr().err
    assert "replica_" in err and "--class-map" in err and not (tmp_path / "f.json").exists()


def test_scene_json_in_another_schema_is_a_clear_error(setup) -> None:
    from gsnerf_ros.data.replica import ReplicaScene

    room = _variant(setup, "schema")
    (room / "scene.json").write_text(json.dumps({"intrinsics": [100, 100, 16, 12],
                                                 "classes": ["wall", "floor"]}))
    with pytest.raises(ValueError, match="not a gsnerf-synth scene.json") as e:
        ReplicaScene(room)
    msg = str(e.value)
    assert "'K'" in msg and "'class_names'" in msg and "intrinsics" in msg
    assert "NonexNone" not in msg


def test_eval_writes_per_class_iou_for_model_and_baseline_and_a_confusion_png(setup,
                                                                              tmp_path) -> None:
    from gsnerf_ros.train.confusion_plot import confusion_png_size

    out = tmp_path / "ev.json"
    assert _run_eval(setup, setup["room"], out, baseline=True) == 0
    res = json.loads(out.read_text())
    names = list(PROCEDURAL_CLASSES)
    assert res["class_names"] == names
    for r in (res, res["baseline"]):
        assert list(r["per_class_iou"]) == names
        pixels = r["class_pixels"]
        for n, v in r["per_class_iou"].items():
            if pixels[n]["gt"] == 0 and pixels[n]["pred"] == 0:
                assert v is None, n                 # no number exists: null, never made up
            else:
                assert 0.0 <= v <= 100.0
        assert sum(p["gt"] for p in pixels.values()) == sum(map(sum, r["confusion_matrix"]))
        assert any(v is None for v in r["per_class_iou"].values())   # 17 classes, one room
    png = tmp_path / "ev_confusion.png"
    assert res["confusion_png"] == png.name and png.is_file()
    w, h = confusion_png_size(len(names), 2)
    assert cv2.imread(str(png)).shape == (h, w, 3)
    md = (tmp_path / "ev.md").read_text()
    assert "## Per class" in md and "baseline IoU" in md and "ev_confusion.png" in md
