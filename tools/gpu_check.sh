#!/usr/bin/env bash
# The one GPU check (issue 12): CUDA tests, whole-view gsnerf-bench at 160x120 / 320x240 /
# 640x480 in fp32 and bf16 with bf16-vs-fp32 accuracy, and a short CUDA training run; each step
# in its own process with its own timeout; < 8 minutes on an H200.
# Runs on the bare device machine (python3 with torch + triton, no venv, no ROS):
#     bash tools/gpu_check.sh              # writes gpu_<device>_<date>.{json,md} into $OUT
#     bash tools/gpu_check.sh --smoke      # the same steps on the CPU at tiny sizes
#     bash tools/gpu_check.sh --dry-run    # print the commands
# Output folder: --out DIR, else $OUT, else docs/bench.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY="${PYTHON:-python3}"
exec "$PY" -m gsnerf_ros.bench.gpu_check "$@"   # bounds itself: --budget-s (450 s)
