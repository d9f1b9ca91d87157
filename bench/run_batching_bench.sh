#!/usr/bin/env bash
# Runs the batching benchmarks reported in docs/benchmarks.md ("Dynamic batching") and prints
# markdown tables: scheduler capacity (zero-cost runner), closed-loop throughput and p50/p99 by
# concurrency for max_batch_size 1 vs 16 and whole-request vs step-level, on each configuration,
# and open-loop p99 at 70 % of the measured peak.
# Each configuration is a real bundle written by invad-train (a few steps on a small datagen set:
# only the cost matters here), so every figure is of a configuration the tools ship and the server
# serves:
#   default   invad-train's defaults (filter bank 256 px -> 36x16x16, DiT 128 x 2, fp32)
#   small     --dit_hidden 64
#   compact   --image_size 128 --latent_size 8 --precision bf16
# Usage: bench/run_batching_bench.sh [--configs=default,compact] [--quick]
# Run on a quiet machine. OPENBLAS_CORETYPE is left as the environment sets it.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BENCH_BIN:-build/release/bench/batching_bench}
CONFIGS=default,compact
TOOLS=${TOOLS_DIR:-build/release/tools}
QUICK=0
for a in "$@"; do
  case $a in
    --configs=*) CONFIGS=${a#--configs=} ;;
    --quick) QUICK=1 ;;
    *) echo "unknown argument $a" >&2; exit 2 ;;
  esac
done
out=$(mktemp -d)
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
echo "command: bench/run_batching_bench.sh $*"
reps=3; [[ $QUICK == 1 ]] && reps=1
"$BIN" --benchmark_filter=BM_SchedulerCapacity --benchmark_repetitions=$reps \
  --benchmark_report_aggregates_only=true --benchmark_out="$out/capacity.json" \
  --benchmark_out_format=json >/dev/null
"$TOOLS/datagen/invad-datagen" --out "$out/data" --categories grid --train 40 --test_good 1 \
  --test_per_defect 1 >/dev/null
for c in ${CONFIGS//,/ }; do
  case $c in
    default) flags=() ;;
    small) flags=(--dit_hidden 64) ;;
    compact) flags=(--image_size 128 --latent_size 8 --precision bf16) ;;
    *) echo "unknown configuration $c" >&2; exit 2 ;;
  esac
  "$TOOLS/train/invad-train" --data "$out/data/grid" --out "$out/models/$c" --steps 20 \
    --progress=false "${flags[@]}" >/dev/null 2>&1
  echo "configuration $c: invad-train ${flags[*]:-(defaults)}"
  filter='BM_(ModelCall|ClosedLoop|OpenLoop)'
  [[ $QUICK == 1 ]] && filter='BM_ModelCall|BM_ClosedLoop/max_batch:(1|16)/step_level:(0|1)/clients:(1|16)/|BM_OpenLoop'
  "$BIN" --model="$out/models/$c" --benchmark_filter="$filter" --benchmark_out="$out/load_$c.json" \
    --benchmark_out_format=json >/dev/null
done
/usr/bin/python3 bench/summarize_batching.py "$out"
