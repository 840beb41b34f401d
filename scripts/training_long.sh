#!/usr/bin/env bash
# The model issue's long run (docs/training/LONG_RUN.md): arm C's recipe, which the comparison arms chose
# (docs/training/ARMS.md: ISIC 2017 + HAM10000 at a 50 % share, strong augmentation, 128x160), continued from v2
# (arm C's best epoch) for 200k image-steps (12,500 steps of 16, one-cycle to 3e-4), across as many sittings as it
# takes. Resumable: rerun the script and it continues from the last finished epoch (an unfinished epoch is lost).
# Pause it while benchmarking (pkill -STOP -f "trainer train"; -CONT to go on). When a sitting ends, publish its best
# epoch with scripts/publish_model.py runs/long-v3 if it beats the bundled model.
# Usage: [THREADS=2] scripts/training_long.sh [SHARED_DATASETS_DIR]    (default ../shared/datasets)
set -euo pipefail
cd "$(dirname "$0")/.."
S=${1:-../shared/datasets}
PY=.venv/bin/python
RUN=runs/long-v3
# The starting point, taken from git so that a later publish does not move it: the weights bundled at START_COMMIT.
START_COMMIT=a88efd8
START=runs/long-start.safetensors
THREADS=${THREADS:-2}
mkdir -p runs
[ -f "$START" ] || git show "$START_COMMIT:resources/models/lesionlens.safetensors" > "$START"
if [ -f "$RUN/last.pt" ]; then
  exec env OMP_NUM_THREADS="$THREADS" $PY -m trainer train --resume "$RUN" --channels-last true --quiet \
    >> "$RUN.log" 2>&1
fi
exec env OMP_NUM_THREADS="$THREADS" $PY -m trainer train --data "$S/isic2017" --preset cpu --init-weights "$START" \
  --source "ham10000=$S/ham10000/images,$S/ham10000/masks,0.5" \
  --schedule onecycle --learning-rate 3e-4 --max-steps 12500 --epoch-images 8000 --epochs 100 \
  --holdout-images "$S/ham10000/images" --holdout-masks "$S/ham10000/masks" --channels-last true --quiet \
  --run-dir "$RUN" > "$RUN.log" 2>&1
