"""Training data loading: one sample per step through a ``torch.utils.data.DataLoader``.

The item of step ``s`` is a pure function of (seed, s, rank): :class:`StepSampler` draws its
index from a generator seeded by :func:`step_seed`, and :class:`GSNeRFDataset` items are
deterministic given their index. So the samples do not depend on ``data.num_workers``, and a
resumed run (sampler starting at the resume step) reads exactly what the uninterrupted run read.

Workers (``data.num_workers`` > 0) decode and resize frames in parallel while the device trains;
they are persistent (their per-worker frame caches survive validation pauses) and seeded
(:func:`seed_worker`) so any library randomness inside them is reproducible too. Pinned host
memory is used when training on CUDA, so the copy to the GPU can be asynchronous.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

__all__ = ["step_seed", "step_item_index", "StepSampler", "seed_worker", "make_train_loader",
           "to_device"]


def step_seed(seed: int, step: int, rank: int) -> int:
    """The seed of training step ``step`` on ``rank`` (the basis of bit-exact resume)."""
    return (seed * 1_000_003 + step * 7919 + rank * 104_729) % (2 ** 31 - 1)


def step_item_index(seed: int, step: int, rank: int, n_items: int) -> int:
    """Dataset index trained on at ``step`` by ``rank``: uniform over ``n_items``."""
    g = torch.Generator().manual_seed(step_seed(seed, step, rank))
    return int(torch.randint(0, n_items, (1,), generator=g))


class StepSampler(Sampler[int]):
    """Yields the dataset index of every step in ``[start, stop)`` (one item per step)."""

    def __init__(self, n_items: int, seed: int, rank: int, start: int, stop: int) -> None:
        if n_items < 1:
            raise ValueError("StepSampler needs a non-empty dataset")
        if not 0 <= start <= stop:
            raise ValueError(f"need 0 <= start <= stop, got {start}, {stop}")
        self.n_items, self.seed, self.rank = n_items, seed, rank
        self.start, self.stop = start, stop

    def __iter__(self) -> Iterator[int]:
        for step in range(self.start, self.stop):
            yield step_item_index(self.seed, step, self.rank, self.n_items)

    def __len__(self) -> int:
        return self.stop - self.start


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn``: seed numpy and ``random`` from the worker's torch seed (which the
    DataLoader derives from its seeded generator and the worker id)."""
    s = torch.initial_seed() % (2 ** 32)
    np.random.seed(s)
    random.seed(s)


def make_train_loader(dataset: Dataset, seed: int, rank: int, start: int, stop: int,
                      num_workers: int, device: torch.device,
                      prefetch_factor: int = 4) -> DataLoader:
    """DataLoader over :class:`StepSampler` (no batching: one sample dict per step).

    ``num_workers`` 0 loads in the training process; > 0 uses persistent, seeded workers that
    keep ``prefetch_factor`` samples each in flight. Memory is pinned when ``device`` is CUDA.
    """
    if num_workers < 0:
        raise ValueError(f"data.num_workers must be >= 0, got {num_workers}")
    sampler = StepSampler(len(dataset), seed, rank, start, stop)  # type: ignore[arg-type]
    kw: dict[str, Any] = {}
    if num_workers > 0:
        kw = {"persistent_workers": True, "prefetch_factor": prefetch_factor,
              "worker_init_fn": seed_worker}
    return DataLoader(dataset, batch_size=None, sampler=sampler, num_workers=num_workers,
                      pin_memory=device.type == "cuda",
                      generator=torch.Generator().manual_seed(step_seed(seed, -2, rank)), **kw)


def to_device(sample: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Tensors of a sample dict moved to ``device`` (asynchronously from pinned memory)."""
    return {k: (v.to(device, non_blocking=v.is_pinned()) if isinstance(v, torch.Tensor) else v)
            for k, v in sample.items()}
