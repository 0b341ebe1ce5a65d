"""Benchmarks (``gsnerf-bench``): per-stage timings, same-run sampling-mode comparison,
resolution / samples / views sweeps, accuracy checks, node round trips; JSON and PNG output.

Timing primitives are in :mod:`.timing`; the benchmark itself in :mod:`.runner`; the CLI in
:mod:`.cli`. Importing this package does not import ROS.
"""

from gsnerf_ros.bench.runner import ALL_MODES, SCHEMA, BenchConfig, run_benchmark
from gsnerf_ros.bench.timing import Stats, loglog_slope, measure

__all__ = ["BenchConfig", "run_benchmark", "SCHEMA", "ALL_MODES", "Stats", "measure",
           "loglog_slope"]
