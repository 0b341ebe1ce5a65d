"""What the numbers were measured on: device, library versions, CPU load."""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

import torch

from gsnerf_ros.device import load_averages

__all__ = ["describe_environment", "cpu_load"]


def cpu_load() -> list[float] | None:
    """1, 5 and 15 minute load averages, rounded (None where unavailable)."""
    averages = load_averages()
    return None if averages is None else [round(x, 2) for x in averages]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:  # pragma: no cover
        pass
    return platform.processor() or "unknown"


def describe_environment(device: torch.device) -> dict[str, Any]:
    """Hardware and software facts recorded beside every benchmark."""
    env: dict[str, Any] = {
        "device": str(device), "python": sys.version.split()[0], "torch": torch.__version__,
        "platform": platform.platform(), "cpu": _cpu_model(), "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "load_avg_start": cpu_load(),
    }
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        free, total = torch.cuda.mem_get_info(device)
        env.update({"gpu": p.name, "gpu_memory_gb": round(total / 2 ** 30, 1),
                    "gpu_free_gb_start": round(free / 2 ** 30, 1), "cuda": torch.version.cuda,
                    "cudnn": torch.backends.cudnn.version()})
    return env
