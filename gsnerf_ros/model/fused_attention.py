"""Which view-transformer implementation runs, and the host side of the fused Triton kernel.

``kernel`` (``render.kernel`` / ``gsnerf-bench --kernel`` / :meth:`GSNeRF.set_kernel`):

- ``eager``: the PyTorch modules (SDPA on the CPU; explicit matmul attention on CUDA, see
  :mod:`.attention`);
- ``triton``: the fused kernel of :mod:`.triton_view_transformer` (one launch per transformer,
  tokens on chip through all layers); an explicit request that cannot run is an error;
- ``auto``: ``triton`` where it can run (CUDA tensors, Triton importable, no gradient needed,
  supported sizes), else ``eager``.

Triton is optional: it is imported lazily, so CPU-only installs work without it. Under
``TRITON_INTERPRET=1`` (set before ``triton`` is imported) the kernel also runs on CPU tensors,
which is how CI checks its numerics.
Forward only: training (tensors that need gradients) always takes the eager modules.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

if TYPE_CHECKING:
    from gsnerf_ros.model.attention import ViewTransformer

__all__ = ["KERNELS", "check_kernel", "triton_available", "interpreting", "fused_unsupported",
           "use_fused", "pack_view_transformer", "fused_view_transformer", "MAX_TOKENS"]

KERNELS = ("auto", "eager", "triton")
MAX_TOKENS = 32
"""Most tokens per sample (views + 1) the kernel takes: up to 31 source views."""


def check_kernel(kernel: str) -> str:
    """``kernel`` if it is one of :data:`KERNELS`, else ``ValueError``."""
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    return kernel


@functools.lru_cache(maxsize=1)
def triton_available() -> bool:
    """True when the ``triton`` package can be imported (without importing it)."""
    return importlib.util.find_spec("triton") is not None


def interpreting() -> bool:
    """True under Triton's CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def _pow2(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def fused_unsupported(vt: "ViewTransformer", x: Tensor) -> str | None:
    """Why the fused kernel cannot run ``vt`` on ``x`` [P, T, d]; None when it can."""
    if not triton_available():
        return "triton is not installed (pip install triton)"
    if not (x.is_cuda or (interpreting() and x.device.type == "cpu")):
        return f"tensors on {x.device} (the kernel needs CUDA, or TRITON_INTERPRET=1 on the CPU)"
    if torch.is_grad_enabled() and (x.requires_grad
                                    or any(p.requires_grad for p in vt.parameters())):
        return "gradients are needed (the kernel is forward-only; use torch.no_grad())"
    d = x.shape[-1]
    layer = vt.layers[0] if len(vt.layers) else None
    ff = layer.ff[0].out_features if layer is not None else d
    if not (_pow2(d) and 16 <= d <= 64 and _pow2(ff) and 16 <= ff <= 256):
        return f"d_model={d}, feed-forward {ff}: the kernel needs powers of two, 16 <= d <= 64"
    if x.shape[1] > MAX_TOKENS:
        return f"{x.shape[1]} tokens per sample (at most {MAX_TOKENS})"
    return None


def use_fused(vt: "ViewTransformer", x: Tensor) -> bool:
    """Whether ``vt.kernel`` selects the fused kernel for ``x``; ``RuntimeError`` when
    ``triton`` was asked for explicitly and cannot run."""
    if vt.kernel == "eager":
        return False
    why = fused_unsupported(vt, x)
    if why is None:
        return True
    if vt.kernel == "triton":
        raise RuntimeError(f"kernel=triton cannot run: {why}; use kernel=auto or eager")
    return False


def pack_view_transformer(vt: "ViewTransformer", device: torch.device,
                          mat_dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    """The kernel's packed parameters (``mats`` in ``mat_dtype``: bf16 halves what every
    program reads; fp32 ``vecs``; layout in the kernel module), cached on ``vt`` until a
    parameter changes (in place or by ``load_state_dict``)."""
    params = list(vt.parameters())
    key = (device, mat_dtype, tuple((p.data_ptr(), p._version) for p in params))
    cached = getattr(vt, "_fused_pack", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    mats: list[Tensor] = []
    vecs: list[Tensor] = []
    with torch.no_grad():
        for layer in vt.layers:
            d = layer.norm1.normalized_shape[0]
            wq, wk, wv = layer.qkv.weight.detach().float().split(d, 0)
            ff1, ff2 = layer.ff[0], layer.ff[2]
            mats += [w.t().contiguous().reshape(-1) for w in
                     (wq, wk, wv, layer.proj.weight.float(), ff1.weight.float(),
                      ff2.weight.float())]
            vecs += [t.detach().float().reshape(-1) for t in
                     (layer.norm1.weight, layer.norm1.bias, layer.norm2.weight, layer.norm2.bias,
                      ff2.bias, ff1.bias)]
        vecs += [vt.norm.weight.detach().float(), vt.norm.bias.detach().float()]
        packed = ((torch.cat(mats) if mats else torch.zeros(1)).to(device, mat_dtype),
                  torch.cat(vecs).to(device).contiguous())
    vt._fused_pack = (key, packed)
    return packed


def _kernel_module() -> Any:
    """The kernel module (imports ``triton``). ``TRITON_INTERPRET=1`` must be set before
    ``triton`` is first imported in the process (Triton decorates its own library then)."""
    return importlib.import_module("gsnerf_ros.model.triton_view_transformer")


def fused_view_transformer(vt: "ViewTransformer", x: Tensor, key_mask: Tensor,
                           block_p: int | None = None) -> Tensor:
    """Run the whole ``vt`` on ``x`` [P, T, d] with ``key_mask`` [P, T] bool in one launch.

    Returns [P, T, d] in ``x``'s dtype. bf16/fp16 input: bf16 matrix products with fp32
    accumulation; fp32 input: fp32 products (TF32 if torch allows it for matmuls).
    ``block_p``: samples per program (default ``vt.fused_block_p``; raised so a program holds
    >= 16 token rows).
    """
    import triton

    P, T, d = x.shape
    if key_mask.shape != (P, T):
        raise ValueError(f"key_mask must be [P, T] = {(P, T)}, got {tuple(key_mask.shape)}")
    x = x.contiguous()
    out = torch.empty(P, T, d, dtype=x.dtype, device=x.device)
    if P == 0:
        return out
    kmod = _kernel_module()
    TP = max(triton.next_power_of_2(T), 2)
    bp = max(int(block_p or vt.fused_block_p), -(-16 // TP))
    bp = triton.next_power_of_2(bp)
    layers = len(vt.layers)
    heads = vt.layers[0].heads if layers else 1
    F = vt.layers[0].ff[0].out_features if layers else d
    lowp = x.dtype in (torch.bfloat16, torch.float16)
    if lowp:
        mm = 2 if interpreting() else 1
    else:
        mm = 3 if x.is_cuda and torch.backends.cuda.matmul.allow_tf32 else 0
    mats, vecs = pack_view_transformer(vt, x.device, torch.bfloat16 if lowp else torch.float32)
    grid = (triton.cdiv(P, bp),)
    kmod.view_transformer_kernel[grid](
        x, key_mask.contiguous().to(torch.uint8), out, mats, vecs, P,
        float(vt.norm.eps), float((d // heads) ** -0.5),
        T=T, TP=TP, BP=bp, D=d, F=F, H=heads, L=layers, MM=mm)
    return out
