#!/usr/bin/python3
"""Probe, not product (issue 3's note of 2026-11-30): I-AUROC of each image-score component that
invad-eval writes per image (predictions.csv: the calibrated `score` under the bundle's rule, the
raw `sq_norm` and `diff`, `map_max`, the upsampled anomaly map's maximum, and `positional_max`, the
latent map's maximum after the per-location standardisation, where the calibration has it), per
category and mean,
over all test images and over the subtle bucket (normal + subtle defects). Reads the K = 3 reports of
scripts/accuracy.py's default models. Choosing a score rule on these numbers selects on the test
split: treat them as a lead, not a result.

  scripts/probes/score_components.py [build/accuracy/reports]

Without selecting on the test split: the same models scored on a development split from another
datagen seed (new images, same distribution), e.g.

  build/release/tools/datagen/invad-datagen --out build/accuracy/dev/data --seed 12 --train 1 \
      --test_good 80 --test_per_defect 20
  for c in grid wood metal carpet tile washer; do
    v=$(grep -l 'score_rule: POSITIONAL_MAX_NORM' build/accuracy/models/default_$c/*/config.pbtxt \
        | head -1 | xargs dirname)
    build/release/tools/eval/invad-eval --model $v --data build/accuracy/dev/data/$c \
      --out build/accuracy/dev/reports/default_${c}_k3 --steps 3; done

(`v`: the model's version calibrated under the study's score rule, positional_max_norm; a model
folder alone means its latest version, which need not be that one.)
  scripts/probes/score_components.py build/accuracy/dev/reports
"""
import csv
import os
import sys

from sklearn.metrics import roc_auc_score

CATEGORIES = ["grid", "wood", "metal", "carpet", "tile", "washer"]
COLUMNS = ["score", "sq_norm", "diff", "map_max", "positional_max"]


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "build/accuracy/reports"
    table = {col: [] for col in COLUMNS}
    for cat in CATEGORIES:
        with open(os.path.join(root, f"default_{cat}_k3", "predictions.csv")) as f:
            rows = list(csv.DictReader(f))
        subtle = [r for r in rows if r["difficulty"] in ("subtle", "none")]
        for col in COLUMNS:
            if col not in rows[0] or any(r[col] == "nan" for r in rows):
                table[col].append((float("nan"), float("nan")))  # not in this report
                continue
            table[col].append((
                roc_auc_score([int(r["label"]) for r in rows], [float(r[col]) for r in rows]),
                roc_auc_score([int(r["label"]) for r in subtle], [float(r[col]) for r in subtle])))
    print("| image score | " + " | ".join(CATEGORIES) + " | mean | mean subtle |")
    print("|---" * (len(CATEGORIES) + 3) + "|")
    for col, v in table.items():
        mean_all = sum(a for a, _ in v) / len(v)
        mean_sub = sum(b for _, b in v) / len(v)
        print(f"| {col} | " + " | ".join(f"{a:.3f}" for a, _ in v) +
              f" | {mean_all:.3f} | {mean_sub:.3f} |")


if __name__ == "__main__":
    main()
