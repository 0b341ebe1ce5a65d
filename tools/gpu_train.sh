#!/usr/bin/env bash
# One prepared GPU training run for a device session (issue 11 §4), under 10 minutes in all:
# procedural rooms rendered on the GPU, the paper-sized model (config/train_gpu.yaml) trained
# for TRAIN_SECONDS, then gsnerf-eval (with the reprojection baseline in the same run) on the
# held-out rooms of both kinds (test/: disjoint seeds; test_novel/: a setting never trained on,
# when gsnerf-synth writes it). Runs on the bare device machine: python3 with torch, no venv, no
# ROS. Everything lands in $OUT: the checkpoint (+ config), eval JSON/Markdown, panels, logs.
#   OUT=/tmp/out bash tools/gpu_train.sh            # TRAIN_SECONDS=300 SCENES=40 by default
# Each step has its own timeout, so one failure leaves the others' results.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
OUT=${OUT:-runs/gpu_train_out}
PY=${PYTHON:-python3}
DATA=${DATA:-/tmp/gsnerf_rooms320}
TRAIN_SECONDS=${TRAIN_SECONDS:-300}
SCENES=${SCENES:-40}
FRAMES=${FRAMES:-60}
HEIGHT=${HEIGHT:-240}
WIDTH=${WIDTH:-320}
DEVICE=${DEVICE:-cuda:0}
EXTRA=${EXTRA:-}      # more gsnerf-train key=value overrides (a CPU dry run: see docs/BENCHMARKS.md)
mkdir -p "$OUT"
: > "$OUT/steps.txt"

step() {  # step NAME SECONDS CMD...: run with a timeout, log to $OUT/NAME.log, record rc
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  echo "== $name (limit ${limit}s)"
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  echo "$name rc=$rc wall_s=$((SECONDS - t0))" | tee -a "$OUT/steps.txt"
  tail -3 "$OUT/$name.log"
  return 0
}

step env 30 "$PY" -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0)
  if torch.cuda.is_available() else 'no CUDA device')"
step synth 150 "$PY" -m gsnerf_ros.data.procedural.cli "$DATA" --split all --scenes "$SCENES" \
  --val-scenes 2 --test-scenes 4 --frames "$FRAMES" --height "$HEIGHT" --width "$WIDTH" --seed 0 \
  --device "$DEVICE"
step train $((TRAIN_SECONDS + 120)) "$PY" -m gsnerf_ros.train.cli --config config/train_gpu.yaml \
  run_dir="$OUT/run" data.train_root="$DATA/train" data.val_root="$DATA/val" device="$DEVICE" \
  data.height="$HEIGHT" data.width="$WIDTH" optim.time_limit_s="$TRAIN_SECONDS" $EXTRA
CKPT="$OUT/run/best.safetensors"
[[ -f $CKPT ]] || CKPT=$(ls "$OUT"/run/checkpoints/step_*.safetensors 2>/dev/null | tail -1)
for split in test test_novel; do
  [[ -d $DATA/$split && -n $CKPT ]] || continue
  step "eval_$split" 120 "$PY" -c \
    'import sys; from gsnerf_ros.train.cli import eval_main; sys.exit(eval_main(sys.argv[1:]))' \
    --checkpoint "$CKPT" --data "$DATA/$split" --json "$OUT/eval_$split.json" \
    --panels "$OUT/panels_$split" --panels-per-scene 1 --max-targets 3 --height "$HEIGHT" \
    --width "$WIDTH" --num-sources 8 --device "$DEVICE" --no-lpips
done
cp config/train_gpu.yaml "$OUT/" 2>/dev/null
echo "== done; results in $OUT"; cat "$OUT/steps.txt"
