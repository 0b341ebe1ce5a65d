"""Losses on hand-computed cases."""

import math

import pytest
import torch

from gsnerf_ros.train.losses import (class_weights_from_background, edge_aware_smoothness,
                                     inverse_warp, multilevel_depth_loss,
                                     photometric_reconstruction, ray_depth_loss, rgb_loss,
                                     self_supervised_depth_loss, semantic_2d_ce, semantic_ce,
                                     ssim_map)


def test_rgb_loss_known_value_and_mask():
    pred = torch.zeros(4, 3)
    gt = torch.full((4, 3), 0.5)
    assert rgb_loss(pred, gt).item() == pytest.approx(0.25)
    mask = torch.tensor([True, False, False, False])
    gt[1:] = 0.0
    assert rgb_loss(pred, gt, mask).item() == pytest.approx(0.25)
    assert rgb_loss(pred, gt, torch.zeros(4, dtype=torch.bool)).item() == 0.0


def test_semantic_ce_uniform_logits_is_log_c_and_ignores_255():
    logits = torch.zeros(3, 4, requires_grad=True)
    labels = torch.tensor([0, 255, 3])
    loss = semantic_ce(logits, labels)
    assert loss.item() == pytest.approx(math.log(4))
    loss.backward()
    assert logits.grad[1].abs().sum() == 0  # the ignored ray gets no gradient
    assert semantic_ce(logits, torch.full((3,), 255)).item() == 0.0


def test_semantic_ce_class_weights_weighted_mean():
    # ray 0: class 0, CE = log(2); ray 1: class 1 with a confident right logit, CE ~ 0
    logits = torch.tensor([[0.0, 0.0], [-50.0, 50.0]])
    labels = torch.tensor([0, 1])
    w = torch.tensor([3.0, 1.0])
    expected = (3.0 * math.log(2) + 1.0 * 0.0) / (3.0 + 1.0)
    assert semantic_ce(logits, labels, class_weights=w).item() == pytest.approx(expected, abs=1e-6)
    bw = class_weights_from_background(4, [0, 1], 0.8)
    assert bw.tolist() == pytest.approx([0.8, 0.8, 1.0, 1.0])


def test_semantic_ce_rejects_out_of_range_labels():
    with pytest.raises(ValueError, match="remap"):
        semantic_ce(torch.zeros(2, 3), torch.tensor([0, 7]))


def test_semantic_2d_ce_matches_flattened_and_resizes_labels():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 4, 6)
    labels = torch.randint(0, 5, (2, 4, 6))
    flat = semantic_ce(logits.permute(0, 2, 3, 1).reshape(-1, 5), labels.reshape(-1))
    assert semantic_2d_ce(logits, labels).item() == pytest.approx(flat.item())
    big = labels.repeat_interleave(2, 1).repeat_interleave(2, 2)  # (2, 8, 12)
    assert semantic_2d_ce(logits, big).item() == pytest.approx(flat.item())


def test_multilevel_depth_loss_known_values():
    gt = torch.full((2, 8, 8), 2.0)
    gt[0, 0, 0] = 0.0  # invalid pixel, must be ignored
    levels = [torch.full((2, 4, 4), 2.0), torch.full((2, 8, 8), 2.5), torch.full((2, 2, 2), 2.0)]
    # only the full-resolution level (weight 2) is off by 0.5: smooth-L1 = 0.5 * 0.5^2 = 0.125
    assert multilevel_depth_loss(levels, gt).item() == pytest.approx(2 * 0.125)
    perfect = [torch.full((2, 8, 8), 2.0), torch.full((2, 4, 4), 2.0)]
    assert multilevel_depth_loss(perfect, gt).item() == 0.0


def test_ray_depth_loss_only_valid_rays():
    pred = torch.tensor([1.0, 5.0, 3.0])
    gt = torch.tensor([1.0, 0.0, 1.0])  # ray 1 invalid; ray 2 off by 2 -> L1 branch: 1.5
    assert ray_depth_loss(pred, gt).item() == pytest.approx((0.0 + 1.5) / 2)


def _stereo_pair(H=12, W=16, d=2.0, shift_px=2):
    """Two identical-orientation cameras translated along x; a fronto-parallel textured plane
    at depth d. The baseline gives an integer disparity, so the correct warp is exact."""
    fx = 10.0
    K = torch.tensor([[fx, 0, (W - 1) / 2], [0, fx, (H - 1) / 2], [0, 0, 1.0]])
    tx = shift_px * d / fx
    c2w = torch.eye(4).repeat(2, 1, 1)
    c2w[1, 0, 3] = tx
    g = torch.Generator().manual_seed(0)
    R = torch.rand(3, H, W + shift_px, generator=g)
    images = torch.stack([R[:, :, :W], R[:, :, shift_px:]])
    return images, K.expand(2, 3, 3).clone(), c2w, d


def test_inverse_warp_reconstructs_exactly_with_true_depth():
    images, K, c2w, d = _stereo_pair()
    depth = torch.full((12, 16), d)
    warped, valid = inverse_warp(images[1], depth, K[0], c2w[0], K[1], c2w[1])
    assert valid[:, 2:].all() and not valid[:, :2].any()
    assert torch.allclose(warped[:, valid], images[0][:, valid], atol=1e-5)


def test_photometric_loss_zero_for_perfect_warp_and_positive_for_wrong_depth():
    images, K, c2w, d = _stereo_pair()
    depth = torch.full((2, 12, 16), d)
    recon, ssim = photometric_reconstruction(images, depth, K, c2w, num_neighbours=1)
    assert recon.item() < 1e-9
    assert ssim.item() < 1e-6
    wrong, wrong_ssim = photometric_reconstruction(images, depth * 1.5, K, c2w, num_neighbours=1)
    assert wrong.item() > 1e-3 and wrong_ssim.item() > 1e-3


def test_ssim_map_identical_images_is_one():
    x = torch.rand(1, 3, 6, 7)
    assert torch.allclose(ssim_map(x, x), torch.ones_like(x), atol=1e-5)


def test_edge_aware_smoothness_zero_for_constant_and_discounted_at_image_edges():
    img = torch.zeros(1, 3, 8, 8)
    assert edge_aware_smoothness(torch.full((1, 8, 8), 3.0), img).item() == 0.0
    depth = torch.ones(1, 8, 8)
    depth[:, :, 4:] = 2.0  # a depth step between columns 3 and 4
    flat_image = edge_aware_smoothness(depth, img).item()
    edge_img = img.clone()
    edge_img[:, :, :, 4:] = 1.0  # an image edge at the same place
    assert edge_aware_smoothness(depth, edge_img).item() < flat_image * 0.5


def test_self_supervised_loss_prefers_true_depth_and_has_gradients():
    images, K, c2w, d = _stereo_pair()
    good = [torch.full((2, 12, 16), d, requires_grad=True), torch.full((2, 6, 8), d)]
    bad = [torch.full((2, 12, 16), d * 1.3), torch.full((2, 6, 8), d * 1.3)]
    lg, parts = self_supervised_depth_loss(images, good, K, c2w, num_neighbours=1)
    lb, _ = self_supervised_depth_loss(images, bad, K, c2w, num_neighbours=1)
    assert set(parts) == {"recon", "ssim", "smooth"}
    assert lg.item() < lb.item()
    lb2, _ = self_supervised_depth_loss(images, [good[0] * 1.3], K, c2w, num_neighbours=1)
    lb2.backward()
    assert good[0].grad is not None and good[0].grad.abs().sum() > 0
