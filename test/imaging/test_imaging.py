"""The ROS-free image codec and colouring (gsnerf_ros.imaging): every encoding of the one table
round-trips, compressed images decode once to the same arrays the bag reader and the node use,
bad encodings and sizes are refused with a message, and the colour conventions hold."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from gsnerf_ros.data.bag_messages import decode_image
from gsnerf_ros.imaging import (
    CAMERA_ENCODINGS, ENCODINGS, ImageFormatError, canonical_encoding, check_camera_encoding,
    class_legend, colorize_depth, colorize_labels, cv_type_name, decode_compressed, decode_raw,
    depth_colorbar, depth_metres, encode_compressed, encode_raw, label_ids, to_rgb_array,
    to_rgb_tensor, uint8_to_float_rgb,
)


def _random(encoding: str, h: int = 3, w: int = 5, seed: int = 0) -> np.ndarray:
    info = ENCODINGS[encoding]
    rng = np.random.default_rng(seed)
    shape = (h, w, info.channels) if info.channels > 1 else (h, w)
    dt = np.dtype(info.dtype)
    if dt.kind == "f":
        return rng.normal(0, 100, shape).astype(dt)
    lim = np.iinfo(dt)
    return rng.integers(lim.min, lim.max, shape, dtype=dt, endpoint=True)


def _padded(data: bytes, h: int, row: int, pad: int) -> bytes:
    rows = np.frombuffer(data, np.uint8).reshape(h, row)
    return np.concatenate([rows, np.full((h, pad), 0xAB, np.uint8)], 1).tobytes()


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_every_encoding_round_trips_with_padding_and_byte_order(encoding: str) -> None:
    arr = _random(encoding)
    h, w, step, data = encode_raw(arr, encoding)
    info = ENCODINGS[encoding]
    assert (h, w, step) == (3, 5, 5 * info.channels * np.dtype(info.dtype).itemsize)
    back = decode_raw(encoding, h, w, step, data)
    assert back.dtype == np.dtype(info.dtype) and back.shape == arr.shape
    assert back.tobytes() == arr.tobytes()
    # padded rows (step > width * bytes per pixel) and big-endian data give the same array
    assert decode_raw(encoding, h, w, step + 3, _padded(data, h, step, 3)).tobytes() == \
        arr.tobytes()
    big = arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    assert decode_raw(encoding, h, w, step, big, is_bigendian=True).tobytes() == arr.tobytes()


def test_decode_reads_the_bytes_as_documented() -> None:
    # 16UC1 little-endian 0x0201 = 513; big-endian 0x0102 = 258; a padded row skips its pad
    assert decode_raw("16UC1", 1, 1, 2, b"\x01\x02").tolist() == [[513]]
    assert decode_raw("16UC1", 1, 1, 2, b"\x01\x02", is_bigendian=True).tolist() == [[258]]
    assert decode_raw("mono8", 2, 1, 3, b"\x07\xff\xff\x09").tolist() == [[7], [9]]
    assert cv_type_name("rgb8") == "8UC3" and cv_type_name("mono16") == "16UC1"
    assert canonical_encoding("8uc1") == "8UC1" and canonical_encoding("RGB8") == "rgb8"


@pytest.mark.parametrize("fields, match", [
    (("yuv422", 2, 2, 4, bytes(8)), "unsupported image encoding 'yuv422'"),
    (("rgb8", 2, 2, 5, bytes(12)), "step 5 is smaller than width"),
    (("rgb8", 2, 2, 6, bytes(11)), "11 bytes but rgb8 2x2"),
    (("mono8", 0, 4, 4, b""), "width and height must be > 0"),
])
def test_bad_raw_images_are_refused_with_the_reason(fields: tuple, match: str) -> None:
    with pytest.raises(ImageFormatError, match=match):
        decode_raw(*fields)


def test_encode_refuses_arrays_that_do_not_fit_the_encoding() -> None:
    with pytest.raises(ImageFormatError, match="3 channel"):
        encode_raw(np.zeros((2, 2), np.uint8), "rgb8")
    with pytest.raises(ImageFormatError, match="dtype float32 does not match 16UC1"):
        encode_raw(np.zeros((2, 2), np.float32), "16UC1")
    with pytest.raises(ImageFormatError, match="unsupported image encoding 'rgb9'"):
        encode_raw(np.zeros((2, 2, 3), np.uint8), "rgb9")
    with pytest.raises(ImageFormatError, match="unsupported"):
        canonical_encoding("bayer_rggb8")


@pytest.mark.parametrize("encoding, expect", [
    ("rgb8", "bgr8"), ("rgba8", "bgra8"), ("mono8", "mono8"), ("rgb16", "bgr16"),
    ("16UC1", "16UC1"),
])
def test_png_round_trip_and_the_encoding_it_decodes_to(encoding: str, expect: str) -> None:
    arr = _random(encoding, 6, 7, seed=3)
    data = encode_compressed(arr, encoding, "png")
    back, got = decode_compressed(data, "png")
    assert got == expect
    if ENCODINGS[encoding].channels == 1:
        assert np.array_equal(back, arr)
    else:
        # OpenCV's channel order; to_rgb_array gives back the RGB(A) input's colour channels
        assert np.array_equal(to_rgb_array(back, got), arr[..., :3])


def test_compressed_decodes_once_to_what_the_bag_reader_returns() -> None:
    rgb = _random("rgb8", 8, 8, seed=4)
    png = encode_compressed(rgb, "rgb8", "png")
    msg = SimpleNamespace(format="png", data=np.frombuffer(png, np.uint8))
    assert np.array_equal(decode_image(msg, "rgb"), rgb)
    depth_mm = np.array([[1500, 0], [250, 65535]], np.uint16)
    msg = SimpleNamespace(format="png", data=encode_compressed(depth_mm, "16UC1", "png"))
    assert np.array_equal(decode_image(msg, "depth"), depth_mm.astype(np.float32) / 1000.0)
    jpg = encode_compressed(np.full((16, 16, 3), (200, 40, 10), np.uint8), "rgb8", "jpeg")
    arr, enc = decode_compressed(jpg, "jpeg")
    assert enc == "bgr8" and np.abs(to_rgb_array(arr, enc).astype(int) -
                                    np.array([200, 40, 10])).max() <= 3


@pytest.mark.parametrize("data, fmt, match", [
    (b"", "jpeg", "empty CompressedImage"),
    (b"not an image", "jpeg", "cannot decode CompressedImage of format 'jpeg'"),
    (b"\x00" * 16, "16UC1; compressedDepth png", "compressedDepth images are not supported"),
])
def test_bad_compressed_images_are_refused(data: bytes, fmt: str, match: str) -> None:
    with pytest.raises(ImageFormatError, match=match):
        decode_compressed(data, fmt)


def test_colour_order_of_named_and_generic_encodings() -> None:
    px = np.array([[[10, 20, 30, 40]]], np.uint8)
    assert to_rgb_array(px[..., :3], "rgb8").tolist() == [[[10, 20, 30]]]
    assert to_rgb_array(px[..., :3], "bgr8").tolist() == [[[30, 20, 10]]]
    assert to_rgb_array(px, "rgba8").tolist() == [[[10, 20, 30]]]
    assert to_rgb_array(px, "bgra8").tolist() == [[[30, 20, 10]]]
    assert to_rgb_array(np.array([[7]], np.uint8), "mono8").tolist() == [[[7, 7, 7]]]
    # a generic 8UC3 has no colour order: the bag reader keeps it, the node reads OpenCV's BGR
    assert to_rgb_array(px[..., :3], "8UC3").tolist() == [[[10, 20, 30]]]
    assert to_rgb_array(px[..., :3], "8UC3", generic_order="bgr").tolist() == [[[30, 20, 10]]]
    assert torch.equal(to_rgb_tensor(px[..., :3], "8UC3")[:, 0, 0] * 255,
                       torch.tensor([30.0, 20.0, 10.0]))
    with pytest.raises(ImageFormatError, match="has 2 channels"):
        to_rgb_array(np.zeros((1, 1, 2), np.uint8), "8UC2")


def test_camera_encodings_are_table_entries_and_others_are_refused() -> None:
    assert set(CAMERA_ENCODINGS) <= set(ENCODINGS)
    for enc in CAMERA_ENCODINGS:
        check_camera_encoding(enc)
    for enc in ("16UC1", "32FC1", "rgb16", "yuv422"):
        with pytest.raises(ImageFormatError, match=f"image encoding '{enc}' is not supported"):
            to_rgb_tensor(np.zeros((1, 1, 3), np.uint8), enc)


def test_depth_units_and_invalid_pixels() -> None:
    assert depth_metres(np.array([[1500, 0]], np.uint16), "16UC1").tolist() == [[1.5, 0.0]]
    assert depth_metres(np.array([[2500]], np.uint16), "mono16").tolist() == [[2.5]]
    d = depth_metres(np.array([[2.0, np.nan, np.inf, -1.0, -0.0]], np.float32), "32FC1")
    assert d.dtype == np.float32 and d.tolist() == [[2.0, 0.0, 0.0, 0.0, 0.0]]
    assert not np.signbit(d).any()                         # invalid is +0, never -0
    for enc in ("mono8", "8UC1", "rgb8"):
        with pytest.raises(ImageFormatError, match="publish 16UC1"):
            depth_metres(np.zeros((1, 1), np.uint8), enc)
    assert label_ids(np.array([[3, 300]], np.uint16), "mono16").dtype == np.int64
    with pytest.raises(ImageFormatError, match="single-channel ids"):
        label_ids(np.zeros((1, 1, 3), np.uint8), "rgb8")
    with pytest.raises(ValueError, match="kind must be rgb, depth or labels"):
        decode_image(SimpleNamespace(encoding="mono8", height=1, width=1, step=1, data=b"\x01"),
                     "normals")


def _turbo(index: int) -> list[int]:
    return cv2.applyColorMap(np.array([[index]], np.uint8), cv2.COLORMAP_TURBO)[0, 0, ::-1].tolist()


def test_label_colouring_uses_the_palette_and_blacks_out_unknown_ids() -> None:
    pal = torch.tensor([[1, 2, 3], [4, 5, 6]], dtype=torch.uint8)
    col = colorize_labels(torch.tensor([[0, 1, 255, -1]]), pal)
    assert col.dtype == np.uint8 and col.shape == (1, 4, 3)
    assert col.tolist() == [[[1, 2, 3], [4, 5, 6], [0, 0, 0], [0, 0, 0]]]
    assert np.array_equal(colorize_labels(np.array([[1]]), pal.numpy()), [[[4, 5, 6]]])
    f = uint8_to_float_rgb(col)
    assert f.shape == (3, 1, 4) and f.dtype == torch.float32 and f[:, 0, 1].tolist() == \
        pytest.approx([4 / 255, 5 / 255, 6 / 255])


def test_depth_colouring_linear_and_inverse_scales() -> None:
    d = torch.tensor([[1.0, 1.6, 4.0, 0.0, float("nan")]])
    lin = colorize_depth(d, 1.0, 4.0)
    assert lin.dtype == np.uint8 and lin.shape == (1, 5, 3)
    assert lin[0, 0].tolist() == _turbo(0) and lin[0, 2].tolist() == _turbo(255)
    assert lin[0, 1].tolist() == _turbo(int(0.2 * 255))          # (1.6 - 1) / (4 - 1)
    assert lin[0, 3:].tolist() == [[0, 0, 0], [0, 0, 0]]          # invalid pixels black
    inv = colorize_depth(d, 1.0, 4.0, scale="inverse")
    assert inv[0, 0].tolist() == _turbo(255) and inv[0, 2].tolist() == _turbo(0)
    assert inv[0, 1].tolist() == _turbo(int(0.5 * 255))          # (1/1.6 - 1/4) / (1 - 1/4)
    assert np.array_equal(colorize_depth(d), lin)                 # default range: valid min/max
    assert not colorize_depth(torch.zeros(2, 2), scale="inverse").any()
    with pytest.raises(ValueError, match="scale must be one of"):
        colorize_depth(d, scale="log")


def test_colour_bar_and_legend_show_the_same_colours() -> None:
    bar = depth_colorbar(1.0, 4.0, 40, 120)
    assert bar.shape == (40, 120, 3)
    assert bar[0, 0].tolist() == _turbo(0) and bar[0, -1].tolist() == _turbo(255)
    pal = np.array([[255, 0, 0], [0, 200, 0]], np.uint8)
    leg = class_legend(["wall", "floor"], pal, 48, 100)
    assert leg.shape == (48, 100, 3)
    assert leg[5, 5].tolist() == [255, 0, 0] and leg[29, 5].tolist() == [0, 200, 0]
    assert not class_legend(["wall"], pal, 20, 20, ids=[7]).any()
