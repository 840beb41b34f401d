#!/usr/bin/env bash
# The model issue's comparison arms (docs/training/ARMS.md): six fine-tuning arms from the v1 weights, 40k
# image-steps each (2,500 steps of 16), one-cycle to 3e-4, the same seed; two at a time, one thread each. Then one
# table: ISIC 2017 validation and HAM10000 hold-out Dice with paired bootstrap intervals against the v1 model they
# started from, and the paired difference each arm was built to measure (B - A, C - B, ...).
# Resumable: rerun the script; a finished arm is skipped, an interrupted one continues from its last checkpoint.
# Channels-last layout: the same arithmetic, about 1.35x faster in bf16 on one AMX thread (docs/training/ARMS.md).
# Usage: scripts/training_arms.sh [SHARED_DATASETS_DIR]    (default ../shared/datasets)
set -euo pipefail
cd "$(dirname "$0")/.."
S=${1:-../shared/datasets}
PY=.venv/bin/python
# Every arm starts from v1, the model bundled until 2026-12-03 (commit bf9e9cd), not from whatever is bundled now.
V1=runs/v1.safetensors
mkdir -p runs
[ -f "$V1" ] || git show bf9e9cd:resources/models/lesionlens.safetensors > "$V1"
HAM="ham10000=$S/ham10000/images,$S/ham10000/masks"
COMMON=(--data "$S/isic2017" --preset cpu --init-weights "$V1"
  --schedule onecycle --learning-rate 3e-4 --max-steps 2500 --epoch-images 8000 --epochs 100
  --holdout-images "$S/ham10000/images" --holdout-masks "$S/ham10000/masks" --channels-last true --quiet)
declare -A ARMS=(
  [arm-a-isic-paper]="--scale-probability 0 --photometric-probability 0"
  [arm-b-isic-strong]=""
  [arm-c-mix50-strong]="--source $HAM,0.5"
  [arm-d-mixcount-strong]="--source $HAM"
  [arm-e-mix50-negatives]="--source $HAM,0.5 --source plain_skin=data/plain_skin/images,data/plain_skin/masks,0.1"
  # The capacity trade at equal training minutes: C's recipe at a larger input, which trains at 0.58x C's speed
  # (117 ms forward: capacity.md), so 0.6x C's image-steps (24k: 1,500 steps, 3 epochs of 8,000).
  [arm-f-mix50-192x240]="--source $HAM,0.5 --input-height 192 --input-width 240 --max-steps 1500"
)
arm() {  # NAME: train (or resume) one arm in the background, one thread, logging to runs/NAME.log
  local name=$1 dir=runs/$1
  if [ -f "$dir/last.pt" ]; then
    # shellcheck disable=SC2086
    OMP_NUM_THREADS=1 $PY -m trainer train --resume "$dir" --channels-last true --quiet >> "runs/$name.log" 2>&1 &
  else
    # shellcheck disable=SC2086
    OMP_NUM_THREADS=1 $PY -m trainer train "${COMMON[@]}" ${ARMS[$name]} --run-dir "$dir" > "runs/$name.log" 2>&1 &
  fi
}
# Arm E's negatives: plain-skin crops of the training images with empty masks (hold-out images never cut).
[ -d data/plain_skin/images ] || $PY -m trainer plain-skin --out data/plain_skin \
  --from "$S/isic2017/ISIC-2017_Training_Data" "$S/isic2017/ISIC-2017_Training_Part1_GroundTruth" \
  --from "$S/ham10000/images" "$S/ham10000/masks"
PAIRS=("arm-a-isic-paper arm-b-isic-strong" "arm-c-mix50-strong arm-d-mixcount-strong"
  "arm-e-mix50-negatives arm-f-mix50-192x240")
for pair in "${PAIRS[@]}"; do
  for name in $pair; do arm "$name"; done
  wait
done
$PY -m trainer arms runs/arm-a-isic-paper runs/arm-b-isic-strong runs/arm-c-mix50-strong runs/arm-d-mixcount-strong \
  runs/arm-e-mix50-negatives runs/arm-f-mix50-192x240 --reference "$V1" \
  --contrast arm-b-isic-strong:arm-a-isic-paper --contrast arm-c-mix50-strong:arm-b-isic-strong \
  --contrast arm-d-mixcount-strong:arm-b-isic-strong --contrast arm-d-mixcount-strong:arm-c-mix50-strong \
  --contrast arm-e-mix50-negatives:arm-c-mix50-strong --contrast arm-f-mix50-192x240:arm-c-mix50-strong \
  --isic "$S/isic2017" --ham "$S/ham10000" --json docs/training/arms.json --markdown docs/training/arms.md \
  --hardware "$(lscpu | sed -n 's/^Model name: *//p')$(grep -q amx_bf16 /proc/cpuinfo && echo ' (AMX)'), $(nproc) cores, CPU only"
