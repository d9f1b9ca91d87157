#!/usr/bin/env bash
# The documented offline commands, exactly as docs/training.md gives them (issue 3), on the
# binaries: invad-datagen --out DIR --seed N; invad-train --data DIR/<category> --out MODEL_DIR
# --time_budget S; invad-eval --model MODEL_DIR --data DIR/<category> --out REPORT_DIR.
# Usage: offline_loop_test.sh BIN_DIR WORK_DIR
set -euo pipefail
bin=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
"$bin/datagen/invad-datagen" --out "$work/data" --seed 5
for c in grid wood metal carpet tile washer; do
  test -d "$work/data/$c/train/good" || { echo "missing category $c"; exit 1; }
done
"$bin/train/invad-train" --data "$work/data/wood" --out "$work/models/wood" --time_budget 10 \
  --progress=false
test -f "$work/models/wood/1/config.pbtxt"
grep -q 'time_budget_s' "$work/models/wood/1/config.pbtxt"
"$bin/eval/invad-eval" --model "$work/models/wood" --data "$work/data/wood" --out "$work/report" \
  --progress=false > "$work/eval.txt"
for m in I-AUROC I-AP I-F1max P-AUROC P-AP AUPRO precision recall FPR ms_per_image; do
  grep -q "\"$m\"" "$work/report/report.json" || { echo "report.json lacks $m"; exit 1; }
done
test -f "$work/report/report.md"
ls "$work/report/overlays/"*.png > /dev/null
# A version folder works as --model too; a bad flag is an error with status 2.
"$bin/eval/invad-eval" --model "$work/models/wood/1" --data "$work/data/wood" \
  --out "$work/report_v1" --progress=false --steps 1 > /dev/null
set +e
"$bin/train/invad-train" --data "$work/data/wood" --out "$work/models/x" --steps 5 --epochs 1 \
  2> "$work/err.txt"
rc=$?
set -e
[[ $rc == 2 ]] || { echo "expected exit status 2, got $rc"; exit 1; }
grep -q "at most one" "$work/err.txt"
echo "offline loop OK"
