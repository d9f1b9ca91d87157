#!/usr/bin/env bash
# make demo (after `make build`): the offline loop on synthetic data.
#   1. invad-datagen writes data/demo (4 categories, MVTec AD layout) unless present;
#   2. invad-train trains one unified model on their normal images into models/demo/<version>/
#      unless models/demo already holds a version (about 7 minutes on 2 cores);
#   3. invad-eval scores the test split and prints the metrics table (report in out/demo-eval/).
# Serving it (invad-server + the invad CLI) joins here when the server lands (issue 5).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/release/tools
DATA=data/demo
MODEL=models/demo
CATEGORIES=${INVAD_DEMO_CATEGORIES:-grid,wood,metal,tile}
BUDGET=${INVAD_DEMO_TIME_BUDGET:-420}

if [[ ! -d $DATA ]]; then
  echo "== demo data -> $DATA"
  $BIN/datagen/invad-datagen --out "$DATA" --seed 1 --train 120 --categories "$CATEGORIES"
fi
if ! ls -d "$MODEL"/[0-9]* >/dev/null 2>&1; then
  echo "== training the demo model -> $MODEL (time budget ${BUDGET} s)"
  $BIN/train/invad-train --data "$DATA" --out "$MODEL" --time_budget "$BUDGET" \
    --description "make demo: unified model on invad-datagen categories $CATEGORIES"
else
  echo "== using the existing demo model $(ls -d "$MODEL"/[0-9]* | sort -V | tail -1)"
fi
echo "== evaluating on the test split"
$BIN/eval/invad-eval --model "$MODEL" --data "$DATA" --out out/demo-eval --progress=false
