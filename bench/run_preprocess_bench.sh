#!/usr/bin/env bash
# Preprocessing cost in the request path, for docs/benchmarks.md ("Preprocessing: pose
# normalisation"): bench/preprocess_bench.cc, medians of 5 repetitions, and the ratio of pose on to
# off at each input size, all from one run.
# Usage: bench/run_preprocess_bench.sh   (run on a quiet machine)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_DIR:-build/release}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
echo "command: bench/run_preprocess_bench.sh"
"$BUILD/bench/preprocess_bench" --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
  --benchmark_out="$out" --benchmark_out_format=json >/dev/null
/usr/bin/python3 - "$out" <<'PY'
import json, sys
rows = {r["run_name"]: r["real_time"] for r in json.load(open(sys.argv[1]))["benchmarks"]
        if r.get("aggregate_name") == "median"}
print("| benchmark | median µs |")
print("|---|---|")
for name, t in rows.items():
    print(f"| {name} | {t:.1f} |")
for size in (256, 1024):
    off = rows[f"BM_Preprocess/size:{size}/pose:0"]
    on = rows[f"BM_Preprocess/size:{size}/pose:1"]
    print(f"pose on / off at {size} px: {on / off:.2f} (+{on - off:.0f} µs)")
PY
