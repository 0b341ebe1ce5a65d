"""A segmenter's labels in the runtime (ROS-free): decoding and refusals, the LabelInfo's class
map over time, rectification with the image, and ``semantic.source: model`` unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gsnerf_ros.runtime.engine import GSNeRFRenderer
from gsnerf_ros.runtime.ingest import CameraModel, FrameIngest
from gsnerf_ros.runtime.keyframes import KeyframeBuffer
from gsnerf_ros.runtime.segmenter_labels import (KeyframeLabels, LabelError, LabelSpace,
                                                 check_label_header, decode_confidence,
                                                 decode_labels, id_palette)


def test_decode_maps_the_unknown_value_of_each_encoding_to_minus_one() -> None:
    ids, wide = decode_labels(np.array([[0, 3, 255]], np.uint8), "mono8")
    assert ids.tolist() == [[0, 3, -1]] and not wide
    ids, wide = decode_labels(np.array([[255, 1000, 65535]], np.uint16), "mono16")
    assert ids.tolist() == [[255, 1000, -1]] and wide
    with pytest.raises(LabelError, match="mono8"):
        decode_labels(np.zeros((2, 2, 3), np.uint8), "rgb8")


def test_confidence_encodings_and_range() -> None:
    c = decode_confidence(np.array([[0.0, 0.5, np.nan]], np.float32), "32FC1")
    assert c.tolist() == [[0.0, 0.5, 0.0]]
    assert decode_confidence(np.array([[0, 255]], np.uint8), "mono8").tolist() == [[0.0, 1.0]]
    with pytest.raises(LabelError, match=r"\[0, 1\]"):
        decode_confidence(np.array([[1.5]], np.float32), "32FC1")
    with pytest.raises(LabelError):
        decode_confidence(np.array([[1]], np.uint16), "16UC1")


def test_label_header_must_match_the_image() -> None:
    check_label_header("label", 32, 24, 10.0, 32, 24, 10.0005, 0.001)
    with pytest.raises(LabelError, match="16x12 but the colour image is 32x24"):
        check_label_header("label", 16, 12, 10.0, 32, 24, 10.0, 0.001)
    with pytest.raises(LabelError, match="stamp"):
        check_label_header("label", 32, 24, 10.0, 32, 24, 10.01, 0.001)


def test_label_space_translates_earlier_labels_by_name() -> None:
    space = LabelSpace()
    old = KeyframeLabels(torch.tensor([[0, 1, 2, -1, 9]], dtype=torch.int32))
    assert space.to_current(old).tolist() == old.ids.tolist()        # no LabelInfo yet
    assert space.update({0: "floor", 1: "wall", 2: "door"}).kind == "first"
    assert space.update({0: "floor", 1: "wall", 2: "door"}).kind == "same"
    first = KeyframeLabels(old.ids, generation=space.generation)
    assert space.unnamed_ids(first.ids) == [9]
    assert space.update({0: "floor", 1: "wall", 2: "door", 3: "sofa"}).kind == "extended"
    change = space.update({0: "wall", 1: "floor", 3: "sofa", 4: "chair"})
    assert change.kind == "changed" and "renamed" in change.message and "removed" in change.message
    # floor 0 -> 1, wall 1 -> 0, door removed -> unknown, unknown stays, unnamed 9 kept
    assert space.to_current(first).tolist() == [[1, 0, -1, -1, 9]]
    with pytest.raises(LabelError, match="unique"):
        space.update({0: "a", 1: "a"})
    assert space.names()[4] == "chair"                               # the last good one kept
    assert space.unknown_value == 255
    space.update({0: "wall", 300: "crate"})
    assert space.unknown_value == 65535


def test_palette_is_keyed_by_id() -> None:
    small, big = id_palette(255), id_palette(65535)
    assert torch.equal(small, big[:255])                     # a class keeps its colour


def _camera(distorted: bool) -> CameraModel:
    K = [40.0, 0, 15.5, 0, 40.0, 11.5, 0, 0, 1]
    D = [0.3, -0.1, 0.0, 0.0, 0.0] if distorted else [0.0] * 5
    return CameraModel.from_fields(32, 24, K, D, "plumb_bob", [0] * 9, [0] * 12, "cam")


def test_labels_are_rectified_like_the_image_and_kept_at_the_camera_size() -> None:
    buf = KeyframeBuffer()
    ingest = FrameIngest(buf, "auto", width=16, height=12)
    ids = torch.arange(24 * 32, dtype=torch.int32).reshape(24, 32) % 200
    labels = KeyframeLabels(ids, torch.full((24, 32), 0.5), generation=0)
    kf, _ = ingest.add(torch.rand(3, 24, 32), _camera(False), torch.eye(4), 0.0, "cam",
                       labels=labels)
    assert kf.image.shape == (3, 12, 16) and kf.labels.ids.shape == (24, 32)
    assert torch.equal(kf.labels.ids, ids)                    # nothing to rectify
    kf, _ = ingest.add(torch.rand(3, 24, 32), _camera(True), torch.eye(4), 1.0, "cam",
                       labels=labels)
    rect = kf.labels.ids
    assert rect.shape == (24, 32) and not torch.equal(rect, ids)
    # nearest neighbour: only ids of the input, or unknown where the raw image ends
    assert set(rect.unique().tolist()) <= set(ids.unique().tolist()) | {-1}
    assert kf.labels.confidence is not None and set(
        kf.labels.confidence.unique().tolist()) <= {0.0, 0.5}
    with pytest.raises(Exception, match="labels is 16x12"):
        ingest.add(torch.rand(3, 24, 32), _camera(False), torch.eye(4), 2.0, "cam",
                   labels=KeyframeLabels(torch.zeros(12, 16, dtype=torch.int32)))


def _keyframes(model_renderer: GSNeRFRenderer, with_labels: bool) -> list:
    buf = KeyframeBuffer()
    K = torch.tensor([[30.0, 0, 15.5], [0, 30.0, 11.5], [0, 0, 1]])
    g = torch.Generator().manual_seed(1)
    for i in range(4):
        c2w = torch.eye(4)
        c2w[0, 3] = 0.2 * i
        lab = (KeyframeLabels(torch.full((24, 32), i, dtype=torch.int32)) if with_labels
               else None)
        buf.add(torch.rand(3, 24, 32, generator=g), K, c2w, float(i), "cam",
                depth=torch.full((24, 32), 2.0), force=True, labels=lab)
    kfs = buf.keyframes()
    for kf in kfs:
        kf.encoding = model_renderer.encode(kf, [n for n in kfs if n is not kf][:2])
    return kfs


def test_model_source_is_bit_identical_to_the_models_render() -> None:
    from gsnerf_ros.model import GSNeRF, GSNeRFConfig

    torch.manual_seed(0)
    model = GSNeRF(GSNeRFConfig.tiny(4))
    r = GSNeRFRenderer(model, near=0.5, far=5.0)
    assert r.semantic_source == "model"
    K = torch.tensor([[30.0, 0, 15.5], [0, 30.0, 11.5], [0, 0, 1]])
    c2w = torch.eye(4)
    c2w[0, 3] = 0.3
    plain = _keyframes(r, with_labels=False)
    labelled = _keyframes(r, with_labels=True)
    a = r.render(plain, K, c2w, 24, 32)
    r.stack_cache = type(r.stack_cache)()
    b = r.render(labelled, K, c2w, 24, 32)               # labels on the keyframes: ignored
    enc = r.stacked(plain)
    ref = model.render(enc, K, c2w, 24, 32, mode=r.mode, near=r.near, far=r.far,
                       guided_sigma=model.config.sampling.sensor_sigma)
    for out in (a, b):
        assert torch.equal(out.labels, ref.labels)
        assert torch.equal(out.confidence, ref.confidence.float())
        assert torch.equal(out.rgb, ref.rgb.float()) and torch.equal(out.depth, ref.depth)
    # the labels source keeps the model's RGB and depth and votes the keyframes' ids
    v = GSNeRFRenderer(model, near=0.5, far=5.0, semantic_source="labels")
    c = v.render(labelled, K, c2w, 24, 32)
    assert torch.equal(c.rgb, a.rgb) and torch.equal(c.depth, a.depth)
    assert set(c.labels.unique().tolist()) <= {0, 1, 2, 3, 255}
    assert not torch.equal(c.labels, a.labels)
    with pytest.raises(ValueError, match="semantic_source"):
        GSNeRFRenderer(model, near=0.5, far=5.0, semantic_source="segmenter")


def test_labels_source_skips_the_model_semantics_and_matches_the_full_render(monkeypatch) -> None:
    from gsnerf_ros.model import GSNeRF, GSNeRFConfig
    from gsnerf_ros.model.semantic_renderer import SemanticRenderer

    torch.manual_seed(0)
    model = GSNeRF(GSNeRFConfig.tiny(4))
    v = GSNeRFRenderer(model, near=0.5, far=5.0, semantic_source="labels", floor_z=2.5,
                       label_depth_search=0.2)
    K = torch.tensor([[30.0, 0, 15.5], [0, 30.0, 11.5], [0, 0, 1]])
    c2w = torch.eye(4)
    c2w[0, 3] = 0.3
    labelled = _keyframes(v, with_labels=True)
    # the full path: the model's whole render (semantics included), then the vote
    enc = v.stacked(labelled)
    full = model.render(enc, K, c2w, 24, 32, mode=v.mode, near=v.near, far=v.far,
                        guided_sigma=model.config.sampling.sensor_sigma, floor_z=v.floor_z)
    ref_labels, ref_conf = v.vote_labels(enc, labelled, K, c2w, full)

    def refuse(*a, **kw):  # type: ignore[no-untyped-def]
        raise AssertionError("the semantic renderer ran with semantic_source labels")

    monkeypatch.setattr(SemanticRenderer, "forward", refuse)
    out = v.render(labelled, K, c2w, 24, 32)
    assert torch.equal(out.rgb, full.rgb.float()) and torch.equal(out.depth, full.depth.float())
    assert torch.equal(out.labels, ref_labels) and torch.equal(out.confidence, ref_conf)
    assert set(out.labels.unique().tolist()) <= {0, 1, 2, 3, 255}
