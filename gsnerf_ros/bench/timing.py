"""Timing and memory primitives for the benchmarks.

Wall-clock timing with proper device synchronisation: on CUDA the work is bracketed by
``torch.cuda.synchronize`` (queued kernels finish before the clock is read); on CPU
``time.perf_counter`` around the call is exact because PyTorch CPU ops are synchronous.
Every measurement does ``warmup`` untimed runs first (allocator, autotuning, lazy init), then
``repeats`` timed runs, and reports the median and the inter-quartile range.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` after a reset (bytes allocated by
tensors during the measured call); on CPU the process's peak resident set size (``ru_maxrss``,
a high-water mark since the process started, which cannot be reset: it bounds the call's memory
from above and is labelled ``process_rss_peak``).
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import torch

__all__ = ["Stats", "synchronize", "measure", "MemoryProbe", "process_rss_peak_mb",
           "current_rss_mb", "loglog_slope"]


@dataclass
class Stats:
    """Repeated timings of one call, milliseconds."""

    median_ms: float
    iqr_ms: float
    """75th minus 25th percentile (spread)."""
    min_ms: float
    max_ms: float
    repeats: int
    warmup: int
    samples_ms: list[float] = field(default_factory=list)
    peak_mem_mb: float | None = None
    mem_kind: str | None = None
    """``cuda_max_allocated`` | ``process_rss_peak`` | None."""

    @classmethod
    def from_samples(cls, times: list[float], warmup: int = 0, peak_mem_mb: float | None = None,
                     mem_kind: str | None = None) -> "Stats":
        """Median, IQR (interpolated 25th/75th percentiles), min and max of ``times`` (ms)."""
        if not times:
            raise ValueError("Stats.from_samples needs at least one time")
        return cls(median_ms=statistics.median(times),
                   iqr_ms=_quantile(times, 0.75) - _quantile(times, 0.25),
                   min_ms=min(times), max_ms=max(times), repeats=len(times), warmup=warmup,
                   samples_ms=list(times), peak_mem_mb=peak_mem_mb, mem_kind=mem_kind)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["samples_ms"] = [round(x, 4) for x in self.samples_ms]
        for k in ("median_ms", "iqr_ms", "min_ms", "max_ms", "peak_mem_mb"):
            if d[k] is not None:
                d[k] = round(float(d[k]), 4)
        return d


def synchronize(device: torch.device | str) -> None:
    """Wait for all queued work on ``device`` (no-op on CPU, whose ops are synchronous)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    elif dev.type == "mps":  # pragma: no cover - not on this machine
        torch.mps.synchronize()


def _quantile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    if len(s) == 1:
        return s[0]
    pos = q * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def process_rss_peak_mb() -> float | None:
    """Peak resident set size of this process in MiB (None where ``resource`` is missing)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def current_rss_mb() -> float | None:
    """Current resident set size in MiB (psutil when available, else /proc)."""
    try:
        import psutil

        return psutil.Process(os.getpid()).memory_info().rss / 2 ** 20
    except ImportError:  # pragma: no cover
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
        except OSError:
            return None


class MemoryProbe:
    """Peak memory of the code run between ``start()`` and ``stop()`` on ``device``."""

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)

    @property
    def kind(self) -> str:
        return "cuda_max_allocated" if self.device.type == "cuda" else "process_rss_peak"

    def start(self) -> None:
        if self.device.type == "cuda":
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)

    def stop(self) -> float | None:
        """Peak in MiB."""
        if self.device.type == "cuda":
            synchronize(self.device)
            return torch.cuda.max_memory_allocated(self.device) / 2 ** 20
        return process_rss_peak_mb()


def measure(fn: Callable[[], Any], device: torch.device | str, repeats: int = 5,
            warmup: int = 1, memory: bool = True) -> Stats:
    """Time ``fn()`` on ``device``: ``warmup`` untimed calls, then ``repeats`` timed ones.

    Each timed call is bracketed by device synchronisation, so asynchronous CUDA kernels are
    counted in full. Returns :class:`Stats` (median, IQR, min, max in ms; peak memory in MiB
    over the timed calls).
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats}, {warmup}")
    dev = torch.device(device)
    for _ in range(warmup):
        fn()
    synchronize(dev)
    gc.collect()
    probe = MemoryProbe(dev)
    if memory:
        probe.start()
    times: list[float] = []
    for _ in range(repeats):
        synchronize(dev)
        t0 = time.perf_counter()
        fn()
        synchronize(dev)
        times.append((time.perf_counter() - t0) * 1e3)
    peak = probe.stop() if memory else None
    return Stats.from_samples(times, warmup, peak, probe.kind if memory else None)


def loglog_slope(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of log(y) against log(x) (the growth exponent); None if < 2 points."""
    import math

    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x > 0 and y and y > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    if sxx == 0:
        return None
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx
