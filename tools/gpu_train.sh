#!/usr/bin/env bash
# One prepared GPU training session (issue 11 §4), under 10 minutes in all, written to $OUT:
#  1. procedural rooms rendered on the GPU: training and validation rooms, and the held-out
#     rooms of docs/RESULTS.md (test/ and test_novel/, seeds 0-5 at 40 frames: the rooms of
#     runs/data/heldout320 and heldout320b, made by the same commands) while training runs;
#  2. the RECIPES, trained side by side on the one GPU for TRAIN_SECONDS each, the learning rate
#     decaying by the clock (optim.anneal_by_time):
#       finetune      config/train_gpu_finetune.yaml: the shipped CPU model continued at 160x120
#       finetune80    the same at the CPU recipe's 80x60 (more steps of what the CPU trained)
#       paper         config/train_gpu.yaml: the paper-sized model from scratch at 320x240
#     and, when named in RECIPES, finetune_p32: finetune with 32 stage-0 planes, and
#     renderers: the CPU recipe's stage 7 (config/recipes/cpu.yaml --stage stage7, the colour
#     and semantic renderers alone, encoder and cost volume frozen; written out as a plain
#     config, $WORK/cpu_stage7.yaml, so it runs in its own folder) continued from the shipped
#     model on 320x240 rays, the size every evaluation renders, the geometry still at 80x60
#  3. gsnerf-eval of each result and of the shipped model on the same held-out rooms, with the
#     reprojection baseline in the same run, from RGB and from RGB-D (--sensor-depth), plus the
#     depth probe (cost-volume depth); summary.md and summary.json compare them all;
#  4. packs it into the few files a device hands back ($OUT: summary.md/.json, steps.txt,
#     checkpoints.tar with each run's weights and sidecar, results.tar.gz with JSONs, logs and
#     as many panels as fit), the whole of it staying in $WORK.
# Runs on the bare device machine: python3 with torch, no venv, no ROS.
#   OUT=/tmp/out bash tools/gpu_train.sh
# Planned time (the GPU's rendering and step rates are not yet measured): rooms <= 150 s + 60 s,
# training 240 s + start-up and the final validation (the held-out rooms and the shipped model's
# evaluation meanwhile), then the trained models' evaluations, <= 150 s a step, in parallel:
# about 9 minutes; run it with a 600 s timeout.
# Every knob is an environment variable (below); each step has its own timeout, so one failure
# leaves the others' results. A CPU dry run at tiny sizes (what test/train/test_gpu_train_script.py
# runs): DEVICE=cpu HEIGHT=30 WIDTH=40 SCENES=2 FRAMES=10 TEST_SCENES=1 TEST_FRAMES=10
# TRAIN_SECONDS=8 TARGETS=1 EXTRA="data.height=30 data.width=40 optim.rays_per_step=32" ...
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
OUT=${OUT:-runs/gpu_train_out}   # what comes back: the few files of gsnerf_ros.train.device_outputs
WORK=${WORK:-/tmp/gsnerf_gpu_train_$(date +%Y%m%d_%H%M%S)}   # the rest: runs, logs, JSONs, panels
PY=${PYTHON:-python3}
DATA=${DATA:-/tmp/gsnerf_rooms320}
RECIPES=${RECIPES:-finetune finetune80 paper}
TRAIN_SECONDS=${TRAIN_SECONDS:-240}
SCENES=${SCENES:-24}
FRAMES=${FRAMES:-60}
TEST_SCENES=${TEST_SCENES:-6}
TEST_FRAMES=${TEST_FRAMES:-40}
HEIGHT=${HEIGHT:-240}
WIDTH=${WIDTH:-320}
TARGETS=${TARGETS:-2}
SYNTH_SECONDS=${SYNTH_SECONDS:-150}
EVAL_SECONDS=${EVAL_SECONDS:-150}
DEVICE=${DEVICE:-cuda:0}
SHIPPED=${SHIPPED:-models/gsnerf_cpu.safetensors}
EXTRA=${EXTRA:-}      # more gsnerf-train key=value overrides, for every recipe
FLOOR_Z=${FLOOR_Z:-}  # e.g. 0: every eval and probe bounds depth by that floor (--floor-z,
                      # docs/METHOD.md §10); empty: off, as the issue's target tables
FLOOR=(); [[ -n $FLOOR_Z ]] && FLOOR=(--floor-z "$FLOOR_Z")
COLOUR_VIEWS=${COLOUR_VIEWS:-2}  # every eval blends colour from this many nearest sources (the
                      # shipped sidecar's renderer.colour_views), so the trained models and the
                      # shipped one render alike; 0: every source (docs/METHOD.md §11)
mkdir -p "$WORK" "$OUT"
: > "$WORK/steps.txt"

step() {  # step NAME SECONDS CMD...: run with a timeout, log to $WORK/NAME.log, record rc
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  echo "== $name (limit ${limit}s)"
  timeout "$limit" "$@" > "$WORK/$name.log" 2>&1
  local rc=$?
  echo "$name rc=$rc wall_s=$((SECONDS - t0))" | tee -a "$WORK/steps.txt"
  tail -2 "$WORK/$name.log"
  return 0
}

recipe_args() {  # recipe_args NAME: the gsnerf-train arguments of a recipe
  case $1 in
    finetune) echo "--config config/train_gpu_finetune.yaml" ;;
    finetune80) echo "--config config/train_gpu_finetune.yaml data.height=60 data.width=80 model.geometry_max_pixels=4800 optim.rays_per_step=1024" ;;
    finetune_p32) echo "--config config/train_gpu_finetune.yaml model.cost_volume.num_planes=[32,8,8]" ;;
    renderers) echo "--config $WORK/cpu_stage7.yaml init_checkpoint=models/gsnerf_cpu data.height=240 data.width=320 data.num_workers=3 optim.steps=20000 optim.warmup_steps=50 optim.rays_per_step=2048 optim.anneal_by_time=true log.val_every=400 log.ckpt_every=400 log.progress=false" ;;
    paper) echo "--config config/train_gpu.yaml optim.anneal_by_time=true" ;;
    *) return 1 ;;
  esac
}
for r in $RECIPES; do
  recipe_args "$r" > /dev/null || {
    echo "unknown recipe $r (finetune | finetune80 | finetune_p32 | renderers | paper)"; exit 2; }
done

if [[ " $RECIPES " == *" renderers "* ]]; then   # the CPU recipe's stage 7 as a plain config
  "$PY" -m gsnerf_ros.train.cli --config config/recipes/cpu.yaml --stage stage7 --print-config \
    > "$WORK/cpu_stage7.yaml" || { echo "config/recipes/cpu.yaml has no stage7"; exit 2; }
fi

SYNTH=("$PY" -m gsnerf_ros.data.procedural.cli --height "$HEIGHT" --width "$WIDTH" --seed 0
       --device "$DEVICE")
EVAL=("$PY" -c 'import sys; from gsnerf_ros.train.cli import eval_main; sys.exit(eval_main(sys.argv[1:]))')

step env 60 "$PY" -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0)
  if torch.cuda.is_available() else 'no CUDA device')"
step synth_train "$SYNTH_SECONDS" "${SYNTH[@]}" "$DATA/train" --split train --scenes "$SCENES" \
  --frames "$FRAMES"
step synth_val 60 "${SYNTH[@]}" "$DATA/val" --split val --scenes 2 --frames "$FRAMES"

evaluate() {  # evaluate NAME CKPT: RGB and RGB-D eval and the depth probe on both splits
  local name=$1 ckpt=$2 split sd tag
  for split in test test_novel; do
    [[ -d $DATA/$split ]] || continue
    for sd in "" --sensor-depth; do
      tag=${sd:+_rgbd}
      step "eval_${name}_${split}${tag:-_rgb}" "$EVAL_SECONDS" "${EVAL[@]}" \
        --checkpoint "$ckpt" --data "$DATA/$split" --json "$WORK/eval_${name}_${split}${tag:-_rgb}.json" \
        --panels "$WORK/panels_${name}_${split}${tag:-_rgb}" --panels-per-scene 1 \
        --max-targets "$TARGETS" --height "$HEIGHT" --width "$WIDTH" --num-sources 8 \
        --device "$DEVICE" --no-lpips --colour-views "$COLOUR_VIEWS" $sd ${FLOOR[@]+"${FLOOR[@]}"}
    done
    step "probe_${name}_${split}" "$EVAL_SECONDS" "$PY" -m gsnerf_ros.train.depth_probe \
      --data "$DATA/$split" --checkpoint "$ckpt" --height "$HEIGHT" --width "$WIDTH" \
      --max-targets 1 --device "$DEVICE" --json "$WORK/probe_${name}_${split}.json" ${FLOOR[@]+"${FLOOR[@]}"}
  done
}
# the held-out rooms, and the shipped model's results on them, while the recipes train
( for split in test test_novel; do
    step "synth_$split" "$SYNTH_SECONDS" "${SYNTH[@]}" "$DATA/$split" --split "$split" \
      --scenes "$TEST_SCENES" --frames "$TEST_FRAMES"
  done
  evaluate shipped "$SHIPPED" ) &
for r in $RECIPES; do
  # shellcheck disable=SC2046  # recipe_args is split into words on purpose
  step "train_$r" $((TRAIN_SECONDS + 150)) "$PY" -m gsnerf_ros.train.cli $(recipe_args "$r") \
    run_dir="$WORK/$r" data.train_root="$DATA/train" data.val_root="$DATA/val" device="$DEVICE" \
    optim.time_limit_s="$TRAIN_SECONDS" $EXTRA &
done
wait

for r in $RECIPES; do
  # the weights checkpoints.tar will hold: best.safetensors, else the last step's
  ckpt=$("$PY" -m gsnerf_ros.train.device_outputs "$WORK/$r" --weights 2>/dev/null)
  [[ -n $ckpt ]] && evaluate "$r" "$ckpt" &
done
wait
cp config/train_gpu.yaml config/train_gpu_finetune.yaml "$WORK/" 2>/dev/null
"$PY" -m gsnerf_ros.train.eval_summary "$WORK" --json "$WORK/summary.json" > "$WORK/summary.md"
cat "$WORK/summary.md" "$WORK/steps.txt"
# a device hands back at most 8 files of 16 MiB: summary, steps, checkpoints.tar, results.tar.gz
"$PY" -m gsnerf_ros.train.device_outputs "$WORK" "$OUT"
echo "== done; results in $OUT (all of them in $WORK)"
