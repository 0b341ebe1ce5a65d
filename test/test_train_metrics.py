"""Metrics, panels and the reprojection baseline on known cases."""

import math

import numpy as np
import pytest
import torch

from gsnerf_ros.train.baseline import reproject_to_target
from gsnerf_ros.train.metrics import (PSNR_CAP_DB, LpipsMetric, SemanticAccumulator,
                                      confusion_matrix, depth_errors, psnr,
                                      scores_from_confusion, ssim)
from gsnerf_ros.train.panels import make_panel, save_png


def test_confusion_matrix_known_values():
    gt = torch.tensor([0, 0, 1, 1, 255])
    pred = torch.tensor([0, 1, 1, 1, 0])
    cm = confusion_matrix(pred, gt, 2)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0]]
    s = scores_from_confusion(cm)
    # IoU0 = 1/(2+1-1) = 0.5, IoU1 = 2/(2+3-2) = 2/3
    assert s["mIoU"] == pytest.approx((0.5 + 2 / 3) / 2 * 100)
    assert s["acc"] == pytest.approx(75.0)
    assert s["class_acc"] == pytest.approx((0.5 + 1.0) / 2 * 100)


def test_invalid_prediction_counts_as_miss_not_false_positive():
    gt = torch.tensor([0, 0, 1, 1])
    pred = torch.tensor([0, 7, 1, 1])  # 7 is no class of C=2
    cm = confusion_matrix(pred, gt, 2)
    assert cm.tolist() == [[1, 0, 1], [0, 2, 0]]
    s = scores_from_confusion(cm)
    assert s["mIoU"] == pytest.approx((0.5 + 1.0) / 2 * 100)
    assert s["acc"] == pytest.approx(75.0)


def test_absent_classes_excluded_from_mean():
    cm = torch.tensor([[3, 0, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0]])  # class 1 absent from GT
    s = scores_from_confusion(cm)
    # IoU0 = 1, IoU2 = 0 (class 1 predicted once but absent -> not averaged)
    assert s["mIoU"] == pytest.approx(50.0)
    assert math.isnan(s["per_class_iou"][1])


def test_per_image_vs_accumulated():
    acc = SemanticAccumulator(num_classes=2)
    acc.update(torch.tensor([0, 0]), torch.tensor([0, 0]))          # perfect: mIoU 100
    acc.update(torch.tensor([1, 1, 1, 1]), torch.tensor([0, 1, 1, 1]))  # IoU0 0, IoU1 .75
    s = acc.summary()
    assert s["mIoU"] == pytest.approx((100 + 37.5) / 2)
    # accumulated: cm = [[2,1],[0,3]] -> IoU0 = 2/3, IoU1 = 3/4
    assert s["mIoU_accumulated"] == pytest.approx((2 / 3 + 3 / 4) / 2 * 100)
    assert s["acc_accumulated"] == pytest.approx(5 / 6 * 100)


def test_perfect_prediction_gives_100_and_capped_psnr():
    torch.manual_seed(0)
    labels = torch.randint(0, 5, (10, 12))
    acc = SemanticAccumulator(num_classes=5)
    acc.update(labels, labels)
    s = acc.summary()
    assert s["mIoU"] == 100.0 and s["acc"] == 100.0 and s["class_acc"] == 100.0
    img = torch.rand(3, 10, 12)
    assert psnr(img, img) == PSNR_CAP_DB
    assert ssim(img, img) == pytest.approx(1.0)


def test_psnr_known_value_and_mask():
    gt = torch.zeros(3, 4, 4)
    pred = torch.full((3, 4, 4), 0.1)  # MSE 0.01 -> 20 dB
    assert psnr(pred, gt) == pytest.approx(20.0)
    mask = torch.zeros(4, 4, dtype=torch.bool)
    mask[0, 0] = True
    pred[:, 1:, :] = 1.0  # errors outside the mask do not count
    assert psnr(pred, gt, mask) == pytest.approx(20.0)


def test_depth_errors_known_values():
    gt = torch.tensor([[1.0, 2.0], [0.0, 4.0]])
    pred = torch.tensor([[1.1, 2.0], [9.0, 3.0]])
    e = depth_errors(pred, gt)
    assert e["n"] == 3
    assert e["abs_rel"] == pytest.approx((0.1 + 0 + 0.25) / 3)
    assert e["rmse"] == pytest.approx(math.sqrt((0.01 + 0 + 1) / 3))


def test_lpips_is_null_with_reason_when_unavailable():
    m = LpipsMetric()
    if m.available:
        pytest.skip("lpips and its weights are installed here")
    assert m.reason and m(torch.rand(3, 8, 8), torch.rand(3, 8, 8)) is None


def test_panel_shape_and_png(tmp_path):
    H, W = 6, 8
    pal = torch.tensor([[255, 0, 0], [0, 255, 0]], dtype=torch.uint8)
    lab = torch.randint(0, 2, (H, W))
    d = torch.rand(H, W) + 1
    panel = make_panel(torch.rand(3, 3, H, W), torch.rand(3, H, W), torch.rand(H, W, 3), pal,
                       lab, lab, d, d, d)
    assert panel.shape == (3 * H, 5 * W, 3) and panel.dtype == np.uint8
    # GT semantics tile (row 2, column 4) is coloured with the palette
    tile = panel[H:2 * H, 3 * W:4 * W]
    assert (tile[lab == 0] == [255, 0, 0]).all()
    save_png(tmp_path / "p.png", panel)
    assert (tmp_path / "p.png").stat().st_size > 0


def test_reprojection_baseline_identity_view_reproduces_source():
    """Target = source 0's pose with its depth: the baseline returns source 0's colours and
    labels wherever source 0 is the only (or a consistent) view."""
    H, W = 6, 8
    K = torch.tensor([[8.0, 0, 3.5], [0, 8.0, 2.5], [0, 0, 1]])
    c2w = torch.eye(4).repeat(2, 1, 1)
    c2w[1, 0, 3] = 5.0  # the second view is far away and sees nothing of the target
    images = torch.rand(2, 3, H, W)
    labels = torch.randint(0, 3, (2, H, W))
    depth = torch.full((2, H, W), 2.0)
    res = reproject_to_target(images, labels, depth, K.expand(2, 3, 3), c2w, K, c2w[0],
                              depth[0], num_classes=3)
    assert torch.allclose(res.rgb, images[0].permute(1, 2, 0), atol=1e-5)
    assert torch.equal(res.labels, labels[0])
    # no depth -> no class
    res0 = reproject_to_target(images, labels, depth, K.expand(2, 3, 3), c2w, K, c2w[0],
                               torch.zeros(H, W), num_classes=3)
    assert (res0.labels == 3).all() and res0.rgb.abs().sum() == 0


def test_reprojection_baseline_drops_occluded_view():
    """A source whose own depth is nearer than the point (occluder) must not vote."""
    H, W = 6, 8
    K = torch.tensor([[8.0, 0, 3.5], [0, 8.0, 2.5], [0, 0, 1]])
    c2w = torch.eye(4).repeat(3, 1, 1)
    images = torch.stack([torch.zeros(3, H, W), torch.ones(3, H, W), torch.zeros(3, H, W)])
    labels = torch.stack([torch.zeros(H, W), torch.ones(H, W), torch.zeros(H, W)]).long()
    depth = torch.stack([torch.full((H, W), 2.0), torch.full((H, W), 1.0),
                         torch.full((H, W), 2.0)])
    res = reproject_to_target(images, labels, depth, K.expand(3, 3, 3), c2w, K, c2w[0],
                              torch.full((H, W), 2.0), num_classes=2)
    assert (res.labels == 0).all() and res.rgb.max() < 1e-6
    assert (res.coverage == 2).all()


def test_panel_has_a_class_legend_and_a_depth_colour_bar():
    """With class names the semantic row ends in a legend of the classes shown (their palette
    colours) and the depth row in a colour bar; 8 sources make room for them."""
    H, W = 48, 64
    pal = torch.tensor([[255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=torch.uint8)
    lab = torch.zeros(H, W, dtype=torch.long)
    lab[:, W // 2:] = 2
    d = torch.linspace(1, 4, W).expand(H, W).contiguous()
    plain = make_panel(torch.rand(8, 3, H, W), torch.rand(3, H, W), torch.rand(H, W, 3), pal,
                       lab, lab, d, d, d)
    panel = make_panel(torch.rand(8, 3, H, W), torch.rand(3, H, W), torch.rand(H, W, 3), pal,
                       lab, lab, d, d, d, class_names=["wall", "floor", "chair"])
    assert panel.shape == plain.shape == (3 * H, 8 * W, 3)
    legend = panel[H:2 * H, 5 * W:7 * W].reshape(-1, 3)
    has = lambda c: bool((legend == np.array(c)).all(-1).any())  # noqa: E731
    assert has([255, 0, 0]) and has([0, 0, 255]) and not has([0, 255, 0])   # only classes shown
    plain_tiles = plain[H:2 * H, 5 * W:7 * W].reshape(-1, 3)
    assert not (plain_tiles == np.array([255, 0, 0])).all(-1).any()
    assert (panel[2 * H:3 * H, 5 * W:6 * W] > 0).any()                       # colour bar drawn
