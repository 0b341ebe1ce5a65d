"""View-transformer implementations agree: SDPA, explicit matmul attention, and the fused
Triton kernel (run on the CPU by Triton's interpreter, ``TRITON_INTERPRET=1``).

Triton reads ``TRITON_INTERPRET`` when it is first imported, so the tests marked
``triton_interpret`` run in a child pytest with that variable set
(:func:`test_fused_kernel_under_the_interpreter`); in the parent session they are skipped.

Tolerances (outputs are LayerNorm-ed, so of unit scale): fp32 kernel against the eager fp32
module 1e-5 absolute (measured ~5e-7); bf16 kernel (bf16 products, fp32 accumulation) 0.05
absolute, against the eager module's bf16 autocast error of ~0.01-0.015 on the same inputs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gsnerf_ros.model.attention import ViewTransformer
from gsnerf_ros.model.fused_attention import fused_unsupported, use_fused

FP32_TOL = 1e-5
BF16_TOL = 5e-2


def _vt(d: int, heads: int, layers: int, seed: int = 0) -> ViewTransformer:
    torch.manual_seed(seed)
    vt = ViewTransformer(d, heads, layers).eval()
    with torch.no_grad():
        for p in vt.parameters():      # away from the LayerNorm identity init: a real test
            p.normal_(0.0, 0.3)
    return vt


def _inputs(P: int, T: int, d: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(P, T, d, generator=g)
    mask = torch.rand(P, T, generator=g) > 0.4
    mask[:, 0] = True                  # the global token is always kept
    return x, mask


def _eager(vt: ViewTransformer, x: torch.Tensor, mask: torch.Tensor, attention: str = "sdpa"):
    vt.set_kernel("eager")
    for layer in vt.layers:
        layer.attention = attention
    with torch.no_grad():
        return vt(x, mask)


def test_matmul_attention_matches_sdpa():
    vt = _vt(32, 4, 2)
    x, mask = _inputs(50, 9, 32)
    a, b = _eager(vt, x, mask, "sdpa"), _eager(vt, x, mask, "matmul")
    assert (a - b).abs().max() < 1e-5
    # and the masked keys are really ignored: changing a masked view's token changes nothing
    # in the rows of the other tokens
    x2 = x.clone()
    x2[~mask] += 10.0
    c = _eager(vt, x2, mask, "matmul")
    assert (c[mask] - b[mask]).abs().max() < 1e-5


def test_cpu_dispatch_stays_eager_and_explicit_triton_is_refused(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    vt = _vt(32, 4, 1)
    x, mask = _inputs(4, 9, 32)
    with torch.no_grad():
        assert not use_fused(vt, x)                    # auto on CPU tensors: eager
        vt.set_kernel("triton")
        with pytest.raises(RuntimeError, match="kernel=triton cannot run"):
            vt(x, mask)
    with pytest.raises(ValueError, match="kernel must be one of"):
        vt.set_kernel("cuda")


INTERPRETED = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


@pytest.fixture
def interpret():
    if not INTERPRETED:
        pytest.skip("runs in the child session of test_fused_kernel_under_the_interpreter")
    pytest.importorskip("triton")


def test_fused_kernel_under_the_interpreter():
    """Run this file's ``triton_interpret`` tests in a child with ``TRITON_INTERPRET=1``."""
    pytest.importorskip("triton")
    if INTERPRETED:
        pytest.skip("already the interpreted session")
    env = {**os.environ, "TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1"}
    root = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")])
    r = subprocess.run([sys.executable, "-m", "pytest", __file__, "-q", "-p", "no:cacheprovider",
                        "-m", "triton_interpret"], env=env, cwd=root, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert " passed" in r.stdout and "skipped" not in r.stdout.splitlines()[-1], r.stdout[-2000:]


@pytest.mark.triton_interpret
@pytest.mark.parametrize("d,heads,layers,T,P", [(32, 4, 4, 9, 5), (16, 2, 1, 3, 7),
                                                 (64, 4, 2, 17, 3)])
def test_fused_kernel_matches_eager_module(interpret, d, heads, layers, T, P):
    vt = _vt(d, heads, layers)
    x, mask = _inputs(P, T, d)
    ref = _eager(vt, x, mask)
    vt.set_kernel("triton")
    with torch.no_grad():
        out = vt(x, mask)
        out_bf16 = vt(x.bfloat16(), mask)
    assert out.dtype == torch.float32 and out_bf16.dtype == torch.bfloat16
    assert (out - ref).abs().max() < FP32_TOL
    assert (out_bf16.float() - ref).abs().max() < BF16_TOL


@pytest.mark.triton_interpret
def test_fused_kernel_block_sizes_and_ragged_last_block(interpret):
    vt = _vt(32, 4, 2)
    x, mask = _inputs(7, 9, 32)          # 7 samples: the last program is partly empty
    ref = _eager(vt, x, mask)
    vt.set_kernel("triton")
    for bp in (1, 2, 4):
        vt.fused_block_p = bp
        with torch.no_grad():
            assert (vt(x, mask) - ref).abs().max() < FP32_TOL, bp


@pytest.mark.triton_interpret
def test_fused_kernel_is_forward_only(interpret):
    vt = _vt(32, 4, 1)
    x, mask = _inputs(3, 9, 32)
    assert "gradients" in fused_unsupported(vt, x)     # grad enabled, parameters need grad
    vt.set_kernel("auto")
    ref = _eager(vt, x, mask)
    vt.set_kernel("auto")
    assert (vt(x, mask) - ref).abs().max() < 1e-5       # auto falls back to eager for training
    with torch.no_grad():
        assert fused_unsupported(vt, x) is None


@pytest.mark.triton_interpret
def test_whole_render_with_the_fused_kernel_matches_eager(interpret):
    from gsnerf_ros.model import GSNeRF, GSNeRFConfig

    torch.manual_seed(0)
    model = GSNeRF(GSNeRFConfig.tiny(4)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    V, H, W = 3, 12, 16
    K = torch.tensor([[12.0, 0, 7.5], [0, 12.0, 5.5], [0, 0, 1]])
    c2w = torch.eye(4).repeat(V + 1, 1, 1)
    c2w[:, 0, 3] = torch.linspace(-0.2, 0.2, V + 1)
    images = torch.rand(V, 3, H, W, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        enc = model.encode_sources(images, K.expand(V, 3, 3), c2w[:V], 0.5, 4.0)
        ref = model.set_kernel("eager").render(enc, K, c2w[V], H // 2, W // 2)
        model.set_kernel("triton")
        for vt in (model.volume_renderer.transformer, model.semantic_renderer.transformer):
            vt.fused_block_p = 16                          # fewer interpreted programs
        out = model.render(enc, K, c2w[V], H // 2, W // 2)
    assert (out.rgb - ref.rgb).abs().max() < 1e-4
    assert (out.depth - ref.depth).abs().max() < 1e-4
    assert torch.equal(out.labels, ref.labels)
