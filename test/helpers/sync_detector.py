"""A dispatch mode that records every operator which reads device data back to the host
(``.item()``/``float()``/``bool()`` of a tensor, ``nonzero``, boolean-mask indexing): what
stalls a GPU and breaks CUDA-graph capture."""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode

_ATEN = torch.ops.aten
_SYNC_OPS = {_ATEN._local_scalar_dense, _ATEN.nonzero, _ATEN.masked_select, _ATEN.is_nonzero,
             _ATEN.item}


class SyncDetector(TorchDispatchMode):
    """``with SyncDetector() as det: ...``; ``det.found`` lists the synchronising operators."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        if func.overloadpacket in _SYNC_OPS:
            self.found.append(str(func))
        elif func.overloadpacket is _ATEN.index and any(
                isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in (args[1] or [])):
            self.found.append("index with a boolean mask")
        return func(*args, **(kwargs or {}))
