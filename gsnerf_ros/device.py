"""Device names to ``torch.device``: the one place that parses ``auto``/``cpu``/``cuda``/``mps``.

Contract of :func:`resolve_device` (training, evaluation, benchmarks — strict):

- ``auto``: ``cuda:<LOCAL_RANK>`` (0 without torchrun) when CUDA is available, else ``cpu``;
- ``cpu``;
- ``cuda``: always returned **with an index**, ``cuda:<LOCAL_RANK>`` under torchrun, else the
  current CUDA device (``torch.cuda.set_device`` and DDP need the index);
- ``cuda:N``: checked against ``torch.cuda.device_count()``;
- ``mps``: Apple GPUs;
- anything else (``gpu``, ``cuda:x``, ``tpu``): :class:`DeviceError` naming the accepted forms;
- a device that is not available: :class:`DeviceUnavailableError`, never a silent CPU run.

:func:`cpu_thread_warning` tells when a CPU run asks for more torch threads than the machine has
idle cores.

:func:`device_or_cpu` is the only CPU fallback, for callers that ask for one (the ROS node: a
robot without its GPU still answers, slowly); it returns the reason as text for the log.
"""

from __future__ import annotations

import os
import re

import torch

__all__ = ["DeviceError", "DeviceUnavailableError", "resolve_device", "device_or_cpu",
           "cpu_thread_warning", "load_averages"]

_FORM = re.compile(r"^(auto|cpu|mps|cuda)(?::(\d+))?$")
ACCEPTED = "auto, cpu, cuda, cuda:N or mps"


class DeviceError(ValueError):
    """A device string that names no device this package can use."""


class DeviceUnavailableError(DeviceError):
    """A well-formed device that this machine does not have (no CUDA, index out of range)."""


def _local_rank() -> int | None:
    v = os.environ.get("LOCAL_RANK")
    return int(v) if v is not None and v.strip().isdigit() else None


def resolve_device(name: str | torch.device) -> torch.device:
    """Strictly resolve a device name (see the module docstring). Returns a ``torch.device``
    whose CUDA form always carries an index; raises :class:`DeviceError` /
    :class:`DeviceUnavailableError` with the accepted forms or the reason."""
    text = str(name).strip().lower()
    m = _FORM.match(text)
    if m is None or (m.group(2) is not None and m.group(1) in ("auto", "cpu", "mps")):
        raise DeviceError(f"device must be one of {ACCEPTED}; got {str(name)!r}")
    kind, index = m.group(1), m.group(2)
    if kind == "cpu":
        return torch.device("cpu")
    if kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise DeviceUnavailableError(f"device {str(name)!r} requested but MPS is not "
                                         "available on this machine; use device=cpu")
        return torch.device("mps")
    if not torch.cuda.is_available():
        if kind == "auto":
            return torch.device("cpu")
        raise DeviceUnavailableError(f"device {str(name)!r} requested but CUDA is not available "
                                     "(no GPU or a CPU-only torch build); use device=cpu")
    count = torch.cuda.device_count()
    if index is not None:
        i = int(index)
    else:
        rank = _local_rank()
        i = rank if rank is not None else (0 if kind == "auto" else torch.cuda.current_device())
    if not 0 <= i < count:
        raise DeviceUnavailableError(f"device {str(name)!r} resolves to cuda:{i} but this machine "
                                     f"has {count} CUDA device(s) (cuda:0..cuda:{count - 1})")
    return torch.device("cuda", i)


def device_or_cpu(name: str | torch.device) -> tuple[torch.device, str | None]:
    """:func:`resolve_device`, or the CPU with a warning text when the device is unavailable.

    Malformed names still raise :class:`DeviceError` (a typo is not a missing GPU)."""
    try:
        return resolve_device(name), None
    except DeviceUnavailableError as exc:
        return torch.device("cpu"), f"{exc}; falling back to the CPU (renders will be slow)"


def load_averages() -> tuple[float, float, float] | None:
    """The 1, 5 and 15 minute load averages (runnable processes), or None where unavailable."""
    try:
        return os.getloadavg()
    except (AttributeError, OSError):  # pragma: no cover
        return None


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def cpu_thread_warning(threads: int, load: float | None = None,
                       cores: int | None = None) -> str | None:
    """A warning text when ``threads`` torch threads would oversubscribe the CPU, else None.

    ``load``: runnable processes (default: the 1-minute load average); ``cores``: usable cores
    (default: this process's affinity). OpenMP threads that share their cores with other busy
    processes wait on each other at every parallel region: on the 2-core CI machine a training
    step with 2 threads beside another job ran 20x slower than with 1 (141 against 6 s).
    """
    if threads <= 1:
        return None
    if load is None:
        averages = load_averages()
        if averages is None:
            return None
        load = averages[0]
    cores = _usable_cores() if cores is None else cores
    if load + threads <= cores + 0.5:
        return None
    return (f"threads={threads} on {cores} core(s) with a load of {load:.1f} already running: "
            f"OpenMP threads that share busy cores can run many times slower (2 threads beside "
            f"another job were 20x slower on a 2-core machine); use threads=1 while the CPU is "
            f"shared, or stop the other jobs")
