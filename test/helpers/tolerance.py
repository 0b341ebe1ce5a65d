"""Tolerances for comparing two computations of the same value that sum in different orders.

Batched against one-at-a-time convolutions, chunked against whole-view renders, 1 against 2
threads, oneDNN against native kernels and one CPU's vector width against another's all compute
the same sums of products in different orders. Reordering a float sum of n terms moves it by
at most about ``n * eps * sum(|terms|)``; the terms of a layer's output are bounded by the
output tensor's own scale, so the tolerance here is absolute, ``fan_in * eps * max|expected|``,
and the same for every element (a relative tolerance per element fails on the small elements
of a tensor whose terms were large, which is what a fresh clone on an Intel Xeon hit).

``fan_in`` is the number of products the deepest reduction behind the value sums (e.g. a
3x3x3 convolution over 8 channels: 216). A mix-up of views, planes or rays moves a value by the
order of the tensor's scale, far beyond ``fan_in * eps`` of it, so these comparisons still fail
on a real bug.
"""

from __future__ import annotations

import torch

__all__ = ["reordered_atol", "assert_close_reordered"]


def reordered_atol(expected: torch.Tensor, fan_in: int) -> float:
    """``fan_in * eps(dtype) * max|expected|``: the rounding bound of a reordered sum."""
    if not expected.is_floating_point():
        return 0.0
    scale = float(expected.detach().abs().max()) if expected.numel() else 0.0
    return fan_in * torch.finfo(expected.dtype).eps * max(scale, torch.finfo(expected.dtype).tiny)


def assert_close_reordered(actual: torch.Tensor, expected: torch.Tensor, fan_in: int,
                           msg: str | None = None) -> None:
    """Assert ``actual`` equals ``expected`` up to the rounding of sums of ``fan_in`` products
    taken in another order (see the module docstring). Shapes and dtypes must match exactly."""
    torch.testing.assert_close(actual, expected, rtol=0, atol=reordered_atol(expected, fan_in),
                               msg=msg)
