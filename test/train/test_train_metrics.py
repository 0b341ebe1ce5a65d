"""Metrics, panels and the reprojection baseline on known cases."""

import math

import cv2

import numpy as np
import pytest
import torch

from gsnerf_ros.train.baseline import reproject_to_target
from gsnerf_ros.train.metrics import (PSNR_CAP_DB, LpipsMetric, SemanticAccumulator,
                                      confusion_matrix, depth_errors, per_class_iou, psnr,
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
    assert s["per_class_iou"][1] == 0.0     # predicted, never true: a real 0, not in the mean


def test_per_class_iou_of_a_known_confusion_and_none_where_no_number_exists():
    # rows: ground truth, columns: prediction (+ "no valid class")
    cm = torch.tensor([[6, 2, 0, 0, 1],     # class 0: TP 6, GT 9, predicted 6 + 0 + 1 = 7
                       [1, 4, 0, 0, 0],     # class 1: TP 4, GT 5, predicted 2 + 4 = 6
                       [0, 0, 0, 0, 0],     # class 2: never true, predicted once (row 3)
                       [0, 0, 1, 0, 0]])    # class 3: true once, never predicted
    iou = per_class_iou(cm)
    assert iou[0] == pytest.approx(6 / (9 + 7 - 6) * 100)
    assert iou[1] == pytest.approx(4 / (5 + 6 - 4) * 100)
    assert iou[2] == 0.0 and iou[3] == 0.0
    absent = torch.tensor([[5, 0, 0], [0, 0, 0]])   # class 1 in neither GT nor prediction
    assert math.isnan(per_class_iou(absent)[1]) and per_class_iou(absent)[0] == 100.0
    s = scores_from_confusion(cm)
    assert s["per_class_iou"] == iou
    assert s["mIoU"] == pytest.approx((iou[0] + iou[1] + iou[3]) / 3)   # class 2 not in GT


def test_evaluation_groups_report_per_class_iou_pixels_and_null_for_absent_classes():
    import json

    from gsnerf_ros.train.evaluate import ScoreGroup

    g = ScoreGroup(3)
    g.add({}, torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 1, 1]))
    g.add({}, torch.tensor([0, 3]), torch.tensor([0, 0]))      # 3: no valid class (a miss)
    out = g.summary(["wall", "floor", "sofa"])
    # confusion [[2, 0, 0, 1], [1, 2, 0, 0], [0, 0, 0, 0]]
    assert out["per_class_iou"]["wall"] == pytest.approx(2 / (3 + 3 - 2) * 100)
    assert out["per_class_iou"]["floor"] == pytest.approx(2 / (3 + 2 - 2) * 100)
    assert out["per_class_iou"]["sofa"] is None
    assert out["class_pixels"] == {"wall": {"gt": 3, "pred": 3}, "floor": {"gt": 3, "pred": 2},
                                   "sofa": {"gt": 0, "pred": 0}}
    assert out["confusion_matrix"] == [[2, 0, 0, 1], [1, 2, 0, 0], [0, 0, 0, 0]]
    json.dumps(out, allow_nan=False)                             # strict JSON: null, no NaN
    assert "per_class_iou" not in ScoreGroup(3).summary(["a", "b", "c"])   # no labels: no numbers
    with pytest.raises(ValueError, match="2 class names"):
        g.summary(["wall", "floor"])


def test_markdown_has_a_per_class_table_for_model_and_baseline(tmp_path):
    from gsnerf_ros.train.evaluate import write_markdown

    res = {"n_images": 2, "per_class_iou": {"wall": 75.0, "sofa": None},
           "class_pixels": {"wall": {"gt": 3, "pred": 4}, "sofa": {"gt": 1, "pred": 0}},
           "baseline": {"per_class_iou": {"wall": 50.0, "sofa": 0.0}}}
    write_markdown(res, tmp_path / "r.md")
    text = (tmp_path / "r.md").read_text()
    assert "## Per class" in text
    assert "| wall | 75.0 | 75.0 | 50.0 |" in text
    assert "| sofa | 25.0 | — | 0.0 |" in text


def test_confusion_png_is_row_normalised_and_of_the_stated_size(tmp_path):
    from gsnerf_ros.train.confusion_plot import (confusion_png_size, row_normalised,
                                                 save_confusion_png)

    counts = np.array([[3, 1, 0], [0, 0, 0]])
    pct = row_normalised(counts)
    assert pct[0].tolist() == [75.0, 25.0, 0.0] and np.isnan(pct[1]).all()
    names = ["wall", "floor", "ceiling", "a-very-long-class-name"]
    cm = np.arange(20).reshape(4, 5)
    for panels in ([("GSNeRF", cm)], [("GSNeRF", cm), ("baseline", cm[::-1])]):
        p = save_confusion_png(tmp_path / f"cm{len(panels)}.png", panels, names)
        img = cv2.imread(str(p))
        w, h = confusion_png_size(4, len(panels))
        assert img.shape == (h, w, 3)
        assert img.std() > 10                                 # something is drawn
    assert confusion_png_size(17, 2)[0] > confusion_png_size(17, 1)[0] > confusion_png_size(4, 1)[0]
    with pytest.raises(ValueError, match=r"\(C, C\+1\)"):
        save_confusion_png(tmp_path / "bad.png", [("x", cm[:, :4])], names)


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
