"""CUDA-only checks (``pytest -m cuda``; every test skips without a CUDA device).

Run by ``bash tools/gpu_check.sh`` on a machine lent a GPU. The tests take no fixtures, so the
check can also run them without pytest (``python3 test/bench/test_cuda.py``) where pytest is missing.

Tolerances: fused kernel fp32 against the eager fp32 module 1e-4 absolute on LayerNorm-ed
(unit-scale) outputs; bf16 0.05; whole-view render with the fused kernel against eager fp32:
rgb 1e-3, >= 99.9 % of labels agree.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

try:
    import pytest
except ImportError:  # the GPU check's runner without pytest (_run_without_pytest)
    pytest = None  # type: ignore[assignment]

if __name__ == "__main__":  # run without pytest: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from gsnerf_ros.model import GSNeRF, GSNeRFConfig  # noqa: E402

if pytest is not None:
    pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(),
                                                        reason="needs a CUDA device")]


class _Skip(Exception):
    """A skipped test in the runner without pytest."""


def _need(module: str) -> None:
    """Skip unless ``module`` imports (pytest.importorskip, or its stand-in)."""
    if pytest is not None:
        pytest.importorskip(module)
        return
    try:
        __import__(module)
    except ImportError as e:
        raise _Skip(f"{module} not importable: {e}") from e


def _scene(model: GSNeRF, V: int, H: int, W: int, seed: int = 0):
    """``V`` source cameras on a short arc looking at a textured plane, and a target pose."""
    from gsnerf_ros.geometry import look_at

    g = torch.Generator().manual_seed(seed)
    up = torch.tensor([0.0, -1.0, 0.0])
    xs = torch.linspace(-0.4, 0.4, V + 1)
    c2w = torch.stack([look_at(torch.tensor([float(x), 0.0, 0.0]), torch.tensor([0.0, 0.0, 3.0]),
                               up) for x in xs])
    f = 0.9 * W
    K = torch.tensor([[f, 0.0, (W - 1) / 2], [0.0, f, (H - 1) / 2], [0.0, 0.0, 1.0]])
    images = torch.rand(V, 3, H, W, generator=g)
    dev = model.device
    with torch.no_grad():
        enc = model.encode_sources(images.to(dev), K.expand(V, 3, 3).to(dev), c2w[:V].to(dev),
                                   0.5, 6.0)
    return enc, K.to(dev), c2w[V].to(dev)


def test_device_resolution_gives_an_index_and_set_device_accepts_it():
    from gsnerf_ros.device import resolve_device

    dev = resolve_device("cuda")
    assert dev.type == "cuda" and dev.index is not None
    torch.cuda.set_device(dev)          # issue 11: failed with a bare 'cuda'


def test_matmul_attention_matches_sdpa_on_cuda():
    from gsnerf_ros.model.attention import ViewTransformer

    torch.manual_seed(0)
    vt = ViewTransformer(32, 4, 4).cuda().eval()
    x = torch.randn(4096, 9, 32, device="cuda")
    mask = torch.rand(4096, 9, device="cuda") > 0.3
    mask[:, 0] = True
    vt.set_kernel("eager")
    with torch.no_grad():
        for layer in vt.layers:
            layer.attention = "sdpa"
        a = vt(x, mask)
        for layer in vt.layers:
            layer.attention = "matmul"
        b = vt(x, mask)
    assert (a - b).abs().max() < 1e-4


def test_fused_kernel_matches_eager_on_cuda():
    _need("triton")
    from gsnerf_ros.model.attention import ViewTransformer

    torch.manual_seed(0)
    for d, heads, layers, T in ((32, 4, 4, 9), (32, 4, 4, 17), (64, 4, 2, 9), (16, 2, 1, 3)):
        vt = ViewTransformer(d, heads, layers).cuda().eval()
        with torch.no_grad():
            for p in vt.parameters():
                p.normal_(0.0, 0.3)
        x = torch.randn(5000, T, d, device="cuda")
        mask = torch.rand(5000, T, device="cuda") > 0.4
        mask[:, 0] = True
        with torch.no_grad():
            vt.set_kernel("eager")
            ref = vt(x, mask)
            vt.set_kernel("triton")
            for bp in (1, 2, 4):
                vt.fused_block_p = bp
                out = vt(x, mask)
                assert (out - ref).abs().max() < 1e-4, (d, T, bp)
            out16 = vt(x.bfloat16(), mask)
            assert (out16.float() - ref).abs().max() < 5e-2, (d, T)


def test_whole_render_fused_matches_eager_and_auto_picks_triton():
    _need("triton")
    torch.manual_seed(0)
    model = GSNeRF(GSNeRFConfig()).cuda().eval()
    enc, K, tgt = _scene(model, 8, 120, 160)
    with torch.no_grad():
        ref = model.set_kernel("eager").render(enc, K, tgt, 120, 160)
        from gsnerf_ros.model.fused_attention import use_fused
        x = torch.zeros(2, 9, 32, device="cuda")
        model.set_kernel("auto")
        assert use_fused(model.volume_renderer.transformer, x)
        out = model.render(enc, K, tgt, 120, 160)
    assert (out.rgb - ref.rgb).abs().max() < 1e-3
    assert (out.labels == ref.labels).float().mean() >= 0.999


def test_render_memory_stays_under_the_cap_at_640x480():
    from gsnerf_ros.model.memory import auto_chunk

    torch.manual_seed(0)
    model = GSNeRF(GSNeRFConfig()).cuda().eval()
    H, W = 480, 640
    enc, K, tgt = _scene(model, 8, H, W)
    cap_mb = 2048
    chunk = auto_chunk(model, len(enc), H * W, max_memory_mb=cap_mb)
    for kernel in ("eager", "auto"):
        model.set_kernel(kernel)
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        with torch.no_grad():
            model.render(enc, K, tgt, H, W, chunk=chunk)
        torch.cuda.synchronize()
        used_mb = (torch.cuda.max_memory_allocated() - base) / 2 ** 20
        print(f"kernel={kernel} chunk={chunk} render working memory {used_mb:.0f} MB "
              f"(cap {cap_mb} MB)")
        assert used_mb <= cap_mb, (kernel, used_mb)


def test_cuda_graphs_render_with_padded_chunks():
    """issue 12: --cuda-graphs crashed ('accessing tensor output of CUDAGraphs that has been
    overwritten'); with outputs copied per chunk and padded static chunks it must work."""
    torch.manual_seed(0)
    model = GSNeRF(GSNeRFConfig()).cuda().eval().set_kernel("eager")
    enc, K, tgt = _scene(model, 4, 60, 80)
    with torch.no_grad():
        ref = model.render(enc, K, tgt, 60, 80, chunk=1024)
        vr, sr = model.volume_renderer, model.semantic_renderer
        model.volume_renderer = torch.compile(vr, mode="reduce-overhead", dynamic=False)
        model.semantic_renderer = torch.compile(sr, mode="reduce-overhead", dynamic=False)
        try:
            for _ in range(3):          # record, then replay
                out = model.render(enc, K, tgt, 60, 80, chunk=1024, pad_chunks=True)
        finally:
            model.volume_renderer, model.semantic_renderer = vr, sr
    assert (out.rgb - ref.rgb).abs().max() < 1e-3
    assert (out.labels == ref.labels).float().mean() >= 0.999


def _run_without_pytest() -> int:
    """Run every test of this file in order; print one line each; exit status 1 on a failure."""
    import time
    import traceback

    if not torch.cuda.is_available():
        print("SKIP all: no CUDA device")
        return 0
    failed = 0
    for name, fn in [(k, v) for k, v in globals().items() if k.startswith("test_")]:
        t0 = time.perf_counter()
        try:
            fn()
            print(f"PASS {name} ({time.perf_counter() - t0:.1f} s)", flush=True)
        except Exception as e:  # noqa: BLE001 - report every test
            if isinstance(e, _Skip) or type(e).__name__ == "Skipped":
                print(f"SKIP {name}: {e}", flush=True)
                continue
            failed += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
            traceback.print_exc()
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(_run_without_pytest())
