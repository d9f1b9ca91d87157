"""Random scores with ties and labels, and sklearn's metrics on them (tests/integration/tools/
metrics_sklearn_test.cc). Usage: sklearn_metrics.py OUT_DIR"""
import sys

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

out = sys.argv[1]
rng = np.random.default_rng(7)
n = 2000
labels = (rng.random(n) < 0.3).astype(np.int32)
scores = np.round(rng.normal(size=n) + 1.2 * labels, 1).astype(np.float64)  # rounding makes ties
p, r, _ = precision_recall_curve(labels, scores)
f1 = np.max(np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-300), 0))
scores.tofile(f"{out}/scores.f64")
labels.tofile(f"{out}/labels.i32")
np.array([roc_auc_score(labels, scores), average_precision_score(labels, scores), f1]).tofile(f"{out}/expected.f64")
