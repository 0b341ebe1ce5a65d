"""Triton kernel: the whole :class:`~gsnerf_ros.model.attention.ViewTransformer` per sample.

Imported only by :mod:`gsnerf_ros.model.fused_attention` when Triton is installed (it imports
``triton`` at the top); nothing else in the package needs Triton.

One program takes ``BP`` samples of ``T`` tokens (padded to ``TP``, a power of two), i.e. a tile
of ``R = BP * TP`` token rows by ``D`` channels, and keeps it in registers through all ``L``
layers: LayerNorm, QKV, masked multi-head attention, output projection, LayerNorm, ReLU MLP, and
the final LayerNorm. Only the input tokens are read from and the output tokens written to global
memory. Attention runs on the tile as one [R, R] score matrix with a block-diagonal mask (a row
attends only to the keys of its own sample that its key mask keeps); a head's scores come from
the query with the other heads' channels zeroed, so every ``tl.dot`` has K >= 16.

Matrix products: ``MM`` 0 = fp32 (IEEE), 1 = bf16 operands with fp32 accumulation (the GPU
path), 2 = bf16-rounded operands multiplied in fp32 (the same rounding for Triton's CPU
interpreter, whose bf16 ``dot`` is not usable), 3 = TF32 tensor cores for fp32 input (only
when ``torch.backends.cuda.matmul.allow_tf32`` is set, as for torch's own matmuls).
LayerNorm, softmax and the residual stream are fp32 throughout.

Packed parameters (:func:`gsnerf_ros.model.fused_attention.pack_view_transformer`):
``mats`` (fp32, or bf16 for ``MM`` 1 and 2), per layer ``Wq^T, Wk^T, Wv^T, Wo^T`` [D, D] then ``W1^T`` [D, F], ``W2^T`` [F, D];
``vecs`` fp32, per layer ``ln1_w, ln1_b, ln2_w, ln2_b, b2`` [D] and ``b1`` [F], then the final
``ln_w, ln_b`` [D].
"""

from __future__ import annotations

import triton
import triton.language as tl

__all__ = ["view_transformer_kernel"]


@triton.jit
def _mm(a, b, MM: tl.constexpr):
    if MM == 0:
        return tl.dot(a, b, input_precision="ieee")
    elif MM == 1:
        return tl.dot(a.to(tl.bfloat16), b.to(tl.bfloat16), out_dtype=tl.float32)
    elif MM == 3:
        return tl.dot(a, b, input_precision="tf32")
    else:
        return tl.dot(a.to(tl.bfloat16).to(tl.float32), b.to(tl.bfloat16).to(tl.float32),
                      input_precision="ieee")


@triton.jit
def _layer_norm(x, w_ptr, b_ptr, cols, D: tl.constexpr, eps):
    mean = tl.sum(x, 1) / D
    xc = x - mean[:, None]
    var = tl.sum(xc * xc, 1) / D
    w = tl.load(w_ptr + cols)
    b = tl.load(b_ptr + cols)
    return xc * tl.rsqrt(var + eps)[:, None] * w[None, :] + b[None, :]


@triton.jit
def _load_mat(ptr, K: tl.constexpr, N: tl.constexpr):
    k = tl.arange(0, K)
    n = tl.arange(0, N)
    return tl.load(ptr + k[:, None] * N + n[None, :]).to(tl.float32)


@triton.jit
def view_transformer_kernel(x_ptr, mask_ptr, out_ptr, mats_ptr, vecs_ptr, P, eps, scale,
                            T: tl.constexpr, TP: tl.constexpr, BP: tl.constexpr,
                            D: tl.constexpr, F: tl.constexpr, H: tl.constexpr,
                            L: tl.constexpr, MM: tl.constexpr):
    """``x`` [P, T, D] tokens (any float dtype), ``mask`` [P, T] uint8 (1 = may be attended),
    ``out`` [P, T, D] (dtype of ``out``). Grid: ``cdiv(P, BP)`` programs."""
    R: tl.constexpr = BP * TP
    DH: tl.constexpr = D // H
    pid = tl.program_id(0)
    rows = tl.arange(0, R)
    cols = tl.arange(0, D)
    sample = pid * BP + rows // TP                       # [R] sample of each row
    tok = rows % TP                                      # [R] token index inside its sample
    row_ok = (sample < P) & (tok < T)
    offs = (sample.to(tl.int64) * T + tok)[:, None] * D + cols[None, :]
    x = tl.load(x_ptr + offs, mask=row_ok[:, None], other=0.0).to(tl.float32)

    # keys a row may attend: same sample, a real token, kept by the key mask
    key_keep = tl.load(mask_ptr + sample.to(tl.int64) * T + tok, mask=row_ok, other=0) != 0
    allowed = ((sample[:, None] == sample[None, :]) & key_keep[None, :])     # [R, R]
    head_of_col = cols // DH

    for layer in tl.static_range(L):
        mbase = mats_ptr + layer * (4 * D * D + 2 * D * F)
        vbase = vecs_ptr + layer * (5 * D + F)
        h = _layer_norm(x, vbase, vbase + D, cols, D, eps)
        q = _mm(h, _load_mat(mbase, D, D), MM) * scale
        k = _mm(h, _load_mat(mbase + D * D, D, D), MM)
        v = _mm(h, _load_mat(mbase + 2 * D * D, D, D), MM)
        att = tl.zeros((R, D), dtype=tl.float32)
        for hh in tl.static_range(H):
            in_head = (head_of_col == hh)[None, :]
            s = _mm(tl.where(in_head, q, 0.0), tl.trans(k), MM)              # [R, R]
            s = tl.where(allowed, s, -1.0e30)
            s = tl.exp(s - tl.max(s, 1)[:, None])
            s = s / tl.sum(s, 1)[:, None]
            att += _mm(s, tl.where(in_head, v, 0.0), MM)
        x = x + _mm(att, _load_mat(mbase + 3 * D * D, D, D), MM)
        h = _layer_norm(x, vbase + 2 * D, vbase + 3 * D, cols, D, eps)
        b1 = tl.load(vbase + 5 * D + tl.arange(0, F))
        f = tl.maximum(_mm(h, _load_mat(mbase + 4 * D * D, D, F), MM) + b1[None, :], 0.0)
        b2 = tl.load(vbase + 4 * D + cols)
        x = x + _mm(f, _load_mat(mbase + 4 * D * D + D * F, F, D), MM) + b2[None, :]

    fin = vecs_ptr + L * (5 * D + F)
    x = _layer_norm(x, fin, fin + D, cols, D, eps)
    tl.store(out_ptr + offs, x.to(out_ptr.dtype.element_ty), mask=row_ok[:, None])
